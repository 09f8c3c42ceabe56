//! The device's identity with its township: its signing key (made here, sealed at rest, its
//! public half registered at enrollment), whether it is enrolled, and the wipe a revoked
//! device performs.

use super::{begin, get_meta, put_meta, Store};
use crate::crypto::identity::SigningKey;
use crate::error::{Error, Result};
use crate::store::{Query, TicketSummary};

const KEY_CONTEXT: &[u8] = b"meta:device_key";

impl Store {
    /// The device's signing key, made on first use and kept sealed with the store key.
    pub fn signing_key(&mut self) -> Result<SigningKey> {
        self.refuse_if_wiped()?;
        let tx = begin(&mut self.conn)?;
        let sealed = match get_meta(&tx, "device_key")? {
            Some(sealed) => sealed,
            None => {
                let sealed = self.sealer.seal(KEY_CONTEXT, &SigningKey::generate()?)?;
                put_meta(&tx, "device_key", &sealed)?;
                sealed
            }
        };
        tx.commit()?;
        Ok(SigningKey::from_pkcs8(
            &self.sealer.open(KEY_CONTEXT, &sealed)?,
        )?)
    }

    /// The key to sign sync requests with: only an enrolled device syncs
    /// ([`Error::NotEnrolled`], [`Error::Revoked`] once wiped).
    pub fn sync_key(&mut self) -> Result<SigningKey> {
        self.refuse_if_wiped()?;
        if self.enrolled_township()?.is_none() {
            return Err(Error::NotEnrolled);
        }
        self.signing_key()
    }

    /// The township this device enrolled with (`None`: not enrolled yet).
    pub fn enrolled_township(&self) -> Result<Option<String>> {
        Ok(get_meta(&self.conn, "enrolled_township")?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub(crate) fn set_enrolled(&mut self, township: &str) -> Result<()> {
        put_meta(&self.conn, "enrolled_township", township.as_bytes())
    }

    /// The device was revoked: list the tickets whose latest changes its township never
    /// received (masked, for the agent to check and redo them with the township), then delete
    /// every ticket, document and the device key, overwriting freed pages. The store stays a
    /// valid file that refuses further work ([`Error::Revoked`]).
    pub fn wipe(&mut self) -> Result<Vec<TicketSummary>> {
        if self.is_wiped()? {
            return Ok(Vec::new());
        }
        let mut unsynced = Vec::new();
        for page in 0.. {
            let got = self.search(&Query {
                unsynced: Some(true),
                page,
                page_size: super::index::MAX_PAGE_SIZE,
                ..Query::default()
            })?;
            if got.items.is_empty() {
                break;
            }
            unsynced.extend(got.items);
        }
        self.conn.pragma_update(None, "secure_delete", "ON")?;
        let tx = begin(&mut self.conn)?;
        tx.execute_batch(
            "DELETE FROM doc_chunks; DELETE FROM docs; DELETE FROM quarantine;
             DELETE FROM tickets;
             DELETE FROM meta WHERE key IN ('device_key', 'enrolled_township', 'agent');",
        )?;
        put_meta(&tx, "wiped", b"1")?;
        tx.commit()?;
        self.conn.execute_batch("VACUUM")?;
        self.conn
            .pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        Ok(unsynced)
    }

    /// Whether this store was wiped after a revocation.
    pub fn is_wiped(&self) -> Result<bool> {
        Ok(get_meta(&self.conn, "wiped")?.is_some())
    }

    pub(crate) fn refuse_if_wiped(&self) -> Result<()> {
        if self.is_wiped()? {
            return Err(Error::Revoked {
                reason: "本机数据已清除".into(),
                unsynced: Vec::new(),
            });
        }
        Ok(())
    }
}
