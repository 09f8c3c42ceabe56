//! Sync with the township server through a store handle, and the sync status.
//!
//! A sync takes the handle's store lock once per short step (each a transaction of its own,
//! see agent-core's `Replica`), never across a network round trip: while it waits for the
//! server, the app's other calls on the same handle (a search on the UI thread) run.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use agent_core::store::{Store, SyncOutcome};
use agent_core::sync::client::{sync_with, Replica, SyncReport, Upload};
use agent_core::sync::wire::{DocChanges, Peer, SharedDoc};

use crate::boundary::{call, give_string, non_null, text, to_json, Failure};
use crate::status::daiban_status::{self, *};
use crate::store::{daiban_store, live, poisoned, with_store, Open};

/// Called by `daiban_store_sync_progress` after every round trip with the host's
/// `user_data` and the running report as JSON (`{"rounds", "uploaded", "refused",
/// "downloaded", "shared", "failed", "bytes_up", "bytes_down"}`). `report_json` is valid
/// only during the call: copy what you need. NULL means no callback.
#[allow(non_camel_case_types)]
pub type daiban_sync_progress =
    Option<unsafe extern "C" fn(user_data: *mut c_void, report_json: *const c_char)>;

thread_local! {
    /// Set while this thread runs a host's progress callback.
    static IN_PROGRESS_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// The handle's store as a sync replica: every step locks the store for itself.
struct Stepwise<'a> {
    open: &'a Open,
    /// `Open::cancels` when the sync started: a cancel after that stops it.
    cancels_at_start: u64,
    /// A step found the store poisoned (an earlier call panicked holding it).
    poisoned: Cell<bool>,
}

impl Stepwise<'_> {
    fn step<T>(
        &self,
        f: impl FnOnce(&mut Store) -> agent_core::Result<T>,
    ) -> agent_core::Result<T> {
        match self.open.store.lock() {
            Ok(mut store) => f(&mut store),
            Err(_) => {
                // Stop the sync at once; the caller reports DAIBAN_POISONED.
                self.poisoned.set(true);
                Err(agent_core::Error::Interrupted)
            }
        }
    }
}

impl Replica for Stepwise<'_> {
    type Mark = <Store as Replica>::Mark;

    fn peer(&self) -> agent_core::Result<Peer> {
        self.step(|s| Replica::peer(s))
    }

    fn outbox(&mut self, max_bytes: usize) -> agent_core::Result<Vec<Upload<Self::Mark>>> {
        self.step(|s| Replica::outbox(s, max_bytes))
    }

    fn acknowledge(
        &mut self,
        upload: &Upload<Self::Mark>,
        refused: Option<&str>,
    ) -> agent_core::Result<()> {
        self.step(|s| Replica::acknowledge(s, upload, refused))
    }

    fn send_whole(&mut self, upload: &Upload<Self::Mark>) -> agent_core::Result<()> {
        self.step(|s| Replica::send_whole(s, upload))
    }

    fn shared_outbox(&mut self) -> agent_core::Result<Vec<SharedDoc>> {
        self.step(Replica::shared_outbox)
    }

    fn shared_sent(&mut self, docs: &[SharedDoc]) -> agent_core::Result<()> {
        self.step(|s| Replica::shared_sent(s, docs))
    }

    fn apply(&mut self, changes: &DocChanges) -> agent_core::Result<()> {
        self.step(|s| Replica::apply(s, changes))
    }

    fn apply_shared(&mut self, doc: &SharedDoc) -> agent_core::Result<()> {
        self.step(|s| Replica::apply_shared(s, doc))
    }

    fn cursor(&mut self) -> agent_core::Result<u64> {
        self.step(Replica::cursor)
    }

    fn set_cursor(&mut self, cursor: u64) -> agent_core::Result<()> {
        self.step(|s| Replica::set_cursor(s, cursor))
    }

    fn next_counter(&mut self) -> agent_core::Result<u64> {
        self.step(Replica::next_counter)
    }

    fn epoch(&mut self) -> agent_core::Result<u64> {
        self.step(Replica::epoch)
    }

    fn set_epoch(&mut self, epoch: u64) -> agent_core::Result<()> {
        self.step(|s| Replica::set_epoch(s, epoch))
    }

    fn forget_acknowledged(&mut self) -> agent_core::Result<()> {
        self.step(Replica::forget_acknowledged)
    }

    fn pending_whole(&mut self) -> agent_core::Result<Vec<String>> {
        self.step(Replica::pending_whole)
    }

    fn set_pending_whole(&mut self, tickets: &[String]) -> agent_core::Result<()> {
        self.step(|s| Replica::set_pending_whole(s, tickets))
    }

    fn cancelled(&self) -> bool {
        self.open.cancels.load(Ordering::SeqCst) != self.cancels_at_start
    }
}

/// Run one sync on the handle and record how it ended in the store.
fn sync(
    store: *const daiban_store,
    url: &str,
    progress: daiban_sync_progress,
    user_data: *mut c_void,
) -> Result<SyncReport, Failure> {
    if IN_PROGRESS_CALLBACK.with(Cell::get) {
        return Err(Failure::new(
            DAIBAN_SYNC,
            "不能在同步进度回调中再次同步（调用方程序错误）",
        ));
    }
    let open = live(store)?;
    // One sync per handle at a time; the lock guards no data, so a panic does not spoil it.
    let _one_sync = open.syncing.lock().unwrap_or_else(PoisonError::into_inner);
    let cancels_at_start = open.cancels.load(Ordering::SeqCst);
    // Cancels made before this sync do not stop it; the store's flag is what its own long
    // steps (a new calendar from the server) check.
    open.store.lock().map_err(|_| poisoned())?.reset_interrupt();
    let mut replica = Stepwise {
        open: &open,
        cancels_at_start,
        poisoned: Cell::new(false),
    };
    let mut last = SyncReport::default();
    let mut on_round = |report: &SyncReport| {
        last = report.clone();
        let Some(callback) = progress else { return };
        // serde_json escapes control characters, so the JSON never holds a NUL.
        let Some(json) = serde_json::to_string(report)
            .ok()
            .and_then(|j| CString::new(j).ok())
        else {
            return;
        };
        IN_PROGRESS_CALLBACK.with(|c| c.set(true));
        // SAFETY: the host's function, called as the header describes it: on the thread
        // that called the sync, with the host's own `user_data`, and a NUL-terminated string
        // that lives until the callback returns. No store lock is held.
        unsafe { callback(user_data, json.as_ptr()) };
        IN_PROGRESS_CALLBACK.with(|c| c.set(false));
    };
    let result = sync_with(&mut replica, url, &mut on_round);
    if replica.poisoned.get() {
        return Err(poisoned());
    }
    let (outcome, result) = match result {
        Ok(report) => (SyncOutcome::Ok, Ok(report)),
        Err(agent_core::Error::Interrupted) => (
            SyncOutcome::Interrupted,
            Err(Failure::from(agent_core::Error::Interrupted)),
        ),
        Err(e) => (SyncOutcome::Failed, Err(Failure::from(e))),
    };
    let (report, message) = match &result {
        Ok(report) => (report, None),
        Err(f) => (&last, Some(f.message.as_str())),
    };
    // Best effort: the sync's own status is what the host must see, and a store that
    // cannot write this will say so on the next call.
    if let Ok(mut s) = open.store.lock() {
        let _ = s.record_sync(outcome, report, message);
    }
    result
}

/// Sync with the township server at `base_url` (e.g. "http://10.0.0.2:8700"): uploads
/// what the server lacks, applies what it sends, in as few round trips as the data needs.
/// Blocking. The same as `daiban_store_sync_progress` without a callback; see there.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INVALID_UTF8`,
/// `DAIBAN_SYNC` (no link or the server refused; sync again later), `DAIBAN_INTERRUPTED`,
/// `DAIBAN_CORRUPT_DOCUMENT`, `DAIBAN_DATABASE`, `DAIBAN_POISONED`, `DAIBAN_PANIC`.
///
/// # Safety
/// `base_url` is NULL or a NUL-terminated string; `report_json_out` is NULL or points to a
/// writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_sync(
    store: *mut daiban_store,
    base_url: *const c_char,
    report_json_out: *mut *mut c_char,
) -> daiban_status {
    // SAFETY: forwarded contract; no callback.
    unsafe {
        daiban_store_sync_progress(store, base_url, None, std::ptr::null_mut(), report_json_out)
    }
}

/// Sync with the township server at `base_url` (e.g. "http://10.0.0.2:8700"), calling
/// `progress` after every round trip. Uploads what the server lacks and applies what it
/// sends, in as few round trips as the data needs; blocking.
///
/// The handle stays usable meanwhile: the sync holds it only for its short local steps,
/// never while waiting for the server, so other threads' calls on the same handle (a search
/// on the UI thread, `daiban_store_sync_status`) run during a sync. A second sync on the
/// same handle waits until the first returns.
///
/// `daiban_store_cancel` stops the sync before its next round trip or retry
/// (`DAIBAN_INTERRUPTED`; what was already exchanged stays, the rest goes next time); a round
/// trip in flight is not cut short, so a cancel during the last one still ends in its result
/// (`DAIBAN_OK`). A cancel made before the sync started does not stop it.
///
/// `progress` (may be NULL) is called on the calling thread, before this function returns,
/// once per completed round trip, with `user_data` and the running report as JSON (as
/// below). Its string is valid only during the call. It may call this library (a search,
/// `daiban_store_cancel`), but must not start a sync (refused with `DAIBAN_SYNC`), and must
/// not throw a C++ exception or `longjmp` out of the callback.
///
/// On success `*report_json_out` is a JSON object: rounds, uploaded, refused, downloaded,
/// shared, failed, bytes_up, bytes_down (free it with `daiban_string_free`). Per-ticket sync
/// state (`sync_state`, `sync_reason`) shows in search results, and the counts, refusals and
/// how this sync ended (also when it failed) in `daiban_store_sync_status`.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INVALID_UTF8`,
/// `DAIBAN_SYNC` (no link or the server refused; sync again later; also a sync started from a
/// progress callback), `DAIBAN_INTERRUPTED`, `DAIBAN_CORRUPT_DOCUMENT`, `DAIBAN_DATABASE`,
/// `DAIBAN_POISONED`, `DAIBAN_PANIC`.
///
/// # Safety
/// `base_url` is NULL or a NUL-terminated string; `progress` is NULL or a function with the
/// `daiban_sync_progress` signature; `user_data` is passed to it untouched (never read by the
/// library); `report_json_out` is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_sync_progress(
    store: *mut daiban_store,
    base_url: *const c_char,
    progress: daiban_sync_progress,
    user_data: *mut c_void,
    report_json_out: *mut *mut c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        non_null(base_url, "base_url")?;
        non_null(report_json_out, "report_json_out")?;
        // SAFETY: NUL-terminated and live for the call by the contract above.
        let url = unsafe { text(base_url, "base_url") }?;
        let report = sync(store, url, progress, user_data)?;
        let json = to_json(&report)?;
        // SAFETY: non-NULL and writable by the contract above.
        unsafe { give_string(report_json_out, json) }
    })
}

/// Where this device stands with its township server, offline, in `*status_json_out` (free
/// it with `daiban_string_free`). Runs during a sync (it does not wait for the network).
///
/// The status is `{"pending": <tickets waiting to upload>, "refused": <tickets the server
/// refused>, "synced": <tickets the server holds as they are here>, "refusals": [{"number",
/// "reason"}] (the first 50 refused, oldest first; a refused ticket goes up again once the
/// agent records an event on it), "cursor": <the server's change sequence seen>,
/// "last_sync": null | {"at" (RFC 3339, China Standard Time), "outcome": "ok" |
/// "interrupted" | "failed", "report": {as daiban_store_sync_progress; for a sync that did
/// not finish, the round trips that completed}, "message": null | "<why, in Chinese>"}}`.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INTERRUPTED`,
/// `DAIBAN_DATABASE`, `DAIBAN_POISONED`, `DAIBAN_PANIC`.
///
/// # Safety
/// `status_json_out` is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_sync_status(
    store: *mut daiban_store,
    status_json_out: *mut *mut c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        non_null(status_json_out, "status_json_out")?;
        let status = with_store(store, |s| Ok(s.sync_status()?))?;
        let json = to_json(&status)?;
        // SAFETY: non-NULL and writable by the contract above.
        unsafe { give_string(status_json_out, json) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::crypto::StoreKey;
    use agent_core::store::StoreOptions;
    use std::sync::atomic::AtomicU64;
    use std::sync::Mutex;

    /// A step that finds the store poisoned stops the sync (as a cancel does) and marks the
    /// replica, so the call reports DAIBAN_POISONED rather than a sync failure.
    #[test]
    fn a_poisoned_store_stops_the_sync_at_the_next_step() {
        let dir = tempfile::tempdir().unwrap();
        let key = StoreKey::from_bytes(&[7; 32]).unwrap();
        let store =
            Store::open(dir.path().join("t.db"), StoreOptions::new(key, 101, 1, "a")).unwrap();
        let interrupt = store.interrupter();
        let open = Open {
            store: Mutex::new(store),
            interrupt,
            cancels: AtomicU64::new(0),
            syncing: Mutex::new(()),
        };
        let mut replica = Stepwise {
            open: &open,
            cancels_at_start: 0,
            poisoned: Cell::new(false),
        };
        assert_eq!(replica.cursor().unwrap(), 0);
        assert!(!replica.cancelled());
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = open.store.lock();
            panic!("a call panicked while holding the store");
        }));
        assert!(matches!(
            replica.outbox(1),
            Err(agent_core::Error::Interrupted)
        ));
        assert!(replica.poisoned.get());
        // A cancel after the start is seen; the count only grows.
        open.cancels.fetch_add(1, Ordering::SeqCst);
        assert!(replica.cancelled());
    }
}
