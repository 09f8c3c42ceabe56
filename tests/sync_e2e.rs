//! The three levels as separate processes over loopback HTTP: a district server, two
//! township servers and three village tablets. Register offline at the villages → sync →
//! township 柏林镇 handles one ticket itself and forwards another to a district window → the
//! window completes it at the district → results come back down to the villages → delivered;
//! every replica shows the same status, and each holds only its scope.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use agent_core::domain::event::{EventDraft, EventKind};
use agent_core::domain::lifecycle::Status;
use agent_core::domain::number::TicketNumber;
use agent_core::store::Store;
use agent_core::sync::client::sync_now;
use serde_json::json;

use support::*;

fn form(code: &str, seed: u64) -> agent_core::domain::ticket::NewTicket {
    let catalog = agent_core::domain::catalog::Catalog::demo();
    let item = catalog.item(code).unwrap();
    agent_core::demo::form(
        &mut agent_core::demo::Rng::new(seed),
        item,
        seed as usize,
        true,
    )
}

#[test]
fn a_ticket_goes_from_village_to_district_window_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let (district, bailin) = district_and_township(dir.path());
    let longtan = start_township(dir.path(), TOWNSHIP_B, &district);
    let mut a = tablet(dir.path(), &bailin, 101, 1);
    let mut b = tablet(dir.path(), &bailin, 102, 1);
    let mut c = tablet(dir.path(), &longtan, 201, 1);

    // Offline at the village points.
    let a1 = a.register(&form("YB012", 1)).unwrap().view.ticket.number;
    let b1 = b.register(&form("SB001", 3)).unwrap().view.ticket.number;
    let c1 = c.register(&form("GA004", 2)).unwrap().view.ticket.number;

    // The links come up: each tablet's tickets go up in one round trip; the township's
    // `received` stamp comes back; the directory and catalog come down.
    for (store, server) in [(&mut a, &bailin), (&mut b, &bailin), (&mut c, &longtan)] {
        let r = sync_now(store, &server.url).unwrap();
        assert_eq!((r.uploaded, r.refused, r.failed), (1, 0, 0), "{r:?}");
        assert!(!store.directory().unwrap().district.points.is_empty());
    }
    assert_eq!(a.get(&a1).unwrap().life.status, Status::Received);

    // 柏林镇 handles a1 itself and forwards b1 to a district window.
    staff_ok(&bailin, "township", &a1, "accepted", json!({}));
    staff_ok(&bailin, "township", &a1, "handled", json!({}));
    staff_ok(
        &bailin,
        "township",
        &a1,
        "completed",
        json!({ "outcome": "approved", "certificate_no": "YL2026-001" }),
    );
    staff_ok(&bailin, "township", &a1, "returned", json!({}));
    staff_ok(&bailin, "township", &b1, "accepted", json!({}));
    staff_ok(
        &bailin,
        "township",
        &b1,
        "forwarded",
        json!({ "window": "人社局窗口" }),
    );
    sync_upward(&bailin);
    sync_upward(&longtan);
    assert_eq!(server_status(&district, &b1), "forwarded");

    // The window completes b1 at the district; it flows down to 柏林镇, which returns it.
    staff_ok(
        &district,
        "window",
        &b1,
        "completed",
        json!({ "outcome": "approved", "certificate_no": "SB2026-088" }),
    );
    sync_upward(&bailin);
    assert_eq!(server_status(&bailin, &b1), "completed");
    staff_ok(&bailin, "township", &b1, "returned", json!({}));

    // Back at the villages: the results arrive and are delivered.
    sync_now(&mut a, &bailin.url).unwrap();
    sync_now(&mut b, &bailin.url).unwrap();
    assert_eq!(a.get(&a1).unwrap().life.status, Status::Returned);
    assert_eq!(b.get(&b1).unwrap().life.status, Status::Returned);
    for (store, n) in [(&mut a, &a1), (&mut b, &b1)] {
        store
            .append(n, &EventDraft::new(EventKind::Delivered, "本人签收"))
            .unwrap();
        sync_now(store, &bailin.url).unwrap();
    }
    sync_upward(&bailin);
    sync_upward(&longtan);

    // Every replica shows the same status, and the same events.
    let same = |store: &mut Store, n: &TicketNumber, township: &Server| {
        let v = store.get(n).unwrap();
        assert_eq!(v.life.status, Status::Delivered, "{n}");
        assert!(!v.life.needs_review, "{n}");
        let events = v.ticket.events.len();
        for (server, role) in [(township, "township"), (&district, "window")] {
            let sv = server_view(server, n).unwrap();
            assert_eq!(sv["life"]["status"], "delivered", "{n} on {role}");
            assert_eq!(
                sv["ticket"]["events"].as_array().unwrap().len(),
                events,
                "{n} on {role}"
            );
        }
    };
    same(&mut a, &a1, &bailin);
    same(&mut b, &b1, &bailin);
    assert_eq!(c.get(&c1).unwrap().life.status, Status::Received);
    assert_eq!(server_status(&district, &c1), "received");

    // Scope: each tablet holds only its point's tickets; 龙潭镇 none of 柏林镇's.
    assert_eq!(
        (a.count().unwrap(), b.count().unwrap(), c.count().unwrap()),
        (1, 1, 1)
    );
    assert!(server_view(&longtan, &a1).is_none());
    assert!(server_view(&bailin, &c1).is_none());

    // A sync with nothing to do: one round trip of a few hundred bytes, tablet and township.
    let noop = sync_now(&mut a, &bailin.url).unwrap();
    assert_eq!(noop.rounds, 1, "{noop:?}");
    assert!(noop.bytes_up + noop.bytes_down < 300, "{noop:?}");
    let up = sync_upward(&bailin);
    assert_eq!(up["rounds"], 1, "{up}");
    assert!(
        up["bytes_up"].as_u64().unwrap() + up["bytes_down"].as_u64().unwrap() < 300,
        "{up}"
    );
}

/// A township restored from an older backup forgot tickets and events its tablets and its
/// district already have; after one sync each way everything is back, nothing twice.
#[test]
fn a_township_restored_from_an_old_backup_gets_everything_back() {
    let dir = tempfile::tempdir().unwrap();
    let (district, mut bailin) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &bailin, 101, 1);
    let t1 = a.register(&form("YB012", 1)).unwrap().view.ticket.number;
    sync_now(&mut a, &bailin.url).unwrap();
    staff_ok(&bailin, "township", &t1, "accepted", json!({}));
    sync_upward(&bailin);
    let backup = dir.path().join("bailin-backup.db");
    cli(&["backup", "--to", backup.to_str().unwrap()], &bailin.data);

    // After the backup: a ticket and a township action that reached the district, and a
    // ticket that reached only the township.
    let t2 = a.register(&form("SB001", 2)).unwrap().view.ticket.number;
    sync_now(&mut a, &bailin.url).unwrap();
    staff_ok(
        &bailin,
        "township",
        &t1,
        "special_started",
        json!({ "procedure": "实地核查" }),
    );
    sync_upward(&bailin);
    let t3 = a.register(&form("GA004", 3)).unwrap().view.ticket.number;
    sync_now(&mut a, &bailin.url).unwrap();

    bailin.kill();
    cli(
        &["restore", "--from", backup.to_str().unwrap()],
        &bailin.data,
    );
    let bailin = serve(&bailin.data);
    assert!(server_view(&bailin, &t2).is_none());
    assert!(server_view(&bailin, &t3).is_none());

    sync_upward(&bailin);
    let r = sync_now(&mut a, &bailin.url).unwrap();
    let states: Vec<_> = a
        .search(&agent_core::store::Query::default())
        .unwrap()
        .items
        .into_iter()
        .map(|s| (s.number, s.sync_state, s.sync_reason))
        .collect();
    assert!(
        r.uploaded >= 3,
        "the tablet re-sent everything: {r:?} {states:?}"
    );
    sync_upward(&bailin);
    sync_now(&mut a, &bailin.url).unwrap();

    for n in [&t1, &t2, &t3] {
        let v = a.get(n).unwrap();
        let ids: std::collections::HashSet<_> = v.ticket.events.iter().map(|e| &e.id).collect();
        assert_eq!(ids.len(), v.ticket.events.len(), "{n}: an event twice");
        let received = v
            .ticket
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Received)
            .count();
        assert_eq!(received, 1, "{n}");
        for (server, role) in [(&bailin, "township"), (&district, "window")] {
            let sv = server_view(server, n).unwrap_or_else(|| panic!("{n} lost on {role}"));
            assert_eq!(
                sv["life"]["status"],
                v.life.status.as_str(),
                "{n} on {role}"
            );
            assert_eq!(
                sv["ticket"]["events"].as_array().unwrap().len(),
                v.ticket.events.len(),
                "{n} on {role}"
            );
        }
    }
    assert!(
        a.get(&t1).unwrap().life.special,
        "the special procedure came back from the district"
    );
}

/// A township on its own schedule: what a tablet uploads reaches the district a few seconds
/// later without anyone asking (the nudge after a change), and so does a staff action.
#[test]
fn a_township_syncs_upward_by_itself_soon_after_changes() {
    let dir = tempfile::tempdir().unwrap();
    let district_data = dir.path().join("district");
    init_district(&district_data);
    let district = serve(&district_data);
    let data = dir.path().join("township");
    cli(
        &[
            "init",
            "--role",
            "township",
            "--name",
            "柏林镇",
            "--township",
            TOWNSHIP_A,
            "--parent",
            &district.url,
        ],
        &data,
    );
    add_staff_ok(&data, staff_login("township"), "township_staff");
    enroll_township(&district, &data, TOWNSHIP_A);
    let township = serve(&data);
    let mut a = new_tablet(dir.path(), 101, 1);
    let n = a.register(&form("YB012", 1)).unwrap().view.ticket.number;
    // The first scheduled sync runs at start and brings the directory down; until then the
    // township refuses tablets of points it does not know yet.
    let until = |what: &str, ok: &mut dyn FnMut() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    // The township issues a code for point 101 once it knows the point.
    let mut code = None;
    until("the directory", &mut || {
        let out = std::process::Command::new(server_binary())
            .args(["enroll-code", "--point", "101", "--device", "1", "--data"])
            .arg(&data)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        code = text
            .lines()
            .find_map(|l| l.strip_prefix("enrollment code: "))
            .map(str::to_owned);
        code.is_some()
    });
    agent_core::sync::enroll::enroll(&mut a, &township.url, &code.unwrap()).unwrap();
    sync_now(&mut a, &township.url).unwrap();
    until("the ticket at the district", &mut || {
        server_status(&district, &n) == "received"
    });
    staff_ok(&township, "township", &n, "accepted", json!({}));
    until("the acceptance at the district", &mut || {
        server_status(&district, &n) == "accepted"
    });
}
