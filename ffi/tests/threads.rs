//! The thread rules in the header hold: one handle from many threads at once, a cancel from
//! another thread, and a free while another thread's call is running.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use common::*;
use daiban::*;

/// A handle crosses threads as an address, the way a host passes a `daiban_store *` around.
#[derive(Clone, Copy)]
struct Handle(usize);

impl Handle {
    fn ptr(self) -> *mut daiban_store {
        self.0 as *mut daiban_store
    }
}

#[test]
fn one_handle_from_four_threads() {
    let dir = tempfile::tempdir().unwrap();
    let h = Handle(open(&dir.path().join("v.db")) as usize);
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            thread::spawn(move || {
                forms(100 + t, 25)
                    .iter()
                    .map(|f| register_ok(h.ptr(), f))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut numbers = HashSet::new();
    for w in workers {
        for n in w.join().unwrap() {
            assert!(numbers.insert(n), "ticket numbers are unique");
        }
    }
    assert_eq!(numbers.len(), 100);
    assert_eq!(total(h.ptr()), 100);
    assert_eq!(unsafe { daiban_store_free(h.ptr()) }, DAIBAN_OK);
}

/// A store with enough tickets that recomputing every deadline takes a while.
fn big_store(dir: &std::path::Path, n: usize) -> Handle {
    let s = open(&dir.join("big.db"));
    for f in forms(7, n) {
        register_ok(s, &f);
    }
    Handle(s as usize)
}

fn calendar_csv(h: Handle) -> std::ffi::CString {
    let (st, csv) = out_string(|o| unsafe { daiban_store_calendar(h.ptr(), o) });
    assert_eq!(st, DAIBAN_OK);
    c(&csv)
}

/// Run `call` on a worker thread while this thread cancels the handle again and again until
/// the worker is done; the worker's statuses come back.
fn while_cancelling<F>(h: Handle, call: F) -> Vec<daiban_status>
where
    F: FnOnce() -> Vec<daiban_status> + Send + 'static,
{
    let done = Arc::new(AtomicBool::new(false));
    let d = Arc::clone(&done);
    let worker = thread::spawn(move || {
        let statuses = call();
        d.store(true, Ordering::SeqCst);
        statuses
    });
    while !done.load(Ordering::SeqCst) {
        assert_eq!(unsafe { daiban_store_cancel(h.ptr()) }, DAIBAN_OK);
        thread::yield_now();
    }
    worker.join().unwrap()
}

#[test]
fn cancel_from_another_thread_interrupts_a_long_search() {
    let dir = tempfile::tempdir().unwrap();
    let h = big_store(dir.path(), 400);
    let statuses = while_cancelling(h, move || {
        (0..20)
            .map(|i| {
                let (st, msg) = search(
                    h.ptr(),
                    &format!(r#"{{"page_size": 200, "page": {}}}"#, i % 2),
                );
                if st == DAIBAN_INTERRUPTED {
                    assert_eq!(msg, "操作已取消");
                }
                st
            })
            .collect()
    });
    for st in &statuses {
        assert!(matches!(st, DAIBAN_OK | DAIBAN_INTERRUPTED), "{st:?}");
    }
    let interrupted = statuses
        .iter()
        .filter(|s| **s == DAIBAN_INTERRUPTED)
        .count();
    eprintln!(
        "{interrupted} of {} searches were interrupted",
        statuses.len()
    );
    assert!(
        interrupted > 0,
        "cancelling throughout 20 long searches interrupted none"
    );
    // Nothing was harmed: the store reads and writes as before.
    assert_eq!(total(h.ptr()), 400);
    register_ok(h.ptr(), &forms(8, 1)[0]);
    assert_eq!(unsafe { daiban_store_free(h.ptr()) }, DAIBAN_OK);
}

/// The way a host cancels: once, while the call runs. The call completes or returns
/// DAIBAN_INTERRUPTED, and the store keeps working either way.
#[test]
fn one_cancel_during_a_calendar_update() {
    let dir = tempfile::tempdir().unwrap();
    let h = big_store(dir.path(), 300);
    let csv = Arc::new(calendar_csv(h));
    for _ in 0..5 {
        let started = Arc::new(AtomicBool::new(false));
        let (s2, csv2) = (Arc::clone(&started), Arc::clone(&csv));
        let worker = thread::spawn(move || {
            s2.store(true, Ordering::SeqCst);
            unsafe { daiban_store_set_calendar(h.ptr(), csv2.as_ptr()) }
        });
        while !started.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        assert_eq!(unsafe { daiban_store_cancel(h.ptr()) }, DAIBAN_OK);
        let st = worker.join().unwrap();
        assert!(
            matches!(st, DAIBAN_OK | DAIBAN_INTERRUPTED),
            "{st:?} {:?}",
            last_error()
        );
        register_ok(h.ptr(), &forms(9, 1)[0]);
    }
    assert_eq!(total(h.ptr()), 305);
    assert_eq!(unsafe { daiban_store_free(h.ptr()) }, DAIBAN_OK);
}

/// A cancel that lands while a write's transaction is being rolled back after an earlier
/// cancel interrupts the ROLLBACK itself, leaving the transaction open; the store must end it
/// before the next write instead of failing every later write.
#[test]
fn repeated_cancels_during_writes_leave_the_store_writable() {
    let dir = tempfile::tempdir().unwrap();
    let h = big_store(dir.path(), 300);
    let csv = Arc::new(calendar_csv(h));
    for _ in 0..10 {
        let csv2 = Arc::clone(&csv);
        let statuses = while_cancelling(h, move || {
            let st = unsafe { daiban_store_set_calendar(h.ptr(), csv2.as_ptr()) };
            if !matches!(st, DAIBAN_OK | DAIBAN_INTERRUPTED) {
                eprintln!("{st:?}: {}", last_error().unwrap_or_default());
            }
            vec![st]
        });
        assert!(
            matches!(statuses[0], DAIBAN_OK | DAIBAN_INTERRUPTED),
            "{statuses:?} {:?}",
            last_error()
        );
    }
    let (st, msg) = register(h.ptr(), &forms(10, 1)[0]);
    assert_eq!(st, DAIBAN_OK, "{msg}");
    assert_eq!(unsafe { daiban_store_free(h.ptr()) }, DAIBAN_OK);
}

#[test]
fn free_while_another_thread_is_inside_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let h = big_store(dir.path(), 150);
    let csv = calendar_csv(h);
    let started = Arc::new(AtomicBool::new(false));
    let s2 = Arc::clone(&started);
    let worker = thread::spawn(move || {
        s2.store(true, Ordering::SeqCst);
        let st = unsafe { daiban_store_set_calendar(h.ptr(), csv.as_ptr()) };
        let mut out: *mut c_char = sentinel();
        let after = unsafe { daiban_store_catalog(h.ptr(), &mut out) };
        (st, after)
    });
    while !started.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    assert_eq!(unsafe { daiban_store_free(h.ptr()) }, DAIBAN_OK);
    let (during, after) = worker.join().unwrap();
    // The running call finished on the still-open store (or had not begun: then refused).
    assert!(
        matches!(during, DAIBAN_OK | DAIBAN_INVALID_HANDLE),
        "{during:?}"
    );
    assert_eq!(after, DAIBAN_INVALID_HANDLE);
}
