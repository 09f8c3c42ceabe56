//! Store benchmark on the standard workload (../shared/bench/gen_workload.py).
//!
//! `cargo bench -p agent-core --bench store` (release). Prints, for N tickets (default
//! 10,000): register time per ticket, time to apply the township/window events, open time,
//! list/search page times, database size per ticket, peak memory.
//! Env: DAIBAN_BENCH_TICKETS (count), DAIBAN_WORKLOAD (a tickets.jsonl to use instead).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::{form, s};

use agent_core::crypto::StoreKey;
use agent_core::doc::TicketDoc;
use agent_core::domain::event::{Event, EventKind, Role};
use agent_core::domain::lifecycle::Status;
use agent_core::domain::number::TicketNumber;
use agent_core::store::{china_offset, Light, Query, Store, StoreOptions};
use automerge::ActorId;
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use serde_json::Value;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::var("DAIBAN_BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let workload = match std::env::var_os("DAIBAN_WORKLOAD") {
        Some(p) => PathBuf::from(p),
        None => generate(dir.path(), n)?,
    };
    let lines: Vec<Value> = std::fs::read_to_string(&workload)?
        .lines()
        .take(n)
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    println!(
        "workload: {} tickets from {}",
        lines.len(),
        workload.display()
    );

    // One store per tablet, as in the field; the benchmark reports the store holding them all
    // (a single device with the whole workload is the harder case for page times).
    let db = dir.path().join("bench.db");
    let key = StoreKey::from_bytes(&[42; 32])?;
    let today = NaiveDate::from_ymd_opt(2026, 6, 15).ok_or("date")?;
    let fixed: DateTime<FixedOffset> = china_offset()
        .from_local_datetime(&today.and_hms_opt(10, 0, 0).ok_or("time")?)
        .single()
        .ok_or("time")?;
    let opts = || {
        let mut o = StoreOptions::new(key.clone(), 1, 1, "agent-bench");
        o.clock = Arc::new(move || fixed);
        o
    };
    let mut store = Store::open(&db, opts())?;

    // Register.
    let mut numbers = Vec::with_capacity(lines.len());
    let t0 = Instant::now();
    for t in &lines {
        let reg = store.register(&form(t))?;
        numbers.push(reg.view.ticket.number.clone());
    }
    let reg_time = t0.elapsed();

    // The rest of each ticket's lifecycle, appended where its role works: township and
    // window events on a server replica, merged back; agent events on the tablet.
    let township = ActorId::random();
    let t1 = Instant::now();
    let mut applied = 0usize;
    for (t, number) in lines.iter().zip(&numbers) {
        applied += replay(&mut store, &township, number, t)?;
    }
    let replay_time = t1.elapsed();
    drop(store);

    let t2 = Instant::now();
    let store = Store::open(&db, opts())?;
    let open_time = t2.elapsed();

    let pages: Vec<(&str, Query)> = vec![
        ("list newest page 0", Query::default()),
        (
            "list newest page 40",
            Query {
                page: 40,
                ..Query::default()
            },
        ),
        (
            "status = forwarded",
            Query {
                statuses: vec![Status::Forwarded],
                ..Query::default()
            },
        ),
        (
            "item SB001 + date range",
            Query {
                item_code: Some("SB001".into()),
                registered_from: NaiveDate::from_ymd_opt(2026, 6, 1),
                registered_to: NaiveDate::from_ymd_opt(2026, 6, 30),
                ..Query::default()
            },
        ),
        (
            "light red or yellow (due list)",
            Query {
                lights: vec![Light::Red, Light::Yellow],
                ..Query::default()
            },
        ),
        (
            "exact ID number",
            Query {
                id_number: Some(id_of(&lines[lines.len() / 2])),
                ..Query::default()
            },
        ),
        (
            "exact phone",
            Query {
                phone: Some(phone_of(&lines[lines.len() / 3])),
                ..Query::default()
            },
        ),
    ];
    println!();
    println!("tickets                 {}", numbers.len());
    println!(
        "register                {:.3} ms/ticket (goal < 2 ms)",
        ms(reg_time) / numbers.len() as f64
    );
    println!(
        "replay lifecycle        {:.3} ms/event ({} events merged or appended)",
        ms(replay_time) / applied.max(1) as f64,
        applied
    );
    println!("open                    {:.1} ms", ms(open_time));
    for (name, q) in &pages {
        let mut best = Duration::MAX;
        let mut total = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let page = store.search(q)?;
            best = best.min(t.elapsed());
            total = page.total;
        }
        println!(
            "page of 50: {name:<30} {:.2} ms (best of 5, {total} matches; goal < 20 ms)",
            ms(best)
        );
    }
    let t3 = Instant::now();
    let mut one = store;
    let _ = one.get(&numbers[numbers.len() / 2])?;
    println!("get one ticket          {:.2} ms", ms(t3.elapsed()));
    drop(one);
    let bytes = db_bytes(&db);
    println!(
        "database size           {} bytes, {:.0} B/ticket (goal <= 2048)",
        bytes,
        bytes as f64 / numbers.len() as f64
    );
    println!("peak memory (VmHWM)     {}", peak_memory());
    breakdown(&db, numbers.len())?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn generate(dir: &Path, n: usize) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/gen_workload.py");
    let out = dir.join("tickets.jsonl");
    let status = Command::new("python3")
        .arg(&gen)
        .args(["--tickets", &n.to_string(), "--seed", "1", "-o"])
        .arg(&out)
        .status()?;
    if !status.success() {
        return Err(format!(
            "{} failed; set DAIBAN_WORKLOAD to a tickets.jsonl",
            gen.display()
        )
        .into());
    }
    Ok(out)
}

fn id_of(t: &Value) -> String {
    s(t, &["applicant", "id_number"]).to_owned()
}

fn phone_of(t: &Value) -> String {
    s(t, &["applicant", "phone"]).to_owned()
}

/// Apply the workload's events after `registered`: staff events on a township replica merged
/// back, agent events appended on the tablet. Returns how many were applied.
fn replay(
    store: &mut Store,
    township: &ActorId,
    number: &TicketNumber,
    t: &Value,
) -> Result<usize, Box<dyn std::error::Error>> {
    let events = t["events"].as_array().cloned().unwrap_or_default();
    let mut applied = 0;
    let mut i = 1;
    while i < events.len() {
        let kind = EventKind::parse(s(&events[i], &["type"])).ok_or("unknown event type")?;
        if s(&events[i], &["role"]) == "agent" {
            let mut draft =
                agent_core::domain::event::EventDraft::new(kind, s(&events[i], &["note"]));
            if kind == EventKind::Evaluated {
                draft = draft.with("score", 5);
            }
            store.append(number, &draft)?;
            applied += 1;
            i += 1;
            continue;
        }
        // A run of server-side events: one township replica, one merge.
        let mut doc = TicketDoc::load(&store.export(number)?, township)?;
        while i < events.len() && s(&events[i], &["role"]) != "agent" {
            let e = &events[i];
            let kind = EventKind::parse(s(e, &["type"])).ok_or("unknown event type")?;
            let role = match (kind, s(e, &["role"])) {
                (EventKind::Received, _) => Role::Server,
                (_, "window") => Role::Window,
                _ => Role::Township,
            };
            let mut payload = serde_json::json!({});
            if kind == EventKind::SupplementRequested {
                payload = serde_json::json!({ "missing": ["户口本"] });
            }
            if kind == EventKind::Completed {
                let outcome = if s(e, &["note"]).starts_with("不予") {
                    "denied"
                } else {
                    "approved"
                };
                payload = serde_json::json!({ "outcome": outcome });
            }
            let at = DateTime::parse_from_rfc3339(s(e, &["at"]))?;
            doc.append(&Event {
                id: format!("{i:x}{}", number.as_str()),
                kind,
                at,
                actor: s(e, &["actor"]).to_owned(),
                role,
                note: s(e, &["note"]).to_owned(),
                payload,
            })?;
            applied += 1;
            i += 1;
        }
        doc.commit();
        store.merge_remote(&doc.save(true))?;
    }
    Ok(applied)
}

fn db_bytes(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suf| std::fs::metadata(format!("{}{suf}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Where the bytes go: sums of the stored values per ticket, and SQLite's page accounting.
fn breakdown(db: &Path, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let conn = rusqlite::Connection::open(db)?;
    let per = |sql: &str| -> Result<f64, rusqlite::Error> {
        let v: Option<f64> = conn.query_row(sql, [], |r| r.get(0))?;
        Ok(v.unwrap_or(0.0) / n as f64)
    };
    println!(
        "  sealed full docs      {:.0} B/ticket",
        per("SELECT SUM(length(doc)) FROM docs")?
    );
    println!(
        "  sealed doc chunks     {:.0} B/ticket ({:.1} chunks/ticket)",
        per("SELECT SUM(length(chunk)) FROM doc_chunks")?,
        per("SELECT COUNT(*) FROM doc_chunks")?
    );
    println!(
        "  sealed list summaries {:.0} B/ticket",
        per("SELECT SUM(length(summary)) FROM tickets")?
    );
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    println!("  pages {pages} x {size} B, {free} free");
    Ok(())
}
