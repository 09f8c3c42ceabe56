//! The sync client's HTTP client: plain HTTP, or HTTPS verified against a pinned CA.
//!
//! - rustls on ring only (no aws-lc, no OpenSSL), so the core cross-compiles to Android. reqwest
//!   (0.12: its `rustls-tls-manual-roots-no-provider` feature pulls in no platform verifier and
//!   so no `openssl-probe`) is handed a rustls config made here; no system or
//!   built-in roots are ever consulted: an `https://` server is trusted only when its
//!   certificate chains to the CA the host pinned ([`Endpoint::ca_pem`], the county's or the
//!   township's `ca.pem` from `sync-server make-cert`). An `https://` URL without a pinned CA,
//!   and a pinned CA with an `http://` URL, are refused before any byte is sent.
//! - TLS 1.3 only. One rustls config per pinned CA is kept for the process, so its session
//!   cache outlives the per-sync reqwest client: the next sync resumes the TLS session (no
//!   certificate on the wire) instead of a full handshake. [`forget_sessions`] drops them.
//! - reqwest without a provider of its own panics when any other client in the process is
//!   built before a provider is installed: [`install_crypto_provider`] makes ring the
//!   process default (the sync client does it; test harnesses and programs that build their
//!   own plain `reqwest` clients call it first).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::error::{Error, Result};

/// Where a replica syncs: the server's base URL and, for `https://`, the CA certificate (PEM)
/// its certificate must chain to. A plain `&str` / `&String` converts (no pinned CA), so
/// `sync_now(store, url)` reads as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// e.g. `https://bailin.example:8700` (no path).
    pub url: &'a str,
    /// The pinned CA certificate(s), PEM; required for `https://`.
    pub ca_pem: Option<&'a [u8]>,
}

impl<'a> Endpoint<'a> {
    /// An `https://` server verified against `ca_pem`.
    pub fn pinned(url: &'a str, ca_pem: &'a [u8]) -> Self {
        Endpoint {
            url,
            ca_pem: Some(ca_pem),
        }
    }
}

impl<'a> From<&'a str> for Endpoint<'a> {
    fn from(url: &'a str) -> Self {
        Endpoint { url, ca_pem: None }
    }
}

impl<'a> From<&'a String> for Endpoint<'a> {
    fn from(url: &'a String) -> Self {
        Endpoint::from(url.as_str())
    }
}

impl<'a> From<&Endpoint<'a>> for Endpoint<'a> {
    fn from(e: &Endpoint<'a>) -> Self {
        *e
    }
}

/// Sessions kept per pinned CA (a config built for one CA never resumes a session made
/// under another).
static CONFIGS: Mutex<Vec<(Vec<u8>, Arc<ClientConfig>)>> = Mutex::new(Vec::new());

/// TLS sessions (tickets) each config keeps, per server name.
const SESSIONS: usize = 32;

/// Make ring rustls' process-wide default provider (idempotent). Needed before building any
/// `reqwest` client that is not handed a config (see the module docs).
pub fn install_crypto_provider() {
    // Err: a provider is installed already (ring, the only one built in).
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Forget every kept TLS session: the next HTTPS sync makes a full handshake.
pub fn forget_sessions() {
    CONFIGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clear();
}

/// The HTTP client for one sync with `endpoint` (see the module docs for what is refused).
pub fn http_client(endpoint: &Endpoint, timeout: Duration) -> Result<reqwest::blocking::Client> {
    install_crypto_provider();
    let https = endpoint
        .url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let builder = reqwest::blocking::Client::builder().timeout(timeout);
    let builder =
        match (https, endpoint.ca_pem) {
            (true, Some(ca)) => builder.use_preconfigured_tls((*config(ca)?).clone()),
            (true, None) => return Err(Error::Sync(
                "https 服务器需要固定的根证书（CA），请先配置 / an https server needs a pinned CA \
                 certificate: none was given"
                    .into(),
            )),
            (false, Some(_)) => {
                return Err(Error::Sync(format!(
                "已配置根证书（CA），服务器地址却不是 https：{} / a CA is pinned but the server \
                 URL is not https",
                endpoint.url
            )))
            }
            (false, None) => builder,
        };
    builder.build().map_err(|e| Error::Sync(e.to_string()))
}

/// Check a CA file's contents: how many certificates it holds (at least one).
pub fn check_ca(ca_pem: &[u8]) -> Result<usize> {
    Ok(roots(ca_pem)?.len())
}

/// The kept config for this CA, made on first use.
fn config(ca_pem: &[u8]) -> Result<Arc<ClientConfig>> {
    let mut configs = CONFIGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, config)) = configs.iter().find(|(ca, _)| ca == ca_pem) {
        return Ok(Arc::clone(config));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Sync(format!("TLS: {e}")))?
        .with_root_certificates(roots(ca_pem)?)
        .with_no_client_auth();
    config.resumption = Resumption::in_memory_sessions(SESSIONS);
    let config = Arc::new(config);
    configs.push((ca_pem.to_vec(), Arc::clone(&config)));
    Ok(config)
}

fn roots(ca_pem: &[u8]) -> Result<RootCertStore> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::Sync(format!(
            "根证书（CA）文件无效 / the pinned CA certificate is not valid: {e}"
        ))
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    if roots.is_empty() {
        return Err(bad(&"no certificate in the PEM"));
    }
    Ok(roots)
}

/// A failed request's whole cause chain as text (reqwest's own message names only the URL),
/// and whether it is a certificate the pinned CA does not vouch for.
pub(crate) fn describe(e: &reqwest::Error) -> (String, bool) {
    let mut text = e.to_string();
    let mut certificate = false;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cause {
        if let Some(tls) = rustls_error(err) {
            certificate |= matches!(tls, rustls::Error::InvalidCertificate(_));
        }
        let part = err.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        cause = err.source();
    }
    (text, certificate)
}

/// rustls' error, also behind the `io::Error`s tokio-rustls and hyper wrap it in (an
/// `io::Error`'s `source()` skips the error it wraps).
fn rustls_error<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = err.downcast_ref::<std::io::Error>()?.get_ref()?;
    rustls_error(inner)
}
