//! Sync: the wire messages shared by tablets and servers, the shared documents (catalog,
//! calendar, directory) and the client both tablets and township servers run. The tablet
//! store's side of sync state is in `store::outbox`. See docs/SYNC.md.

pub mod client;
pub mod shared;
pub mod wire;
