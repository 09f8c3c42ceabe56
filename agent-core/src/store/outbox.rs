//! The tablet's side of sync state: what the township server still lacks of each ticket,
//! what it acknowledged or refused, and changes arriving from it. The transport (one
//! batched, compressed round trip) builds on these; see docs/SYNC.md.

use automerge::ChangeHash;
use rusqlite::{params, OptionalExtension};

use super::{begin, get_meta, index, load_doc, put_meta, save_changes, Merged, Store};
use crate::doc::{decode_heads, encode_heads};
use crate::domain::number::TicketNumber;
use crate::error::{Error, Result};

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
    /// refused with its reason, which the host shows until the agent fixes the ticket.
    pub fn acknowledge(&mut self, sent: &Outgoing, refused: Option<&str>) -> Result<()> {
        let number = sent.number.as_str();
        let tx = begin(&mut self.conn)?;
        match refused {
            Some(reason) => {
                tx.execute(
                    "UPDATE tickets SET sync_state = 'refused', sync_reason = ?2 WHERE number = ?1",
                    params![number, reason],
                )?;
            }
            None => {
                let mut doc = load_doc(&tx, &self.sealer, &self.actor, number)?.doc;
                // Changed again since the upload was taken: still waiting.
                let state = if doc.heads() == sent.heads {
                    "synced"
                } else {
                    "pending"
                };
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

    /// Apply changes the server sent for one ticket: new changes to a ticket this device
    /// holds, or the whole history of one it does not. Garbage stores nothing.
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
            let merged = self.merge_remote(bytes)?;
            if !matches!(&merged, Merged::New(n) | Merged::Updated(n) if n == number) {
                return Err(Error::Event("服务器发来的数据与办件编号不符".into()));
            }
            self.mark_in_step(number)?;
            return Ok(merged);
        };
        let mut loaded = load_doc(&tx, &self.sealer, &self.actor, number.as_str())?;
        loaded.doc.apply_remote(bytes)?;
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
        Ok(get_meta(&self.conn, "sync_cursor")?
            .and_then(|v| String::from_utf8_lossy(&v).parse().ok())
            .unwrap_or(0))
    }

    pub fn set_sync_cursor(&mut self, cursor: u64) -> Result<()> {
        put_meta(&self.conn, "sync_cursor", cursor.to_string().as_bytes())
    }

    /// The next request counter: strictly increasing and stored before it is used, so a
    /// request is never numbered twice even across a crash (the server's replay guard).
    pub fn next_sync_counter(&mut self) -> Result<u64> {
        let tx = begin(&mut self.conn)?;
        let n = get_meta(&tx, "sync_counter")?
            .and_then(|v| String::from_utf8_lossy(&v).parse::<u64>().ok())
            .unwrap_or(0)
            .saturating_add(1);
        put_meta(&tx, "sync_counter", n.to_string().as_bytes())?;
        tx.commit()?;
        Ok(n)
    }
}
