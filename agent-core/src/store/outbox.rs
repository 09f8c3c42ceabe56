//! The tablet's side of sync state: what the township server still lacks of each ticket,
//! what it acknowledged or refused, and changes arriving from it. The transport (one
//! batched, compressed round trip) builds on these; see docs/SYNC.md.

use automerge::ChangeHash;
use chrono::{DateTime, FixedOffset};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{
    begin, get_meta, get_meta_u64, index, load_doc, put_meta, save_changes, Merged, Store,
};
use crate::doc::{decode_heads, encode_heads, DocError};
use crate::domain::number::TicketNumber;
use crate::error::{Error, Result};
use crate::sync::client::SyncReport;
use crate::sync::pack::unpack;

/// How many refused tickets [`Store::sync_status`] lists (the counts cover all of them).
pub const MAX_REFUSALS_LISTED: u32 = 50;

/// Where this device stands with its township server, for the host's sync screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// Tickets with changes waiting to upload.
    pub pending: u64,
    /// Tickets the server refused (they wait until the agent changes them).
    pub refused: u64,
    /// Tickets the server holds as they are here.
    pub synced: u64,
    /// The first [`MAX_REFUSALS_LISTED`] refused tickets, oldest first, with the reason.
    pub refusals: Vec<Refusal>,
    /// The server's change sequence this device has seen (0 before the first sync).
    pub cursor: u64,
    /// The last sync recorded with [`Store::record_sync`], if any.
    pub last_sync: Option<LastSync>,
}

/// A ticket the server refused, and the server's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub number: String,
    pub reason: String,
}

/// How a sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    Ok,
    /// The host cancelled it.
    Interrupted,
    /// No link, or the server refused the request.
    Failed,
}

/// The last sync as the host recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSync {
    /// When it ended, by the store's clock.
    pub at: DateTime<FixedOffset>,
    pub outcome: SyncOutcome,
    /// What it exchanged (for a sync that did not finish: the round trips that completed).
    pub report: SyncReport,
    /// Why it did not finish, as shown to the agent; `None` on success.
    pub message: Option<String>,
}

/// One ticket's changes on their way to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub number: TicketNumber,
    /// The document's heads when the changes were taken; acknowledged as "the server has these".
    pub heads: Vec<ChangeHash>,
    /// Raw Automerge changes after what the server acknowledged last.
    pub bytes: Vec<u8>,
}

impl Store {
    /// Tickets waiting to upload, oldest first, with the changes the server lacks; stops once
    /// `max_bytes` is reached (at least one ticket is always returned when any is waiting).
    pub fn outbox(&mut self, max_bytes: usize) -> Result<Vec<Outgoing>> {
        // `<> 'synced'` repeats the partial index's condition so SQLite uses it.
        let waiting: Vec<(String, Option<Vec<u8>>)> = self
            .conn
            .prepare(
                "SELECT t.number, d.synced_heads FROM tickets t JOIN docs d ON d.ticket = t.id
                 WHERE t.sync_state <> 'synced' AND t.sync_state = 'pending' ORDER BY t.id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        let mut total = 0usize;
        for (number, synced) in waiting {
            if total >= max_bytes && !out.is_empty() {
                break;
            }
            // A damaged document is quarantined and skipped, never allowed to block the rest.
            let loaded = load_doc(&self.conn, &self.sealer, &self.actor, &number);
            let mut doc = match self.quarantine_on_damage(&number, loaded) {
                Ok(l) => l.doc,
                Err(Error::CorruptDocument { .. }) => continue,
                Err(e) => return Err(e),
            };
            let bytes = doc.changes_since(&decode_heads(&synced.unwrap_or_default()));
            total = total.saturating_add(bytes.len());
            out.push(Outgoing {
                number: TicketNumber::parse(&number)?,
                heads: doc.heads(),
                bytes,
            });
        }
        Ok(out)
    }

    /// Record the server's answer for an upload: stored (the server now has `sent.heads`) or
    /// refused with its reason, which the host shows until the agent fixes the ticket. A
    /// ticket the agent changed while the upload was on its way stays waiting either way:
    /// the change may be the fix.
    pub fn acknowledge(&mut self, sent: &Outgoing, refused: Option<&str>) -> Result<()> {
        let number = sent.number.as_str();
        let tx = begin(&mut self.conn)?;
        let changed = load_doc(&tx, &self.sealer, &self.actor, number)?
            .doc
            .heads()
            != sent.heads;
        match refused {
            Some(_) if changed => {}
            Some(reason) => {
                tx.execute(
                    "UPDATE tickets SET sync_state = 'refused', sync_reason = ?2 WHERE number = ?1",
                    params![number, reason],
                )?;
            }
            None => {
                let state = if changed { "pending" } else { "synced" };
                tx.execute(
                    "UPDATE docs SET synced_heads = ?2
                     WHERE ticket = (SELECT id FROM tickets WHERE number = ?1)",
                    params![number, encode_heads(&sent.heads)],
                )?;
                tx.execute(
                    "UPDATE tickets SET sync_state = ?2, sync_reason = NULL WHERE number = ?1",
                    params![number, state],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The server epoch of the last completed sync (0: none).
    pub fn sync_epoch(&self) -> Result<u64> {
        get_meta_u64(&self.conn, "sync_epoch")
    }

    pub fn set_sync_epoch(&mut self, epoch: u64) -> Result<()> {
        put_meta(&self.conn, "sync_epoch", epoch.to_string().as_bytes())
    }

    /// The server was restored from a backup: every ticket it had acknowledged goes up again,
    /// whole (refused tickets keep their reason until the agent acts on them).
    pub fn forget_acknowledged(&mut self) -> Result<()> {
        let tx = begin(&mut self.conn)?;
        tx.execute("UPDATE docs SET synced_heads = NULL", [])?;
        tx.execute(
            "UPDATE tickets SET sync_state = 'pending' WHERE sync_state = 'synced'",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The server lost what it had acknowledged of this ticket: upload all of it next time.
    pub fn forget_synced(&mut self, number: &TicketNumber) -> Result<()> {
        let tx = begin(&mut self.conn)?;
        tx.execute(
            "UPDATE docs SET synced_heads = NULL
             WHERE ticket = (SELECT id FROM tickets WHERE number = ?1)",
            [number.as_str()],
        )?;
        tx.execute(
            "UPDATE tickets SET sync_state = 'pending', sync_reason = NULL WHERE number = ?1",
            [number.as_str()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Apply changes the server sent for one ticket (in their wire form, `sync::pack`): new
    /// changes to a ticket this device holds, or the whole history of one it does not.
    /// Garbage stores nothing.
    pub fn apply_changes(&mut self, number: &TicketNumber, bytes: &[u8]) -> Result<Merged> {
        let today = self.today();
        let tx = begin(&mut self.conn)?;
        let state: Option<String> = tx
            .query_row(
                "SELECT sync_state FROM tickets WHERE number = ?1",
                [number.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(state) = state else {
            drop(tx);
            let merged = self.merge_remote(&unpack(bytes, &[]).map_err(DocError::from)?)?;
            if !matches!(&merged, Merged::New(n) | Merged::Updated(n) if n == number) {
                return Err(Error::Event("服务器发来的数据与办件编号不符".into()));
            }
            self.mark_in_step(number)?;
            return Ok(merged);
        };
        let mut loaded = load_doc(&tx, &self.sealer, &self.actor, number.as_str())?;
        loaded.doc.apply_packed(bytes)?;
        let ticket = loaded.doc.read()?;
        if ticket.number != *number {
            return Err(Error::Event("服务器发来的数据与办件编号不符".into()));
        }
        let view = ticket.view(&self.calendar, today, self.margin);
        save_changes(&tx, &self.sealer, &mut loaded, number.as_str())?;
        index::write_row(&tx, &self.sealer, &view)?;
        if state == "synced" {
            // Nothing of ours was waiting: the server has everything we now hold.
            tx.execute(
                "UPDATE docs SET synced_heads = ?2
                 WHERE ticket = (SELECT id FROM tickets WHERE number = ?1)",
                params![number.as_str(), encode_heads(&loaded.doc.heads())],
            )?;
        }
        tx.commit()?;
        Ok(Merged::Updated(number.clone()))
    }

    /// A ticket just received whole from the server: the server has all of it.
    fn mark_in_step(&mut self, number: &TicketNumber) -> Result<()> {
        let tx = begin(&mut self.conn)?;
        let mut doc = load_doc(&tx, &self.sealer, &self.actor, number.as_str())?.doc;
        tx.execute(
            "UPDATE docs SET synced_heads = ?2 WHERE ticket = (SELECT id FROM tickets WHERE number = ?1)",
            params![number.as_str(), encode_heads(&doc.heads())],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The server's change sequence this device has seen (0 before the first sync).
    pub fn sync_cursor(&self) -> Result<u64> {
        get_meta_u64(&self.conn, "sync_cursor")
    }

    pub fn set_sync_cursor(&mut self, cursor: u64) -> Result<()> {
        put_meta(&self.conn, "sync_cursor", cursor.to_string().as_bytes())
    }

    /// Counts of tickets by sync state, the refused ones with their reasons, the cursor and
    /// the last recorded sync. Counts come from the index (`tickets.sync_state`); no
    /// document is opened.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let total = count(
            self.conn
                .query_row("SELECT COUNT(*) FROM tickets", [], |r| r.get(0))?,
        );
        let (mut pending, mut refused, mut unsynced) = (0u64, 0u64, 0u64);
        // The partial index `tickets_unsynced` holds exactly these rows.
        let mut stmt = self.conn.prepare(
            "SELECT sync_state, COUNT(*) FROM tickets WHERE sync_state <> 'synced'
             GROUP BY sync_state",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            let n = count(n);
            unsynced += n;
            match state.as_str() {
                "pending" => pending = n,
                "refused" => refused = n,
                _ => {}
            }
        }
        let refusals = self
            .conn
            .prepare(
                "SELECT number, COALESCE(sync_reason, '') FROM tickets
                 WHERE sync_state = 'refused' ORDER BY id LIMIT ?1",
            )?
            .query_map([MAX_REFUSALS_LISTED], |r| {
                Ok(Refusal {
                    number: r.get(0)?,
                    reason: r.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        // A record this version cannot read is left out rather than failing the status.
        let last_sync = get_meta(&self.conn, "last_sync")?
            .and_then(|json| serde_json::from_slice::<LastSync>(&json).ok());
        Ok(SyncStatus {
            pending,
            refused,
            synced: total.saturating_sub(unsynced),
            refusals,
            cursor: self.sync_cursor()?,
            last_sync,
        })
    }

    /// Record how a sync ended (time by the store's clock), for [`Store::sync_status`].
    /// `message` is what the agent was told; it must not carry personal data (it is stored
    /// in clear).
    pub fn record_sync(
        &mut self,
        outcome: SyncOutcome,
        report: &SyncReport,
        message: Option<&str>,
    ) -> Result<()> {
        let last = LastSync {
            at: self.now(),
            outcome,
            report: report.clone(),
            message: message.map(str::to_owned),
        };
        put_meta(&self.conn, "last_sync", &serde_json::to_vec(&last)?)
    }

    /// The next request counter: strictly increasing and stored before it is used, so a
    /// request is never numbered twice even across a crash (the server's replay guard).
    pub fn next_sync_counter(&mut self) -> Result<u64> {
        let tx = begin(&mut self.conn)?;
        let n = crate::sync::client::next_counter(get_meta_u64(&tx, "sync_counter")?);
        put_meta(&tx, "sync_counter", n.to_string().as_bytes())?;
        tx.commit()?;
        Ok(n)
    }
}
