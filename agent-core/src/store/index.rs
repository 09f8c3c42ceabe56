//! Index columns kept in step with each ticket document, and the searches that read them.

use chrono::NaiveDate;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, Transaction};
use serde::{Deserialize, Serialize};

use crate::crypto::Sealer;
use crate::domain::calendar::Calendar;
pub use crate::domain::deadline::Light;
use crate::domain::deadline::{self, ClockState};
use crate::domain::lifecycle::Status;
use crate::domain::mask::{mask_id, mask_name, mask_phone};
use crate::domain::ticket::TicketView;
use crate::domain::validate::{check_id_number, check_mobile, normalize, IdKind};
use crate::error::{Error, Result};

/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 200;
/// Page size when none is given.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

/// How a page is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Newest registration first.
    #[default]
    Newest,
    /// Earliest due date first (for what is due or overdue).
    Due,
}

/// A search over the index. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Query {
    pub statuses: Vec<Status>,
    pub item_code: Option<String>,
    pub lights: Vec<Light>,
    /// Registration date range, inclusive.
    pub registered_from: Option<NaiveDate>,
    pub registered_to: Option<NaiveDate>,
    /// Exact ID number (15-digit legacy numbers match their 18-digit form).
    pub id_number: Option<String>,
    /// Exact mobile number, in any common spelling.
    pub phone: Option<String>,
    /// Exact applicant name.
    pub name: Option<String>,
    pub needs_review: Option<bool>,
    /// Only tickets the township does not hold as they are here (`true`), or only those it
    /// does (`false`).
    pub unsynced: Option<bool>,
    pub order: Order,
    /// Page number, from 0.
    pub page: u32,
    /// 1–200; 0 means the default of 50.
    pub page_size: u32,
}

/// One row of a list: personal data masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketSummary {
    pub number: String,
    pub item_code: String,
    pub item_name: String,
    pub status: Status,
    pub status_label: String,
    pub needs_review: bool,
    pub registered_on: NaiveDate,
    pub due_on: Option<NaiveDate>,
    pub light: Option<Light>,
    pub remaining: Option<i64>,
    pub applicant: String,
    pub id_number: String,
    pub phone: Option<String>,
    pub village: String,
    /// `pending` (waiting to upload), `synced`, or `refused` with `sync_reason`.
    pub sync_state: String,
    pub sync_reason: Option<String>,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<TicketSummary>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

/// Sealed per-row details for lists.
#[derive(Serialize, Deserialize)]
struct Summary {
    name: String,
    id: String,
    phone: Option<String>,
    item_name: String,
    village: String,
}

fn summary_context(number: &str) -> Vec<u8> {
    format!("summary:{number}").into_bytes()
}

struct Row {
    status: &'static str,
    needs_review: bool,
    accepted_on: Option<String>,
    clock: &'static str,
    due_on: Option<String>,
    frozen_remaining: Option<i64>,
    id_hash: Vec<u8>,
    phone_hash: Option<Vec<u8>>,
    name_hash: Vec<u8>,
    summary: Vec<u8>,
}

fn row(sealer: &Sealer, v: &TicketView) -> Result<Row> {
    let t = &v.ticket;
    // A closed ticket is off every deadline list, even before its legal end date arrives.
    let state = if v.life.status.is_closed() {
        ClockState::Finished { on_time: true }
    } else {
        v.deadline.state
    };
    let (clock, due_on, frozen) = match state {
        ClockState::NotStarted => ("not_started", None, None),
        ClockState::Running => ("running", v.deadline.due, None),
        ClockState::Paused => ("paused", None, v.deadline.remaining),
        ClockState::Finished { .. } => ("finished", v.deadline.due, None),
        ClockState::Unknown { .. } => ("unknown", None, None),
    };
    let summary = Summary {
        name: t.applicant.name.clone(),
        id: t.applicant.id.stored.clone(),
        phone: t.applicant.phone.clone(),
        item_name: t.item.name.clone(),
        village: t.applicant.village.clone(),
    };
    let summary = sealer.seal(
        &summary_context(t.number.as_str()),
        &serde_json::to_vec(&summary)?,
    )?;
    Ok(Row {
        status: v.life.status.as_str(),
        needs_review: v.life.needs_review,
        accepted_on: v.life.clock.accepted.map(|d| d.to_string()),
        clock,
        due_on: due_on.map(|d| d.to_string()),
        frozen_remaining: frozen,
        id_hash: sealer.lookup("id", &t.applicant.id.search_key),
        phone_hash: t
            .applicant
            .phone
            .as_deref()
            .map(|p| sealer.lookup("phone", p)),
        name_hash: sealer.lookup("name", &t.applicant.name),
        summary,
    })
}

/// Write the index row of a ticket from its document's current view (insert or refresh;
/// an existing row keeps its id, which `docs` refers to).
pub fn write_row(tx: &Transaction<'_>, sealer: &Sealer, v: &TicketView) -> Result<()> {
    let t = &v.ticket;
    let r = row(sealer, v)?;
    tx.execute(
        "INSERT INTO tickets (number, item_code, status, needs_review, registered_on, accepted_on,
             clock, due_on, frozen_remaining, id_hash, phone_hash, name_hash, summary)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (number) DO UPDATE SET status = excluded.status,
             needs_review = excluded.needs_review, accepted_on = excluded.accepted_on,
             clock = excluded.clock, due_on = excluded.due_on,
             frozen_remaining = excluded.frozen_remaining, id_hash = excluded.id_hash,
             phone_hash = excluded.phone_hash, name_hash = excluded.name_hash,
             summary = excluded.summary",
        params![
            t.number.as_str(),
            t.item.code,
            r.status,
            r.needs_review,
            t.registered_at.date_naive().to_string(),
            r.accepted_on,
            r.clock,
            r.due_on,
            r.frozen_remaining,
            r.id_hash,
            r.phone_hash,
            r.name_hash,
            r.summary,
        ],
    )?;
    Ok(())
}

/// Run a search: filters in SQL on index columns, then open the page's sealed summaries.
pub fn search(
    conn: &Connection,
    sealer: &Sealer,
    cal: &Calendar,
    today: NaiveDate,
    margin: u32,
    q: &Query,
) -> Result<Page> {
    let mut wh: Vec<String> = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    let mut arg = |v: SqlValue| {
        args.push(v);
        format!("?{}", args.len())
    };
    if !q.statuses.is_empty() {
        let marks: Vec<String> = q
            .statuses
            .iter()
            .map(|s| arg(SqlValue::Text(s.as_str().into())))
            .collect();
        wh.push(format!("status IN ({})", marks.join(",")));
    }
    if let Some(code) = &q.item_code {
        let m = arg(SqlValue::Text(normalize(code).to_uppercase()));
        wh.push(format!("item_code = {m}"));
    }
    if let Some(d) = q.registered_from {
        let m = arg(SqlValue::Text(d.to_string()));
        wh.push(format!("registered_on >= {m}"));
    }
    if let Some(d) = q.registered_to {
        let m = arg(SqlValue::Text(d.to_string()));
        wh.push(format!("registered_on <= {m}"));
    }
    if let Some(id) = &q.id_number {
        let key = match check_id_number(IdKind::ResidentId, id, today) {
            Ok(checked) => checked.search_key,
            Err(_) => normalize(id).replace(' ', "").to_uppercase(),
        };
        let m = arg(SqlValue::Blob(sealer.lookup("id", &key)));
        wh.push(format!("id_hash = {m}"));
    }
    if let Some(p) = &q.phone {
        let key = check_mobile(p).unwrap_or_else(|_| normalize(p));
        let m = arg(SqlValue::Blob(sealer.lookup("phone", &key)));
        wh.push(format!("phone_hash = {m}"));
    }
    if let Some(n) = &q.name {
        let m = arg(SqlValue::Blob(sealer.lookup("name", &normalize(n))));
        wh.push(format!("name_hash = {m}"));
    }
    if let Some(r) = q.needs_review {
        let m = arg(SqlValue::Integer(i64::from(r)));
        wh.push(format!("needs_review = {m}"));
    }
    match q.unsynced {
        Some(true) => wh.push("sync_state <> 'synced'".into()),
        Some(false) => wh.push("sync_state = 'synced'".into()),
        None => {}
    }
    if !q.lights.is_empty() {
        // Running: the due date decides; paused: the remaining days frozen at the pause.
        let edge = cal.add_working_days(today, margin).unwrap_or(today);
        // Bind each value once, and only if a clause uses it (SQLite counts parameters).
        let (mut t, mut e, mut m) = (None, None, None);
        let mut any = Vec::new();
        for light in &q.lights {
            any.push(match light {
                Light::Red => {
                    let t = t.get_or_insert_with(|| arg(SqlValue::Text(today.to_string())));
                    format!(
                        "(clock = 'running' AND due_on < {t}) OR (clock = 'paused' AND frozen_remaining < 0)"
                    )
                }
                Light::Yellow => {
                    let t = t.get_or_insert_with(|| arg(SqlValue::Text(today.to_string())));
                    let e = e.get_or_insert_with(|| arg(SqlValue::Text(edge.to_string())));
                    let m = m.get_or_insert_with(|| arg(SqlValue::Integer(i64::from(margin))));
                    format!(
                        "(clock = 'running' AND due_on BETWEEN {t} AND {e}) OR (clock = 'paused' AND frozen_remaining BETWEEN 0 AND {m})"
                    )
                }
                Light::Green => {
                    let e = e.get_or_insert_with(|| arg(SqlValue::Text(edge.to_string())));
                    let m = m.get_or_insert_with(|| arg(SqlValue::Integer(i64::from(margin))));
                    format!(
                        "(clock = 'running' AND due_on > {e}) OR (clock = 'paused' AND frozen_remaining > {m})"
                    )
                }
            });
        }
        wh.push(format!("({})", any.join(" OR ")));
    }
    let where_sql = if wh.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", wh.join(" AND "))
    };
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM tickets {where_sql}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let size = match q.page_size {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    };
    let order = match q.order {
        Order::Newest => "registered_on DESC, number DESC",
        Order::Due => {
            "CASE clock WHEN 'running' THEN 0 ELSE 1 END, due_on ASC, frozen_remaining ASC, number"
        }
    };
    let sql = format!(
        "SELECT number, item_code, status, needs_review, registered_on, clock, due_on,
                frozen_remaining, summary, sync_state, sync_reason
         FROM tickets {where_sql} ORDER BY {order} LIMIT {size} OFFSET {}",
        u64::from(q.page) * u64::from(size)
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let mut items = Vec::new();
    while let Some(r) = rows.next()? {
        let number: String = r.get(0)?;
        let status: String = r.get(2)?;
        let registered: String = r.get(4)?;
        let clock: String = r.get(5)?;
        let due: Option<String> = r.get(6)?;
        let frozen: Option<i64> = r.get(7)?;
        let sealed: Vec<u8> = r.get(8)?;
        let s: Summary = serde_json::from_slice(&sealer.open(&summary_context(&number), &sealed)?)?;
        let due_on = due.as_deref().and_then(|d| d.parse().ok());
        let remaining = match (clock.as_str(), due_on) {
            ("running", Some(d)) => deadline::remaining(cal, today, d).ok(),
            ("paused", _) => frozen,
            _ => None,
        };
        let status = Status::parse(&status)
            .ok_or_else(|| Error::Event(format!("unknown status in index: {status}")))?;
        items.push(TicketSummary {
            number,
            item_code: r.get(1)?,
            item_name: s.item_name,
            status,
            status_label: status.label().to_owned(),
            needs_review: r.get(3)?,
            registered_on: registered.parse().unwrap_or_default(),
            due_on,
            light: remaining.map(|n| deadline::light(n, margin)),
            remaining,
            applicant: mask_name(&s.name),
            id_number: mask_id(&s.id),
            phone: s.phone.as_deref().map(mask_phone),
            village: s.village,
            sync_state: r.get(9)?,
            sync_reason: r.get(10)?,
        });
    }
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or(0),
        page: q.page,
        page_size: size,
    })
}
