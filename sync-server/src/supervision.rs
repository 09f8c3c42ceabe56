//! The supervision board (电子监察): what is late or about to be, stages over their budgets,
//! fees that differ from the catalog, how applicants rated the service, and the 不满意
//! ratings still waiting for the township's answer (回访).
//!
//! Read from the ticket index only. Lights depend on today, so they are worked out here from
//! each live ticket's due date (a few per cent of a county's tickets are live at any time);
//! the recent figures read the index's per-day columns.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use rusqlite::params_from_iter;

use agent_core::domain::calendar::Calendar;
use agent_core::domain::deadline::{self, Light, DEFAULT_MARGIN};
use agent_core::domain::event::UNSATISFIED;

use crate::error::Result;
use crate::index::{self, day, parse_light, Scope, Where};
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
    fn add(&mut self, light: Light) {
        match light {
            Light::Green => self.green += 1,
            Light::Yellow => self.yellow += 1,
            Light::Red => self.red += 1,
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
    /// Live tickets by light per township, point, window and item: (key, lights), by key.
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
    /// Completed in the last [`RECENT_DAYS`] days, and how many of them on time.
    pub completed: i64,
    pub on_time: i64,
    /// Ratings in the last [`RECENT_DAYS`] days, index 0 = score 1 … index 4 = score 5.
    pub ratings: [i64; 5],
    /// Live tickets whose due date the calendar cannot place in a light (a year missing).
    pub unplaced: i64,
}

impl Board {
    /// The on-time rate in per cent, when anything was completed.
    pub fn on_time_rate(&self) -> Option<f64> {
        (self.completed > 0).then(|| 100.0 * self.on_time as f64 / self.completed as f64)
    }
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
        completed: 0,
        on_time: 0,
        ratings: [0; 5],
        unplaced: 0,
    };
    live(store, scope, &calendar, &mut board)?;
    recent(store, scope, &mut board)?;
    board.fees = fees(store, scope)?;
    let (follow_ups, late) = follow_ups(store, scope, &calendar, today, followup_days)?;
    board.follow_ups = follow_ups;
    board.follow_ups_late = late;
    Ok(board)
}

/// One pass over the live tickets: lights by dimension, the late lists, open stage overruns.
fn live(store: &ServerStore, scope: &Scope, cal: &Calendar, board: &mut Board) -> Result<()> {
    let today = board.today;
    let mut w = Where::default();
    w.clauses.push("live".into());
    scope.push(&mut w);
    let sql = format!(
        "SELECT ticket, township, point, window, item_name, due, paused_light, stage,
                stage_start, stage_budget
         FROM ticket_index WHERE {}",
        w.sql()
    );
    let mut stmt = store.conn().prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(&w.values))?;
    let mut townships: BTreeMap<String, Lights> = BTreeMap::new();
    let mut points: BTreeMap<u32, Lights> = BTreeMap::new();
    let mut windows: BTreeMap<String, Lights> = BTreeMap::new();
    let mut items: BTreeMap<String, Lights> = BTreeMap::new();
    let (mut overdue, mut due_soon, mut overruns) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(r) = rows.next()? {
        let number: String = r.get(0)?;
        let township: String = r.get(1)?;
        let point: u32 = r.get(2)?;
        let window: String = r.get(3)?;
        let item_name: String = r.get(4)?;
        let due = date(r.get::<_, Option<String>>(5)?);
        let paused = r.get::<_, Option<String>>(6)?.and_then(|p| parse_light(&p));
        if let (Some(stage), Some(start), Some(budget)) = (
            r.get::<_, Option<String>>(7)?,
            date(r.get::<_, Option<String>>(8)?),
            r.get::<_, Option<u32>>(9)?,
        ) {
            if let Ok(taken) = cal.working_days_between(start, today) {
                if budget > 0 && taken > budget {
                    overruns.push(Overrun {
                        number: number.clone(),
                        point,
                        item_name: item_name.clone(),
                        stage,
                        start,
                        taken,
                        budget,
                    });
                }
            }
        }
        let (light, remaining) = match (due, paused) {
            (Some(due), _) => match deadline::remaining(cal, today, due) {
                Ok(left) => (deadline::light(left, DEFAULT_MARGIN), Some(left)),
                Err(_) => {
                    board.unplaced += 1;
                    continue;
                }
            },
            (None, Some(light)) => (light, None),
            // Only an open stage keeps it live (e.g. a result on its way back).
            (None, None) => continue,
        };
        board.lights.add(light);
        townships.entry(township).or_default().add(light);
        points.entry(point).or_default().add(light);
        if !window.is_empty() {
            windows.entry(window).or_default().add(light);
        }
        items.entry(item_name.clone()).or_default().add(light);
        let late = Late {
            number,
            point,
            item_name,
            due,
            remaining,
        };
        match light {
            Light::Red => overdue.push(late),
            Light::Yellow => due_soon.push(late),
            Light::Green => {}
        }
    }
    // Most urgent first; paused tickets (no count of days) after those that are counting.
    let urgency = |l: &Late| (l.remaining.is_none(), l.remaining, l.number.clone());
    overdue.sort_by_key(urgency);
    due_soon.sort_by_key(urgency);
    overruns.sort_by_key(|o| (std::cmp::Reverse(o.taken - o.budget), o.number.clone()));
    board.overdue = Listed::cut(overdue);
    board.due_soon = Listed::cut(due_soon);
    board.overruns = Listed::cut(overruns);
    board.by_township = townships.into_iter().collect();
    board.by_point = points.into_iter().collect();
    board.by_window = windows.into_iter().collect();
    board.by_item = items.into_iter().collect();
    Ok(())
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
        "SELECT COUNT(*), COALESCE(SUM(on_time), 0) FROM ticket_index WHERE {}",
        w.sql()
    );
    (board.completed, board.on_time) =
        store
            .conn()
            .query_row(&sql, params_from_iter(&w.values), |r| {
                Ok((r.get(0)?, r.get(1)?))
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
            .and_then(|i| board.ratings.get_mut(i))
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
    let mut w = Where::default();
    w.add("evaluation <= ?", i64::from(UNSATISFIED));
    w.clauses.push("answered IS NULL".into());
    scope.push(&mut w);
    let sql = format!(
        "SELECT ticket, point, item_name, evaluation, evaluated FROM ticket_index
         WHERE {} ORDER BY evaluated, ticket",
        w.sql()
    );
    let mut stmt = store.conn().prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(&w.values))?;
    let mut all = Vec::new();
    let mut late = 0;
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
        if light == Some(Light::Red) {
            late += 1;
        }
        all.push(FollowUp {
            number: r.get(0)?,
            point: r.get(1)?,
            item_name: r.get(2)?,
            score: r.get(3)?,
            rated,
            due,
            light,
        });
    }
    Ok((Listed::cut(all), late))
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
        assert_eq!((b.completed, b.on_time), (2, 1));
        assert_eq!(b.ratings, [1, 1, 0, 0, 1]);
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
    }
}
