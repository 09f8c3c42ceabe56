//! The sync client, one for tablets and for township servers relaying to their district:
//! one round trip per page, the whole outbox batched into it, the same bytes retried when the
//! link drops. What it syncs is a [`Replica`]: the tablet's [`Store`] here, the township's
//! server store in sync-server.
//!
//! HTTP or HTTPS: an [`Endpoint`] is the server's URL and, for `https://`, the CA certificate
//! pinned for it (`sync::tls`: rustls on ring, TLS sessions resumed across syncs).
//!
//! On GPRS the headers of a round trip cost more than a no-op's bodies, so a request carries
//! no content type (the path names the body): `host`, `content-length` and reqwest's
//! `accept: */*`.

use std::time::Duration;

use crate::crypto::identity::SigningKey;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::sync::pack::pack;
pub use crate::sync::tls::Endpoint;
use crate::sync::wire::{
    decode_response, encode, sign_request, DocChanges, Outcome, Peer, Sender, SharedDoc,
    SyncRequest, PAGE_BYTES, PROTOCOL_VERSION,
};

/// Attempts of one request (the same bytes each time) before giving up on the link.
const ATTEMPTS: u32 = 3;
/// Longest one attempt may take, answer included.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Rounds in one sync before stopping (a backlog pages through in far fewer).
const MAX_ROUNDS: u32 = 10_000;
/// Tickets asked whole in one request (the server sends at most as many).
pub const MAX_WHOLE: usize = 100;

/// One ticket's changes on their way up, with what the replica needs to record the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload<M> {
    pub changes: DocChanges,
    pub mark: M,
}

/// A replica that syncs with a server above it. Every method is a short, self-contained step
/// (its own transaction), so a host may hold its lock per step and never across the network.
pub trait Replica {
    /// What an acknowledgement needs to know of an upload (the tablet: the document's heads;
    /// a township: how far in its change log the upload reached).
    type Mark;

    fn peer(&self) -> Result<Peer>;
    /// The key this replica signs its requests with (registered at enrollment).
    fn signing_key(&mut self) -> Result<SigningKey>;
    /// Tickets with changes the server lacks, oldest first, up to about `max_bytes`.
    fn outbox(&mut self, max_bytes: usize) -> Result<Vec<Upload<Self::Mark>>>;
    /// The server stored (`refused` = `None`) or refused the upload.
    fn acknowledge(&mut self, upload: &Upload<Self::Mark>, refused: Option<&str>) -> Result<()>;
    /// The server lacks the history of this ticket: offer the whole ticket next round.
    fn send_whole(&mut self, upload: &Upload<Self::Mark>) -> Result<()>;
    /// Shared documents this replica owns and has not sent yet.
    fn shared_outbox(&mut self) -> Result<Vec<SharedDoc>>;
    /// The server answered a request that carried these shared documents.
    fn shared_sent(&mut self, docs: &[SharedDoc]) -> Result<()>;
    /// Apply one ticket's changes from the server.
    fn apply(&mut self, changes: &DocChanges) -> Result<()>;
    /// Keep a shared document from the server if it is newer than the one held.
    fn apply_shared(&mut self, doc: &SharedDoc) -> Result<()>;
    /// The server's change sequence this replica has seen (0 before the first sync).
    fn cursor(&mut self) -> Result<u64>;
    fn set_cursor(&mut self, cursor: u64) -> Result<()>;
    /// The next request counter, stored before it is used; see [`next_counter`].
    fn next_counter(&mut self) -> Result<u64>;
    /// The server epoch of the last completed sync (0: none).
    fn epoch(&mut self) -> Result<u64>;
    fn set_epoch(&mut self, epoch: u64) -> Result<()>;
    /// The server was restored: forget every acknowledgement, so everything goes up again.
    fn forget_acknowledged(&mut self) -> Result<()>;
    /// Tickets whose changes from the server did not apply; fetched whole at later syncs
    /// until they do (kept across syncs, so one bad ticket never holds up the others).
    fn pending_whole(&mut self) -> Result<Vec<String>>;
    fn set_pending_whole(&mut self, tickets: &[String]) -> Result<()>;
    /// The host asked to stop.
    fn cancelled(&self) -> bool;
}

/// The counter after `stored`: strictly greater, and at least the clock's milliseconds, so a
/// replica restored from a backup (or reinstalled) still numbers past what the server saw.
pub fn next_counter(stored: u64) -> u64 {
    let millis = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    stored.saturating_add(1).max(millis)
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SyncReport {
    /// Round trips made.
    pub rounds: u32,
    /// Tickets the server stored.
    pub uploaded: usize,
    /// Tickets the server refused (each keeps its reason in the store).
    pub refused: usize,
    /// Ticket updates applied from the server.
    pub downloaded: usize,
    /// Shared documents (catalog, calendar, directory) received.
    pub shared: usize,
    /// Server updates this replica could not apply even whole; those tickets are fetched
    /// whole again at the next sync.
    pub failed: usize,
    /// HTTP bodies, up and down.
    pub bytes_up: usize,
    pub bytes_down: usize,
}

/// Sync a tablet's store with its township server at `server`: a base URL (e.g.
/// `http://127.0.0.1:8700`), or an [`Endpoint`] with the pinned CA for `https://`. The host's
/// cancel ([`crate::store::Interrupter`]) stops it between round trips; what was already
/// acknowledged or applied stays, the rest goes next time. A device its township revoked is
/// wiped ([`Store::wipe`]) and gets [`Error::Revoked`] listing what never reached the township.
pub fn sync_now<'a>(store: &mut Store, server: impl Into<Endpoint<'a>>) -> Result<SyncReport> {
    store.reset_interrupt();
    let synced = sync_with(store, server, &mut |_| {});
    wipe_if_revoked(store, synced)
}

/// After a sync: when the server said the device is revoked, wipe the store and name the
/// tickets the township never received.
pub fn wipe_if_revoked<T>(store: &mut Store, synced: Result<T>) -> Result<T> {
    match synced {
        Err(Error::Revoked { reason, .. }) => {
            let unsynced = store.wipe()?;
            Err(Error::Revoked { reason, unsynced })
        }
        other => other,
    }
}

/// Sync any replica with `server` (a base URL or an [`Endpoint`]); `progress` sees the running
/// report after every round trip.
pub fn sync_with<'a, R: Replica>(
    replica: &mut R,
    server: impl Into<Endpoint<'a>>,
    progress: &mut dyn FnMut(&SyncReport),
) -> Result<SyncReport> {
    let server = server.into();
    let client = crate::sync::tls::http_client(&server, TIMEOUT)?;
    let url = format!("{}/v1/sync", server.url.trim_end_matches('/'));
    let peer = replica.peer()?;
    let key = replica.signing_key()?;
    let mut report = SyncReport::default();
    // Tickets to fetch whole (kept by the replica), and those asked in this sync.
    let mut queue = replica.pending_whole()?;
    let mut asked: Vec<String> = Vec::new();
    while report.rounds < MAX_ROUNDS {
        if replica.cancelled() {
            return Err(Error::Interrupted);
        }
        let outgoing = replica.outbox(PAGE_BYTES)?;
        let shared = replica.shared_outbox()?;
        let ask: Vec<String> = queue
            .iter()
            .filter(|t| !asked.contains(t))
            .take(MAX_WHOLE)
            .cloned()
            .collect();
        asked.extend(ask.iter().cloned());
        let request = SyncRequest {
            v: PROTOCOL_VERSION,
            peer: peer.clone(),
            counter: replica.next_counter()?,
            cursor: replica.cursor()?,
            epoch: replica.epoch()?,
            changes: outgoing
                .iter()
                .map(|o| wire_form(&o.changes))
                .collect::<Result<_>>()?,
            shared,
            whole: ask,
        };
        let body = encode(&request, Sender::Client).map_err(|e| Error::Sync(e.to_string()))?;
        let body = sign_request(body, &key);
        report.bytes_up += body.len();
        let answer = post(&client, &url, body, &|| replica.cancelled())?;
        report.bytes_down += answer.len();
        report.rounds += 1;
        let response = decode_response(&answer).map_err(|e| Error::Sync(e.to_string()))?;
        if response.reset {
            // Nothing of this request's uploads is acknowledged below: all goes again whole.
            replica.forget_acknowledged()?;
            replica.set_epoch(0)?;
        }
        if !request.shared.is_empty() && !response.reset {
            replica.shared_sent(&request.shared)?;
        }

        let mut answered = 0;
        for result in response.results.iter().filter(|_| !response.reset) {
            let Some(sent) = outgoing.iter().find(|o| o.changes.ticket == result.ticket) else {
                continue;
            };
            answered += 1;
            match &result.outcome {
                Outcome::Stored => {
                    replica.acknowledge(sent, None)?;
                    report.uploaded += 1;
                }
                Outcome::Refused(reason) => {
                    replica.acknowledge(sent, Some(reason))?;
                    report.refused += 1;
                }
                Outcome::SendWhole => replica.send_whole(sent)?,
            }
        }
        for doc in &response.shared {
            match replica.apply_shared(doc) {
                Ok(()) => report.shared += 1,
                Err(Error::Interrupted) => return Err(Error::Interrupted),
                // A newer version replaces it; nothing else waits on it.
                Err(_) => report.failed += 1,
            }
        }
        // A ticket asked whole comes first in `changes`: once that applies, it is healed.
        // A change that does not apply (history this replica lost in a restore, a damaged
        // copy) puts its ticket in the queue instead of holding the cursor, so the other
        // tickets keep flowing; the whole ticket comes next round, or at the next sync.
        let mut healed: Vec<&str> = Vec::new();
        for change in &response.changes {
            let whole = request.whole.contains(&change.ticket);
            match replica.apply(change) {
                Ok(()) => {
                    report.downloaded += 1;
                    if whole && !healed.contains(&change.ticket.as_str()) {
                        healed.push(&change.ticket);
                    }
                }
                Err(Error::Interrupted) => return Err(Error::Interrupted),
                Err(_) if whole => report.failed += 1,
                Err(_) => {
                    if !queue.contains(&change.ticket) {
                        queue.push(change.ticket.clone());
                    }
                }
            }
        }
        queue.retain(|t| !healed.contains(&t.as_str()));
        replica.set_pending_whole(&queue)?;
        replica.set_cursor(response.cursor)?;
        // The epoch is kept once a whole pass completed in it; after a reset the re-upload
        // and the full download are still to come.
        if !response.more && !response.reset {
            replica.set_epoch(response.epoch)?;
        }
        progress(&report);
        // Done when the server has nothing more, nothing of ours waits (or the server
        // answered none of what we sent: no progress to be made now), and no ticket waits
        // to be fetched whole in this sync.
        if !response.more
            && !response.reset
            && queue.iter().all(|t| asked.contains(t))
            && (answered == 0 || replica.outbox(1)?.is_empty())
        {
            break;
        }
    }
    Ok(report)
}

/// A ticket's changes in their wire form. Automerge's own output always packs; anything
/// else is a damaged copy, named so the agent can report it.
fn wire_form(dc: &DocChanges) -> Result<DocChanges> {
    let bytes = pack(&dc.bytes)
        .map_err(|e| Error::Sync(format!("办件{}的数据无法上传：{e}", dc.ticket)))?;
    Ok(DocChanges {
        ticket: dc.ticket.clone(),
        bytes,
    })
}

/// POST the body, retrying the same bytes when the link fails (the server answers an exact
/// retry with the same response); the host's cancel stops it between attempts.
pub(crate) fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    body: Vec<u8>,
    cancelled: &dyn Fn() -> bool,
) -> Result<Vec<u8>> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
            if cancelled() {
                return Err(Error::Interrupted);
            }
        }
        match client.post(url).body(body.clone()).send() {
            Ok(resp) if resp.status().is_success() => match resp.bytes() {
                Ok(b) => return Ok(b.to_vec()),
                // The response was cut off: the same request again gets the same answer.
                Err(e) => last = e.to_string(),
            },
            // The server failed (its transaction rolled back): the same request may succeed.
            Ok(resp) if resp.status().is_server_error() => last = resp.status().to_string(),
            // This device was revoked: it is to stop syncing and wipe.
            Ok(resp) if resp.status() == reqwest::StatusCode::GONE => {
                return Err(Error::Revoked {
                    reason: resp.text().unwrap_or_default().chars().take(200).collect(),
                    unsynced: Vec::new(),
                });
            }
            // The server understood and said no: retrying the same request will not help.
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().unwrap_or_default();
                return Err(Error::Sync(format!(
                    "{status}: {}",
                    text.chars().take(200).collect::<String>()
                )));
            }
            Err(e) => {
                let (text, certificate) = crate::sync::tls::describe(&e);
                if certificate {
                    // Not the link: the same server will present the same certificate.
                    return Err(Error::Sync(format!(
                        "服务器证书验证失败 / the server's certificate was refused: {text}"
                    )));
                }
                last = text;
            }
        }
    }
    Err(Error::Sync(format!("服务器无法连接：{last}")))
}
