//! The committed header is exactly what cbindgen generates from the current source.
//!
//! CI runs this test, so a change to an exported signature or its doc comment that is not
//! followed by regenerating `include/daiban.h` fails the build. To regenerate:
//! `DAIBAN_BLESS=1 cargo test -p daiban-ffi --test header`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn generate() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    // `with_src` follows the crate's `mod` tree without running `cargo metadata`.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .unwrap();
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn committed_header_matches_the_source() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/daiban.h");
    let generated = generate();
    if std::env::var_os("DAIBAN_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    let (c, g): (Vec<&str>, Vec<&str>) = (committed.lines().collect(), generated.lines().collect());
    let first = c
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(c.len().min(g.len()));
    let mut report = format!(
        "{} is out of date with the Rust source (first difference at line {}):\n",
        path.display(),
        first + 1
    );
    for (tag, lines) in [("- committed", &c), ("+ generated", &g)] {
        report.push_str(&format!("{tag}:\n"));
        for line in lines.iter().skip(first).take(6) {
            report.push_str(&format!("    {line}\n"));
        }
    }
    report.push_str("Regenerate it: DAIBAN_BLESS=1 cargo test -p daiban-ffi --test header\n");
    panic!("{report}");
}

/// Every function the library exports is declared in the header, and nothing else is.
#[test]
fn header_declares_every_exported_function() {
    let header = generate();
    let src: String = ["src/lib.rs", "src/store.rs", "src/sync.rs"]
        .iter()
        .map(|f| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap())
        .collect();
    let exported: Vec<&str> = src
        .split("extern \"C\" fn ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .collect();
    assert!(exported.len() >= 16, "{exported:?}");
    for name in exported {
        assert!(header.contains(&format!("{name}(")), "{name} missing");
    }
}
