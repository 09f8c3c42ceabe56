//! A host that is not C: examples/python/village.py loads libdaiban.so with ctypes and drives
//! it as an Android app does through JNA (threads included), checking every status it meets;
//! offline, and enrolling and syncing with a real township server.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::Command;

use common::{have, library_dir, repo_root};

/// Whether python3 is there to run the example (else the test is skipped, unless
/// DAIBAN_REQUIRE_PYTHON is set).
fn python() -> bool {
    if have("python3") {
        return true;
    }
    assert!(
        std::env::var_os("DAIBAN_REQUIRE_PYTHON").is_none(),
        "python3 is required (DAIBAN_REQUIRE_PYTHON is set) but not installed"
    );
    eprintln!("SKIPPED: python3 is not installed");
    false
}

/// Run village.py with `args` after the library and the store directory; its stdout.
fn run_village(args: &[&str], env: &[(&str, &str)]) -> String {
    let store_dir = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg(repo_root().join("examples/python/village.py"))
        .arg(library_dir().join("libdaiban.so"))
        .arg(store_dir.path())
        .args(args)
        .env_remove("DAIBAN_ENROLL_CODE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
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
    stdout
}

#[test]
fn the_python_host_runs() {
    if python() {
        let stdout = run_village(&[], &[]);
        assert!(stdout.contains("sync: not enrolled"), "{stdout}");
    }
}

#[test]
fn the_python_host_enrolls_and_syncs() {
    if !python() {
        return;
    }
    let servers = tempfile::tempdir().unwrap();
    let (_district, township) = support::district_and_township(servers.path());
    let code = support::enrollment_code(&township.data, &["--point", "101", "--device", "1"]);
    let stdout = run_village(&[&township.url], &[("DAIBAN_ENROLL_CODE", &code)]);
    assert!(
        stdout.contains("enrolled: {'township': '431023101', 'point': 101, 'device': 1}"),
        "{stdout}"
    );
    assert!(stdout.contains("synced: 13 tickets"), "{stdout}");
}
