//! Helpers shared by agent-core's integration tests: real SQLite files in temp dirs, a
//! movable clock, a township replica that appends server-side events.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use agent_core::crypto::StoreKey;
use agent_core::doc::TicketDoc;
use agent_core::domain::event::{Event, EventKind, Role};
use agent_core::domain::number::TicketNumber;
use agent_core::store::{china_offset, Store, StoreOptions};
use automerge::ActorId;
use chrono::{DateTime, FixedOffset, TimeZone};

pub fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<FixedOffset> {
    china_offset().with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

pub fn key(b: u8) -> StoreKey {
    StoreKey::from_bytes(&[b; 32]).unwrap()
}

/// A clock the test moves.
#[derive(Clone)]
pub struct TestClock(pub Arc<Mutex<DateTime<FixedOffset>>>);

impl TestClock {
    pub fn new(t: DateTime<FixedOffset>) -> Self {
        Self(Arc::new(Mutex::new(t)))
    }
    pub fn set(&self, t: DateTime<FixedOffset>) {
        *self.0.lock().unwrap() = t;
    }
}

pub fn options(key: Option<StoreKey>, clock: &TestClock) -> StoreOptions {
    let cell = clock.0.clone();
    StoreOptions {
        key,
        point: 101,
        device: 1,
        agent: "agent-101".into(),
        clock: Arc::new(move || *cell.lock().unwrap()),
        margin: 1,
    }
}

pub fn open(path: &Path, key: Option<StoreKey>, clock: &TestClock) -> Store {
    Store::open(path, options(key, clock)).unwrap()
}

/// Append server-side events on a township replica and merge them back into the tablet,
/// as sync will.
pub fn township(
    store: &mut Store,
    number: &TicketNumber,
    events: &[(EventKind, Role, DateTime<FixedOffset>, serde_json::Value)],
) {
    let actor = ActorId::from(vec![0xAA; 16]);
    let mut doc = TicketDoc::load(&store.export(number).unwrap(), &actor).unwrap();
    let base = doc.read().unwrap().events.len();
    for (i, (kind, role, t, payload)) in events.iter().enumerate() {
        doc.append(&Event {
            id: format!("tw{}-{}", base + i, kind.as_str()),
            kind: *kind,
            at: *t,
            actor: "clerk-1".into(),
            role: *role,
            note: String::new(),
            payload: payload.clone(),
        })
        .unwrap();
    }
    doc.commit();
    store.merge_remote(&doc.save(true)).unwrap();
}

pub fn none() -> serde_json::Value {
    serde_json::json!({})
}
