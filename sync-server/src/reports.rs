//! Monthly and annual statistics of the kind counties publish (see the seeds): cases by
//! township, point and item; registered, accepted, completed and completed on time; average
//! working days taken; satisfaction; and the trips and fares the proxy saved villagers.
//!
//! Each measure counts by its own day (a ticket registered in March and completed in April
//! counts as registered in March and completed in April), read from the ticket index's
//! covering indexes, one grouped query per measure.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use rusqlite::params_from_iter;

use agent_core::domain::catalog::Catalog;
use agent_core::domain::directory::Directory;

use crate::error::{Error, Result};
use crate::index::{self, day, Scope, Where};
use crate::store::ServerStore;

/// Round trips to the county seat each delivered ticket saved its applicant: one to apply
/// and one to collect the result.
pub const TRIPS_PER_TICKET: i64 = 2;

/// A month or a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Month(i32, u32),
    Year(i32),
}

impl Period {
    /// `2026-11` or `2026`.
    pub fn parse(text: &str) -> Result<Period> {
        let bad = || Error::BadRequest("统计期应为 2026-11（月报）或 2026（年报）".into());
        let text = text.trim();
        let period = match text.split_once('-') {
            Some((y, m)) => {
                Period::Month(y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?)
            }
            None => Period::Year(text.parse().map_err(|_| bad())?),
        };
        // Both ends must be real days.
        period.first().ok_or_else(bad)?;
        period.last().ok_or_else(bad)?;
        Ok(period)
    }

    /// The month holding `day`.
    pub fn month_of(day: NaiveDate) -> Period {
        Period::Month(day.year(), day.month())
    }

    pub fn first(self) -> Option<NaiveDate> {
        match self {
            Period::Month(y, m) => NaiveDate::from_ymd_opt(y, m, 1),
            Period::Year(y) => NaiveDate::from_ymd_opt(y, 1, 1),
        }
        .filter(|d| (2000..=2999).contains(&d.year()))
    }

    pub fn last(self) -> Option<NaiveDate> {
        let next = match self {
            Period::Month(y, 12) | Period::Year(y) => {
                NaiveDate::from_ymd_opt(y.checked_add(1)?, 1, 1)
            }
            Period::Month(y, m) => NaiveDate::from_ymd_opt(y, m.checked_add(1)?, 1),
        };
        next.and_then(|d| d.pred_opt())
    }

    /// As in a URL: `2026-11` or `2026`.
    pub fn key(self) -> String {
        match self {
            Period::Month(y, m) => format!("{y}-{m:02}"),
            Period::Year(y) => y.to_string(),
        }
    }

    /// As in a title: `2026年11月` or `2026年`.
    pub fn label(self) -> String {
        match self {
            Period::Month(y, m) => format!("{y}年{m}月"),
            Period::Year(y) => format!("{y}年"),
        }
    }
}

/// The figures of one row of a report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub registered: i64,
    pub accepted: i64,
    pub completed: i64,
    /// Completed with a deadline the calendar could count (the on-time rate's denominator).
    pub clocked: i64,
    pub on_time: i64,
    /// Working days taken by the completed tickets, summed (for the average).
    pub days_taken: i64,
    /// Completed tickets with a stage over its budget.
    pub stage_overruns: i64,
    /// Ratings by score, index 0 = 1 非常不满意 … 4 = 5 非常满意.
    pub ratings: [i64; 5],
    pub delivered: i64,
    /// Round trips to the county seat saved, the kilometres and the fares they would have
    /// cost (from each point's distance and fare).
    pub trips_saved: i64,
    pub km_saved: f64,
    pub fare_saved_fen: i64,
}

impl Figures {
    fn add(&mut self, o: &Figures) {
        self.registered += o.registered;
        self.accepted += o.accepted;
        self.completed += o.completed;
        self.clocked += o.clocked;
        self.on_time += o.on_time;
        self.days_taken += o.days_taken;
        self.stage_overruns += o.stage_overruns;
        for (a, b) in self.ratings.iter_mut().zip(o.ratings) {
            *a += b;
        }
        self.delivered += o.delivered;
        self.trips_saved += o.trips_saved;
        self.km_saved += o.km_saved;
        self.fare_saved_fen += o.fare_saved_fen;
    }

    pub fn rated(&self) -> i64 {
        self.ratings.iter().sum()
    }

    /// Per cent completed on time; None when nothing completed had a countable deadline.
    pub fn on_time_rate(&self) -> Option<f64> {
        percent(self.on_time, self.clocked)
    }

    /// Average working days from acceptance to completion (paused days excluded).
    pub fn average_days(&self) -> Option<f64> {
        (self.clocked > 0).then(|| round1(self.days_taken as f64 / self.clocked as f64))
    }

    /// Per cent of ratings 基本满意 or better.
    pub fn satisfaction_rate(&self) -> Option<f64> {
        percent(self.ratings[2..].iter().sum(), self.rated())
    }
}

/// A per cent to one decimal place; None of nothing.
pub fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| round1(100.0 * part as f64 / whole as f64))
}

/// One decimal place, rounding halves away from zero, the same on pages and in exports.
pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// One row: its key (township code, point number, item code or month), name and figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub key: String,
    pub name: String,
    pub figures: Figures,
}

/// A report for one period and scope.
#[derive(Debug, Clone)]
pub struct Report {
    pub period: Period,
    pub total: Figures,
    pub by_township: Vec<Line>,
    pub by_point: Vec<Line>,
    pub by_item: Vec<Line>,
    /// An annual report's months (empty for a monthly report).
    pub by_month: Vec<Line>,
}

/// Where a count lands: township, point, item, month.
type Key = (String, u32, String, u32);

/// The report for `period` in `scope`.
pub fn report(store: &mut ServerStore, scope: &Scope, period: Period) -> Result<Report> {
    // One batch, as the lists do; the server folds any backlog in the background.
    index::refresh(store)?;
    let (Some(first), Some(last)) = (period.first(), period.last()) else {
        return Err(Error::BadRequest("统计期无效".into()));
    };
    let (first, last) = (day(first), day(last));
    let mut cells: BTreeMap<Key, Figures> = BTreeMap::new();
    let conn = store.conn();
    // (day column, extra condition, extra selected columns, how a row adds to a cell)
    let grouped = |column: &str,
                   extra: &str,
                   selected: &str,
                   cells: &mut BTreeMap<Key, Figures>,
                   put: &dyn Fn(&rusqlite::Row<'_>, &mut Figures) -> rusqlite::Result<()>|
     -> Result<()> {
        let mut w = Where::default();
        w.add(&format!("{column} >= ?"), first.clone());
        w.add(&format!("{column} <= ?"), last.clone());
        if !extra.is_empty() {
            w.clauses.push(extra.into());
        }
        scope.push(&mut w);
        let sql = format!(
            // Grouped in the covering index's own order (day first): no sort.
            "SELECT {column}, township, point, item_code{selected}
             FROM ticket_index WHERE {} GROUP BY 1, 2, 3, 4{}",
            w.sql(),
            if column == "evaluated" {
                ", evaluation"
            } else {
                ""
            }
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(&w.values))?;
        while let Some(r) = rows.next()? {
            let day: String = r.get(0)?;
            let month = day.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(0);
            let key: Key = (r.get(1)?, r.get(2)?, r.get(3)?, month);
            put(r, cells.entry(key).or_default())?;
        }
        Ok(())
    };
    grouped("registered", "", ", COUNT(*)", &mut cells, &|r, f| {
        f.registered += r.get::<_, i64>(4)?;
        Ok(())
    })?;
    grouped("accepted", "", ", COUNT(*)", &mut cells, &|r, f| {
        f.accepted += r.get::<_, i64>(4)?;
        Ok(())
    })?;
    // A stage over budget counts when the ticket is completed; the return to the village,
    // which closes later, when it is delivered.
    grouped(
        "finished",
        "outcome IS NOT NULL",
        ", COUNT(*), COUNT(on_time), COALESCE(SUM(on_time), 0), COALESCE(SUM(days_taken), 0),
           SUM(stages_over NOT IN ('', 'return_to_village'))",
        &mut cells,
        &|r, f| {
            f.completed += r.get::<_, i64>(4)?;
            f.clocked += r.get::<_, i64>(5)?;
            f.on_time += r.get::<_, i64>(6)?;
            f.days_taken += r.get::<_, i64>(7)?;
            f.stage_overruns += r.get::<_, i64>(8)?;
            Ok(())
        },
    )?;
    grouped(
        "evaluated",
        "",
        ", evaluation, COUNT(*)",
        &mut cells,
        &|r, f| {
            let score: i64 = r.get(4)?;
            if let Some(slot) = usize::try_from(score - 1)
                .ok()
                .and_then(|i| f.ratings.get_mut(i))
            {
                *slot += r.get::<_, i64>(5)?;
            }
            Ok(())
        },
    )?;
    grouped(
        "delivered",
        "",
        ", COUNT(*), SUM(instr(stages_over, 'return_to_village') > 0)",
        &mut cells,
        &|r, f| {
            f.delivered += r.get::<_, i64>(4)?;
            f.stage_overruns += r.get::<_, i64>(5)?;
            Ok(())
        },
    )?;
    let directory = store.directory()?;
    let catalog = store.catalog()?;
    Ok(roll_up(period, cells, &directory, catalog.as_ref()))
}

/// Add each cell's savings, then sum the cells by township, point, item and month.
fn roll_up(
    period: Period,
    mut cells: BTreeMap<Key, Figures>,
    directory: &Directory,
    catalog: Option<&Catalog>,
) -> Report {
    let mut total = Figures::default();
    let mut townships: BTreeMap<String, Figures> = BTreeMap::new();
    let mut points: BTreeMap<u32, Figures> = BTreeMap::new();
    let mut items: BTreeMap<String, Figures> = BTreeMap::new();
    let mut months: BTreeMap<u32, Figures> = BTreeMap::new();
    for ((township, point, item, month), f) in &mut cells {
        f.trips_saved = f.delivered * TRIPS_PER_TICKET;
        if let Some(p) = directory.point(*point) {
            f.km_saved = f.trips_saved as f64 * 2.0 * p.distance_km;
            f.fare_saved_fen = f.trips_saved * p.fare_fen;
        }
        total.add(f);
        townships.entry(township.clone()).or_default().add(f);
        points.entry(*point).or_default().add(f);
        items.entry(item.clone()).or_default().add(f);
        months.entry(*month).or_default().add(f);
    }
    let lines = |named: Vec<(String, String, Figures)>| {
        named
            .into_iter()
            .map(|(key, name, figures)| Line { key, name, figures })
            .collect::<Vec<_>>()
    };
    Report {
        period,
        total,
        by_township: lines(
            townships
                .into_iter()
                .map(|(code, f)| {
                    let name = directory
                        .township(&code)
                        .map_or(code.clone(), |t| t.name.clone());
                    (code, name, f)
                })
                .collect(),
        ),
        by_point: lines(
            points
                .into_iter()
                .map(|(n, f)| {
                    let name = directory.point(n).map_or(n.to_string(), |p| p.name.clone());
                    (n.to_string(), name, f)
                })
                .collect(),
        ),
        by_item: lines(
            items
                .into_iter()
                .map(|(code, f)| {
                    let name = catalog
                        .and_then(|c| c.item(&code))
                        .map_or(code.clone(), |i| i.name.clone());
                    (code, name, f)
                })
                .collect(),
        ),
        by_month: match period {
            Period::Month(..) => Vec::new(),
            Period::Year(_) => lines(
                (1..=12)
                    .map(|m| {
                        let f = months.remove(&m).unwrap_or_default();
                        (m.to_string(), format!("{m}月"), f)
                    })
                    .collect(),
            ),
        },
    }
}

/// The columns of every export, in order.
pub const COLUMNS: [&str; 14] = [
    "分组",
    "编码",
    "名称",
    "登记",
    "受理",
    "办结",
    "按时办结",
    "按时办结率(%)",
    "平均用时(工作日)",
    "环节超时",
    "评价",
    "满意率(%)",
    "节省往返(次)",
    "节省路费(元)",
];

/// A cell of an export row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Empty,
}

impl Report {
    /// Every row of the report as the exports write it: the total, then each grouping.
    pub fn rows(&self) -> Vec<Vec<Cell>> {
        let total = Line {
            key: String::new(),
            name: self.period.label(),
            figures: self.total.clone(),
        };
        let groups: [(&str, &[Line]); 5] = [
            ("合计", std::slice::from_ref(&total)),
            ("月份", &self.by_month),
            ("乡镇", &self.by_township),
            ("代办点", &self.by_point),
            ("事项", &self.by_item),
        ];
        let mut rows = Vec::new();
        for (group, lines) in groups {
            for line in lines {
                rows.push(row(group, line));
            }
        }
        rows
    }
}

fn row(group: &str, line: &Line) -> Vec<Cell> {
    let f = &line.figures;
    let n = |v: i64| Cell::Number(v as f64);
    let rate = |v: Option<f64>| v.map_or(Cell::Empty, Cell::Number);
    vec![
        Cell::Text(group.into()),
        Cell::Text(line.key.clone()),
        Cell::Text(line.name.clone()),
        n(f.registered),
        n(f.accepted),
        n(f.completed),
        n(f.on_time),
        rate(f.on_time_rate()),
        rate(f.average_days()),
        n(f.stage_overruns),
        n(f.rated()),
        rate(f.satisfaction_rate()),
        n(f.trips_saved),
        Cell::Number(f.fare_saved_fen as f64 / 100.0),
    ]
}

/// The report as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese).
pub fn to_csv(report: &Report) -> Result<Vec<u8>> {
    let mut out = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let failed = |e: csv::Error| Error::Internal(format!("CSV: {e}"));
    out.write_record(COLUMNS).map_err(failed)?;
    for r in report.rows() {
        out.write_record(r.iter().map(|c| match c {
            // A name a spreadsheet would run as a formula is kept as text.
            Cell::Text(t) if t.starts_with(['=', '+', '-', '@']) => format!("'{t}"),
            Cell::Text(t) => t.clone(),
            Cell::Number(v) => v.to_string(),
            Cell::Empty => String::new(),
        }))
        .map_err(failed)?;
    }
    out.into_inner()
        .map_err(|e| Error::Internal(format!("CSV: {e}")))
}

/// The report as an XLSX workbook: one sheet, the same rows as the CSV.
pub fn to_xlsx(report: &Report) -> Result<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let failed = |e: rust_xlsxwriter::XlsxError| Error::Internal(format!("XLSX: {e}"));
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet
        .set_name(format!("{}统计", report.period.label()))
        .map_err(failed)?;
    let bold = Format::new().set_bold();
    for (c, title) in (0u16..).zip(COLUMNS) {
        sheet
            .write_string_with_format(0, c, title, &bold)
            .map_err(failed)?;
    }
    for (r, cells) in (1u32..).zip(report.rows()) {
        for (c, cell) in (0u16..).zip(cells) {
            match cell {
                Cell::Text(t) => sheet.write_string(r, c, t).map(|_| ()),
                Cell::Number(v) => sheet.write_number(r, c, v).map(|_| ()),
                Cell::Empty => Ok(()),
            }
            .map_err(failed)?;
        }
    }
    sheet.set_column_width(2, 24).map_err(failed)?;
    book.save_to_buffer().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    /// An index row: ticket, point, registered, accepted, finished (with on-time, days taken,
    /// stages over), delivered, rating (score, day).
    #[allow(clippy::type_complexity)]
    fn put(
        store: &ServerStore,
        ticket: &str,
        point: u32,
        dates: [Option<&str>; 3],
        finished: Option<(&str, bool, i64, &str)>,
        delivered: Option<&str>,
        rating: Option<(u8, &str)>,
    ) {
        store
            .conn()
            .execute(
                "INSERT INTO ticket_index (ticket, point, township, item_code, item_name,
                     applicant, id_number, phone, status, needs_review, window, registered,
                     accepted, finished, outcome, on_time, days_taken, stages_over, delivered,
                     evaluation, evaluated)
                 VALUES (?1, ?2, 't1', 'SB001', '失业证办理', '张三', 'X', '', 'accepted', 0, '',
                     ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    ticket,
                    point,
                    dates[0],
                    dates[1],
                    finished.map(|f| f.0),
                    finished.map(|_| "approved"),
                    finished.map(|f| f.1),
                    finished.map(|f| f.2),
                    finished.map_or("", |f| f.3),
                    delivered,
                    rating.map(|r| r.0),
                    rating.map(|r| r.1),
                ],
            )
            .unwrap();
    }

    #[test]
    fn each_measure_counts_by_its_own_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ServerStore::open(dir.path().join("s.db")).unwrap();
        put(
            &store,
            "a",
            101,
            [Some("2026-05-30"), Some("2026-06-01"), None],
            Some(("2026-06-03", true, 2, "")),
            Some("2026-06-04"),
            Some((4, "2026-06-05")),
        );
        put(
            &store,
            "b",
            102,
            [Some("2026-06-02"), Some("2026-06-02"), None],
            Some(("2026-07-01", false, 9, "window_handling")),
            None,
            None,
        );
        put(
            &store,
            "c",
            102,
            [Some("2026-06-10"), None, None],
            None,
            None,
            None,
        );
        // Completed on time in August, its result back at the village in September, late.
        put(
            &store,
            "d",
            101,
            [Some("2025-12-30"), Some("2026-07-30"), None],
            Some(("2026-08-03", true, 3, "return_to_village")),
            Some("2026-09-01"),
            None,
        );
        let scope = Scope::default();
        let june = report(&mut store, &scope, Period::parse("2026-06").unwrap()).unwrap();
        let t = &june.total;
        assert_eq!(
            (
                t.registered,
                t.accepted,
                t.completed,
                t.on_time,
                t.delivered,
                t.trips_saved
            ),
            (2, 2, 1, 1, 1, 2)
        );
        assert_eq!(
            (t.average_days(), t.satisfaction_rate()),
            (Some(2.0), Some(100.0))
        );
        assert_eq!(t.ratings, [0, 0, 0, 1, 0]);
        let points: Vec<(&str, i64)> = june
            .by_point
            .iter()
            .map(|l| (l.key.as_str(), l.figures.registered))
            .collect();
        assert_eq!(points, [("101", 0), ("102", 2)]);
        assert!(june.by_month.is_empty());

        let year = report(&mut store, &scope, Period::parse("2026").unwrap()).unwrap();
        assert_eq!(year.by_month.len(), 12);
        let month = |m: usize| &year.by_month[m - 1].figures;
        assert_eq!((month(5).registered, month(6).registered), (1, 2));
        assert_eq!(
            (
                month(7).completed,
                month(7).on_time,
                month(7).stage_overruns
            ),
            (1, 0, 1)
        );
        // The return to the village counts where it closed.
        assert_eq!((month(8).completed, month(8).stage_overruns), (1, 0));
        assert_eq!((month(9).delivered, month(9).stage_overruns), (1, 1));
        // Two of three on time, to one place.
        assert_eq!(year.total.on_time_rate(), Some(66.7));
        // The export rows: the total first, then months, townships, points, items.
        let rows = year.rows();
        assert_eq!(rows[0][0], Cell::Text("合计".into()));
        assert_eq!(rows[0][3], Cell::Number(3.0));
        assert_eq!(rows.len(), 1 + 12 + 1 + 2 + 1);
        let csv = String::from_utf8(to_csv(&year).unwrap()).unwrap();
        assert!(csv.starts_with("\u{feff}分组,编码,名称,登记"));
        assert!(
            to_xlsx(&year).unwrap().starts_with(b"PK"),
            "a zip container"
        );
    }

    #[test]
    fn periods_parse_and_bound() {
        let m = Period::parse("2026-02").unwrap();
        assert_eq!(m.first(), NaiveDate::from_ymd_opt(2026, 2, 1));
        assert_eq!(m.last(), NaiveDate::from_ymd_opt(2026, 2, 28));
        assert_eq!(
            Period::parse("2026").unwrap().last(),
            NaiveDate::from_ymd_opt(2026, 12, 31)
        );
        assert_eq!(
            Period::parse("2026-12").unwrap().last(),
            NaiveDate::from_ymd_opt(2026, 12, 31)
        );
        for bad in ["", "2026-13", "2026-00", "abc", "99999", "2026-1-1"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }
}
