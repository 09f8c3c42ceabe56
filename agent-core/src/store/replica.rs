//! The tablet's store as a sync [`Replica`]: uploads from the outbox, the server's ticket
//! changes, and the shared documents (catalog, calendar, directory) that flow down to it.

use automerge::ChangeHash;

use super::{get_meta, get_meta_u64, put_meta, Store};
use crate::crypto::identity::SigningKey;
use crate::domain::calendar::Calendar;
use crate::domain::catalog::Catalog;
use crate::domain::directory::{Directory, DirectoryPart};
use crate::domain::number::TicketNumber;
use crate::error::{Error, Result};
use crate::sync::client::{Replica, Upload};
use crate::sync::shared::{directory_from, SharedName};
use crate::sync::wire::{DocChanges, Peer, SharedDoc};

impl Store {
    /// The directory as last received from the township server (empty before the first sync).
    pub fn directory(&self) -> Result<Directory> {
        let mut stmt = self
            .conn
            .prepare("SELECT substr(key, 8), value FROM meta WHERE key LIKE 'shared:directory%'")?;
        let parts = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(String, Vec<u8>)>>>()?;
        Ok(directory_from(parts)?)
    }

    /// The version of a shared document this store holds (0: none).
    pub fn shared_version(&self, name: &SharedName) -> Result<u64> {
        get_meta_u64(&self.conn, &format!("shared_version:{name}"))
    }
}

impl Replica for Store {
    type Mark = Vec<ChangeHash>;

    fn peer(&self) -> Result<Peer> {
        Ok(Peer::Device {
            point: self.point(),
            device: self.device(),
        })
    }

    fn signing_key(&mut self) -> Result<SigningKey> {
        Store::sync_key(self)
    }

    fn outbox(&mut self, max_bytes: usize) -> Result<Vec<Upload<Self::Mark>>> {
        Ok(Store::outbox(self, max_bytes)?
            .into_iter()
            .map(|o| Upload {
                changes: DocChanges {
                    ticket: o.number.to_string(),
                    bytes: o.bytes,
                },
                mark: o.heads,
            })
            .collect())
    }

    fn acknowledge(&mut self, upload: &Upload<Self::Mark>, refused: Option<&str>) -> Result<()> {
        let sent = super::outbox::Outgoing {
            number: TicketNumber::parse(&upload.changes.ticket)?,
            heads: upload.mark.clone(),
            bytes: Vec::new(),
        };
        Store::acknowledge(self, &sent, refused)
    }

    fn send_whole(&mut self, upload: &Upload<Self::Mark>) -> Result<()> {
        self.forget_synced(&TicketNumber::parse(&upload.changes.ticket)?)
    }

    /// A tablet owns no shared document.
    fn shared_outbox(&mut self) -> Result<Vec<SharedDoc>> {
        Ok(Vec::new())
    }

    fn shared_sent(&mut self, _docs: &[SharedDoc]) -> Result<()> {
        Ok(())
    }

    fn apply(&mut self, changes: &DocChanges) -> Result<()> {
        let number = TicketNumber::parse(&changes.ticket)?;
        self.apply_changes(&number, &changes.bytes).map(|_| ())
    }

    fn apply_shared(&mut self, doc: &SharedDoc) -> Result<()> {
        let Some(name) = SharedName::parse(&doc.name) else {
            return Err(Error::Sync(format!("unknown shared document {}", doc.name)));
        };
        if doc.version <= self.shared_version(&name)? {
            return Ok(());
        }
        let text = std::str::from_utf8(&doc.body)
            .map_err(|_| Error::Sync(format!("shared document {name} is not UTF-8")))?;
        match &name {
            SharedName::Catalog => self.set_catalog(Catalog::from_json(text)?)?,
            SharedName::Calendar => self.replace_calendar(Calendar::parse_csv(text)?)?,
            SharedName::Directory | SharedName::TownshipDirectory(_) => {
                // Checked by its owner; here only that it reads.
                let _: DirectoryPart = serde_json::from_str(text)?;
                put_meta(&self.conn, &format!("shared:{name}"), text.as_bytes())?;
            }
        }
        put_meta(
            &self.conn,
            &format!("shared_version:{name}"),
            doc.version.to_string().as_bytes(),
        )
    }

    fn cursor(&mut self) -> Result<u64> {
        self.sync_cursor()
    }

    fn set_cursor(&mut self, cursor: u64) -> Result<()> {
        self.set_sync_cursor(cursor)
    }

    fn next_counter(&mut self) -> Result<u64> {
        self.next_sync_counter()
    }

    fn epoch(&mut self) -> Result<u64> {
        self.sync_epoch()
    }

    fn set_epoch(&mut self, epoch: u64) -> Result<()> {
        self.set_sync_epoch(epoch)
    }

    fn forget_acknowledged(&mut self) -> Result<()> {
        Store::forget_acknowledged(self)
    }

    fn pending_whole(&mut self) -> Result<Vec<String>> {
        Ok(match get_meta(&self.conn, "sync_whole")? {
            Some(json) => serde_json::from_slice(&json)?,
            None => Vec::new(),
        })
    }

    fn set_pending_whole(&mut self, tickets: &[String]) -> Result<()> {
        put_meta(&self.conn, "sync_whole", &serde_json::to_vec(tickets)?)
    }

    fn cancelled(&self) -> bool {
        self.is_interrupted()
    }
}
