//! HTTPS with the real `sync-server` binary: certificates from `make-cert`, a township and
//! its district serving HTTPS, tablets pinning the township's CA, the township pinning the
//! district's; a client pinning another CA is refused and nothing is stored. And no OpenSSL
//! anywhere: not in Cargo.lock, not linked into the server, the cdylib or the examples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use agent_core::domain::catalog::Catalog;
use agent_core::domain::number::TicketNumber;
use agent_core::store::Store;
use agent_core::sync::client::{sync_now, Endpoint};
use agent_core::sync::wire::PAGE_BYTES;

use support::{
    bearer_with, cli_refused, enable_tls, enroll_tablet, enroll_township, init_district,
    init_township_with, make_cert, new_tablet, serve, server_binary, staff_login, sync_upward_with,
    TOWNSHIP_A,
};

/// The staff API over HTTPS, trusting `ca` only (the sync client's own HTTP client).
fn staff_client(url: &str, ca: &[u8]) -> reqwest::blocking::Client {
    agent_core::sync::tls::http_client(&Endpoint::pinned(url, ca), Duration::from_secs(60)).unwrap()
}

/// GET a ticket's view; the status code.
fn ticket_status(url: &str, ca: &[u8], role: &str, n: &TicketNumber) -> u16 {
    let client = staff_client(url, ca);
    let auth = bearer_with(&client, url, staff_login(role));
    client
        .get(format!("{url}/api/tickets/{n}"))
        .header("authorization", auth)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn register(store: &mut Store, seed: u64) -> TicketNumber {
    let form = agent_core::demo::forms(seed, 1, &Catalog::demo())
        .pop()
        .unwrap();
    store.register(&form).unwrap().view.ticket.number
}

#[test]
fn tablet_township_and_district_over_https_with_pinned_cas() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();

    // The district: demo directory, HTTPS with its own make-cert pair.
    let district_data = root.join("district");
    init_district(&district_data);
    enable_tls(&district_data, &make_cert(&root.join("district-tls")));
    let district = serve(&district_data);
    assert!(district.url.starts_with("https://"), "{}", district.url);
    let district_ca = std::fs::read(root.join("district-tls/ca.pem")).unwrap();

    // The township pins the district's CA (a path relative to its data directory) and serves
    // HTTPS with its own pair.
    let township_data = root.join("township");
    init_township_with(
        &township_data,
        TOWNSHIP_A,
        &district.url,
        &["--parent-ca", "district-ca.pem"],
    );
    std::fs::copy(
        root.join("district-tls/ca.pem"),
        township_data.join("district-ca.pem"),
    )
    .unwrap();
    // It enrolls with the district over HTTPS, pinning that CA.
    enroll_township(&district, &township_data, TOWNSHIP_A);
    enable_tls(&township_data, &make_cert(&root.join("township-tls")));
    let township = serve(&township_data);
    assert!(township.url.starts_with("https://"), "{}", township.url);
    let township_ca = std::fs::read(root.join("township-tls/ca.pem")).unwrap();

    // The township syncs upward over HTTPS: the directory comes down.
    let report = sync_upward_with(&staff_client(&township.url, &township_ca), &township.url);
    assert!(report["shared"].as_u64().unwrap() >= 1, "{report}");

    // A tablet pinning the township's CA syncs a ticket up; it goes on to the district.
    let mut a = new_tablet(root, 101, 1);
    enroll_tablet(
        &mut a,
        &township,
        Endpoint::pinned(&township.url, &township_ca),
    );
    let n = register(&mut a, 1);
    let report = sync_now(&mut a, Endpoint::pinned(&township.url, &township_ca)).unwrap();
    assert_eq!(report.uploaded, 1, "{report:?}");
    assert_eq!(
        ticket_status(&township.url, &township_ca, "township", &n),
        200
    );
    sync_upward_with(&staff_client(&township.url, &township_ca), &township.url);
    assert_eq!(
        ticket_status(&district.url, &district_ca, "reader", &n),
        200
    );
    // The next sync resumes the TLS session (no certificate again) and still verifies.
    let noop = sync_now(&mut a, Endpoint::pinned(&township.url, &township_ca)).unwrap();
    assert_eq!((noop.rounds, noop.uploaded), (1, 0), "{noop:?}");

    // A tablet pinning another CA (a server it does not know) is refused before any request:
    // the certificate error is reported, the township stores nothing, the tablet keeps all.
    make_cert(&root.join("other-tls"));
    let other_ca = std::fs::read(root.join("other-tls/ca.pem")).unwrap();
    let mut b = new_tablet(root, 102, 1);
    enroll_tablet(
        &mut b,
        &township,
        Endpoint::pinned(&township.url, &township_ca),
    );
    let m = register(&mut b, 2);
    let err = sync_now(&mut b, Endpoint::pinned(&township.url, &other_ca))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("证书") && err.contains("UnknownIssuer"),
        "{err}"
    );
    assert_eq!(
        ticket_status(&township.url, &township_ca, "township", &m),
        404
    );
    assert_eq!(b.outbox(PAGE_BYTES).unwrap().len(), 1);

    // https:// without a pinned CA, and a pinned CA with http://: refused before connecting.
    let err = sync_now(&mut b, &township.url).unwrap_err().to_string();
    assert!(err.contains("CA") && err.contains("https"), "{err}");
    let plain = township.url.replacen("https://", "http://", 1);
    let err = sync_now(&mut b, Endpoint::pinned(&plain, &township_ca))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not https"), "{err}");

    // With the right CA the same tablet syncs what waited.
    let report = sync_now(&mut b, Endpoint::pinned(&township.url, &township_ca)).unwrap();
    assert_eq!(report.uploaded, 1, "{report:?}");
    assert_eq!(
        ticket_status(&township.url, &township_ca, "township", &m),
        200
    );
}

#[test]
fn make_cert_config_checks_and_a_bad_certificate_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let printed = make_cert(&root.join("tls"));
    assert!(
        printed.contains("[tls]") && printed.contains("ca.pem"),
        "{printed}"
    );
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        let text = std::fs::read_to_string(root.join("tls").join(f)).unwrap();
        assert!(text.starts_with("-----BEGIN "), "{f}: {text}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("tls/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key.pem mode {mode:o}");
    }
    // A second run never overwrites a key.
    let key = std::fs::read(root.join("tls/key.pem")).unwrap();
    let o = Command::new(server_binary())
        .args(["make-cert", "--name", "127.0.0.1", "--out"])
        .arg(root.join("tls"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("exists"));
    assert_eq!(std::fs::read(root.join("tls/key.pem")).unwrap(), key);

    // An https:// parent needs its CA; a CA needs an https:// parent.
    let township = |parent: &str, ca: Option<&str>| {
        let mut args = vec![
            "init",
            "--role",
            "township",
            "--name",
            "柏林镇",
            "--township",
            TOWNSHIP_A,
            "--parent",
            parent,
        ];
        if let Some(ca) = ca {
            args.extend(["--parent-ca", ca]);
        }
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let refused = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_refused(&args, &root.join("t"))
    };
    assert!(refused(township("https://county:8710", None)).contains("parent_ca"));
    assert!(refused(township("http://county:8710", Some("ca.pem"))).contains("https"));

    // A server whose certificate does not load says why and never says it listens.
    let data = root.join("district");
    init_district(&data);
    let toml = data.join("daiban.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("\n[tls]\ncert = \"missing.pem\"\nkey = \"key.pem\"\n");
    std::fs::write(&toml, text).unwrap();
    let o = Command::new(server_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.pem"));
}

/// No OpenSSL (nor aws-lc) anywhere: not a package in Cargo.lock, and neither libssl nor
/// libcrypto linked into the server, the tablet library or the examples cargo built here.
#[test]
fn no_openssl_in_the_lock_file_or_the_binaries() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    let lock = std::fs::read_to_string(lock).unwrap();
    let forbidden = [
        "openssl",
        "openssl-sys",
        "native-tls",
        "aws-lc-rs",
        "aws-lc-sys",
    ];
    let found: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        // Any name with "openssl" in it, even the pure-Rust `openssl-probe` (which reqwest
        // 0.13's rustls features pull in): the lock file is read by people, not only linkers.
        .filter(|name| name.contains("openssl") || forbidden.contains(name))
        .collect();
    assert!(found.is_empty(), "in Cargo.lock: {found:?}");
    assert!(
        lock.contains("name = \"rustls\""),
        "rustls missing from Cargo.lock"
    );

    if Command::new("ldd").arg("--version").output().is_err() {
        eprintln!("SKIPPED the ldd half of this test: `ldd` is not installed here");
        return;
    }
    let server = server_binary();
    let dir = server.parent().unwrap();
    let mut binaries = vec![server.clone()];
    // The cdylib: beside the binaries after `cargo build`, in deps/ after `cargo test`.
    for cdylib in [dir.join("libdaiban.so"), dir.join("deps/libdaiban.so")] {
        if cdylib.exists() {
            binaries.push(cdylib);
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("examples")) {
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let executable = {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    e.metadata()
                        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                        .unwrap_or(false)
                }
                #[cfg(not(unix))]
                {
                    false
                }
            };
            if executable && (!name.contains('.') || name.ends_with(".so")) {
                binaries.push(path);
            }
        }
    }
    for bin in &binaries {
        let out = Command::new("ldd").arg(bin).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            !text.contains("libssl") && !text.contains("libcrypto"),
            "{} links OpenSSL:\n{text}",
            bin.display()
        );
    }
    eprintln!(
        "ldd: no libssl / libcrypto in {} binaries ({})",
        binaries.len(),
        binaries
            .iter()
            .filter_map(|b| b.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    );
}
