//! The ticket index: one row per ticket folded from its document, so the console's lists and
//! searches read a table instead of loading documents.
//!
//! Every change to a ticket is logged in `changes`, so the index follows that log: rows past
//! the `index_seq` watermark name the tickets to fold again. Ingest pays nothing; whoever
//! reads the index first calls [`refresh`] (the server also refreshes in the background), and
//! a new calendar re-folds every ticket because due dates count its working days.

use chrono::{Datelike, NaiveDate};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension};

use agent_core::doc::TicketDoc;
use agent_core::domain::calendar::Calendar;
use agent_core::domain::deadline::{self, ClockState, Light, Stage, DEFAULT_MARGIN};
use agent_core::domain::event::{EventKind, Outcome};
use agent_core::domain::lifecycle::Status;
use agent_core::domain::mask::{mask_id, mask_name, mask_phone};
use agent_core::domain::number::TicketNumber;
use agent_core::domain::ticket::TicketView;
use agent_core::domain::validate::{check_id_number, check_mobile, IdKind};
use agent_core::store::china_offset;
use agent_core::sync::shared::SharedName;

use crate::accounts::{Account, StaffRole};
use crate::error::{Error, Result};
use crate::store::{get_meta, load_doc, put_meta, ServerStore};

/// Most change-log rows one refresh batch reads.
pub const BATCH: i64 = 500;
/// Rows one page of a list shows.
pub const PAGE: usize = 100;
/// The window a forward names when it names none.
pub const ANY_WINDOW: &str = "综合窗口";

/// Fold the tickets changed since the last refresh, at most [`BATCH`] change rows' worth;
/// returns how many change rows were read (0: the index is current, and nothing was written).
pub fn refresh(store: &mut ServerStore) -> Result<usize> {
    // A new calendar moves due dates: fold everything again.
    let calendar_version: i64 = store.conn().query_row(
        "SELECT COALESCE(MAX(version), 0) FROM shared WHERE name = ?1",
        [SharedName::Calendar.to_string()],
        |r| r.get(0),
    )?;
    let calendar_version = calendar_version.to_string();
    let new_calendar =
        get_meta(store.conn(), "index_calendar")?.as_deref() != Some(calendar_version.as_bytes());
    let from = if new_calendar {
        0
    } else {
        meta_i64(store.conn(), "index_seq")?
    };
    let newest: i64 =
        store
            .conn()
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
                r.get(0)
            })?;
    if from >= newest && !new_calendar {
        return Ok(0);
    }
    let calendar = store.calendar()?;
    let today = crate::now().date_naive();
    let actor = store.actor().clone();
    let tx = store.begin()?;
    put_meta(&tx, "index_calendar", calendar_version.as_bytes())?;
    let batch: Vec<(i64, String, String)> = {
        let mut stmt = tx.prepare(
            "SELECT seq, ticket, township FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![from, BATCH], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let Some(last) = batch.last().map(|b| b.0) else {
        put_meta(&tx, "index_seq", from.to_string().as_bytes())?;
        tx.commit()?;
        return Ok(0);
    };
    let mut seen = std::collections::HashSet::new();
    for (_, ticket, township) in &batch {
        if ticket.starts_with('@') || !seen.insert(ticket.as_str()) {
            continue;
        }
        let Some(bytes) = load_doc(&tx, ticket)? else {
            continue;
        };
        match TicketDoc::load_own(&bytes, &actor).and_then(|d| d.read()) {
            Ok(t) => put_row(
                &tx,
                &calendar,
                &t.view(&calendar, today, DEFAULT_MARGIN),
                township,
            )?,
            Err(e) => tracing::error!(%ticket, error = %e, "stored document does not load"),
        }
    }
    put_meta(&tx, "index_seq", last.to_string().as_bytes())?;
    tx.commit()?;
    Ok(batch.len())
}

/// Refresh until the index is current.
pub fn refresh_all(store: &mut ServerStore) -> Result<()> {
    while refresh(store)? > 0 {}
    Ok(())
}

fn meta_i64(conn: &rusqlite::Connection, key: &str) -> Result<i64> {
    Ok(get_meta(conn, key)?
        .and_then(|v| String::from_utf8_lossy(&v).parse().ok())
        .unwrap_or(0))
}

fn put_row(
    tx: &rusqlite::Transaction<'_>,
    calendar: &Calendar,
    view: &TicketView,
    township: &str,
) -> Result<()> {
    let t = &view.ticket;
    let window = t
        .events
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::Forwarded)
        .map_or(String::new(), |e| {
            e.payload_str("window")
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .unwrap_or(ANY_WINDOW)
                .to_owned()
        });
    let (due, paused_light) = match view.deadline.state {
        ClockState::Running => (view.deadline.due.map(day), None),
        ClockState::Paused => (None, view.deadline.light.map(light_str)),
        _ => (None, None),
    };
    let life = &view.life;
    let clock = &life.clock;
    // A completed ticket's record against its promise (withdrawals and refusals have none).
    let (on_time, days_taken) = match (view.deadline.state, life.outcome) {
        (ClockState::Finished { on_time }, Some(_)) => {
            let taken = clock
                .accepted
                .zip(clock.finished)
                .and_then(|(a, f)| calendar.working_days_between(a, f).ok())
                .map(|d| d.saturating_sub(view.deadline.paused_days));
            (Some(on_time), taken)
        }
        _ => (None, None),
    };
    let open_stage = clock.stages.iter().find(|s| s.end.is_none());
    let stages_over: Vec<&str> = view
        .deadline
        .stages
        .iter()
        .filter(|s| s.over && !s.open)
        .map(|s| stage_str(s.stage))
        .collect();
    let delivered = clock
        .stages
        .iter()
        .find(|s| s.stage == Stage::ReturnToVillage)
        .and_then(|s| s.end);
    let live = due.is_some() || paused_light.is_some() || open_stage.is_some();
    tx.execute(
        "INSERT OR REPLACE INTO ticket_index (ticket, point, township, item_code, item_name,
             applicant, id_number, phone, status, needs_review, window, registered, due,
             paused_light, accepted, finished, outcome, item_version, fee_fen, statutory_fen,
             on_time, days_taken, stage, stage_start, stage_budget, stages_over, delivered,
             evaluation, evaluated, answered, live)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31)",
        params![
            t.number.as_str(),
            t.point,
            township,
            t.item.code,
            t.item.name,
            t.applicant.name,
            t.applicant.id.search_key,
            t.applicant.phone.as_deref().unwrap_or(""),
            life.status.as_str(),
            life.needs_review,
            window,
            day(t.registered_at.with_timezone(&china_offset()).date_naive()),
            due,
            paused_light,
            clock.accepted.map(day),
            clock.finished.map(day),
            life.outcome.map(|o| match o {
                Outcome::Approved => "approved",
                Outcome::Denied => "denied",
            }),
            t.item.version,
            t.fee.amount_fen,
            t.item.fee_fen,
            on_time,
            days_taken,
            open_stage.map(|s| stage_str(s.stage)),
            open_stage.map(|s| day(s.start)),
            open_stage.map(|s| s.budget),
            stages_over.join(","),
            delivered.map(day),
            life.evaluation,
            life.evaluated_on.map(day),
            life.followed_up.map(day),
            live,
        ],
    )?;
    Ok(())
}

/// A stage's name in the index.
pub fn stage_str(stage: Stage) -> &'static str {
    match stage {
        Stage::TownshipReview => "township_review",
        Stage::WindowHandling => "window_handling",
        Stage::ReturnToVillage => "return_to_village",
    }
}

pub(crate) fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub(crate) fn light_str(l: Light) -> &'static str {
    match l {
        Light::Green => "green",
        Light::Yellow => "yellow",
        Light::Red => "red",
    }
}

pub(crate) fn parse_light(s: &str) -> Option<Light> {
    [Light::Green, Light::Yellow, Light::Red]
        .into_iter()
        .find(|l| light_str(*l) == s)
}

/// Which tickets an account may see: its township's, and for window staff only what was
/// forwarded to its window (every forwarded ticket for a general window).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    township: Option<String>,
    window: Option<Option<String>>,
}

impl Scope {
    pub fn of(account: &Account) -> Scope {
        Scope {
            township: account.township.clone(),
            window: (account.role == StaffRole::WindowStaff).then(|| account.window.clone()),
        }
    }

    /// A township's scope, for tests of the modules that read the index.
    #[cfg(test)]
    pub(crate) fn township(code: &str) -> Scope {
        Scope {
            township: Some(code.into()),
            window: None,
        }
    }

    pub(crate) fn push(&self, w: &mut Where) {
        if let Some(t) = &self.township {
            w.add("+township = ?", t.clone());
        }
        match &self.window {
            Some(Some(window)) => w.add("window = ?", window.clone()),
            Some(None) => w.clauses.push("window <> ''".into()),
            None => {}
        }
    }
}

/// The ticket `number` as of `today` if it is in `scope`; `None` when it is absent or outside
/// (as good as absent). The ticket is folded again first: its row may lag behind the change
/// log, and a scope decision must not rest on a stale status or window.
pub fn visible(
    store: &mut ServerStore,
    scope: &Scope,
    number: &str,
    today: NaiveDate,
) -> Result<Option<TicketView>> {
    let Some(view) = fold_one(store, number, today)? else {
        return Ok(None);
    };
    let mut w = Where::default();
    w.add("ticket = ?", number.to_owned());
    scope.push(&mut w);
    let sql = format!("SELECT 1 FROM ticket_index WHERE {}", w.sql());
    let in_scope = store
        .conn()
        .query_row(&sql, params_from_iter(&w.values), |_| Ok(()))
        .optional()?
        .is_some();
    Ok(in_scope.then_some(view))
}

/// Index one ticket now, if the server holds it; its view as of `today`.
fn fold_one(store: &mut ServerStore, number: &str, today: NaiveDate) -> Result<Option<TicketView>> {
    let calendar = store.calendar()?;
    let directory = store.directory()?;
    let actor = store.actor().clone();
    let tx = store.begin()?;
    let Some(bytes) = load_doc(&tx, number)? else {
        return Ok(None);
    };
    let ticket = TicketDoc::load_own(&bytes, &actor).and_then(|d| d.read())?;
    let view = ticket.view(&calendar, today, DEFAULT_MARGIN);
    let township = directory.township_of(ticket.point).unwrap_or_default();
    put_row(&tx, &calendar, &view, township)?;
    tx.commit()?;
    Ok(Some(view))
}

/// What a search asks for; every field optional. `q` is a ticket number, a mobile number, an
/// ID number, or the start of the applicant's name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    pub q: String,
    pub item: String,
    pub status: String,
    pub light: String,
    pub point: String,
    pub from: String,
    pub to: String,
    pub review: bool,
    /// Keyset paging: rows after this `registered|ticket` key.
    pub after: String,
}

impl Search {
    /// From form or query-string fields (unknown fields ignored).
    pub fn from_fields(fields: &[(String, String)]) -> Search {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map_or(String::new(), |(_, v)| v.trim().to_owned())
        };
        Search {
            q: get("q"),
            item: get("item"),
            status: get("status"),
            light: get("light"),
            point: get("point"),
            from: get("from"),
            to: get("to"),
            review: !get("review").is_empty(),
            after: get("after"),
        }
    }

    /// The fields that are set, for links and hidden inputs (`after` excluded).
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        let review = if self.review { "1" } else { "" };
        [
            ("q", self.q.as_str()),
            ("item", &self.item),
            ("status", &self.status),
            ("light", &self.light),
            ("point", &self.point),
            ("from", &self.from),
            ("to", &self.to),
            ("review", review),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }
}

/// One ticket of a list, as indexed. The applicant in clear: pages mask it.
#[derive(Debug, Clone)]
pub struct Row {
    pub number: String,
    pub point: u32,
    pub item_name: String,
    pub applicant: String,
    pub status: Status,
    pub needs_review: bool,
    pub registered: String,
    pub due: Option<NaiveDate>,
    pub light: Option<Light>,
}

/// A page of search results and the key of the next page, if there is one.
pub struct Found {
    pub rows: Vec<Row>,
    pub next: Option<String>,
}

/// WHERE clauses and their values, in order.
#[derive(Default)]
pub(crate) struct Where {
    pub(crate) clauses: Vec<String>,
    pub(crate) values: Vec<Value>,
}

impl Where {
    pub(crate) fn add(&mut self, clause: &str, value: impl Into<Value>) {
        self.clauses.push(clause.into());
        self.values.push(value.into());
    }

    /// Keyset paging: rows after the `registered|ticket` key (none when empty).
    fn after(&mut self, key: &str) {
        if let Some((registered, ticket)) = key.split_once('|') {
            self.clauses.push("(registered, ticket) < (?, ?)".into());
            self.values.push(registered.to_owned().into());
            self.values.push(ticket.to_owned().into());
        }
    }

    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "1".into()
        } else {
            self.clauses.join(" AND ")
        }
    }
}

fn bad(text: &str) -> Error {
    Error::BadRequest(text.into())
}

fn parse_day(text: &str) -> Result<String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(day)
        .map_err(|_| bad("日期格式应为 2026-01-31"))
}

/// What the one search box was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Number(String),
    Phone(String),
    IdNumber(String),
    /// The start of the applicant's name.
    Name(String),
}

impl Query {
    /// Read a query: a ticket number (a wrong check digit is refused, not guessed at), a
    /// mobile number, an ID number, else the start of a name. `None` when empty.
    pub fn parse(q: &str, today: NaiveDate) -> Result<Option<Query>> {
        if q.is_empty() {
            return Ok(None);
        }
        Ok(Some(if let Ok(n) = TicketNumber::parse(q) {
            Query::Number(n.as_str().to_owned())
        } else if q.chars().all(|c| c.is_ascii_digit())
            && q.len() == agent_core::domain::number::NUMBER_LEN
        {
            return Err(bad("办件编号校验位不符，请核对"));
        } else if let Ok(phone) = check_mobile(q) {
            Query::Phone(phone)
        } else if let Ok(id) = check_id_number(IdKind::ResidentId, q, today) {
            Query::IdNumber(id.search_key)
        } else if q.chars().all(|c| c.is_ascii_alphanumeric()) && (5..=20).contains(&q.len()) {
            Query::IdNumber(q.to_ascii_uppercase())
        } else {
            // GLOB uses the index; its wildcards are not searchable.
            let name: String = q.chars().filter(|c| !"*?[]".contains(*c)).collect();
            if name.is_empty() {
                return Err(bad("请输入办件编号、手机号、证件号码或申请人姓名"));
            }
            Query::Name(name)
        }))
    }

    /// How a page may show the query back: a person's phone, ID number or name masked, so it
    /// is never in a page in full (`None` for a ticket number, shown as typed).
    pub fn masked(&self) -> Option<String> {
        match self {
            Query::Number(_) => None,
            Query::Phone(p) => Some(format!("手机号 {}", mask_phone(p))),
            Query::IdNumber(id) => Some(format!("证件号码 {}", mask_id(id))),
            Query::Name(n) => Some(format!("姓名 {}", mask_name(n))),
        }
    }

    fn push(&self, w: &mut Where) {
        match self {
            Query::Number(n) => w.add("ticket = ?", n.clone()),
            Query::Phone(p) => w.add("phone = ?", p.clone()),
            Query::IdNumber(id) => w.add("id_number = ?", id.clone()),
            Query::Name(n) => w.add("applicant GLOB ?", format!("{n}*")),
        }
    }
}

/// The first due date that is still green today: past the margin's working days. Late in
/// December with next year's calendar not yet imported (the board warns), weekends are the
/// only days off counted.
pub(crate) fn green_from(cal: &Calendar, today: NaiveDate) -> NaiveDate {
    cal.add_working_days(today, DEFAULT_MARGIN + 1)
        .unwrap_or_else(|_| {
            let mut d = today;
            let mut left = DEFAULT_MARGIN + 1;
            while left > 0 {
                d = d.succ_opt().unwrap_or(d);
                if d.weekday().number_from_monday() <= 5 {
                    left -= 1;
                }
            }
            d
        })
}

/// The clauses for a light: red past due, yellow within the margin, green beyond it; a paused
/// ticket keeps the light it had when paused.
fn push_light(w: &mut Where, light: Light, cal: &Calendar, today: NaiveDate) -> Result<()> {
    let (t, g) = (day(today), day(green_from(cal, today)));
    let running = match light {
        Light::Red => {
            w.values.push(t.into());
            "due < ?"
        }
        Light::Yellow => {
            w.values.push(t.into());
            w.values.push(g.into());
            "due >= ? AND due < ?"
        }
        Light::Green => {
            w.values.push(g.into());
            "due >= ?"
        }
    };
    w.clauses.push(format!("(({running}) OR paused_light = ?)"));
    w.values.push(light_str(light).to_owned().into());
    Ok(())
}

/// One page of the tickets in `scope` matching `search` as of `today`, newest registration
/// first.
pub fn search(
    store: &ServerStore,
    scope: &Scope,
    search: &Search,
    today: NaiveDate,
) -> Result<Found> {
    let calendar = store.calendar()?;
    let mut w = Where::default();
    scope.push(&mut w);
    if let Some(q) = Query::parse(&search.q, today)? {
        q.push(&mut w);
    }
    if !search.item.is_empty() {
        w.add("item_code = ?", search.item.clone());
    }
    if !search.status.is_empty() {
        let status = Status::parse(&search.status).ok_or_else(|| bad("未知的办件状态"))?;
        w.add("status = ?", status.as_str().to_owned());
    }
    if !search.light.is_empty() {
        let light = parse_light(&search.light).ok_or_else(|| bad("未知的灯色"))?;
        push_light(&mut w, light, &calendar, today)?;
    }
    if !search.point.is_empty() {
        let point: u32 = search
            .point
            .parse()
            .map_err(|_| bad("代办点编号应为数字"))?;
        w.add("point = ?", i64::from(point));
    }
    if !search.from.is_empty() {
        w.add("registered >= ?", parse_day(&search.from)?);
    }
    if !search.to.is_empty() {
        w.add("registered <= ?", parse_day(&search.to)?);
    }
    if search.review {
        w.clauses.push("needs_review".into());
    }
    w.after(&search.after);
    let sql = format!(
        "SELECT ticket, point, item_name, applicant, status, needs_review, registered, due,
                paused_light
         FROM ticket_index WHERE {} ORDER BY registered DESC, ticket DESC LIMIT {}",
        w.sql(),
        PAGE + 1
    );
    let mut stmt = store.conn().prepare(&sql)?;
    let raw = stmt.query_map(params_from_iter(&w.values), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, u32>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, bool>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, Option<String>>(8)?,
        ))
    })?;
    let mut rows = Vec::new();
    for r in raw {
        let (number, point, item_name, applicant, status, needs_review, registered, due, paused) =
            r?;
        let due = due.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
        let light = match (due, paused) {
            (Some(due), _) => deadline::remaining(&calendar, today, due)
                .ok()
                .map(|r| deadline::light(r, DEFAULT_MARGIN)),
            (None, Some(p)) => parse_light(&p),
            (None, None) => None,
        };
        rows.push(Row {
            number,
            point,
            item_name,
            applicant,
            status: Status::parse(&status).unwrap_or(Status::Registered),
            needs_review,
            registered,
            due,
            light,
        });
    }
    let next = next_page(&mut rows, |r| (&r.registered, &r.number));
    Ok(Found { rows, next })
}

/// Cut a query's `PAGE + 1` rows to a page; the key of the next page when there is one.
fn next_page<T>(rows: &mut Vec<T>, key: impl Fn(&T) -> (&String, &String)) -> Option<String> {
    if rows.len() <= PAGE {
        return None;
    }
    rows.truncate(PAGE);
    rows.last().map(|r| {
        let (registered, ticket) = key(r);
        format!("{registered}|{ticket}")
    })
}

/// Tickets in `scope` by status, and how many need review (需核对).
pub fn counts(store: &ServerStore, scope: &Scope) -> Result<(Vec<(Status, i64)>, i64)> {
    let mut w = Where::default();
    scope.push(&mut w);
    let sql = format!(
        "SELECT status, COUNT(*), SUM(needs_review) FROM ticket_index WHERE {} GROUP BY status",
        w.sql()
    );
    let mut stmt = store.conn().prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(&w.values), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut by_status = Vec::new();
    let mut review = 0;
    for row in rows {
        let (status, n, r) = row?;
        if let Some(s) = Status::parse(&status) {
            by_status.push((s, n));
        }
        review += r;
    }
    by_status.sort_by_key(|(s, _)| Status::ALL.iter().position(|x| x == s));
    Ok((by_status, review))
}

/// One row of the public disclosure board (办件公示): no ID number, phone or address ever,
/// and the name masked here, so the public page never holds it in full.
#[derive(Debug, Clone)]
pub struct PublicRow {
    pub number: String,
    pub item_name: String,
    pub applicant_masked: String,
    pub status: Status,
    pub registered: String,
    pub accepted: Option<String>,
    pub finished: Option<String>,
    pub outcome: Option<Outcome>,
}

/// A page of the disclosure board, newest registration first, after the `registered|ticket`
/// key `after` (empty for the first page); and the next page's key.
pub fn disclosure(store: &ServerStore, after: &str) -> Result<(Vec<PublicRow>, Option<String>)> {
    let mut w = Where::default();
    w.after(after);
    let sql = format!(
        "SELECT ticket, item_name, applicant, status, registered, accepted, finished, outcome
         FROM ticket_index WHERE {} ORDER BY registered DESC, ticket DESC LIMIT {}",
        w.sql(),
        PAGE + 1
    );
    let mut stmt = store.conn().prepare(&sql)?;
    let mut rows = stmt
        .query_map(params_from_iter(&w.values), |r| {
            Ok(PublicRow {
                number: r.get(0)?,
                item_name: r.get(1)?,
                applicant_masked: mask_name(&r.get::<_, String>(2)?),
                status: Status::parse(&r.get::<_, String>(3)?).unwrap_or(Status::Registered),
                registered: r.get(4)?,
                accepted: r.get(5)?,
                finished: r.get(6)?,
                outcome: match r.get::<_, Option<String>>(7)?.as_deref() {
                    Some("approved") => Some(Outcome::Approved),
                    Some("denied") => Some(Outcome::Denied),
                    _ => None,
                },
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let next = next_page(&mut rows, |r| (&r.registered, &r.number));
    Ok((rows, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row as the fold would write it.
    fn row(
        store: &ServerStore,
        ticket: &str,
        township: &str,
        window: &str,
        due: Option<&str>,
        paused: Option<&str>,
    ) {
        store
            .conn()
            .execute(
                "INSERT INTO ticket_index (ticket, point, township, item_code, item_name,
                     applicant, id_number, phone, status, needs_review, window, registered, due,
                     paused_light, accepted, finished, outcome)
                 VALUES (?1, 101, ?2, 'SB001', '低保申请', '张三丰',
                     '431023199001011234', '13800138000', 'accepted', 0, ?3, '2026-06-01', ?4, ?5,
                     '2026-06-02', NULL, NULL)",
                params![ticket, township, window, due, paused],
            )
            .unwrap();
    }

    fn found(store: &ServerStore, scope: &Scope, search: &Search) -> Vec<String> {
        let today = NaiveDate::from_ymd_opt(2026, 6, 10).unwrap();
        let mut n: Vec<String> = super::search(store, scope, search, today)
            .unwrap()
            .rows
            .into_iter()
            .map(|r| r.number)
            .collect();
        n.sort();
        n
    }

    fn light(light: &str) -> Search {
        Search {
            light: light.into(),
            ..Search::default()
        }
    }

    #[test]
    fn lights_follow_the_working_days_left_and_scopes_hold() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServerStore::open(dir.path().join("s.db")).unwrap();
        // Wednesday 2026-06-10; the margin is one working day.
        row(&store, "a-late", "t1", "", Some("2026-06-09"), None);
        row(&store, "b-today", "t1", "", Some("2026-06-10"), None);
        row(
            &store,
            "c-tomorrow",
            "t1",
            "民政窗口",
            Some("2026-06-11"),
            None,
        );
        row(
            &store,
            "d-later",
            "t2",
            "人社窗口",
            Some("2026-06-12"),
            None,
        );
        row(&store, "e-paused", "t1", "", None, Some("red"));
        row(&store, "f-new", "t2", "", None, None);
        let all = Scope::default();
        assert_eq!(found(&store, &all, &light("red")), ["a-late", "e-paused"]);
        assert_eq!(
            found(&store, &all, &light("yellow")),
            ["b-today", "c-tomorrow"]
        );
        assert_eq!(found(&store, &all, &light("green")), ["d-later"]);
        // The light shown agrees with the one filtered on.
        let today = NaiveDate::from_ymd_opt(2026, 6, 10).unwrap();
        let rows = super::search(&store, &all, &light("yellow"), today)
            .unwrap()
            .rows;
        assert!(rows.iter().all(|r| r.light == Some(Light::Yellow)));

        let t1 = Scope {
            township: Some("t1".into()),
            window: None,
        };
        assert_eq!(found(&store, &t1, &Search::default()).len(), 4);
        let general = Scope {
            township: None,
            window: Some(None),
        };
        assert_eq!(
            found(&store, &general, &Search::default()),
            ["c-tomorrow", "d-later"]
        );
        let one = Scope {
            township: None,
            window: Some(Some("民政窗口".into())),
        };
        assert_eq!(found(&store, &one, &Search::default()), ["c-tomorrow"]);
    }

    #[test]
    fn one_box_takes_a_phone_an_id_number_or_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServerStore::open(dir.path().join("s.db")).unwrap();
        row(&store, "a", "t1", "", None, None);
        let q = |q: &str| Search {
            q: q.into(),
            ..Search::default()
        };
        let all = Scope::default();
        assert_eq!(found(&store, &all, &q("138 0013 8000")), ["a"]);
        assert_eq!(found(&store, &all, &q("431023199001011234")), ["a"]);
        assert_eq!(found(&store, &all, &q("张三")), ["a"]);
        assert!(
            found(&store, &all, &q("三丰")).is_empty(),
            "a name is matched from its start"
        );
        assert!(found(&store, &all, &q("13900139000")).is_empty());
        assert!(
            found(&store, &all, &q("张*")).len() == 1,
            "wildcards are not searchable"
        );
    }
}
