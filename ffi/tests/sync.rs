//! Sync through the ABI against real server processes (a district and a township, the
//! `sync-server` binary `cargo test --workspace` builds): progress once per round trip, the
//! handle usable while a round trip is in flight, cancel between round trips, and the sync
//! status before and after. Each tablet enrolls through the ABI first (tests/enroll.rs tests
//! enrollment and revocation themselves).
//!
//! To hold a round trip in flight deterministically, the tablet syncs through [`Relay`], a
//! small HTTP relay on loopback in front of the township that keeps the first request
//! unanswered until the test releases it.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::ffi::{c_char, c_void, CStr};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use agent_core::crypto::StoreKey;
use agent_core::doc::TicketDoc;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::event::{Event, EventKind, Role};
use agent_core::store::{Store, StoreOptions};
use common::*;
use daiban::*;
use serde_json::Value;

/// How long a test waits for something that should happen at once before failing.
const PATIENCE: Duration = Duration::from_secs(60);

/// A handle crosses threads as an address, the way a host passes a `daiban_store *` around.
#[derive(Clone, Copy)]
struct Handle(usize);

impl Handle {
    fn ptr(self) -> *mut daiban_store {
        self.0 as *mut daiban_store
    }
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Enroll the store (device 1 of point 101) through the C ABI with a code from `township`.
fn enroll_with(h: *mut daiban_store, township: &support::Server) {
    let code = support::enrollment_code(&township.data, &["--point", "101", "--device", "1"]);
    let (st, enrolled) = enroll(h, &township.url, None, &code);
    assert_eq!(st, DAIBAN_OK, "{enrolled}");
}

fn sync(h: *mut daiban_store, url: &str) -> (daiban_status, String) {
    let url = c(url);
    out_string(|o| unsafe { daiban_store_sync(h, url.as_ptr(), o) })
}

fn sync_status(h: *mut daiban_store) -> Value {
    let (st, s) = out_string(|o| unsafe { daiban_store_sync_status(h, o) });
    assert_eq!(st, DAIBAN_OK, "{s}");
    json(&s)
}

/// The counts of a status: (pending, refused, synced).
fn counts(status: &Value) -> (u64, u64, u64) {
    let n = |k: &str| status[k].as_u64().unwrap();
    (n("pending"), n("refused"), n("synced"))
}

/// Register `n` demo tickets (seed `seed`).
fn register_many(h: *mut daiban_store, seed: u64, n: usize) {
    for f in forms(seed, n) {
        register_ok(h, &f);
    }
}

/// Enough tickets that uploading them takes more than one round trip (a page is 256 KiB).
const BACKLOG: usize = 400;

/// What the progress callback saw. It must not panic (that would abort the process across
/// `extern "C"`), so it only records; the test checks afterwards.
struct Seen {
    store: Handle,
    reports: Vec<String>,
    /// Status of a search on the same handle made from inside the callback.
    searches: Vec<daiban_status>,
    /// Status of a sync started from inside the callback (refused).
    nested_sync: Option<daiban_status>,
}

unsafe extern "C" fn on_progress(user_data: *mut c_void, report_json: *const c_char) {
    // SAFETY: the test passes a `Seen` that outlives the sync, and the library passes a
    // NUL-terminated string valid during the call.
    let seen = unsafe { &mut *user_data.cast::<Seen>() };
    let text = unsafe { CStr::from_ptr(report_json) };
    seen.reports.push(text.to_string_lossy().into_owned());
    let mut page: *mut c_char = ptr::null_mut();
    let st = unsafe { daiban_store_search(seen.store.ptr(), c"{}".as_ptr(), &mut page) };
    seen.searches.push(st);
    let _ = unsafe { daiban_string_free(page) };
    if seen.nested_sync.is_none() {
        let mut out: *mut c_char = ptr::null_mut();
        let st = unsafe {
            daiban_store_sync(seen.store.ptr(), c"http://127.0.0.1:1".as_ptr(), &mut out)
        };
        seen.nested_sync = Some(st);
        let _ = unsafe { daiban_string_free(out) };
    }
}

#[test]
fn progress_is_reported_once_per_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = support::district_and_township(dir.path());
    let h = open(&dir.path().join("t.db"));
    enroll_with(h, &township);
    register_many(h, 31, BACKLOG);

    let mut seen = Seen {
        store: Handle(h as usize),
        reports: Vec::new(),
        searches: Vec::new(),
        nested_sync: None,
    };
    let url = c(&township.url);
    let (st, report) = out_string(|o| unsafe {
        daiban_store_sync_progress(
            h,
            url.as_ptr(),
            Some(on_progress),
            ptr::from_mut(&mut seen).cast(),
            o,
        )
    });
    assert_eq!(st, DAIBAN_OK, "{report}");
    let report = json(&report);
    let rounds = report["rounds"].as_u64().unwrap();
    assert!(
        rounds >= 2,
        "the backlog should take several round trips: {report}"
    );
    assert_eq!(report["uploaded"], BACKLOG);

    // Once per round trip, each the running report as valid JSON, the last one the result.
    assert_eq!(seen.reports.len() as u64, rounds, "{:?}", seen.reports);
    let reports: Vec<Value> = seen.reports.iter().map(|r| json(r)).collect();
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r["rounds"], i as u64 + 1, "{r}");
        for key in [
            "uploaded",
            "refused",
            "downloaded",
            "bytes_up",
            "bytes_down",
        ] {
            assert!(r[key].is_u64(), "{key} in {r}");
        }
    }
    assert!(reports
        .windows(2)
        .all(|w| w[0]["uploaded"].as_u64() <= w[1]["uploaded"].as_u64()));
    assert_eq!(reports.last().unwrap(), &report);

    // The callback runs with the handle free: a search from it works; a sync from it is
    // refused instead of deadlocking.
    assert!(
        seen.searches.iter().all(|s| *s == DAIBAN_OK),
        "{:?}",
        seen.searches
    );
    assert_eq!(seen.nested_sync, Some(DAIBAN_SYNC));
    assert_eq!(counts(&sync_status(h)), (0, 0, BACKLOG as u64));

    // Without a callback (NULL), and through daiban_store_sync: nothing left to do.
    let (st, report) = out_string(|o| unsafe {
        daiban_store_sync_progress(h, url.as_ptr(), None, ptr::null_mut(), o)
    });
    assert_eq!(st, DAIBAN_OK, "{report}");
    assert_eq!(json(&report)["uploaded"], 0);
    let (st, report) = sync(h, &township.url);
    assert_eq!(st, DAIBAN_OK, "{report}");
    assert_eq!(json(&report)["rounds"], 1);
    assert_eq!(unsafe { daiban_store_free(h) }, DAIBAN_OK);
}

/// Put a ticket into the store file that the township will refuse: its document carries a
/// township event (as a tablet restored from a township's copy might), which a tablet may
/// not bring. Returns the ticket's number.
fn add_ticket_the_server_refuses(path: &Path) -> String {
    let mut store = Store::open(
        path,
        StoreOptions::new(StoreKey::from_bytes(&KEY).unwrap(), 101, 1, "李代理"),
    )
    .unwrap();
    let form = &agent_core::demo::forms(77, 1, &Catalog::demo())[0];
    let number = store.register(form).unwrap().view.ticket.number;
    let mut doc = TicketDoc::load(&store.export(&number).unwrap(), store.actor()).unwrap();
    doc.append(&Event {
        id: "test-accepted".into(),
        kind: EventKind::Accepted,
        at: store.now(),
        actor: "clerk".into(),
        role: Role::Township,
        note: String::new(),
        payload: serde_json::json!({}),
    })
    .unwrap();
    doc.commit();
    store.merge_remote(&doc.save(true)).unwrap();
    number.to_string()
}

#[test]
fn sync_status_before_and_after_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = support::district_and_township(dir.path());
    let path = dir.path().join("t.db");
    let refused_number = add_ticket_the_server_refuses(&path);
    let h = open(&path);
    enroll_with(h, &township);
    register_many(h, 32, 3);

    let before = sync_status(h);
    assert_eq!(counts(&before), (4, 0, 0), "{before}");
    assert_eq!(before["refusals"], serde_json::json!([]));
    assert_eq!(before["cursor"], 0);
    assert!(before["last_sync"].is_null(), "{before}");

    // A cancel while nothing runs does not stop the next sync.
    assert_eq!(unsafe { daiban_store_cancel(h) }, DAIBAN_OK);
    let (st, report) = sync(h, &township.url);
    assert_eq!(st, DAIBAN_OK, "{report}");
    let report = json(&report);
    assert_eq!(
        (report["uploaded"].as_u64(), report["refused"].as_u64()),
        (Some(3), Some(1))
    );

    let after = sync_status(h);
    assert_eq!(counts(&after), (0, 1, 3), "{after}");
    let refusals = after["refusals"].as_array().unwrap();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0]["number"], refused_number.as_str());
    let reason = refusals[0]["reason"].as_str().unwrap();
    assert!(reason.contains("不能记录"), "{reason}");
    assert!(after["cursor"].as_u64().unwrap() > 0, "{after}");
    let last = &after["last_sync"];
    assert_eq!(last["outcome"], "ok", "{after}");
    assert_eq!(last["report"], report);
    assert!(last["message"].is_null());
    // RFC 3339 in China Standard Time, e.g. 2026-03-02T09:00:00.123+08:00.
    let at = last["at"].as_str().unwrap();
    assert!(at.contains('T') && at.ends_with("+08:00"), "{at}");

    // A sync with no link is recorded as failed, with the message the host got.
    let (st, message) = sync(h, "http://127.0.0.1:1");
    assert_eq!(st, DAIBAN_SYNC);
    let failed = sync_status(h);
    assert_eq!(counts(&failed), (0, 1, 3));
    assert_eq!(failed["last_sync"]["outcome"], "failed", "{failed}");
    assert_eq!(failed["last_sync"]["message"], message.as_str());
    assert_eq!(failed["last_sync"]["report"]["rounds"], 0);
    assert_eq!(failed["cursor"], after["cursor"]);

    // NULL arguments are refused; the out-parameter is left alone.
    let mut out: *mut c_char = sentinel();
    assert_eq!(
        unsafe { daiban_store_sync_status(h, ptr::null_mut()) },
        DAIBAN_NULL_ARGUMENT
    );
    assert_eq!(
        unsafe { daiban_store_sync_status(ptr::null_mut(), &mut out) },
        DAIBAN_NULL_ARGUMENT
    );
    let url = c(&township.url);
    assert_eq!(
        unsafe {
            daiban_store_sync_progress(h, url.as_ptr(), None, ptr::null_mut(), ptr::null_mut())
        },
        DAIBAN_NULL_ARGUMENT
    );
    assert_eq!(out, sentinel());
    assert_eq!(unsafe { daiban_store_free(h) }, DAIBAN_OK);
    assert_eq!(
        unsafe { daiban_store_sync_status(h, &mut out) },
        DAIBAN_INVALID_HANDLE
    );
}

/// What the relay does with the request it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Forward it (and every later request) to the server and relay the answer.
    Forward,
    /// Close it unanswered, and every later request too: the link is down.
    Fail,
}

/// An HTTP relay on loopback in front of `upstream`. The first request is read whole and
/// held unanswered until [`Relay::release`]; later requests get what the release says.
/// Each connection carries one request (`Connection: close`).
struct Relay {
    url: String,
    arrived: Receiver<()>,
    release: Option<Sender<Release>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    fn start(upstream: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (arrived_tx, arrived) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_owned();
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let mut mode: Option<Release> = None;
            while !stopping.load(Ordering::SeqCst) {
                let mut conn = match listener.accept() {
                    Ok((conn, _)) => conn,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(e) => panic!("relay accept: {e}"),
                };
                conn.set_nonblocking(false).unwrap();
                let Some(request) = read_request(&mut conn) else {
                    continue;
                };
                if mode.is_none() {
                    let _ = arrived_tx.send(());
                    // A test that never releases fails on its own; do not hang here.
                    mode = Some(release_rx.recv_timeout(PATIENCE).unwrap_or(Release::Fail));
                }
                if mode == Some(Release::Forward) {
                    forward(&upstream, &request, &mut conn);
                }
                // Release::Fail: dropping the connection closes it unanswered.
            }
        });
        Relay {
            url,
            arrived,
            release: Some(release),
            stop,
            thread: Some(thread),
        }
    }

    /// Wait until the first request is in the relay's hands (the client is waiting for
    /// the answer).
    fn wait_for_request(&self) {
        match self.arrived.recv_timeout(PATIENCE) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => panic!("no request reached the relay"),
            Err(RecvTimeoutError::Disconnected) => panic!("the relay stopped"),
        }
    }

    fn release(&mut self, how: Release) {
        self.release.take().unwrap().send(how).unwrap();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        drop(self.release.take());
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One HTTP request: the path and the body (the headers the sync client sends are known).
struct Request {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

fn read_request(conn: &mut TcpStream) -> Option<Request> {
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split_whitespace().nth(1)?.to_owned();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let length: usize = header("content-length")?.parse().ok()?;
    let content_type = header("content-type").unwrap_or_default();
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        path,
        content_type,
        body,
    })
}

fn forward(upstream: &str, request: &Request, conn: &mut TcpStream) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{upstream}{}", request.path))
        .header("content-type", &request.content_type)
        .body(request.body.clone())
        .send()
        .unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let body = resp.bytes().unwrap();
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
    let _ = conn.flush();
}

/// Start a sync of `h` through `url` on another thread.
fn sync_in_background(h: Handle, url: &str) -> JoinHandle<(daiban_status, String)> {
    let url = url.to_owned();
    thread::spawn(move || sync(h.ptr(), &url))
}

/// Run `f` on another thread and wait for it at most [`PATIENCE`]; `None` if it did not
/// finish by then (it is left running).
fn within_patience<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(PATIENCE).ok()
}

/// The main reason the sync does not hold the handle across the network: the UI thread's
/// search (and the sync screen's status) answer while a round trip waits for the server.
#[test]
fn a_search_completes_while_a_sync_waits_for_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = support::district_and_township(dir.path());
    let h = Handle(open(&dir.path().join("t.db")) as usize);
    enroll_with(h.ptr(), &township);
    register_many(h.ptr(), 33, 5);
    let mut relay = Relay::start(&township.url);

    let syncing = sync_in_background(h, &relay.url);
    relay.wait_for_request();
    let during = within_patience(move || {
        let (st, page) = search(h.ptr(), "{}");
        let status = out_string(|o| unsafe { daiban_store_sync_status(h.ptr(), o) });
        (st, page, status)
    });
    let finished_meanwhile = syncing.is_finished();
    relay.release(Release::Forward);
    let (st, report) = syncing.join().unwrap();

    let (search_st, page, (status_st, status)) =
        during.expect("the search waited for the sync's round trip");
    assert!(!finished_meanwhile, "the round trip was held");
    assert_eq!(search_st, DAIBAN_OK, "{page}");
    assert_eq!(json(&page)["total"], 5);
    assert_eq!(status_st, DAIBAN_OK, "{status}");
    assert_eq!(counts(&json(&status)), (5, 0, 0), "not acknowledged yet");

    // Released, the round trip completes and the sync finishes normally.
    assert_eq!(st, DAIBAN_OK, "{report}");
    assert_eq!(json(&report)["uploaded"], 5);
    assert_eq!(counts(&sync_status(h.ptr())), (0, 0, 5));
    assert_eq!(unsafe { daiban_store_free(h.ptr()) }, DAIBAN_OK);
}

/// A cancel while a round trip is in flight does not cut it short: the answer is applied,
/// and the sync stops before the next round trip with DAIBAN_INTERRUPTED. What was exchanged
/// stays; the next sync does the rest.
#[test]
fn a_cancel_during_a_round_trip_stops_the_sync_before_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = support::district_and_township(dir.path());
    let h = Handle(open(&dir.path().join("t.db")) as usize);
    enroll_with(h.ptr(), &township);
    register_many(h.ptr(), 34, BACKLOG);
    let mut relay = Relay::start(&township.url);

    let syncing = sync_in_background(h, &relay.url);
    relay.wait_for_request();
    assert_eq!(unsafe { daiban_store_cancel(h.ptr()) }, DAIBAN_OK);
    relay.release(Release::Forward);
    let (st, message) = syncing.join().unwrap();
    assert_eq!(st, DAIBAN_INTERRUPTED, "{message}");
    assert_eq!(message, "操作已取消");

    let status = sync_status(h.ptr());
    let (pending, refused, synced) = counts(&status);
    assert!(synced > 0 && pending > 0, "one page went up: {status}");
    assert_eq!((pending + synced, refused), (BACKLOG as u64, 0));
    let last = &status["last_sync"];
    assert_eq!(last["outcome"], "interrupted", "{status}");
    assert_eq!(last["report"]["rounds"], 1);
    assert_eq!(last["report"]["uploaded"], synced);
    assert_eq!(last["message"], "操作已取消");

    // The cancel does not linger: the next sync uploads the rest.
    let (st, report) = sync(h.ptr(), &township.url);
    assert_eq!(st, DAIBAN_OK, "{report}");
    assert_eq!(json(&report)["uploaded"], pending);
    assert_eq!(counts(&sync_status(h.ptr())), (0, 0, BACKLOG as u64));
    assert_eq!(unsafe { daiban_store_free(h.ptr()) }, DAIBAN_OK);
}

/// A cancel during a round trip whose link then fails stops the sync before it retries the
/// request: DAIBAN_INTERRUPTED at once, not minutes of retries on a dead link. Nothing was
/// exchanged; nothing is lost.
#[test]
fn a_cancel_during_a_round_trip_that_fails_stops_before_the_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = support::district_and_township(dir.path());
    let h = Handle(open(&dir.path().join("t.db")) as usize);
    enroll_with(h.ptr(), &township);
    register_many(h.ptr(), 35, 3);
    let mut relay = Relay::start(&township.url);

    let syncing = sync_in_background(h, &relay.url);
    relay.wait_for_request();
    assert_eq!(unsafe { daiban_store_cancel(h.ptr()) }, DAIBAN_OK);
    relay.release(Release::Fail);
    let (st, message) = syncing.join().unwrap();
    assert_eq!(st, DAIBAN_INTERRUPTED, "{message}");

    let status = sync_status(h.ptr());
    assert_eq!(counts(&status), (3, 0, 0), "{status}");
    assert_eq!(status["last_sync"]["outcome"], "interrupted");
    drop(relay);
    let (st, report) = sync(h.ptr(), &township.url);
    assert_eq!(st, DAIBAN_OK, "{report}");
    assert_eq!(counts(&sync_status(h.ptr())), (0, 0, 3));
    assert_eq!(unsafe { daiban_store_free(h.ptr()) }, DAIBAN_OK);
}
