//! Daiban's township / district server.
//!
//! - [`admin`]: init, imports and serve, shared by the CLI and the in-process demo.
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
//!
//! See docs/SYNC.md for the protocol.

pub mod accounts;
pub mod admin;
pub mod config;
pub mod console;
pub mod enroll;
pub mod error;
pub mod fault;
pub mod http;
pub mod index;
pub mod public;
pub mod staff;
pub mod store;
pub mod sync;
pub mod throttle;
pub mod tls;
pub mod upstream;

pub use error::{Error, Result};

/// Server time in China Standard Time: the legal clock of every stamp and staff event.
pub fn now() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::Utc::now().with_timezone(&agent_core::store::china_offset())
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
