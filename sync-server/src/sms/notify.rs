//! Notifications: the change log says which tickets changed; each is folded and, where its
//! state now calls for one, a message is queued — a supplement requested (the complete list of
//! missing materials), the result back at the village point, the invitation to rate after
//! delivery — and, from the index, overdue tickets to the point's agent and the township.
//!
//! A message is queued only while the state it announces still holds (a supplement already
//! handed in is not announced late), once per event (the outbox's reason), and never to a
//! phone that sent 退订. The first run starts at the end of the log: enabling SMS does not
//! text the county's history.

use chrono::{DateTime, FixedOffset, NaiveDate};
use rusqlite::params;

use agent_core::doc::TicketDoc;
use agent_core::domain::deadline::DEFAULT_MARGIN;
use agent_core::domain::directory::Directory;
use agent_core::domain::event::EventKind;
use agent_core::domain::lifecycle::Status;
use agent_core::domain::ticket::TicketView;
use agent_core::domain::validate::check_mobile;

use super::outbox::{enqueue, opted_out, Queued};
use super::templates::Message;
use super::Template;
use crate::error::Result;
use crate::index::BATCH;
use crate::store::{get_meta, load_doc, put_meta, ServerStore};

const WATERMARK: &str = "sms_seq";

/// Queue what the next batch of changed tickets calls for; how many change rows were read
/// (0: caught up).
pub fn follow(store: &mut ServerStore, sign: &str, now: DateTime<FixedOffset>) -> Result<usize> {
    let newest: i64 =
        store
            .conn()
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
                r.get(0)
            })?;
    let Some(from) = get_meta(store.conn(), WATERMARK)?
        .and_then(|v| String::from_utf8_lossy(&v).parse::<i64>().ok())
    else {
        put_meta(store.conn(), WATERMARK, newest.to_string().as_bytes())?;
        return Ok(0);
    };
    if from >= newest {
        return Ok(0);
    }
    let calendar = store.calendar()?;
    let directory = store.directory()?;
    let actor = store.actor().clone();
    let today = now.date_naive();
    let tx = store.begin()?;
    let batch: Vec<(i64, String)> = {
        let mut stmt =
            tx.prepare("SELECT seq, ticket FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = stmt.query_map(params![from, BATCH], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut seen = std::collections::HashSet::new();
    for (_, ticket) in &batch {
        if ticket.starts_with('@') || !seen.insert(ticket.as_str()) {
            continue;
        }
        let Some(bytes) = load_doc(&tx, ticket)? else {
            continue;
        };
        match TicketDoc::load_own(&bytes, &actor).and_then(|d| d.read()) {
            Ok(t) => {
                let view = t.view(&calendar, today, DEFAULT_MARGIN);
                if let Some(q) = called_for(&view, &directory) {
                    if !opted_out(&tx, &q.phone)? {
                        enqueue(&tx, &q, sign, now)?;
                    }
                }
            }
            Err(e) => tracing::error!(%ticket, error = %e, "stored document does not load"),
        }
    }
    let last = batch.last().map_or(from, |b| b.0);
    put_meta(&tx, WATERMARK, last.to_string().as_bytes())?;
    tx.commit()?;
    Ok(batch.len())
}

/// The message the ticket's state calls for now, if any.
fn called_for(view: &TicketView, directory: &Directory) -> Option<Queued> {
    let t = &view.ticket;
    let life = &view.life;
    let phone = check_mobile(t.applicant.phone.as_deref()?).ok()?;
    let point = point_name(directory, t.point);
    let number = t.number.as_str();
    let anomalous = |id: &str| life.anomalies.iter().any(|a| a.event_id == id);
    let last = |kind: EventKind| {
        t.events
            .iter()
            .rev()
            .find(|e| e.kind == kind && !anomalous(&e.id))
    };
    let (reason, message) = match life.status {
        Status::AwaitingSupplement => {
            let event = last(EventKind::SupplementRequested)?;
            (
                format!("supplement:{}", event.id),
                Message::new(
                    Template::Supplement,
                    &[
                        ("number", number),
                        ("item", &t.item.name),
                        ("missing", &life.missing.join("、")),
                        ("point", &point),
                    ],
                ),
            )
        }
        Status::Returned if life.outcome.is_some() => {
            let event = last(EventKind::Returned)?;
            (
                format!("result:{}", event.id),
                Message::new(
                    Template::ResultReady,
                    &[
                        ("number", number),
                        ("item", &t.item.name),
                        ("point", &point),
                    ],
                ),
            )
        }
        Status::Delivered if life.evaluation.is_none() => (
            format!("invite:{number}"),
            Message::new(Template::RateInvite, &[("number", number)]),
        ),
        _ => return None,
    };
    Some(Queued {
        reason,
        ticket: Some(number.to_owned()),
        township: directory.township_of(t.point).map(str::to_owned),
        phone,
        message,
    })
}

/// The point's name in a text (its number when the directory lacks it).
fn point_name(directory: &Directory, point: u32) -> String {
    directory
        .point(point)
        .map_or_else(|| format!("{point}号代办点"), |p| p.name.clone())
}

/// The day of the last overdue scan.
const OVERDUE_SCAN: &str = "sms_overdue_day";

/// Once a day, queue a message to the point's agent and to the township for every ticket
/// that went past its due date since the last scan (a due date only falls behind as the days
/// pass); how many were queued. The first scan looks at yesterday's due dates only, so
/// enabling SMS does not text every ticket already late.
pub fn overdue(store: &mut ServerStore, sign: &str, now: DateTime<FixedOffset>) -> Result<usize> {
    let today = now.date_naive();
    let last = get_meta(store.conn(), OVERDUE_SCAN)?
        .and_then(|v| NaiveDate::parse_from_str(&String::from_utf8_lossy(&v), "%Y-%m-%d").ok());
    if last == Some(today) {
        return Ok(0);
    }
    // The scan marks the day done: it must see every due date.
    crate::index::refresh_all(store)?;
    // Due dates before `today` and on or after the day before the last scan.
    let since = last.unwrap_or(today).pred_opt().unwrap_or(today);
    let directory = store.directory()?;
    let day = crate::index::day;
    let tx = store.begin()?;
    put_meta(&tx, OVERDUE_SCAN, day(today).as_bytes())?;
    let late: Vec<(String, u32, String, String, String)> = {
        let mut stmt = tx.prepare(
            "SELECT ticket, point, township, item_name, due FROM ticket_index
             WHERE live AND due < ?1 AND due >= ?2",
        )?;
        let rows = stmt.query_map([day(today), day(since)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut queued = 0;
    for (ticket, point, township, item, due) in late {
        let p = directory.point(point);
        let place = point_name(&directory, point);
        let to = [
            ("agent", p.and_then(|p| p.agent_phone.clone())),
            (
                "township",
                directory.township(&township).and_then(|t| t.phone.clone()),
            ),
        ];
        for (whom, phone) in to {
            let Some(phone) = phone.and_then(|p| check_mobile(&p).ok()) else {
                continue;
            };
            let q = Queued {
                reason: format!("overdue:{ticket}:{due}:{whom}"),
                ticket: Some(ticket.clone()),
                township: Some(township.clone()),
                phone,
                message: Message::new(
                    Template::Overdue,
                    &[
                        ("number", &ticket),
                        ("item", &item),
                        ("point", &place),
                        ("due", &due),
                    ],
                ),
            };
            if enqueue(&tx, &q, sign, now)? {
                queued += 1;
            }
        }
    }
    tx.commit()?;
    Ok(queued)
}
