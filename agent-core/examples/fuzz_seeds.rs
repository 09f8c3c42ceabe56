//! Writes the fuzz seeds (fuzz/README.md): valid sync messages and packed changes made from
//! Daiban's demo data, so fuzzing starts from inputs that get past the first checks instead
//! of spending its time on the zstd header. `cargo run -p agent-core --example fuzz_seeds`
//! rewrites:
//!
//! - `fuzz/seeds/base_ticket.automerge`: the stored copy the harness applies uploads to.
//!   It is made here, not at fuzz time, because every Automerge change carries its commit
//!   time: a copy made later would have other hashes than the one the seeds build on.
//! - `fuzz/corpus/decode_request/seed-*`: a mode byte (0: the body as posted, a request with
//!   its signature; 1: the inflated message, compressed by the harness) and a request or a
//!   response.
//! - `fuzz/corpus/import_changes/seed-*`: one ticket's changes as a peer sends them.
//!
//! Run it again after a protocol or schema change; `tests/hostile_input.rs` checks that the
//! seeds still decode and apply.

use std::error::Error;
use std::path::Path;

use agent_core::crypto::identity::SigningKey;
use agent_core::demo;
use agent_core::doc::TicketDoc;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::event::{Event, EventKind, Role};
use agent_core::domain::number::TicketNumber;
use agent_core::domain::ticket::Ticket;
use agent_core::store::china_offset;
use agent_core::sync::pack::pack;
use agent_core::sync::wire::{
    encode, sign_request, DocChanges, DocResult, Outcome, Peer, Sender, SharedDoc, SyncRequest,
    SyncResponse, PROTOCOL_VERSION,
};
use automerge::ActorId;
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use serde_json::json;

fn main() -> Result<(), Box<dyn Error>> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace")?
        .join("fuzz");
    let catalog = Catalog::demo();
    let tablet = ActorId::from(vec![0x11; 16]);
    let township = ActorId::from(vec![0x22; 16]);
    let mut tickets = Vec::new();
    for (seq, form) in (1..).zip(demo::forms(11, 2, &catalog)) {
        let checked = form.check(
            &catalog,
            NaiveDate::from_ymd_opt(2026, 5, 11).ok_or("date")?,
        )?;
        let number = TicketNumber::new(101, 1, seq)?;
        tickets.push(Ticket {
            number,
            item: checked.item,
            applicant: checked.applicant,
            materials: checked.materials,
            fee: checked.fee,
            agent: "agent-101".into(),
            point: 101,
            device: 1,
            remarks: checked.remarks,
            registered_at: at(9)?,
            events: vec![event(
                "seed-registered",
                EventKind::Registered,
                Role::Agent,
                9,
            )?],
        });
    }
    let [first, second] = tickets.as_slice() else {
        return Err("two demo forms expected".into());
    };

    // The stored copy, then what a tablet uploads on top of it (the applicant signs for the
    // result) and what the township sends down after (its stamp).
    let mut base = TicketDoc::create(first, &tablet)?;
    let stored = base.save(true);
    let heads = base.heads();
    base.append(&event(
        "seed-delivered",
        EventKind::Delivered,
        Role::Agent,
        15,
    )?)?;
    base.commit();
    let delivered = base.changes_since(&heads);
    let mut at_township = base.fork_as(&township);
    let heads = at_township.heads();
    let mut arrived = event("seed-arrived", EventKind::Arrived, Role::Server, 16)?;
    arrived.payload = json!({ "of": "seed-delivered" });
    at_township.append(&arrived)?;
    at_township.commit();
    let stamp = at_township.changes_since(&heads);
    // A first upload: a whole ticket.
    let mut new = TicketDoc::create(second, &tablet)?;
    let whole = new.changes_since(&[]);
    let saved = new.save(true);

    let upload = |ticket: &Ticket, bytes: Vec<u8>| DocChanges {
        ticket: ticket.number.to_string(),
        bytes,
    };
    let request = SyncRequest {
        v: PROTOCOL_VERSION,
        peer: Peer::Device {
            point: 101,
            device: 1,
        },
        counter: 1_778_460_000_000,
        cursor: 42,
        epoch: 7,
        changes: vec![
            upload(first, pack(&delivered)?),
            upload(second, pack(&whole)?),
        ],
        shared: vec![],
        whole: vec![],
    };
    let relay = SyncRequest {
        peer: Peer::Township {
            code: "431023101".into(),
        },
        shared: vec![SharedDoc {
            name: "directory:431023101".into(),
            version: 1_778_460_000_000,
            body: br#"{"devices":[{"point":101,"device":1}],"revoked":[]}"#.to_vec(),
        }],
        whole: vec![first.number.to_string()],
        ..request.clone()
    };
    let response = SyncResponse {
        v: PROTOCOL_VERSION,
        cursor: 43,
        epoch: 7,
        reset: false,
        more: true,
        results: vec![
            DocResult {
                ticket: first.number.to_string(),
                outcome: Outcome::Stored,
            },
            DocResult {
                ticket: second.number.to_string(),
                outcome: Outcome::Refused("上传的数据无法解析".into()),
            },
            DocResult {
                ticket: "010101000003".into(),
                outcome: Outcome::SendWhole,
            },
        ],
        // What another device of the point gets: both rows of the page, concatenated.
        changes: vec![upload(
            first,
            pack(&[delivered.clone(), stamp.clone()].concat())?,
        )],
        shared: vec![],
    };
    let key = SigningKey::from_pkcs8(&SigningKey::generate()?)?;
    let posted = |bytes: Vec<u8>| [vec![0], sign_request(bytes, &key)].concat();
    let framed = |bytes: Vec<u8>| [vec![0], bytes].concat();
    let inflated = |bytes: Vec<u8>| [vec![1], bytes].concat();
    let empty = SyncRequest {
        changes: vec![],
        ..request.clone()
    };

    let seeds = fuzz.join("seeds");
    std::fs::create_dir_all(&seeds)?;
    std::fs::write(seeds.join("base_ticket.automerge"), &stored)?;
    write(
        &fuzz.join("corpus/decode_request"),
        &[
            (
                "seed-empty-request",
                posted(encode(&empty, Sender::Client)?),
            ),
            ("seed-request", posted(encode(&request, Sender::Client)?)),
            (
                "seed-request-inflated",
                inflated(postcard::to_stdvec(&request)?),
            ),
            (
                "seed-relay-inflated",
                inflated(postcard::to_stdvec(&relay)?),
            ),
            ("seed-response", framed(encode(&response, Sender::Server)?)),
        ],
    )?;
    write(
        &fuzz.join("corpus/import_changes"),
        &[
            ("seed-whole", pack(&whole)?),
            ("seed-document", saved),
            ("seed-delivered", pack(&delivered)?),
            (
                "seed-delivered-and-stamp",
                pack(&[delivered, stamp].concat())?,
            ),
        ],
    )?;
    Ok(())
}

fn write(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<(), Box<dyn Error>> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        println!("{}: {} bytes", path.display(), bytes.len());
    }
    Ok(())
}

fn at(hour: u32) -> Result<DateTime<FixedOffset>, Box<dyn Error>> {
    Ok(china_offset()
        .with_ymd_and_hms(2026, 5, 11, hour, 0, 0)
        .single()
        .ok_or("time")?)
}

fn event(id: &str, kind: EventKind, role: Role, hour: u32) -> Result<Event, Box<dyn Error>> {
    Ok(Event {
        id: id.into(),
        kind,
        at: at(hour)?,
        actor: match role {
            Role::Server => "srv-431023101".into(),
            _ => "agent-101".into(),
        },
        role,
        note: String::new(),
        payload: json!({}),
    })
}
