//! A host that is not C: examples/python/village.py loads libdaiban.so with ctypes and drives
//! it as an Android app does through JNA (threads included), checking every status it meets.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{have, library_dir, repo_root};

#[test]
fn the_python_host_runs() {
    if !have("python3") {
        assert!(
            std::env::var_os("DAIBAN_REQUIRE_PYTHON").is_none(),
            "python3 is required (DAIBAN_REQUIRE_PYTHON is set) but not installed"
        );
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let store_dir = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg(repo_root().join("examples/python/village.py"))
        .arg(library_dir().join("libdaiban.so"))
        .arg(store_dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!(
        "{}\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(stdout.contains("PASS: 0 unexpected result(s)"), "{text}");
    assert!(
        stdout.contains("registered 12 tickets from 4 threads"),
        "{text}"
    );
}
