//! The real `sync-server` binary on loopback, port 0, temporary data directories; readiness
//! is the "listening on" line on its stdout (no sleeps). Tablets are agent-core stores; sync
//! requests are built by hand from their outbox so each step of the protocol is visible.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use agent_core::crypto::StoreKey;
use agent_core::demo;
use agent_core::doc::TicketDoc;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::event::{Event, EventDraft, EventKind, Role};
use agent_core::domain::lifecycle::Status;
use agent_core::domain::number::TicketNumber;
use agent_core::store::{Outgoing, Store, StoreOptions};
use agent_core::sync::wire::{
    decode_response, encode, DocChanges, SyncRequest, SyncResponse, CONTENT_TYPE, PAGE_BYTES,
    PROTOCOL_VERSION,
};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_sync-server");

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

fn cli(args: &[&str], data: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap()
}

fn init(data: &Path) {
    let out = cli(
        &[
            "init",
            "--role",
            "township",
            "--name",
            "柏林镇",
            "--server-id",
            "srv-bailin",
        ],
        data,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn serve(data: &Path) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    Server { child, url }
}

fn township(dir: &Path) -> (Server, PathBuf) {
    let data = dir.join("township");
    init(&data);
    (serve(&data), data)
}

fn tablet(dir: &Path, point: u32, device: u32) -> Store {
    let key = StoreKey::from_bytes(&[point as u8 ^ device as u8; 32]).unwrap();
    let opts = StoreOptions::new(key, point, device, format!("agent-{point}-{device}"));
    Store::open(dir.join(format!("tablet-{point}-{device}.db")), opts).unwrap()
}

fn register(store: &mut Store, seed: u64) -> TicketNumber {
    let catalog = Catalog::demo();
    let form = demo::forms(seed, 1, &catalog).pop().unwrap();
    store.register(&form).unwrap().view.ticket.number
}

fn request(store: &mut Store, counter: u64, cursor: u64) -> (SyncRequest, Vec<Outgoing>) {
    let out = store.outbox(PAGE_BYTES).unwrap();
    let req = SyncRequest {
        v: PROTOCOL_VERSION,
        point: store.point(),
        device: store.device(),
        counter,
        cursor,
        changes: out
            .iter()
            .map(|o| DocChanges {
                ticket: o.number.to_string(),
                bytes: o.bytes.clone(),
            })
            .collect(),
    };
    (req, out)
}

fn post(server: &Server, body: Vec<u8>, content_type: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/v1/sync", server.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
}

fn sync(server: &Server, req: &SyncRequest) -> (Vec<u8>, SyncResponse) {
    let (status, bytes) = post(server, encode(req).unwrap(), CONTENT_TYPE);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let resp = decode_response(&bytes).unwrap();
    (bytes, resp)
}

/// What the tablet's client does with a response: acknowledge, apply, keep the cursor.
fn apply(store: &mut Store, sent: &[Outgoing], resp: &SyncResponse) {
    for r in &resp.results {
        if let Some(o) = sent.iter().find(|o| o.number.as_str() == r.ticket) {
            store.acknowledge(o, r.refused.as_deref()).unwrap();
        }
    }
    for c in &resp.changes {
        let n = TicketNumber::parse(&c.ticket).unwrap();
        store.apply_changes(&n, &c.bytes).unwrap();
    }
    store.set_sync_cursor(resp.cursor).unwrap();
}

fn staff(server: &Server) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .default_headers(
            [
                ("x-daiban-staff", "clerk-wang"),
                ("x-daiban-role", "township"),
            ]
            .into_iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect(),
        )
        .build()
        .unwrap_or_else(|_| panic!("client for {}", server.url))
}

fn staff_event(server: &Server, n: &TicketNumber, body: Value) -> (u16, Value) {
    let resp = staff(server)
        .post(format!("{}/api/tickets/{n}/events", server.url))
        .json(&body)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap())
}

fn server_view(server: &Server, n: &TicketNumber) -> (u16, Value) {
    let resp = staff(server)
        .get(format!("{}/api/tickets/{n}", server.url))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap())
}

fn kinds(v: &Value) -> Vec<String> {
    v["ticket"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn upload_is_stamped_and_retries_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = township(dir.path());
    let mut a = tablet(dir.path(), 101, 1);
    let n1 = register(&mut a, 1);
    let n2 = register(&mut a, 2);

    let (req, sent) = request(&mut a, 1, 0);
    let (bytes, resp) = sync(&server, &req);
    assert_eq!(resp.results.len(), 2);
    assert!(resp.results.iter().all(|r| r.refused.is_none()), "{resp:?}");
    // The response carries the `received` stamps back (not the tablet's own changes).
    let mut back: Vec<&str> = resp.changes.iter().map(|c| c.ticket.as_str()).collect();
    back.sort();
    let mut expect = vec![n1.as_str(), n2.as_str()];
    expect.sort();
    assert_eq!(back, expect);
    assert!(!resp.more);
    assert!(
        resp.cursor >= 4,
        "two uploads and two stamps: {}",
        resp.cursor
    );

    // An exact retry (the response was lost) gets the very same bytes and stores nothing new.
    let (again, _) = sync(&server, &req);
    assert_eq!(again, bytes);
    // An older counter is refused.
    let stale = SyncRequest {
        counter: 0,
        ..req.clone()
    };
    let (status, text) = post(&server, encode(&stale).unwrap(), CONTENT_TYPE);
    assert_eq!(status, 409);
    assert_eq!(String::from_utf8_lossy(&text), "stale request counter");

    apply(&mut a, &sent, &resp);
    for n in [&n1, &n2] {
        assert_eq!(a.get(n).unwrap().life.status, Status::Received);
        let (status, v) = server_view(&server, n);
        assert_eq!(status, 200);
        assert_eq!(v["life"]["status"], "received");
        assert_eq!(kinds(&v), ["registered", "received"]);
        let stamp = &v["ticket"]["events"][1];
        assert_eq!(
            (stamp["role"].as_str(), stamp["actor"].as_str()),
            (Some("server"), Some("srv-bailin"))
        );
    }

    // Nothing to do: one small round trip, the cursor stays.
    let (req, _) = request(&mut a, 2, resp.cursor);
    assert!(req.changes.is_empty());
    let (bytes, noop) = sync(&server, &req);
    assert!(noop.changes.is_empty() && noop.results.is_empty() && !noop.more);
    assert_eq!(noop.cursor, resp.cursor);
    assert!(bytes.len() < 40, "{} bytes", bytes.len());

    // The list masks the applicant.
    let rows: Value = staff(&server)
        .get(format!("{}/api/tickets", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert!(rows[0]["applicant"].as_str().unwrap().contains('*'));
}

#[test]
fn foreign_forged_and_garbage_uploads_are_refused_without_blocking_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = township(dir.path());
    let mut a = tablet(dir.path(), 101, 1);
    let mut b = tablet(dir.path(), 102, 1);
    let own = register(&mut a, 1);
    let forged = register(&mut a, 2);
    let foreign = register(&mut b, 3);

    // A tablet-made document claiming a township acceptance.
    let mut doc =
        TicketDoc::load(&a.export(&forged).unwrap(), &automerge::ActorId::random()).unwrap();
    doc.append(&Event {
        id: "forged-accept".into(),
        kind: EventKind::Accepted,
        at: a.now(),
        actor: "not-staff".into(),
        role: Role::Township,
        note: String::new(),
        payload: json!({}),
    })
    .unwrap();
    doc.commit();

    let (mut req, _) = request(&mut a, 1, 0);
    for c in &mut req.changes {
        if c.ticket == forged.as_str() {
            c.bytes = doc.save(true);
        }
    }
    req.changes.push(DocChanges {
        ticket: foreign.to_string(),
        bytes: b.export(&foreign).unwrap(),
    });
    req.changes.push(DocChanges {
        ticket: "not a number".into(),
        bytes: vec![1, 2, 3],
    });
    let (_, resp) = sync(&server, &req);
    let reason = |t: &str| {
        resp.results
            .iter()
            .find(|r| r.ticket == t)
            .unwrap()
            .refused
            .clone()
    };
    assert_eq!(reason(own.as_str()), None);
    assert_eq!(
        reason(foreign.as_str()).as_deref(),
        Some("办件不属于本代理点")
    );
    assert_eq!(
        reason(forged.as_str()).as_deref(),
        Some("代理员不能记录“受理”")
    );
    assert_eq!(reason("not a number").as_deref(), Some("办件编号无效"));
    assert_eq!(server_view(&server, &own).0, 200);
    assert_eq!(server_view(&server, &forged).0, 404);
    assert_eq!(server_view(&server, &foreign).0, 404);

    // Garbage and mislabelled bodies are refused; the server keeps serving.
    let (status, text) = post(&server, b"\x00garbage".to_vec(), CONTENT_TYPE);
    assert_eq!(status, 400);
    assert_eq!(String::from_utf8_lossy(&text), "malformed sync request");
    assert_eq!(
        post(&server, encode(&req).unwrap(), "application/json").0,
        415
    );
    let (status, _) = post(&server, vec![0u8; (4 << 20) + 1], CONTENT_TYPE);
    assert_eq!(status, 413);
    let (req, _) = request(&mut b, 1, 0);
    let (_, resp) = sync(&server, &req);
    assert_eq!(resp.results[0].refused, None);
    // Scope: point 102 gets only its own ticket's stamp, not point 101's tickets.
    assert_eq!(resp.changes.len(), 1);
    assert_eq!(resp.changes[0].ticket, foreign.as_str());
}

#[test]
fn staff_events_reach_the_tablet_and_tablet_events_get_arrival_stamps() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = township(dir.path());
    let mut a = tablet(dir.path(), 101, 1);
    let n = register(&mut a, 1);
    let (req, sent) = request(&mut a, 1, 0);
    let (_, resp) = sync(&server, &req);
    apply(&mut a, &sent, &resp);

    // Identity is required; the role table and the lifecycle are enforced.
    let anon = reqwest::blocking::Client::new()
        .post(format!("{}/api/tickets/{n}/events", server.url))
        .json(&json!({ "kind": "accepted" }))
        .send()
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    let window = reqwest::blocking::Client::new()
        .post(format!("{}/api/tickets/{n}/events", server.url))
        .header("X-Daiban-Staff", "window-li")
        .header("X-Daiban-Role", "window")
        .json(&json!({ "kind": "accepted" }))
        .send()
        .unwrap();
    assert_eq!(window.status().as_u16(), 422);
    let (status, body) = staff_event(&server, &n, json!({ "kind": "delivered" }));
    assert_eq!(status, 422, "{body}");
    let (status, _) = staff_event(&server, &n, json!({ "kind": "accepted", "bogus": 1 }));
    assert_eq!(status, 400);

    let (status, body) = staff_event(
        &server,
        &n,
        json!({ "kind": "supplement_requested", "note": "请补交", "payload": { "missing": ["户口本复印件"] } }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["life"]["status"], "awaiting_supplement");

    // The next sync brings the township's event down.
    let cursor = a.sync_cursor().unwrap();
    let (req, sent) = request(&mut a, 2, cursor);
    let (_, resp) = sync(&server, &req);
    assert_eq!(resp.changes.len(), 1);
    apply(&mut a, &sent, &resp);
    assert_eq!(a.get(&n).unwrap().life.status, Status::AwaitingSupplement);

    // The agent records the supplement; the township stamps its arrival once, however often
    // the upload is retried.
    a.append(
        &n,
        &EventDraft::new(EventKind::SupplementProvided, "已补齐"),
    )
    .unwrap();
    let cursor = a.sync_cursor().unwrap();
    let (req, sent) = request(&mut a, 3, cursor);
    assert_eq!(req.changes.len(), 1);
    let (bytes, resp) = sync(&server, &req);
    assert_eq!(sync(&server, &req).0, bytes);
    // A new request re-sending the same changes (acknowledgement lost) stamps nothing more.
    let (_, again) = sync(
        &server,
        &SyncRequest {
            counter: 4,
            cursor: resp.cursor,
            ..req.clone()
        },
    );
    assert!(again.changes.is_empty(), "{again:?}");
    apply(&mut a, &sent, &resp);
    let (_, v) = server_view(&server, &n);
    let arrived: Vec<&Value> = v["ticket"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "arrived")
        .collect();
    assert_eq!(arrived.len(), 1);
    let provided = v["ticket"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "supplement_provided")
        .unwrap();
    assert_eq!(arrived[0]["payload"]["of"], provided["id"]);
    let local = a.get(&n).unwrap();
    assert_eq!(
        local.life.status.as_str(),
        v["life"]["status"].as_str().unwrap()
    );
    assert_eq!(
        local.ticket.events.len(),
        v["ticket"]["events"].as_array().unwrap().len()
    );
}

#[test]
fn backup_then_restore_gives_the_same_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data) = township(dir.path());
    let mut a = tablet(dir.path(), 101, 1);
    let n = register(&mut a, 1);
    let (req, _) = request(&mut a, 1, 0);
    sync(&server, &req);

    // Online backup while serving, then more work that the restore undoes.
    let backup = dir.path().join("backup.db");
    let out = Command::new(BIN)
        .args(["backup", "--data"])
        .arg(&data)
        .arg("--to")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, _) = staff_event(&server, &n, json!({ "kind": "accepted" }));
    assert_eq!(status, 200);
    assert_eq!(server_view(&server, &n).1["life"]["status"], "accepted");
    drop(server);

    let out = Command::new(BIN)
        .args(["restore", "--data"])
        .arg(&data)
        .arg("--from")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = serve(&data);
    let (status, v) = server_view(&server, &n);
    assert_eq!(status, 200);
    assert_eq!(v["life"]["status"], "received");
    assert_eq!(kinds(&v), ["registered", "received"]);
    // The pre-restore database was kept aside, not deleted.
    assert!(std::fs::read_dir(&data).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("before-restore")));
}

#[test]
fn init_refuses_to_overwrite_and_imports_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("t");
    init(&data);
    let again = cli(&["init", "--role", "district", "--name", "x"], &data);
    assert!(!again.status.success());
    let config = std::fs::read_to_string(data.join("daiban.toml")).unwrap();
    assert!(config.contains("role = \"township\""), "{config}");

    let csv = dir.path().join("cal.csv");
    std::fs::write(
        &csv,
        agent_core::domain::calendar::Calendar::default_cn().to_csv(),
    )
    .unwrap();
    let out = cli(&["import-calendar", csv.to_str().unwrap()], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = dir.path().join("catalog.json");
    std::fs::write(&json, serde_json::to_string(&Catalog::demo()).unwrap()).unwrap();
    let out = cli(&["import-catalog", json.to_str().unwrap()], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&json, "{ not json").unwrap();
    let out = cli(&["import-catalog", json.to_str().unwrap()], &data);
    assert!(!out.status.success());
}
