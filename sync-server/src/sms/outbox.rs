//! The durable outbox: a message is stored (with why it is sent, unique) before any gateway
//! sees it, handed to the gateway until it is taken, retried with backoff, and its state kept
//! for staff to see. A reason is stored once, so an event never makes two messages; a message
//! stored and not yet taken when the server stops is sent after the restart.

use chrono::{DateTime, Duration, FixedOffset};
use rusqlite::{params, Connection, OptionalExtension};

use super::templates::Message;
use super::{Handed, Outgoing, Template};
use crate::error::{Error, Result};

/// Attempts before a message is given up as failed.
pub const MAX_ATTEMPTS: i64 = 12;
/// The first retry's wait; each next one doubles, up to [`MAX_WAIT_SECS`].
pub const FIRST_WAIT_SECS: i64 = 30;
pub const MAX_WAIT_SECS: i64 = 3600;

/// A message to store.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Why it is sent, unique (`supplement:<event id>`, `reply:<inbound reference>` …).
    pub reason: String,
    pub ticket: Option<String>,
    pub township: Option<String>,
    pub phone: String,
    pub message: Message,
}

/// Store `q` unless a message for its reason is stored already; whether it was stored.
pub fn enqueue(
    conn: &Connection,
    q: &Queued,
    sign: &str,
    now: DateTime<FixedOffset>,
) -> Result<bool> {
    let params_json = serde_json::to_string(&q.message.params)
        .map_err(|e| Error::Internal(format!("SMS parameters: {e}")))?;
    let stored = conn.execute(
        "INSERT OR IGNORE INTO sms_outbox (reason, ticket, township, phone, template, params,
             text, next_try, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        params![
            q.reason,
            q.ticket,
            q.township,
            q.phone,
            q.message.template.as_str(),
            params_json,
            q.message.text(sign),
            now.to_rfc3339(),
        ],
    )?;
    Ok(stored == 1)
}

/// Whether `phone` sent 退订.
pub fn opted_out(conn: &Connection, phone: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM sms_optout WHERE phone = ?1", [phone], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

/// Record that `phone` sent 退订: no notice or invitation is queued for it from now on
/// (callers check [`opted_out`]), and those still queued are cancelled. Replies and staff
/// reminders are not notices to the applicant and stay.
pub fn opt_out(conn: &Connection, phone: &str, now: DateTime<FixedOffset>) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO sms_optout (phone, at) VALUES (?1, ?2)",
        params![phone, now.to_rfc3339()],
    )?;
    conn.execute(
        "UPDATE sms_outbox SET state = 'cancelled', error = '已退订'
         WHERE state = 'queued' AND phone = ?1
           AND template IN ('supplement', 'result_ready', 'rate_invite')",
        [phone],
    )?;
    Ok(())
}

/// Queued messages whose time has come, oldest first, at most `n`.
pub fn due(
    conn: &Connection,
    now: DateTime<FixedOffset>,
    n: usize,
) -> Result<Vec<(Outgoing, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT id, phone, template, params, text, attempts FROM sms_outbox
         WHERE state = 'queued' AND next_try <= ?1 ORDER BY next_try, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now.to_rfc3339(), n as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, phone, template, params, text, attempts) = row?;
        let Some(template) = Template::parse(&template) else {
            continue;
        };
        out.push((
            Outgoing {
                id,
                phone,
                template,
                params: serde_json::from_str(&params).unwrap_or_default(),
                text,
            },
            attempts,
        ));
    }
    Ok(out)
}

/// Record what the gateway did with message `id` on its attempt number `attempt` (1-based).
pub fn record(
    conn: &Connection,
    id: i64,
    attempt: i64,
    handed: &Handed,
    now: DateTime<FixedOffset>,
) -> Result<()> {
    match handed {
        Handed::Accepted { reference } => conn.execute(
            "UPDATE sms_outbox SET state = 'sent', attempts = ?2, reference = ?3, sent = ?4,
                 error = NULL WHERE id = ?1",
            params![id, attempt, reference, now.to_rfc3339()],
        )?,
        Handed::Failed { reason, retry } if *retry && attempt < MAX_ATTEMPTS => {
            let wait = (FIRST_WAIT_SECS << (attempt - 1).clamp(0, 20)).min(MAX_WAIT_SECS);
            conn.execute(
                "UPDATE sms_outbox SET attempts = ?2, error = ?3, next_try = ?4 WHERE id = ?1",
                params![
                    id,
                    attempt,
                    reason,
                    (now + Duration::seconds(wait)).to_rfc3339()
                ],
            )?
        }
        Handed::Failed { reason, .. } => conn.execute(
            "UPDATE sms_outbox SET state = 'failed', attempts = ?2, error = ?3 WHERE id = ?1",
            params![id, attempt, reason],
        )?,
    };
    Ok(())
}

/// Messages taken by the gateway since `since`, newest first, at most `n`: those smsd may
/// still fail.
pub fn sent_since(conn: &Connection, since: DateTime<FixedOffset>, n: usize) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare(
        "SELECT id FROM sms_outbox WHERE state = 'sent' AND sent >= ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let ids = stmt
        .query_map(params![since.to_rfc3339(), n as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// A message the gateway took and then could not deliver (smsd's `failed/`).
pub fn failed_after(conn: &Connection, id: i64, reason: &str) -> Result<()> {
    conn.execute(
        "UPDATE sms_outbox SET state = 'failed', error = ?2 WHERE id = ?1 AND state = 'sent'",
        params![id, reason],
    )?;
    Ok(())
}

/// One outbox row as staff see it (the phone in clear: pages mask it).
#[derive(Debug, Clone)]
pub struct Row {
    pub id: i64,
    pub created: String,
    pub ticket: Option<String>,
    pub phone: String,
    pub template: Option<Template>,
    pub state: String,
    pub attempts: i64,
    pub error: Option<String>,
    pub sent: Option<String>,
}

/// The newest `n` messages, of `township` only when given, before id `before` (paging).
pub fn list(
    conn: &Connection,
    township: Option<&str>,
    before: Option<i64>,
    n: usize,
) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare(
        "SELECT id, created, ticket, phone, template, state, attempts, error, sent FROM sms_outbox
         WHERE (?1 IS NULL OR township = ?1) AND (?2 IS NULL OR id < ?2)
         ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![township, before, n as i64], |r| {
            Ok(Row {
                id: r.get(0)?,
                created: r.get(1)?,
                ticket: r.get(2)?,
                phone: r.get(3)?,
                template: Template::parse(&r.get::<_, String>(4)?),
                state: r.get(5)?,
                attempts: r.get(6)?,
                error: r.get(7)?,
                sent: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ServerStore;

    #[test]
    fn opting_out_cancels_queued_notices_but_not_replies_or_other_phones() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServerStore::open(dir.path().join("s.db")).unwrap();
        let conn = store.conn();
        let now = crate::now();
        let queue = |reason: &str, phone: &str, template| {
            let q = Queued {
                reason: reason.into(),
                ticket: None,
                township: None,
                phone: phone.into(),
                message: Message::new(template, &[]),
            };
            assert!(enqueue(conn, &q, "示范县便民服务", now).unwrap());
        };
        queue("result:1", "13800138000", Template::ResultReady);
        queue("invite:1", "13800138000", Template::RateInvite);
        queue("reply:1", "13800138000", Template::Help);
        queue("result:2", "13900139000", Template::ResultReady);
        opt_out(conn, "13800138000", now).unwrap();
        assert!(opted_out(conn, "13800138000").unwrap());
        assert!(!opted_out(conn, "13900139000").unwrap());
        let due: Vec<(String, Template)> = due(conn, now, 10)
            .unwrap()
            .into_iter()
            .map(|(m, _)| (m.phone, m.template))
            .collect();
        assert_eq!(
            due,
            [
                ("13800138000".to_owned(), Template::Help),
                ("13900139000".to_owned(), Template::ResultReady),
            ]
        );
        let cancelled: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sms_outbox WHERE state = 'cancelled' AND error = '已退订'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cancelled, 2);
    }
}
