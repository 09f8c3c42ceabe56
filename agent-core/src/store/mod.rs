//! The device store: one SQLite file per tablet.
//!
//! - One writer, WAL, `synchronous = FULL`: a killed process or a power cut loses nothing
//!   committed.
//! - One Automerge document per ticket, saved as a sealed full save plus sealed incremental
//!   chunks (compacted every [`COMPACT_AFTER`] chunks).
//! - Lists and searches read the index columns of `tickets` (kept in step with each document in
//!   the same transaction) and open only the sealed summaries of the page they return.
//! - With a host key, no name, ID number or phone is written in clear anywhere in the files.

mod identity;
mod index;
mod outbox;
mod replica;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use automerge::ActorId;
use chrono::{DateTime, FixedOffset, NaiveDate, Offset, Utc};
use rusqlite::{
    params, Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior,
};

use crate::crypto::{Sealer, StoreKey};
use crate::doc::TicketDoc;
use crate::domain::calendar::Calendar;
use crate::domain::catalog::Catalog;
use crate::domain::deadline::DEFAULT_MARGIN;
use crate::domain::event::{Event, EventDraft, EventKind, Role};
use crate::domain::number::TicketNumber;
use crate::domain::ticket::{FormWarning, MaterialState, NewTicket, Ticket, TicketView};
use crate::error::{Error, Result};

pub use index::{Light, Order, Page, Query, TicketSummary};
pub use outbox::{LastSync, Outgoing, Refusal, SyncOutcome, SyncStatus, MAX_REFUSALS_LISTED};

/// Incremental chunks kept before a document is rewritten as one full save.
pub const COMPACT_AFTER: i64 = 16;

/// China Standard Time, in which all dates of the practice are counted.
pub fn china_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

/// A source of "now" (injectable, so tests and demos can move the calendar day).
pub type Clock = Arc<dyn Fn() -> DateTime<FixedOffset> + Send + Sync>;

/// The system clock in China Standard Time.
pub fn system_clock() -> Clock {
    Arc::new(|| Utc::now().with_timezone(&china_offset()))
}

/// How to open a store.
pub struct StoreOptions {
    /// The host's key; `None` makes a plaintext store (tests and debugging only).
    pub key: Option<StoreKey>,
    /// Point and device numbers, used when the store is created (enrollment provides them).
    pub point: u32,
    pub device: u32,
    /// The agent working this device.
    pub agent: String,
    pub clock: Clock,
    /// Yellow-light margin in working days.
    pub margin: u32,
}

impl StoreOptions {
    pub fn new(key: StoreKey, point: u32, device: u32, agent: impl Into<String>) -> Self {
        Self {
            key: Some(key),
            point,
            device,
            agent: agent.into(),
            clock: system_clock(),
            margin: DEFAULT_MARGIN,
        }
    }
}

/// A registered ticket and what the agent should be told about the form.
#[derive(Debug, Clone)]
pub struct Registered {
    pub view: TicketView,
    pub warnings: Vec<FormWarning>,
}

/// What `merge_remote` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merged {
    New(TicketNumber),
    Updated(TicketNumber),
}

/// A document moved aside because it would not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub number: String,
    pub reason: String,
    pub moved_at: String,
}

/// The device's store. One per process per file; methods take `&mut self` for writes.
pub struct Store {
    conn: Connection,
    sealer: Sealer,
    actor: ActorId,
    point: u32,
    device: u32,
    agent: String,
    catalog: Catalog,
    calendar: Calendar,
    clock: Clock,
    margin: u32,
    path: PathBuf,
    /// Set by [`Interrupter::interrupt`]; cleared when a cancellable call starts.
    interrupted: Arc<AtomicBool>,
}

const KEY_CHECK: &[u8] = b"daiban-key-check";
const PLAIN_MARK: &[u8] = b"plain";

impl Store {
    /// Open (or create) the store at `path`.
    ///
    /// A wrong key is refused before anything is written. A damaged database file is moved
    /// aside (with its WAL) and reported as [`Error::CorruptDatabase`]; the next open starts
    /// an empty store.
    pub fn open(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        match Self::open_inner(&path, opts) {
            Err(e) if is_corruption(&e) => Err(Error::CorruptDatabase {
                moved_to: move_aside(&path)?,
            }),
            other => other,
        }
    }

    fn open_inner(path: &Path, opts: StoreOptions) -> Result<Store> {
        // Refuse an identity that could never number a ticket, before touching the file.
        TicketNumber::new(opts.point, opts.device, 1)?;
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let ok: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if ok != "ok" {
            return Err(Error::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(ok),
            )));
        }
        let sealer = match &opts.key {
            Some(k) => Sealer::new(k)?,
            None => Sealer::plain(),
        };
        // A store whose first open died between the migrations and the setup below has a
        // schema but no key check: finish setting it up rather than calling the key wrong.
        let fresh = schema::version(&conn)? == 0
            || (!has_meta(&conn, "key_check")? && ticket_count(&conn)? == 0);
        if !fresh {
            check_key(&conn, &sealer)?;
        }
        schema::migrate(&mut conn)?;
        if fresh {
            let tx = conn.transaction()?;
            let mark = if sealer.is_plain() {
                PLAIN_MARK.to_vec()
            } else {
                sealer.seal(b"meta:key_check", KEY_CHECK)?
            };
            put_meta(&tx, "key_check", &mark)?;
            put_meta(&tx, "actor", ActorId::random().to_hex_string().as_bytes())?;
            put_meta(&tx, "point", opts.point.to_string().as_bytes())?;
            put_meta(&tx, "device", opts.device.to_string().as_bytes())?;
            put_meta(&tx, "agent", opts.agent.as_bytes())?;
            put_meta(&tx, "next_seq", b"1")?;
            put_meta(
                &tx,
                "catalog",
                serde_json::to_string(&Catalog::demo())?.as_bytes(),
            )?;
            put_meta(&tx, "calendar", Calendar::default_cn().to_csv().as_bytes())?;
            tx.commit()?;
        }
        let text = |key: &str| -> Result<String> {
            Ok(String::from_utf8_lossy(&get_meta(&conn, key)?.unwrap_or_default()).into_owned())
        };
        let actor = text("actor")?
            .parse::<ActorId>()
            .map_err(|_| Error::Event("stored actor id is invalid".into()))?;
        let point = text("point")?.parse().unwrap_or(opts.point);
        let device = text("device")?.parse().unwrap_or(opts.device);
        let agent = text("agent")?;
        let catalog = Catalog::from_json(&text("catalog")?)?;
        let calendar = Calendar::parse_csv(&text("calendar")?)?;
        Ok(Store {
            conn,
            sealer,
            actor,
            point,
            device,
            agent,
            catalog,
            calendar,
            clock: opts.clock,
            margin: opts.margin,
            path: path.to_path_buf(),
            interrupted: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    pub fn point(&self) -> u32 {
        self.point
    }

    pub fn device(&self) -> u32 {
        self.device
    }

    /// The Automerge actor this device writes with.
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// Now, by the store's clock.
    pub fn now(&self) -> DateTime<FixedOffset> {
        (self.clock)()
    }

    /// Today, by the store's clock, in China Standard Time.
    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    /// Replace the catalog (as the district publishes it).
    pub fn set_catalog(&mut self, catalog: Catalog) -> Result<()> {
        put_meta(
            &self.conn,
            "catalog",
            serde_json::to_string(&catalog)?.as_bytes(),
        )?;
        self.catalog = catalog;
        Ok(())
    }

    /// Replace the working-day calendar. Index columns depend on it, so every ticket's
    /// deadline is recomputed.
    pub fn set_calendar(&mut self, calendar: Calendar) -> Result<()> {
        self.reset_interrupt();
        self.replace_calendar(calendar)
    }

    /// [`Store::set_calendar`] inside a call that is already cancellable (sync).
    fn replace_calendar(&mut self, calendar: Calendar) -> Result<()> {
        let today = self.today();
        let tx = begin(&mut self.conn)?;
        put_meta(&tx, "calendar", calendar.to_csv().as_bytes())?;
        let numbers: Vec<String> = tx
            .prepare("SELECT number FROM tickets")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for n in numbers {
            // Most of the time goes to Rust between statements, where SQLite's interrupt
            // cannot reach: check the host's cancel here too.
            if self.interrupted.load(Ordering::SeqCst) {
                return Err(Error::Interrupted);
            }
            let ticket = load_doc(&tx, &self.sealer, &self.actor, &n)?.doc.read()?;
            let view = ticket.view(&calendar, today, self.margin);
            index::write_row(&tx, &self.sealer, &view)?;
        }
        tx.commit()?;
        self.calendar = calendar;
        Ok(())
    }

    /// Register a new ticket from the agent's form, offline. The number is made here.
    pub fn register(&mut self, form: &NewTicket) -> Result<Registered> {
        self.refuse_if_wiped()?;
        let now = self.now();
        let today = now.date_naive();
        let checked = form.check(&self.catalog, today)?;
        let tx = begin(&mut self.conn)?;
        let mut seq: u32 = get_meta(&tx, "next_seq")?
            .and_then(|v| String::from_utf8_lossy(&v).parse().ok())
            .unwrap_or(1);
        // Never reuse a number this store already holds (one synced back from the server,
        // say): skip to the next free one.
        let number = loop {
            let n = TicketNumber::new(self.point, self.device, seq)?;
            if !ticket_exists(&tx, n.as_str())? {
                break n;
            }
            seq = seq.saturating_add(1);
        };
        put_meta(
            &tx,
            "next_seq",
            seq.saturating_add(1).to_string().as_bytes(),
        )?;
        let registered = Event {
            id: new_event_id(),
            kind: EventKind::Registered,
            at: now,
            actor: self.agent.clone(),
            role: Role::Agent,
            note: String::new(),
            payload: serde_json::json!({}),
        };
        let ticket = Ticket {
            number,
            item: checked.item,
            applicant: checked.applicant,
            materials: checked.materials,
            fee: checked.fee,
            agent: self.agent.clone(),
            point: self.point,
            device: self.device,
            remarks: checked.remarks,
            registered_at: now,
            events: vec![registered],
        };
        let mut doc = TicketDoc::create(&ticket, &self.actor)?;
        let view = ticket.view(&self.calendar, today, self.margin);
        index::write_row(&tx, &self.sealer, &view)?;
        insert_doc(&tx, &self.sealer, &mut doc, view.ticket.number.as_str())?;
        tx.commit()?;
        Ok(Registered {
            view,
            warnings: checked.warnings,
        })
    }

    /// Append an event by this device's agent. Events that do not fit the ticket's current
    /// status, or that an agent may not record, are refused with the reason.
    pub fn append(&mut self, number: &TicketNumber, draft: &EventDraft) -> Result<TicketView> {
        self.refuse_if_wiped()?;
        let now = self.now();
        let event = Event {
            id: new_event_id(),
            kind: draft.kind,
            at: now,
            actor: self.agent.clone(),
            role: Role::Agent,
            note: crate::domain::validate::normalize(&draft.note),
            payload: draft.payload.clone(),
        };
        let tx = begin(&mut self.conn)?;
        let mut loaded = load_doc(&tx, &self.sealer, &self.actor, number.as_str())?;
        let doc = &mut loaded.doc;
        let mut ticket = doc.read()?;
        ticket.check_event(&event).map_err(Error::Event)?;
        if event.kind == EventKind::SupplementProvided {
            let provided = ticket.supplied_materials(&event).map_err(Error::Event)?;
            doc.set_material_state(&provided, MaterialState::Received)?;
        }
        doc.append(&event)?;
        doc.commit();
        ticket = doc.read()?;
        let view = ticket.view(&self.calendar, now.date_naive(), self.margin);
        save_changes(&tx, &self.sealer, &mut loaded, number.as_str())?;
        index::write_row(&tx, &self.sealer, &view)?;
        tx.execute(
            "UPDATE tickets SET sync_state = 'pending', sync_reason = NULL WHERE number = ?1",
            [number.as_str()],
        )?;
        tx.commit()?;
        Ok(view)
    }

    /// One ticket with its status, deadline and 需核对 flag as of today.
    pub fn get(&mut self, number: &TicketNumber) -> Result<TicketView> {
        let today = self.today();
        let loaded = load_doc(&self.conn, &self.sealer, &self.actor, number.as_str());
        let doc = self.quarantine_on_damage(number.as_str(), loaded)?.doc;
        let ticket = match doc.read() {
            Ok(t) => t,
            Err(e) => return self.quarantine_on_damage(number.as_str(), Err(e.into())),
        };
        Ok(ticket.view(&self.calendar, today, self.margin))
    }

    /// A page of tickets matching `query`, from the index (documents are not loaded).
    pub fn search(&self, query: &Query) -> Result<Page> {
        index::search(
            &self.conn,
            &self.sealer,
            &self.calendar,
            self.today(),
            self.margin,
            query,
        )
    }

    /// Tickets due soon (yellow) or overdue (red), most urgent first.
    pub fn due(&self, page: u32) -> Result<Page> {
        self.search(&Query {
            lights: vec![Light::Red, Light::Yellow],
            order: Order::Due,
            page,
            ..Query::default()
        })
    }

    /// The document as bytes, for sync or for another replica.
    pub fn export(&mut self, number: &TicketNumber) -> Result<Vec<u8>> {
        let mut doc = load_doc(&self.conn, &self.sealer, &self.actor, number.as_str())?.doc;
        Ok(doc.save(true))
    }

    /// Merge a ticket document (or one with more changes) received from another replica.
    /// Garbage is refused and nothing is stored; a ticket of another point is refused.
    pub fn merge_remote(&mut self, bytes: &[u8]) -> Result<Merged> {
        let mut incoming = TicketDoc::load(bytes, &self.actor)?;
        let theirs = incoming.read()?;
        if theirs.point != self.point || theirs.number.point() != self.point {
            return Err(Error::Event(format!("办件{}不属于本代理点", theirs.number)));
        }
        let number = theirs.number.clone();
        let today = self.today();
        let tx = begin(&mut self.conn)?;
        let merged = if ticket_exists(&tx, number.as_str())? {
            let mut loaded = load_doc(&tx, &self.sealer, &self.actor, number.as_str())?;
            loaded.doc.merge(&mut incoming)?;
            let ticket = loaded.doc.read()?;
            if ticket.number != number {
                return Err(Error::Event("merged document changed its number".into()));
            }
            let view = ticket.view(&self.calendar, today, self.margin);
            save_changes(&tx, &self.sealer, &mut loaded, number.as_str())?;
            index::write_row(&tx, &self.sealer, &view)?;
            Merged::Updated(number)
        } else {
            let view = theirs.view(&self.calendar, today, self.margin);
            index::write_row(&tx, &self.sealer, &view)?;
            insert_doc(&tx, &self.sealer, &mut incoming, number.as_str())?;
            tx.execute(
                "UPDATE tickets SET sync_state = 'synced' WHERE number = ?1",
                [number.as_str()],
            )?;
            Merged::New(number)
        };
        tx.commit()?;
        Ok(merged)
    }

    /// Documents moved aside because they would not open.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>> {
        let mut stmt = self
            .conn
            .prepare("SELECT number, reason, moved_at FROM quarantine ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Quarantined {
                number: r.get(0)?,
                reason: r.get(1)?,
                moved_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Number of tickets in the store.
    pub fn count(&self) -> Result<u64> {
        Ok(u64::try_from(ticket_count(&self.conn)?).unwrap_or(0))
    }

    /// A handle another thread can use to cancel a long call; the call returns
    /// [`Error::Interrupted`] and leaves the store as it was.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter {
            flag: self.interrupted.clone(),
            sqlite: Arc::new(self.conn.get_interrupt_handle()),
        }
    }

    /// Start a cancellable call: forget cancels aimed at earlier calls. Cancellable calls
    /// do this themselves; a host that drives one in steps (sync through a
    /// [`crate::sync::client::Replica`] that locks the store per step) calls it once, before
    /// the first step.
    pub fn reset_interrupt(&self) {
        self.interrupted.store(false, Ordering::SeqCst);
    }

    /// The host asked to cancel the running call.
    pub(crate) fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// If a document failed to open, move it aside and report it; pass other results on.
    fn quarantine_on_damage<T>(&mut self, number: &str, result: Result<T>) -> Result<T> {
        match result {
            // Real damage only: a document from newer software, or one this build cannot read
            // as a ticket, stays where it is and is reported, so an update can read it.
            Err(e @ (Error::Doc(crate::doc::DocError::Automerge(_)) | Error::Key(_))) => {
                let tx = begin(&mut self.conn)?;
                let chunks: Vec<String> = tx
                    .prepare("SELECT chunk FROM doc_chunks WHERE ticket = (SELECT id FROM tickets WHERE number = ?1) ORDER BY seq")?
                    .query_map([number], |r| r.get::<_, Vec<u8>>(0))?
                    .map(|c| c.map(hex::encode))
                    .collect::<rusqlite::Result<_>>()?;
                tx.execute(
                    "INSERT INTO quarantine (number, reason, moved_at, doc, chunks)
                     SELECT t.number, ?2, ?3, d.doc, ?4 FROM docs d JOIN tickets t ON t.id = d.ticket
                     WHERE t.number = ?1",
                    params![
                        number,
                        damage_kind(&e),
                        now_text(&self.clock),
                        serde_json::to_string(&chunks)?
                    ],
                )?;
                tx.execute("DELETE FROM tickets WHERE number = ?1", [number])?;
                tx.commit()?;
                Err(Error::CorruptDocument {
                    number: number.to_owned(),
                })
            }
            other => other,
        }
    }
}

/// Store the sealed full save of a new ticket's document.
fn insert_doc(
    tx: &Transaction<'_>,
    sealer: &Sealer,
    doc: &mut TicketDoc,
    number: &str,
) -> Result<()> {
    let full = doc.save(!sealer.is_plain());
    let sealed = sealer.seal(&doc_context(number), &full)?;
    tx.execute(
        "INSERT INTO docs (ticket, doc) VALUES ((SELECT id FROM tickets WHERE number = ?1), ?2)",
        params![number, sealed],
    )?;
    Ok(())
}

/// Save what changed in the document: a sealed incremental chunk, or, once the chunks would
/// outweigh half the full save (or number [`COMPACT_AFTER`]), one fresh full save. Merges from
/// a server bring several changes at once and usually compact; an agent's single event is a
/// small chunk.
fn save_changes(
    tx: &Transaction<'_>,
    sealer: &Sealer,
    loaded: &mut Loaded,
    number: &str,
) -> Result<()> {
    let chunk = loaded.doc.save_incremental();
    if chunk.is_empty() {
        return Ok(());
    }
    let seq = loaded.chunks + 1;
    let bytes = loaded.chunk_bytes + i64::try_from(chunk.len()).unwrap_or(i64::MAX);
    if seq >= COMPACT_AFTER || bytes > loaded.base_bytes / 2 {
        let full = loaded.doc.save(!sealer.is_plain());
        let sealed = sealer.seal(&doc_context(number), &full)?;
        tx.execute(
            "DELETE FROM doc_chunks WHERE ticket = (SELECT id FROM tickets WHERE number = ?1)",
            [number],
        )?;
        tx.execute(
            "UPDATE docs SET doc = ?2, chunks = 0, chunk_bytes = 0 WHERE ticket = (SELECT id FROM tickets WHERE number = ?1)",
            params![number, sealed],
        )?;
    } else {
        let sealed = sealer.seal(&chunk_context(number, seq), &chunk)?;
        tx.execute(
            "INSERT INTO doc_chunks (ticket, seq, chunk) VALUES ((SELECT id FROM tickets WHERE number = ?1), ?2, ?3)",
            params![number, seq, sealed],
        )?;
        tx.execute(
            "UPDATE docs SET chunks = ?2, chunk_bytes = ?3 WHERE ticket = (SELECT id FROM tickets WHERE number = ?1)",
            params![number, seq, bytes],
        )?;
    }
    Ok(())
}

/// Why a document was quarantined, without any of its content (serde's messages can quote
/// values such as a name, and the quarantine table is not sealed).
fn damage_kind(e: &Error) -> &'static str {
    match e {
        Error::Key(_) => "密封数据无法用本机密钥打开（数据损坏）",
        Error::Doc(crate::doc::DocError::Automerge(_)) => "文档数据无法解析（数据损坏）",
        Error::Doc(crate::doc::DocError::NewerSchema(_)) => "文档由更新版本的软件写入",
        _ => "文档内容不是有效的承办单",
    }
}

/// Cancels the store's running call from another thread: SQLite's interrupt for statements,
/// plus a flag that long loops check between statements.
#[derive(Clone)]
pub struct Interrupter {
    flag: Arc<AtomicBool>,
    sqlite: Arc<rusqlite::InterruptHandle>,
}

impl Interrupter {
    /// Best effort: a call that is between checks finishes normally.
    pub fn interrupt(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.sqlite.interrupt();
    }
}

/// Begin an immediate write transaction. A rollback that was itself interrupted can leave a
/// transaction open (rusqlite ignores that failure on drop); end it first, so one cancel never
/// blocks every later write.
fn begin(conn: &mut Connection) -> Result<Transaction<'_>> {
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

fn doc_context(number: &str) -> Vec<u8> {
    format!("doc:{number}").into_bytes()
}

fn chunk_context(number: &str, seq: i64) -> Vec<u8> {
    format!("chunk:{number}:{seq}").into_bytes()
}

/// A document as loaded, with what its stored form costs (for the compaction rule).
struct Loaded {
    doc: TicketDoc,
    chunks: i64,
    chunk_bytes: i64,
    base_bytes: i64,
}

/// Load a ticket's document: the full save, then its incremental chunks in order.
fn load_doc(conn: &Connection, sealer: &Sealer, actor: &ActorId, number: &str) -> Result<Loaded> {
    let row: Option<(Vec<u8>, i64, i64)> = conn
        .query_row(
            "SELECT doc, chunks, chunk_bytes FROM docs WHERE ticket = (SELECT id FROM tickets WHERE number = ?1)",
            [number],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((sealed, chunks, chunk_bytes)) = row else {
        return Err(Error::NotFound(number.to_owned()));
    };
    let bytes = sealer.open(&doc_context(number), &sealed)?;
    let mut doc = TicketDoc::load_own(&bytes, actor)?;
    let mut stmt =
        conn.prepare_cached("SELECT seq, chunk FROM doc_chunks WHERE ticket = (SELECT id FROM tickets WHERE number = ?1) ORDER BY seq")?;
    let rows = stmt.query_map([number], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    for row in rows {
        let (seq, sealed) = row?;
        let chunk = sealer.open(&chunk_context(number, seq), &sealed)?;
        doc.load_stored_chunk(&chunk)?;
    }
    Ok(Loaded {
        doc,
        chunks,
        chunk_bytes,
        base_bytes: i64::try_from(sealed.len()).unwrap_or(i64::MAX),
    })
}

fn check_key(conn: &Connection, sealer: &Sealer) -> Result<()> {
    let stored = get_meta(conn, "key_check")?.unwrap_or_default();
    let plain_store = stored == PLAIN_MARK;
    match (plain_store, sealer.is_plain()) {
        (true, true) => Ok(()),
        (true, false) => Err(Error::WrongKey),
        (false, true) => Err(Error::KeyRequired),
        (false, false) => match sealer.open(b"meta:key_check", &stored) {
            Ok(v) if v == KEY_CHECK => Ok(()),
            _ => Err(Error::WrongKey),
        },
    }
}

fn ticket_exists(conn: &Connection, number: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM tickets WHERE number = ?1", [number], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

fn ticket_count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM tickets", [], |r| r.get(0))?)
}

/// Whether a meta key exists (false before the schema does).
fn has_meta(conn: &Connection, key: &str) -> Result<bool> {
    let table: bool = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE name = 'meta'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    Ok(table && get_meta(conn, key)?.is_some())
}

fn get_meta(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// A number kept in `meta` as text (0 when absent or unreadable).
fn get_meta_u64(conn: &Connection, key: &str) -> Result<u64> {
    Ok(get_meta(conn, key)?
        .and_then(|v| String::from_utf8_lossy(&v).parse().ok())
        .unwrap_or(0))
}

fn put_meta(conn: &Connection, key: &str, value: &[u8]) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

fn now_text(clock: &Clock) -> String {
    clock().to_rfc3339()
}

/// A random event id (64 bits, hex): unique within a ticket without coordination.
fn new_event_id() -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 8];
    if SystemRandom::new().fill(&mut b).is_err() {
        // Extremely unlikely; fall back to the clock so ids stay distinct.
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        b = nanos.to_le_bytes();
    }
    hex::encode(b)
}

fn is_corruption(e: &Error) -> bool {
    matches!(
        e,
        Error::Sqlite(rusqlite::Error::SqliteFailure(f, _))
            if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Rename a damaged database (and its WAL and shared-memory files) so nothing is lost.
fn move_aside(path: &Path) -> Result<PathBuf> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%S");
    let target = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    std::fs::rename(path, &target)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::rename(&side, format!("{}{suffix}", target.display()))?;
        }
    }
    Ok(target)
}
