//! What the cloud SMS providers ([`super::aliyun`], [`super::tencent`]) share: a secret that
//! never prints, SHA-256 / HMAC on ring, RFC 3986 percent-encoding, the signed request as
//! built (so tests can compare it with the official SDKs' requests byte for byte), the HTTPS
//! client (rustls on ring, Mozilla's roots; no OpenSSL, no aws-lc) and sending a request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ring::{digest, hmac, rand::SecureRandom};
use serde::Deserialize;

/// A credential (AccessKey secret, SecretKey) from the config: `Debug` and `Display` print
/// `***`, so a config can be logged or shown in an error without it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself: for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A request ready to send, exactly as signed: every header here is sent as is (`host`
/// included, so the one signed is the one on the wire), the body byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub method: &'static str,
    /// Scheme, authority, path and the query as sent.
    pub url: String,
    /// In the order sent; names as the provider's SDK writes them.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The canonical request the signature covers (for tests and debugging; holds no secret).
    pub canonical_request: String,
}

impl SignedRequest {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A provider endpoint from the config: `https://host[:port]` (or `http://` for a test
/// server), with no path beyond `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` or `http`.
    pub scheme: &'static str,
    /// The `Host` header: host and port, the port left out when it is the scheme's default.
    pub host: String,
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let bad = |why: &str| format!("短信服务地址无效 / bad SMS provider endpoint {s:?}: {why}");
        let lower = s.trim().to_ascii_lowercase();
        let (scheme, rest) = if let Some(rest) = lower.strip_prefix("https://") {
            ("https", rest)
        } else if let Some(rest) = lower.strip_prefix("http://") {
            ("http", rest)
        } else {
            return Err(bad("it must start with https://"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(bad("no host"));
        }
        if rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad("only scheme, host and port are allowed"));
        }
        let default_port = if scheme == "https" { ":443" } else { ":80" };
        let host = rest.strip_suffix(default_port).unwrap_or(rest).to_string();
        Ok(Endpoint { scheme, host })
    }

    /// `scheme://host/`.
    pub fn base_url(&self) -> String {
        format!("{}://{}/", self.scheme, self.host)
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

/// HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

/// Percent-encoding per RFC 3986: everything but `A-Z a-z 0-9 - _ . ~` as `%XX` (uppercase),
/// UTF-8 first; so a space is `%20`, `*` is `%2A`, `~` stays (Aliyun's rule, Python's
/// `quote(s, safe='~')`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A fresh random nonce: 32 lowercase hex digits (the shape of the Aliyun SDK's MD5 nonce).
pub fn random_nonce() -> String {
    let mut bytes = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // The OS random source failed (never seen on Linux): a time-based nonce still differs
        // per call, which is all the provider checks.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = t.to_le_bytes();
    }
    hex::encode(bytes)
}

/// How long one request to a provider may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The HTTP client for the SMS providers: rustls on ring, TLS 1.2 and 1.3, verified against
/// Mozilla's roots (webpki-roots) and never the system's; `HTTPS_PROXY` is honoured. Plain
/// `http://` works too (tests).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// What came back from a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The start of a provider's answer, for a failure's reason (at most 200 characters).
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

/// Send a built request and read the provider's answer with `interpret`: a request that could
/// not be built is a final failure, no answer one worth retrying. Never panics.
pub async fn deliver(
    client: &reqwest::Client,
    built: Result<SignedRequest, String>,
    provider: &str,
    interpret: fn(u16, &[u8]) -> super::Handed,
) -> super::Handed {
    let req = match built {
        Ok(req) => req,
        Err(reason) => {
            return super::Handed::Failed {
                reason,
                retry: false,
            }
        }
    };
    match execute(client, &req).await {
        Ok(reply) => interpret(reply.status, &reply.body),
        Err(e) => super::Handed::Failed {
            reason: format!("短信平台无应答 / no answer from {provider}: {e}"),
            retry: true,
        },
    }
}

/// Send `req`; `Err`: no answer (connection refused, timeout, TLS…), with the whole cause
/// chain as text, the URL left out (Aliyun's holds the phone number and the parameters).
pub async fn execute(client: &reqwest::Client, req: &SignedRequest) -> Result<Reply, String> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut builder = client.request(method, &req.url);
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let response = builder
        .body(req.body.clone())
        .send()
        .await
        .map_err(|e| describe(&e.without_url()))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| describe(&e.without_url()))?;
    Ok(Reply {
        status,
        body: body.to_vec(),
    })
}

fn describe(e: &reqwest::Error) -> String {
    // Without the URL: Aliyun's carries the phone number and the message's parameters.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A provider's inbound-reply callback that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackError(pub String);

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CallbackError {}

/// A sender's number as a provider gives it, without `+86` / `86` / `0086` (only when what
/// remains is an 11-digit mainland mobile number) and spaces.
pub fn strip_china_prefix(phone: &str) -> String {
    let p: String = phone.chars().filter(|c| !c.is_whitespace()).collect();
    for prefix in ["+86", "0086", "86"] {
        if let Some(rest) = p.strip_prefix(prefix) {
            if rest.len() == 11 && rest.starts_with('1') && rest.bytes().all(|b| b.is_ascii_digit())
            {
                return rest.to_string();
            }
        }
    }
    p
}
