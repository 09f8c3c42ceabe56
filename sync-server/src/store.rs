//! The server's SQLite store: one file in the data directory, WAL, one writer.
//!
//! - `docs`: each ticket's Automerge changes as they arrived, concatenated, in clear (servers read, search and mask
//!   documents; the deployment protects server disks).
//! - `changes`: every batch of new changes with its origin; its `seq` is the cursor a client
//!   keeps, so "what is new for point P since cursor C" is one range scan of `(point, seq)`.
//! - `devices`: each device's last request counter and the exact response bytes, so a retry
//!   after a dropped link gets the same answer and changes nothing.
//! - `meta`: the server's Automerge actor, the imported calendar (CSV) and catalog (JSON).

use std::path::{Path, PathBuf};

use automerge::ActorId;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use agent_core::crypto::identity::SigningKey;
use agent_core::domain::calendar::Calendar;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::directory::Directory;
use agent_core::sync::shared::{directory_from, SharedName};
use agent_core::sync::wire::SharedDoc;

use crate::error::{Error, Result};

/// Every migration in order; index + 1 is the schema version it brings the store to.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_init.sql"),
    include_str!("migrations/002_enroll.sql"),
    include_str!("migrations/003_accounts.sql"),
    include_str!("migrations/004_index.sql"),
    include_str!("migrations/005_index_counts.sql"),
    include_str!("migrations/006_index_dates.sql"),
    include_str!("migrations/007_supervision.sql"),
    include_str!("migrations/008_catalog_versions.sql"),
    include_str!("migrations/009_sms.sql"),
    include_str!("migrations/010_board_index.sql"),
];

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// The server store. Methods that write take `&mut self`; the HTTP layer serialises access.
pub struct ServerStore {
    conn: Connection,
    actor: ActorId,
    path: PathBuf,
    epoch: u64,
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
        let epoch = match get_meta(&conn, "epoch")? {
            Some(v) => String::from_utf8_lossy(&v).parse().unwrap_or(1),
            None => new_epoch(&conn)?,
        };
        Ok(ServerStore {
            conn,
            actor,
            path,
            epoch,
        })
    }

    /// Changes whenever the store is restored from a backup; clients that synced in another
    /// epoch re-send everything (see docs/SYNC.md).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether this store was ever restored from a backup.
    pub fn was_restored(&self) -> Result<bool> {
        Ok(get_meta(&self.conn, "restored")?.is_some())
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

    /// The working-day calendar: the district's, else the one shipped with Daiban.
    pub fn calendar(&self) -> Result<Calendar> {
        match self.shared(&SharedName::Calendar)? {
            Some(doc) => Ok(Calendar::parse_csv(&String::from_utf8_lossy(&doc.body))
                .map_err(agent_core::Error::from)?),
            None => Ok(Calendar::default_cn()),
        }
    }

    /// The district's catalog, if one was imported or received.
    pub fn catalog(&self) -> Result<Option<Catalog>> {
        match self.shared(&SharedName::Catalog)? {
            Some(doc) => Ok(Some(
                Catalog::from_json(&String::from_utf8_lossy(&doc.body))
                    .map_err(agent_core::Error::from)?,
            )),
            None => Ok(None),
        }
    }

    /// The directory: the district's part and the township parts this server holds.
    pub fn directory(&self) -> Result<Directory> {
        directory(&self.conn)
    }

    /// A shared document this server holds.
    pub fn shared(&self, name: &SharedName) -> Result<Option<SharedDoc>> {
        shared(&self.conn, name)
    }

    /// Publish a new version of a shared document this server owns (an admin's import); it
    /// flows to every replica in its scope at their next sync.
    pub fn publish(&mut self, name: &SharedName, body: &[u8]) -> Result<u64> {
        let tx = self.begin()?;
        let version = publish(&tx, name, body)?;
        tx.commit()?;
        Ok(version)
    }

    /// This server's signing key for its upward syncs, made on first use (kept in `meta`:
    /// the server's disk is protected like its tickets).
    pub fn signing_key(&mut self) -> Result<SigningKey> {
        let tx = self.begin()?;
        let pkcs8 = match get_meta(&tx, "sign_key")? {
            Some(pkcs8) => pkcs8,
            None => {
                let pkcs8 = SigningKey::generate().map_err(agent_core::Error::from)?;
                put_meta(&tx, "sign_key", &pkcs8)?;
                pkcs8
            }
        };
        tx.commit()?;
        Ok(SigningKey::from_pkcs8(&pkcs8).map_err(agent_core::Error::from)?)
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

/// Publish a new version of a shared document this server owns, inside `tx`.
pub(crate) fn publish(tx: &Transaction<'_>, name: &SharedName, body: &[u8]) -> Result<u64> {
    let held = shared(tx, name)?.map_or(0, |d| d.version);
    // Time-based, so a store restored from an old backup still publishes newer versions.
    let millis = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    let doc = SharedDoc {
        name: name.to_string(),
        version: held.saturating_add(1).max(millis),
        body: body.to_vec(),
    };
    put_shared(tx, name, &doc, "admin")?;
    Ok(doc.version)
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
    // The restored store may have forgotten what it acknowledged since the backup: a new
    // epoch makes its tablets re-send everything, and its own upward state starts over so
    // the district sends back everything in scope, this township's own changes included.
    new_epoch(&conn)?;
    put_meta(&conn, "restored", crate::now().to_rfc3339().as_bytes())?;
    conn.execute(
        "DELETE FROM meta WHERE key IN ('upstream_cursor', 'upstream_epoch')",
        [],
    )?;
    // Refuse to leave a half-usable file behind: the restored store must open and migrate.
    drop(conn);
    ServerStore::open(db)?;
    Ok(aside)
}

/// Store and return a fresh random epoch (never 0, which means "none" on the wire).
fn new_epoch(conn: &Connection) -> Result<u64> {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| Error::Internal("no randomness for the epoch".into()))?;
    let epoch = (u64::from_le_bytes(b) >> 1).max(1);
    put_meta(conn, "epoch", epoch.to_string().as_bytes())?;
    Ok(epoch)
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

/// A ticket's full saved document, if the server holds it. This and the two below run for
/// every uploaded ticket: their statements are prepared once per connection.
pub(crate) fn load_doc(conn: &Connection, ticket: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT doc FROM docs WHERE ticket = ?1")?
        .query_row([ticket], |r| r.get(0))
        .optional()?)
}

/// Append changes to a ticket's stored document. A document is kept as its changes as they
/// arrived (Automerge loads concatenated chunks as one document): appending is cheap where
/// a full save of every ticket on every upload was not.
pub(crate) fn append_doc(
    tx: &Transaction<'_>,
    ticket: &str,
    point: u32,
    changes: &[u8],
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO docs (ticket, point, doc) VALUES (?1, ?2, ?3)
         ON CONFLICT (ticket) DO UPDATE SET doc = CAST(doc || excluded.doc AS BLOB)",
    )?
    .execute(params![ticket, point, changes])?;
    Ok(())
}

/// Log a batch of new changes of a ticket of `point` in `township`; returns its sequence.
pub(crate) fn insert_change(
    tx: &Transaction<'_>,
    ticket: &str,
    point: u32,
    township: &str,
    origin: &str,
    bytes: &[u8],
) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO changes (ticket, point, township, origin, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![ticket, point, township, origin, bytes])?;
    Ok(tx.last_insert_rowid())
}

pub(crate) fn shared(conn: &Connection, name: &SharedName) -> Result<Option<SharedDoc>> {
    Ok(conn
        .query_row(
            "SELECT version, body FROM shared WHERE name = ?1",
            [name.to_string()],
            |r| {
                Ok(SharedDoc {
                    name: name.to_string(),
                    version: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    body: r.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Keep `doc` if it is newer than the held version, and log it for the replicas in its
/// scope. Returns whether it was newer.
pub(crate) fn put_shared(
    tx: &Transaction<'_>,
    name: &SharedName,
    doc: &SharedDoc,
    origin: &str,
) -> Result<bool> {
    let held = shared(tx, name)?.map_or(0, |d| d.version);
    if doc.version <= held {
        return Ok(false);
    }
    let version = i64::try_from(doc.version)
        .map_err(|_| Error::BadRequest("shared document version out of range".into()))?;
    tx.execute(
        "INSERT INTO shared (name, version, body) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET version = excluded.version, body = excluded.body",
        params![name.to_string(), version, doc.body],
    )?;
    insert_change(
        tx,
        &format!("@{name}"),
        0,
        name.township().unwrap_or(""),
        origin,
        &[],
    )?;
    Ok(true)
}

/// The directory from the shared documents held.
pub(crate) fn directory(conn: &Connection) -> Result<Directory> {
    let mut stmt = conn.prepare("SELECT name, body FROM shared WHERE name LIKE 'directory%'")?;
    let parts = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(String, Vec<u8>)>>>()?;
    directory_from(parts).map_err(|e| Error::Internal(format!("stored directory: {e}")))
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
