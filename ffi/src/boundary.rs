//! The boundary itself: panics stop here, arguments are checked here, strings cross here,
//! and the per-thread last error lives here.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::{c_char, CStr, CString};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::status::daiban_status::{self, *};

/// Why a call failed: a code and a message for `daiban_last_error_message`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: daiban_status,
    pub message: String,
}

impl Failure {
    pub fn new(status: daiban_status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A NULL where a pointer was required; `arg` is the parameter's name in the header.
    pub fn null(arg: &str) -> Self {
        Self::new(DAIBAN_NULL_ARGUMENT, format!("参数 {arg} 为 NULL"))
    }
}

impl From<agent_core::Error> for Failure {
    fn from(e: agent_core::Error) -> Self {
        crate::status::from_core(e)
    }
}

thread_local! {
    /// The message of the last failed call on this thread.
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn set_last_error(message: String) {
    // try_with / try_borrow_mut: never panic, even while the thread is being torn down.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = Some(message);
        }
    });
}

pub(crate) fn last_error() -> Option<String> {
    LAST_ERROR
        .try_with(|slot| slot.try_borrow().ok().and_then(|s| s.clone()))
        .ok()
        .flatten()
}

/// Run the body of an entry point: catch any panic, turn the result into a status, and
/// record a failure's message for this thread. Every `daiban_*` function that returns a status goes
/// through here, so no panic ever unwinds into the host.
pub(crate) fn call(body: impl FnOnce() -> Result<(), Failure>) -> daiban_status {
    let (status, message) = match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return DAIBAN_OK,
        Ok(Err(f)) => (f.status, f.message),
        Err(payload) => {
            // The payload may quote data; it is dropped, never shown. Dropping a payload can
            // itself panic (a Drop impl that panics), so that is caught too.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
            (DAIBAN_PANIC, DAIBAN_PANIC.message().to_owned())
        }
    };
    // Only failures write the message (like errno), so freeing strings or other successful
    // calls between a failure and reading its message do not lose it.
    set_last_error(message);
    status
}

/// Lock a registry even if a thread panicked while holding it (its maps stay consistent:
/// every update is a single insert or remove).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Fail with `DAIBAN_NULL_ARGUMENT` if `p` is NULL.
pub(crate) fn non_null<T>(p: *const T, arg: &str) -> Result<(), Failure> {
    if p.is_null() {
        Err(Failure::null(arg))
    } else {
        Ok(())
    }
}

/// Borrow a NUL-terminated UTF-8 argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid and unchanged for the
/// duration of the call (the header says so for every `const char *` parameter).
pub(crate) unsafe fn text<'a>(p: *const c_char, arg: &str) -> Result<&'a str, Failure> {
    non_null(p, arg)?;
    // SAFETY: non-NULL, and by the caller's contract NUL-terminated and live for the call.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|e| {
        Failure::new(
            DAIBAN_INVALID_UTF8,
            format!(
                "参数 {arg} 不是有效的 UTF-8 文本（第{}字节起）",
                e.valid_up_to() + 1
            ),
        )
    })
}

/// Parse a JSON argument into `T`; malformed or ill-shaped JSON is `DAIBAN_INVALID_JSON`.
pub(crate) fn json_arg<T: serde::de::DeserializeOwned>(s: &str, arg: &str) -> Result<T, Failure> {
    serde_json::from_str(s).map_err(|e| crate::status::json_failure(arg, &e))
}

/// Serialize a result for the host.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string(v).map_err(|_| {
        Failure::new(
            DAIBAN_INTERNAL,
            "结果无法转换为 JSON（程序内部错误）".to_owned(),
        )
    })
}

/// Strings handed to the host and not yet freed: address → length of the allocation.
/// Knowing the length, `daiban_string_free` releases exactly what was allocated even if the
/// host wrote into the buffer; an address not in the map is refused, not freed.
static STRINGS: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

/// Give `s` to the host through `out` (checked non-NULL by the caller). This is the last
/// step of a call, so `out` is written only on success.
///
/// # Safety
/// `out` is non-NULL and points to a writable `char *`.
pub(crate) unsafe fn give_string(out: *mut *mut c_char, s: String) -> Result<(), Failure> {
    let bytes = CString::new(s)
        .map_err(|_| Failure::new(DAIBAN_INTERNAL, "结果文本中含有 NUL 字符（程序内部错误）"))?
        .into_bytes_with_nul()
        .into_boxed_slice();
    let len = bytes.len();
    let p = Box::into_raw(bytes).cast::<c_char>();
    lock(&STRINGS).insert(p as usize, len);
    // SAFETY: `out` is non-NULL and writable by the caller's contract.
    unsafe { out.write(p) };
    Ok(())
}

/// Release a string from `give_string`, or refuse one we did not hand out (or already freed).
pub(crate) fn free_string(p: *mut c_char) -> Result<(), Failure> {
    if p.is_null() {
        return Ok(());
    }
    let Some(len) = lock(&STRINGS).remove(&(p as usize)) else {
        return Err(Failure::new(
            DAIBAN_INVALID_STRING,
            "daiban_string_free：该字符串不是本库返回的，或已释放过（未做任何操作）",
        ));
    };
    // SAFETY: `p` came from `Box::into_raw` of a `Box<[u8]>` of exactly `len` bytes in
    // `give_string`, and was still registered, so it has not been freed; removing it from the
    // registry under the lock means no other call frees it again.
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p.cast::<u8>(), len)) });
    Ok(())
}

/// A NUL-terminated copy of `s` owned by the host, or NULL if it cannot be made.
pub(crate) fn owned_c_string(s: String) -> *mut c_char {
    let mut out: *mut c_char = ptr::null_mut();
    // SAFETY: `out` is a local, writable `*mut c_char`.
    match unsafe { give_string(&mut out, s) } {
        Ok(()) => out,
        Err(_) => ptr::null_mut(),
    }
}

/// Whether a returned string is still live (tests).
#[doc(hidden)]
pub fn live_strings() -> usize {
    lock(&STRINGS).len()
}
