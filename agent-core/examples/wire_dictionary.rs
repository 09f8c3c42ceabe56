//! Makes `agent-core/src/sync/wire.dict`, the zstd dictionary both ends of the sync protocol
//! compress with (see `sync::wire`). A sync on a village link carries a handful of tickets:
//! too little for a compressor to learn the message's shape from the message itself, so both
//! ends start from samples of it. The samples are messages of Daiban's own demo data
//! (`agent_core::demo`, the built-in catalog), never a benchmark's workload.
//!
//! `cargo run --release -p agent-core --example wire_dictionary` rewrites the file; a new
//! dictionary is a new protocol version.

use std::error::Error;

use agent_core::crypto::StoreKey;
use agent_core::demo::{self, Rng};
use agent_core::doc::TicketDoc;
use agent_core::domain::event::{Event, EventKind, Role};
use agent_core::store::{Store, StoreOptions};
use agent_core::sync::pack::pack;
use agent_core::sync::wire::{
    DocChanges, DocResult, Outcome, Peer, SyncRequest, SyncResponse, PROTOCOL_VERSION,
};
use automerge::ActorId;
use serde_json::json;

const DICTIONARY_BYTES: usize = 16 << 10;
const TICKETS: usize = 600;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let key = StoreKey::from_bytes(&[7; 32])?;
    let mut tablet = Store::open(
        dir.path().join("tablet.db"),
        StoreOptions::new(key, 101, 1, "王代办"),
    )?;
    let township = ActorId::random();
    let district = ActorId::random();
    let mut r = Rng::new(20261201);
    let forms = demo::forms(7, TICKETS, tablet.catalog());
    // Per ticket: what the tablet uploads, and each later step as the server sends it.
    let mut uploads = Vec::new();
    let mut downloads = Vec::new();
    for form in &forms {
        let number = tablet.register(form)?.view.ticket.number;
        let saved = tablet.export(&number)?;
        let mut doc = TicketDoc::load(&saved, tablet.actor())?;
        uploads.push(DocChanges {
            ticket: number.to_string(),
            bytes: pack(&doc.changes_since(&[]))?,
        });
        let mut at_township = doc.fork_as(&township);
        for (kind, role, payload) in steps(&mut r) {
            let before = at_township.heads();
            if role == Role::Window {
                let mut at_district = at_township.fork_as(&district);
                at_district.append(&event(&mut r, kind, role, payload))?;
                at_district.commit();
                at_township.merge(&mut at_district)?;
            } else {
                at_township.append(&event(&mut r, kind, role, payload))?;
                at_township.commit();
            }
            downloads.push(DocChanges {
                ticket: number.to_string(),
                bytes: pack(&at_township.changes_since(&before))?,
            });
        }
        // Back at the village: the applicant signs for the result.
        let mut back = at_township.fork_as(tablet.actor());
        let before = back.heads();
        let mut delivered = event(&mut r, EventKind::Delivered, Role::Agent, json!({}));
        delivered.note = "申请人本人签收".into();
        back.append(&delivered)?;
        back.commit();
        uploads.push(DocChanges {
            ticket: number.to_string(),
            bytes: pack(&back.changes_since(&before))?,
        });
    }
    let mut samples: Vec<Vec<u8>> = Vec::new();
    let peer = Peer::Device {
        point: 101,
        device: 1,
    };
    let mut i = 0;
    while i < uploads.len() {
        let n = 1 + r.below(12) as usize;
        let batch: Vec<DocChanges> = uploads.iter().skip(i).take(n).cloned().collect();
        i += n;
        let results = batch
            .iter()
            .map(|dc| DocResult {
                ticket: dc.ticket.clone(),
                outcome: Outcome::Stored,
            })
            .collect();
        samples.push(postcard::to_stdvec(&SyncRequest {
            v: PROTOCOL_VERSION,
            peer: peer.clone(),
            counter: 1_764_547_200_000 + r.below(1 << 30),
            cursor: r.below(100_000),
            epoch: r.next_u64() >> 1,
            changes: batch,
            shared: vec![],
            whole: vec![],
        })?);
        samples.push(postcard::to_stdvec(&SyncResponse {
            v: PROTOCOL_VERSION,
            cursor: r.below(100_000),
            epoch: r.next_u64() >> 1,
            reset: false,
            more: false,
            results,
            changes: downloads
                .iter()
                .skip(r.below(downloads.len() as u64) as usize)
                .take(n)
                .cloned()
                .collect(),
            shared: vec![],
        })?);
    }
    let dictionary = zstd::dict::from_samples(&samples, DICTIONARY_BYTES)?;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sync/wire.dict");
    std::fs::write(path, &dictionary)?;
    println!(
        "{path}: {} bytes from {} sample messages ({} bytes)",
        dictionary.len(),
        samples.len(),
        samples.iter().map(Vec::len).sum::<usize>()
    );
    Ok(())
}

/// A ticket's path through the township and a district window, as servers record it.
fn steps(r: &mut Rng) -> Vec<(EventKind, Role, serde_json::Value)> {
    let mut steps = vec![(EventKind::Received, Role::Server, json!({}))];
    if r.below(4) == 0 {
        steps.push((
            EventKind::SupplementRequested,
            Role::Township,
            json!({ "missing": ["户口本复印件"] }),
        ));
    }
    steps.push((EventKind::Accepted, Role::Township, json!({})));
    if r.below(2) == 0 {
        steps.push((EventKind::Handled, Role::Township, json!({})));
        steps.push((
            EventKind::Completed,
            Role::Township,
            json!({ "outcome": "approved", "certificate_no": format!("SY2026-{:04}", r.below(10_000)) }),
        ));
    } else {
        steps.push((
            EventKind::Forwarded,
            Role::Township,
            json!({ "window": "县市场监管局窗口" }),
        ));
        steps.push((
            EventKind::Completed,
            Role::Window,
            json!({ "outcome": "approved", "certificate_no": format!("JY2026-{:04}", r.below(10_000)) }),
        ));
    }
    steps.push((EventKind::Returned, Role::Township, json!({})));
    steps
}

fn event(r: &mut Rng, kind: EventKind, role: Role, payload: serde_json::Value) -> Event {
    let actor = match role {
        Role::Server => "srv-431023101".to_owned(),
        _ => demo::name(r),
    };
    Event {
        id: format!("{:016x}", r.next_u64()),
        kind,
        at: chrono::Utc::now().with_timezone(&agent_core::store::china_offset()),
        actor,
        role,
        note: String::new(),
        payload,
    }
}
