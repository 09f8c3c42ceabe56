//! Two village tablets and a township server, as separate processes over loopback HTTP:
//! register offline → sync → township accepts, completes, returns one ticket and asks for a
//! supplement on another → tablets sync → agent delivers / hands in the supplement → sync;
//! every replica shows the same status. Real server process on port 0, temporary SQLite files,
//! readiness read from the server's stdout (no sleeps).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use agent_core::crypto::StoreKey;
use agent_core::demo;
use agent_core::domain::event::{EventDraft, EventKind};
use agent_core::domain::lifecycle::Status;
use agent_core::domain::number::TicketNumber;
use agent_core::store::{system_clock, Store, StoreOptions};
use agent_core::sync::client::sync_now;
use serde_json::{json, Value};

/// The sync-server binary cargo built next to this test (target/<profile>/sync-server).
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join("sync-server");
    assert!(
        path.exists(),
        "{} not built: run `cargo test --workspace` (or `cargo build -p sync-server` first)",
        path.display()
    );
    path
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_township(data: &Path) -> Server {
    let bin = server_binary();
    let init = Command::new(&bin)
        .args(["init", "--role", "township", "--name", "柏林镇", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut child = Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from the server: {line:?}"))
        .to_owned();
    Server { child, url }
}

fn tablet(dir: &Path, point: u32) -> Store {
    let mut o = StoreOptions::new(
        StoreKey::from_bytes(&[point as u8; 32]).unwrap(),
        point,
        1,
        format!("agent-{point}"),
    );
    o.clock = system_clock();
    Store::open(dir.join(format!("tablet-{point}.db")), o).unwrap()
}

fn staff(server: &Server, number: &TicketNumber, kind: &str, payload: Value) -> Value {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/api/tickets/{}/events", server.url, number))
        .header("X-Daiban-Staff", "clerk-wang")
        .header("X-Daiban-Role", "township")
        .json(&json!({ "kind": kind, "note": "", "payload": payload }))
        .send()
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().unwrap();
    assert!(status.is_success(), "{kind}: {status} {body}");
    body
}

fn server_status(server: &Server, number: &TicketNumber) -> String {
    let body: Value = reqwest::blocking::Client::new()
        .get(format!("{}/api/tickets/{}", server.url, number))
        .header("X-Daiban-Staff", "clerk-wang")
        .header("X-Daiban-Role", "township")
        .send()
        .unwrap()
        .json()
        .unwrap();
    body["life"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn form(code: &str, seed: u64) -> agent_core::domain::ticket::NewTicket {
    let catalog = agent_core::domain::catalog::Catalog::demo();
    let item = catalog.item(code).unwrap();
    demo::form(&mut demo::Rng::new(seed), item, seed as usize, true)
}

#[test]
fn two_villages_and_a_township_converge() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_township(&dir.path().join("township"));
    let mut a = tablet(dir.path(), 101);
    let mut b = tablet(dir.path(), 102);

    // Offline at the village points.
    let a1 = a.register(&form("YB012", 1)).unwrap().view.ticket.number;
    let a2 = a.register(&form("GA004", 2)).unwrap().view.ticket.number;
    let b1 = b.register(&form("SB001", 3)).unwrap().view.ticket.number;

    // The link comes up: everything goes up in one round trip, the `received` stamps come back.
    let ra = sync_now(&mut a, &server.url).unwrap();
    let rb = sync_now(&mut b, &server.url).unwrap();
    assert_eq!((ra.uploaded, ra.rounds), (2, 1), "{ra:?}");
    assert_eq!((rb.uploaded, rb.rounds), (1, 1), "{rb:?}");
    for (on_a, n) in [(true, &a1), (true, &a2), (false, &b1)] {
        let store = if on_a { &mut a } else { &mut b };
        assert_eq!(store.get(n).unwrap().life.status, Status::Received, "{n}");
        assert_eq!(server_status(&server, n), "received");
    }

    // The township works.
    staff(&server, &a1, "accepted", json!({}));
    staff(
        &server,
        &a1,
        "completed",
        json!({ "outcome": "approved", "certificate_no": "YL2026-001" }),
    );
    staff(&server, &a1, "returned", json!({}));
    staff(
        &server,
        &b1,
        "supplement_requested",
        json!({ "missing": ["户口本复印件"] }),
    );

    sync_now(&mut a, &server.url).unwrap();
    sync_now(&mut b, &server.url).unwrap();
    assert_eq!(a.get(&a1).unwrap().life.status, Status::Returned);
    let vb = b.get(&b1).unwrap();
    assert_eq!(vb.life.status, Status::AwaitingSupplement);
    assert_eq!(vb.life.missing, vec!["户口本复印件".to_string()]);

    // Back at the villages: delivered, and the supplement handed in.
    a.append(&a1, &EventDraft::new(EventKind::Delivered, "本人签收"))
        .unwrap();
    b.append(
        &b1,
        &EventDraft::new(EventKind::SupplementProvided, "已补齐"),
    )
    .unwrap();
    sync_now(&mut a, &server.url).unwrap();
    sync_now(&mut b, &server.url).unwrap();

    // Every replica shows the same status, with the township's `arrived` stamps in place.
    for (on_a, n) in [(true, &a1), (true, &a2), (false, &b1)] {
        let store = if on_a { &mut a } else { &mut b };
        let v = store.get(n).unwrap();
        assert_eq!(server_status(&server, n), v.life.status.as_str(), "{n}");
        assert!(!v.life.needs_review, "{n}");
    }
    assert_eq!(a.get(&a1).unwrap().life.status, Status::Delivered);
    assert_eq!(b.get(&b1).unwrap().life.status, Status::Received);
    let arrived = |s: &mut Store, n: &TicketNumber| {
        s.get(n)
            .unwrap()
            .ticket
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Arrived)
            .count()
    };
    assert_eq!(arrived(&mut a, &a1), 1);
    assert_eq!(arrived(&mut b, &b1), 1);

    // A sync with nothing to do: one round trip of a few hundred bytes.
    let noop = sync_now(&mut a, &server.url).unwrap();
    assert_eq!(noop.rounds, 1, "{noop:?}");
    assert!(noop.bytes_up + noop.bytes_down < 300, "{noop:?}");
    // Scope: tablet A never received point 102's ticket.
    assert_eq!(a.count().unwrap(), 2);
    assert_eq!(b.count().unwrap(), 1);
}
