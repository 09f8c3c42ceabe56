//! Sync security through the ABI, against real server processes (the `sync-server` binary
//! `cargo test --workspace` builds): a tablet enrolls with a one-time code
//! (`daiban_store_enroll`) before it may sync; codes work once; a revoked tablet is wiped at
//! its next sync and told, masked, what its township never received; `https://` needs the
//! township's CA (`daiban_store_sync_tls`).
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::ffi::{c_char, CStr};
use std::ptr;
use std::time::Duration;

use agent_core::sync::client::Endpoint;
use common::*;
use daiban::*;
use serde_json::Value;
use support::{enable_tls, make_cert};

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// A code for device `device` of point 101 from the township's admin.
fn code_for(township: &support::Server, device: u32) -> String {
    let device = device.to_string();
    support::enrollment_code(&township.data, &["--point", "101", "--device", &device])
}

/// `daiban_store_sync_tls`; the status, and the report (or the message on failure).
fn sync_tls(h: *mut daiban_store, url: &str, ca_pem: Option<&str>) -> (daiban_status, String) {
    let url = c(url);
    let ca = ca_pem.map(c);
    let ca_ptr = ca.as_ref().map_or(ptr::null(), |c| c.as_ptr());
    out_string(|o| unsafe {
        daiban_store_sync_tls(h, url.as_ptr(), ca_ptr, None, ptr::null_mut(), o)
    })
}

fn sync(h: *mut daiban_store, url: &str) -> (daiban_status, String) {
    sync_tls(h, url, None)
}

fn sync_status(h: *mut daiban_store) -> Value {
    let (st, s) = out_string(|o| unsafe { daiban_store_sync_status(h, o) });
    assert_eq!(st, DAIBAN_OK, "{s}");
    json(&s)
}

#[test]
fn a_tablet_enrolls_through_the_abi_then_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = support::district_and_township(dir.path());
    let h = open(&dir.path().join("t.db"));
    for f in forms(41, 2) {
        register_ok(h, &f);
    }

    // Not enrolled: refused before anything is sent, with its own status, and recorded.
    let (st, message) = sync(h, &township.url);
    assert_eq!(st, DAIBAN_NOT_ENROLLED, "{message}");
    assert!(message.contains("尚未注册"), "{message}");
    let status = sync_status(h);
    assert_eq!(status["pending"], 2, "{status}");
    assert_eq!(status["last_sync"]["outcome"], "failed", "{status}");
    assert_eq!(status["last_sync"]["message"], message.as_str());

    // Enrolled with the admin's code (typed in lower case without dashes: the same code).
    let code = code_for(&township, 1);
    let typed = code.replace('-', "").to_lowercase();
    let (st, enrolled) = enroll(h, &township.url, None, &typed);
    assert_eq!(st, DAIBAN_OK, "{enrolled}");
    assert_eq!(
        json(&enrolled),
        serde_json::json!({"township": support::TOWNSHIP_A, "point": 101, "device": 1})
    );
    // A retry of the same enrollment (its answer lost) is answered again.
    let (st, again) = enroll(h, &township.url, None, &code);
    assert_eq!((st, again.as_str()), (DAIBAN_OK, enrolled.as_str()));

    let (st, report) = sync(h, &township.url);
    assert_eq!(st, DAIBAN_OK, "{report}");
    assert_eq!(json(&report)["uploaded"], 2);
    let status = sync_status(h);
    assert_eq!(
        (status["pending"].as_u64(), status["synced"].as_u64()),
        (Some(0), Some(2))
    );

    // Enrolled, a sync with no link is an ordinary sync failure.
    let (st, message) = sync(h, "http://127.0.0.1:1");
    assert_eq!(st, DAIBAN_SYNC, "{message}");
    assert_eq!(unsafe { daiban_store_free(h) }, DAIBAN_OK);
}

#[test]
fn a_code_works_once_and_only_for_its_device() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = support::district_and_township(dir.path());
    let code = code_for(&township, 1);
    let first = open(&dir.path().join("first.db"));
    let (st, enrolled) = enroll(first, &township.url, None, &code);
    assert_eq!(st, DAIBAN_OK, "{enrolled}");

    // The same code on another install of device 1 (a new store, a new key): refused.
    let reinstalled = open(&dir.path().join("reinstalled.db"));
    let (st, message) = enroll(reinstalled, &township.url, None, &code);
    assert_eq!(st, DAIBAN_SYNC, "{message}");
    assert!(message.starts_with("注册失败"), "{message}");
    assert!(message.contains("注册码已使用"), "{message}");
    let (st, _) = sync(reinstalled, &township.url);
    assert_eq!(st, DAIBAN_NOT_ENROLLED, "still not enrolled");

    // A code issued for device 2 does not enroll device 1; a made-up code enrolls nothing.
    let (st, message) = enroll(reinstalled, &township.url, None, &code_for(&township, 2));
    assert_eq!(st, DAIBAN_SYNC, "{message}");
    assert!(message.contains("不是为这台设备签发的"), "{message}");
    let (st, message) = enroll(reinstalled, &township.url, None, "0000-0000-0000");
    assert_eq!(st, DAIBAN_SYNC, "{message}");
    assert!(message.contains("注册码无效"), "{message}");

    // Arguments are checked as everywhere (ca_pem alone may be NULL).
    let mut out: *mut c_char = sentinel();
    let url = c(&township.url);
    let bad = unsafe {
        [
            daiban_store_enroll(
                reinstalled,
                ptr::null(),
                ptr::null(),
                c"x".as_ptr(),
                &mut out,
            ),
            daiban_store_enroll(
                reinstalled,
                url.as_ptr(),
                ptr::null(),
                ptr::null(),
                &mut out,
            ),
            daiban_store_enroll(
                reinstalled,
                url.as_ptr(),
                ptr::null(),
                c"x".as_ptr(),
                ptr::null_mut(),
            ),
            daiban_store_enroll(
                ptr::null_mut(),
                url.as_ptr(),
                ptr::null(),
                c"x".as_ptr(),
                &mut out,
            ),
        ]
    };
    assert_eq!(bad, [DAIBAN_NULL_ARGUMENT; 4]);
    let bad_utf8 = unsafe {
        daiban_store_enroll(
            reinstalled,
            url.as_ptr(),
            c"\xff".as_ptr(),
            c"x".as_ptr(),
            &mut out,
        )
    };
    assert_eq!(bad_utf8, DAIBAN_INVALID_UTF8);
    assert_eq!(out, sentinel());
    for h in [first, reinstalled] {
        assert_eq!(unsafe { daiban_store_free(h) }, DAIBAN_OK);
    }
    let (st, _) = enroll(first, &township.url, None, &code);
    assert_eq!(st, DAIBAN_INVALID_HANDLE);
}

/// The applicant's name, ID number and phone in a demo form.
fn personal(form: &CStr) -> [String; 3] {
    let v = json(form.to_str().unwrap());
    ["applicant_name", "id_number", "phone"].map(|k| v[k].as_str().unwrap().to_owned())
}

#[test]
fn a_revoked_tablet_is_wiped_and_told_what_never_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = support::district_and_township(dir.path());
    let path = dir.path().join("t.db");
    let h = open(&path);
    let (st, enrolled) = enroll(h, &township.url, None, &code_for(&township, 1));
    assert_eq!(st, DAIBAN_OK, "{enrolled}");
    let forms = forms(42, 2);
    let synced = register_ok(h, &forms[0]);
    let (st, report) = sync(h, &township.url);
    assert_eq!(st, DAIBAN_OK, "{report}");
    // Registered offline after that sync: the township never gets it.
    let lost = register_ok(h, &forms[1]);

    // The tablet is lost: the township admin revokes it (while serving).
    let out = support::cli(
        &[
            "revoke", "--point", "101", "--device", "1", "--reason", "丢失",
        ],
        &township.data,
    );
    assert!(out.contains("revoked point 101 device 1"), "{out}");

    // Its next sync is refused, the store wiped, and the host gets the list both ways.
    let url = c(&township.url);
    let mut out: *mut c_char = sentinel();
    let st = unsafe { daiban_store_sync(h, url.as_ptr(), &mut out) };
    assert_eq!(st, DAIBAN_REVOKED);
    let message = last_error().unwrap();
    assert_ne!(out, sentinel(), "a revocation writes report_json_out");
    let revoked = json(&take(out));
    assert_eq!(revoked["revoked"], true, "{revoked}");
    assert_eq!(revoked["message"], message.as_str());
    assert_eq!(revoked["reason"], "丢失", "{revoked}");
    assert!(
        message.starts_with("本设备已停用（丢失），本机办件数据已清除"),
        "{message}"
    );
    let unsynced = revoked["unsynced"].as_array().unwrap();
    assert_eq!(unsynced.len(), 1, "{revoked}");
    assert_eq!(unsynced[0]["number"], lost.as_str());
    assert!(unsynced[0]["applicant"].as_str().unwrap().contains('*'));
    // The message lists it for the agent, masked: the number, never the person.
    assert!(message.contains(&lost), "{message}");
    assert!(!message.contains(&synced), "{message}");
    assert!(
        message.contains(unsynced[0]["applicant"].as_str().unwrap()),
        "{message}"
    );
    for value in personal(&forms[1]).iter().chain(&personal(&forms[0])) {
        assert!(!message.contains(value.as_str()), "{value} in {message}");
        assert!(
            !revoked.to_string().contains(value.as_str()),
            "{value} in {revoked}"
        );
    }
    let m = unsafe { CStr::from_ptr(daiban_status_message(DAIBAN_REVOKED as u32)) };
    assert!(m.to_str().unwrap().contains("停用"));

    // Wiped: nothing left to read, and no more work, also after reopening.
    let status = sync_status(h);
    assert_eq!(status["last_sync"]["outcome"], "failed", "{status}");
    assert_eq!(status["last_sync"]["message"], message.as_str());
    assert_wiped(h, &township, &forms[0], &synced);
    assert_eq!(unsafe { daiban_store_free(h) }, DAIBAN_OK);
    let h = open(&path);
    assert_wiped(h, &township, &forms[0], &synced);
    assert_eq!(unsafe { daiban_store_free(h) }, DAIBAN_OK);
}

/// A wiped store holds no tickets and refuses work with DAIBAN_REVOKED; a sync sends
/// nothing and says the same, with an empty list.
fn assert_wiped(h: *mut daiban_store, township: &support::Server, form: &CStr, number: &str) {
    assert_eq!(total(h), 0);
    let (st, message) = register(h, form);
    assert_eq!(st, DAIBAN_REVOKED, "{message}");
    let number = c(number);
    let (st, _) = out_string(|o| unsafe {
        daiban_store_append(h, number.as_ptr(), c"{\"kind\": \"withdrawn\"}".as_ptr(), o)
    });
    assert_eq!(st, DAIBAN_REVOKED);
    // Refused before any request: the device key is gone.
    let (st, _) = enroll(h, &township.url, None, "0000-0000-0000");
    assert_eq!(st, DAIBAN_REVOKED);
    let url = c(&township.url);
    let mut out: *mut c_char = sentinel();
    let st = unsafe { daiban_store_sync(h, url.as_ptr(), &mut out) };
    assert_eq!(st, DAIBAN_REVOKED);
    let again = json(&take(out));
    assert_eq!(again["revoked"], true, "{again}");
    assert_eq!(again["unsynced"], serde_json::json!([]), "{again}");
}

#[test]
fn https_needs_the_townships_ca() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let district_data = root.join("district");
    support::init_district(&district_data);
    let district = support::serve(&district_data);
    // A township serving HTTPS with its own make-cert pair.
    let data = root.join("township");
    support::init_township(&data, support::TOWNSHIP_A, &district.url);
    support::enroll_township(&district, &data, support::TOWNSHIP_A);
    enable_tls(&data, &make_cert(&root.join("township-tls")));
    let township = support::serve(&data);
    assert!(township.url.starts_with("https://"), "{}", township.url);
    let ca = std::fs::read_to_string(root.join("township-tls/ca.pem")).unwrap();
    let client = agent_core::sync::tls::http_client(
        &Endpoint::pinned(&township.url, ca.as_bytes()),
        Duration::from_secs(60),
    )
    .unwrap();
    support::sync_upward_with(&client, &township.url);

    let h = open(&root.join("t.db"));
    let code = code_for(&township, 1);
    // Enrolling over https without the CA is refused before anything is sent.
    let (st, message) = enroll(h, &township.url, None, &code);
    assert_eq!(st, DAIBAN_SYNC, "{message}");
    assert!(message.contains("CA"), "{message}");
    let (st, enrolled) = enroll(h, &township.url, Some(&ca), &code);
    assert_eq!(st, DAIBAN_OK, "{enrolled}");
    register_ok(h, &forms(43, 1)[0]);

    // daiban_store_sync takes no CA: an https server is refused with a clear message.
    let (st, message) = sync(h, &township.url);
    assert_eq!(st, DAIBAN_SYNC, "{message}");
    assert!(
        message.contains("https") && message.contains("CA"),
        "{message}"
    );
    // A CA with an http URL, and another server's CA, are refused too; nothing went up.
    let (st, message) = sync_tls(h, &township.url.replace("https://", "http://"), Some(&ca));
    assert_eq!(st, DAIBAN_SYNC, "{message}");
    make_cert(&root.join("other-tls"));
    let other = std::fs::read_to_string(root.join("other-tls/ca.pem")).unwrap();
    let (st, message) = sync_tls(h, &township.url, Some(&other));
    assert_eq!(st, DAIBAN_SYNC, "{message}");
    assert!(message.contains("证书"), "{message}");
    assert_eq!(sync_status(h)["pending"], 1);

    // With its CA the sync goes through.
    let (st, report) = sync_tls(h, &township.url, Some(&ca));
    assert_eq!(st, DAIBAN_OK, "{report}");
    assert_eq!(json(&report)["uploaded"], 1);
    assert_eq!(sync_status(h)["pending"], 0);
    assert_eq!(unsafe { daiban_store_free(h) }, DAIBAN_OK);
}
