//! Sync security across real processes (issue 6): enrollment codes, signed replay-safe
//! requests, actor binding and the role table of each event's own writer, for tablets at
//! their township and townships at their district. Every refusal is checked for its reason
//! and for storing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use agent_core::crypto::identity::SigningKey;
use agent_core::doc::TicketDoc;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::event::{Event, EventKind, Role};
use agent_core::domain::number::TicketNumber;
use agent_core::store::Store;
use agent_core::sync::client::sync_now;
use agent_core::sync::enroll::enroll;
use agent_core::sync::pack::pack;
use agent_core::sync::wire::{
    decode_response, encode, sign_request, DocChanges, Outcome, Peer, Sender, SyncRequest,
    PROTOCOL_VERSION,
};
use automerge::ActorId;
use rusqlite::Connection;
use serde_json::json;

use support::*;

fn register(store: &mut Store, seed: u64) -> TicketNumber {
    let form = agent_core::demo::forms(seed, 1, &Catalog::demo())
        .pop()
        .unwrap();
    store.register(&form).unwrap().view.ticket.number
}

/// Rows in a server's change log: anything stored adds one.
fn log_rows(server: &Server) -> i64 {
    let db = Connection::open(server.data.join("server.db")).unwrap();
    db.query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))
        .unwrap()
}

fn signed(req: &SyncRequest, key: &SigningKey) -> Vec<u8> {
    sign_request(encode(req, Sender::Client).unwrap(), key)
}

fn new_key() -> SigningKey {
    SigningKey::from_pkcs8(&SigningKey::generate().unwrap()).unwrap()
}

/// Events of a ticket as a server holds it (0: it does not hold the ticket).
fn events_at(server: &Server, n: &TicketNumber) -> usize {
    server_view(server, n).map_or(0, |v| v["ticket"]["events"].as_array().unwrap().len())
}

#[test]
fn replayed_altered_and_unenrolled_requests_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &township, 101, 1);
    let key = a.signing_key().unwrap();

    register(&mut a, 1);
    let (first, _) = device_request(&mut a, 1, 0);
    let first_body = signed(&first, &key);
    let (status, text, _) = post_sync_with(&township.url, first_body.clone(), &[]);
    assert_eq!(status, 200, "{text}");
    let n2 = register(&mut a, 2);
    let (second, _) = device_request(&mut a, 2, 0);
    let second_body = signed(&second, &key);
    let (status, _, answer) = post_sync_with(&township.url, second_body.clone(), &[]);
    assert_eq!(status, 200);
    let rows = log_rows(&township);

    // An exact retry of the last request (its answer was lost) gets the same answer.
    let (status, _, again) = post_sync_with(&township.url, second_body.clone(), &[]);
    assert_eq!((status, &again), (200, &answer));
    // The first request replayed later: refused, nothing stored.
    let (status, text, _) = post_sync_with(&township.url, first_body, &[]);
    assert_eq!((status, text.as_str()), (409, "stale request counter"));
    // The second request under a new counter, with its old signature: refused.
    let altered = sign_request(
        encode(
            &SyncRequest {
                counter: 3,
                ..second.clone()
            },
            Sender::Client,
        )
        .unwrap(),
        &key,
    );
    let signature = &second_body[second_body.len() - 64..];
    let mut forged = altered[..altered.len() - 64].to_vec();
    forged.extend_from_slice(signature);
    let (status, text, _) = post_sync_with(&township.url, forged, &[]);
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("签名无效"), "{text}");
    // Signed with a key the device never enrolled.
    let stranger = SyncRequest {
        counter: 4,
        ..second.clone()
    };
    let (status, text, _) = post_sync_with(&township.url, signed(&stranger, &new_key()), &[]);
    assert_eq!(status, 401, "{text}");
    // Unsigned.
    let unsigned = encode(&stranger, Sender::Client).unwrap();
    let (status, _, _) = post_sync_with(&township.url, unsigned, &[]);
    assert!(status == 400 || status == 401, "{status}");
    // A device number nobody enrolled.
    // Refused on the tablet before anything is sent, and by the server when sent anyway.
    let mut b = new_tablet(dir.path(), 101, 3);
    register(&mut b, 3);
    assert!(matches!(
        sync_now(&mut b, &township.url),
        Err(agent_core::Error::NotEnrolled)
    ));
    let (req, _) = device_request(&mut b, 1, 0);
    let body = signed(&req, &b.signing_key().unwrap());
    let (status, text, _) = post_sync_with(&township.url, body, &[]);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("尚未注册"), "{text}");
    assert_eq!(log_rows(&township), rows);
    assert_eq!(events_at(&township, &n2), 2);

    // The tablet itself carries on: its next request numbers past all of these.
    let report = sync_now(&mut a, &township.url).unwrap();
    assert_eq!(report.refused, 0, "{report:?}");
}

#[test]
fn enrollment_codes_work_once_for_their_device_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (district, township) = district_and_township(dir.path());

    // The next free device number of point 101 is 1.
    let code = enrollment_code(&township.data, &["--point", "101"]);
    let mut a = new_tablet(dir.path(), 101, 1);
    assert_eq!(
        enroll(&mut a, &township.url, &code).unwrap().township,
        TOWNSHIP_A
    );
    // Typed again by the same tablet (its answer was lost): the same answer.
    assert!(enroll(&mut a, &township.url, &code.to_lowercase()).is_ok());
    // Another tablet with the same code: refused.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut copy = new_tablet(elsewhere.path(), 101, 1);
    let err = enroll(&mut copy, &township.url, &code)
        .unwrap_err()
        .to_string();
    assert!(err.contains("注册码已使用"), "{err}");
    // A code for device 2 used by device 3.
    let code2 = enrollment_code(&township.data, &["--point", "101", "--device", "2"]);
    let mut c = new_tablet(dir.path(), 101, 3);
    let err = enroll(&mut c, &township.url, &code2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("不是为这台设备签发的"), "{err}");
    // A device number already given out is not issued again.
    let err = cli_refused(
        &["enroll-code", "--point", "101", "--device", "1"],
        &township.data,
    );
    assert!(err.contains("已使用过"), "{err}");
    // An expired code.
    let code4 = enrollment_code(&township.data, &["--point", "101", "--device", "4"]);
    Connection::open(township.data.join("server.db"))
        .unwrap()
        .execute(
            "UPDATE enroll_codes SET expires_at = '2020-01-01T00:00:00+08:00' WHERE peer = 'device:101:4'",
            [],
        )
        .unwrap();
    let mut d = new_tablet(dir.path(), 101, 4);
    let err = enroll(&mut d, &township.url, &code4)
        .unwrap_err()
        .to_string();
    assert!(err.contains("注册码已过期"), "{err}");
    let err = enroll(&mut d, &township.url, "0000-0000-0000")
        .unwrap_err()
        .to_string();
    assert!(err.contains("注册码无效"), "{err}");
    // None of the refused tablets may sync; the enrolled one may.
    for t in [&mut copy, &mut c, &mut d] {
        register(t, 9);
        assert!(sync_now(t, &township.url).is_err());
    }
    register(&mut a, 1);
    assert_eq!(sync_now(&mut a, &township.url).unwrap().uploaded, 1);
    // Codes come from the right level.
    let err = cli_refused(&["enroll-code", "--point", "101"], &district.data);
    assert!(err.contains("乡镇服务器签发"), "{err}");
    let err = cli_refused(&["enroll-code", "--township", TOWNSHIP_A], &township.data);
    assert!(err.contains("区县服务器签发"), "{err}");
    // The directory lists the enrolled tablet with its key and actor, and it reaches the
    // district.
    sync_upward(&township);
    let held = a.directory().unwrap();
    let listed = held.device(101, 1).unwrap();
    assert_eq!(listed.actor, a.actor().to_hex_string());
    assert_eq!(listed.key, a.signing_key().unwrap().public_hex());
    assert!(held.device(101, 3).is_none());
}

/// The township's signing key and actor, read from its store (a test stands in for a
/// township server relaying something it should not).
fn township_identity(township: &Server) -> (SigningKey, ActorId) {
    let db = Connection::open(township.data.join("server.db")).unwrap();
    let meta = |key: &str| -> Vec<u8> {
        db.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .unwrap()
    };
    let key = SigningKey::from_pkcs8(&meta("sign_key")).unwrap();
    let actor = ActorId::try_from(String::from_utf8(meta("actor")).unwrap().as_str()).unwrap();
    (key, actor)
}

/// `ticket` as the tablet holds it, with one more event written by `actor`.
fn with_event(
    tablet: &mut Store,
    n: &TicketNumber,
    actor: &ActorId,
    kind: EventKind,
    role: Role,
) -> Vec<u8> {
    let mut doc = TicketDoc::load(&tablet.export(n).unwrap(), actor).unwrap();
    doc.append(&Event {
        id: format!("crafted-{}", kind.as_str()),
        kind,
        at: tablet.now(),
        actor: "crafted".into(),
        role,
        note: String::new(),
        payload: json!({}),
    })
    .unwrap();
    doc.commit();
    pack(&doc.save(true)).unwrap()
}

#[test]
fn a_district_takes_from_a_township_only_what_its_own_writers_may_write() {
    let dir = tempfile::tempdir().unwrap();
    let (district, bailin) = district_and_township(dir.path());
    let longtan = start_township(dir.path(), TOWNSHIP_B, &district);
    let mut a = tablet(dir.path(), &bailin, 101, 1);
    let mut c = tablet(dir.path(), &longtan, 201, 1);
    let n = register(&mut a, 1);
    let m = register(&mut c, 2);
    // A tablet's ticket and its agent's events go up through the township: the district
    // checks them against the tablet's actor and the agent's role, and takes them.
    sync_now(&mut a, &bailin.url).unwrap();
    sync_now(&mut c, &longtan.url).unwrap();
    sync_upward(&bailin);
    sync_upward(&longtan);
    assert_eq!(server_status(&district, &n), "received");
    assert_eq!(server_status(&district, &m), "received");
    let held = events_at(&district, &n);
    let rows = log_rows(&district);

    // 柏林镇 relaying, signed with its own key: a request the district must judge ticket by
    // ticket.
    let (key, actor) = township_identity(&bailin);
    let relay = |changes: Vec<DocChanges>, counter: u64| SyncRequest {
        v: PROTOCOL_VERSION,
        peer: Peer::Township {
            code: TOWNSHIP_A.into(),
        },
        // Past any counter the township itself used.
        counter: u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap() + counter,
        cursor: 0,
        epoch: 0,
        changes,
        shared: vec![],
        whole: vec![],
    };
    let upload = |ticket: &TicketNumber, bytes| DocChanges {
        ticket: ticket.to_string(),
        bytes,
    };
    let own_actor = a.actor().clone();
    let crafted = vec![
        // 龙潭镇's device writing on a 柏林镇 ticket.
        upload(
            &n,
            with_event(&mut a, &n, c.actor(), EventKind::Withdrawn, Role::Agent),
        ),
        // The township's server signing for delivery (as an agent would).
        upload(
            &n,
            with_event(&mut a, &n, &actor, EventKind::Delivered, Role::Agent),
        ),
        // The tablet's own actor completing the ticket (a window's event).
        upload(
            &n,
            with_event(&mut a, &n, &own_actor, EventKind::Completed, Role::Window),
        ),
        // A ticket of 龙潭镇's point.
        upload(&m, pack(&c.export(&m).unwrap()).unwrap()),
    ];
    let expected = [
        "上传的数据含有本乡镇以外的设备或服务器写入的内容",
        "乡镇中心不能记录“送达签收”",
        "村代理员不能记录“办结”",
        "办件不属于本代理点或本乡镇",
    ];
    // One ticket per request (a request refuses a ticket twice).
    for (i, (dc, reason)) in crafted.into_iter().zip(expected).enumerate() {
        let req = relay(vec![dc], 1 + i as u64);
        let (status, text, bytes) = post_sync_with(&district.url, signed(&req, &key), &[]);
        assert_eq!(status, 200, "{text}");
        let resp = decode_response(&bytes).unwrap();
        assert_eq!(
            resp.results[0].outcome,
            Outcome::Refused(reason.into()),
            "upload {i}"
        );
    }
    // The same request signed by 龙潭镇 is not 柏林镇's.
    let (longtan_key, _) = township_identity(&longtan);
    let req = relay(vec![upload(&n, pack(&a.export(&n).unwrap()).unwrap())], 10);
    let (status, text, _) = post_sync_with(&district.url, signed(&req, &longtan_key), &[]);
    assert_eq!(status, 401, "{text}");
    assert_eq!(log_rows(&district), rows);
    assert_eq!(events_at(&district, &n), held);
    assert_eq!(events_at(&district, &m), 2);
}

#[test]
fn a_tablet_can_neither_forge_under_a_recorded_events_id_nor_take_another_devices_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &township, 101, 1);
    let key = a.signing_key().unwrap();
    let n = register(&mut a, 1);
    sync_now(&mut a, &township.url).unwrap();
    sync_now(&mut a, &township.url).unwrap();
    let held = a.get(&n).unwrap().ticket.events;
    assert_eq!(held.len(), 2, "registered and received");
    let rows = log_rows(&township);

    // A completion by "the township", written by the tablet under the id of the township's
    // `received` stamp (so it would pass for a recorded event).
    let stored = a.export(&n).unwrap();
    let mut doc = automerge::AutoCommit::load(&stored)
        .unwrap()
        .with_actor(a.actor().clone());
    let heads = doc.get_heads();
    let (_, events) = automerge::ReadDoc::get(&doc, automerge::ROOT, "events")
        .unwrap()
        .unwrap();
    let forged = Event {
        id: held[1].id.clone(),
        kind: EventKind::Completed,
        at: a.now(),
        actor: "staff".into(),
        role: Role::Township,
        note: String::new(),
        payload: json!({ "result": "准予" }),
    };
    automerge::transaction::Transactable::insert(
        &mut doc,
        &events,
        0,
        serde_json::to_string(&forged).unwrap(),
    )
    .unwrap();
    doc.commit();
    let upload = DocChanges {
        ticket: n.to_string(),
        bytes: pack(&doc.save_after(&heads)).unwrap(),
    };
    // A first upload under device 2's number (device 2 has not used it yet).
    let mut b = new_tablet(dir.path(), 101, 2);
    let theirs = register(&mut b, 2);
    let claim = DocChanges {
        ticket: theirs.to_string(),
        bytes: pack(&b.export(&theirs).unwrap()).unwrap(),
    };
    let req = SyncRequest {
        v: PROTOCOL_VERSION,
        peer: Peer::Device {
            point: 101,
            device: 1,
        },
        // Past the tablet's own counters (unix ms).
        counter: 1 << 60,
        cursor: 0,
        epoch: a.sync_epoch().unwrap(),
        changes: vec![upload, claim],
        shared: vec![],
        whole: vec![],
    };
    let (status, text, bytes) = post_sync_with(&township.url, signed(&req, &key), &[]);
    assert_eq!(status, 200, "{text}");
    let outcomes: Vec<Outcome> = decode_response(&bytes)
        .unwrap()
        .results
        .into_iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Refused("办件中有编号重复的事件".into()),
            Outcome::Refused("办件编号不是本设备的".into()),
        ]
    );
    assert_eq!(log_rows(&township), rows);
    assert_eq!(server_status(&township, &n), "received");
    assert!(server_view(&township, &theirs).is_none());
}
