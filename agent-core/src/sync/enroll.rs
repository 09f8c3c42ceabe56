//! Enrollment: a tablet (or a township server) registers its signing key, its Automerge
//! actor and its identity with the server above it, using a one-time code that server's
//! admin issued (`sync-server enroll-code`). From then on that server accepts only requests
//! signed with this key, and only changes written by this actor. See docs/SYNC.md.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::sync::client::{post, Endpoint};
use crate::sync::wire::{Peer, PROTOCOL_VERSION};

/// `POST` path of an enrollment (JSON both ways).
pub const ENROLL_PATH: &str = "/v1/enroll";

/// What a device or township server registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub v: u32,
    /// The one-time code, as the admin read it out (case, spaces and dashes do not matter).
    pub code: String,
    /// Who enrolls: the point and device number the code was issued for, or a township.
    pub peer: Peer,
    /// Hex Automerge actor id it writes with.
    pub actor: String,
    /// Hex Ed25519 public key it signs sync requests with.
    pub key: String,
}

/// The server's answer to an enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolled {
    /// The township code the peer now belongs to.
    pub township: String,
}

/// Send an enrollment. The server answers a retry of the same enrollment (same code, key
/// and actor) as it answered the first, so a lost answer is safe to retry.
pub fn enroll_with<'a>(
    server: impl Into<Endpoint<'a>>,
    request: &EnrollRequest,
) -> Result<Enrolled> {
    let server = server.into();
    let client = crate::sync::tls::http_client(&server, std::time::Duration::from_secs(60))?;
    let url = format!("{}{ENROLL_PATH}", server.url.trim_end_matches('/'));
    let body = serde_json::to_vec(request)?;
    let answer = post(&client, &url, body, &|| false)?;
    serde_json::from_slice(&answer).map_err(|_| Error::Sync("服务器的注册答复无法识别".into()))
}

/// Enroll this tablet with its township server using the code the township admin gave for
/// this point and device. Makes the device's signing key if it has none.
pub fn enroll<'a>(
    store: &mut Store,
    server: impl Into<Endpoint<'a>>,
    code: &str,
) -> Result<Enrolled> {
    let key = store.signing_key()?;
    let request = EnrollRequest {
        v: PROTOCOL_VERSION,
        code: code.to_owned(),
        peer: Peer::Device {
            point: store.point(),
            device: store.device(),
        },
        actor: store.actor().to_hex_string(),
        key: key.public_hex(),
    };
    let enrolled = enroll_with(server, &request)?;
    store.set_enrolled(&enrolled.township)?;
    Ok(enrolled)
}

/// An enrollment code as typed: upper case, without spaces or dashes (full-width forms
/// folded), so `7kqm-x2pa 9dht` and `7KQMX2PA9DHT` are the same code.
pub fn normalize_code(code: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    code.nfkc()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}
