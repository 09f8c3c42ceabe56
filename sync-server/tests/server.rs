//! The real `sync-server` binary on loopback, port 0, temporary data directories (started by
//! the shared harness in tests/support; readiness is the "listening on" line, no sleeps).
//! Tablets are agent-core stores; most sync requests are built by hand from their outbox so
//! each step of the protocol is visible. A township server always runs under a district,
//! from which it gets the directory (points 101–106 in TOWNSHIP_A, 201–202 in TOWNSHIP_B).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use agent_core::crypto::identity::SigningKey;
use agent_core::doc::TicketDoc;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::directory::{DirectoryPart, Revoked};
use agent_core::domain::event::{Event, EventDraft, EventKind, Role};
use agent_core::domain::lifecycle::Status;
use agent_core::domain::number::TicketNumber;
use agent_core::store::{Outgoing, Store};
use agent_core::sync::client::sync_now;
use agent_core::sync::pack::pack;
use agent_core::sync::wire::{
    decode_response, encode, sign_request, DocChanges, Outcome, Peer, Sender, SyncRequest,
    SyncResponse, PAGE_BYTES, PROTOCOL_VERSION,
};
use serde_json::{json, Value};

use support::{
    add_staff, bearer, bearer_with, cli, cli_refused, device_request, district_and_township,
    init_district, init_township, post_sync_with, serve, server_status, server_view, staff_event,
    staff_ok, start_township, sync_upward, tablet, Server, STAFF_PASSWORD, TOWNSHIP_A, TOWNSHIP_B,
};

fn register(store: &mut Store, seed: u64) -> TicketNumber {
    let catalog = Catalog::demo();
    let form = agent_core::demo::forms(seed, 1, &catalog).pop().unwrap();
    store.register(&form).unwrap().view.ticket.number
}

thread_local! {
    /// The signing key of each tablet this test built a request for, by its peer.
    static KEYS: std::cell::RefCell<Vec<(Peer, std::rc::Rc<SigningKey>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A request as the client sends it: encoded and signed with its peer's key (a peer no
/// tablet in this test has gets a key nobody enrolled).
fn signed(req: &SyncRequest) -> Vec<u8> {
    let key = KEYS.with(|k| {
        k.borrow()
            .iter()
            .find(|(p, _)| *p == req.peer)
            .map(|(_, key)| std::rc::Rc::clone(key))
    });
    let key = key.unwrap_or_else(|| {
        std::rc::Rc::new(SigningKey::from_pkcs8(&SigningKey::generate().unwrap()).unwrap())
    });
    sign_request(encode(req, Sender::Client).unwrap(), &key)
}

/// The tablet's next request, by hand: its outbox, as its device.
fn request(store: &mut Store, counter: u64, cursor: u64) -> (SyncRequest, Vec<Outgoing>) {
    let peer = Peer::Device {
        point: store.point(),
        device: store.device(),
    };
    let key = std::rc::Rc::new(store.signing_key().unwrap());
    KEYS.with(|k| k.borrow_mut().push((peer, key)));
    device_request(store, counter, cursor)
}

/// POST a body to /v1/sync with these headers (the client sends none but `host` and
/// `content-length`); returns (status, text, bytes).
fn post_with(server: &Server, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    post_sync_with(&server.url, body, headers)
}

fn post(server: &Server, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    post_with(server, body, &[])
}

/// POST a request the server must answer with 200.
fn sync(server: &Server, req: &SyncRequest) -> (Vec<u8>, SyncResponse) {
    let (status, text, bytes) = post(server, signed(req));
    assert_eq!(status, 200, "{text}");
    let resp = decode_response(&bytes).unwrap();
    (bytes, resp)
}

/// POST a request the server must refuse; returns (status, text).
fn sync_refused(server: &Server, req: &SyncRequest) -> (u16, String) {
    let (status, text, _) = post(server, signed(req));
    assert_ne!(status, 200, "accepted: {req:?}");
    (status, text)
}

/// The reason of a refused upload; `None` when stored (a server restored from an older
/// backup may ask for the whole ticket instead, which none of these tests expects).
fn refused(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Stored => None,
        Outcome::Refused(reason) => Some(reason),
        Outcome::SendWhole => panic!("the server asked for a whole ticket"),
    }
}

/// What the tablet's client does with a response: acknowledge, apply, keep the cursor.
fn apply(store: &mut Store, sent: &[Outgoing], resp: &SyncResponse) {
    for r in &resp.results {
        if let Some(o) = sent.iter().find(|o| o.number.as_str() == r.ticket) {
            store.acknowledge(o, refused(&r.outcome)).unwrap();
        }
    }
    for c in &resp.changes {
        let n = TicketNumber::parse(&c.ticket).unwrap();
        store.apply_changes(&n, &c.bytes).unwrap();
    }
    store.set_sync_cursor(resp.cursor).unwrap();
    if !resp.more {
        store.set_sync_epoch(resp.epoch).unwrap();
    }
}

/// A staff API request as the test account of `role` (`None`: anonymous) with a body
/// (`None`: GET); returns (status, JSON body).
fn api(server: &Server, path: &str, role: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let url = format!("{}{path}", server.url);
    let mut req = match &body {
        Some(b) => client.post(url).json(b),
        None => client.get(url),
    };
    if let Some(role) = role {
        req = req.header("authorization", bearer(&server.url, role));
    }
    let resp = req.send().unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

const TOWNSHIP_STAFF: Option<&str> = Some("township");
const WINDOW_STAFF: Option<&str> = Some("window");

/// GET a ticket as township staff: (status, view).
fn view(server: &Server, n: &TicketNumber) -> (u16, Value) {
    api(server, &format!("/api/tickets/{n}"), TOWNSHIP_STAFF, None)
}

fn kinds(v: &Value) -> Vec<String> {
    v["ticket"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn shared_names(resp: &SyncResponse) -> Vec<&str> {
    resp.shared.iter().map(|d| d.name.as_str()).collect()
}

#[test]
fn upload_is_stamped_and_retries_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, server) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &server, 101, 1);
    let n1 = register(&mut a, 1);
    let n2 = register(&mut a, 2);

    let (req, sent) = request(&mut a, 1, 0);
    let (bytes, resp) = sync(&server, &req);
    assert_eq!(resp.v, PROTOCOL_VERSION);
    assert_eq!(resp.results.len(), 2);
    assert!(
        resp.results.iter().all(|r| r.outcome == Outcome::Stored),
        "{resp:?}"
    );
    // The response carries the `received` stamps back (not the tablet's own changes), and on
    // a first sync the district's directory the township got from its district.
    let mut back: Vec<&str> = resp.changes.iter().map(|c| c.ticket.as_str()).collect();
    back.sort();
    let mut expect = vec![n1.as_str(), n2.as_str()];
    expect.sort();
    assert_eq!(back, expect);
    assert!(shared_names(&resp).contains(&"directory"), "{resp:?}");
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
    assert_eq!(
        sync_refused(&server, &stale),
        (409, "stale request counter".to_owned())
    );

    apply(&mut a, &sent, &resp);
    for n in [&n1, &n2] {
        assert_eq!(a.get(n).unwrap().life.status, Status::Received);
        let (status, v) = view(&server, n);
        assert_eq!(status, 200);
        assert_eq!(v["life"]["status"], "received");
        assert_eq!(kinds(&v), ["registered", "received"]);
        let stamp = &v["ticket"]["events"][1];
        let server_id = format!("srv-{TOWNSHIP_A}");
        assert_eq!(
            (stamp["role"].as_str(), stamp["actor"].as_str()),
            (Some("server"), Some(server_id.as_str()))
        );
    }

    // Nothing to do: one small round trip, the cursor stays.
    let (req, _) = request(&mut a, 2, resp.cursor);
    assert!(req.changes.is_empty());
    let (bytes, noop) = sync(&server, &req);
    assert!(
        noop.changes.is_empty() && noop.results.is_empty() && noop.shared.is_empty() && !noop.more,
        "{noop:?}"
    );
    assert_eq!(noop.cursor, resp.cursor);
    assert!(bytes.len() < 40, "{} bytes", bytes.len());

    // The list masks the applicant.
    let (status, rows) = api(&server, "/api/tickets", TOWNSHIP_STAFF, None);
    assert_eq!(status, 200);
    let rows = &rows["rows"];
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    assert!(rows[0]["applicant"].as_str().unwrap().contains('*'));
}

#[test]
fn foreign_forged_and_garbage_uploads_are_refused_without_blocking_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, server) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &server, 101, 1);
    let mut b = tablet(dir.path(), &server, 102, 1);
    let own = register(&mut a, 1);
    let forged = register(&mut a, 2);
    let foreign = register(&mut b, 3);
    let spoofed = register(&mut a, 4);

    // An event written by an actor that is not this tablet's (an agent's event, so only the
    // actor is wrong).
    let mut other =
        TicketDoc::load(&a.export(&spoofed).unwrap(), &automerge::ActorId::random()).unwrap();
    other
        .append(&Event {
            id: "spoofed-withdraw".into(),
            kind: EventKind::Withdrawn,
            at: a.now(),
            actor: "agent-101-1".into(),
            role: Role::Agent,
            note: String::new(),
            payload: json!({}),
        })
        .unwrap();
    other.commit();
    // The tablet's own actor claiming a township acceptance.
    let mut doc = TicketDoc::load(&a.export(&forged).unwrap(), a.actor()).unwrap();
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
            c.bytes = pack(&doc.save(true)).unwrap();
        }
        if c.ticket == spoofed.as_str() {
            c.bytes = pack(&other.save(true)).unwrap();
        }
    }
    // Point 102 is of the same township, but not this tablet's point.
    req.changes.push(DocChanges {
        ticket: foreign.to_string(),
        bytes: pack(&b.export(&foreign).unwrap()).unwrap(),
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
            .map(|r| refused(&r.outcome).map(str::to_owned))
            .unwrap()
    };
    assert_eq!(reason(own.as_str()), None);
    assert_eq!(
        reason(foreign.as_str()).as_deref(),
        Some("办件不属于本代理点或本乡镇")
    );
    assert_eq!(
        reason(forged.as_str()).as_deref(),
        Some("村代理员不能记录“受理”")
    );
    assert_eq!(
        reason(spoofed.as_str()).as_deref(),
        Some("上传的数据不是本设备写入的（执行者不符）")
    );
    assert_eq!(reason("not a number").as_deref(), Some("办件编号无效"));
    assert_eq!(view(&server, &own).0, 200);
    assert_eq!(view(&server, &forged).0, 404);
    assert_eq!(view(&server, &spoofed).0, 404);
    assert_eq!(view(&server, &foreign).0, 404);

    // Garbage, oversized and old-protocol bodies are refused; the server keeps serving. The
    // path names the body: a content type, whatever it says, changes nothing (here: the
    // same request again, answered as an exact retry).
    let (status, text, _) = post(&server, b"\x00garbage".to_vec());
    assert_eq!((status, text.as_str()), (400, "sync request is not signed"));
    let (status, text, _) = post(&server, vec![7u8; 200]);
    assert_eq!((status, text.as_str()), (400, "malformed sync request"));
    let (status, _, bytes) = post_with(
        &server,
        signed(&req),
        &[("content-type", "application/json")],
    );
    assert_eq!(status, 200);
    assert_eq!(decode_response(&bytes).unwrap(), resp);
    let (status, _, _) = post(&server, vec![0u8; (4 << 20) + 1]);
    assert_eq!(status, 413);
    let (status, text) = sync_refused(
        &server,
        &SyncRequest {
            v: 1,
            counter: 2,
            ..req.clone()
        },
    );
    assert_eq!(status, 400);
    assert!(text.contains("version 1 is not supported"), "{text}");

    let (req, _) = request(&mut b, 1, 0);
    let (_, resp) = sync(&server, &req);
    assert_eq!(resp.results[0].outcome, Outcome::Stored);
    // Scope: point 102 gets only its own ticket's stamp, not point 101's tickets.
    assert_eq!(resp.changes.len(), 1);
    assert_eq!(resp.changes[0].ticket, foreign.as_str());
}

#[test]
fn staff_events_reach_the_tablet_and_tablet_events_get_arrival_stamps() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, server) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &server, 101, 1);
    let n = register(&mut a, 1);
    let (req, sent) = request(&mut a, 1, 0);
    let (_, resp) = sync(&server, &req);
    apply(&mut a, &sent, &resp);

    // Identity is required; the server's staff, the role table and the lifecycle are
    // enforced.
    let events = format!("/api/tickets/{n}/events");
    let (status, _) = api(&server, &events, None, Some(json!({ "kind": "accepted" })));
    assert_eq!(status, 401);
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}{events}", server.url))
        .header("authorization", "Bearer 00ff")
        .json(&json!({ "kind": "accepted" }))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let (status, body) = staff_event(&server, "township", &n, "delivered", json!({}));
    assert_eq!(status, 422, "{body}");
    let (status, _) = api(
        &server,
        &events,
        TOWNSHIP_STAFF,
        Some(json!({ "kind": "accepted", "bogus": 1 })),
    );
    assert_eq!(status, 400);

    let (status, body) = api(
        &server,
        &events,
        TOWNSHIP_STAFF,
        Some(json!({
            "kind": "supplement_requested",
            "note": "请补交",
            "payload": { "missing": ["户口本复印件"] },
        })),
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
    let (_, v) = view(&server, &n);
    let events = v["ticket"]["events"].as_array().unwrap();
    let arrived: Vec<&Value> = events.iter().filter(|e| e["kind"] == "arrived").collect();
    assert_eq!(arrived.len(), 1);
    let provided = events
        .iter()
        .find(|e| e["kind"] == "supplement_provided")
        .unwrap();
    assert_eq!(arrived[0]["payload"]["of"], provided["id"]);
    let local = a.get(&n).unwrap();
    assert_eq!(
        local.life.status.as_str(),
        v["life"]["status"].as_str().unwrap()
    );
    assert_eq!(local.ticket.events.len(), events.len());
}

#[test]
fn backup_then_restore_gives_the_same_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, server) = district_and_township(dir.path());
    let data = server.data.clone();
    let mut a = tablet(dir.path(), &server, 101, 1);
    let n = register(&mut a, 1);
    let (req, _) = request(&mut a, 1, 0);
    sync(&server, &req);

    // Online backup while serving, then more work that the restore undoes.
    let backup = dir.path().join("backup.db");
    cli(&["backup", "--to", backup.to_str().unwrap()], &data);
    staff_ok(&server, "township", &n, "accepted", json!({}));
    assert_eq!(server_status(&server, &n), "accepted");
    drop(server);

    cli(&["restore", "--from", backup.to_str().unwrap()], &data);
    let server = serve(&data);
    let (status, v) = view(&server, &n);
    assert_eq!(status, 200);
    assert_eq!(v["life"]["status"], "received");
    assert_eq!(kinds(&v), ["registered", "received"]);
    // The restored township still knows its points (the directory is in the database).
    let mut c = tablet(dir.path(), &server, 102, 1);
    let m = register(&mut c, 2);
    sync_now(&mut c, &server.url).unwrap();
    assert_eq!(server_status(&server, &m), "received");
    // The pre-restore database was kept aside, not deleted.
    assert!(std::fs::read_dir(&data).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("before-restore")));
}

#[test]
fn init_refuses_to_overwrite_and_imports_belong_to_the_district() {
    let dir = tempfile::tempdir().unwrap();
    let district = dir.path().join("district");
    init_district(&district);
    let err = cli_refused(&["init", "--role", "township", "--name", "x"], &district);
    assert!(!err.is_empty());
    let err = cli_refused(&["init", "--role", "district", "--name", "x"], &district);
    assert!(err.contains("already holds a Daiban server"), "{err}");
    let config = std::fs::read_to_string(district.join("daiban.toml")).unwrap();
    assert!(config.contains("role = \"district\""), "{config}");
    assert!(config.contains("name = \"示范县\""), "{config}");

    // A township needs its code; a district takes none.
    let err = cli_refused(
        &["init", "--role", "township", "--name", "x"],
        &dir.path().join("no-code"),
    );
    assert!(err.contains("township"), "{err}");
    let err = cli_refused(
        &[
            "init",
            "--role",
            "district",
            "--name",
            "x",
            "--township",
            TOWNSHIP_A,
        ],
        &dir.path().join("district-with-code"),
    );
    assert!(err.contains("no `township`"), "{err}");

    // The calendar and the catalog are the district's.
    let csv = dir.path().join("cal.csv");
    std::fs::write(
        &csv,
        agent_core::domain::calendar::Calendar::default_cn().to_csv(),
    )
    .unwrap();
    let json = dir.path().join("catalog.json");
    std::fs::write(&json, serde_json::to_string(&Catalog::demo()).unwrap()).unwrap();
    let out = cli(&["import-calendar", csv.to_str().unwrap()], &district);
    assert!(out.contains("calendar imported"), "{out}");
    let out = cli(&["import-catalog", json.to_str().unwrap()], &district);
    assert!(out.contains("catalog"), "{out}");

    // A malformed catalog is refused.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let err = cli_refused(&["import-catalog", bad.to_str().unwrap()], &district);
    assert!(!err.is_empty());
    let mut dup = Catalog::demo();
    dup.items.push(dup.items[0].clone());
    std::fs::write(&bad, serde_json::to_string(&dup).unwrap()).unwrap();
    let err = cli_refused(&["import-catalog", bad.to_str().unwrap()], &district);
    assert!(err.contains(&dup.items[0].code), "{err}");

    // A township refuses them with a message that says where they go (no district needs to
    // be running for the command line).
    let township = dir.path().join("township");
    init_township(&township, TOWNSHIP_A, "http://127.0.0.1:9");
    let again = cli_refused(&["init", "--role", "district", "--name", "x"], &township);
    assert!(again.contains("already holds"), "{again}");
    for (cmd, file) in [("import-calendar", &csv), ("import-catalog", &json)] {
        let err = cli_refused(&[cmd, file.to_str().unwrap()], &township);
        assert!(
            err.contains("由区县维护") && err.contains("请在区县服务器上导入"),
            "{cmd}: {err}"
        );
    }
    // A township's directory part lists only devices: townships and points are the
    // district's.
    let part = dir.path().join("part.json");
    std::fs::write(
        &part,
        serde_json::to_string(&agent_core::demo::district_directory()).unwrap(),
    )
    .unwrap();
    let err = cli_refused(&["import-directory", part.to_str().unwrap()], &township);
    assert!(err.contains("乡镇只能登记本乡镇的设备"), "{err}");
}

#[test]
fn a_tablet_of_another_townships_point_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (district, township) = district_and_township(dir.path());
    // Enrolled with its own township 龙潭镇, then pointed at 柏林镇's server by mistake.
    let other = start_township(dir.path(), TOWNSHIP_B, &district);
    let mut t = tablet(dir.path(), &other, 201, 1);
    let n = register(&mut t, 1);
    let (req, _) = request(&mut t, 1, 0);
    let (status, text) = sync_refused(&township, &req);
    assert_eq!(status, 403);
    assert!(text.contains("代办点201不属于本乡镇"), "{text}");
    assert_eq!(view(&township, &n).0, 404);
    let (_, rows) = api(&township, "/api/tickets", TOWNSHIP_STAFF, None);
    assert_eq!(rows["rows"], json!([]));
    // The client reports it and keeps the ticket waiting.
    let err = sync_now(&mut t, &township.url).unwrap_err().to_string();
    assert!(err.contains("403"), "{err}");
    assert_eq!(t.outbox(PAGE_BYTES).unwrap().len(), 1);

    // Servers serve only their own kind of peer: a township does not take a township's
    // sync, a district does not take a tablet's.
    let relay = SyncRequest {
        peer: Peer::Township {
            code: TOWNSHIP_A.into(),
        },
        ..req.clone()
    };
    assert_eq!(sync_refused(&township, &relay).0, 403);
    assert_eq!(sync_refused(&district, &req).0, 403);
    // A township the district does not know is refused too.
    let unknown = SyncRequest {
        peer: Peer::Township {
            code: "999999999".into(),
        },
        ..req.clone()
    };
    assert_eq!(sync_refused(&district, &unknown).0, 403);

    // Its own township's server takes it.
    let report = sync_now(&mut t, &other.url).unwrap();
    assert_eq!(report.uploaded, 1, "{report:?}");
    assert_eq!(view(&other, &n).1["life"]["status"], "received");
    assert_eq!(view(&township, &n).0, 404);
}

#[test]
fn a_revoked_device_is_refused_wiped_and_the_revocation_reaches_the_district() {
    let dir = tempfile::tempdir().unwrap();
    let (district, township) = district_and_township(dir.path());
    let mut one = tablet(dir.path(), &township, 101, 1);
    let mut two = tablet(dir.path(), &township, 101, 2);
    let n1 = register(&mut one, 1);
    let n2 = register(&mut two, 2);

    // Device 2 is lost: the township admin revokes it (while serving).
    let out = cli(
        &[
            "revoke", "--point", "101", "--device", "2", "--reason", "丢失",
        ],
        &township.data,
    );
    assert!(out.contains("revoked point 101 device 2"), "{out}");
    // An admin's directory file written before the enrollments keeps both devices and the
    // revocation.
    let file = dir.path().join("township-part.json");
    std::fs::write(&file, json!({ "devices": [] }).to_string()).unwrap();
    let out = cli(
        &["import-directory", file.to_str().unwrap()],
        &township.data,
    );
    assert!(out.contains("2 devices, 1 revoked"), "{out}");

    let (req, _) = request(&mut two, 1, 0);
    let (status, text) = sync_refused(&township, &req);
    // The admin's reason is what the tablet is told.
    assert_eq!((status, text.as_str()), (410, "丢失"));
    assert_eq!(view(&township, &n2).0, 404);
    // The tablet is told, lists what never reached the township, and wipes its store.
    match sync_now(&mut two, &township.url) {
        Err(agent_core::Error::Revoked { reason, unsynced }) => {
            assert_eq!(reason, "丢失");
            let numbers: Vec<&str> = unsynced.iter().map(|t| t.number.as_str()).collect();
            assert_eq!(numbers, [n2.as_str()]);
            assert!(unsynced[0].applicant.contains('*'), "{:?}", unsynced[0]);
        }
        other => panic!("expected a revocation, got {other:?}"),
    }
    assert_eq!(two.count().unwrap(), 0);
    assert!(two.is_wiped().unwrap());
    assert!(matches!(
        two.register(&agent_core::demo::forms(9, 1, &Catalog::demo())[0]),
        Err(agent_core::Error::Revoked { .. })
    ));
    let report = sync_now(&mut one, &township.url).unwrap();
    assert_eq!((report.uploaded, report.refused), (1, 0), "{report:?}");
    assert_eq!(server_status(&township, &n1), "received");
    // Device 1 holds the township's part with the revocation.
    let held = one.directory().unwrap();
    assert!(held.is_revoked(101, 2) && !held.is_revoked(101, 1));

    // The part goes up with the tickets; the district keeps it as the township sent it.
    sync_upward(&township);
    assert_eq!(server_status(&district, &n1), "received");
    assert!(server_view(&district, &n2).is_none());
    let db = rusqlite::Connection::open_with_flags(
        district.data.join("server.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let body: Vec<u8> = db
        .query_row(
            "SELECT body FROM shared WHERE name = ?1",
            [format!("directory:{TOWNSHIP_A}")],
            |r| r.get(0),
        )
        .unwrap();
    let part: DirectoryPart = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        part.revoked,
        [Revoked {
            point: 101,
            device: 2,
            reason: "丢失".into()
        }]
    );
    assert_eq!(part.devices.len(), 2);
}

#[test]
fn staff_work_on_their_own_level_of_server() {
    let dir = tempfile::tempdir().unwrap();
    let (district, township) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &township, 101, 1);
    let n = register(&mut a, 1);
    sync_now(&mut a, &township.url).unwrap();
    sync_upward(&township);
    assert_eq!(server_status(&district, &n), "received");

    // Window staff work at the district, township staff at a township: an account of the
    // other level cannot even be opened.
    let (ok, out) = add_staff(&township.data, "w2", "window_staff", STAFF_PASSWORD);
    assert!(!ok && out.contains("不能在这一级服务器上开设"), "{out}");
    let (ok, out) = add_staff(&district.data, "t2", "township_admin", STAFF_PASSWORD);
    assert!(!ok && out.contains("不能在这一级服务器上开设"), "{out}");
    // An auditor (on either level) and a district admin read or manage, never record.
    assert!(add_staff(&township.data, "audit", "auditor", STAFF_PASSWORD).0);
    assert!(add_staff(&district.data, "boss", "district_admin", STAFF_PASSWORD).0);
    let as_login = |server: &Server, login: &str| -> reqwest::blocking::RequestBuilder {
        let client = reqwest::blocking::Client::new();
        let auth = bearer_with(&client, &server.url, login);
        client
            .post(format!("{}/api/tickets/{n}/events", server.url))
            .header("authorization", auth)
            .json(&json!({ "kind": "accepted" }))
    };
    for (server, login) in [(&township, "audit"), (&district, "boss")] {
        let resp = as_login(server, login).send().unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{login}");
        assert!(
            resp.text().unwrap().contains("本账号不能办理办件"),
            "{login}"
        );
    }
    let auditor = bearer_with(&reqwest::blocking::Client::new(), &township.url, "audit");
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/api/tickets/{n}", township.url))
        .header("authorization", auditor)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/api/tickets/{n}", district.url))
        .header(
            "authorization",
            bearer_with(&reqwest::blocking::Client::new(), &district.url, "boss"),
        )
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    // A token of one server means nothing at another.
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/api/tickets/{n}", district.url))
        .header("authorization", bearer(&township.url, "township"))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(server_status(&district, &n), "received");
    assert_eq!(server_status(&township, &n), "received");

    // Only township staff start the upward sync, and only a township has a district.
    let (status, _) = api(&township, "/api/upstream/sync", None, Some(json!({})));
    assert_eq!(status, 401);
    let (status, body) = api(
        &district,
        "/api/upstream/sync",
        WINDOW_STAFF,
        Some(json!({})),
    );
    assert_eq!(status, 403, "{body}");

    // Each in their place, both succeed: the township accepts and forwards, the district's
    // window completes.
    staff_ok(&township, "township", &n, "accepted", json!({}));
    staff_ok(
        &township,
        "township",
        &n,
        "forwarded",
        json!({ "window": "民政局窗口" }),
    );
    sync_upward(&township);
    assert_eq!(server_status(&district, &n), "forwarded");
    staff_ok(
        &district,
        "window",
        &n,
        "completed",
        json!({ "outcome": "approved" }),
    );
    assert_eq!(server_status(&district, &n), "completed");
}

#[test]
fn the_districts_catalog_and_directory_reach_a_tablet_through_its_township() {
    let dir = tempfile::tempdir().unwrap();
    let (district, township) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &township, 101, 1);
    let demo = Catalog::demo();
    assert_eq!(a.catalog().version, demo.version);
    assert!(a.directory().unwrap().district.points.is_empty());

    let mut catalog = demo.clone();
    catalog.version = demo.version + 1;
    let file = dir.path().join("catalog.json");
    std::fs::write(&file, serde_json::to_string(&catalog).unwrap()).unwrap();
    cli(&["import-catalog", file.to_str().unwrap()], &district.data);

    let up = sync_upward(&township);
    assert_eq!(up["shared"], 1, "{up}");
    let report = sync_now(&mut a, &township.url).unwrap();
    assert!(report.shared >= 2, "{report:?}");
    assert_eq!(a.catalog().version, catalog.version);
    let directory = a.directory().unwrap();
    let mut points: Vec<u32> = directory.district.points.iter().map(|p| p.number).collect();
    points.sort_unstable();
    assert_eq!(points, [101, 102, 103, 104, 105, 106, 201, 202]);
    assert_eq!(directory.township_of(101), Some(TOWNSHIP_A));
    assert_eq!(directory.township_of(201), Some(TOWNSHIP_B));

    // Once held, a document is not sent again.
    let again = sync_now(&mut a, &township.url).unwrap();
    assert_eq!(again.shared, 0, "{again:?}");
}

/// A TCP relay that keeps every byte each way, recorded before it is passed on: once the
/// client has its answer, the whole exchange is here.
struct Recorder {
    url: String,
    up: Arc<Mutex<Vec<u8>>>,
    down: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    fn start(target: &str) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (up, down) = (Arc::default(), Arc::default());
        let target = target.to_owned();
        let (u, d) = (Arc::clone(&up), Arc::clone(&down));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let server = TcpStream::connect(&target).unwrap();
                for (from, to, log) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap(), &u),
                    (server, client, &d),
                ] {
                    let log = Arc::clone(log);
                    std::thread::spawn(move || pump(from, to, &log));
                }
            }
        });
        Recorder { url, up, down }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, log: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        log.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// An HTTP message's head: its first line, its header names (lower case, sorted) and its
/// length up to and including the blank line.
fn head(message: &[u8]) -> (String, Vec<String>, usize) {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head")
        + 4;
    let text = std::str::from_utf8(&message[..end]).unwrap();
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let first = lines.next().unwrap().to_owned();
    let mut names: Vec<String> = lines
        .map(|l| l.split_once(':').unwrap().0.to_ascii_lowercase())
        .collect();
    names.sort();
    (first, names, end)
}

/// On GPRS every byte counts: a round trip carries only what HTTP/1.1 needs (the request's
/// `host` and `content-length`, the response's `content-length`), as the real client sends
/// it to the real server, and a no-op sync stays within its 300 B.
#[test]
fn a_sync_round_trip_carries_only_the_headers_http_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, server) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &server, 101, 1);
    register(&mut a, 1);
    sync_now(&mut a, &server.url).unwrap();

    let recorder = Recorder::start(server.addr());
    let report = sync_now(&mut a, &recorder.url).unwrap();
    assert_eq!(report.rounds, 1, "a no-op: {report:?}");
    let up = recorder.up.lock().unwrap().clone();
    let down = recorder.down.lock().unwrap().clone();
    let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let (line, names, len) = head(&up);
    assert_eq!(line, "POST /v1/sync HTTP/1.1", "{}", shown(&up[..len]));
    // No content type: the path names the body (`accept` is reqwest's, which always sends it).
    assert_eq!(
        names,
        ["accept", "content-length", "host"],
        "{}",
        shown(&up[..len])
    );
    assert_eq!(
        up.len(),
        len + report.bytes_up,
        "one request, nothing after its body"
    );

    let (line, names, len) = head(&down);
    assert_eq!(line, "HTTP/1.1 200 OK", "{}", shown(&down[..len]));
    assert_eq!(names, ["content-length"], "{}", shown(&down[..len]));
    assert!(
        len < 45,
        "response head of {len} B: {}",
        shown(&down[..len])
    );
    assert_eq!(down.len(), len + report.bytes_down, "one response");

    let total = up.len() + down.len();
    assert!(total <= 300, "a no-op sync took {total} B on the wire");
}
