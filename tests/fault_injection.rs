//! Server processes killed with SIGKILL while a sync request is in flight. Each trial starts
//! a township or the district with a fault point (`DAIBAN_FAULT`), runs a sync against it,
//! waits until the server reports that it stopped at that point — after the request arrived,
//! before it committed, or after it committed but before the response was sent — kills it
//! there, and restarts it on the same port; the client retries the same request. At the end
//! every link heals and every replica must hold every ticket once, with the same events.
//!
//! `DAIBAN_FAULT_TRIALS` sets the number of trials (20 by default; the bench run uses 1,000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use agent_core::demo::{self, Rng};
use agent_core::domain::catalog::Catalog;
use agent_core::domain::number::TicketNumber;
use agent_core::store::Store;
use agent_core::sync::client::sync_now;
use serde_json::{json, Value};

use support::*;

const POINTS: [&str; 3] = [
    "sync-received",
    "sync-before-commit",
    "sync-before-response",
];

/// Restart `server` on its port, with `env`.
fn restart(server: &mut Server, env: &[(&str, &str)], capture: bool) {
    let addr = server.addr().to_owned();
    let data = server.data.clone();
    server.kill();
    *server = serve_with(&data, &addr, env, capture);
}

#[test]
fn servers_killed_mid_request_lose_and_duplicate_nothing() {
    let trials: usize = std::env::var("DAIBAN_FAULT_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let (mut district, mut township) = district_and_township(dir.path());
    let mut tablets: Vec<Store> = (101..=103)
        .map(|p| tablet(dir.path(), &township, p, 1))
        .collect();
    let catalog = Catalog::demo();
    let mut rng = Rng::new(7);
    let mut registered: Vec<TicketNumber> = Vec::new();
    let mut hits: BTreeMap<String, usize> = BTreeMap::new();
    // Syncs whose retry (the same request) succeeded on the restarted server.
    let mut retried_ok = 0;

    for trial in 0..trials {
        // New work everywhere: tickets registered offline, the township accepting some.
        let t = rng.below(tablets.len() as u64) as usize;
        let forms = demo::forms(rng.next_u64(), 1 + rng.below(3) as usize, &catalog);
        for form in &forms {
            registered.push(tablets[t].register(form).unwrap().view.ticket.number);
        }
        for n in registered.iter().filter(|_| rng.below(4) == 0) {
            // Refused when not yet at the township or already accepted: both fine here.
            staff_event(&township, "township", n, "accepted", json!({}));
        }

        let point = POINTS[rng.below(POINTS.len() as u64) as usize];
        let at_district = rng.below(2) == 0;
        let fault = [("DAIBAN_FAULT", point)];
        let target = if at_district {
            &mut district
        } else {
            &mut township
        };
        restart(target, &fault, true);
        let killed = std::thread::scope(|s| {
            let client = if at_district {
                let url = township.url.clone();
                s.spawn(move || {
                    reqwest::blocking::Client::new()
                        .post(format!("{url}/api/upstream/sync"))
                        .header("authorization", support::bearer(&url, "township"))
                        .send()
                        .map(|r| r.status().is_success())
                        .unwrap_or(false)
                })
            } else {
                let url = township.url.clone();
                let store = &mut tablets[t];
                s.spawn(move || sync_now(store, &url).is_ok())
            };
            let target = if at_district {
                &mut district
            } else {
                &mut township
            };
            // The kill lands at the fault point: mid-request by construction.
            let reached = target.wait_for_stderr(&format!("fault point reached: {point}"));
            restart(target, &[], false);
            let recovered = client.join().unwrap();
            (reached, recovered)
        });
        let (killed, recovered) = killed;
        assert!(killed, "trial {trial}: the server never reached {point}");
        if recovered {
            retried_ok += 1;
        }
        *hits
            .entry(format!(
                "{}/{point}",
                if at_district { "district" } else { "township" }
            ))
            .or_default() += 1;
    }
    println!("kills mid-request: {hits:?}; {retried_ok}/{trials} syncs completed by retrying");

    // Heal: every link up until nothing moves.
    for _ in 0..3 {
        for store in tablets.iter_mut() {
            sync_now(store, &township.url).unwrap();
        }
        sync_upward(&township);
    }

    // Every ticket once on every replica, with the same events, `received` stamped once.
    let mut on_tablets = 0;
    for store in tablets.iter_mut() {
        on_tablets += store.count().unwrap() as usize;
    }
    assert_eq!(
        on_tablets,
        registered.len(),
        "tickets lost or duplicated on tablets"
    );
    for n in &registered {
        let store = tablets.iter_mut().find(|s| s.point() == n.point()).unwrap();
        let view = store.get(n).unwrap();
        let ids: Vec<&str> = view.ticket.events.iter().map(|e| e.id.as_str()).collect();
        let unique: std::collections::HashSet<&&str> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{n}: an event twice");
        let received = view
            .ticket
            .events
            .iter()
            .filter(|e| e.kind.as_str() == "received")
            .count();
        assert_eq!(received, 1, "{n}: `received` stamped {received} times");
        for (server, role) in [(&township, "township"), (&district, "window")] {
            let sv: Value = server_view(server, n).unwrap_or_else(|| panic!("{n} lost on {role}"));
            assert_eq!(
                sv["ticket"]["events"].as_array().unwrap().len(),
                ids.len(),
                "{n} on {role}"
            );
            assert_eq!(
                sv["life"]["status"],
                view.life.status.as_str(),
                "{n} on {role}"
            );
        }
    }
}
