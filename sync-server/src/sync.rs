//! `POST /v1/sync`: one request, one SQLite transaction.
//!
//! 1. Idempotency: the device's last counter and response are stored with the work they
//!    describe, in the same transaction. The same counter again gets the same bytes; an older
//!    one is refused (409); a newer one is processed.
//! 2. Each uploaded ticket is merged into the server's document and checked (its number
//!    belongs to the requesting point, it still reads as a ticket of that point, every new
//!    event is an agent's). A refused ticket stores nothing; it never blocks the rest.
//! 3. New changes go to the change log with their origin; a township server then stamps
//!    `received` (first arrival) and `arrived` (for each clock-moving tablet event) with
//!    server time, logged as a separate `server` batch.
//! 4. The response carries the log rows for the point after the client's cursor, except the
//!    device's own, up to [`PAGE_BYTES`]; rows of one ticket in a page are concatenated.

use std::collections::{HashMap, HashSet};

use automerge::ActorId;
use chrono::{DateTime, FixedOffset};
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::json;

use agent_core::doc::TicketDoc;
use agent_core::domain::event::{may_append, Event, EventKind, Role};
use agent_core::domain::number::TicketNumber;
use agent_core::domain::ticket::Ticket;
use agent_core::sync::wire::{
    decode_request, encode, DocChanges, DocResult, SyncRequest, SyncResponse, WireError,
    PAGE_BYTES, PROTOCOL_VERSION,
};

use crate::config::ServerRole;
use crate::error::{Error, Result};
use crate::store::{insert_change, load_doc, save_doc, ServerStore};

/// Who this server is, for the events it appends.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub role: ServerRole,
    /// `actor` of stamps (the config's `server_id`).
    pub server_id: String,
}

/// Answer one sync request body with the response body.
pub fn handle(
    store: &mut ServerStore,
    info: &ServerInfo,
    body: &[u8],
    now: DateTime<FixedOffset>,
) -> Result<Vec<u8>> {
    let req = decode_request(body).map_err(|e| match e {
        WireError::TooLarge(_) => Error::BadRequest("sync request too large".into()),
        WireError::Version(v) => Error::BadRequest(format!(
            "sync protocol version {v} is not supported (server speaks {PROTOCOL_VERSION})"
        )),
        _ => Error::BadRequest("malformed sync request".into()),
    })?;
    if TicketNumber::new(req.point, req.device, 1).is_err() {
        return Err(Error::BadRequest(
            "point or device number out of range".into(),
        ));
    }
    let counter = i64::try_from(req.counter)
        .map_err(|_| Error::BadRequest("request counter out of range".into()))?;
    let actor = store.actor().clone();
    let tx = store.begin()?;
    let last: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT last_counter, last_response FROM devices WHERE point = ?1 AND device = ?2",
            params![req.point, req.device],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match last {
        Some((last, response)) if counter == last => return Ok(response),
        Some((last, _)) if counter < last => return Err(Error::StaleCounter),
        _ => {}
    }
    let origin = device_origin(req.point, req.device);
    let mut results = Vec::with_capacity(req.changes.len());
    for dc in &req.changes {
        let refused = ingest(&tx, &actor, info, &req, &origin, dc, now)?;
        if let Some(reason) = &refused {
            // Only a valid number is logged: the field is the client's text.
            let ticket = TicketNumber::parse(&dc.ticket).map(|n| n.to_string());
            let ticket = ticket.as_deref().unwrap_or("(invalid)");
            tracing::info!(ticket, %reason, "upload refused");
        }
        results.push(DocResult {
            ticket: dc.ticket.clone(),
            refused,
        });
    }
    let (changes, cursor, more) = page(&tx, req.point, req.cursor, &origin)?;
    let response = encode(&SyncResponse {
        v: PROTOCOL_VERSION,
        cursor,
        more,
        results,
        changes,
    })?;
    tx.execute(
        "INSERT INTO devices (point, device, last_counter, last_response) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (point, device) DO UPDATE
         SET last_counter = excluded.last_counter, last_response = excluded.last_response",
        params![req.point, req.device, counter, response],
    )?;
    tx.commit()?;
    Ok(response)
}

/// The change-log origin of a tablet's uploads.
pub fn device_origin(point: u32, device: u32) -> String {
    format!("device:{point}:{device}")
}

/// Merge, check and store one uploaded ticket. `Ok(Some(reason))`: refused, nothing stored.
fn ingest(
    tx: &Transaction<'_>,
    actor: &ActorId,
    info: &ServerInfo,
    req: &SyncRequest,
    origin: &str,
    dc: &DocChanges,
    now: DateTime<FixedOffset>,
) -> Result<Option<String>> {
    let refuse = |reason: &str| Ok(Some(reason.to_owned()));
    let Ok(number) = TicketNumber::parse(&dc.ticket) else {
        return refuse("办件编号无效");
    };
    if number.point() != req.point {
        return refuse("办件不属于本代理点");
    }
    let (mut doc, before, known) = match load_doc(tx, number.as_str())? {
        Some(stored) => {
            let mut doc = match TicketDoc::load(&stored, actor) {
                Ok(doc) => doc,
                Err(e) => {
                    // The server's own copy is damaged: refuse (the tablet keeps its data and
                    // retries) and tell the operator; never overwrite it.
                    tracing::error!(ticket = %number, error = %e, "stored document does not load");
                    return refuse("服务器上的办件数据异常，请联系乡镇中心");
                }
            };
            let known: HashSet<String> = match doc.read() {
                Ok(t) => t.events.into_iter().map(|e| e.id).collect(),
                Err(_) => HashSet::new(),
            };
            let before = doc.heads();
            if doc.apply_remote(&dc.bytes).is_err() {
                return refuse("上传的数据无法解析");
            }
            (doc, before, known)
        }
        None => match TicketDoc::load(&dc.bytes, actor) {
            Ok(doc) => (doc, Vec::new(), HashSet::new()),
            Err(_) => return refuse("上传的数据无法解析"),
        },
    };
    let Ok(ticket) = doc.read() else {
        return refuse("上传的数据不是有效的承办单");
    };
    if ticket.number != number {
        return refuse("上传的数据与办件编号不符");
    }
    if ticket.point != req.point {
        return refuse("办件不属于本代理点");
    }
    // A tablet appends only agent events (full actor binding is issue 6).
    if let Some(e) = ticket
        .events
        .iter()
        .filter(|e| !known.contains(&e.id))
        .find(|e| e.role != Role::Agent || !may_append(Role::Agent, e.kind))
    {
        return Ok(Some(format!("代理员不能记录“{}”", e.kind.label())));
    }
    let new = doc.changes_since(&before);
    if !new.is_empty() {
        insert_change(tx, number.as_str(), req.point, origin, &new)?;
    }
    let stamps = if info.role == ServerRole::Township {
        stamp(&mut doc, &ticket, info, now)?
    } else {
        Vec::new()
    };
    if !stamps.is_empty() {
        insert_change(tx, number.as_str(), req.point, "server", &stamps)?;
    }
    if !new.is_empty() || !stamps.is_empty() {
        save_doc(tx, number.as_str(), req.point, &doc.save(true))?;
    }
    Ok(None)
}

/// Append the township's stamps the ticket lacks: `received` on first arrival, `arrived` for
/// each clock-moving tablet event. Returns the stamp change (empty when none was due), so a
/// retry or a second upload never stamps twice.
fn stamp(
    doc: &mut TicketDoc,
    ticket: &Ticket,
    info: &ServerInfo,
    now: DateTime<FixedOffset>,
) -> Result<Vec<u8>> {
    let before = doc.heads();
    let server_event = |kind, payload| Event {
        id: crate::new_event_id(),
        kind,
        at: now,
        actor: info.server_id.clone(),
        role: Role::Server,
        note: String::new(),
        payload,
    };
    let mut appended = false;
    if !ticket.events.iter().any(|e| e.kind == EventKind::Received) {
        doc.append(&server_event(EventKind::Received, json!({})))?;
        appended = true;
    }
    for e in ticket
        .events
        .iter()
        .filter(|e| e.role == Role::Agent && e.kind.moves_clock_from_tablet())
    {
        let stamped = ticket
            .events
            .iter()
            .any(|a| a.kind == EventKind::Arrived && a.payload_str("of") == Some(e.id.as_str()));
        if !stamped {
            doc.append(&server_event(EventKind::Arrived, json!({ "of": e.id })))?;
            appended = true;
        }
    }
    if !appended {
        return Ok(Vec::new());
    }
    doc.commit();
    Ok(doc.changes_since(&before))
}

/// The log rows in the point's scope after `cursor`, except `origin`'s own, up to a page.
/// Returns the changes, the cursor to send next and whether more rows wait.
fn page(
    tx: &Transaction<'_>,
    point: u32,
    cursor: u64,
    origin: &str,
) -> Result<(Vec<DocChanges>, u64, bool)> {
    let after = i64::try_from(cursor).unwrap_or(i64::MAX);
    let mut stmt = tx.prepare(
        "SELECT seq, ticket, bytes FROM changes
         WHERE point = ?1 AND seq > ?2 AND origin <> ?3 ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![point, after, origin])?;
    let mut out: Vec<DocChanges> = Vec::new();
    let mut slot: HashMap<String, usize> = HashMap::new();
    let mut total = 0usize;
    let mut last: Option<i64> = None;
    let mut more = false;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let ticket: String = row.get(1)?;
        let bytes: Vec<u8> = row.get(2)?;
        if last.is_some() && total.saturating_add(bytes.len()) > PAGE_BYTES {
            more = true;
            break;
        }
        total = total.saturating_add(bytes.len());
        last = Some(seq);
        match slot.get(&ticket) {
            Some(&i) => {
                if let Some(dc) = out.get_mut(i) {
                    dc.bytes.extend_from_slice(&bytes);
                }
            }
            None => {
                slot.insert(ticket.clone(), out.len());
                out.push(DocChanges { ticket, bytes });
            }
        }
    }
    let next = if more {
        last.unwrap_or(after)
    } else {
        // Nothing left in scope: jump to the newest row anywhere, so the next no-op sync
        // scans nothing.
        tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
            r.get::<_, i64>(0)
        })?
    };
    Ok((out, u64::try_from(next).unwrap_or(0), more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_stop_at_the_budget_skip_own_and_foreign_rows_and_end_at_the_newest_seq() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ServerStore::open(dir.path().join("s.db")).unwrap();
        let tx = store.begin().unwrap();
        let big = vec![7u8; PAGE_BYTES / 2 - 1];
        let me = device_origin(101, 1);
        // seq 1..=7: two tickets of point 101 from another device and the server, one row
        // of this device's own, one of another point.
        for (ticket, point, origin) in [
            ("a", 101, "device:101:2"),
            ("b", 101, "server"),
            ("a", 101, "server"),
            ("a", 101, me.as_str()),
            ("c", 102, "server"),
            ("b", 101, "staff:wang"),
            ("a", 101, "server"),
        ] {
            insert_change(&tx, ticket, point, origin, &big).unwrap();
        }
        let (p1, c1, more) = page(&tx, 101, 0, &me).unwrap();
        assert!(more);
        assert_eq!((c1, p1.len()), (2, 2));
        let (p2, c2, more) = page(&tx, 101, c1, &me).unwrap();
        assert!(more);
        // seq 3 (a), then 4 is our own and 5 another point's: skipped; 6 (b).
        assert_eq!(c2, 6);
        assert_eq!(
            p2.iter().map(|d| d.ticket.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let (p3, c3, more) = page(&tx, 101, c2, &me).unwrap();
        assert!(!more);
        assert_eq!((c3, p3.len()), (7, 1));
        // Nothing left: the cursor stays at the newest row; rows of one ticket concatenate.
        let (p4, c4, more) = page(&tx, 101, c3, &me).unwrap();
        assert!(p4.is_empty() && !more && c4 == 7);
        let small = [1u8, 2, 3];
        insert_change(&tx, "a", 101, "server", &small).unwrap();
        insert_change(&tx, "a", 101, "server", &small).unwrap();
        let (p5, c5, _) = page(&tx, 101, 7, &me).unwrap();
        assert_eq!((c5, p5.len(), p5[0].bytes.len()), (9, 1, 6));
    }
}
