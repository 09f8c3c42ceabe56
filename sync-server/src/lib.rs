//! Daiban's township / district server.
//!
//! - [`admin`]: init, imports and serve, shared by the CLI and the in-process demo.
//! - [`catalog`]: the catalog's item versions as published, and the district's edits.
//! - [`config`]: `daiban.toml` in the data directory (role, name, server id, listen address).
//! - [`store`]: one SQLite file: full Automerge documents, the change log clients page through
//!   with a cursor, and each device's last request for idempotent retries.
//! - [`sync`]: `POST /v1/sync` processing, one SQLite transaction per request, including the
//!   server stamps (`received`, `arrived`) that give tickets their legal time.
//! - [`staff`]: staff events appended on the server (the JSON API and, later, the console).
//! - [`upstream`]: a township's sync with its district, with the tablet's client code.
//! - [`fault`]: named stopping points for the SIGKILL tests (inert unless `DAIBAN_FAULT`).
//! - [`http`]: the axum routers, the one error-to-response mapping, serving HTTP or HTTPS.
//! - [`tls`]: the rustls server config from `[tls]`, the district CA a township pins, and
//!   `make-cert`.
//! - [`accounts`], [`console`], [`public`]: staff accounts and sessions, the web console, the
//!   pages without sign-in.
//! - [`index`], [`supervision`], [`reports`]: the ticket index the console reads, the
//!   supervision board and the monthly / annual statistics from it.
//! - [`catalog`]: catalog item versions. [`sms`]: the SMS gateway.
//!
//! See docs/SYNC.md for the protocol.

pub mod accounts;
pub mod admin;
pub mod catalog;
pub mod config;
pub mod console;
pub mod enroll;
pub mod error;
pub mod fault;
pub mod http;
pub mod index;
pub mod public;
pub mod reports;
pub mod sms;
pub mod staff;
pub mod store;
pub mod supervision;
pub mod sync;
pub mod throttle;
pub mod tls;
pub mod upstream;

pub use error::{Error, Result};

/// The environment variable naming a file whose RFC 3339 time [`now`] reads instead of the
/// system clock: for rehearsals and tests that move the calendar day (a deadline turning
/// yellow, then red). Never set on a production server.
pub const CLOCK_FILE_ENV: &str = "DAIBAN_CLOCK_FILE";

/// Server time in China Standard Time: the legal clock of every stamp and staff event.
pub fn now() -> chrono::DateTime<chrono::FixedOffset> {
    let china = agent_core::store::china_offset();
    static FILE: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    if let Some(path) = FILE.get_or_init(|| std::env::var_os(CLOCK_FILE_ENV).map(Into::into)) {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        match chrono::DateTime::parse_from_rfc3339(text.trim()) {
            Ok(t) => return t.with_timezone(&china),
            Err(_) => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    tracing::warn!(path = %path.display(), "clock file unreadable; using the system clock");
                });
            }
        }
    }
    chrono::Utc::now().with_timezone(&china)
}

/// Random hex digits (at most 32): from a fresh Automerge actor id, 16 random bytes.
pub fn random_hex(digits: usize) -> String {
    automerge::ActorId::random()
        .to_hex_string()
        .chars()
        .take(digits)
        .collect()
}

/// A fresh event id for events this server appends (16 hex digits, like the tablet's).
pub(crate) fn new_event_id() -> String {
    random_hex(16)
}
