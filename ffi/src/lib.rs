//! The C ABI of Daiban's agent-core, for the tablet apps counties commission
//! (`libdaiban.so`, `libdaiban.a`, header `include/daiban.h`). It converts and forwards;
//! every rule about tickets lives in agent-core.
//!
//! Conventions (repeated at the top of the header, which is what host developers read):
//!
//! - Fallible calls return a [`daiban_status`]: 0 is success; numbers are never reused.
//!   Out-parameters are written only on success (one exception: a sync returning
//!   `DAIBAN_REVOKED` hands over what the wiped store lost). The detailed message of the last
//!   failed call on the calling thread comes from `daiban_last_error_message`.
//! - Every pointer argument is checked for NULL; text is NUL-terminated UTF-8; tickets,
//!   queries and results are UTF-8 JSON.
//! - Everything the library allocates has an explicit free: strings `daiban_string_free`,
//!   stores `daiban_store_free`. Static strings (`daiban_version`, `daiban_status_message`)
//!   are never freed.
//! - No panic crosses the boundary: each entry point catches unwinding and returns
//!   `DAIBAN_PANIC` (the library must be built with `panic = "unwind"`, the default).
//! - Threads: one store handle may be used from many threads at once; calls on it are
//!   serialized, except that a sync holds the handle only for its short local steps, never
//!   while it waits for the server; `daiban_store_cancel` works from any thread while a call
//!   runs.
//! - A device enrolls once with its township (`daiban_store_enroll`) before it syncs; every
//!   sync request is signed with the device's key; `https://` needs the township's CA pinned.

// The C ABI is raw pointers by nature. Unsafe code is confined to reading arguments and
// writing out-parameters; each block is small and carries a SAFETY note.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

mod boundary;
mod status;
mod store;
mod sync;

use std::ffi::c_char;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

pub use boundary::live_strings;
pub use status::daiban_status;
pub use store::*;
pub use sync::*;

use boundary::{call, free_string, owned_c_string};

/// The library version ("0.1.0"), a static string: never free it.
#[no_mangle]
pub extern "C" fn daiban_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// What a status code means, in Chinese: a static string, never free it. Numbers this
/// version does not know give "未知状态码".
#[no_mangle]
pub extern "C" fn daiban_status_message(status: u32) -> *const c_char {
    daiban_status::from_u32(status)
        .map_or("未知状态码\0", daiban_status::message_c)
        .as_ptr()
        .cast()
}

/// The detailed message of the most recent failed call on the calling thread (Chinese for
/// everything an agent can fix; never an ID number, phone or name), or NULL if no call has
/// failed on this thread. Successful calls leave it alone, so read it right after the
/// failure. The result is a new string: free it with `daiban_string_free`.
#[no_mangle]
pub extern "C" fn daiban_last_error_message() -> *mut c_char {
    panic::catch_unwind(AssertUnwindSafe(|| {
        boundary::last_error().map_or(ptr::null_mut(), owned_c_string)
    }))
    .unwrap_or(ptr::null_mut())
}

/// Free a string this library returned through a `char **` out-parameter or
/// `daiban_last_error_message`. NULL is accepted and does nothing.
///
/// Returns `DAIBAN_OK`, or `DAIBAN_INVALID_STRING` (nothing is freed) for a pointer this
/// library did not return or already freed: a double free is caught as long as the address
/// has not been handed out again since.
///
/// # Safety
/// Any pointer value is accepted; it is only looked up, and freed only if this library
/// returned it and it is still live.
#[no_mangle]
pub unsafe extern "C" fn daiban_string_free(s: *mut c_char) -> daiban_status {
    call(|| free_string(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn a_panicking_body_becomes_a_status() {
        let st = call(|| panic!("a value that must not be shown: 110101199003071234"));
        assert_eq!(st, daiban_status::DAIBAN_PANIC);
        let m = boundary::last_error().unwrap();
        assert!(!m.contains("1101"), "{m}");
    }

    #[test]
    fn static_strings() {
        let v = unsafe { CStr::from_ptr(daiban_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        let m = unsafe { CStr::from_ptr(daiban_status_message(205)) };
        assert_eq!(m.to_str().unwrap(), "操作已取消");
        let m = unsafe { CStr::from_ptr(daiban_status_message(12345)) };
        assert_eq!(m.to_str().unwrap(), "未知状态码");
    }
}
