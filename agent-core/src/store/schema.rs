//! Numbered migrations, applied in one transaction and recorded in `user_version`.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// Every migration in order; index + 1 is the schema version it brings the store to.
const MIGRATIONS: &[&str] = &[include_str!("migrations/001_init.sql")];

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

pub fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Bring the store up to [`LATEST`]; refuses a store made by a newer build.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = version(&tx)?;
    if current > LATEST {
        return Err(Error::NewerDatabase(current));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}
