//! Daiban agent-core: everything a village point does offline.
//!
//! - [`domain`]: catalog, directory, tickets, lifecycle fold, deadlines, validation (pure).
//! - [`doc`]: one Automerge document per ticket.
//! - [`store`]: the device's SQLite store, with personal data sealed at rest.
//! - [`crypto`]: sealing and keyed lookups with the host's key (ring).
//! - [`demo`]: deterministic demo data for examples, tests and demo servers.

pub mod crypto;
pub mod demo;
pub mod doc;
pub mod domain;
pub mod error;
mod reader;
pub mod store;
pub mod sync;

pub use error::{Error, Result};
