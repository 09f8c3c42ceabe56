//! The main job through the ABI: open, register, append, get, list, due, receipt, catalog
//! and calendar, reopen; and nothing the library returned is left unfreed.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use daiban::*;
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

#[test]
fn a_village_day_through_the_abi() {
    let strings_before = live_strings();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("village.db");
    let s = open(&path);

    let forms = forms(11, 3);
    let (st, first) = register(s, &forms[0]);
    assert_eq!(st, DAIBAN_OK, "{first}");
    let first = json(&first);
    let number = first["view"]["ticket"]["number"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(number.len(), 12);
    assert_eq!(first["view"]["life"]["status"], "registered");
    assert!(first["warnings"].is_array());
    for w in first["warnings"].as_array().unwrap() {
        assert!(w["message"].is_string(), "{w}");
    }
    for f in &forms[1..] {
        register_ok(s, f);
    }

    // Append: the applicant withdraws.
    let n = c(&number);
    let (st, view) = out_string(|o| unsafe {
        daiban_store_append(
            s,
            n.as_ptr(),
            c"{\"kind\": \"withdrawn\", \"note\": \"申请人撤回\"}".as_ptr(),
            o,
        )
    });
    assert_eq!(st, DAIBAN_OK, "{view}");
    assert_eq!(json(&view)["life"]["status"], "withdrawn");

    // Get: status, deadline, light, 需核对, the full applicant.
    let spaced = c(&format!("{} {}", &number[..6], &number[6..]));
    let (st, view) = out_string(|o| unsafe { daiban_store_get(s, spaced.as_ptr(), o) });
    assert_eq!(st, DAIBAN_OK, "{view}");
    let view = json(&view);
    assert_eq!(view["ticket"]["number"], number.as_str());
    assert_eq!(view["life"]["needs_review"], false);
    assert!(view["deadline"].get("light").is_some());
    assert!(
        view["ticket"]["applicant"]["id"]["stored"]
            .as_str()
            .unwrap()
            .len()
            == 18
    );

    // List: masked rows, paging.
    let (st, page) = search(s, r#"{"page_size": 2}"#);
    assert_eq!(st, DAIBAN_OK, "{page}");
    let page = json(&page);
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert!(page["items"][0]["id_number"]
        .as_str()
        .unwrap()
        .contains("**"));
    let (_, p2) = search(s, r#"{"page_size": 2, "page": 1}"#);
    assert_eq!(json(&p2)["items"].as_array().unwrap().len(), 1);
    let (_, withdrawn) = search(s, r#"{"statuses": ["withdrawn"]}"#);
    assert_eq!(json(&withdrawn)["total"], 1);

    // Due: nothing has been accepted, so nothing is due.
    let (st, due) = out_string(|o| unsafe { daiban_store_due(s, 0, o) });
    assert_eq!(st, DAIBAN_OK, "{due}");
    assert_eq!(json(&due)["total"], 0);

    // Receipt.
    let (st, receipt) = out_string(|o| unsafe { daiban_store_receipt(s, n.as_ptr(), o) });
    assert_eq!(st, DAIBAN_OK);
    assert!(
        receipt.starts_with("为民服务全程代理承办单（回执）"),
        "{receipt}"
    );
    assert!(receipt.contains(&number));

    // Catalog and calendar round trip.
    let (st, catalog) = out_string(|o| unsafe { daiban_store_catalog(s, o) });
    assert_eq!(st, DAIBAN_OK);
    let cat = c(&catalog);
    assert_eq!(
        unsafe { daiban_store_set_catalog(s, cat.as_ptr()) },
        DAIBAN_OK
    );
    let (st, csv) = out_string(|o| unsafe { daiban_store_calendar(s, o) });
    assert_eq!(st, DAIBAN_OK);
    assert!(csv.contains("2026-10-01"), "{csv}");
    let cal = c(&csv);
    assert_eq!(
        unsafe { daiban_store_set_calendar(s, cal.as_ptr()) },
        DAIBAN_OK
    );

    // Reopen: everything is still there.
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_OK);
    let s = open(&path);
    assert_eq!(total(s), 3);
    assert_eq!(unsafe { daiban_store_free(s) }, DAIBAN_OK);
    assert_eq!(
        live_strings(),
        strings_before,
        "every returned string was freed"
    );
}
