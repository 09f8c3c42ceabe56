//! The sync client a tablet (and later a township server relaying upward) runs: one
//! round trip per page, the whole outbox batched into it, retried as-is when the link drops.
//!
//! HTTP only for now; TLS (rustls with ring) and request signatures come with issue 6.

use std::time::Duration;

use crate::domain::number::TicketNumber;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::sync::wire::{
    decode_response, encode, DocChanges, SyncRequest, CONTENT_TYPE, PAGE_BYTES, PROTOCOL_VERSION,
};

/// Attempts of one request (the same bytes each time) before giving up on the link.
const ATTEMPTS: u32 = 3;
/// Rounds in one sync before stopping (a backlog pages through in far fewer).
const MAX_ROUNDS: u32 = 10_000;

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Round trips made.
    pub rounds: u32,
    /// Tickets the server stored.
    pub uploaded: usize,
    /// Tickets the server refused (each keeps its reason in the store).
    pub refused: usize,
    /// Ticket updates applied from the server.
    pub downloaded: usize,
    /// Server updates this device could not apply; the cursor stays, so the server sends
    /// them again next time.
    pub failed: usize,
    /// HTTP bodies, up and down.
    pub bytes_up: usize,
    pub bytes_down: usize,
}

/// Sync the store with the township server at `base_url` (e.g. `http://127.0.0.1:8700`).
/// The host's cancel ([`crate::store::Interrupter`]) stops it between round trips; what was
/// already acknowledged or applied stays, the rest goes next time.
pub fn sync_now(store: &mut Store, base_url: &str) -> Result<SyncReport> {
    store.reset_interrupt();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| Error::Sync(e.to_string()))?;
    let url = format!("{}/v1/sync", base_url.trim_end_matches('/'));
    let mut report = SyncReport::default();
    while report.rounds < MAX_ROUNDS {
        if store.is_interrupted() {
            return Err(Error::Interrupted);
        }
        let outgoing = store.outbox(PAGE_BYTES)?;
        let request = SyncRequest {
            v: PROTOCOL_VERSION,
            point: store.point(),
            device: store.device(),
            counter: store.next_sync_counter()?,
            cursor: store.sync_cursor()?,
            changes: outgoing
                .iter()
                .map(|o| DocChanges {
                    ticket: o.number.to_string(),
                    bytes: o.bytes.clone(),
                })
                .collect(),
        };
        let body = encode(&request).map_err(|e| Error::Sync(e.to_string()))?;
        report.bytes_up += body.len();
        let answer = post(&client, &url, body)?;
        report.bytes_down += answer.len();
        report.rounds += 1;
        let response = decode_response(&answer).map_err(|e| Error::Sync(e.to_string()))?;

        let mut answered = 0;
        for result in &response.results {
            let Some(sent) = outgoing.iter().find(|o| o.number.as_str() == result.ticket) else {
                continue;
            };
            store.acknowledge(sent, result.refused.as_deref())?;
            answered += 1;
            match result.refused {
                None => report.uploaded += 1,
                Some(_) => report.refused += 1,
            }
        }
        let mut failed_now = 0;
        for change in &response.changes {
            let applied = TicketNumber::parse(&change.ticket)
                .map_err(Error::from)
                .and_then(|n| store.apply_changes(&n, &change.bytes));
            match applied {
                Ok(_) => report.downloaded += 1,
                Err(Error::Interrupted) => return Err(Error::Interrupted),
                Err(_) => failed_now += 1,
            }
        }
        // If anything failed to apply, keep the old cursor: the server sends the page again
        // (what did apply is ignored the second time) rather than the update being lost.
        if failed_now == 0 {
            store.set_sync_cursor(response.cursor)?;
        }
        report.failed += failed_now;
        if failed_now > 0 {
            break;
        }
        // Done when the server has nothing more and nothing of ours waits (or the server
        // answered none of what we sent: no progress to be made now).
        if !response.more && (answered == 0 || store.outbox(1)?.is_empty()) {
            break;
        }
    }
    Ok(report)
}

/// POST the body, retrying the same bytes when the link fails (the server answers an exact
/// retry with the same response).
fn post(client: &reqwest::blocking::Client, url: &str, body: Vec<u8>) -> Result<Vec<u8>> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
        }
        let sent = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body.clone())
            .send();
        match sent {
            Ok(resp) if resp.status().is_success() => {
                return resp
                    .bytes()
                    .map(|b| b.to_vec())
                    .map_err(|e| Error::Sync(e.to_string()));
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
            Err(e) => last = e.to_string(),
        }
    }
    Err(Error::Sync(format!("服务器无法连接：{last}")))
}
