//! HTTPS for the servers: the rustls config `serve` uses when `daiban.toml` has `[tls]`, the
//! district's CA a township pins (`parent_ca`), and `sync-server make-cert`'s self-signed CA
//! and server certificate for a test install.
//!
//! rustls on ring only (no aws-lc, no OpenSSL). TLS 1.3; ECDSA P-256 keys (the smallest
//! certificate and signatures on a GPRS link); the server sends only its own certificate
//! (tablets hold the CA) and one session ticket per handshake, kept in a server-side cache so
//! a tablet's next sync resumes without the certificate.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerSessionMemoryCache;
use rustls::ServerConfig;

use crate::config::{Config, TlsFiles};
use crate::error::{Error, Result};

/// Sessions the server remembers for resumption (a township's tablets, a district's
/// townships, with room to spare; each a few hundred bytes).
const SESSIONS: usize = 4096;

/// What `make-cert` writes: the CA tablets pin, the server's certificate and its key.
pub struct CertPair {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// The file names `make-cert` writes into its output directory.
pub const CA_FILE: &str = "ca.pem";
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";

/// A new CA and a server certificate it signed for `names` (DNS names or IP addresses). The
/// CA's key is not kept: to renew or add a name, make a new pair and pin the new `ca.pem`.
/// Valid from 2020 to 2050, so a tablet whose clock is wrong by years still connects (the
/// legal clock is the server's anyway).
pub fn make_cert(names: &[String]) -> Result<CertPair> {
    let first = names
        .first()
        .ok_or_else(|| Error::BadRequest("make-cert needs at least one --name".into()))?;
    let bad = |e: rcgen::Error| Error::BadRequest(format!("certificate: {e}"));
    let ca_key = KeyPair::generate().map_err(bad)?;
    let mut ca = CertificateParams::new(Vec::new()).map_err(bad)?;
    // A name of its own, so a client pinning another make-cert CA reports an unknown issuer.
    ca.distinguished_name = dn(&format!("Daiban CA {first} {}", crate::random_hex(8)));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca);
    let ca_cert = ca.self_signed(&ca_key).map_err(bad)?;

    let key = KeyPair::generate().map_err(bad)?;
    let mut server = CertificateParams::new(names.to_vec()).map_err(bad)?;
    server.distinguished_name = dn(first);
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut server);
    let cert = server
        .signed_by(&key, &Issuer::new(ca, ca_key))
        .map_err(bad)?;
    Ok(CertPair {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn validity(params: &mut CertificateParams) {
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2050, 1, 1);
}

/// Write a new pair into `out` (created if missing): `ca.pem`, `cert.pem`, `key.pem` (mode
/// 0600). Refuses when any of the three exists, writing nothing. Returns the three paths.
pub fn write_cert(out: &Path, names: &[String]) -> Result<[PathBuf; 3]> {
    let paths = [CA_FILE, CERT_FILE, KEY_FILE].map(|f| out.join(f));
    if let Some(existing) = paths.iter().find(|p| p.exists()) {
        return Err(Error::BadRequest(format!(
            "{} exists; nothing was written (choose another --out)",
            existing.display()
        )));
    }
    let pair = make_cert(names)?;
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    for (path, text, private) in [
        (&paths[0], &pair.ca_pem, false),
        (&paths[1], &pair.cert_pem, false),
        (&paths[2], &pair.key_pem, true),
    ] {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut file = options.open(path).map_err(Error::io(path))?;
        file.write_all(text.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(Error::io(path))?;
    }
    Ok(paths)
}

/// The rustls config for a certificate chain and key (PEM).
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> std::result::Result<ServerConfig, String> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the cert file".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("key: {e}"))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("certificate and key: {e}"))?;
    config.session_storage = ServerSessionMemoryCache::new(SESSIONS);
    // One ticket per handshake: the client spends one on its next sync and gets a new one.
    config.send_tls13_tickets = 1;
    Ok(config)
}

/// The server's TLS config from `[tls]`, or `None` (plain HTTP).
pub fn load(data: &Path, config: &Config) -> Result<Option<Arc<ServerConfig>>> {
    let Some(TlsFiles { cert, key }) = &config.tls else {
        return Ok(None);
    };
    let (cert, key) = (Config::resolve(data, cert), Config::resolve(data, key));
    let cert_pem = std::fs::read(&cert).map_err(Error::io(&cert))?;
    let key_pem = std::fs::read(&key).map_err(Error::io(&key))?;
    let tls = server_config(&cert_pem, &key_pem).map_err(|message| Error::Config {
        path: Config::path(data),
        message: format!("[tls] {} / {}: {message}", cert.display(), key.display()),
    })?;
    Ok(Some(Arc::new(tls)))
}

/// The district's CA certificate a township pins (`parent_ca`), checked, or `None`.
pub fn parent_ca(data: &Path, config: &Config) -> Result<Option<Vec<u8>>> {
    let Some(path) = &config.parent_ca else {
        return Ok(None);
    };
    let path = Config::resolve(data, path);
    let pem = std::fs::read(&path).map_err(Error::io(&path))?;
    agent_core::sync::tls::check_ca(&pem).map_err(|e| Error::Config {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(Some(pem))
}
