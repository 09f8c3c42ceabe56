//! The server's SQLite store: one file in the data directory, WAL, one writer.
//!
//! - `docs`: the full Automerge save per ticket, in clear (servers read, search and mask
//!   documents; the deployment protects server disks).
//! - `changes`: every batch of new changes with its origin; its `seq` is the cursor a client
//!   keeps, so "what is new for point P since cursor C" is one range scan of `(point, seq)`.
//! - `devices`: each device's last request counter and the exact response bytes, so a retry
//!   after a dropped link gets the same answer and changes nothing.
//! - `meta`: the server's Automerge actor, the imported calendar (CSV) and catalog (JSON).

use std::path::{Path, PathBuf};

use automerge::ActorId;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use agent_core::domain::calendar::Calendar;
use agent_core::domain::catalog::Catalog;

use crate::error::{Error, Result};

/// Every migration in order; index + 1 is the schema version it brings the store to.
const MIGRATIONS: &[&str] = &[include_str!("migrations/001_init.sql")];

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// The server store. Methods that write take `&mut self`; the HTTP layer serialises access.
pub struct ServerStore {
    conn: Connection,
    actor: ActorId,
    path: PathBuf,
}

impl ServerStore {
    /// Open (or create) the store at `path`, migrating it to [`LATEST`].
    pub fn open(path: impl AsRef<Path>) -> Result<ServerStore> {
        let path = path.as_ref().to_owned();
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&mut conn)?;
        let actor = match get_meta(&conn, "actor")? {
            Some(hex) => ActorId::try_from(String::from_utf8_lossy(&hex).as_ref())
                .map_err(|_| Error::Internal("stored actor id is invalid".into()))?,
            None => {
                let actor = ActorId::random();
                put_meta(&conn, "actor", actor.to_hex_string().as_bytes())?;
                actor
            }
        };
        Ok(ServerStore { conn, actor, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The Automerge actor this server writes its stamps and staff events with.
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Begin the one write transaction of a request.
    pub fn begin(&mut self) -> Result<Transaction<'_>> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// The working-day calendar: the imported one, else the one shipped with Daiban.
    pub fn calendar(&self) -> Result<Calendar> {
        match get_meta(&self.conn, "calendar")? {
            Some(csv) => Ok(Calendar::parse_csv(&String::from_utf8_lossy(&csv))
                .map_err(agent_core::Error::from)?),
            None => Ok(Calendar::default_cn()),
        }
    }

    pub fn set_calendar(&mut self, calendar: &Calendar) -> Result<()> {
        put_meta(&self.conn, "calendar", calendar.to_csv().as_bytes())
    }

    /// The imported catalog, if any (the district's; flows down as a document later).
    pub fn catalog(&self) -> Result<Option<Catalog>> {
        match get_meta(&self.conn, "catalog")? {
            Some(json) => Ok(Some(
                Catalog::from_json(&String::from_utf8_lossy(&json))
                    .map_err(agent_core::Error::from)?,
            )),
            None => Ok(None),
        }
    }

    pub fn set_catalog(&mut self, catalog: &Catalog) -> Result<()> {
        let json = serde_json::to_vec(catalog).map_err(|e| Error::Internal(e.to_string()))?;
        put_meta(&self.conn, "catalog", &json)
    }

    /// An online backup to `to` (SQLite's backup API: consistent while the server serves).
    pub fn backup_to(&self, to: &Path) -> Result<()> {
        if to.exists() {
            return Err(Error::Io {
                path: to.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "backup file exists; choose a new name",
                ),
            });
        }
        self.conn.backup(
            rusqlite::MAIN_DB,
            to,
            None::<fn(rusqlite::backup::Progress)>,
        )?;
        Ok(())
    }
}

/// Replace the store at `db` with the backup `from`. The server must be stopped. The current
/// database is first copied to `<db>.before-restore-<time>` (never deleted).
pub fn restore(db: &Path, from: &Path) -> Result<PathBuf> {
    check_backup(from)?;
    let stamp = crate::now().format("%Y%m%dT%H%M%S").to_string();
    let aside = PathBuf::from(format!("{}.before-restore-{stamp}", db.display()));
    let mut conn = Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.backup(
        rusqlite::MAIN_DB,
        &aside,
        None::<fn(rusqlite::backup::Progress)>,
    )?;
    conn.restore(
        rusqlite::MAIN_DB,
        from,
        None::<fn(rusqlite::backup::Progress)>,
    )?;
    // Refuse to leave a half-usable file behind: the restored store must open and migrate.
    drop(conn);
    ServerStore::open(db)?;
    Ok(aside)
}

/// A backup must be a sync-server database of a schema this build can read.
fn check_backup(from: &Path) -> Result<()> {
    let bad = || Error::NotAServerDatabase(from.to_owned());
    if !from.is_file() {
        return Err(bad());
    }
    let conn = Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|_| bad())?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|_| bad())?;
    if version > LATEST {
        return Err(Error::NewerDatabase(version));
    }
    let has_changes = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'changes'",
            [],
            |_| Ok(()),
        )
        .optional()
        .map_err(|_| bad())?
        .is_some();
    if version < 1 || !has_changes {
        return Err(bad());
    }
    Ok(())
}

/// Bring the store up to [`LATEST`] in one transaction; refuses a store made by a newer build.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > LATEST {
        return Err(Error::NewerDatabase(current));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub(crate) fn get_meta(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn put_meta(conn: &Connection, key: &str, value: &[u8]) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// A ticket's full saved document, if the server holds it.
pub(crate) fn load_doc(conn: &Connection, ticket: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row("SELECT doc FROM docs WHERE ticket = ?1", [ticket], |r| {
            r.get(0)
        })
        .optional()?)
}

pub(crate) fn save_doc(tx: &Transaction<'_>, ticket: &str, point: u32, doc: &[u8]) -> Result<()> {
    tx.execute(
        "INSERT INTO docs (ticket, point, doc) VALUES (?1, ?2, ?3)
         ON CONFLICT (ticket) DO UPDATE SET doc = excluded.doc",
        params![ticket, point, doc],
    )?;
    Ok(())
}

/// Log a batch of new changes; returns its sequence number.
pub(crate) fn insert_change(
    tx: &Transaction<'_>,
    ticket: &str,
    point: u32,
    origin: &str,
    bytes: &[u8],
) -> Result<i64> {
    tx.execute(
        "INSERT INTO changes (ticket, point, origin, bytes) VALUES (?1, ?2, ?3, ?4)",
        params![ticket, point, origin, bytes],
    )?;
    Ok(tx.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_a_newer_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let actor = ServerStore::open(&path).unwrap().actor().clone();
        // Reopening keeps the actor and does not re-run migrations.
        assert_eq!(ServerStore::open(&path).unwrap().actor(), &actor);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", LATEST + 1)
            .unwrap();
        drop(conn);
        assert!(matches!(
            ServerStore::open(&path),
            Err(Error::NewerDatabase(_))
        ));
    }

    #[test]
    fn a_file_that_is_not_a_backup_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"not sqlite").unwrap();
        let db = dir.path().join("s.db");
        ServerStore::open(&db).unwrap();
        assert!(matches!(
            restore(&db, &junk),
            Err(Error::NotAServerDatabase(_))
        ));
    }
}
