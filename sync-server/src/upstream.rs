//! A township server's sync with its district: the tablet's client code
//! ([`agent_core::sync::client::sync_with`]) over the township's store as a [`Replica`].
//!
//! - Up: each ticket's change-log rows that did not come from the district, after what the
//!   district acknowledged (`upstream.seq`), concatenated; plus the township's own directory
//!   part when it changed.
//! - Down: the district's changes are merged into the township's documents and logged with
//!   origin `parent`, so the township's tablets page through them like any other change.
//!
//! Every method locks the store for one short step; the network round trip holds no lock,
//! so tablets and staff are served while the district link is slow.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::params;

use agent_core::crypto::identity::SigningKey;
use agent_core::doc::{DocError, TicketDoc};
use agent_core::domain::number::TicketNumber;
use agent_core::sync::client::{next_counter, sync_with, Endpoint, Replica, SyncReport, Upload};
use agent_core::sync::pack::unpack;
use agent_core::sync::shared::SharedName;
use agent_core::sync::wire::{DocChanges, Peer, SharedDoc};

use crate::error::Error;
use crate::store::{
    append_doc, get_meta, insert_change, load_doc, put_meta, put_shared, ServerStore,
};

/// Change-log origin of what came from the district.
pub const PARENT_ORIGIN: &str = "parent";

/// The township's store seen from its district.
pub struct Upstream {
    store: Arc<Mutex<ServerStore>>,
    township: String,
}

impl Upstream {
    pub fn new(store: Arc<Mutex<ServerStore>>, township: String) -> Self {
        Upstream { store, township }
    }

    /// One sync with the district at `parent` (its URL, and its CA for `https://`).
    pub fn sync<'a>(&mut self, parent: impl Into<Endpoint<'a>>) -> agent_core::Result<SyncReport> {
        sync_with(self, parent, &mut |_| {})
    }

    /// The store for one step. A poisoned lock is taken over: whatever panicked rolled its
    /// transaction back (see `http::AppState`).
    fn lock(&self) -> agent_core::Result<MutexGuard<'_, ServerStore>> {
        Ok(self
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

/// A number kept in `meta` as text (0 when absent or unreadable).
fn meta_u64(conn: &rusqlite::Connection, key: &str) -> agent_core::Result<u64> {
    Ok(get_meta(conn, key)
        .map_err(core)?
        .and_then(|v| String::from_utf8_lossy(&v).parse().ok())
        .unwrap_or(0))
}

/// The client code speaks agent-core's error; the server's is carried as text.
fn core(e: Error) -> agent_core::Error {
    match e {
        Error::Core(e) => *e,
        other => agent_core::Error::Sync(other.to_string()),
    }
}

impl Replica for Upstream {
    /// The change-log position the upload reached.
    type Mark = i64;

    fn peer(&self) -> agent_core::Result<Peer> {
        Ok(Peer::Township {
            code: self.township.clone(),
        })
    }

    fn signing_key(&mut self) -> agent_core::Result<SigningKey> {
        self.lock()?.signing_key().map_err(core)
    }

    fn outbox(&mut self, max_bytes: usize) -> agent_core::Result<Vec<Upload<i64>>> {
        let store = self.lock()?;
        let floor = i64::try_from(meta_u64(store.conn(), "upstream_floor")?).unwrap_or(0);
        let conn = store.conn();
        // Tickets the district asked for whole go first, as full saves, within the budget;
        // the rest wait for the next round (their rows are never sent piecemeal meanwhile).
        let whole: Vec<(String, i64)> = conn
            .prepare(
                "SELECT u.ticket, COALESCE(MAX(c.seq), 0) FROM upstream u
                 LEFT JOIN changes c ON c.ticket = u.ticket
                 WHERE u.whole = 1 GROUP BY u.ticket",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let whole_tickets: HashSet<String> = whole.iter().map(|(t, _)| t.clone()).collect();
        let mut out: Vec<Upload<i64>> = Vec::new();
        let mut total = 0usize;
        for (ticket, seq) in whole {
            if total >= max_bytes && !out.is_empty() {
                break;
            }
            if let Some(bytes) = load_doc(conn, &ticket).map_err(core)? {
                total = total.saturating_add(bytes.len());
                out.push(Upload {
                    changes: DocChanges { ticket, bytes },
                    mark: seq,
                });
            }
        }
        let mut stmt = conn.prepare(
            "SELECT c.seq, c.ticket, c.bytes FROM changes c
             LEFT JOIN upstream u ON u.ticket = c.ticket
             WHERE c.seq > ?1 AND c.point > 0 AND c.origin <> ?2 AND c.seq > COALESCE(u.seq, 0)
             ORDER BY c.seq",
        )?;
        let mut rows = stmt.query(params![floor, PARENT_ORIGIN])?;
        let mut slot: HashMap<String, usize> = HashMap::new();
        let mut lowest: Option<i64> = None;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let ticket: String = row.get(1)?;
            let bytes: Vec<u8> = row.get(2)?;
            lowest = Some(lowest.map_or(seq, |l| l.min(seq)));
            if whole_tickets.contains(&ticket) {
                continue; // the full save already carries this row
            }
            match slot.get(&ticket) {
                Some(&i) => {
                    if let Some(up) = out.get_mut(i) {
                        up.changes.bytes.extend_from_slice(&bytes);
                        up.mark = seq;
                        total = total.saturating_add(bytes.len());
                    }
                }
                None if total < max_bytes || out.is_empty() => {
                    total = total.saturating_add(bytes.len());
                    slot.insert(ticket.clone(), out.len());
                    out.push(Upload {
                        changes: DocChanges { ticket, bytes },
                        mark: seq,
                    });
                }
                // Full: later rows of tickets already in the page still join them above.
                None => {}
            }
        }
        drop(rows);
        drop(stmt);
        // Everything below the lowest row still waiting has been acknowledged: scan from
        // there next time.
        let next_floor = match lowest {
            Some(l) => l - 1,
            None => conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
                r.get::<_, i64>(0)
            })?,
        };
        if next_floor > floor {
            put_meta(conn, "upstream_floor", next_floor.to_string().as_bytes()).map_err(core)?;
        }
        Ok(out)
    }

    fn acknowledge(
        &mut self,
        upload: &Upload<i64>,
        refused: Option<&str>,
    ) -> agent_core::Result<()> {
        if let Some(reason) = refused {
            tracing::warn!(ticket = %upload.changes.ticket, %reason, "district refused a ticket");
        }
        let store = self.lock()?;
        store.conn().execute(
            "INSERT INTO upstream (ticket, seq, refused) VALUES (?1, ?2, ?3)
             ON CONFLICT (ticket) DO UPDATE
             SET seq = excluded.seq, refused = excluded.refused, whole = 0",
            params![upload.changes.ticket, upload.mark, refused],
        )?;
        Ok(())
    }

    fn send_whole(&mut self, upload: &Upload<i64>) -> agent_core::Result<()> {
        tracing::warn!(ticket = %upload.changes.ticket, "district lacks history: sending the whole ticket");
        let store = self.lock()?;
        store.conn().execute(
            "INSERT INTO upstream (ticket, seq, whole) VALUES (?1, 0, 1)
             ON CONFLICT (ticket) DO UPDATE SET whole = 1",
            [&upload.changes.ticket],
        )?;
        Ok(())
    }

    fn shared_outbox(&mut self) -> agent_core::Result<Vec<SharedDoc>> {
        let store = self.lock()?;
        let name = SharedName::TownshipDirectory(self.township.clone());
        let sent = meta_u64(store.conn(), &format!("upstream_shared:{name}"))?;
        Ok(store
            .shared(&name)
            .map_err(core)?
            .filter(|d| d.version > sent)
            .into_iter()
            .collect())
    }

    fn shared_sent(&mut self, docs: &[SharedDoc]) -> agent_core::Result<()> {
        let store = self.lock()?;
        for doc in docs {
            put_meta(
                store.conn(),
                &format!("upstream_shared:{}", doc.name),
                doc.version.to_string().as_bytes(),
            )
            .map_err(core)?;
        }
        Ok(())
    }

    fn apply(&mut self, changes: &DocChanges) -> agent_core::Result<()> {
        let number = TicketNumber::parse(&changes.ticket)?;
        let mut store = self.lock()?;
        let directory = store.directory().map_err(core)?;
        if directory.township_of(number.point()) != Some(self.township.as_str()) {
            return Err(agent_core::Error::Sync(format!(
                "district sent ticket {number} of another township"
            )));
        }
        let actor = store.actor().clone();
        let tx = store.begin().map_err(core)?;
        let (mut doc, before) = match load_doc(&tx, number.as_str()).map_err(core)? {
            Some(stored) => {
                let mut doc = TicketDoc::load_own(&stored, &actor)?;
                let before = doc.heads();
                doc.apply_packed(&changes.bytes)?;
                (doc, before)
            }
            None => {
                let raw = unpack(&changes.bytes, &[]).map_err(DocError::from)?;
                (TicketDoc::load(&raw, &actor)?, Vec::new())
            }
        };
        let ticket = doc.read()?;
        if ticket.number != number {
            return Err(agent_core::Error::Sync(format!(
                "district sent other data under ticket {number}"
            )));
        }
        let new = doc.changes_since(&before);
        if !new.is_empty() {
            insert_change(
                &tx,
                number.as_str(),
                ticket.point,
                &self.township,
                PARENT_ORIGIN,
                &new,
            )
            .map_err(core)?;
            append_doc(&tx, number.as_str(), ticket.point, &new).map_err(core)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn apply_shared(&mut self, doc: &SharedDoc) -> agent_core::Result<()> {
        let Some(name) = SharedName::parse(&doc.name) else {
            return Err(agent_core::Error::Sync(format!(
                "unknown shared document {}",
                doc.name
            )));
        };
        // The township's own part comes back only with a higher version than it holds: after
        // the township was restored from a backup, its newer edits (revocations) return.
        name.check(&doc.body)?;
        let mut store = self.lock()?;
        let tx = store.begin().map_err(core)?;
        put_shared(&tx, &name, doc, PARENT_ORIGIN).map_err(core)?;
        tx.commit()?;
        Ok(())
    }

    fn cursor(&mut self) -> agent_core::Result<u64> {
        meta_u64(self.lock()?.conn(), "upstream_cursor")
    }

    fn set_cursor(&mut self, cursor: u64) -> agent_core::Result<()> {
        let store = self.lock()?;
        put_meta(
            store.conn(),
            "upstream_cursor",
            cursor.to_string().as_bytes(),
        )
        .map_err(core)
    }

    fn next_counter(&mut self) -> agent_core::Result<u64> {
        let mut store = self.lock()?;
        let tx = store.begin().map_err(core)?;
        let n = next_counter(meta_u64(&tx, "upstream_counter")?);
        put_meta(&tx, "upstream_counter", n.to_string().as_bytes()).map_err(core)?;
        tx.commit()?;
        Ok(n)
    }

    fn epoch(&mut self) -> agent_core::Result<u64> {
        meta_u64(self.lock()?.conn(), "upstream_epoch")
    }

    fn set_epoch(&mut self, epoch: u64) -> agent_core::Result<()> {
        let store = self.lock()?;
        put_meta(store.conn(), "upstream_epoch", epoch.to_string().as_bytes()).map_err(core)
    }

    /// The district was restored: every ticket goes up again whole (with the district's own
    /// events it may have lost), and the township's directory part too.
    fn forget_acknowledged(&mut self) -> agent_core::Result<()> {
        let mut store = self.lock()?;
        let tx = store.begin().map_err(core)?;
        tx.execute(
            "INSERT INTO upstream (ticket, seq, whole) SELECT ticket, 0, 1 FROM docs WHERE true
             ON CONFLICT (ticket) DO UPDATE SET whole = 1",
            [],
        )?;
        tx.execute("DELETE FROM meta WHERE key LIKE 'upstream_shared:%'", [])?;
        tx.commit()?;
        Ok(())
    }

    fn pending_whole(&mut self) -> agent_core::Result<Vec<String>> {
        let store = self.lock()?;
        Ok(
            match get_meta(store.conn(), "upstream_whole").map_err(core)? {
                Some(json) => serde_json::from_slice(&json)?,
                None => Vec::new(),
            },
        )
    }

    fn set_pending_whole(&mut self, tickets: &[String]) -> agent_core::Result<()> {
        let store = self.lock()?;
        put_meta(
            store.conn(),
            "upstream_whole",
            &serde_json::to_vec(tickets)?,
        )
        .map_err(core)
    }

    fn cancelled(&self) -> bool {
        false
    }
}
