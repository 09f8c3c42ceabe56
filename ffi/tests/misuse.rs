//! Misuse through the ABI: every mistake a host can make gets its status code, leaves
//! out-parameters alone, and crashes nothing.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::c_char;
use std::ptr;

use common::*;
use daiban::*;

/// A call with its `char **` out-parameter left open, labelled for messages.
type OutCall<'a> = Box<dyn Fn(*mut *mut c_char) -> daiban_status + 'a>;

const NUMBER_NOT_HERE: &std::ffi::CStr = c"999999999999";

fn store() -> (tempfile::TempDir, *mut daiban_store) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("village.db"));
    (dir, s)
}

#[test]
fn null_pointers_are_refused() {
    let (dir, s) = store();
    let path = c(dir.path().join("other.db").to_str().unwrap());
    let mut handle: *mut daiban_store = sentinel();
    let open = |p: *const c_char, k: *const u8, a: *const c_char, o: *mut *mut daiban_store| unsafe {
        daiban_store_open(p, k, 32, 101, 1, a, o)
    };
    let key = KEY.as_ptr();
    let agent = c"李代理".as_ptr();
    assert_eq!(
        open(ptr::null(), key, agent, &mut handle),
        DAIBAN_NULL_ARGUMENT
    );
    assert_eq!(
        open(path.as_ptr(), ptr::null(), agent, &mut handle),
        DAIBAN_NULL_ARGUMENT
    );
    assert_eq!(
        open(path.as_ptr(), key, ptr::null(), &mut handle),
        DAIBAN_NULL_ARGUMENT
    );
    assert_eq!(
        open(path.as_ptr(), key, agent, ptr::null_mut()),
        DAIBAN_NULL_ARGUMENT
    );
    assert_eq!(handle, sentinel(), "store_out untouched");
    assert!(last_error().unwrap().contains("store_out"));
    assert!(!dir.path().join("other.db").exists(), "nothing was done");

    let form = &forms(1, 1)[0];
    let draft = c"{\"kind\": \"withdrawn\"}";
    let null = ptr::null::<c_char>();
    let no_store = ptr::null_mut::<daiban_store>();
    let calls: Vec<(&str, OutCall)> = vec![
        (
            "register/store",
            Box::new(|o| unsafe { daiban_store_register(no_store, form.as_ptr(), o) }),
        ),
        (
            "register/form",
            Box::new(|o| unsafe { daiban_store_register(s, null, o) }),
        ),
        (
            "append/number",
            Box::new(|o| unsafe { daiban_store_append(s, null, draft.as_ptr(), o) }),
        ),
        (
            "append/draft",
            Box::new(|o| unsafe { daiban_store_append(s, NUMBER_NOT_HERE.as_ptr(), null, o) }),
        ),
        (
            "get/number",
            Box::new(|o| unsafe { daiban_store_get(s, null, o) }),
        ),
        (
            "search/query",
            Box::new(|o| unsafe { daiban_store_search(s, null, o) }),
        ),
        (
            "due/store",
            Box::new(|o| unsafe { daiban_store_due(no_store, 0, o) }),
        ),
        (
            "receipt/number",
            Box::new(|o| unsafe { daiban_store_receipt(s, null, o) }),
        ),
        (
            "catalog/store",
            Box::new(|o| unsafe { daiban_store_catalog(no_store, o) }),
        ),
        (
            "calendar/store",
            Box::new(|o| unsafe { daiban_store_calendar(no_store, o) }),
        ),
    ];
    for (name, call) in &calls {
        let (st, msg) = out_string(call);
        assert_eq!(st, DAIBAN_NULL_ARGUMENT, "{name}: {msg}");
        assert!(msg.contains("NULL"), "{name}: {msg}");
    }
    // NULL out-parameters: refused before anything is done (no ticket registered).
    unsafe {
        assert_eq!(
            daiban_store_register(s, form.as_ptr(), ptr::null_mut()),
            DAIBAN_NULL_ARGUMENT
        );
        assert_eq!(
            daiban_store_append(s, NUMBER_NOT_HERE.as_ptr(), draft.as_ptr(), ptr::null_mut()),
            DAIBAN_NULL_ARGUMENT
        );
        assert_eq!(
            daiban_store_get(s, NUMBER_NOT_HERE.as_ptr(), ptr::null_mut()),
            DAIBAN_NULL_ARGUMENT
        );
        assert_eq!(
            daiban_store_search(s, c"{}".as_ptr(), ptr::null_mut()),
            DAIBAN_NULL_ARGUMENT
        );
        assert_eq!(
            daiban_store_due(s, 0, ptr::null_mut()),
            DAIBAN_NULL_ARGUMENT
        );
        assert_eq!(
            daiban_store_receipt(s, NUMBER_NOT_HERE.as_ptr(), ptr::null_mut()),
            DAIBAN_NULL_ARGUMENT
        );
        assert_eq!(
            daiban_store_catalog(s, ptr::null_mut()),
            DAIBAN_NULL_ARGUMENT
        );
        assert_eq!(
            daiban_store_calendar(s, ptr::null_mut()),
            DAIBAN_NULL_ARGUMENT
        );
        assert_eq!(daiban_store_set_catalog(s, null), DAIBAN_NULL_ARGUMENT);
        assert_eq!(daiban_store_set_calendar(s, null), DAIBAN_NULL_ARGUMENT);
        assert_eq!(
            daiban_store_set_catalog(no_store, c"{}".as_ptr()),
            DAIBAN_NULL_ARGUMENT
        );
        assert_eq!(daiban_store_cancel(no_store), DAIBAN_NULL_ARGUMENT);
        // Free functions accept NULL, like free(3).
        assert_eq!(daiban_store_free(no_store), DAIBAN_OK);
        assert_eq!(daiban_string_free(ptr::null_mut()), DAIBAN_OK);
    }
    assert_eq!(total(s), 0);
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_OK);
}

#[test]
fn invalid_utf8_is_refused() {
    let (dir, s) = store();
    let bad = c"\xe6\x9d\x8e\xff\xfe"; // 李 then two bytes that are never UTF-8
    let bad_path = [dir.path().to_str().unwrap().as_bytes(), b"/\xff.db\0"].concat();
    let mut handle: *mut daiban_store = sentinel();
    let st = unsafe {
        daiban_store_open(
            bad_path.as_ptr().cast(),
            KEY.as_ptr(),
            32,
            101,
            1,
            c"a".as_ptr(),
            &mut handle,
        )
    };
    assert_eq!(st, DAIBAN_INVALID_UTF8);
    assert_eq!(handle, sentinel());
    let path = c(dir.path().join("x.db").to_str().unwrap());
    let st = unsafe {
        daiban_store_open(
            path.as_ptr(),
            KEY.as_ptr(),
            32,
            101,
            1,
            bad.as_ptr(),
            &mut handle,
        )
    };
    assert_eq!(st, DAIBAN_INVALID_UTF8);
    assert!(last_error().unwrap().contains("agent"));

    let draft = c"{\"kind\": \"withdrawn\"}";
    let b = bad.as_ptr();
    let cases: Vec<(&str, OutCall)> = vec![
        (
            "register",
            Box::new(|o| unsafe { daiban_store_register(s, b, o) }),
        ),
        (
            "append/number",
            Box::new(|o| unsafe { daiban_store_append(s, b, draft.as_ptr(), o) }),
        ),
        (
            "append/draft",
            Box::new(|o| unsafe { daiban_store_append(s, NUMBER_NOT_HERE.as_ptr(), b, o) }),
        ),
        ("get", Box::new(|o| unsafe { daiban_store_get(s, b, o) })),
        (
            "search",
            Box::new(|o| unsafe { daiban_store_search(s, b, o) }),
        ),
        (
            "receipt",
            Box::new(|o| unsafe { daiban_store_receipt(s, b, o) }),
        ),
    ];
    for (name, call) in &cases {
        let (st, msg) = out_string(call);
        assert_eq!(st, DAIBAN_INVALID_UTF8, "{name}: {msg}");
        assert!(msg.contains("UTF-8"), "{name}: {msg}");
    }
    assert_eq!(
        unsafe { daiban_store_set_catalog(s, b) },
        DAIBAN_INVALID_UTF8
    );
    assert_eq!(
        unsafe { daiban_store_set_calendar(s, b) },
        DAIBAN_INVALID_UTF8
    );
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_OK);
}

#[test]
fn malformed_json_is_refused_without_quoting_values() {
    let (_dir, s) = store();
    for bad in ["", "{", "[1, 2", "null", "\"text\"", "{\"item_code\": 1}"] {
        let (st, msg) = register(s, &c(bad));
        assert_eq!(st, DAIBAN_INVALID_JSON, "{bad}: {msg}");
        assert!(msg.contains("form_json"), "{msg}");
    }
    // An ID number typed into a number field: serde would quote it; the message must not.
    let form = r#"{"item_code": "SB001", "applicant_name": "张三",
                   "id_number": 110101199003071234, "village": "东坪村"}"#;
    let (st, msg) = register(s, &c(form));
    assert_eq!(st, DAIBAN_INVALID_JSON);
    assert!(!msg.contains("110101199003071234"), "{msg}");
    let (st, msg) = register(s, &c(r#"{"item_code": "SB001"}"#));
    assert_eq!(st, DAIBAN_INVALID_JSON);
    assert!(
        msg.contains("applicant_name"),
        "missing field is named: {msg}"
    );

    let number = register_ok(s, &forms(1, 1)[0]);
    let n = c(&number);
    for bad in ["{", "{\"kind\": \"no_such_kind\"}", "{\"note\": \"x\"}"] {
        let d = c(bad);
        let (st, msg) =
            out_string(|o| unsafe { daiban_store_append(s, n.as_ptr(), d.as_ptr(), o) });
        assert_eq!(st, DAIBAN_INVALID_JSON, "{bad}: {msg}");
    }
    for bad in ["{", "{\"page\": -1}", "{\"lights\": [\"blue\"]}"] {
        let (st, msg) = search(s, bad);
        assert_eq!(st, DAIBAN_INVALID_JSON, "{bad}: {msg}");
    }
    // Catalog: not JSON at all is INVALID_JSON; JSON that is not a catalog is CATALOG.
    assert_eq!(
        unsafe { daiban_store_set_catalog(s, c"{".as_ptr()) },
        DAIBAN_INVALID_JSON
    );
    assert_eq!(
        unsafe { daiban_store_set_catalog(s, c"{\"items\": 3}".as_ptr()) },
        DAIBAN_CATALOG
    );
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_OK);
}

#[test]
fn refused_input_gets_its_own_code_and_a_chinese_message() {
    let (_dir, s) = store();
    // A resident ID with a wrong check character.
    let mut form: serde_json::Value =
        serde_json::from_str(forms(2, 1)[0].to_str().unwrap()).unwrap();
    let id = form["id_number"].as_str().unwrap().to_owned();
    let wrong = format!("{}{}", &id[..17], if id.ends_with('0') { '1' } else { '0' });
    form["id_number"] = wrong.clone().into();
    let (st, msg) = register(s, &c(&form.to_string()));
    assert_eq!(st, DAIBAN_FORM);
    assert!(msg.contains("校验位"), "{msg}");
    assert!(!msg.contains(&wrong), "{msg}");
    form["id_number"] = id.into();
    form["item_code"] = "NO999".into();
    let (st, msg) = register(s, &c(&form.to_string()));
    assert_eq!(st, DAIBAN_FORM);
    assert!(msg.contains("事项目录"), "{msg}");

    // Ticket numbers: malformed, then well-formed but unknown.
    for (number, code) in [
        ("12345", DAIBAN_NUMBER),
        ("999999999990", DAIBAN_NUMBER),
        ("999999999999", DAIBAN_NOT_FOUND),
    ] {
        let n = c(number);
        let (st, msg) = out_string(|o| unsafe { daiban_store_get(s, n.as_ptr(), o) });
        assert_eq!(st, code, "{number}: {msg}");
        let (st, _) = out_string(|o| unsafe { daiban_store_receipt(s, n.as_ptr(), o) });
        assert_eq!(st, code, "{number}");
    }
    // An agent cannot complete a ticket.
    let number = c(&register_ok(s, &forms(3, 1)[0]));
    let (st, msg) = out_string(|o| unsafe {
        daiban_store_append(s, number.as_ptr(), c"{\"kind\": \"completed\"}".as_ptr(), o)
    });
    assert_eq!(st, DAIBAN_EVENT);
    assert!(msg.contains("村代理员"), "{msg}");
    // A calendar with a bad line.
    let bad = c"date,kind,name\n2027-13-01,holiday,x\n";
    assert_eq!(
        unsafe { daiban_store_set_calendar(s, bad.as_ptr()) },
        DAIBAN_CALENDAR
    );
    assert!(last_error().unwrap().contains("第2行"));
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_OK);
}

#[test]
fn freed_handles_are_refused_never_dereferenced() {
    let (_dir, s) = store();
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_OK);
    // Used again after free.
    let (st, msg) = search(s, "{}");
    assert_eq!(st, DAIBAN_INVALID_HANDLE);
    assert!(msg.contains("已由 daiban_store_free 释放"), "{msg}");
    assert_eq!(unsafe { daiban_store_cancel(s) }, DAIBAN_INVALID_HANDLE);
    // Freed twice.
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_INVALID_HANDLE);
    assert!(last_error().unwrap().contains("重复释放"));
    // A pointer the library never made (here: to a local), and a wild one.
    let mut local = 0u64;
    let fake = ptr::from_mut(&mut local).cast::<daiban_store>();
    assert_eq!(search(fake, "{}").0, DAIBAN_INVALID_HANDLE);
    assert_eq!(unsafe { daiban_store_free(fake) }, DAIBAN_INVALID_HANDLE);
    assert_eq!(local, 0, "never written through");
    assert_eq!(search(sentinel(), "{}").0, DAIBAN_INVALID_HANDLE);
}

#[test]
fn strings_freed_twice_or_foreign_are_refused() {
    let (_dir, s) = store();
    let mut out: *mut c_char = ptr::null_mut();
    assert_eq!(unsafe { daiban_store_catalog(s, &mut out) }, DAIBAN_OK);
    // The host scribbles in the buffer (shortening it): the free still releases it all.
    unsafe { *out.add(1) = 0 };
    assert_eq!(unsafe { daiban_string_free(out) }, DAIBAN_OK);
    assert_eq!(unsafe { daiban_string_free(out) }, DAIBAN_INVALID_STRING);
    let mine = c("not from the library");
    assert_eq!(
        unsafe { daiban_string_free(mine.as_ptr().cast_mut()) },
        DAIBAN_INVALID_STRING
    );
    assert_eq!(mine.to_str().unwrap(), "not from the library", "left alone");
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_OK);
}

#[test]
fn wrong_key_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("village.db");
    let s = open(&path);
    let number = register_ok(s, &forms(4, 1)[0]);
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_OK);

    let mut handle: *mut daiban_store = sentinel();
    assert_eq!(try_open(&path, &[8; 32], &mut handle), DAIBAN_WRONG_KEY);
    assert_eq!(handle, sentinel());
    assert!(last_error().unwrap().contains("密钥不正确"));
    assert_eq!(try_open(&path, &[7; 16], &mut handle), DAIBAN_KEY_LENGTH);
    assert_eq!(try_open(&path, &[], &mut handle), DAIBAN_KEY_LENGTH);
    assert_eq!(handle, sentinel());

    let s = open(&path);
    let n = c(&number);
    let (st, view) = out_string(|o| unsafe { daiban_store_get(s, n.as_ptr(), o) });
    assert_eq!(st, DAIBAN_OK, "{view}");
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_OK);
}

#[test]
fn a_damaged_file_is_moved_aside_not_crashed_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("village.db");
    std::fs::write(&path, vec![0x42; 8192]).unwrap();
    let mut handle: *mut daiban_store = sentinel();
    assert_eq!(try_open(&path, &KEY, &mut handle), DAIBAN_CORRUPT_DATABASE);
    assert_eq!(handle, sentinel());
    assert!(last_error().unwrap().contains("corrupt-"));
    // The next open starts a fresh store; the damaged file is still there.
    let s = open(&path);
    assert_eq!(total(s), 0);
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_OK);
    let kept = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".corrupt-")
        })
        .count();
    assert!(kept >= 1);
}

#[test]
fn the_last_error_is_per_thread_and_survives_successes() {
    let (_dir, s) = store();
    assert_eq!(search(s, "{").0, DAIBAN_INVALID_JSON);
    // A successful call in between does not wipe the message.
    assert_eq!(unsafe { daiban_string_free(ptr::null_mut()) }, DAIBAN_OK);
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, None, "another thread sees only its own failures");
    assert!(last_error().unwrap().contains("query_json"));
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_OK);
}

#[test]
fn status_messages_cover_every_code() {
    use std::ffi::CStr;
    for n in 0..1000u32 {
        let m = unsafe { CStr::from_ptr(daiban_status_message(n)) }
            .to_str()
            .unwrap();
        assert!(!m.is_empty());
    }
    let m = unsafe { CStr::from_ptr(daiban_status_message(DAIBAN_WRONG_KEY as u32)) };
    assert!(m.to_str().unwrap().contains("密钥"));
}

#[test]
fn sync_of_an_unenrolled_store_is_refused_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(&dir.path().join("t.db"));
    let (st, _) = register(h, &forms(21, 1)[0]);
    assert_eq!(st, DAIBAN_OK);
    let url = c("http://127.0.0.1:1");
    let mut out: *mut c_char = sentinel();
    // Not enrolled: refused before any request (there is no server at that address).
    let st = unsafe { daiban_store_sync(h, url.as_ptr(), &mut out) };
    assert_eq!(st, DAIBAN_NOT_ENROLLED, "{:?}", last_error());
    assert_eq!(out, sentinel(), "out-parameter untouched on failure");
    assert!(last_error().unwrap().contains("尚未注册"));
    // Enrolling needs the server: no link is a sync status, with the reason.
    let (st, message) = enroll(h, "http://127.0.0.1:1", None, "7KQM-X2PA-9DHT");
    assert_eq!(st, DAIBAN_SYNC, "{message}");
    assert!(
        message.contains("注册失败") && message.contains("无法连接"),
        "{message}"
    );
    // NULL arguments are refused before anything happens.
    assert_eq!(
        unsafe { daiban_store_sync(h, ptr::null(), &mut out) },
        DAIBAN_NULL_ARGUMENT
    );
    assert_eq!(
        unsafe { daiban_store_sync(h, url.as_ptr(), ptr::null_mut()) },
        DAIBAN_NULL_ARGUMENT
    );
    // The ticket is still there, waiting to upload.
    let (st, page) = search(h, "{}");
    assert_eq!(st, DAIBAN_OK);
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["sync_state"], "pending");
    assert_eq!(unsafe { daiban_store_free(h) }, DAIBAN_OK);
}
