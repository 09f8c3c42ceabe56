//! The device store on real SQLite files: registration, events, search, deadlines, and what
//! bad input and damage do (a clear error, nothing else lost).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use agent_core::demo;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::deadline::{ClockState, Light};
use agent_core::domain::event::{EventDraft, EventKind, Role};
use agent_core::domain::lifecycle::Status;
use agent_core::domain::ticket::{FormError, FormWarning, MaterialState, NewTicket};
use agent_core::store::{Query, Store};
use agent_core::Error;
use chrono::NaiveDate;
use common::*;

fn forms(n: usize) -> Vec<NewTicket> {
    demo::forms(11, n, &Catalog::demo())
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A form for a given item with all materials received.
fn form_for(code: &str) -> NewTicket {
    let catalog = Catalog::demo();
    let item = catalog.item(code).unwrap();
    let mut f = forms(1).remove(0);
    f.item_code = code.into();
    f.materials = item
        .materials
        .iter()
        .map(|m| agent_core::domain::ticket::MaterialInput {
            name: m.name.clone(),
            received: true,
            copies: None,
        })
        .collect();
    f.fee_fen = item.fee_fen;
    f.receipt_no = (item.fee_fen > 0).then(|| "SJ1".into());
    f
}

#[test]
fn register_get_and_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    let mut numbers = Vec::new();
    for f in forms(5) {
        let r = store.register(&f).unwrap();
        assert_eq!(r.view.life.status, Status::Registered);
        assert_eq!(r.view.deadline.state, ClockState::NotStarted);
        numbers.push(r.view.ticket.number.clone());
    }
    assert_eq!(
        numbers[0].as_str(),
        agent_core::domain::number::TicketNumber::new(101, 1, 1)
            .unwrap()
            .as_str()
    );
    assert_eq!(numbers[4].point(), 101);
    let mut sorted = numbers.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 5);
    let v = store.get(&numbers[2]).unwrap();
    assert_eq!(v.ticket.events.len(), 1);
    assert_eq!(v.ticket.events[0].kind, EventKind::Registered);
    assert_eq!(v.ticket.agent, "agent-101");
    drop(store);
    // Numbers continue after reopening.
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    let r = store.register(&forms(6)[5]).unwrap();
    assert_eq!(
        r.view.ticket.number,
        agent_core::domain::number::TicketNumber::new(101, 1, 6).unwrap()
    );
}

#[test]
fn form_warnings_missing_materials_and_fee() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    let mut f = form_for("SW005");
    f.materials[0].received = false;
    f.fee_fen = 8000;
    let r = store.register(&f).unwrap();
    assert!(r
        .warnings
        .iter()
        .any(|w| matches!(w, FormWarning::MaterialsMissing { names } if names.len() == 1)));
    assert!(r.warnings.contains(&FormWarning::FeeDiffers {
        statutory_fen: 5000,
        charged_fen: 8000
    }));
    assert_eq!(r.view.ticket.materials[0].state, MaterialState::Missing);
}

#[test]
fn bad_input_gets_a_clear_error_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    store.register(&forms(1)[0]).unwrap();

    let mut bad_id = forms(1).remove(0);
    let last = if bad_id.id_number.ends_with('1') {
        "2"
    } else {
        "1"
    };
    bad_id.id_number.replace_range(17.., last);
    let mut bad_phone = forms(1).remove(0);
    bad_phone.phone = Some("12345".into());
    let mut unknown_item = forms(1).remove(0);
    unknown_item.item_code = "ZZ999".into();
    let mut unknown_material = form_for("SB001");
    unknown_material.materials[0].name = "结婚证".into();
    let mut no_receipt = form_for("SW005");
    no_receipt.receipt_no = None;
    let mut no_name = forms(1).remove(0);
    no_name.applicant_name = "　 ".into();

    for (form, what) in [
        (bad_id, "ID"),
        (bad_phone, "phone"),
        (unknown_item, "item"),
        (unknown_material, "material"),
        (no_receipt, "receipt"),
        (no_name, "name"),
    ] {
        match store.register(&form) {
            Err(Error::Form(e)) => {
                let msg = e.to_string();
                assert!(!msg.is_empty(), "{what}");
                assert!(
                    !msg.contains(&form.id_number),
                    "{what}: message leaks the ID"
                );
                match what {
                    "item" => assert!(matches!(e, FormError::UnknownItem(_))),
                    "material" => assert!(matches!(e, FormError::UnknownMaterial { .. })),
                    "receipt" => assert!(matches!(e, FormError::ReceiptRequired)),
                    _ => assert!(matches!(e, FormError::Invalid(_)), "{what}: {e:?}"),
                }
            }
            other => panic!("{what}: expected a form error, got {other:?}"),
        }
    }
    assert_eq!(store.count().unwrap(), 1);
    // Full-width input is normalised, not refused.
    let mut wide = forms(2).remove(1);
    wide.id_number = wide
        .id_number
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
        .collect();
    wide.phone = Some(format!("+86 {}", wide.phone.unwrap()));
    let r = store.register(&wide).unwrap();
    assert!(r.view.ticket.applicant.id.stored.is_ascii());
    assert_eq!(
        r.view.ticket.applicant.phone.as_deref().map(str::len),
        Some(11)
    );
}

#[test]
fn agent_cannot_record_what_is_not_theirs_or_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    let n = store.register(&forms(1)[0]).unwrap().view.ticket.number;
    let completed = store.append(&n, &EventDraft::new(EventKind::Completed, ""));
    assert!(matches!(completed, Err(Error::Event(_))), "{completed:?}");
    let delivered = store.append(&n, &EventDraft::new(EventKind::Delivered, ""));
    assert!(matches!(delivered, Err(Error::Event(_))), "{delivered:?}");
    let long_note = EventDraft::new(EventKind::Withdrawn, "很".repeat(501));
    assert!(matches!(store.append(&n, &long_note), Err(Error::Event(_))));
    let mut odd_payload = EventDraft::new(EventKind::Withdrawn, "");
    odd_payload.payload = serde_json::json!(["not", "an", "object"]);
    assert!(matches!(
        store.append(&n, &odd_payload),
        Err(Error::Event(_))
    ));
    let v = store.get(&n).unwrap();
    assert_eq!(v.ticket.events.len(), 1);
    assert!(!v.life.needs_review);
    // Withdrawal before anything happened is fine.
    let v = store
        .append(&n, &EventDraft::new(EventKind::Withdrawn, "申请人撤回"))
        .unwrap();
    assert_eq!(v.life.status, Status::Withdrawn);
}

#[test]
fn deadlines_through_the_store_and_lights_as_days_pass() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 9, 28, 9));
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    // SB001 promises 5 working days.
    let n = store
        .register(&form_for("SB001"))
        .unwrap()
        .view
        .ticket
        .number;
    township(
        &mut store,
        &n,
        &[
            (
                EventKind::Received,
                Role::Server,
                at(2026, 9, 29, 8),
                none(),
            ),
            (
                EventKind::Accepted,
                Role::Township,
                at(2026, 9, 30, 10),
                none(),
            ),
        ],
    );
    let v = store.get(&n).unwrap();
    assert_eq!(v.life.status, Status::Accepted);
    assert_eq!(v.deadline.due, Some(date(2026, 10, 13)));

    clock.set(at(2026, 10, 9, 9)); // Fri: 10th (Sat, make-up day), 12th, 13th left
    let v = store.get(&n).unwrap();
    assert_eq!(v.deadline.remaining, Some(3));
    assert_eq!(v.deadline.light, Some(Light::Green));
    assert_eq!(store.due(0).unwrap().total, 0);

    clock.set(at(2026, 10, 12, 9));
    assert_eq!(store.get(&n).unwrap().deadline.light, Some(Light::Yellow));
    let due = store.due(0).unwrap();
    assert_eq!(due.total, 1);
    assert_eq!(due.items[0].light, Some(Light::Yellow));

    clock.set(at(2026, 10, 14, 9));
    let due = store.due(0).unwrap();
    assert_eq!(due.items[0].light, Some(Light::Red));
    assert_eq!(
        store
            .search(&Query {
                lights: vec![Light::Red],
                ..Query::default()
            })
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        store
            .search(&Query {
                lights: vec![Light::Green],
                ..Query::default()
            })
            .unwrap()
            .total,
        0
    );
}

#[test]
fn supplement_after_acceptance_pauses_the_clock_until_the_server_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    let n = store
        .register(&form_for("SB001"))
        .unwrap()
        .view
        .ticket
        .number;
    township(
        &mut store,
        &n,
        &[
            (
                EventKind::Received,
                Role::Server,
                at(2026, 3, 2, 12),
                none(),
            ),
            (
                EventKind::Accepted,
                Role::Township,
                at(2026, 3, 2, 14),
                none(),
            ), // due 03-09
            (
                EventKind::SupplementRequested,
                Role::Township,
                at(2026, 3, 4, 10),
                serde_json::json!({"missing": ["户口本复印件"]}),
            ),
        ],
    );
    clock.set(at(2026, 3, 6, 9));
    let v = store.get(&n).unwrap();
    assert_eq!(v.life.status, Status::AwaitingSupplement);
    assert_eq!(v.life.missing, vec!["户口本复印件".to_string()]);
    assert_eq!(v.deadline.state, ClockState::Paused);
    // The agent records the supplement on the tablet (device time, not legal)...
    let v = store
        .append(&n, &EventDraft::new(EventKind::SupplementProvided, ""))
        .unwrap();
    assert_eq!(v.life.status, Status::Accepted);
    assert_eq!(
        v.deadline.state,
        ClockState::Paused,
        "legal time comes from the server stamp"
    );
    // ...and the township server stamps its arrival on Friday 03-06: paused Thu+Fri = 2 days.
    let provided = v.ticket.events.last().unwrap().id.clone();
    township(
        &mut store,
        &n,
        &[(
            EventKind::Arrived,
            Role::Server,
            at(2026, 3, 6, 16),
            serde_json::json!({"of": provided}),
        )],
    );
    let v = store.get(&n).unwrap();
    assert_eq!(v.deadline.paused_days, 2);
    assert_eq!(v.deadline.due, Some(date(2026, 3, 11)));
}

#[test]
fn calendar_gap_is_a_warning_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 12, 21, 9));
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    let n = store
        .register(&form_for("MZ007"))
        .unwrap()
        .view
        .ticket
        .number; // 30 days
    township(
        &mut store,
        &n,
        &[
            (
                EventKind::Received,
                Role::Server,
                at(2026, 12, 28, 8),
                none(),
            ),
            (
                EventKind::Accepted,
                Role::Township,
                at(2026, 12, 28, 10),
                none(),
            ),
        ],
    );
    let v = store.get(&n).unwrap();
    assert_eq!(v.deadline.state, ClockState::Unknown { gap_year: 2027 });
    assert_eq!(v.deadline.warning.map(|w| w.year), Some(2027));
    assert_eq!(v.deadline.due, None);
    assert!(agent_core::domain::receipt::receipt_text(&v).contains("2027年节假日日历未导入"));
}

#[test]
fn search_by_status_item_date_id_phone_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    let all = forms(30);
    for (i, f) in all.iter().enumerate() {
        clock.set(at(2026, 3, 2 + (i as u32 % 10), 9));
        store.register(f).unwrap();
    }
    let page = store
        .search(&Query {
            page_size: 10,
            ..Query::default()
        })
        .unwrap();
    assert_eq!(page.total, 30);
    assert_eq!(page.items.len(), 10);
    assert!(page
        .items
        .windows(2)
        .all(|w| w[0].registered_on >= w[1].registered_on));
    // Masked in lists.
    assert!(page
        .items
        .iter()
        .all(|r| r.id_number.contains('*') && r.applicant.contains('*')));

    let target = &all[17];
    let by_id = store
        .search(&Query {
            id_number: Some(target.id_number.to_lowercase()),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(
        by_id.total as usize,
        all.iter()
            .filter(|f| f.id_number == target.id_number)
            .count()
    );
    let phone = target.phone.clone().unwrap();
    let spelled = format!("+86 {}-{}-{}", &phone[..3], &phone[3..7], &phone[7..]);
    let by_phone = store
        .search(&Query {
            phone: Some(spelled),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(by_phone.total, 1);
    let by_name = store
        .search(&Query {
            name: Some(target.applicant_name.clone()),
            ..Query::default()
        })
        .unwrap();
    assert!(by_name.total >= 1);

    let code = target.item_code.clone();
    let by_item = store
        .search(&Query {
            item_code: Some(code.to_lowercase()),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(
        by_item.total as usize,
        all.iter().filter(|f| f.item_code == code).count()
    );
    let by_date = store
        .search(&Query {
            registered_from: Some(date(2026, 3, 3)),
            registered_to: Some(date(2026, 3, 4)),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(by_date.total, 6);
    let by_status = store
        .search(&Query {
            statuses: vec![Status::Registered],
            ..Query::default()
        })
        .unwrap();
    assert_eq!(by_status.total, 30);
    assert_eq!(
        store
            .search(&Query {
                statuses: vec![Status::Accepted],
                ..Query::default()
            })
            .unwrap()
            .total,
        0
    );
    // Page size is capped.
    assert_eq!(
        store
            .search(&Query {
                page_size: 10_000,
                ..Query::default()
            })
            .unwrap()
            .page_size,
        200
    );
}

#[test]
fn legacy_15_digit_id_is_kept_and_found_by_its_18_digit_form() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    let mut f = forms(1).remove(0);
    // 15-digit legacy number: region 431023, born 1965-07-15, sequence 123.
    f.id_number = "431023650715123".into();
    let r = store.register(&f).unwrap();
    assert!(r.warnings.contains(&FormWarning::LegacyIdNumber));
    assert_eq!(r.view.ticket.applicant.id.stored, "431023650715123");
    let upgraded = r.view.ticket.applicant.id.search_key.clone();
    assert_eq!(upgraded.len(), 18);
    assert!(upgraded.starts_with("43102319650715123"));
    for q in [upgraded.as_str(), "431023650715123"] {
        let page = store
            .search(&Query {
                id_number: Some(q.into()),
                ..Query::default()
            })
            .unwrap();
        assert_eq!(page.total, 1, "{q}");
    }
}

#[test]
fn an_identity_that_cannot_number_tickets_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = TestClock::new(at(2026, 3, 2, 9));
    for (point, device) in [(0, 1), (10_000, 1), (1, 0), (1, 100)] {
        let mut o = options(Some(key(1)), &clock);
        o.point = point;
        o.device = device;
        assert!(
            matches!(Store::open(&path, o), Err(Error::Number(_))),
            "{point}/{device}"
        );
    }
    assert!(!path.exists(), "a refused open creates no file");
}

#[test]
fn wrong_key_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&path, Some(key(1)), &clock);
    for f in forms(3) {
        store.register(&f).unwrap();
    }
    drop(store);
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(
        Store::open(&path, options(Some(key(2)), &clock)),
        Err(Error::WrongKey)
    ));
    assert!(matches!(
        Store::open(&path, options(None, &clock)),
        Err(Error::KeyRequired)
    ));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a refused open must not write"
    );
    let store = open(&path, Some(key(1)), &clock);
    assert_eq!(store.count().unwrap(), 3);
}

#[test]
fn corrupted_document_is_quarantined_and_the_rest_is_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&path, Some(key(1)), &clock);
    let numbers: Vec<_> = forms(4)
        .iter()
        .map(|f| store.register(f).unwrap().view.ticket.number)
        .collect();
    drop(store);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let doc: Vec<u8> = conn
            .query_row(
                "SELECT doc FROM docs WHERE ticket = (SELECT id FROM tickets WHERE number = ?1)",
                [numbers[1].as_str()],
                |r| r.get(0),
            )
            .unwrap();
        let mut damaged = doc.clone();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0xFF;
        conn.execute(
            "UPDATE docs SET doc = ?2 WHERE ticket = (SELECT id FROM tickets WHERE number = ?1)",
            rusqlite::params![numbers[1].as_str(), damaged],
        )
        .unwrap();
    }
    let mut store = open(&path, Some(key(1)), &clock);
    match store.get(&numbers[1]) {
        Err(Error::CorruptDocument { number }) => assert_eq!(number, numbers[1].as_str()),
        other => panic!("expected CorruptDocument, got {other:?}"),
    }
    let q = store.quarantined().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].number, numbers[1].as_str());
    for n in [&numbers[0], &numbers[2], &numbers[3]] {
        assert_eq!(store.get(n).unwrap().ticket.number, *n);
    }
    assert_eq!(store.count().unwrap(), 3);
    // The damaged bytes are kept, not deleted.
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let kept: i64 = conn
        .query_row("SELECT length(doc) FROM quarantine", [], |r| r.get(0))
        .unwrap();
    assert!(kept > 100);
}

#[test]
fn truncated_database_is_moved_aside_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&path, Some(key(1)), &clock);
    for f in forms(300) {
        store.register(&f).unwrap();
    }
    drop(store);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let moved = match Store::open(&path, options(Some(key(1)), &clock)) {
        Err(Error::CorruptDatabase { moved_to }) => moved_to,
        Err(e) => panic!("expected CorruptDatabase, got {e:?}"),
        Ok(_) => panic!("expected CorruptDatabase, opened fine"),
    };
    assert!(moved.exists());
    assert_eq!(std::fs::metadata(&moved).unwrap().len(), len / 2);
    // The next open starts afresh; the damaged file stays for recovery.
    let store = open(&path, Some(key(1)), &clock);
    assert_eq!(store.count().unwrap(), 0);
    assert!(moved.exists());
}

#[test]
fn garbage_and_foreign_documents_are_refused_on_merge() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&dir.path().join("a.db"), Some(key(1)), &clock);
    let n = store.register(&forms(1)[0]).unwrap().view.ticket.number;
    assert!(store.merge_remote(b"not automerge at all").is_err());
    assert!(store.merge_remote(&[]).is_err());
    let mut bytes = store.export(&n).unwrap();
    bytes.truncate(bytes.len() / 2);
    assert!(store.merge_remote(&bytes).is_err());
    // A ticket from another point.
    let mut other = Store::open(dir.path().join("b.db"), {
        let mut o = options(Some(key(1)), &clock);
        o.point = 202;
        o
    })
    .unwrap();
    let theirs = other.register(&forms(1)[0]).unwrap().view.ticket.number;
    let bytes = other.export(&theirs).unwrap();
    assert!(matches!(store.merge_remote(&bytes), Err(Error::Event(_))));
    assert_eq!(store.count().unwrap(), 1);
    assert_eq!(store.get(&n).unwrap().ticket.events.len(), 1);
}

#[test]
fn many_changes_compact_and_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&path, Some(key(1)), &clock);
    let n = store
        .register(&form_for("SB001"))
        .unwrap()
        .view
        .ticket
        .number;
    township(
        &mut store,
        &n,
        &[
            (
                EventKind::Received,
                Role::Server,
                at(2026, 3, 2, 12),
                none(),
            ),
            (
                EventKind::Accepted,
                Role::Township,
                at(2026, 3, 2, 14),
                none(),
            ),
        ],
    );
    for i in 0..20 {
        let kind = if i % 2 == 0 {
            EventKind::SupplementRequested
        } else {
            EventKind::SupplementProvided
        };
        if kind == EventKind::SupplementRequested {
            township(
                &mut store,
                &n,
                &[(
                    kind,
                    Role::Township,
                    at(2026, 3, 3, 9),
                    serde_json::json!({"missing": ["一寸照片2张"]}),
                )],
            );
        } else {
            store.append(&n, &EventDraft::new(kind, "")).unwrap();
        }
    }
    drop(store);
    let mut store = open(&path, Some(key(1)), &clock);
    let v = store.get(&n).unwrap();
    assert_eq!(v.ticket.events.len(), 23);
    assert_eq!(v.life.status, Status::Accepted);
    assert!(!v.life.needs_review);
}

#[test]
fn a_first_open_that_died_before_setup_opens_fine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = TestClock::new(at(2026, 3, 2, 9));
    drop(open(&path, Some(key(1)), &clock));
    // As if killed after the schema was made but before the key check was written.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("DELETE FROM meta", []).unwrap();
    drop(conn);
    let mut store = open(&path, Some(key(1)), &clock);
    store.register(&forms(1)[0]).unwrap();
    drop(store);
    assert!(matches!(
        Store::open(&path, options(Some(key(2)), &clock)),
        Err(Error::WrongKey)
    ));
}

#[test]
fn misspelt_fields_are_refused_not_ignored() {
    let q: Result<Query, _> = serde_json::from_str(r#"{"id": "110101199003071234"}"#);
    assert!(
        q.is_err(),
        "a query with an unknown field must not match everything"
    );
    let mut form = serde_json::to_value(&forms(1)[0]).unwrap();
    form["phonenumber"] = serde_json::json!("13800138000");
    assert!(serde_json::from_value::<NewTicket>(form).is_err());
    assert!(serde_json::from_str::<EventDraft>(r#"{"kind":"withdrawn","notes":"x"}"#).is_err());
}

#[test]
fn a_partial_supplement_marks_only_what_was_handed_in() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    let mut f = form_for("SB001");
    f.materials[0].received = false;
    f.materials[1].received = false;
    let n = store.register(&f).unwrap().view.ticket.number;
    let (m0, m1) = (f.materials[0].name.clone(), f.materials[1].name.clone());
    township(
        &mut store,
        &n,
        &[
            (
                EventKind::Received,
                Role::Server,
                at(2026, 3, 2, 12),
                none(),
            ),
            (
                EventKind::SupplementRequested,
                Role::Township,
                at(2026, 3, 2, 14),
                serde_json::json!({ "missing": [m0, m1] }),
            ),
        ],
    );
    let bogus = EventDraft::new(EventKind::SupplementProvided, "").with("provided", vec!["结婚证"]);
    assert!(matches!(store.append(&n, &bogus), Err(Error::Event(_))));
    let partial =
        EventDraft::new(EventKind::SupplementProvided, "").with("provided", vec![m0.clone()]);
    let v = store.append(&n, &partial).unwrap();
    let state = |name: &str| {
        v.ticket
            .materials
            .iter()
            .find(|m| m.name == name)
            .unwrap()
            .state
    };
    assert_eq!(state(&m0), MaterialState::Received);
    assert_eq!(state(&m1), MaterialState::Missing);
}
