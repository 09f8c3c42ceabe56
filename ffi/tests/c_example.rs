//! examples/c/village.c, built with the system C compiler against the header and the library
//! only, runs clean: every call returns what the program expects, offline and enrolling and
//! syncing with a real township server (the `sync-server` binary `cargo test --workspace`
//! builds), and under valgrind there are no memory errors and no leaks.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{have, library_dir, repo_root};

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_owned())
}

/// Compile village.c into `out`, linking `link` (extra arguments after the source).
fn compile(out: &Path, link: &[&str]) {
    let root = repo_root();
    let output = Command::new(cc())
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"])
        .arg("-I")
        .arg(root.join("ffi/include"))
        .arg(root.join("examples/c/village.c"))
        .args(link)
        .arg("-o")
        .arg(out)
        .output()
        .expect("the system C compiler (cc) runs");
    assert!(
        output.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn dynamic_build(dir: &Path) -> PathBuf {
    let lib = library_dir();
    let exe = dir.join("village");
    let l = format!("-L{}", lib.display());
    let rpath = format!("-Wl,-rpath,{}", lib.display());
    compile(&exe, &[&l, "-ldaiban", &rpath]);
    exe
}

fn report(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A code for the example's tablet (device 1 of point 101) from the township's admin.
fn enrollment_code(township: &support::Server) -> String {
    support::enrollment_code(&township.data, &["--point", "101", "--device", "1"])
}

#[test]
fn the_c_example_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = dynamic_build(tmp.path());
    let store_dir = tempfile::tempdir().unwrap();
    let out = Command::new(&exe)
        .arg(store_dir.path())
        .env_remove("DAIBAN_ENROLL_CODE")
        .output()
        .unwrap();
    let text = report("village", &out);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("PASS: 0 unexpected result(s)"), "{text}");
    assert!(stdout.contains("为民服务全程代理承办单（回执）"), "{text}");
    assert!(stdout.contains("no server URL given"), "{text}");
    assert!(stdout.contains("sync: not enrolled"), "{text}");
    assert!(stdout.contains("free again (double free)"), "{text}");
    // Misuse is reported as statuses, never as a crash: nothing on stderr.
    assert!(out.stderr.is_empty(), "{text}");
}

/// What the run with a server must show: the enrollment, a progress line per round trip,
/// and the status before (3 waiting) and after (none waiting, the last sync ok).
fn assert_synced(stdout: &str, text: &str) {
    assert!(stdout.contains("PASS: 0 unexpected result(s)"), "{text}");
    assert!(
        stdout.contains(r#"enrolled: {"township":"431023101","point":101,"device":1}"#),
        "{text}"
    );
    assert!(stdout.contains("sync round 1: uploaded 3"), "{text}");
    assert!(stdout.contains("progress call(s) for"), "{text}");
    assert!(
        stdout.contains("pending 3, refused 0, synced 0, cursor 0, last sync: none"),
        "{text}"
    );
    assert!(stdout.contains("pending 0, refused 0, synced 3"), "{text}");
    assert!(stdout.contains("last sync: ok"), "{text}");
}

#[test]
fn the_c_example_syncs_with_a_township() {
    let servers = tempfile::tempdir().unwrap();
    let (_district, township) = support::district_and_township(servers.path());
    let tmp = tempfile::tempdir().unwrap();
    let exe = dynamic_build(tmp.path());
    let store_dir = tempfile::tempdir().unwrap();
    let out = Command::new(&exe)
        .arg(store_dir.path())
        .arg(&township.url)
        .env("DAIBAN_ENROLL_CODE", enrollment_code(&township))
        .output()
        .unwrap();
    let text = report("village with a server", &out);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_synced(&stdout, &text);
    assert!(out.stderr.is_empty(), "{text}");
    let sync_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("sync") || l.contains("round"))
        .collect();
    eprintln!("{}", sync_lines.join("\n"));
}

/// Under valgrind with a township server, so the sync path (HTTP client, progress callback)
/// is checked too.
#[test]
fn the_c_example_is_clean_under_valgrind() {
    if !have("valgrind") {
        assert!(
            std::env::var_os("DAIBAN_REQUIRE_VALGRIND").is_none(),
            "valgrind is required (DAIBAN_REQUIRE_VALGRIND is set) but not installed"
        );
        eprintln!("SKIPPED: valgrind is not installed (apt-get install valgrind)");
        return;
    }
    let servers = tempfile::tempdir().unwrap();
    let (_district, township) = support::district_and_township(servers.path());
    let tmp = tempfile::tempdir().unwrap();
    let exe = dynamic_build(tmp.path());
    let store_dir = tempfile::tempdir().unwrap();
    let out = Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--show-leak-kinds=definite,indirect,possible",
            "--errors-for-leak-kinds=definite,indirect,possible",
            "--error-exitcode=3",
        ])
        .arg(format!(
            "--suppressions={}",
            repo_root().join("ffi/tests/valgrind.supp").display()
        ))
        .arg(&exe)
        .arg(store_dir.path())
        .arg(&township.url)
        .env("DAIBAN_ENROLL_CODE", enrollment_code(&township))
        .output()
        .unwrap();
    let text = report("valgrind village", &out);
    assert!(out.status.success(), "{text}");
    assert_synced(&String::from_utf8_lossy(&out.stdout), &text);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for clean in [
        "ERROR SUMMARY: 0 errors",
        "definitely lost: 0 bytes",
        "indirectly lost: 0 bytes",
        "possibly lost: 0 bytes",
    ] {
        // With nothing lost at all valgrind prints "All heap blocks were freed" instead.
        assert!(
            stderr.contains(clean)
                || (clean.contains("lost") && stderr.contains("All heap blocks were freed")),
            "{clean} missing\n{text}"
        );
    }
    let summary: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("lost:") || l.contains("reachable:") || l.contains("ERROR SUMMARY"))
        .collect();
    eprintln!("valgrind:\n{}", summary.join("\n"));
}

/// The static library links with the same header (the native libraries are what
/// `rustc --print native-static-libs` lists on Linux).
#[test]
#[cfg(target_os = "linux")]
fn the_c_example_links_statically() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("village-static");
    let archive = library_dir().join("libdaiban.a");
    let archive = archive.to_str().unwrap();
    compile(
        &exe,
        &[
            archive,
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ],
    );
    let store_dir = tempfile::tempdir().unwrap();
    let out = Command::new(&exe).arg(store_dir.path()).output().unwrap();
    let text = report("village-static", &out);
    assert!(out.status.success(), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("PASS"),
        "{text}"
    );
}

/// The header also compiles as C++ and as C99 (hosts embed it in either).
#[test]
fn the_header_compiles_as_c99_and_cxx() {
    let header = repo_root().join("ffi/include/daiban.h");
    let tmp = tempfile::tempdir().unwrap();
    let c_src = tmp.path().join("h.c");
    std::fs::write(
        &c_src,
        "#include \"daiban.h\"\nint main(void) { return DAIBAN_OK; }\n",
    )
    .unwrap();
    let include = format!("-I{}", header.parent().unwrap().display());
    let out = Command::new(cc())
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
            &include,
        ])
        .arg(&c_src)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", report("c99", &out));
    if have("c++") {
        let cxx_src = tmp.path().join("h.cpp");
        std::fs::write(
            &cxx_src,
            "#include \"daiban.h\"\nint main() { return DAIBAN_OK; }\n",
        )
        .unwrap();
        let out = Command::new("c++")
            .args([
                "-std=c++11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
                &include,
            ])
            .arg(&cxx_src)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", report("c++", &out));
    }
}
