//! The store handle and every call a village point makes on it.

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use agent_core::crypto::{StoreKey, KEY_LEN};
use agent_core::domain::calendar::Calendar;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::event::EventDraft;
use agent_core::domain::number::TicketNumber;
use agent_core::domain::receipt::receipt_text;
use agent_core::domain::ticket::NewTicket;
use agent_core::store::{Query, Store, StoreOptions};

use crate::boundary::{call, give_string, json_arg, non_null, text, to_json, Failure};
use crate::status::daiban_status::{self, *};

/// Length in bytes of the key the host supplies to `daiban_store_open`.
pub const DAIBAN_KEY_LEN: usize = 32;
// A literal above, so the header gets a number; it must stay agent-core's key length.
const _: () = assert!(DAIBAN_KEY_LEN == KEY_LEN);

/// An open store (one SQLite file per tablet), as the host holds it: an opaque pointer made
/// by `daiban_store_open` and released by `daiban_store_free`.
///
/// The library never reads through a store pointer the host passes in: the address is only
/// looked up in a registry of handles. A freed (or made-up) pointer is therefore always
/// refused with `DAIBAN_INVALID_HANDLE`, never dereferenced. Addresses are never reused
/// within a process (a few bytes per `daiban_store_open` stay reserved until exit).
#[allow(non_camel_case_types)]
pub struct daiban_store {
    /// Gives the allocation a size, so every handle has its own address.
    _address: u8,
}

/// What a live handle holds. The interrupt handle sits outside the lock, so a cancel from
/// another thread reaches the call that is holding it.
pub(crate) struct Open {
    pub(crate) store: Mutex<Store>,
    pub(crate) interrupt: agent_core::store::Interrupter,
    /// How many times `daiban_store_cancel` was called on the handle. A sync, which holds
    /// `store` only per step, compares it with the count it started with; no other call can
    /// reset it (as any cancellable call resets the store's own flag).
    pub(crate) cancels: AtomicU64,
    /// Held for a whole sync, so two syncs on one handle run one after the other.
    pub(crate) syncing: Mutex<()>,
}

struct Slot {
    /// Owns the handle's address for the life of the process.
    _address: Box<daiban_store>,
    /// `None` once freed.
    open: Option<Arc<Open>>,
}

/// Every handle ever made in this process, by address.
static STORES: Mutex<BTreeMap<usize, Slot>> = Mutex::new(BTreeMap::new());

fn stores() -> MutexGuard<'static, BTreeMap<usize, Slot>> {
    // Each update is one insert or one field write: consistent even after a panic.
    STORES.lock().unwrap_or_else(PoisonError::into_inner)
}

fn add_handle(open: Open) -> *mut daiban_store {
    let address = Box::new(daiban_store { _address: 0 });
    let p = ptr::from_ref::<daiban_store>(address.as_ref()).cast_mut();
    stores().insert(
        p as usize,
        Slot {
            _address: address,
            open: Some(Arc::new(open)),
        },
    );
    p
}

/// The open store behind a handle. The `Arc` keeps it alive for this call even if another
/// thread frees the handle meanwhile.
pub(crate) fn live(store: *const daiban_store) -> Result<Arc<Open>, Failure> {
    non_null(store, "store")?;
    match stores().get(&(store as usize)) {
        Some(Slot {
            open: Some(open), ..
        }) => Ok(Arc::clone(open)),
        Some(_) => Err(Failure::new(
            DAIBAN_INVALID_HANDLE,
            "该句柄已由 daiban_store_free 释放，不能再使用",
        )),
        None => Err(Failure::new(
            DAIBAN_INVALID_HANDLE,
            "该指针不是 daiban_store_open 返回的句柄",
        )),
    }
}

/// Run `f` on the store, holding its lock: calls on one handle are serialized.
pub(crate) fn with_store<T>(
    store: *const daiban_store,
    f: impl FnOnce(&mut Store) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let open = live(store)?;
    let mut guard = open.store.lock().map_err(|_| poisoned())?;
    f(&mut guard)
}

/// An earlier call panicked while holding the store.
pub(crate) fn poisoned() -> Failure {
    Failure::new(DAIBAN_POISONED, DAIBAN_POISONED.message())
}

/// A ticket number argument.
///
/// # Safety
/// As for [`text`].
unsafe fn number_arg(p: *const c_char) -> Result<TicketNumber, Failure> {
    // SAFETY: forwarded contract.
    let s = unsafe { text(p, "number") }?;
    Ok(TicketNumber::parse(s).map_err(agent_core::Error::from)?)
}

/// Open (or create) the store file at `path`, sealed with the host's key.
///
/// - `path`: UTF-8 file path; the file and its `-wal`/`-shm` companions are created if absent.
/// - `key`, `key_len`: the host's secret key, exactly `DAIBAN_KEY_LEN` (32) bytes (for example
///   from the Android keystore). Copied; the host keeps ownership of its buffer.
/// - `point`, `device`: this tablet's point and device numbers (used when the store is created;
///   an existing store keeps the numbers it was created with).
/// - `agent`: the agent working this device (UTF-8).
/// - `store_out`: receives the new handle on success; untouched on failure. Release it with
///   `daiban_store_free`.
///
/// Open one handle per file per process; share that handle between threads.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_UTF8`, `DAIBAN_KEY_LENGTH`,
/// `DAIBAN_WRONG_KEY` (nothing was changed), `DAIBAN_CORRUPT_DATABASE` (the damaged file was
/// moved aside; opening again starts an empty store), `DAIBAN_NEWER_DATABASE`,
/// `DAIBAN_DATABASE`, `DAIBAN_IO`, `DAIBAN_STORED_DATA`, `DAIBAN_PANIC`.
///
/// # Safety
/// `path` and `agent` are NULL or NUL-terminated strings; `key` is NULL or points to `key_len`
/// readable bytes; `store_out` is NULL or points to a writable `daiban_store *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_open(
    path: *const c_char,
    key: *const u8,
    key_len: usize,
    point: u32,
    device: u32,
    agent: *const c_char,
    store_out: *mut *mut daiban_store,
) -> daiban_status {
    call(|| {
        non_null(path, "path")?;
        non_null(key, "key")?;
        non_null(agent, "agent")?;
        non_null(store_out, "store_out")?;
        // SAFETY: non-NULL; NUL-terminated and live for the call by the contract above.
        let path = unsafe { text(path, "path") }?;
        // SAFETY: as for `path`.
        let agent = unsafe { text(agent, "agent") }?;
        if key_len != DAIBAN_KEY_LEN {
            return Err(Failure::new(
                DAIBAN_KEY_LENGTH,
                format!("密钥长度应为{DAIBAN_KEY_LEN}字节，现为{key_len}字节"),
            ));
        }
        // SAFETY: `key` is non-NULL and points to `key_len` (= DAIBAN_KEY_LEN) readable bytes.
        let key = unsafe { std::slice::from_raw_parts(key, DAIBAN_KEY_LEN) };
        let key = StoreKey::from_bytes(key).map_err(agent_core::Error::from)?;
        let store = Store::open(path, StoreOptions::new(key, point, device, agent))?;
        let interrupt = store.interrupter();
        let handle = add_handle(Open {
            store: Mutex::new(store),
            interrupt,
            cancels: AtomicU64::new(0),
            syncing: Mutex::new(()),
        });
        // SAFETY: `store_out` is non-NULL and writable by the contract above.
        unsafe { store_out.write(handle) };
        Ok(())
    })
}

/// Close the store and release the handle. After this returns, every call with the same
/// pointer (including a second `daiban_store_free`) returns `DAIBAN_INVALID_HANDLE` without
/// touching memory. A call already running on the handle in another thread finishes first
/// (the store is closed when the last such call returns).
///
/// Returns `DAIBAN_OK` (also for NULL, which does nothing), `DAIBAN_INVALID_HANDLE`,
/// `DAIBAN_PANIC`.
///
/// # Safety
/// Any pointer value is accepted; it is only compared, never dereferenced.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_free(store: *mut daiban_store) -> daiban_status {
    call(|| {
        if store.is_null() {
            return Ok(());
        }
        let open = match stores().get_mut(&(store as usize)) {
            Some(slot) => slot.open.take(),
            None => {
                return Err(Failure::new(
                    DAIBAN_INVALID_HANDLE,
                    "daiban_store_free：该指针不是 daiban_store_open 返回的句柄",
                ))
            }
        };
        match open {
            // Dropped outside the registry lock: closing SQLite may take a moment.
            Some(open) => {
                drop(open);
                Ok(())
            }
            None => Err(Failure::new(
                DAIBAN_INVALID_HANDLE,
                "daiban_store_free：该句柄已经释放过（重复释放已拦截）",
            )),
        }
    })
}

/// Cancel the call running on this handle, from any thread, without waiting for it. The
/// cancelled call returns `DAIBAN_INTERRUPTED` and changes nothing. Best effort: if no call
/// is running, or the running call is between database statements at that moment, nothing
/// happens and the call completes normally.
///
/// A sync (`daiban_store_sync`, `daiban_store_sync_progress`, `daiban_store_sync_tls`) stops
/// before its next round trip, keeping what was already exchanged; the round trip in flight
/// is not cut short. Other calls may run on the handle while a sync waits for the network: a
/// cancel reaches them too. A cancel made while no sync runs never stops a later one. An
/// enrollment (`daiban_store_enroll`) is not stopped.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_PANIC`.
///
/// # Safety
/// Any pointer value is accepted; it is only compared, never dereferenced.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_cancel(store: *mut daiban_store) -> daiban_status {
    call(|| {
        let open = live(store)?;
        open.cancels.fetch_add(1, Ordering::SeqCst);
        open.interrupt.interrupt();
        Ok(())
    })
}

/// Replace the service catalog (事项目录) with the one the district published, as JSON (the
/// shape of `agent-core/data/demo-catalog.json`). A new store starts with the demo catalog.
/// Tickets keep the item definition they were registered under.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INVALID_UTF8`,
/// `DAIBAN_INVALID_JSON` (not JSON at all), `DAIBAN_CATALOG` (JSON, but not a usable catalog;
/// the old one stays), `DAIBAN_INTERRUPTED`, `DAIBAN_DATABASE`, `DAIBAN_POISONED`, `DAIBAN_PANIC`.
///
/// # Safety
/// `catalog_json` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_set_catalog(
    store: *mut daiban_store,
    catalog_json: *const c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        // SAFETY: NUL-terminated and live for the call by the contract above.
        let json = unsafe { text(catalog_json, "catalog_json") }?;
        json_arg::<serde_json::Value>(json, "catalog_json")?;
        let catalog = Catalog::from_json(json).map_err(agent_core::Error::from)?;
        with_store(store, |s| Ok(s.set_catalog(catalog)?))
    })
}

/// The current catalog as JSON, in `*catalog_json_out` (free it with `daiban_string_free`).
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_POISONED`,
/// `DAIBAN_PANIC`.
///
/// # Safety
/// `catalog_json_out` is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_catalog(
    store: *mut daiban_store,
    catalog_json_out: *mut *mut c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        non_null(catalog_json_out, "catalog_json_out")?;
        let json = with_store(store, |s| to_json(s.catalog()))?;
        // SAFETY: non-NULL and writable by the contract above.
        unsafe { give_string(catalog_json_out, json) }
    })
}

/// Replace the working-day calendar (holidays and make-up working days) with CSV text
/// `date,kind,name` (the shape of `agent-core/data/calendar-cn.csv`). Every ticket's deadline
/// is recomputed, which takes a while on a large store: it can be cancelled.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INVALID_UTF8`,
/// `DAIBAN_CALENDAR` (the message gives the line; the old calendar stays),
/// `DAIBAN_INTERRUPTED`, `DAIBAN_DATABASE`, `DAIBAN_STORED_DATA`, `DAIBAN_POISONED`,
/// `DAIBAN_PANIC`.
///
/// # Safety
/// `calendar_csv` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_set_calendar(
    store: *mut daiban_store,
    calendar_csv: *const c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        // SAFETY: NUL-terminated and live for the call by the contract above.
        let csv = unsafe { text(calendar_csv, "calendar_csv") }?;
        let calendar = Calendar::parse_csv(csv).map_err(agent_core::Error::from)?;
        with_store(store, |s| Ok(s.set_calendar(calendar)?))
    })
}

/// The current calendar as CSV text, in `*calendar_csv_out` (free it with
/// `daiban_string_free`).
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_POISONED`,
/// `DAIBAN_PANIC`.
///
/// # Safety
/// `calendar_csv_out` is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_calendar(
    store: *mut daiban_store,
    calendar_csv_out: *mut *mut c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        non_null(calendar_csv_out, "calendar_csv_out")?;
        let csv = with_store(store, |s| Ok(s.calendar().to_csv()))?;
        // SAFETY: non-NULL and writable by the contract above.
        unsafe { give_string(calendar_csv_out, csv) }
    })
}

/// Register a new ticket (承办单) from the agent's form, offline; the ticket number is made
/// here.
///
/// `form_json`: `{"item_code", "applicant_name", "id_kind" (default "resident_id"),
/// "id_number", "phone", "village", "group", "address", "materials": [{"name", "received",
/// "copies"}], "fee_fen", "receipt_no", "remarks"}`. Text is NFKC-normalised (full-width
/// digits are fine). Materials not listed are missing.
///
/// `*registered_json_out` receives `{"view": <ticket view, as daiban_store_get>,
/// "warnings": [{"warning": "materials_missing" | "fee_differs" | "legacy_id_number", ...,
/// "message": "<Chinese text for the agent>"}]}`; free it with `daiban_string_free`.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INVALID_UTF8`,
/// `DAIBAN_INVALID_JSON`, `DAIBAN_FORM` (show the message to the agent), `DAIBAN_NUMBER` (the
/// device's numbers are out of range or used up), `DAIBAN_REVOKED` (the device was revoked
/// and its store wiped), `DAIBAN_INTERRUPTED`, `DAIBAN_DATABASE`, `DAIBAN_STORED_DATA`,
/// `DAIBAN_POISONED`, `DAIBAN_PANIC`.
///
/// # Safety
/// `form_json` is NULL or a NUL-terminated string; `registered_json_out` is NULL or points to
/// a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_register(
    store: *mut daiban_store,
    form_json: *const c_char,
    registered_json_out: *mut *mut c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        non_null(form_json, "form_json")?;
        non_null(registered_json_out, "registered_json_out")?;
        // SAFETY: NUL-terminated and live for the call by the contract above.
        let form: NewTicket = json_arg(unsafe { text(form_json, "form_json") }?, "form_json")?;
        let registered = with_store(store, |s| Ok(s.register(&form)?))?;
        let mut warnings = Vec::with_capacity(registered.warnings.len());
        for w in &registered.warnings {
            let mut v = serde_json::to_value(w).map_err(agent_core::Error::from)?;
            if let serde_json::Value::Object(map) = &mut v {
                map.insert("message".into(), w.message().into());
            }
            warnings.push(v);
        }
        let json = to_json(&serde_json::json!({
            "view": registered.view,
            "warnings": warnings,
        }))?;
        // SAFETY: non-NULL and writable by the contract above.
        unsafe { give_string(registered_json_out, json) }
    })
}

/// Record an event by this device's agent on ticket `number` (digits; spaces, dashes and
/// full-width digits are accepted).
///
/// `draft_json`: `{"kind": "supplement_provided" | "delivered" | "evaluated" | "withdrawn",
/// "note": "...", "payload": {...}}` (`note` and `payload` optional; `evaluated` takes
/// `{"score": 1..5}`). Events an agent may not record, or that do not fit the ticket's status,
/// are refused with the reason.
///
/// `*view_json_out` receives the ticket view after the event (as `daiban_store_get`); free it
/// with `daiban_string_free`.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INVALID_UTF8`,
/// `DAIBAN_INVALID_JSON`, `DAIBAN_NUMBER`, `DAIBAN_NOT_FOUND`, `DAIBAN_EVENT` (show the
/// message), `DAIBAN_REVOKED` (the store was wiped), `DAIBAN_INTERRUPTED`, `DAIBAN_DATABASE`,
/// `DAIBAN_STORED_DATA`, `DAIBAN_POISONED`, `DAIBAN_PANIC`.
///
/// # Safety
/// `number` and `draft_json` are NULL or NUL-terminated strings; `view_json_out` is NULL or
/// points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_append(
    store: *mut daiban_store,
    number: *const c_char,
    draft_json: *const c_char,
    view_json_out: *mut *mut c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        non_null(number, "number")?;
        non_null(draft_json, "draft_json")?;
        non_null(view_json_out, "view_json_out")?;
        // SAFETY: NUL-terminated and live for the call by the contract above.
        let number = unsafe { number_arg(number) }?;
        // SAFETY: as for `number`.
        let draft: EventDraft = json_arg(unsafe { text(draft_json, "draft_json") }?, "draft_json")?;
        let view = with_store(store, |s| Ok(s.append(&number, &draft)?))?;
        let json = to_json(&view)?;
        // SAFETY: non-NULL and writable by the contract above.
        unsafe { give_string(view_json_out, json) }
    })
}

/// One ticket with everything the app shows, as of today, in `*view_json_out` (free it with
/// `daiban_string_free`).
///
/// The view is `{"ticket": {number, item, applicant (full, unmasked: the app shows its own
/// data), materials, fee, agent, events, ...}, "life": {"status", "needs_review" (需核对),
/// "missing", "anomalies", ...}, "deadline": {"state", "due", "remaining", "light" ("green" |
/// "yellow" | "red" | null), "warning", ...}}`.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INVALID_UTF8`,
/// `DAIBAN_NUMBER`, `DAIBAN_NOT_FOUND`, `DAIBAN_CORRUPT_DOCUMENT` (quarantined),
/// `DAIBAN_INTERRUPTED`, `DAIBAN_DATABASE`, `DAIBAN_POISONED`, `DAIBAN_PANIC`.
///
/// # Safety
/// `number` is NULL or a NUL-terminated string; `view_json_out` is NULL or points to a
/// writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_get(
    store: *mut daiban_store,
    number: *const c_char,
    view_json_out: *mut *mut c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        non_null(number, "number")?;
        non_null(view_json_out, "view_json_out")?;
        // SAFETY: NUL-terminated and live for the call by the contract above.
        let number = unsafe { number_arg(number) }?;
        let view = with_store(store, |s| Ok(s.get(&number)?))?;
        let json = to_json(&view)?;
        // SAFETY: non-NULL and writable by the contract above.
        unsafe { give_string(view_json_out, json) }
    })
}

/// A page of tickets matching a query, in `*page_json_out` (free it with
/// `daiban_string_free`). Can be cancelled.
///
/// `query_json` (every field optional; `"{}"` lists everything, newest first):
/// `{"statuses": ["registered", ...], "item_code", "lights": ["red", "yellow", "green"],
/// "registered_from", "registered_to" ("YYYY-MM-DD"), "id_number", "phone", "name" (exact
/// matches), "needs_review": bool, "order": "newest" | "due", "page" (from 0), "page_size"
/// (1–200, 0 = 50)}`.
///
/// The page is `{"items": [{"number", "item_code", "item_name", "status", "status_label",
/// "needs_review", "registered_on", "due_on", "light", "remaining", "applicant", "id_number",
/// "phone", "village", "sync_state"}], "total", "page", "page_size"}`; names, ID numbers and
/// phones in rows are masked (张*三, 4310**********2220, 138****8000).
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INVALID_UTF8`,
/// `DAIBAN_INVALID_JSON`, `DAIBAN_INTERRUPTED`, `DAIBAN_DATABASE`, `DAIBAN_STORED_DATA`,
/// `DAIBAN_POISONED`, `DAIBAN_PANIC`.
///
/// # Safety
/// `query_json` is NULL or a NUL-terminated string; `page_json_out` is NULL or points to a
/// writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_search(
    store: *mut daiban_store,
    query_json: *const c_char,
    page_json_out: *mut *mut c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        non_null(query_json, "query_json")?;
        non_null(page_json_out, "page_json_out")?;
        // SAFETY: NUL-terminated and live for the call by the contract above.
        let query: Query = json_arg(unsafe { text(query_json, "query_json") }?, "query_json")?;
        let page = with_store(store, |s| Ok(s.search(&query)?))?;
        let json = to_json(&page)?;
        // SAFETY: non-NULL and writable by the contract above.
        unsafe { give_string(page_json_out, json) }
    })
}

/// What is due soon (yellow) or overdue (red), most urgent first: page `page` (from 0) of
/// 50, as `daiban_store_search` returns it, in `*page_json_out` (free it with
/// `daiban_string_free`). Can be cancelled.
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INTERRUPTED`,
/// `DAIBAN_DATABASE`, `DAIBAN_STORED_DATA`, `DAIBAN_POISONED`, `DAIBAN_PANIC`.
///
/// # Safety
/// `page_json_out` is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_due(
    store: *mut daiban_store,
    page: u32,
    page_json_out: *mut *mut c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        non_null(page_json_out, "page_json_out")?;
        let page = with_store(store, |s| Ok(s.due(page)?))?;
        let json = to_json(&page)?;
        // SAFETY: non-NULL and writable by the contract above.
        unsafe { give_string(page_json_out, json) }
    })
}

/// The printed receipt (承办单回执) for ticket `number`: plain UTF-8 text in Chinese, lines
/// ending in `\n`, ID number and phone masked, in `*receipt_text_out` (free it with
/// `daiban_string_free`).
///
/// Returns `DAIBAN_OK`, `DAIBAN_NULL_ARGUMENT`, `DAIBAN_INVALID_HANDLE`, `DAIBAN_INVALID_UTF8`,
/// `DAIBAN_NUMBER`, `DAIBAN_NOT_FOUND`, `DAIBAN_CORRUPT_DOCUMENT`, `DAIBAN_INTERRUPTED`,
/// `DAIBAN_DATABASE`, `DAIBAN_POISONED`, `DAIBAN_PANIC`.
///
/// # Safety
/// `number` is NULL or a NUL-terminated string; `receipt_text_out` is NULL or points to a
/// writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn daiban_store_receipt(
    store: *mut daiban_store,
    number: *const c_char,
    receipt_text_out: *mut *mut c_char,
) -> daiban_status {
    call(|| {
        non_null(store, "store")?;
        non_null(number, "number")?;
        non_null(receipt_text_out, "receipt_text_out")?;
        // SAFETY: NUL-terminated and live for the call by the contract above.
        let number = unsafe { number_arg(number) }?;
        let view = with_store(store, |s| Ok(s.get(&number)?))?;
        // SAFETY: non-NULL and writable by the contract above.
        unsafe { give_string(receipt_text_out, receipt_text(&view)) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_temp() -> (tempfile::TempDir, *mut daiban_store) {
        let dir = tempfile::tempdir().unwrap();
        let path = std::ffi::CString::new(dir.path().join("t.db").to_str().unwrap()).unwrap();
        let mut store = ptr::null_mut();
        let st = unsafe {
            daiban_store_open(
                path.as_ptr(),
                [7u8; 32].as_ptr(),
                32,
                101,
                1,
                c"agent".as_ptr(),
                &mut store,
            )
        };
        assert_eq!(st, DAIBAN_OK);
        (dir, store)
    }

    /// A panic inside a call is caught, reported as DAIBAN_PANIC, and leaves the handle
    /// poisoned (its store may be half-updated), not crashed; freeing it still works.
    #[test]
    fn panic_while_holding_the_store_poisons_the_handle() {
        let (_dir, store) = open_temp();
        let st = call(|| with_store(store, |_| -> Result<(), Failure> { panic!("boom") }));
        assert_eq!(st, DAIBAN_PANIC);
        let mut out = ptr::null_mut();
        assert_eq!(
            unsafe { daiban_store_get(store, c"999999999999".as_ptr(), &mut out) },
            DAIBAN_POISONED
        );
        // A sync stops before any network (the address would refuse it anyway), and the
        // status too.
        assert_eq!(
            unsafe { crate::daiban_store_sync(store, c"http://127.0.0.1:1".as_ptr(), &mut out) },
            DAIBAN_POISONED
        );
        assert_eq!(
            unsafe { crate::daiban_store_sync_status(store, &mut out) },
            DAIBAN_POISONED
        );
        assert!(out.is_null());
        assert_eq!(unsafe { daiban_store_free(store) }, DAIBAN_OK);
    }
}
