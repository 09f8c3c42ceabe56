//! The sync protocol's messages: one request and one response per round trip, each a
//! postcard-encoded struct compressed as one zstd frame (Automerge changes of many tickets
//! compress far better together than one by one; zstd takes ~15 % off what deflate leaves,
//! see [`Sender`]), primed with a dictionary both ends ship ([`DICTIONARY`]): a village
//! sync carries a handful of tickets, too few to learn the message's shape from. Decoding
//! is bounded: a message over [`MAX_WIRE_BYTES`] compressed or [`MAX_DECODED_BYTES`]
//! decompressed is refused before it is parsed. See docs/SYNC.md.

use std::io::Read;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::crypto::identity::{SigningKey, SIGNATURE_LEN};

/// Protocol version carried in every message (2: peer identity and shared documents; 3:
/// changes packed, see [`super::pack`], and zstd with [`DICTIONARY`]; 4: requests signed,
/// see [`sign_request`]).
pub const PROTOCOL_VERSION: u32 = 4;

/// Who compresses a message, which sets how hard: a client's link is the bottleneck, so it
/// spends CPU on zstd 15 (where zstd starts optimal parsing: ~15 % smaller than deflate here,
/// ~14 MB/s of raw changes per core); a server answers every tablet of a township from one
/// store, so it uses zstd 9 (~4 % larger, about 15 times faster, keeping ingest fast).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Client,
    Server,
}

impl Sender {
    pub fn level(self) -> i32 {
        match self {
            Sender::Client => 15,
            Sender::Server => 9,
        }
    }

    /// The dictionary prepared for this level: preparing it costs more than compressing a
    /// small message, so it is done once.
    fn dictionary(self) -> &'static zstd::dict::EncoderDictionary<'static> {
        static CLIENT: OnceLock<zstd::dict::EncoderDictionary<'static>> = OnceLock::new();
        static SERVER: OnceLock<zstd::dict::EncoderDictionary<'static>> = OnceLock::new();
        let cell = match self {
            Sender::Client => &CLIENT,
            Sender::Server => &SERVER,
        };
        cell.get_or_init(|| zstd::dict::EncoderDictionary::copy(DICTIONARY, self.level()))
    }
}

/// Samples of sync messages made from Daiban's demo data (`examples/wire_dictionary.rs`).
/// Part of the protocol: a new dictionary is a new [`PROTOCOL_VERSION`].
pub const DICTIONARY: &[u8] = include_bytes!("wire.dict");
/// Largest compressed message either side accepts.
pub const MAX_WIRE_BYTES: usize = 4 << 20;
/// Largest inflated message (guards against decompression bombs).
pub const MAX_DECODED_BYTES: usize = 16 << 20;
/// Budget a sender fills a message up to before paging (raw changes, before compression).
pub const PAGE_BYTES: usize = 256 << 10;

/// One ticket's changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocChanges {
    /// Ticket number.
    pub ticket: String,
    /// Automerge changes (or a whole saved document) in their packed form
    /// ([`super::pack::pack`]): dependency hashes shortened to what the receiver resolves.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// A document every replica in its scope holds whole, edited only by its owner: the catalog,
/// the calendar and the directory parts. A higher version replaces a lower one; see
/// [`SharedName`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedDoc {
    pub name: String,
    /// Increases with every edit at the owner.
    pub version: u64,
    /// JSON (catalog, directory parts) or CSV (calendar), UTF-8.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// Who is syncing: a tablet with its server, or a township server with its district.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Peer {
    /// A tablet: its point and device numbers.
    Device { point: u32, device: u32 },
    /// A township server relaying upward: its township code from the directory.
    Township { code: String },
}

impl Peer {
    /// The change-log origin of this peer's uploads (a peer never gets its own back).
    pub fn origin(&self) -> String {
        match self {
            Peer::Device { point, device } => format!("device:{point}:{device}"),
            Peer::Township { code } => format!("township:{code}"),
        }
    }
}

/// A client asks: here is what I have for you; what is new?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub v: u32,
    pub peer: Peer,
    /// Strictly increasing per peer; an exact retry repeats it (idempotency key, and with
    /// the signature of issue 6 the replay guard).
    pub counter: u64,
    /// The server's change sequence this client has seen.
    pub cursor: u64,
    /// The server's epoch this client completed its last sync in (0: none yet). A server
    /// restored from a backup has a new epoch and may have forgotten what it acknowledged.
    pub epoch: u64,
    pub changes: Vec<DocChanges>,
    /// Shared documents this client owns and changed (a township's directory part).
    pub shared: Vec<SharedDoc>,
    /// Tickets this client needs whole: changes it received build on history it lacks (it
    /// was restored from an older backup).
    pub whole: Vec<String>,
}

/// What the server did with one uploaded ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocResult {
    pub ticket: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Stored,
    /// Refused, with the reason in Chinese for the agent; nothing was stored.
    Refused(String),
    /// The server lacks the history these changes build on (it was restored from an older
    /// backup): send the whole ticket. Nothing was stored.
    SendWhole,
}

/// The server answers: per-ticket results, everything new in the client's scope since its
/// cursor (up to a page), and the cursor to send next time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub v: u32,
    pub cursor: u64,
    /// The server's epoch; the client keeps it once a sync completes (`more` false).
    pub epoch: u64,
    /// The server was restored since this client's epoch: what it acknowledged may be lost.
    /// The client re-sends everything (whole) and pages through everything again, its own
    /// changes included.
    pub reset: bool,
    /// More changes are waiting: sync again with the new cursor.
    pub more: bool,
    pub results: Vec<DocResult>,
    pub changes: Vec<DocChanges>,
    /// Shared documents in the client's scope changed since its cursor.
    pub shared: Vec<SharedDoc>,
}

/// Why a message could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("sync message is larger than allowed ({0} bytes)")]
    TooLarge(usize),
    #[error("sync message is not valid: {0}")]
    Malformed(String),
    #[error("sync protocol version {0} is not supported; please update")]
    Version(u32),
}

/// Encode a message for the wire.
pub fn encode<T: Serialize>(msg: &T, sender: Sender) -> Result<Vec<u8>, WireError> {
    let raw = postcard::to_stdvec(msg).map_err(|e| WireError::Malformed(e.to_string()))?;
    compress(&raw, sender).map_err(|e| WireError::Malformed(e.to_string()))
}

/// A zstd frame without what both ends know: the magic number, the dictionary's id and
/// the content size (9 to 10 bytes of every message).
fn compress(raw: &[u8], sender: Sender) -> std::io::Result<Vec<u8>> {
    use zstd::zstd_safe::{CParameter, FrameFormat};
    let mut c = zstd::bulk::Compressor::with_prepared_dictionary(sender.dictionary())?;
    c.set_parameter(CParameter::Format(FrameFormat::Magicless))?;
    c.set_parameter(CParameter::DictIdFlag(false))?;
    c.set_parameter(CParameter::ContentSizeFlag(false))?;
    c.compress(raw)
}

/// Decode a message from the wire, within the size bounds.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    if bytes.len() > MAX_WIRE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let mut raw = Vec::new();
    let limit = u64::try_from(MAX_DECODED_BYTES).unwrap_or(u64::MAX) + 1;
    static PREPARED: OnceLock<zstd::dict::DecoderDictionary<'static>> = OnceLock::new();
    let dictionary = PREPARED.get_or_init(|| zstd::dict::DecoderDictionary::copy(DICTIONARY));
    let decoder = zstd::stream::read::Decoder::with_prepared_dictionary(bytes, dictionary)
        .and_then(|mut d| d.include_magicbytes(false).map(|()| d))
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    decoder
        .take(limit)
        .read_to_end(&mut raw)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if raw.len() > MAX_DECODED_BYTES {
        return Err(WireError::TooLarge(raw.len()));
    }
    postcard::from_bytes(&raw).map_err(|e| WireError::Malformed(e.to_string()))
}

/// A request body: the encoded request followed by the sender's signature of it (64 bytes,
/// [`crate::crypto::identity`]). The signature covers the counter inside, so a request can be
/// neither altered nor replayed under another counter.
pub fn sign_request(frame: Vec<u8>, key: &SigningKey) -> Vec<u8> {
    let signature = key.sign_sync(&frame);
    let mut body = frame;
    body.extend_from_slice(&signature);
    body
}

/// A request body split into the encoded request and its signature.
pub fn split_signature(body: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    if body.len() <= SIGNATURE_LEN {
        return Err(WireError::Malformed("request is not signed".into()));
    }
    Ok(body.split_at(body.len() - SIGNATURE_LEN))
}

/// Decode a request and check its version.
pub fn decode_request(bytes: &[u8]) -> Result<SyncRequest, WireError> {
    let req: SyncRequest = decode(bytes)?;
    if req.v != PROTOCOL_VERSION {
        return Err(WireError::Version(req.v));
    }
    Ok(req)
}

/// Decode a response and check its version.
pub fn decode_response(bytes: &[u8]) -> Result<SyncResponse, WireError> {
    let resp: SyncResponse = decode(bytes)?;
    if resp.v != PROTOCOL_VERSION {
        return Err(WireError::Version(resp.v));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SyncRequest {
        SyncRequest {
            v: PROTOCOL_VERSION,
            peer: Peer::Device {
                point: 101,
                device: 1,
            },
            counter: 7,
            cursor: 12,
            epoch: 3,
            changes: vec![DocChanges {
                ticket: "010101000015".into(),
                bytes: vec![1, 2, 3, 4],
            }],
            shared: vec![],
            whole: vec![],
        }
    }

    #[test]
    fn round_trip_and_an_empty_sync_is_small() {
        let req = request();
        assert_eq!(
            decode_request(&encode(&req, Sender::Client).unwrap()).unwrap(),
            req
        );
        let empty = SyncRequest {
            changes: vec![],
            ..req
        };
        let bytes = encode(&empty, Sender::Client).unwrap();
        assert!(bytes.len() < 40, "{} bytes", bytes.len());
    }

    #[test]
    fn garbage_bombs_and_versions_are_refused() {
        assert!(matches!(
            decode_request(b"not zstd"),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(decode_request(&[]), Err(WireError::Malformed(_))));
        // 64 MiB of zeros compress to a few KiB: refused after 16 MiB of decompression.
        let bomb = compress(&vec![0u8; 64 << 20], Sender::Server).unwrap();
        assert!(bomb.len() < 1 << 20);
        assert!(matches!(decode_request(&bomb), Err(WireError::TooLarge(_))));
        assert!(matches!(
            decode_request(&vec![0u8; MAX_WIRE_BYTES + 1]),
            Err(WireError::TooLarge(_))
        ));
        let future = SyncRequest { v: 99, ..request() };
        assert!(matches!(
            decode_request(&encode(&future, Sender::Client).unwrap()),
            Err(WireError::Version(99))
        ));
    }
}
