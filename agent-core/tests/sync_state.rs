//! The tablet's sync state against a township replica played by the test: only what the
//! server lacks goes up, acknowledgements and refusals are honest per ticket, and the
//! server's changes come back in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use agent_core::demo;
use agent_core::doc::TicketDoc;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::event::{Event, EventDraft, EventKind, Role};
use agent_core::domain::lifecycle::Status;
use agent_core::store::Query;
use agent_core::sync::pack::pack;
use automerge::ActorId;
use common::*;

/// A township server's documents, enough to play one in a test.
struct Township {
    actor: ActorId,
    docs: HashMap<String, TicketDoc>,
}

impl Township {
    fn receive(&mut self, number: &str, bytes: &[u8]) {
        match self.docs.get_mut(number) {
            Some(doc) => doc.apply_remote(bytes).unwrap(),
            None => {
                let doc = TicketDoc::load(bytes, &self.actor).unwrap();
                self.docs.insert(number.to_owned(), doc);
            }
        }
    }

    fn append(&mut self, number: &str, kind: EventKind, role: Role) -> Vec<u8> {
        let doc = self.docs.get_mut(number).unwrap();
        let before = doc.heads();
        doc.append(&Event {
            id: format!("srv-{}-{}", number, kind.as_str()),
            kind,
            at: at(2026, 3, 3, 10),
            actor: "clerk-1".into(),
            role,
            note: String::new(),
            payload: serde_json::json!({}),
        })
        .unwrap();
        doc.commit();
        doc.changes_since(&before)
    }
}

#[test]
fn upload_acknowledge_download_and_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    let numbers: Vec<_> = demo::forms(3, 3, &Catalog::demo())
        .iter()
        .map(|f| store.register(f).unwrap().view.ticket.number)
        .collect();
    let mut township = Township {
        actor: ActorId::from(vec![0xBB; 16]),
        docs: HashMap::new(),
    };

    // First upload: every ticket, whole.
    let out = store.outbox(1 << 20).unwrap();
    assert_eq!(
        out.iter().map(|o| o.number.clone()).collect::<Vec<_>>(),
        numbers
    );
    for o in &out {
        township.receive(o.number.as_str(), &o.bytes);
        store.acknowledge(o, None).unwrap();
    }
    assert!(
        store.outbox(1 << 20).unwrap().is_empty(),
        "nothing left to send"
    );
    let rows = store.search(&Query::default()).unwrap();
    assert!(rows.items.iter().all(|r| r.sync_state == "synced"));

    // The township stamps and accepts one; the tablet applies the changes.
    let n0 = numbers[0].as_str();
    let mut changes = township.append(n0, EventKind::Received, Role::Server);
    changes.extend(township.append(n0, EventKind::Accepted, Role::Township));
    store
        .apply_changes(&numbers[0], &pack(&changes).unwrap())
        .unwrap();
    assert_eq!(
        store.get(&numbers[0]).unwrap().life.status,
        Status::Accepted
    );
    assert!(
        store.outbox(1 << 20).unwrap().is_empty(),
        "server changes are not sent back"
    );

    // An agent event: only the new change goes up, far smaller than the whole document.
    store
        .append(
            &numbers[1],
            &EventDraft::new(EventKind::Withdrawn, "申请人撤回"),
        )
        .unwrap();
    let out = store.outbox(1 << 20).unwrap();
    assert_eq!(out.len(), 1);
    let whole = store.export(&numbers[1]).unwrap();
    assert!(
        out[0].bytes.len() * 2 < whole.len(),
        "{} vs {}",
        out[0].bytes.len(),
        whole.len()
    );
    township.receive(numbers[1].as_str(), &out[0].bytes);
    assert_eq!(
        township.docs[numbers[1].as_str()]
            .read()
            .unwrap()
            .lifecycle()
            .status,
        Status::Withdrawn
    );

    // Changed again while the upload was in flight: acknowledged, yet still waiting.
    store
        .append(
            &numbers[1],
            &EventDraft::new(EventKind::Evaluated, "").with("score", 5),
        )
        .unwrap();
    store.acknowledge(&out[0], None).unwrap();
    assert_eq!(store.outbox(1 << 20).unwrap().len(), 1);

    // A refusal is kept with the server's reason.
    let again = store.outbox(1 << 20).unwrap();
    store.acknowledge(&again[0], Some("设备已停用")).unwrap();
    let row = store
        .search(&Query::default())
        .unwrap()
        .items
        .into_iter()
        .find(|r| r.number == numbers[1].as_str())
        .unwrap();
    assert_eq!(row.sync_state, "refused");
    assert_eq!(row.sync_reason.as_deref(), Some("设备已停用"));
    assert!(store.outbox(1 << 20).unwrap().is_empty());

    // Refused while the agent changed the ticket again: the change may be the fix, so the
    // ticket keeps waiting rather than showing the old reason.
    store
        .append(
            &numbers[0],
            &EventDraft::new(EventKind::Withdrawn, "申请人撤回"),
        )
        .unwrap();
    let sent = store.outbox(1 << 20).unwrap();
    let n0 = sent
        .iter()
        .find(|o| o.number == numbers[0])
        .unwrap()
        .clone();
    store
        .append(
            &numbers[0],
            &EventDraft::new(EventKind::Evaluated, "").with("score", 4),
        )
        .unwrap();
    store.acknowledge(&n0, Some("旧的理由")).unwrap();
    assert!(store
        .outbox(1 << 20)
        .unwrap()
        .iter()
        .any(|o| o.number == numbers[0]));
}

#[test]
fn a_whole_ticket_from_the_server_and_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut a = open(&dir.path().join("a.db"), Some(key(1)), &clock);
    let n = a
        .register(&demo::forms(4, 1, &Catalog::demo())[0])
        .unwrap()
        .view
        .ticket
        .number;
    let whole = a.export(&n).unwrap();
    // A replacement tablet of the same point receives the ticket whole.
    let mut b = Store2::open(&dir.path().join("b.db"), &clock);
    b.0.apply_changes(&n, &pack(&whole).unwrap()).unwrap();
    assert_eq!(b.0.get(&n).unwrap().ticket.number, n);
    assert!(
        b.0.outbox(1 << 20).unwrap().is_empty(),
        "in step with the server"
    );
    // Garbage for a known ticket stores nothing.
    assert!(b.0.apply_changes(&n, b"garbage").is_err());
    assert_eq!(b.0.get(&n).unwrap().ticket.events.len(), 1);
    // Counters never repeat, cursor persists.
    let c1 = b.0.next_sync_counter().unwrap();
    let c2 = b.0.next_sync_counter().unwrap();
    assert!(c2 > c1);
    b.0.set_sync_cursor(42).unwrap();
    assert_eq!(b.0.sync_cursor().unwrap(), 42);
}

/// A second device of point 101.
struct Store2(agent_core::store::Store);

impl Store2 {
    fn open(path: &std::path::Path, clock: &TestClock) -> Self {
        let mut o = options(Some(key(1)), clock);
        o.device = 2;
        Store2(agent_core::store::Store::open(path, o).unwrap())
    }
}

#[test]
fn numbers_synced_back_into_a_fresh_store_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut old = open(&dir.path().join("old.db"), Some(key(1)), &clock);
    let forms = demo::forms(8, 3, &Catalog::demo());
    let mine: Vec<_> = forms[..2]
        .iter()
        .map(|f| old.register(f).unwrap().view.ticket.number)
        .collect();
    // The same device starts over (reinstalled) and gets its tickets back from the server.
    let mut fresh = open(&dir.path().join("fresh.db"), Some(key(1)), &clock);
    for n in &mine {
        fresh
            .apply_changes(n, &pack(&old.export(n).unwrap()).unwrap())
            .unwrap();
    }
    let next = fresh.register(&forms[2]).unwrap().view.ticket.number;
    assert!(!mine.contains(&next), "{next} reused");
    assert_eq!(fresh.count().unwrap(), 3);
}

#[test]
fn a_damaged_document_does_not_block_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&path, Some(key(1)), &clock);
    let numbers: Vec<_> = demo::forms(9, 3, &Catalog::demo())
        .iter()
        .map(|f| store.register(f).unwrap().view.ticket.number)
        .collect();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE docs SET doc = x'00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff'
         WHERE ticket = (SELECT id FROM tickets WHERE number = ?1)",
        [numbers[1].as_str()],
    )
    .unwrap();
    drop(conn);
    let mut store = open(&path, Some(key(1)), &clock);
    let out = store.outbox(1 << 20).unwrap();
    assert_eq!(
        out.iter().map(|o| o.number.clone()).collect::<Vec<_>>(),
        vec![numbers[0].clone(), numbers[2].clone()]
    );
    assert_eq!(store.quarantined().unwrap().len(), 1);
}

/// The sync screen's numbers come from the index: counts by state, the first refusals with
/// their reasons, the cursor, and the last sync as recorded (with the store's clock).
#[test]
fn sync_status_counts_states_and_keeps_the_last_sync() {
    use agent_core::store::{SyncOutcome, MAX_REFUSALS_LISTED};
    use agent_core::sync::client::SyncReport;

    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(at(2026, 3, 2, 9));
    let mut store = open(&dir.path().join("t.db"), Some(key(1)), &clock);
    let empty = store.sync_status().unwrap();
    assert_eq!((empty.pending, empty.refused, empty.synced), (0, 0, 0));
    assert_eq!((empty.cursor, empty.last_sync.clone()), (0, None));

    let n = MAX_REFUSALS_LISTED as usize + 4;
    let numbers: Vec<_> = demo::forms(12, n, &Catalog::demo())
        .iter()
        .map(|f| store.register(f).unwrap().view.ticket.number)
        .collect();
    let status = store.sync_status().unwrap();
    assert_eq!(
        (status.pending, status.refused, status.synced),
        (n as u64, 0, 0)
    );
    assert!(status.refusals.is_empty());

    // Two stored, the rest refused; the list stops at MAX_REFUSALS_LISTED, oldest first.
    let out = store.outbox(usize::MAX).unwrap();
    assert_eq!(out.len(), n);
    for (i, o) in out.iter().enumerate() {
        let refused = (i >= 2).then(|| format!("原因{i}"));
        store.acknowledge(o, refused.as_deref()).unwrap();
    }
    store.set_sync_cursor(17).unwrap();
    let status = store.sync_status().unwrap();
    assert_eq!(
        (status.pending, status.refused, status.synced, status.cursor),
        (0, n as u64 - 2, 2, 17)
    );
    assert_eq!(status.refusals.len(), MAX_REFUSALS_LISTED as usize);
    assert_eq!(status.refusals[0].number, numbers[2].as_str());
    assert_eq!(status.refusals[0].reason, "原因2");

    // The agent fixes a refused ticket: waiting again.
    store
        .append(&numbers[2], &EventDraft::new(EventKind::Withdrawn, ""))
        .unwrap();
    let status = store.sync_status().unwrap();
    assert_eq!((status.pending, status.refused), (1, n as u64 - 3));
    assert_eq!(status.refusals[0].number, numbers[3].as_str());

    // The last sync, as the host records it; a later record replaces it.
    let report = SyncReport {
        rounds: 2,
        uploaded: 5,
        ..SyncReport::default()
    };
    store.record_sync(SyncOutcome::Ok, &report, None).unwrap();
    clock.set(at(2026, 3, 2, 10));
    store
        .record_sync(
            SyncOutcome::Failed,
            &SyncReport::default(),
            Some("同步失败：断网"),
        )
        .unwrap();
    let last = store.sync_status().unwrap().last_sync.unwrap();
    assert_eq!(last.at, at(2026, 3, 2, 10));
    assert_eq!(last.outcome, SyncOutcome::Failed);
    assert_eq!(last.message.as_deref(), Some("同步失败：断网"));
    let json = serde_json::to_value(store.sync_status().unwrap()).unwrap();
    assert_eq!(json["last_sync"]["outcome"], "failed");
    assert_eq!(json["last_sync"]["at"], "2026-03-02T10:00:00+08:00");
    assert_eq!(json["refusals"][0]["reason"], "原因3");
}
