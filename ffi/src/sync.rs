//! Enrollment with the township server, sync through a store handle, and the sync status.
//!
//! A sync takes the handle's store lock once per short step (each a transaction of its own,
//! see agent-core's `Replica`), never across a network round trip: while it waits for the
//! server, the app's other calls on the same handle (a search on the UI thread) run.
//! Enrollment is once per device and holds the handle for its one request.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use agent_core::crypto::identity::SigningKey;
use agent_core::store::{Store, SyncOutcome, TicketSummary};
use agent_core::sync::client::{sync_with, wipe_if_revoked, Endpoint, Replica, SyncReport, Upload};
use agent_core::sync::wire::{DocChanges, Peer, SharedDoc};

use crate::boundary::{call, give_string, non_null, text, to_json, Failure};
use crate::status::daiban_status::{self, *};
use crate::store::{daiban_store, live, poisoned, with_store, Open};

/// Called by `daiban_store_sync_progress` and `daiban_store_sync_tls` after every round trip
/// with the host's `user_data` and the running report as JSON (`{"rounds", "uploaded",
/// "refused", "downloaded", "shared", "failed", "bytes_up", "bytes_down"}`). `report_json`
/// is valid only during the call: copy what you need. NULL means no callback.
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

    fn signing_key(&mut self) -> agent_core::Result<SigningKey> {
        self.step(Store::sync_key)
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

/// What a revoked device's sync writes to `report_json_out`.
#[derive(serde::Serialize)]
struct Revocation {
    /// Always true: tells this object from a sync report.
    revoked: bool,
    /// The server's reason.
    reason: String,
    /// What `daiban_last_error_message` says (Chinese, the list included).
    message: String,
    /// The tickets the township never received, as search rows (masked).
    unsynced: Vec<TicketSummary>,
}

/// A sync that did not finish: why, and for a revoked device what the host is to show.
struct Unfinished {
    failure: Failure,
    revocation: Option<Revocation>,
}

impl From<Failure> for Unfinished {
    fn from(failure: Failure) -> Self {
        Unfinished {
            failure,
            revocation: None,
        }
    }
}

impl From<agent_core::Error> for Unfinished {
    fn from(e: agent_core::Error) -> Self {
        let revoked = match &e {
            agent_core::Error::Revoked { reason, unsynced } => {
                Some((reason.clone(), unsynced.clone()))
            }
            _ => None,
        };
        let failure = Failure::from(e);
        Unfinished {
            revocation: revoked.map(|(reason, unsynced)| Revocation {
                revoked: true,
                reason,
                message: failure.message.clone(),
                unsynced,
            }),
            failure,
        }
    }
}

/// Run one sync on the handle and record how it ended in the store.
fn sync(
    store: *const daiban_store,
    server: Endpoint<'_>,
    progress: daiban_sync_progress,
    user_data: *mut c_void,
) -> Result<SyncReport, Unfinished> {
    if IN_PROGRESS_CALLBACK.with(Cell::get) {
        return Err(Failure::new(
            DAIBAN_SYNC,
            "不能在同步进度回调中再次同步（调用方程序错误）",
        )
        .into());
    }
    let open = live(store)?;
    // One sync per handle at a time; the lock guards no data, so a panic does not spoil it.
    let _one_sync = open.syncing.lock().unwrap_or_else(PoisonError::into_inner);
    let cancels_at_start = open.cancels.load(Ordering::SeqCst);
    // Cancels made before this sync do not stop it; the store's flag is what its own long
    // steps (a new calendar from the server) check.
    open.store.lock().map_err(|_| poisoned())?.reset_interrupt();
    let mut last = SyncReport::default();
    let result = exchange(
        &open,
        cancels_at_start,
        server,
        progress,
        user_data,
        &mut last,
    );
    let outcome = match &result {
        Ok(_) => SyncOutcome::Ok,
        Err(u) if u.failure.status == DAIBAN_INTERRUPTED => SyncOutcome::Interrupted,
        Err(_) => SyncOutcome::Failed,
    };
    let (report, message) = match &result {
        Ok(report) => (report, None),
        Err(u) => (&last, Some(u.failure.message.as_str())),
    };
    // Best effort: the sync's own status is what the host must see, and a store that
    // cannot write this will say so on the next call.
    if let Ok(mut s) = open.store.lock() {
        let _ = s.record_sync(outcome, report, message);
    }
    result
}

/// The sync itself, once the store is ready: the round trips (`last` keeps the report of
/// the last one completed), and a revoked device's wipe.
fn exchange(
    open: &Open,
    cancels_at_start: u64,
    server: Endpoint<'_>,
    progress: daiban_sync_progress,
    user_data: *mut c_void,
    last: &mut SyncReport,
) -> Result<SyncReport, Unfinished> {
    let mut replica = Stepwise {
        open,
        cancels_at_start,
        poisoned: Cell::new(false),
    };
    let mut on_round = |report: &SyncReport| {
        *last = report.clone();
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
    let result = sync_with(&mut replica, server, &mut on_round);
    if replica.poisoned.get() {
        return Err(poisoned().into());
    }
    match result {
        // The township revoked this device: wipe the store now, listing what it never
        // received (as agent-core's `sync_now` does).
        Err(e @ agent_core::Error::Revoked { .. }) => {
            let mut s = open.store.lock().map_err(|_| poisoned())?;
            Ok(wipe_if_revoked(&mut s, Err(e))?)
        }
        other => Ok(other?),
    }
}

/// A nullable PEM argument as bytes.
///
/// # Safety
/// As for [`text`], except that NULL is `None`.
unsafe fn ca_arg<'a>(ca_pem: *const c_char) -> Result<Option<&'a [u8]>, Failure> {
    if ca_pem.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL; NUL-terminated and live for the call by the caller's contract.
    Ok(Some(unsafe { text(ca_pem, "ca_pem") }?.as_bytes()))
}

/// What `daiban_store_enroll` hands the host.
#[derive(serde::Serialize)]
struct EnrolledAs<'a> {
    township: &'a str,
    point: u32,
    device: u32,
}

/// Enroll this device with its township server at `base_url`, using the one-time code the
/// township admin issued for this point and device (`sync-server enroll-code --point P
/// --device D` prints `enrollment code: 7KQM-X2PA-9DHT`; case, spaces and dashes do not
/// matter). Once per device, before its first sync: it makes the device's signing key (kept
/// sealed in the store) and registers it, so the township accepts this device's syncs.
///
/// `ca_pem`: NULL for an `http://` server; for `https://`, the township's CA certificate
/// (PEM text, `ca.pem` from `sync-server make-cert`): the server's certificate must chain to
/// it (no system roots are used).
///
/// On success `*enrolled_json_out` is `{"township": "<township code>", "point", "device"}`
/// (free it with `daiban_string_free`). A lost answer is safe to retry with the same code;
/// a code already used by another device, expired, or issued for another point or device
/// is refused.
///
/// Blocking, one request (up to a few minutes on a bad link), holding the handle: other
/// calls on it wait, and `daiban_store_cancel` does not stop it.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INVALID_UTF8`,
/// `DAIBAN_SYNC` (no link, or the server refused the code; the message says which),
/// `DAIBAN_REVOKED` (this store was wiped), `DAIBAN_DATABASE`, `DAIBAN_POISONED`,
/// `DAIBAN_PANIC`.
///
/// # Safety
/// `base_url` and `code` are NULL or NUL-terminated strings; `ca_pem` is NULL or a
/// NUL-terminated string; `enrolled_json_out` is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_enroll(
    store: *mut daiban_store,
    base_url: *const c_char,
    ca_pem: *const c_char,
    code: *const c_char,
    enrolled_json_out: *mut *mut c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        non_null(base_url, "base_url")?;
        non_null(code, "code")?;
        non_null(enrolled_json_out, "enrolled_json_out")?;
        // SAFETY: NUL-terminated and live for the call by the contract above.
        let url = unsafe { text(base_url, "base_url") }?;
        // SAFETY: as for `base_url`.
        let code = unsafe { text(code, "code") }?;
        // SAFETY: NULL or as for `base_url`.
        let ca_pem = unsafe { ca_arg(ca_pem) }?;
        let server = Endpoint { url, ca_pem };
        let json = with_store(store, |s| {
            let enrolled =
                agent_core::sync::enroll::enroll(s, server, code).map_err(|e| match e {
                    // Not a sync, though the same exchange with the same server.
                    agent_core::Error::Sync(why) => {
                        Failure::new(DAIBAN_SYNC, format!("注册失败：{why}"))
                    }
                    e => Failure::from(e),
                })?;
            to_json(&EnrolledAs {
                township: &enrolled.township,
                point: s.point(),
                device: s.device(),
            })
        })?;
        // SAFETY: non-NULL and writable by the contract above.
        unsafe { give_string(enrolled_json_out, json) }
    })
}

/// Sync with the township server at `base_url` (e.g. "http://10.0.0.2:8700"): uploads
/// what the server lacks, applies what it sends, in as few round trips as the data needs.
/// Blocking. The same as `daiban_store_sync_tls` with no CA and no callback; see there. An
/// `https://` server needs `daiban_store_sync_tls` and its CA.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INVALID_UTF8`,
/// `DAIBAN_SYNC` (no link or the server refused; sync again later), `DAIBAN_NOT_ENROLLED`,
/// `DAIBAN_REVOKED` (the store was wiped; `*report_json_out` lists what was lost, see
/// `daiban_store_sync_tls`), `DAIBAN_INTERRUPTED`, `DAIBAN_CORRUPT_DOCUMENT`,
/// `DAIBAN_DATABASE`, `DAIBAN_POISONED`, `DAIBAN_PANIC`.
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
    // SAFETY: forwarded contract; no CA, no callback.
    unsafe {
        daiban_store_sync_tls(
            store,
            base_url,
            std::ptr::null(),
            None,
            std::ptr::null_mut(),
            report_json_out,
        )
    }
}

/// Sync with the township server at `base_url` (an `http://` server), calling `progress`
/// after every round trip: `daiban_store_sync_tls` with `ca_pem` NULL; see there for the
/// callback, the report, cancelling, threads and revocation.
///
/// Returns as `daiban_store_sync_tls`.
///
/// # Safety
/// As for `daiban_store_sync_tls`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_sync_progress(
    store: *mut daiban_store,
    base_url: *const c_char,
    progress: daiban_sync_progress,
    user_data: *mut c_void,
    report_json_out: *mut *mut c_char,
) -> daiban_status {
    // SAFETY: forwarded contract; no CA.
    unsafe {
        daiban_store_sync_tls(
            store,
            base_url,
            std::ptr::null(),
            progress,
            user_data,
            report_json_out,
        )
    }
}

/// Sync with the township server at `base_url` (e.g. "https://10.0.0.2:8700"), calling
/// `progress` after every round trip. Uploads what the server lacks and applies what it
/// sends, in as few round trips as the data needs; blocking. The device must be enrolled
/// (`daiban_store_enroll`) first; every request is signed with its key.
///
/// `ca_pem`: NULL for an `http://` server; for `https://`, the township's CA certificate
/// (PEM text): the server's certificate must chain to it (no system roots are used).
/// An `https://` URL without a CA, or a CA with an `http://` URL, is refused before anything
/// is sent (`DAIBAN_SYNC`); so is a server whose certificate does not chain to the CA.
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
/// Revocation: when the township has revoked this device (lost, replaced), the store is
/// wiped (every ticket and the device key deleted) and the call returns `DAIBAN_REVOKED`.
/// This is the one failure that writes `*report_json_out` (free it): `{"revoked": true,
/// "reason": "<the server's>", "message": "<as daiban_last_error_message>", "unsynced":
/// [<rows as daiban_store_search returns them, masked>]}`, the tickets the township never
/// received, for the agent to redo there. The wiped store refuses further work with
/// `DAIBAN_REVOKED` (a later sync writes the same object with an empty list).
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INVALID_UTF8`,
/// `DAIBAN_SYNC` (no link or the server refused; sync again later; also a sync started from a
/// progress callback, and TLS set-up or certificate failures), `DAIBAN_NOT_ENROLLED` (nothing
/// was sent), `DAIBAN_REVOKED`, `DAIBAN_INTERRUPTED`, `DAIBAN_CORRUPT_DOCUMENT`,
/// `DAIBAN_DATABASE`, `DAIBAN_POISONED`, `DAIBAN_PANIC`.
///
/// # Safety
/// `base_url` is NULL or a NUL-terminated string; `ca_pem` is NULL or a NUL-terminated
/// string; `progress` is NULL or a function with the `daiban_sync_progress` signature;
/// `user_data` is passed to it untouched (never read by the library); `report_json_out` is
/// NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_sync_tls(
    store: *mut daiban_store,
    base_url: *const c_char,
    ca_pem: *const c_char,
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
        // SAFETY: NULL or as for `base_url`.
        let ca_pem = unsafe { ca_arg(ca_pem) }?;
        match sync(store, Endpoint { url, ca_pem }, progress, user_data) {
            Ok(report) => {
                let json = to_json(&report)?;
                // SAFETY: non-NULL and writable by the contract above.
                unsafe { give_string(report_json_out, json) }
            }
            Err(Unfinished {
                failure,
                revocation,
            }) => {
                // A revoked device's list goes out with the failure (serializing plain rows
                // does not fail; if it did, the status and message still say it all).
                if let Some(json) = revocation.and_then(|r| to_json(&r).ok()) {
                    // SAFETY: non-NULL and writable by the contract above.
                    let _ = unsafe { give_string(report_json_out, json) };
                }
                Err(failure)
            }
        }
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
