//! Convergence under partitions: a district, two townships and 50 tablets (real server
//! processes; tablets are agent-core stores), every link behind a relay that cuts responses
//! at random. For several rounds each side works offline — agents register, withdraw, hand in
//! supplements and deliver; township staff accept, ask for supplements, reject, handle,
//! forward, complete and return; window staff complete — so events conflict (a withdrawal
//! while the township completes, two devices of one point acting on one ticket), and each
//! link is up only some of the time. Then the links heal, and every replica of every ticket
//! must hold the same Automerge document (same heads), status and 需核对 flag.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use agent_core::demo::{self, Rng};
use agent_core::doc::TicketDoc;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::event::{EventDraft, EventKind};
use agent_core::domain::lifecycle::Status;
use agent_core::domain::number::TicketNumber;
use agent_core::store::Store;
use agent_core::sync::client::sync_now;
use automerge::ActorId;
use serde_json::json;

use support::*;

const ROUNDS: usize = 10;
/// Chance (percent) that a link is up in a round.
const LINK_UP: u64 = 50;
/// Chance (percent) that a relay cuts a response.
const CUT: u32 = 15;

struct Tablet {
    store: Store,
    township: usize,
}

/// The heads of every ticket document in a server's database.
fn server_heads(data: &Path) -> BTreeMap<String, Vec<automerge::ChangeHash>> {
    let conn = rusqlite::Connection::open_with_flags(
        data.join("server.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn.prepare("SELECT ticket, doc FROM docs").unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .unwrap();
    rows.map(|r| {
        let (n, doc) = r.unwrap();
        let mut doc = TicketDoc::load(&doc, &ActorId::random()).unwrap();
        (n, doc.heads())
    })
    .collect()
}

#[test]
fn fifty_tablets_two_townships_and_a_district_converge_after_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let district_data = dir.path().join("district");
    init_district(&district_data);
    let district = serve(&district_data);
    let mut townships = Vec::new();
    let mut relays_up = Vec::new();
    for (i, code) in [TOWNSHIP_A, TOWNSHIP_B].into_iter().enumerate() {
        let up = FlakyProxy::start(&district.url, 0, 11 + i as u64);
        let server = start_township_via(dir.path(), code, &district, &up.url);
        townships.push(server);
        relays_up.push(up);
    }
    let relays_down: Vec<FlakyProxy> = townships
        .iter()
        .enumerate()
        .map(|(i, t)| FlakyProxy::start(&t.url, CUT, 21 + i as u64))
        .collect();
    for r in &relays_up {
        r.set_drop_percent(CUT);
    }
    // 50 tablets: points 101–106 (柏林镇) with 6 devices each, 201–202 (龙潭镇) with 7.
    let mut tablets: Vec<Tablet> = Vec::new();
    for (points, devices, township) in [(101..=106, 6, 0), (201..=202, 7, 1)] {
        for point in points {
            for device in 1..=devices {
                tablets.push(Tablet {
                    store: tablet(dir.path(), &townships[township], point, device),
                    township,
                });
            }
        }
    }
    assert!(tablets.len() >= 50);

    let catalog = Catalog::demo();
    let mut rng = Rng::new(2026);
    let mut numbers: BTreeSet<TicketNumber> = BTreeSet::new();
    let roll = |rng: &mut Rng, percent: u64| rng.below(100) < percent;
    for _round in 0..ROUNDS {
        // Offline work at the villages.
        for t in tablets.iter_mut() {
            if roll(&mut rng, 30) {
                let form = demo::forms(rng.next_u64(), 1, &catalog).pop().unwrap();
                numbers.insert(t.store.register(&form).unwrap().view.ticket.number);
            }
            let held: Vec<TicketNumber> = numbers
                .iter()
                .filter(|n| n.point() == t.store.point())
                .cloned()
                .collect();
            for n in held {
                let Ok(view) = t.store.get(&n) else { continue };
                let kind = match view.life.status {
                    Status::Returned => EventKind::Delivered,
                    Status::AwaitingSupplement => EventKind::SupplementProvided,
                    Status::Received | Status::Accepted if roll(&mut rng, 10) => {
                        EventKind::Withdrawn
                    }
                    _ => continue,
                };
                if roll(&mut rng, 40) {
                    // Refusals (e.g. a supplement of nothing missing) are fine here.
                    let _ = t.store.append(&n, &EventDraft::new(kind, "村代理员操作"));
                }
            }
        }
        // Offline work at the townships and the district window.
        for n in &numbers {
            let township = &townships[usize::from(n.point() >= 200)];
            if !roll(&mut rng, 50) {
                continue;
            }
            let (kind, payload) = match rng.below(8) {
                0 | 1 => ("accepted", json!({})),
                2 => (
                    "supplement_requested",
                    json!({ "missing": ["户口本复印件"] }),
                ),
                3 => ("handled", json!({})),
                4 => ("forwarded", json!({ "window": "民政局窗口" })),
                5 => ("completed", json!({ "outcome": "approved" })),
                6 => ("returned", json!({})),
                _ => ("rejected", json!({ "reason": "不符合条件" })),
            };
            // The API refuses what the lifecycle does not allow; that is part of the run.
            staff_event(township, "township", n, kind, payload);
            if roll(&mut rng, 30) {
                staff_event(
                    &district,
                    "window",
                    n,
                    "completed",
                    json!({ "outcome": "denied", "reason": "材料不全" }),
                );
            }
        }
        // Links come and go; relays cut some responses in flight.
        for t in tablets.iter_mut() {
            if roll(&mut rng, LINK_UP) {
                let _ = sync_now(&mut t.store, &relays_down[t.township].url);
            }
        }
        for township in &townships {
            if roll(&mut rng, LINK_UP) {
                let _ = reqwest::blocking::Client::new()
                    .post(format!("{}/api/upstream/sync", township.url))
                    .header("authorization", support::bearer(&township.url, "township"))
                    .send();
            }
        }
    }
    let cut: u32 = relays_up
        .iter()
        .chain(&relays_down)
        .map(|r| r.dropped.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert!(cut > 0, "no link was ever cut: the run did not test drops");

    // The links heal.
    for r in relays_up.iter().chain(&relays_down) {
        r.set_drop_percent(0);
    }
    for _ in 0..3 {
        for t in tablets.iter_mut() {
            sync_now(&mut t.store, &relays_down[t.township].url).unwrap();
        }
        for township in &townships {
            sync_upward(township);
        }
    }

    // Every replica of every ticket: same document, status and 需核对 flag.
    let district_heads = server_heads(&district.data);
    let township_heads: Vec<_> = townships.iter().map(|t| server_heads(&t.data)).collect();
    let mut review = 0;
    for n in &numbers {
        let town = usize::from(n.point() >= 200);
        let heads = &district_heads[n.as_str()];
        assert_eq!(
            &township_heads[town][n.as_str()],
            heads,
            "{n}: township differs"
        );
        assert!(
            !township_heads[1 - town].contains_key(n.as_str()),
            "{n} leaked"
        );
        let expected = server_view(&district, n).unwrap();
        for t in tablets.iter_mut().filter(|t| t.store.point() == n.point()) {
            let mut doc = TicketDoc::load(&t.store.export(n).unwrap(), &ActorId::random()).unwrap();
            assert_eq!(
                &doc.heads(),
                heads,
                "{n}: tablet {} differs",
                t.store.device()
            );
            let v = t.store.get(n).unwrap();
            assert_eq!(expected["life"]["status"], v.life.status.as_str(), "{n}");
            assert_eq!(expected["life"]["needs_review"], v.life.needs_review, "{n}");
        }
        review += usize::from(expected["life"]["needs_review"] == true);
    }
    println!(
        "{} tickets on {} tablets converged; {review} flagged 需核对; {cut} responses cut",
        numbers.len(),
        tablets.len()
    );
    assert!(
        review > 0,
        "no conflicting events happened: the run did not test conflicts"
    );
}
