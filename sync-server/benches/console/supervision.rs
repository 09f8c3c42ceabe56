//! The supervision board and the monthly report with 1,000,000 tickets in the store (issue
//! "Web console, part 2"; goal: each served in < 300 ms).
//!
//! Playing a county's whole year of 1,000,000 tickets through the sync client takes hours, so
//! the store is the simulated year built above (every ticket registered on a tablet, synced,
//! acted on through `staff::append`, folded into the index by `index::refresh_all`) with its
//! ticket index replicated: each copy is every index row again under a new, valid ticket
//! number (the sequence digits moved), same dates, points, items, lights, fees and ratings.
//! The board and the reports read only the index, so they see a county ten (or fifty) times
//! as busy as the simulated one, on the same days. Documents are not replicated: the pages
//! measured here never load one.
//!
//! Env: `DAIBAN_BENCH_SUPERVISION_ROWS` (default 1000000; 0 skips this part),
//! `DAIBAN_BENCH_SUPERVISION_REQUESTS` (default 20 per page).

use super::*;

use rusqlite::types::Value;
use sync_server::reports::{self, Period};
use sync_server::supervision;

/// The goal: server time, p95.
const GOAL_MS: f64 = 300.0;
const WARM: usize = 2;

pub fn run(root: &Path, db: &Path, n: usize) -> Res<()> {
    let rows: usize = env_or("DAIBAN_BENCH_SUPERVISION_ROWS", 1_000_000);
    let requests: usize = env_or("DAIBAN_BENCH_SUPERVISION_REQUESTS", 20);
    if rows == 0 {
        return Ok(());
    }
    let dir = root.join(format!("supervision-{rows}"));
    std::fs::create_dir_all(&dir)?;
    let big = dir.join("township.db");
    {
        // The source's last writes are in its WAL: fold them into the main file first.
        let conn = rusqlite::Connection::open(db)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    for stale in ["township.db-wal", "township.db-shm"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    std::fs::copy(db, &big)?;
    let started = Instant::now();
    let held = replicate(&big, rows)?;
    println!(
        "\nreplicated the index of {n} tickets to {held} rows in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        big.display()
    );

    let store = ServerStore::open(&big)?;
    let state = AppState::new(store, township_info());
    let (month, in_month) = busiest_month(&state)?;
    let (router, timer) = timed_app(&state);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let url = serve_on(&runtime, router)?;
    let browser = Browser::sign_in(&url, STAFF_LOGIN, timer)?;
    let year = &month[..4];
    let pages = [
        (Page::Board, "/console/board".to_owned()),
        (Page::Month, format!("/console/reports?period={month}")),
        (Page::Xlsx, format!("/console/reports/xlsx?period={month}")),
        (Page::Year, format!("/console/reports?period={year}")),
    ];
    println!(
        "==== supervision board and reports, {held} tickets in the index ({requests} timed requests per page after {WARM} warm-up; goal p95 < {GOAL_MS} ms for the board and the monthly report) ===="
    );
    println!("  busiest month {month}: {in_month} tickets registered");
    println!(
        "  {:<44} {:>8} {:>8} {:>8}  {:>9}  verdict",
        "page", "p50 ms", "p95 ms", "max ms", "first ms"
    );
    for (page, path) in &pages {
        let mut samples = Vec::new();
        let mut first = 0.0;
        for i in 0..WARM + requests {
            let (ms, body) = browser.get(path)?;
            if !page.holds(&body, in_month) {
                let head: String = body.chars().take(300).collect();
                return Err(format!(
                    "{path}: not the expected page, the benchmark is broken: {head}"
                )
                .into());
            }
            if i == 0 {
                first = ms;
            }
            if i >= WARM {
                samples.push(ms);
            }
        }
        let s = stats(&samples);
        let verdict = match (page.has_goal(), s.1 < GOAL_MS) {
            (false, _) => "(no goal)",
            (true, true) => "PASS",
            (true, false) => "MISSED",
        };
        println!(
            "  {:<44} {:>8.1} {:>8.1} {:>8.1}  {first:>9.1}  {verdict}",
            format!("GET {path}"),
            s.0,
            s.1,
            s.2
        );
    }
    drop(browser);
    parts(&state, &month)?;
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

/// Copy every index row under new ticket numbers until the index holds at least `rows`;
/// returns how many it holds.
fn replicate(db: &Path, rows: usize) -> Res<usize> {
    let mut conn = rusqlite::Connection::open(db)?;
    let original: Vec<Vec<Value>> = {
        let mut stmt = conn.prepare("SELECT * FROM ticket_index")?;
        let width = stmt.column_count();
        let all = stmt
            .query_map([], |r| (0..width).map(|i| r.get::<_, Value>(i)).collect())?
            .collect::<rusqlite::Result<Vec<Vec<Value>>>>()?;
        all
    };
    let n = original.len().max(1);
    let copies = rows.div_ceil(n);
    let width = original.first().map_or(0, Vec::len);
    let marks = vec!["?"; width].join(", ");
    // Each copy moves the sequence digits past every sequence the build used.
    let seq_of = |row: &Vec<Value>| -> Res<(TicketNumber, u32)> {
        let Some(Value::Text(number)) = row.first() else {
            return Err("ticket_index's first column is not the ticket number".into());
        };
        let number = TicketNumber::parse(number)?;
        let seq = number.as_str()[6..11].parse()?;
        Ok((number, seq))
    };
    let mut top = 0;
    for row in &original {
        top = top.max(seq_of(row)?.1);
    }
    let step = top + 1;
    if u64::from(step) * copies as u64 > 99_999 {
        return Err(
            format!("{copies} copies of sequences up to {top} do not fit in 5 digits").into(),
        );
    }
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(&format!("INSERT INTO ticket_index VALUES ({marks})"))?;
        for copy in 1..copies {
            for row in &original {
                let (number, seq) = seq_of(row)?;
                let moved =
                    TicketNumber::new(number.point(), number.device(), seq + step * copy as u32)?;
                let mut row = row.clone();
                row[0] = Value::Text(moved.to_string());
                insert.execute(rusqlite::params_from_iter(row))?;
            }
        }
    }
    tx.commit()?;
    conn.execute_batch("ANALYZE")?;
    Ok(n * copies)
}

/// The month with the most registrations, and how many.
fn busiest_month(state: &AppState) -> Res<(String, i64)> {
    let store = state.store.lock().map_err(|_| "store lock")?;
    Ok(store.conn().query_row(
        "SELECT substr(registered, 1, 7), COUNT(*) FROM ticket_index GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// The pages timed.
enum Page {
    Board,
    Month,
    Xlsx,
    Year,
}

impl Page {
    fn has_goal(&self) -> bool {
        matches!(self, Page::Board | Page::Month)
    }

    /// A page is only timed when it is the right page: the board with its lists, the monthly
    /// report counting the month's registrations.
    fn holds(&self, body: &str, in_month: i64) -> bool {
        match self {
            Page::Board => body.contains(r#"id="overdue""#) && body.contains(r#"id="follow-ups""#),
            Page::Month => body.contains(&format!(r#"id="registered">{in_month}件"#)),
            Page::Xlsx => body.len() > 1000,
            Page::Year => body.contains(r#"id="totals""#),
        }
    }
}

/// Where the time goes: the board and the report computed in-process (median of 5).
fn parts(state: &AppState, month: &str) -> Res<()> {
    let mut store = state.store.lock().map_err(|_| "store lock")?;
    let today = sync_server::now().date_naive();
    let scope = Scope::default();
    let period = Period::parse(month)?;
    let mut board = Vec::new();
    let mut report = Vec::new();
    let mut live = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let b = supervision::board(&mut store, &scope, today, 5)?;
        board.push(t.elapsed().as_secs_f64() * 1e3);
        live = b.lights.total();
        let t = Instant::now();
        reports::report(&mut store, &scope, period)?;
        report.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "  in-process (median of 5): supervision::board {:.1} ms ({live} live tickets lit), reports::report({month}) {:.1} ms",
        stats(&board).0,
        stats(&report).0
    );
    Ok(())
}
