//! Encryption at rest: with 10,000 tickets in a store, no applicant's ID number, phone or name
//! appears anywhere in the database files (main file, WAL, shared memory, journal). The same
//! data in a plaintext store is found, which shows the search itself works.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use agent_core::demo;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::ticket::NewTicket;
use aho_corasick::AhoCorasick;
use common::*;

const TICKETS: usize = 10_000;

/// Every file SQLite may have written for `db`.
fn files(db: &Path) -> Vec<Vec<u8>> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .filter_map(|s| std::fs::read(format!("{}{s}", db.display())).ok())
        .collect()
}

/// How many of the needles occur in any of the files.
fn found(needles: &[String], db: &Path) -> usize {
    let ac = AhoCorasick::new(needles).unwrap();
    let mut hit = vec![false; needles.len()];
    for bytes in files(db) {
        for m in ac.find_overlapping_iter(&bytes) {
            hit[m.pattern().as_usize()] = true;
        }
    }
    hit.iter().filter(|h| **h).count()
}

fn fill(
    db: &Path,
    key: Option<agent_core::crypto::StoreKey>,
    forms: &[NewTicket],
) -> agent_core::store::Store {
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(db, key, &clock);
    for f in forms {
        store.register(f).unwrap();
    }
    store
}

#[test]
fn no_personal_data_in_clear_with_a_key_and_all_of_it_without() {
    let forms = demo::forms(99, TICKETS, &Catalog::demo());
    let mut ids: Vec<String> = forms.iter().map(|f| f.id_number.clone()).collect();
    let mut phones: Vec<String> = forms.iter().filter_map(|f| f.phone.clone()).collect();
    let mut names: Vec<String> = forms.iter().map(|f| f.applicant_name.clone()).collect();
    for v in [&mut ids, &mut phones, &mut names] {
        v.sort();
        v.dedup();
    }
    // The catalog and calendar are public and stored in clear; a two-character name such as
    // 于建 also occurs inside 关于建立 there, so such names cannot be told apart and are left out.
    let public = format!(
        "{}{}",
        serde_json::to_string(&Catalog::demo()).unwrap(),
        agent_core::domain::calendar::Calendar::default_cn().to_csv()
    );
    let before = names.len();
    names.retain(|n| !public.contains(n.as_str()));
    assert!(
        before - names.len() < 10,
        "too many names occur in public text"
    );
    assert!(names.len() > 500 && ids.len() > 9_000 && phones.len() > 9_000);

    let dir = tempfile::tempdir().unwrap();
    let sealed = dir.path().join("sealed.db");
    let plain = dir.path().join("plain.db");

    // While open (WAL holds recent pages) and after close.
    let store = fill(&sealed, Some(key(3)), &forms);
    assert_eq!(store.count().unwrap(), TICKETS as u64);
    for (what, needles) in [("ID numbers", &ids), ("phones", &phones), ("names", &names)] {
        assert_eq!(
            found(needles, &sealed),
            0,
            "{what} found in clear in the sealed store (open)"
        );
    }
    drop(store);
    for (what, needles) in [("ID numbers", &ids), ("phones", &phones), ("names", &names)] {
        assert_eq!(
            found(needles, &sealed),
            0,
            "{what} found in clear in the sealed store (closed)"
        );
    }

    // Encryption off, same data: the same search finds every one of them.
    let store = fill(&plain, None, &forms);
    drop(store);
    for (what, needles) in [("ID numbers", &ids), ("phones", &phones), ("names", &names)] {
        assert_eq!(
            found(needles, &plain),
            needles.len(),
            "{what} not all found in the plaintext store"
        );
    }
}
