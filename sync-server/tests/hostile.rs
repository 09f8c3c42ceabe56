//! Hostile sync bodies posted to the real `sync-server` binary (started by the shared harness
//! in tests/support): garbage, a decompression bomb, garbage changes for real ticket numbers,
//! well-formed Automerge documents that are not tickets. Each gets a clear 4xx or a per-ticket
//! refusal; the server stays up (a normal sync after them works) and stores none of them.
//! agent-core/tests/hostile_input.rs and fuzz/ cover the same path in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use agent_core::crypto::identity::SigningKey;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::number::TicketNumber;
use agent_core::store::Store;
use agent_core::sync::client::sync_now;
use agent_core::sync::pack::pack;
use agent_core::sync::wire::{
    decode_response, encode, sign_request, DocChanges, Outcome, Peer, Sender, SyncRequest,
    SyncResponse, MAX_WIRE_BYTES, PROTOCOL_VERSION,
};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ReadDoc, ScalarValue, ROOT};

use support::{district_and_township, server_view, tablet, Server};

/// The township under test and the key of its enrolled device 2 of point 101, which posts
/// the hostile requests (the tablet under test is device 1, so its own counters are not
/// disturbed).
struct Target {
    _district: Server,
    server: Server,
    key: SigningKey,
}

fn target(dir: &std::path::Path) -> Target {
    let (_district, server) = district_and_township(dir);
    let key = tablet(dir, &server, 101, 2).signing_key().unwrap();
    Target {
        _district,
        server,
        key,
    }
}

/// POST a raw body to /v1/sync: (status, text, bytes).
fn post(server: &Server, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    // No timeout: the ignored timing test below posts large uploads.
    let client = reqwest::blocking::Client::builder().timeout(None);
    let resp = client
        .build()
        .unwrap()
        .post(format!("{}/v1/sync", server.url))
        .body(body)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().unwrap().to_vec();
    (status, String::from_utf8_lossy(&bytes).into_owned(), bytes)
}

/// A request of device 2 of point 101 uploading `changes`.
fn request(counter: u64, changes: Vec<(&TicketNumber, Vec<u8>)>) -> SyncRequest {
    SyncRequest {
        v: PROTOCOL_VERSION,
        peer: Peer::Device {
            point: 101,
            device: 2,
        },
        counter,
        cursor: 0,
        epoch: 0,
        changes: changes
            .into_iter()
            .map(|(n, bytes)| DocChanges {
                ticket: n.to_string(),
                bytes,
            })
            .collect(),
        shared: vec![],
        whole: vec![],
    }
}

/// POST a request, signed by device 2, that the server answers; the outcome of each upload,
/// in order.
fn outcomes(t: &Target, req: &SyncRequest) -> Vec<Outcome> {
    let body = sign_request(encode(req, Sender::Client).unwrap(), &t.key);
    let (status, text, bytes) = post(&t.server, body);
    assert_eq!(status, 200, "{text}");
    let resp: SyncResponse = decode_response(&bytes).unwrap();
    resp.results.into_iter().map(|r| r.outcome).collect()
}

const TOO_MANY_OPS: &str = "办件数据超过上限（10000项操作），未接收，请联系乡镇中心";

fn refused(reason: &str) -> Outcome {
    Outcome::Refused(reason.into())
}

/// A tablet's registered ticket as raw Automerge, renumbered to `number` and edited as no
/// honest replica would; its whole history, packed as a first upload.
fn hostile(ticket: &[u8], number: &TicketNumber, edit: impl FnOnce(&mut AutoCommit)) -> Vec<u8> {
    let mut doc = AutoCommit::load(ticket)
        .unwrap()
        .with_actor(ActorId::from(vec![0x66; 16]));
    doc.put(ROOT, "number", number.as_str()).unwrap();
    edit(&mut doc);
    doc.commit();
    pack(&doc.save_after(&[])).unwrap()
}

/// `edit`'s changes on top of `stored` (the ticket as the server holds it), packed.
fn on_top(stored: &[u8], edit: impl FnOnce(&mut AutoCommit)) -> Vec<u8> {
    let mut doc = AutoCommit::load(stored)
        .unwrap()
        .with_actor(ActorId::from(vec![0x67; 16]));
    let heads = doc.get_heads();
    edit(&mut doc);
    doc.commit();
    pack(&doc.save_after(&heads)).unwrap()
}

fn events(doc: &AutoCommit) -> automerge::ObjId {
    doc.get(ROOT, "events").unwrap().unwrap().1
}

fn nest(doc: &mut AutoCommit, depth: usize) {
    let mut obj = doc.put_object(ROOT, "events", ObjType::Map).unwrap();
    for _ in 0..depth {
        obj = doc.put_object(&obj, "a", ObjType::Map).unwrap();
    }
}

fn register(store: &mut Store, seed: u64) -> TicketNumber {
    let form = agent_core::demo::forms(seed, 1, &Catalog::demo())
        .pop()
        .unwrap();
    store.register(&form).unwrap().view.ticket.number
}

/// A ticket a tablet of point 101 registered, as it exports it.
fn registered(dir: &std::path::Path, server: &Server) -> Vec<u8> {
    let mut a = tablet(dir, server, 101, 1);
    let n = register(&mut a, 1);
    a.export(&n).unwrap()
}

fn events_on_server(server: &Server, n: &TicketNumber) -> usize {
    let view = server_view(server, n).unwrap();
    view["ticket"]["events"].as_array().unwrap().len()
}

#[test]
fn hostile_bodies_get_a_clear_refusal_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path());
    let server = &t.server;
    let mut a = tablet(dir.path(), server, 101, 1);
    let genuine = register(&mut a, 1);
    let ticket = a.export(&genuine).unwrap();
    let malformed = (400, "malformed sync request".to_owned());
    let unsigned = (400, "sync request is not signed".to_owned());

    // Garbage bodies, and a real request cut in half.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let whole = encode(
        &request(1, vec![(&genuine, pack(&ticket).unwrap())]),
        Sender::Client,
    )
    .unwrap();
    // Too short to hold a signature; then no request under one.
    for body in [vec![], b"\x00garbage".to_vec()] {
        let (status, text, _) = post(server, body);
        assert_eq!((status, text), unsigned);
    }
    for body in [
        noise,
        sign_request(whole[..whole.len() / 2].to_vec(), &t.key),
    ] {
        let (status, text, _) = post(server, body);
        assert_eq!((status, text), malformed);
    }
    // A decompression bomb (a valid request holding 64 MiB of zeros, a few KiB on the wire)
    // and an oversized body.
    let bomb = encode(
        &request(1, vec![(&genuine, vec![0; 64 << 20])]),
        Sender::Server,
    )
    .unwrap();
    let bomb = sign_request(bomb, &t.key);
    assert!(bomb.len() < MAX_WIRE_BYTES / 64, "{} bytes", bomb.len());
    let (status, text, _) = post(server, bomb);
    assert_eq!((status, text.as_str()), (400, "sync request too large"));
    let (status, _, _) = post(server, vec![0; MAX_WIRE_BYTES + 1]);
    assert_eq!(status, 413);

    // Garbage changes and well-formed Automerge that is no ticket, under real numbers of the
    // point: refused one by one.
    let numbers: Vec<TicketNumber> = (900..907)
        .map(|seq| TicketNumber::new(101, 2, seq).unwrap())
        .collect();
    let huge = "办".repeat((10 << 20) / 3);
    let uploads = vec![
        (&numbers[0], b"not automerge".to_vec()),
        (
            &numbers[1],
            [&[0x85, 0x6f, 0x4a, 0x83][..], &[0xff; 64]].concat(),
        ),
        (
            &numbers[2],
            hostile(&ticket, &numbers[2], |doc| nest(doc, 10_000)),
        ),
        (
            &numbers[3],
            hostile(&ticket, &numbers[3], |doc| {
                let events = events(doc);
                doc.insert(&events, 1, huge.as_str()).unwrap();
            }),
        ),
        // 100,000 tiny ops (a few hundred bytes: Automerge run-length encodes them).
        (
            &numbers[4],
            hostile(&ticket, &numbers[4], |doc| {
                let events = events(doc);
                doc.splice(
                    &events,
                    1,
                    0,
                    std::iter::repeat_n(ScalarValue::Null, 100_000),
                )
                .unwrap();
            }),
        ),
        // Ticket data in a document that is not the ticket's (it says another number).
        (&numbers[5], hostile(&ticket, &genuine, |_| {})),
        // Within the caps, but its events are no list of events.
        (
            &numbers[6],
            hostile(&ticket, &numbers[6], |doc| nest(doc, 100)),
        ),
    ];
    let req = request(2, uploads);
    assert!(encode(&req, Sender::Client).unwrap().len() < MAX_WIRE_BYTES);
    assert_eq!(
        outcomes(&t, &req),
        [
            refused("上传的数据无法解析"),
            refused("上传的数据无法解析"),
            // 10,000 nested maps: more ops than a ticket may hold.
            refused(TOO_MANY_OPS),
            refused("办件数据超过上限（256KB），未接收，请联系乡镇中心"),
            refused(TOO_MANY_OPS),
            refused("上传的数据与办件编号不符"),
            refused("上传的数据不是有效的承办单"),
        ]
    );

    // The server is up: the tablet's normal sync stores its ticket.
    let report = sync_now(&mut a, server.url.as_str()).unwrap();
    assert_eq!((report.uploaded, report.refused), (1, 0), "{report:?}");
    let stored_events = events_on_server(server, &genuine);

    // Hostile changes on top of the stored ticket: refused, the stored copy unchanged.
    let stored = a.export(&genuine).unwrap();
    let uploads = vec![
        b"not automerge".to_vec(),
        on_top(&stored, |doc| nest(doc, 10_000)),
        on_top(&stored, |doc| {
            let events = events(doc);
            let len = doc.length(&events);
            doc.insert(&events, len, "[".repeat(10_000)).unwrap();
        }),
    ];
    for (counter, bytes) in (3..).zip(uploads) {
        let reasons = outcomes(&t, &request(counter, vec![(&genuine, bytes)]));
        assert!(matches!(reasons[..], [Outcome::Refused(_)]), "{reasons:?}");
    }
    assert_eq!(events_on_server(server, &genuine), stored_events);
    // Nothing of the refused uploads is stored, and the server still syncs.
    for n in &numbers {
        assert!(server_view(server, n).is_none(), "{n}");
    }
    let mut b = tablet(dir.path(), server, 101, 3);
    sync_now(&mut b, server.url.as_str()).unwrap();
    let synced: Vec<String> = b
        .search(&Default::default())
        .unwrap()
        .items
        .into_iter()
        .map(|t| t.number)
        .collect();
    assert_eq!(synced, [genuine.to_string()]);
}

// Tickets that read as valid but hold more than any real one: refused by the per-ticket caps
// (agent_core::doc::limits) before the server parses them.

/// A ticket that reads as valid but holds 10 MB in one field (a few KB on the wire).
#[test]
fn a_valid_ticket_with_a_huge_field_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path());
    let ticket = registered(dir.path(), &t.server);
    let n = TicketNumber::new(101, 2, 900).unwrap();
    let huge = "办".repeat((10 << 20) / 3);
    let bytes = hostile(&ticket, &n, |doc| {
        doc.put(ROOT, "remarks", huge.as_str()).unwrap();
    });
    let reasons = outcomes(&t, &request(1, vec![(&n, bytes)]));
    assert_eq!(
        reasons,
        [refused("办件数据超过上限（256KB），未接收，请联系乡镇中心")]
    );
    assert!(server_view(&t.server, &n).is_none());
}

/// A ticket that reads as valid but whose history holds a million events inserted and
/// deleted again: a few hundred bytes (Automerge run-length encodes them) that would take
/// seconds and gigabytes to load at every later sync or staff view.
#[test]
fn a_valid_ticket_with_a_million_hidden_ops_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path());
    let ticket = registered(dir.path(), &t.server);
    let n = TicketNumber::new(101, 2, 900).unwrap();
    let bytes = hostile(&ticket, &n, |doc| {
        let events = events(doc);
        let nulls = std::iter::repeat_n(ScalarValue::Null, 1_000_000);
        doc.splice(&events, 1, 0, nulls).unwrap();
        doc.splice(&events, 1, 1_000_000, Vec::<ScalarValue>::new())
            .unwrap();
    });
    assert!(bytes.len() < 4096, "{} bytes packed", bytes.len());
    let reasons = outcomes(&t, &request(1, vec![(&n, bytes)]));
    assert_eq!(reasons, [refused(TOO_MANY_OPS)]);
    assert!(server_view(&t.server, &n).is_none());
}

/// What a first upload of a valid ticket with `n` clock-moving agent events costs the
/// township, which stamps each with `arrived` (linear in the events); the largest is past the
/// per-ticket byte cap and refused.
#[test]
#[ignore = "prints timings; run in release"]
fn cost_of_stamping_many_tablet_events() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path());
    let ticket = registered(dir.path(), &t.server);
    for (seq, n) in (900..).zip([300, 1_200, 4_000]) {
        let number = TicketNumber::new(101, 2, seq).unwrap();
        let bytes = hostile(&ticket, &number, |doc| {
            let events = events(doc);
            let new = (0..n).map(|i| {
                format!(
                    r#"{{"id":"e{i}","kind":"supplement_provided","at":"2026-05-11T10:00:00+08:00","actor":"agent-101","role":"agent","note":"","payload":{{}}}}"#
                )
            });
            doc.splice(&events, 1, 0, new.map(ScalarValue::from))
                .unwrap();
        });
        let req = request(seq.into(), vec![(&number, bytes)]);
        let wire = encode(&req, Sender::Client).unwrap().len();
        let started = std::time::Instant::now();
        let reasons = outcomes(&t, &req);
        println!(
            "{n} events ({wire} bytes on the wire): {:?}, {reasons:?}",
            started.elapsed()
        );
    }
}
