//! The supervision board (电子监察): what is late or about to be, stages over their budgets,
//! fees that differ from the catalog, how applicants rated the service, and the 不满意
//! ratings still waiting for the township's answer (回访).
//!
//! Read from the ticket index only. Lights depend on today: SQL counts the live tickets (a few
//! per cent of a county's) against today's two cut-off dates in one covering index, and the
//! stage overruns against a cut-off per budget; the recent figures read the per-day columns.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use rusqlite::{params_from_iter, OptionalExtension};

use agent_core::domain::calendar::Calendar;
use agent_core::domain::deadline::{self, Light, DEFAULT_MARGIN};
use agent_core::domain::event::UNSATISFIED;

use crate::error::Result;
use crate::index::{self, day, parse_light, Scope, Where};
use crate::reports::Figures;
use crate::store::ServerStore;

/// Rows each list on the board shows; the rest are counted.
pub const LIST: usize = 50;
/// Calendar days the board's recent figures (on-time rate, ratings) look back.
pub const RECENT_DAYS: i64 = 30;

/// Live tickets by light.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lights {
    pub green: i64,
    pub yellow: i64,
    pub red: i64,
}

impl Lights {
    fn add(&mut self, light: Light, n: i64) {
        match light {
            Light::Green => self.green += n,
            Light::Yellow => self.yellow += n,
            Light::Red => self.red += n,
        }
    }

    pub fn total(&self) -> i64 {
        self.green + self.yellow + self.red
    }
}

/// A ticket whose clock is due soon or past due.
#[derive(Debug, Clone)]
pub struct Late {
    pub number: String,
    pub point: u32,
    pub item_name: String,
    /// None while paused (the due date moves with the pause).
    pub due: Option<NaiveDate>,
    /// Working days left (negative: overdue); None while paused.
    pub remaining: Option<i64>,
}

/// A ticket whose open stage has taken longer than its budget.
#[derive(Debug, Clone)]
pub struct Overrun {
    pub number: String,
    pub point: u32,
    pub item_name: String,
    pub stage: String,
    pub start: NaiveDate,
    pub taken: u32,
    pub budget: u32,
}

/// A ticket charged a fee other than the catalog's statutory fee.
#[derive(Debug, Clone)]
pub struct FeeDiff {
    pub number: String,
    pub point: u32,
    pub item_name: String,
    pub registered: String,
    pub charged_fen: i64,
    pub statutory_fen: i64,
}

/// A 不满意 or worse rating the township has not answered yet.
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub number: String,
    pub point: u32,
    pub item_name: String,
    pub score: u8,
    pub rated: NaiveDate,
    /// `rated` plus the configured working days; None when the calendar does not reach it.
    pub due: Option<NaiveDate>,
    pub light: Option<Light>,
}

/// A list cut to [`LIST`] rows, and how many there are in all.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub rows: Vec<T>,
    pub total: usize,
}

impl<T> Listed<T> {
    fn cut(mut rows: Vec<T>) -> Listed<T> {
        let total = rows.len();
        rows.truncate(LIST);
        Listed { rows, total }
    }
}

/// The whole board as of `today`, for one account's scope.
#[derive(Debug, Clone)]
pub struct Board {
    pub today: NaiveDate,
    pub lights: Lights,
    /// Live tickets by light per township (code), point (number), window and item (name), in
    /// the order of township code, point number, window and item code.
    pub by_township: Vec<(String, Lights)>,
    pub by_point: Vec<(u32, Lights)>,
    pub by_window: Vec<(String, Lights)>,
    pub by_item: Vec<(String, Lights)>,
    /// Overdue first by how late, then due soon by what is left.
    pub overdue: Listed<Late>,
    pub due_soon: Listed<Late>,
    pub overruns: Listed<Overrun>,
    pub fees: Listed<FeeDiff>,
    pub follow_ups: Listed<FollowUp>,
    /// Follow-ups past their answer deadline.
    pub follow_ups_late: usize,
    /// The last [`RECENT_DAYS`] days: completed (how many on time) and ratings, counted as
    /// the reports count them.
    pub recent: Figures,
}

/// The board for `scope` as of `today`; `followup_days` working days to answer a rating.
pub fn board(
    store: &mut ServerStore,
    scope: &Scope,
    today: NaiveDate,
    followup_days: u32,
) -> Result<Board> {
    // One batch, as the lists do; the server folds any backlog in the background.
    index::refresh(store)?;
    let calendar = store.calendar()?;
    let mut board = Board {
        today,
        lights: Lights::default(),
        by_township: Vec::new(),
        by_point: Vec::new(),
        by_window: Vec::new(),
        by_item: Vec::new(),
        overdue: Listed::cut(Vec::new()),
        due_soon: Listed::cut(Vec::new()),
        overruns: Listed::cut(Vec::new()),
        fees: Listed::cut(Vec::new()),
        follow_ups: Listed::cut(Vec::new()),
        follow_ups_late: 0,
        recent: Figures::default(),
    };
    live(store, scope, &calendar, &mut board)?;
    recent(store, scope, &mut board)?;
    board.fees = fees(store, scope)?;
    let (follow_ups, late) = follow_ups(store, scope, &calendar, today, followup_days)?;
    board.follow_ups = follow_ups;
    board.follow_ups_late = late;
    Ok(board)
}

/// The light of a live row as SQL: red past due, yellow within the margin, green beyond it
/// (the same cut as the list's light filter); a paused clock keeps the light it paused with.
/// Binds `?1` today and `?2` the first green due date.
const LIGHT: &str = "CASE WHEN due IS NULL THEN paused_light WHEN due < ?1 THEN 'red'
     WHEN due < ?2 THEN 'yellow' ELSE 'green' END";

/// The live tickets: lights counted by township, point, window and item in SQL, the overdue
/// and due-soon lists, open stages over budget.
fn live(store: &ServerStore, scope: &Scope, cal: &Calendar, board: &mut Board) -> Result<()> {
    let today = board.today;
    let green_from = crate::index::green_from(cal, today);
    let mut w = Where::default();
    w.values.push(day(today).into());
    w.values.push(day(green_from).into());
    w.clauses
        .push("live AND (due IS NOT NULL OR paused_light IS NOT NULL)".into());
    scope.push(&mut w);
    // By item code (in the covering index); the names come from the catalog.
    let sql = format!(
        "SELECT township, point, window, item_code, {LIGHT}, COUNT(*) FROM ticket_index
         WHERE {} GROUP BY 1, 2, 3, 4, 5",
        w.sql()
    );
    let mut townships: BTreeMap<String, Lights> = BTreeMap::new();
    let mut points: BTreeMap<u32, Lights> = BTreeMap::new();
    let mut windows: BTreeMap<String, Lights> = BTreeMap::new();
    let mut items: BTreeMap<String, Lights> = BTreeMap::new();
    {
        let mut stmt = store.conn().prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(&w.values))?;
        while let Some(r) = rows.next()? {
            let Some(light) = r.get::<_, Option<String>>(4)?.and_then(|l| parse_light(&l)) else {
                continue;
            };
            let n: i64 = r.get(5)?;
            let window: String = r.get(2)?;
            board.lights.add(light, n);
            townships.entry(r.get(0)?).or_default().add(light, n);
            points.entry(r.get(1)?).or_default().add(light, n);
            if !window.is_empty() {
                windows.entry(window).or_default().add(light, n);
            }
            items.entry(r.get(3)?).or_default().add(light, n);
        }
    }
    board.by_township = townships.into_iter().collect();
    board.by_point = points.into_iter().collect();
    board.by_window = windows.into_iter().collect();
    // The catalog's name, else the name a ticket of the item was registered under.
    let catalog = store.catalog()?;
    let mut named = Vec::new();
    for (code, lights) in items {
        let name = match catalog.as_ref().and_then(|c| c.item(&code)) {
            Some(item) => item.name.clone(),
            None => store
                .conn()
                .query_row(
                    "SELECT item_name FROM ticket_index WHERE item_code = ?1 LIMIT 1",
                    [&code],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(code),
        };
        named.push((name, lights));
    }
    board.by_item = named;
    let total = |n: i64| usize::try_from(n).unwrap_or(0);
    board.overdue = Listed {
        rows: late(store, scope, cal, today, "due < ?", None, Light::Red)?,
        total: total(board.lights.red),
    };
    board.due_soon = Listed {
        rows: late(
            store,
            scope,
            cal,
            today,
            "due >= ? AND due < ?",
            Some(green_from),
            Light::Yellow,
        )?,
        total: total(board.lights.yellow),
    };
    board.overruns = overruns(store, scope, cal, today)?;
    Ok(())
}

/// The first [`LIST`] tickets whose due date is in `range` (its `?`s bound to today, then
/// `upto`), most urgent first (an index walk), then those paused with `light`.
fn late(
    store: &ServerStore,
    scope: &Scope,
    cal: &Calendar,
    today: NaiveDate,
    range: &str,
    upto: Option<NaiveDate>,
    light: Light,
) -> Result<Vec<Late>> {
    let mut counting = Where::default();
    counting.clauses.push(format!("live AND {range}"));
    counting.values.push(day(today).into());
    if let Some(upto) = upto {
        counting.values.push(day(upto).into());
    }
    scope.push(&mut counting);
    let mut paused = Where::default();
    paused.clauses.push("live AND due IS NULL".into());
    paused.add(
        "paused_light = ?",
        crate::index::light_str(light).to_owned(),
    );
    scope.push(&mut paused);
    let mut rows = Vec::new();
    for (w, order) in [(counting, "due, ticket"), (paused, "ticket")] {
        let room = LIST - rows.len();
        if room == 0 {
            break;
        }
        let sql = format!(
            "SELECT ticket, point, item_name, due FROM ticket_index WHERE {} ORDER BY {order}
             LIMIT {room}",
            w.sql()
        );
        let mut stmt = store.conn().prepare(&sql)?;
        let found = stmt.query_map(params_from_iter(&w.values), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        for row in found {
            let (number, point, item_name, due): (String, u32, String, Option<String>) = row?;
            let due = date(due);
            rows.push(Late {
                number,
                point,
                item_name,
                due,
                remaining: due.and_then(|d| deadline::remaining(cal, today, d).ok()),
            });
        }
    }
    Ok(rows)
}

/// Calendar days to search back for a span of `working_days` working days: three a working
/// day (Spring Festival's week and its make-up days) and a month more, at most 1,000.
fn lookback(working_days: u32) -> u32 {
    working_days.saturating_mul(3).saturating_add(30).min(1000)
}

/// The latest day `d` with more than `budget` working days after it up to `today`: a stage
/// that began on or before it is over its budget. None when the calendar does not reach.
fn over_from(cal: &Calendar, today: NaiveDate, budget: u32) -> Option<NaiveDate> {
    let mut d = today;
    for _ in 0..=lookback(budget) {
        d = d.pred_opt()?;
        if cal.working_days_between(d, today).ok()? > budget {
            return Some(d);
        }
    }
    None
}

/// Open stages over their budgets, counted; the longest running first.
fn overruns(
    store: &ServerStore,
    scope: &Scope,
    cal: &Calendar,
    today: NaiveDate,
) -> Result<Listed<Overrun>> {
    let budgets: Vec<u32> = store
        .conn()
        .prepare("SELECT DISTINCT stage_budget FROM ticket_index WHERE live AND stage_budget > 0")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let cases: Vec<(u32, String)> = budgets
        .into_iter()
        .filter_map(|b| over_from(cal, today, b).map(|d| (b, day(d))))
        .collect();
    if cases.is_empty() {
        return Ok(Listed::cut(Vec::new()));
    }
    let mut w = Where::default();
    let mut case = String::from("stage_start <= CASE stage_budget");
    for (b, from) in &cases {
        case.push_str(" WHEN ? THEN ?");
        w.values.push(i64::from(*b).into());
        w.values.push(from.clone().into());
    }
    case.push_str(" END");
    w.clauses.push("live AND stage_budget > 0".into());
    w.clauses.push(case);
    scope.push(&mut w);
    let count_sql = format!("SELECT COUNT(*) FROM ticket_index WHERE {}", w.sql());
    let total: i64 = store
        .conn()
        .query_row(&count_sql, params_from_iter(&w.values), |r| r.get(0))?;
    // The page's rows picked in the covering index first, then read from the table.
    let sql = format!(
        "SELECT ticket, point, item_name, stage, stage_start, stage_budget FROM ticket_index
         WHERE rowid IN (SELECT rowid FROM ticket_index WHERE {} ORDER BY stage_start, rowid
             LIMIT {LIST})
         ORDER BY stage_start, rowid",
        w.sql()
    );
    let mut stmt = store.conn().prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(&w.values))?;
    let mut list = Vec::new();
    while let Some(r) = rows.next()? {
        let Some(start) = date(r.get(4)?) else {
            continue;
        };
        list.push(Overrun {
            number: r.get(0)?,
            point: r.get(1)?,
            item_name: r.get(2)?,
            stage: r.get(3)?,
            start,
            taken: cal.working_days_between(start, today).unwrap_or(0),
            budget: r.get(5)?,
        });
    }
    Ok(Listed {
        rows: list,
        total: usize::try_from(total).unwrap_or(0),
    })
}

fn date(text: Option<String>) -> Option<NaiveDate> {
    text.and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok())
}

/// Completed on time and ratings over the last [`RECENT_DAYS`] days.
fn recent(store: &ServerStore, scope: &Scope, board: &mut Board) -> Result<()> {
    let since = day(board.today - Duration::days(RECENT_DAYS - 1));
    let mut w = Where::default();
    w.add("finished >= ?", since.clone());
    w.clauses.push("outcome IS NOT NULL".into());
    scope.push(&mut w);
    let sql = format!(
        "SELECT COUNT(*), COUNT(on_time), COALESCE(SUM(on_time), 0) FROM ticket_index WHERE {}",
        w.sql()
    );
    let recent = &mut board.recent;
    (recent.completed, recent.clocked, recent.on_time) =
        store
            .conn()
            .query_row(&sql, params_from_iter(&w.values), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
    let mut w = Where::default();
    w.add("evaluated >= ?", since);
    scope.push(&mut w);
    let sql = format!(
        "SELECT evaluation, COUNT(*) FROM ticket_index WHERE {} GROUP BY evaluation",
        w.sql()
    );
    let mut stmt = store.conn().prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(&w.values))?;
    while let Some(r) = rows.next()? {
        let score: i64 = r.get(0)?;
        if let Some(slot) = usize::try_from(score - 1)
            .ok()
            .and_then(|i| board.recent.ratings.get_mut(i))
        {
            *slot = r.get(1)?;
        }
    }
    Ok(())
}

/// Tickets charged other than the statutory fee, newest first.
fn fees(store: &ServerStore, scope: &Scope) -> Result<Listed<FeeDiff>> {
    let mut w = Where::default();
    w.clauses.push("fee_fen <> statutory_fen".into());
    scope.push(&mut w);
    let count_sql = format!("SELECT COUNT(*) FROM ticket_index WHERE {}", w.sql());
    let total: i64 = store
        .conn()
        .query_row(&count_sql, params_from_iter(&w.values), |r| r.get(0))?;
    let sql = format!(
        "SELECT ticket, point, item_name, registered, fee_fen, statutory_fen FROM ticket_index
         WHERE {} ORDER BY registered DESC, ticket DESC LIMIT {LIST}",
        w.sql()
    );
    let mut stmt = store.conn().prepare(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(&w.values), |r| {
            Ok(FeeDiff {
                number: r.get(0)?,
                point: r.get(1)?,
                item_name: r.get(2)?,
                registered: r.get(3)?,
                charged_fen: r.get(4)?,
                statutory_fen: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Listed {
        rows,
        total: usize::try_from(total).unwrap_or(0),
    })
}

/// The open follow-ups, oldest rating first, and how many are past their answer deadline.
fn follow_ups(
    store: &ServerStore,
    scope: &Scope,
    cal: &Calendar,
    today: NaiveDate,
    days: u32,
) -> Result<(Listed<FollowUp>, usize)> {
    // Ratings on or before this day are past their `days` working days to answer.
    let mut late_upto = None;
    let mut d = today;
    for _ in 0..=lookback(days) {
        let Some(prev) = d.pred_opt() else { break };
        d = prev;
        if cal.add_working_days(d, days).is_ok_and(|due| due < today) {
            late_upto = Some(day(d));
            break;
        }
    }
    let mut w = Where::default();
    w.add("evaluation <= ?", i64::from(UNSATISFIED));
    w.clauses.push("answered IS NULL".into());
    scope.push(&mut w);
    let counted = std::iter::once(rusqlite::types::Value::from(late_upto.unwrap_or_default()))
        .chain(w.values.iter().cloned());
    let (total, late): (i64, i64) = store.conn().query_row(
        &format!(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE evaluated <= ?) FROM ticket_index WHERE {}",
            w.sql()
        ),
        params_from_iter(counted),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let sql = format!(
        "SELECT ticket, point, item_name, evaluation, evaluated FROM ticket_index
         WHERE {} ORDER BY evaluated, ticket LIMIT {LIST}",
        w.sql()
    );
    let mut stmt = store.conn().prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(&w.values))?;
    let mut list = Vec::new();
    while let Some(r) = rows.next()? {
        let Some(rated) = date(r.get(4)?) else {
            continue;
        };
        let due = cal.add_working_days(rated, days).ok();
        let light = due.and_then(|due| {
            deadline::remaining(cal, today, due)
                .ok()
                .map(|left| deadline::light(left, DEFAULT_MARGIN))
        });
        list.push(FollowUp {
            number: r.get(0)?,
            point: r.get(1)?,
            item_name: r.get(2)?,
            score: r.get(3)?,
            rated,
            due,
            light,
        });
    }
    let count = |n: i64| usize::try_from(n).unwrap_or(0);
    Ok((
        Listed {
            rows: list,
            total: count(total),
        },
        count(late),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    /// A row of the index with what the board reads.
    struct Row<'a> {
        ticket: &'a str,
        township: &'a str,
        due: Option<&'a str>,
        stage: Option<(&'a str, &'a str, u32)>,
        fee: (i64, i64),
        finished: Option<(&'a str, bool)>,
        rating: Option<(u8, &'a str, Option<&'a str>)>,
    }

    impl Default for Row<'_> {
        fn default() -> Self {
            Row {
                ticket: "",
                township: "t1",
                due: None,
                stage: None,
                fee: (0, 0),
                finished: None,
                rating: None,
            }
        }
    }

    fn put(store: &ServerStore, r: Row<'_>) {
        store
            .conn()
            .execute(
                "INSERT INTO ticket_index (ticket, point, township, item_code, item_name,
                     applicant, id_number, phone, status, needs_review, window, registered, due,
                     fee_fen, statutory_fen, stage, stage_start, stage_budget, finished, outcome,
                     on_time, evaluation, evaluated, answered, live)
                 VALUES (?1, 101, ?2, 'SB001', '失业证办理', '张三', 'X', '', 'accepted', 0, '',
                     '2026-06-01', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    r.ticket,
                    r.township,
                    r.due,
                    r.fee.0,
                    r.fee.1,
                    r.stage.map(|s| s.0),
                    r.stage.map(|s| s.1),
                    r.stage.map(|s| s.2),
                    r.finished.map(|f| f.0),
                    r.finished.map(|_| "approved"),
                    r.finished.map(|f| f.1),
                    r.rating.map(|f| f.0),
                    r.rating.map(|f| f.1),
                    r.rating.and_then(|f| f.2),
                    r.due.is_some() || r.stage.is_some(),
                ],
            )
            .unwrap();
    }

    #[test]
    fn the_board_lights_lists_and_follows_up_as_of_today() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ServerStore::open(dir.path().join("s.db")).unwrap();
        // Wednesday 2026-06-10; the margin is one working day.
        let today = NaiveDate::from_ymd_opt(2026, 6, 10).unwrap();
        put(
            &store,
            Row {
                ticket: "late",
                due: Some("2026-06-09"),
                ..Row::default()
            },
        );
        put(
            &store,
            Row {
                ticket: "soon",
                due: Some("2026-06-11"),
                ..Row::default()
            },
        );
        put(
            &store,
            Row {
                ticket: "fine",
                township: "t2",
                due: Some("2026-06-30"),
                // Township review from Monday the 8th, one day allowed: two taken.
                stage: Some(("township_review", "2026-06-08", 1)),
                ..Row::default()
            },
        );
        put(
            &store,
            Row {
                ticket: "fee",
                fee: (1500, 1000),
                finished: Some(("2026-06-05", true)),
                rating: Some((2, "2026-06-01", None)),
                ..Row::default()
            },
        );
        put(
            &store,
            Row {
                ticket: "slow",
                finished: Some(("2026-06-09", false)),
                rating: Some((1, "2026-06-09", Some("2026-06-10"))),
                ..Row::default()
            },
        );
        put(
            &store,
            Row {
                ticket: "old",
                finished: Some(("2026-04-01", false)),
                rating: Some((5, "2026-06-09", None)),
                ..Row::default()
            },
        );
        let b = board(&mut store, &Scope::default(), today, 5).unwrap();
        assert_eq!(
            b.lights,
            Lights {
                green: 1,
                yellow: 1,
                red: 1
            }
        );
        assert_eq!(
            b.by_township,
            [
                (
                    "t1".to_owned(),
                    Lights {
                        green: 0,
                        yellow: 1,
                        red: 1
                    }
                ),
                (
                    "t2".to_owned(),
                    Lights {
                        green: 1,
                        yellow: 0,
                        red: 0
                    }
                )
            ]
        );
        // No catalog here: items are named as their tickets were registered.
        assert_eq!(b.by_item[0].0, "失业证办理");
        let numbers = |l: &[Late]| l.iter().map(|l| l.number.clone()).collect::<Vec<_>>();
        assert_eq!(numbers(&b.overdue.rows), ["late"]);
        assert_eq!(b.overdue.rows[0].remaining, Some(-1));
        assert_eq!(numbers(&b.due_soon.rows), ["soon"]);
        assert_eq!(b.overruns.total, 1);
        assert_eq!(
            (b.overruns.rows[0].taken, b.overruns.rows[0].budget),
            (2, 1)
        );
        assert_eq!(b.fees.rows.len(), 1);
        assert_eq!(b.fees.rows[0].charged_fen, 1500);
        // The last 30 days: two completed, one on time (April's is older).
        assert_eq!((b.recent.completed, b.recent.on_time), (2, 1));
        assert_eq!(b.recent.ratings, [1, 1, 0, 0, 1]);
        // The answered one is gone; the other is past its five working days.
        assert_eq!(b.follow_ups.total, 1);
        let f = &b.follow_ups.rows[0];
        assert_eq!(
            (f.number.as_str(), f.due),
            ("fee", NaiveDate::from_ymd_opt(2026, 6, 8))
        );
        assert_eq!((f.light, b.follow_ups_late), (Some(Light::Red), 1));

        // A township sees its own.
        let b = board(&mut store, &Scope::township("t2"), today, 5).unwrap();
        assert_eq!(
            (b.lights.total(), b.fees.total, b.follow_ups.total),
            (1, 0, 0)
        );

        // Next year's calendar not imported yet: the board still shows (weekends off).
        let last = *Calendar::default_cn().years().last().unwrap();
        let new_year_eve = NaiveDate::from_ymd_opt(last, 12, 31).unwrap();
        let b = board(&mut store, &Scope::township("t2"), new_year_eve, 5).unwrap();
        assert_eq!(
            (b.lights.total(), b.fees.total, b.follow_ups.total),
            (1, 0, 0)
        );
    }
}
