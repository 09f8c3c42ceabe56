//! Helpers for driving the C ABI from Rust tests exactly as a host would: raw pointers in,
//! status codes and library-owned strings out.
#![allow(dead_code, unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::ptr;

use agent_core::domain::catalog::Catalog;
pub use daiban::daiban_status::{self, *};
use daiban::*;

pub const KEY: [u8; 32] = [7; 32];

/// A value no call ever writes, to check out-parameters stay untouched on failure.
pub fn sentinel<T>() -> *mut T {
    0x5a5a_5a5a_usize as *mut T
}

pub fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Open (or create) a store at `path` with `key`; panics unless DAIBAN_OK.
pub fn open_with(path: &Path, key: &[u8]) -> *mut daiban_store {
    let mut store = ptr::null_mut();
    let st = try_open(path, key, &mut store);
    assert_eq!(st, DAIBAN_OK, "{}", last_error().unwrap_or_default());
    assert!(!store.is_null());
    store
}

pub fn open(path: &Path) -> *mut daiban_store {
    open_with(path, &KEY)
}

pub fn try_open(path: &Path, key: &[u8], out: *mut *mut daiban_store) -> daiban_status {
    let p = c(path.to_str().unwrap());
    unsafe {
        daiban_store_open(
            p.as_ptr(),
            key.as_ptr(),
            key.len(),
            101,
            1,
            c"李代理".as_ptr(),
            out,
        )
    }
}

/// Copy a library string and free it (checking the free succeeds).
pub fn take(s: *mut c_char) -> String {
    assert!(!s.is_null());
    let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_owned();
    assert_eq!(unsafe { daiban_string_free(s) }, DAIBAN_OK);
    text
}

/// The calling thread's last error message, if any.
pub fn last_error() -> Option<String> {
    let m = daiban_last_error_message();
    (!m.is_null()).then(|| take(m))
}

/// Run a call with one `char **` out-parameter, returning the status and the string on
/// success; on failure checks the out-parameter was left alone.
pub fn out_string(f: impl FnOnce(*mut *mut c_char) -> daiban_status) -> (daiban_status, String) {
    let mut out: *mut c_char = sentinel();
    let st = f(&mut out);
    if st == DAIBAN_OK {
        (st, take(out))
    } else {
        assert_eq!(out, sentinel(), "out-parameter written on failure ({st:?})");
        (st, last_error().unwrap_or_default())
    }
}

/// `n` valid registration forms as JSON (deterministic demo data).
pub fn forms(seed: u64, n: usize) -> Vec<CString> {
    agent_core::demo::forms(seed, n, &Catalog::demo())
        .iter()
        .map(|f| c(&serde_json::to_string(f).unwrap()))
        .collect()
}

pub fn register(store: *mut daiban_store, form: &CStr) -> (daiban_status, String) {
    out_string(|out| unsafe { daiban_store_register(store, form.as_ptr(), out) })
}

/// Register and return the new ticket's number.
pub fn register_ok(store: *mut daiban_store, form: &CStr) -> String {
    let (st, json) = register(store, form);
    assert_eq!(st, DAIBAN_OK, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["view"]["ticket"]["number"].as_str().unwrap().to_owned()
}

/// Enroll through the C ABI, as a host does: the township at `url` (with its CA, PEM, for
/// `https://`) and the one-time code its admin issued.
pub fn enroll(
    store: *mut daiban_store,
    url: &str,
    ca_pem: Option<&str>,
    code: &str,
) -> (daiban_status, String) {
    let (url, code) = (c(url), c(code));
    let ca = ca_pem.map(c);
    let ca_ptr = ca.as_ref().map_or(ptr::null(), |c| c.as_ptr());
    out_string(|out| unsafe {
        daiban_store_enroll(store, url.as_ptr(), ca_ptr, code.as_ptr(), out)
    })
}

pub fn search(store: *mut daiban_store, query: &str) -> (daiban_status, String) {
    let q = c(query);
    out_string(|out| unsafe { daiban_store_search(store, q.as_ptr(), out) })
}

pub fn total(store: *mut daiban_store) -> u64 {
    let (st, page) = search(store, r#"{"page_size": 1}"#);
    assert_eq!(st, DAIBAN_OK, "{page}");
    serde_json::from_str::<serde_json::Value>(&page).unwrap()["total"]
        .as_u64()
        .unwrap()
}

/// The directory holding the `libdaiban.so` / `libdaiban.a` built for this test run.
///
/// Cargo builds the library's crate types next to the test binaries (`target/<profile>/deps`)
/// when it builds the tests; `cargo build` also copies them up to `target/<profile>`. The
/// newest copy wins, so a stale one from an earlier build is never used.
pub fn library_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    let candidates = [deps.clone(), deps.parent().unwrap().to_path_buf()];
    let newest = candidates
        .iter()
        .filter_map(|d| {
            let so = d.join("libdaiban.so");
            let t = std::fs::metadata(&so).ok()?.modified().ok()?;
            Some((t, d.clone()))
        })
        .max();
    match newest {
        Some((_, dir)) => dir,
        None => panic!(
            "libdaiban.so not found next to {} (run `cargo build -p daiban-ffi`)",
            exe.display()
        ),
    }
}

/// The repository root.
pub fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
