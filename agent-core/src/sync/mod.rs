//! Sync: the wire messages shared by tablets and servers, the shared documents (catalog,
//! calendar, directory) and the client both tablets and township servers run. The tablet
//! store's side of sync state is in `store::outbox`. `pack` shrinks change chunks for the
//! wire by eliding their dependency hashes. See docs/SYNC.md.

pub mod client;
pub mod enroll;
pub mod pack;
pub mod shared;
pub mod tls;
pub mod wire;
