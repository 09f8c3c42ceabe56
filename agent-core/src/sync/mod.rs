//! Sync: the wire messages shared by tablets and servers, and the tablet's client. The
//! store's side of sync state is in `store::outbox`. Work in progress for issue 5; see
//! docs/SYNC.md.

pub mod client;
pub mod wire;
