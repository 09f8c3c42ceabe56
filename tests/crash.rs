//! A process killed mid-write loses nothing it committed: a child process registers tickets
//! and appends events as fast as it can, printing each committed number; the parent kills it
//! with SIGKILL and reopens the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use agent_core::crypto::StoreKey;
use agent_core::demo;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::event::{EventDraft, EventKind};
use agent_core::domain::number::TicketNumber;
use agent_core::store::{system_clock, Store, StoreOptions};

const CHILD_ENV: &str = "DAIBAN_CRASH_CHILD_DB";

fn options() -> StoreOptions {
    let mut o = StoreOptions::new(StoreKey::from_bytes(&[9; 32]).unwrap(), 101, 1, "agent-101");
    o.clock = system_clock();
    o
}

/// The child: runs only when the parent sets the environment variable.
#[test]
fn crash_child_writer() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut store = Store::open(&db, options()).unwrap();
    let forms = demo::forms(5, 100_000, &Catalog::demo());
    let out = std::io::stdout();
    for f in forms.iter().cycle() {
        let n = store.register(f).unwrap().view.ticket.number;
        // Withdrawal is an agent event that always fits a fresh ticket: a second write per ticket.
        store
            .append(&n, &EventDraft::new(EventKind::Withdrawn, ""))
            .unwrap();
        let mut o = out.lock();
        writeln!(o, "{n}").unwrap();
        o.flush().unwrap();
    }
}

#[test]
fn killed_writer_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let exe = std::env::current_exe().unwrap();
    let mut committed: Vec<String> = Vec::new();
    for round in 0..3 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut got = 0;
        // Kill at a different point each round, while it is writing.
        while got < 40 + round * 25 {
            match lines.next() {
                Some(Ok(l)) if TicketNumber::parse(l.trim()).is_ok() => {
                    committed.push(l.trim().to_owned());
                    got += 1;
                }
                Some(Ok(_)) => {}
                _ => panic!("child stopped early"),
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Anything printed after the kill signal was sent but before it landed also counts.
        for l in lines.map_while(Result::ok) {
            if TicketNumber::parse(l.trim()).is_ok() {
                committed.push(l.trim().to_owned());
            }
        }
    }
    let mut store = Store::open(&db, options()).unwrap();
    for n in &committed {
        let v = store.get(&TicketNumber::parse(n).unwrap()).unwrap();
        assert_eq!(v.ticket.events.len(), 2, "ticket {n} lost its second event");
    }
    assert!(store.count().unwrap() >= committed.len() as u64);
    // Numbers were never reused across crashes.
    let mut unique = committed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), committed.len());
}
