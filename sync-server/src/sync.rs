//! `POST /v1/sync`: one request, one SQLite transaction.
//!
//! 1. Who is asking: the peer must be enrolled in the directory (not revoked, 410) and the
//!    request signed with its key (401). The peer's last counter and response are stored
//!    with the work they describe, in the same transaction. The same counter again gets the
//!    same bytes; an older one is refused (409); a newer one is processed.
//! 2. Each uploaded ticket is measured against the per-ticket caps, merged into the server's
//!    document and checked: its number belongs to the peer, it still reads as a ticket of
//!    that point, every new change is by an actor the peer speaks for, recorded events are
//!    unchanged, and every new event passes the role table of the actor that wrote it. A
//!    refused ticket stores nothing; it never blocks the rest.
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

use agent_core::crypto::identity::verify_sync;
use agent_core::doc::{DocError, TicketDoc};
use agent_core::domain::directory::{Directory, DirectoryPart};
use agent_core::domain::event::{may_append, Event, EventKind, Role};
use agent_core::domain::number::TicketNumber;
use agent_core::domain::ticket::Ticket;
use agent_core::sync::client::MAX_WHOLE;
use agent_core::sync::pack::{pack, unpack};
use agent_core::sync::shared::SharedName;
use agent_core::sync::wire::{
    decode_request, encode, split_signature, DocChanges, DocResult, Outcome, Peer, Sender,
    SharedDoc, SyncResponse, WireError, PAGE_BYTES, PROTOCOL_VERSION,
};

use crate::config::ServerRole;
use crate::error::{Error, Result};
use crate::store::{append_doc, insert_change, load_doc, put_shared, ServerStore};

/// Who this server is, for the events it appends and the scope it serves.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub role: ServerRole,
    /// `actor` of stamps (the config's `server_id`).
    pub server_id: String,
    /// A township server's township code (from the directory); `None` on a district.
    pub township: Option<String>,
    /// Working days to answer a 不满意 rating (the config's `followup_days`).
    pub followup_days: u32,
}

/// What a request may touch, decided once from the peer and the directory.
struct Scope {
    peer: Peer,
    origin: String,
    /// The township the peer's tickets belong to.
    township: String,
    directory: Directory,
    /// The key the peer enrolled with (hex).
    key: String,
    /// Who may have written what the peer brings: actor → the roles its events may carry.
    /// A tablet: itself (agent). A township at its district: its server (township staff and
    /// server stamps) and its devices, revoked ones included: the township refuses a revoked
    /// device itself, and relays what it wrote before.
    authors: HashMap<ActorId, &'static [Role]>,
    /// This store was restored from a backup and the peer has not completed a sync since:
    /// it may bring back events this server wrote and lost in the restore.
    returning: bool,
}

impl Scope {
    /// Whether a ticket of `point` is the peer's.
    fn owns(&self, point: u32) -> bool {
        match &self.peer {
            Peer::Device { point: p, .. } => *p == point,
            Peer::Township { code } => self.directory.township_of(point) == Some(code.as_str()),
        }
    }

    /// Read who may have written what the peer brings from the directory (again after the
    /// request's own directory part was taken in: a township's new devices come with it).
    fn set_authors(&mut self, directory: Directory) {
        let mut authors = HashMap::new();
        let mut add = |hex: &str, roles: &'static [Role]| {
            if let Ok(actor) = ActorId::try_from(hex) {
                authors.insert(actor, roles);
            }
        };
        match &self.peer {
            Peer::Device { point, device } => {
                if let Some(d) = directory.device(*point, *device) {
                    add(&d.actor, &[Role::Agent]);
                }
            }
            Peer::Township { code } => {
                if let Some(server) = directory.township(code).and_then(|t| t.server.as_ref()) {
                    add(&server.actor, &[Role::Township, Role::Server]);
                }
                for d in directory
                    .townships
                    .get(code)
                    .iter()
                    .flat_map(|p| &p.devices)
                {
                    add(&d.actor, &[Role::Agent]);
                }
            }
        }
        self.authors = authors;
        self.directory = directory;
    }
}

/// Decide who may sync here, and with which key: an enrolled tablet of one of this
/// township's points (not revoked), or, at a district, one of its enrolled townships.
fn scope(directory: Directory, info: &ServerInfo, peer: &Peer) -> Result<Scope> {
    let (township, key) = match (peer, info.role, info.township.as_deref()) {
        (Peer::Device { point, device }, ServerRole::Township, Some(mine)) => {
            if TicketNumber::new(*point, *device, 1).is_err() {
                return Err(Error::BadRequest(
                    "point or device number out of range".into(),
                ));
            }
            if directory.township_of(*point) != Some(mine) {
                return Err(Error::Forbidden(format!(
                    "代办点{point}不属于本乡镇（或本服务器尚未收到区县目录）"
                )));
            }
            if let Some(r) = directory.revocation(*point, *device) {
                // The admin's reason, as the tablet shows it to its agent.
                let reason = match r.reason.trim() {
                    "" => "管理员已停用本设备",
                    reason => reason,
                };
                return Err(Error::Revoked(reason.to_owned()));
            }
            let Some(d) = directory.device(*point, *device) else {
                return Err(Error::Forbidden(
                    "本设备尚未注册：请用乡镇中心签发的注册码注册".into(),
                ));
            };
            (mine.to_owned(), d.key.clone())
        }
        (Peer::Township { code }, ServerRole::District, _) => {
            let Some(t) = directory.township(code) else {
                return Err(Error::Forbidden(format!("乡镇{code}不在区县目录中")));
            };
            let Some(server) = &t.server else {
                return Err(Error::Forbidden(format!(
                    "乡镇{code}的服务器尚未在区县注册：请用区县签发的注册码注册"
                )));
            };
            (code.clone(), server.key.clone())
        }
        _ => {
            return Err(Error::Forbidden(
                "这个服务器不接受这类设备同步（平板连乡镇服务器，乡镇服务器连区县服务器）".into(),
            ))
        }
    };
    let mut scope = Scope {
        origin: peer.origin(),
        peer: peer.clone(),
        township,
        directory: Directory::default(),
        key,
        authors: HashMap::new(),
        returning: false,
    };
    scope.set_authors(directory);
    Ok(scope)
}

/// A sync request's answer.
pub struct Handled {
    /// The response body.
    pub body: Vec<u8>,
    /// Something new was stored (a township then syncs upward soon).
    pub stored: bool,
}

/// Answer one sync request body.
pub fn handle(
    store: &mut ServerStore,
    info: &ServerInfo,
    body: &[u8],
    now: DateTime<FixedOffset>,
) -> Result<Handled> {
    let (frame, signature) = split_signature(body)
        .map_err(|_| Error::BadRequest("sync request is not signed".into()))?;
    let req = decode_request(frame).map_err(|e| match e {
        WireError::TooLarge(_) => Error::BadRequest("sync request too large".into()),
        WireError::Version(v) => Error::BadRequest(format!(
            "sync protocol version {v} is not supported (server speaks {PROTOCOL_VERSION})"
        )),
        _ => Error::BadRequest("malformed sync request".into()),
    })?;
    let counter = i64::try_from(req.counter)
        .map_err(|_| Error::BadRequest("request counter out of range".into()))?;
    let actor = store.actor().clone();
    let epoch = store.epoch();
    let restored = store.was_restored()?;
    // Who may sync is read in the request's transaction: a revocation committed before it
    // holds for it.
    let tx = store.begin()?;
    let mut scope = scope(crate::store::directory(&tx)?, info, &req.peer)?;
    if !verify_sync(&scope.key, frame, signature) {
        tracing::warn!(peer = %scope.origin, "sync request with a bad signature refused");
        return Err(Error::Unauthenticated(
            "请求签名无效：本设备的密钥与注册时不符".into(),
        ));
    }
    scope.returning = restored && req.epoch != epoch;
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let last: Option<(i64, Vec<u8>, Vec<u8>)> = tx
        .query_row(
            "SELECT last_counter, last_digest, last_response FROM peers WHERE peer = ?1",
            [&scope.origin],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    match last {
        Some((last, d, body)) if counter == last && d == digest.as_ref() => {
            return Ok(Handled {
                body,
                stored: false,
            })
        }
        // An older counter, or the same counter with another body (a client restored from a
        // backup numbering again): never answer it with another request's response.
        Some((last, _, _)) if counter <= last => return Err(Error::StaleCounter),
        _ => {}
    }
    // A client from another epoch (this store was restored since) or a new one gets
    // everything in scope, its own changes included; one from another epoch also re-sends
    // everything.
    let fresh = req.epoch != epoch;
    let reset = fresh && req.epoch != 0;
    let cursor = if reset { 0 } else { req.cursor };
    let before: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
        r.get(0)
    })?;
    // Document work (the costly part) runs on every core, outside any store access; the
    // store is read before and written after, in this one transaction.
    // A township's directory part first: devices it enrolled since its last sync may have
    // written the tickets it brings.
    for doc in &req.shared {
        ingest_shared(&tx, &scope, doc, &actor)?;
    }
    if !req.shared.is_empty() {
        scope.set_authors(crate::store::directory(&tx)?);
    }
    let mut seen = HashSet::new();
    let mut uploads = Vec::with_capacity(req.changes.len());
    for dc in &req.changes {
        uploads.push(prepare(&tx, &scope, dc, &mut seen)?);
    }
    let checked = par_map(uploads, |u| check(u, &actor, info, &scope, now));
    let mut results = Vec::with_capacity(req.changes.len());
    for (dc, checked) in req.changes.iter().zip(checked) {
        let checked = checked?;
        store_checked(&tx, &scope, &checked)?;
        if checked.outcome != Outcome::Stored {
            // Only a valid number is logged: the field is the client's text.
            let ticket = TicketNumber::parse(&dc.ticket).map(|n| n.to_string());
            let ticket = ticket.as_deref().unwrap_or("(invalid)");
            tracing::info!(ticket, outcome = ?checked.outcome, peer = %scope.origin, "upload not stored");
        }
        results.push(DocResult {
            ticket: dc.ticket.clone(),
            outcome: checked.outcome,
        });
    }
    let (mut changes, shared, cursor, more) = page(&tx, &scope, cursor, fresh)?;
    // Tickets the client lacks history of go whole, before the page's changes to them.
    let mut whole = Vec::new();
    for ticket in req.whole.iter().take(MAX_WHOLE) {
        let owned = TicketNumber::parse(ticket).is_ok_and(|n| scope.owns(n.point()));
        if let Some(bytes) = owned.then(|| load_doc(&tx, ticket)).transpose()?.flatten() {
            whole.push(DocChanges {
                ticket: ticket.clone(),
                bytes,
            });
        }
    }
    whole.append(&mut changes);
    let changes = whole.into_iter().filter_map(wire_form).collect();
    let response = encode(
        &SyncResponse {
            v: PROTOCOL_VERSION,
            cursor,
            epoch,
            reset,
            more,
            results,
            changes,
            shared,
        },
        Sender::Server,
    )?;
    tx.execute(
        "INSERT INTO peers (peer, last_counter, last_digest, last_response)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (peer) DO UPDATE
         SET last_counter = excluded.last_counter, last_digest = excluded.last_digest,
             last_response = excluded.last_response",
        params![scope.origin, counter, digest.as_ref(), response],
    )?;
    let after: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
        r.get(0)
    })?;
    crate::fault::point("sync-before-commit");
    tx.commit()?;
    Ok(Handled {
        body: response,
        stored: after > before,
    })
}

/// An upload ready to be checked: the server's stored copy of its ticket, read up front so
/// checking needs no store access. Refused when the number is not the peer's.
enum Upload<'a> {
    Refused(&'static str),
    Ready {
        dc: &'a DocChanges,
        number: TicketNumber,
        stored: Option<Vec<u8>>,
    },
}

fn prepare<'a>(
    tx: &Transaction<'_>,
    scope: &Scope,
    dc: &'a DocChanges,
    seen: &mut HashSet<TicketNumber>,
) -> Result<Upload<'a>> {
    let Ok(number) = TicketNumber::parse(&dc.ticket) else {
        return Ok(Upload::Refused("办件编号无效"));
    };
    if !scope.owns(number.point()) {
        return Ok(Upload::Refused("办件不属于本代理点或本乡镇"));
    }
    // Twice in one request: both would be checked against the same stored copy.
    if !seen.insert(number.clone()) {
        return Ok(Upload::Refused("同一办件在一次同步中出现两次"));
    }
    let stored = load_doc(tx, number.as_str())?;
    // A tablet brings new tickets under its own device number only, so it cannot take the
    // numbers another tablet of its point will use. (A store restored from a backup may have
    // lost tickets that any tablet of the point brings back.)
    if let Peer::Device { device, .. } = scope.peer {
        if stored.is_none() && number.device() != device && !scope.returning {
            return Ok(Upload::Refused("办件编号不是本设备的"));
        }
    }
    Ok(Upload::Ready { dc, number, stored })
}

/// What checking an upload decided: its outcome, and for a stored one the changes new to
/// this server and the server's stamps, to log and append.
struct Checked {
    outcome: Outcome,
    ticket: String,
    point: u32,
    new: Vec<u8>,
    stamps: Vec<u8>,
}

impl Checked {
    fn not_stored(outcome: Outcome) -> Self {
        Self {
            outcome,
            ticket: String::new(),
            point: 0,
            new: Vec::new(),
            stamps: Vec::new(),
        }
    }

    fn refused(reason: &str) -> Result<Self> {
        Ok(Self::not_stored(Outcome::Refused(reason.to_owned())))
    }
}

/// What an upload is new against: the stored copy's heads, or nothing (a first upload, kept
/// as it came: it loaded whole, without missing history, so it is not encoded again).
enum Base {
    Held(Vec<automerge::ChangeHash>),
    First(Vec<u8>),
}

/// Merge an upload into the stored copy and check it: its number belongs to the peer, it
/// still reads as a ticket of that point, every new event is one the peer may bring. A
/// refused ticket stores nothing.
fn check(
    upload: Upload<'_>,
    actor: &ActorId,
    info: &ServerInfo,
    scope: &Scope,
    now: DateTime<FixedOffset>,
) -> Result<Checked> {
    let (dc, number, stored) = match upload {
        Upload::Refused(reason) => return Checked::refused(reason),
        Upload::Ready { dc, number, stored } => (dc, number, stored),
    };
    if let Err(e) = agent_core::doc::limits::check_upload(stored.as_deref(), &dc.bytes) {
        return Checked::refused(&e.to_string());
    }
    let (mut doc, before, known) = match stored {
        Some(stored) => {
            // Measured with the upload above.
            let mut doc = match TicketDoc::load_own(&stored, actor) {
                Ok(doc) => doc,
                Err(e) => {
                    // The server's own copy is damaged: refuse (the client keeps its data and
                    // retries) and tell the operator; never overwrite it.
                    tracing::error!(ticket = %number, error = %e, "stored document does not load");
                    return Checked::refused("服务器上的办件数据异常，请联系乡镇中心");
                }
            };
            let known: HashMap<String, Event> = match doc.read() {
                Ok(t) => t.events.into_iter().map(|e| (e.id.clone(), e)).collect(),
                Err(_) => HashMap::new(),
            };
            let before = doc.heads();
            match doc.apply_packed(&dc.bytes) {
                Ok(()) => {}
                // This server lost history the upload builds on (restored from an older
                // backup): nothing is stored; the client sends the whole ticket.
                Err(DocError::MissingHistory) => {
                    return Ok(Checked::not_stored(Outcome::SendWhole))
                }
                Err(_) => return Checked::refused("上传的数据无法解析"),
            }
            (doc, Base::Held(before), known)
        }
        None => match unpack(&dc.bytes, &[])
            .map_err(DocError::from)
            .and_then(|raw| Ok((TicketDoc::load_own(&raw, actor)?, raw)))
        {
            Ok((doc, raw)) => (doc, Base::First(raw), HashMap::new()),
            Err(DocError::MissingHistory) => return Ok(Checked::not_stored(Outcome::SendWhole)),
            Err(_) => return Checked::refused("上传的数据无法解析"),
        },
    };
    let Ok(ticket) = doc.read() else {
        return Checked::refused("上传的数据不是有效的承办单");
    };
    if ticket.number != number || ticket.point != number.point() {
        return Checked::refused("上传的数据与办件编号不符");
    }
    if let Err(reason) = ticket.check_limits() {
        return Checked::refused(&reason);
    }
    if let Err(reason) = check_authors(&mut doc, &before, &ticket, &known, actor, info, scope, now)
    {
        return Checked::refused(&reason);
    }
    let new = match before {
        Base::Held(heads) => doc.changes_since(&heads),
        Base::First(raw) => raw,
    };
    let stamps = match scope.peer {
        Peer::Device { .. } if info.role == ServerRole::Township => {
            stamp(&mut doc, &ticket, info, now)?
        }
        _ => Vec::new(),
    };
    Ok(Checked {
        outcome: Outcome::Stored,
        ticket: number.to_string(),
        point: ticket.point,
        new,
        stamps,
    })
}

/// Who wrote what an upload brings. Every change new here must be by an actor the peer
/// speaks for (a tablet: itself; a township: its server and its devices); recorded events
/// stay as they were; every new event is checked against the role table of the actor that
/// wrote it (a tablet cannot complete a ticket, a township cannot sign for delivery). A store
/// restored from a backup also takes back what it wrote itself (its stamps, its staff's
/// events, never dated in the future) until each peer has synced once in the new epoch.
#[allow(clippy::too_many_arguments)]
fn check_authors(
    doc: &mut TicketDoc,
    before: &Base,
    ticket: &Ticket,
    known: &HashMap<String, Event>,
    actor: &ActorId,
    info: &ServerInfo,
    scope: &Scope,
    now: DateTime<FixedOffset>,
) -> std::result::Result<(), String> {
    let heads = match before {
        Base::Held(heads) => heads.as_slice(),
        Base::First(_) => &[],
    };
    let own = |a: &ActorId| scope.returning && a == actor;
    if doc
        .actors_since(heads)
        .iter()
        .any(|a| !scope.authors.contains_key(a) && !own(a))
    {
        return Err(match scope.peer {
            Peer::Device { .. } => "上传的数据不是本设备写入的（执行者不符）".into(),
            Peer::Township { .. } => "上传的数据含有本乡镇以外的设备或服务器写入的内容".into(),
        });
    }
    let now_held: HashMap<&str, &Event> =
        ticket.events.iter().map(|e| (e.id.as_str(), e)).collect();
    if known
        .iter()
        .any(|(id, e)| now_held.get(id.as_str()) != Some(&e))
    {
        return Err("已记录的事件不能修改或删除".into());
    }
    let authors = doc
        .event_authors()
        .map_err(|_| "上传的数据不是有效的承办单".to_owned())?;
    let own_roles = [info.role.staff_role(), Role::Server];
    for (e, author) in ticket.events.iter().zip(&authors) {
        if known.contains_key(&e.id) {
            continue;
        }
        let roles: &[Role] = match scope.authors.get(author) {
            Some(roles) => roles,
            None if own(author) && e.at <= now => &own_roles,
            None => return Err("事件的记录者不明".into()),
        };
        if !roles.contains(&e.role) || !may_append(e.role, e.kind) {
            // Said of who wrote it: a tablet writing a window's event is an agent.
            let who = if roles.contains(&e.role) {
                e.role
            } else {
                roles[0]
            };
            return Err(format!("{}不能记录“{}”", who.label(), e.kind.label()));
        }
    }
    Ok(())
}

/// Log and append what checking an upload found new.
fn store_checked(tx: &Transaction<'_>, scope: &Scope, checked: &Checked) -> Result<()> {
    let c = checked;
    for (origin, bytes) in [(scope.origin.as_str(), &c.new), ("server", &c.stamps)] {
        if !bytes.is_empty() {
            insert_change(tx, &c.ticket, c.point, &scope.township, origin, bytes)?;
        }
    }
    if !c.new.is_empty() || !c.stamps.is_empty() {
        append_doc(
            tx,
            &c.ticket,
            c.point,
            &[c.new.as_slice(), &c.stamps].concat(),
        )?;
    }
    Ok(())
}

/// Run `f` over `items` on as many threads as there are cores (for enough items to be
/// worth a thread); results in order. A panic in `f` is passed on.
fn par_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    const PER_THREAD: usize = 8;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(items.len() / PER_THREAD).max(1);
    if threads == 1 {
        return items.into_iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let mut rest = items.into_iter();
    let chunks: Vec<Vec<T>> = (0..threads)
        .map(|_| rest.by_ref().take(per).collect())
        .collect();
    std::thread::scope(|s| {
        let f = &f;
        let running: Vec<_> = chunks
            .into_iter()
            .map(|chunk| s.spawn(move || chunk.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        running
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// A ticket's stored changes in their wire form. Stored changes that do not split into
/// Automerge chunks are a damaged store: logged for the operator and not sent.
fn wire_form(dc: DocChanges) -> Option<DocChanges> {
    match pack(&dc.bytes) {
        Ok(bytes) => Some(DocChanges { bytes, ..dc }),
        Err(e) => {
            tracing::error!(ticket = %dc.ticket, error = %e, "stored changes are damaged; not sent");
            None
        }
    }
}

/// Keep a township's newer directory part (the only shared document a client owns). A part
/// that is not the peer's or does not check (one listing this server's own actor for a
/// device, too) is logged and dropped: resending will not help.
fn ingest_shared(
    tx: &Transaction<'_>,
    scope: &Scope,
    doc: &SharedDoc,
    own: &ActorId,
) -> Result<()> {
    let name = SharedName::parse(&doc.name).filter(|name| {
        matches!((name, &scope.peer),
            (SharedName::TownshipDirectory(c), Peer::Township { code }) if c == code)
    });
    let Some(name) = name else {
        tracing::warn!(peer = %scope.origin, "shared document not the peer's: refused");
        return Ok(());
    };
    let refused = match std::str::from_utf8(&doc.body) {
        Err(_) => Some("not UTF-8".to_owned()),
        Ok(text) => match DirectoryPart::from_json(text, Some(&scope.township), &scope.directory) {
            Err(e) => Some(e.to_string()),
            Ok(part) if part.devices.iter().any(|d| d.actor == own.to_hex_string()) => {
                Some("a device listed with this server's actor".into())
            }
            Ok(_) if i64::try_from(doc.version).is_err() => Some("version out of range".into()),
            Ok(_) => None,
        },
    };
    match refused {
        Some(reason) => tracing::warn!(peer = %scope.origin, %reason, "shared document refused"),
        None => {
            put_shared(tx, &name, doc, &scope.origin)?;
        }
    }
    Ok(())
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
    // The events already stamped, gathered once: linear in the events, not quadratic.
    let stamped: HashSet<&str> = ticket
        .events
        .iter()
        .filter(|a| a.kind == EventKind::Arrived)
        .filter_map(|a| a.payload_str("of"))
        .collect();
    for e in ticket.events.iter().filter(|e| {
        e.role == Role::Agent
            && e.kind.moves_clock_from_tablet()
            && !stamped.contains(e.id.as_str())
    }) {
        doc.append(&server_event(EventKind::Arrived, json!({ "of": e.id })))?;
        appended = true;
    }
    if !appended {
        return Ok(Vec::new());
    }
    doc.commit();
    Ok(doc.changes_since(&before))
}

/// What a page carries: ticket changes, shared documents, the next cursor, whether more wait.
type Page = (Vec<DocChanges>, Vec<SharedDoc>, u64, bool);

/// The log rows in the peer's scope after `cursor`, except its own unless `own`, up to a
/// page. A tablet gets its point's tickets and the shared documents of everyone and of its
/// township; a township gets its tickets and shared documents.
fn page(tx: &Transaction<'_>, scope: &Scope, cursor: u64, own: bool) -> Result<Page> {
    let after = i64::try_from(cursor).unwrap_or(i64::MAX);
    // No row has an empty origin: excluding it excludes nothing.
    let skip = if own { "" } else { scope.origin.as_str() };
    let mut stmt;
    let mut rows = match &scope.peer {
        Peer::Device { point, .. } => {
            stmt = tx.prepare(
                "SELECT seq, ticket, bytes FROM changes
                 WHERE point IN (?1, 0) AND seq > ?2 AND origin <> ?3
                   AND (point <> 0 OR township IN (?4, ''))
                 ORDER BY seq",
            )?;
            stmt.query(params![point, after, skip, scope.township])?
        }
        Peer::Township { .. } => {
            stmt = tx.prepare(
                "SELECT seq, ticket, bytes FROM changes
                 WHERE township IN (?1, '') AND seq > ?2 AND origin <> ?3
                 ORDER BY seq",
            )?;
            stmt.query(params![scope.township, after, skip])?
        }
    };
    let mut out: Vec<DocChanges> = Vec::new();
    let mut shared_names: Vec<SharedName> = Vec::new();
    let mut slot: HashMap<String, usize> = HashMap::new();
    let mut total = 0usize;
    let mut last: Option<i64> = None;
    let mut more = false;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let ticket: String = row.get(1)?;
        let bytes: Vec<u8> = row.get(2)?;
        if let Some(name) = ticket.strip_prefix('@') {
            if let Some(name) = SharedName::parse(name) {
                if !shared_names.contains(&name) {
                    shared_names.push(name);
                }
            }
            last = Some(seq);
            continue;
        }
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
    drop(rows);
    let mut shared = Vec::with_capacity(shared_names.len());
    for name in &shared_names {
        shared.extend(crate::store::shared(tx, name)?);
    }
    let next = if more {
        last.unwrap_or(after)
    } else {
        // Nothing left in scope: jump to the newest row anywhere, so the next no-op sync
        // scans nothing.
        tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
            r.get::<_, i64>(0)
        })?
        // Below the client's cursor only after a restore from backup: the client steps back
        // and sees what the restored server logs from now on.
    };
    Ok((out, shared, u64::try_from(next).unwrap_or(0), more))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device_scope(point: u32, device: u32, township: &str) -> Scope {
        let peer = Peer::Device { point, device };
        Scope {
            origin: peer.origin(),
            peer,
            township: township.into(),
            directory: Directory::default(),
            key: String::new(),
            authors: HashMap::new(),
            returning: false,
        }
    }

    #[test]
    fn pages_stop_at_the_budget_skip_own_and_foreign_rows_and_end_at_the_newest_seq() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ServerStore::open(dir.path().join("s.db")).unwrap();
        let tx = store.begin().unwrap();
        let big = vec![7u8; PAGE_BYTES / 2 - 1];
        let scope = device_scope(101, 1, "t1");
        let me = scope.origin.clone();
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
            insert_change(&tx, ticket, point, "t1", origin, &big).unwrap();
        }
        let (p1, _, c1, more) = page(&tx, &scope, 0, false).unwrap();
        assert!(more);
        assert_eq!((c1, p1.len()), (2, 2));
        let (p2, _, c2, more) = page(&tx, &scope, c1, false).unwrap();
        assert!(more);
        // seq 3 (a), then 4 is our own and 5 another point's: skipped; 6 (b).
        assert_eq!(c2, 6);
        assert_eq!(
            p2.iter().map(|d| d.ticket.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let (p3, _, c3, more) = page(&tx, &scope, c2, false).unwrap();
        assert!(!more);
        assert_eq!((c3, p3.len()), (7, 1));
        // Nothing left: the cursor stays at the newest row; rows of one ticket concatenate.
        let (p4, _, c4, more) = page(&tx, &scope, c3, false).unwrap();
        assert!(p4.is_empty() && !more && c4 == 7);
        let small = [1u8, 2, 3];
        insert_change(&tx, "a", 101, "t1", "server", &small).unwrap();
        insert_change(&tx, "a", 101, "t1", "server", &small).unwrap();
        let (p5, _, c5, _) = page(&tx, &scope, 7, false).unwrap();
        assert_eq!((c5, p5.len(), p5[0].bytes.len()), (9, 1, 6));
    }

    #[test]
    fn shared_documents_reach_the_replicas_in_their_scope_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ServerStore::open(dir.path().join("s.db")).unwrap();
        let tx = store.begin().unwrap();
        let doc = |name: &SharedName, version| SharedDoc {
            name: name.to_string(),
            version,
            body: b"{}".to_vec(),
        };
        let mine = SharedName::TownshipDirectory("t1".into());
        let other = SharedName::TownshipDirectory("t2".into());
        assert!(put_shared(
            &tx,
            &SharedName::Catalog,
            &doc(&SharedName::Catalog, 5),
            "admin"
        )
        .unwrap());
        // An older or equal version is not kept or logged again.
        assert!(!put_shared(
            &tx,
            &SharedName::Catalog,
            &doc(&SharedName::Catalog, 5),
            "admin"
        )
        .unwrap());
        assert!(put_shared(&tx, &mine, &doc(&mine, 1), "admin").unwrap());
        assert!(put_shared(&tx, &other, &doc(&other, 1), "admin").unwrap());
        assert!(put_shared(
            &tx,
            &SharedName::Catalog,
            &doc(&SharedName::Catalog, 6),
            "admin"
        )
        .unwrap());

        let (_, shared, cursor, _) = page(&tx, &device_scope(101, 1, "t1"), 0, false).unwrap();
        let names: Vec<_> = shared
            .iter()
            .map(|d| (d.name.as_str(), d.version))
            .collect();
        // The catalog once, at its newest version; the other township's part not at all.
        assert_eq!(names, [("catalog", 6), ("directory:t1", 1)]);
        let (_, shared, _, _) = page(&tx, &device_scope(101, 1, "t1"), cursor, false).unwrap();
        assert!(shared.is_empty());
        let township = Scope {
            peer: Peer::Township { code: "t2".into() },
            origin: "township:t2".into(),
            township: "t2".into(),
            directory: Directory::default(),
            key: String::new(),
            authors: HashMap::new(),
            returning: false,
        };
        let (_, shared, _, _) = page(&tx, &township, 0, false).unwrap();
        let names: Vec<_> = shared.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["catalog", "directory:t2"]);
    }
}
