//! The working-day calendar (节假日日历): which days count for legal deadlines.
//!
//! Working days are Monday–Friday, plus official make-up days on weekends (调休, `workday`
//! rows), minus official holidays (`holiday` rows). The district maintains the calendar as
//! data, one year at a time, as the State Council publishes it. A year is *covered* when it has
//! at least one row; any question about a date in an uncovered year answers [`CalendarGap`]:
//! never a panic and never a guess.
//!
//! The text form is a small CSV: `#` comment lines, an optional `date,kind,name` header and
//! one `YYYY-MM-DD,holiday|workday,name` row per date.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// What a calendar row says about its date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A day off within an official holiday period (may fall on a weekend too).
    Holiday,
    /// A make-up working day (调休) on a weekend.
    Workday,
}

impl DayKind {
    /// The CSV spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::Workday => "workday",
        }
    }
}

/// The year a date falls in is not in the calendar: a clear warning for the caller to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("节假日日历未包含{year}年，请管理员导入该年度日历")]
pub struct CalendarGap {
    pub year: i32,
}

/// Why a calendar text (or a list of rows) was refused. Line numbers count from 1 and include
/// comment and header lines, so they match what an editor shows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// A line that is not `date,kind,name`.
    #[error("日历第{line}行有误：{reason}")]
    BadLine { line: usize, reason: String },
    /// The same date appears twice.
    #[error("日历第{line}行：日期{date}重复出现")]
    DuplicateDate { line: usize, date: NaiveDate },
    /// A `workday` row on Monday–Friday: such a day is a working day anyway.
    #[error("日历第{line}行：{date}是周一至周五，本来就是工作日，不能标为调休上班（workday）")]
    WorkdayOnWeekday { line: usize, date: NaiveDate },
    /// No date rows at all.
    #[error("日历为空：没有任何日期行")]
    Empty,
}

/// One calendar row, as it is serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarRow {
    pub date: NaiveDate,
    pub kind: DayKind,
    pub name: String,
}

/// The working-day calendar. Serialized as its list of rows, validated on the way in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<CalendarRow>", into = "Vec<CalendarRow>")]
pub struct Calendar {
    /// Every date that overrides the Monday–Friday default, with its holiday name.
    days: BTreeMap<NaiveDate, (DayKind, String)>,
    /// Years with at least one row.
    years: BTreeSet<i32>,
}

/// The shipped State Council schedule.
const DEFAULT_CN_CSV: &str = include_str!("../../data/calendar-cn.csv");

impl Calendar {
    /// Parse the CSV text form. Rejects malformed lines, duplicate dates, `workday` rows on
    /// Monday–Friday and a text without any date row. A holiday on a weekend is fine.
    pub fn parse_csv(text: &str) -> Result<Calendar, CalendarError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut builder = Builder::default();
        let mut seen_data = false;
        for (index, raw) in text.lines().enumerate() {
            let line = index.saturating_add(1);
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut fields = trimmed.splitn(3, ',');
            let date_field = fields.next().unwrap_or("").trim();
            if !seen_data && date_field.eq_ignore_ascii_case("date") {
                // The header line.
                seen_data = true;
                continue;
            }
            seen_data = true;
            let bad = |reason: String| CalendarError::BadLine { line, reason };
            let date = parse_date(date_field)
                .ok_or_else(|| bad(format!("日期“{date_field}”应为YYYY-MM-DD格式的有效日期")))?;
            let kind_field = fields
                .next()
                .map(str::trim)
                .ok_or_else(|| bad("缺少类型（holiday或workday）和名称".to_owned()))?;
            let kind = parse_kind(kind_field)
                .ok_or_else(|| bad(format!("类型“{kind_field}”应为holiday或workday")))?;
            let name = fields.next().unwrap_or("");
            builder.add(line, date, kind, name)?;
        }
        builder.finish(false)
    }

    /// Build a calendar from rows (e.g. edited in the admin console), with the same checks as
    /// [`Calendar::parse_csv`]; "line" numbers in errors are row positions counted from 1.
    /// An empty list gives an empty calendar (which covers no year).
    pub fn from_rows<I>(rows: I) -> Result<Calendar, CalendarError>
    where
        I: IntoIterator<Item = CalendarRow>,
    {
        let mut builder = Builder::default();
        for (index, row) in rows.into_iter().enumerate() {
            builder.add(index.saturating_add(1), row.date, row.kind, &row.name)?;
        }
        builder.finish(true)
    }

    /// The CSV text form; `parse_csv(&cal.to_csv()) == Ok(cal)` for every non-empty calendar.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("date,kind,name\n");
        for (date, (kind, name)) in &self.days {
            out.push_str(&date.format("%Y-%m-%d").to_string());
            out.push(',');
            out.push_str(kind.as_str());
            out.push(',');
            out.push_str(name);
            out.push('\n');
        }
        out
    }

    /// The shipped State Council schedule (2025–2026). Never panics: if the shipped data ever
    /// failed to parse, this returns an empty calendar, which covers no year and so makes every
    /// deadline say which year is missing (a test guards the shipped data).
    pub fn default_cn() -> Calendar {
        Calendar::parse_csv(DEFAULT_CN_CSV).unwrap_or_default()
    }

    /// Whether `year` has at least one row.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// The covered years, ascending.
    pub fn years(&self) -> Vec<i32> {
        self.years.iter().copied().collect()
    }

    /// All rows, in date order.
    pub fn rows(&self) -> Vec<CalendarRow> {
        self.days
            .iter()
            .map(|(date, (kind, name))| CalendarRow {
                date: *date,
                kind: *kind,
                name: name.clone(),
            })
            .collect()
    }

    /// The row for `d`, if any: its kind and holiday name.
    pub fn day(&self, d: NaiveDate) -> Option<(DayKind, &str)> {
        self.days.get(&d).map(|(kind, name)| (*kind, name.as_str()))
    }

    /// Whether `d` is a working day; `Err` when its year is not covered.
    pub fn is_working_day(&self, d: NaiveDate) -> Result<bool, CalendarGap> {
        if self.covers(d.year()) {
            Ok(self.working_in_covered_year(d))
        } else {
            Err(CalendarGap { year: d.year() })
        }
    }

    /// The date `n` working days after `start` (start itself not counted). n = 0 → start.
    ///
    /// Only dates after `start` are looked at, so `start` may lie in an uncovered year. The
    /// walk stops at the first uncovered year, so a huge `n` ends with a [`CalendarGap`]
    /// after at most the covered days following `start`.
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarGap> {
        if n == 0 {
            return Ok(start);
        }
        let mut left = n;
        let mut day = start;
        let mut checked_year: Option<i32> = None;
        loop {
            day = match day.succ_opt() {
                Some(next) => next,
                // Past the last representable date: that year cannot be in any calendar.
                None => {
                    return Err(CalendarGap {
                        year: day.year().saturating_add(1),
                    })
                }
            };
            let year = day.year();
            if checked_year != Some(year) {
                if !self.covers(year) {
                    return Err(CalendarGap { year });
                }
                checked_year = Some(year);
            }
            if self.working_in_covered_year(day) {
                left = left.saturating_sub(1);
                if left == 0 {
                    return Ok(day);
                }
            }
        }
    }

    /// Number of working days d with after < d <= upto (0 when upto <= after).
    ///
    /// Counted arithmetically (weekdays, then the rows in the range), so the cost does not
    /// depend on the distance; every year in the range must be covered.
    pub fn working_days_between(
        &self,
        after: NaiveDate,
        upto: NaiveDate,
    ) -> Result<u32, CalendarGap> {
        if upto <= after {
            return Ok(0);
        }
        let first_year = after.succ_opt().map_or(upto.year(), |d| d.year());
        if let Some(year) = self.first_uncovered(first_year, upto.year()) {
            return Err(CalendarGap { year });
        }
        let mut count = weekdays_through(upto).saturating_sub(weekdays_through(after));
        let range = (Bound::Excluded(after), Bound::Included(upto));
        for (date, (kind, _)) in self.days.range(range) {
            let by_default = is_weekday(*date);
            let actual = *kind == DayKind::Workday;
            if actual && !by_default {
                count = count.saturating_add(1);
            } else if !actual && by_default {
                count = count.saturating_sub(1);
            }
        }
        Ok(u32::try_from(count.max(0)).unwrap_or(u32::MAX))
    }

    /// The holiday name of `d` when it is a `holiday` row (e.g. "春节"); None otherwise, also
    /// for make-up working days.
    pub fn holiday_name(&self, d: NaiveDate) -> Option<&str> {
        match self.days.get(&d) {
            Some((DayKind::Holiday, name)) => Some(name.as_str()),
            _ => None,
        }
    }

    /// Working-day status of a date whose year is known to be covered.
    fn working_in_covered_year(&self, d: NaiveDate) -> bool {
        match self.days.get(&d) {
            Some((DayKind::Holiday, _)) => false,
            Some((DayKind::Workday, _)) => true,
            None => is_weekday(d),
        }
    }

    /// The first year in `from..=to` without rows, if any.
    fn first_uncovered(&self, from: i32, to: i32) -> Option<i32> {
        if from > to {
            return None;
        }
        let mut expected = from;
        for &year in self.years.range(from..=to) {
            if year != expected {
                return Some(expected);
            }
            expected = year.checked_add(1)?;
        }
        (expected <= to).then_some(expected)
    }
}

impl TryFrom<Vec<CalendarRow>> for Calendar {
    type Error = CalendarError;

    fn try_from(rows: Vec<CalendarRow>) -> Result<Self, Self::Error> {
        Calendar::from_rows(rows)
    }
}

impl From<Calendar> for Vec<CalendarRow> {
    fn from(cal: Calendar) -> Self {
        cal.days
            .into_iter()
            .map(|(date, (kind, name))| CalendarRow { date, kind, name })
            .collect()
    }
}

/// Collects validated rows.
#[derive(Default)]
struct Builder {
    cal: Calendar,
}

impl Builder {
    fn add(
        &mut self,
        line: usize,
        date: NaiveDate,
        kind: DayKind,
        name: &str,
    ) -> Result<(), CalendarError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(CalendarError::BadLine {
                line,
                reason: "缺少节假日名称".to_owned(),
            });
        }
        if name.chars().any(char::is_control) {
            return Err(CalendarError::BadLine {
                line,
                reason: "名称中不能有换行或控制字符".to_owned(),
            });
        }
        if kind == DayKind::Workday && is_weekday(date) {
            return Err(CalendarError::WorkdayOnWeekday { line, date });
        }
        if self.cal.days.contains_key(&date) {
            return Err(CalendarError::DuplicateDate { line, date });
        }
        self.cal.days.insert(date, (kind, name.to_owned()));
        self.cal.years.insert(date.year());
        Ok(())
    }

    fn finish(self, allow_empty: bool) -> Result<Calendar, CalendarError> {
        if self.cal.days.is_empty() && !allow_empty {
            Err(CalendarError::Empty)
        } else {
            Ok(self.cal)
        }
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    // Strictly YYYY-MM-DD (chrono alone would also take "2025-1-1" or a sign).
    let bytes = s.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn parse_kind(s: &str) -> Option<DayKind> {
    if s.eq_ignore_ascii_case("holiday") {
        Some(DayKind::Holiday)
    } else if s.eq_ignore_ascii_case("workday") {
        Some(DayKind::Workday)
    } else {
        None
    }
}

fn is_weekday(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// A running count of Monday–Friday dates: `weekdays_through(d) - weekdays_through(d - 1)`
/// is 1 exactly when `d` is Monday–Friday, so differences count weekdays in a range.
fn weekdays_through(d: NaiveDate) -> i64 {
    let r = i64::from(d.weekday().num_days_from_monday());
    let monday = i64::from(d.num_days_from_ce()).saturating_sub(r);
    // All Mondays are congruent mod 7, so consecutive weeks differ by exactly 1 here.
    let week = monday.div_euclid(7);
    week.saturating_mul(5)
        .saturating_add(r.saturating_add(1).min(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or(NaiveDate::MIN)
    }

    fn cn() -> Calendar {
        Calendar::default_cn()
    }

    /// Day-by-day reference count.
    fn naive_between(
        cal: &Calendar,
        after: NaiveDate,
        upto: NaiveDate,
    ) -> Result<u32, CalendarGap> {
        let mut n = 0u32;
        let mut day = after;
        while day < upto {
            day = match day.succ_opt() {
                Some(x) => x,
                None => break,
            };
            if cal.is_working_day(day)? {
                n = n.saturating_add(1);
            }
        }
        Ok(n)
    }

    #[test]
    fn shipped_calendar_parses() {
        let parsed = Calendar::parse_csv(DEFAULT_CN_CSV);
        assert!(parsed.is_ok(), "{parsed:?}");
        let cal = cn();
        assert!(cal.covers(2025) && cal.covers(2026));
        assert!(!cal.covers(2024));
        let data_lines = DEFAULT_CN_CSV
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .count();
        assert_eq!(cal.rows().len(), data_lines);
    }

    #[test]
    fn working_days_follow_the_schedule() {
        let cal = cn();
        // Ordinary weekday and weekend.
        assert_eq!(cal.is_working_day(d(2026, 3, 2)), Ok(true));
        assert_eq!(cal.is_working_day(d(2026, 3, 7)), Ok(false));
        // Holiday on a weekday, make-up days on weekends.
        assert_eq!(cal.is_working_day(d(2026, 10, 1)), Ok(false));
        assert_eq!(cal.is_working_day(d(2026, 10, 10)), Ok(true));
        assert_eq!(cal.is_working_day(d(2025, 1, 26)), Ok(true));
        assert_eq!(cal.is_working_day(d(2026, 2, 14)), Ok(true));
        // Holiday on a weekend stays a rest day.
        assert_eq!(cal.is_working_day(d(2026, 2, 15)), Ok(false));
        assert_eq!(cal.holiday_name(d(2026, 2, 17)), Some("春节"));
        assert_eq!(cal.holiday_name(d(2025, 10, 6)), Some("国庆节、中秋节"));
        assert_eq!(cal.holiday_name(d(2026, 2, 14)), None);
        assert_eq!(cal.holiday_name(d(2026, 3, 2)), None);
        assert_eq!(cal.day(d(2026, 2, 14)), Some((DayKind::Workday, "春节")));
    }

    #[test]
    fn uncovered_years_are_gaps() {
        let cal = cn();
        assert_eq!(
            cal.is_working_day(d(2027, 1, 4)),
            Err(CalendarGap { year: 2027 })
        );
        assert_eq!(
            cal.is_working_day(d(2024, 12, 31)),
            Err(CalendarGap { year: 2024 })
        );
        assert_eq!(
            cal.add_working_days(d(2026, 12, 28), 10),
            Err(CalendarGap { year: 2027 })
        );
        assert_eq!(
            cal.working_days_between(d(2026, 12, 1), d(2027, 1, 5)),
            Err(CalendarGap { year: 2027 })
        );
        assert_eq!(
            cal.working_days_between(d(2024, 12, 30), d(2025, 1, 5)),
            Err(CalendarGap { year: 2024 })
        );
        // The day after is what counts: 2024-12-31 itself is never looked at.
        assert_eq!(cal.add_working_days(d(2024, 12, 31), 1), Ok(d(2025, 1, 2)));
        assert_eq!(
            cal.working_days_between(d(2024, 12, 31), d(2025, 1, 3)),
            Ok(2)
        );
        let msg = CalendarGap { year: 2027 }.to_string();
        assert!(msg.contains("2027"), "{msg}");
    }

    #[test]
    fn gap_in_the_middle_of_a_range() {
        let cal = Calendar::parse_csv("2025-01-01,holiday,元旦\n2027-01-01,holiday,元旦\n");
        assert!(cal.is_ok());
        let cal = cal.unwrap_or_default();
        assert_eq!(
            cal.working_days_between(d(2025, 6, 1), d(2027, 6, 1)),
            Err(CalendarGap { year: 2026 })
        );
        assert_eq!(
            cal.add_working_days(d(2025, 12, 30), 5),
            Err(CalendarGap { year: 2026 })
        );
    }

    #[test]
    fn add_working_days_examples() {
        let cal = cn();
        // 国庆 2026: Oct 1–7 off, Sat Oct 10 a make-up day.
        assert_eq!(cal.add_working_days(d(2026, 9, 30), 5), Ok(d(2026, 10, 13)));
        // 春节 2026: Sat Feb 14 make-up, Feb 15–23 off.
        assert_eq!(cal.add_working_days(d(2026, 2, 13), 3), Ok(d(2026, 2, 25)));
        // 春节 2025: Sun Jan 26 make-up, Jan 28–Feb 4 off, Sat Feb 8 make-up.
        assert_eq!(cal.add_working_days(d(2025, 1, 24), 3), Ok(d(2025, 2, 5)));
        assert_eq!(cal.add_working_days(d(2025, 2, 7), 1), Ok(d(2025, 2, 8)));
        assert_eq!(cal.add_working_days(d(2025, 1, 27), 1), Ok(d(2025, 2, 5)));
        // 国庆 2025: Sun Sep 28 make-up, Oct 1–8 off, Sat Oct 11 make-up.
        assert_eq!(cal.add_working_days(d(2025, 9, 26), 4), Ok(d(2025, 10, 9)));
        assert_eq!(cal.add_working_days(d(2025, 9, 26), 6), Ok(d(2025, 10, 11)));
        // Across the new year: Jan 1–3 off, Sun Jan 4 make-up.
        assert_eq!(cal.add_working_days(d(2025, 12, 31), 2), Ok(d(2026, 1, 5)));
        // n = 0 is the start itself, even on a holiday or in an uncovered year.
        assert_eq!(cal.add_working_days(d(2026, 10, 3), 0), Ok(d(2026, 10, 3)));
        assert_eq!(cal.add_working_days(d(2030, 1, 1), 0), Ok(d(2030, 1, 1)));
    }

    #[test]
    fn between_examples() {
        let cal = cn();
        assert_eq!(
            cal.working_days_between(d(2026, 9, 30), d(2026, 10, 13)),
            Ok(5)
        );
        assert_eq!(
            cal.working_days_between(d(2026, 3, 4), d(2026, 3, 6)),
            Ok(2)
        );
        assert_eq!(
            cal.working_days_between(d(2026, 3, 6), d(2026, 3, 6)),
            Ok(0)
        );
        assert_eq!(
            cal.working_days_between(d(2026, 3, 9), d(2026, 3, 6)),
            Ok(0)
        );
        // Whole years, against the day-by-day count.
        assert_eq!(
            cal.working_days_between(d(2024, 12, 31), d(2025, 12, 31)),
            naive_between(&cal, d(2024, 12, 31), d(2025, 12, 31))
        );
    }

    #[test]
    fn arithmetic_count_matches_day_by_day() {
        let cal = cn();
        let start = d(2025, 1, 1);
        // Every pair in a window around 春节 2026 and 国庆 2025, plus long ranges.
        let windows = [
            (d(2025, 9, 20), 40),
            (d(2026, 1, 25), 45),
            (d(2025, 12, 20), 30),
        ];
        for (from, len) in windows {
            for i in 0..len {
                for j in 0..len {
                    let a = from.checked_add_days(chrono::Days::new(i)).unwrap_or(from);
                    let b = from.checked_add_days(chrono::Days::new(j)).unwrap_or(from);
                    assert_eq!(
                        cal.working_days_between(a, b),
                        naive_between(&cal, a, b),
                        "{a} {b}"
                    );
                }
            }
        }
        for i in 0..730u64 {
            let b = start
                .checked_add_days(chrono::Days::new(i))
                .unwrap_or(start);
            assert_eq!(
                cal.working_days_between(start, b),
                naive_between(&cal, start, b),
                "{b}"
            );
        }
    }

    #[test]
    fn add_and_between_agree() {
        let cal = cn();
        let mut day = d(2025, 1, 1);
        while day < d(2026, 12, 31) {
            for n in 0..40u32 {
                match cal.add_working_days(day, n) {
                    Ok(due) => {
                        assert_eq!(cal.working_days_between(day, due), Ok(n), "{day} {n}");
                        if n > 0 {
                            assert_eq!(cal.is_working_day(due), Ok(true), "{day} {n}");
                        }
                    }
                    Err(gap) => assert_eq!(gap, CalendarGap { year: 2027 }),
                }
            }
            day = day.succ_opt().unwrap_or(NaiveDate::MAX);
        }
    }

    #[test]
    fn extremes_do_not_panic() {
        let cal = cn();
        assert_eq!(
            cal.add_working_days(d(2025, 1, 1), u32::MAX),
            Err(CalendarGap { year: 2027 })
        );
        assert!(cal.add_working_days(NaiveDate::MAX, 1).is_err());
        assert!(cal.add_working_days(NaiveDate::MIN, u32::MAX).is_err());
        assert!(cal.is_working_day(NaiveDate::MIN).is_err());
        assert!(cal.is_working_day(NaiveDate::MAX).is_err());
        assert!(cal
            .working_days_between(NaiveDate::MIN, NaiveDate::MAX)
            .is_err());
        assert_eq!(
            cal.working_days_between(NaiveDate::MAX, NaiveDate::MIN),
            Ok(0)
        );
        // A calendar whose only row is the last representable date.
        let last = Calendar::from_rows([CalendarRow {
            date: NaiveDate::MAX,
            kind: DayKind::Holiday,
            name: "末日".to_owned(),
        }])
        .unwrap_or_default();
        assert!(last.covers(NaiveDate::MAX.year()));
        assert!(last.add_working_days(NaiveDate::MAX, 3).is_err());
        let before = NaiveDate::MAX.pred_opt().unwrap_or(NaiveDate::MAX);
        assert_eq!(last.working_days_between(before, NaiveDate::MAX), Ok(0));
        // Empty calendar: everything is a gap.
        let empty = Calendar::default();
        assert_eq!(
            empty.is_working_day(d(2026, 3, 2)),
            Err(CalendarGap { year: 2026 })
        );
        assert_eq!(empty.years(), Vec::<i32>::new());
    }

    fn line_of(err: Result<Calendar, CalendarError>) -> Option<usize> {
        match err {
            Err(CalendarError::BadLine { line, .. })
            | Err(CalendarError::DuplicateDate { line, .. })
            | Err(CalendarError::WorkdayOnWeekday { line, .. }) => Some(line),
            _ => None,
        }
    }

    #[test]
    fn parse_errors() {
        let head = "# comment\ndate,kind,name\n2026-01-01,holiday,元旦\n";
        let bad = |row: &str| Calendar::parse_csv(&format!("{head}{row}\n"));
        for row in [
            "2026-13-01,holiday,x",
            "2026-02-30,holiday,x",
            "2026-1-1,holiday,x",
            "26-01-05,holiday,x",
            "+2026-01-05,holiday,x",
            "2026-01-05",
            "2026-01-05,holiday",
            "2026-01-05,holiday,",
            "2026-01-05,vacation,x",
            "2026-01-05,,x",
            "date,kind,name",
            "hello",
        ] {
            let r = bad(row);
            assert!(
                matches!(r, Err(CalendarError::BadLine { line: 4, .. })),
                "{row}: {r:?}"
            );
        }
        assert!(matches!(
            bad("2026-01-01,holiday,again"),
            Err(CalendarError::DuplicateDate { line: 4, .. })
        ));
        // Mon 2026-03-02 is a working day anyway.
        assert!(matches!(
            bad("2026-03-02,workday,x"),
            Err(CalendarError::WorkdayOnWeekday { line: 4, .. })
        ));
        assert_eq!(line_of(bad("2026-03-02,workday,x")), Some(4));
        // A holiday on a weekend and a make-up day on a weekend are fine.
        assert!(bad("2026-03-07,holiday,x").is_ok());
        assert!(bad("2026-03-08,workday,x").is_ok());
        // Empty texts.
        assert!(matches!(Calendar::parse_csv(""), Err(CalendarError::Empty)));
        assert!(matches!(
            Calendar::parse_csv("# only\n\ndate,kind,name\n"),
            Err(CalendarError::Empty)
        ));
        let msg = bad("2026-01-05,vacation,x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains('4') && msg.contains("vacation"), "{msg}");
    }

    #[test]
    fn parse_is_tolerant_of_harmless_variations() {
        // BOM, CRLF, no header, spaces, upper case kind, comma inside the name.
        let text = "\u{feff}2026-01-01 , HOLIDAY , 元旦\r\n\r\n  # note\r\n2026-01-04,workday,元旦,调休\r\n";
        let cal = Calendar::parse_csv(text);
        assert!(cal.is_ok(), "{cal:?}");
        let cal = cal.unwrap_or_default();
        assert_eq!(cal.holiday_name(d(2026, 1, 1)), Some("元旦"));
        assert_eq!(
            cal.day(d(2026, 1, 4)),
            Some((DayKind::Workday, "元旦,调休"))
        );
        assert_eq!(Calendar::parse_csv(&cal.to_csv()).ok(), Some(cal));
    }

    #[test]
    fn csv_and_serde_round_trip() {
        let cal = cn();
        let text = cal.to_csv();
        assert!(text.starts_with("date,kind,name\n2025-01-01,holiday,元旦\n"));
        assert_eq!(Calendar::parse_csv(&text).ok(), Some(cal.clone()));
        let json = serde_json::to_string(&cal).unwrap_or_default();
        let back: Result<Calendar, _> = serde_json::from_str(&json);
        assert_eq!(back.ok(), Some(cal.clone()));
        assert_eq!(Calendar::from_rows(cal.rows()).ok(), Some(cal));
        // Deserialization validates like parsing does.
        let bad = r#"[{"date":"2026-03-02","kind":"workday","name":"x"}]"#;
        assert!(serde_json::from_str::<Calendar>(bad).is_err());
        let bad = r#"[{"date":"2026-03-07","kind":"holiday","name":"a\nb"}]"#;
        assert!(serde_json::from_str::<Calendar>(bad).is_err());
        let empty: Result<Calendar, _> = serde_json::from_str("[]");
        assert_eq!(empty.ok(), Some(Calendar::default()));
        assert_eq!(
            serde_json::to_string(&CalendarGap { year: 2027 }).unwrap_or_default(),
            r#"{"year":2027}"#
        );
    }
}
