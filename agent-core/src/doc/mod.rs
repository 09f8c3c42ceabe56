//! One Automerge document per ticket.
//!
//! Set-once fields are scalars in the root map (nested maps for the applicant, item and fee);
//! the materials checklist is a list of maps whose `state` may change; the lifecycle is the
//! append-only `events` list. Reading goes through `AutoSerde` into [`Ticket`], so the
//! document shape and the Rust type cannot drift apart silently.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, AutoSerde, ObjId, ObjType, ReadDoc, ScalarValue, ROOT};
use serde_json::Value;

use crate::domain::event::{may_append, Event};
use crate::domain::ticket::{MaterialState, Ticket};

/// Document schema version, stored in the root as `v`.
pub const SCHEMA_VERSION: i64 = 1;

/// Why a document cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    #[error("document bytes are not a valid Automerge document: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    #[error("document does not hold a valid ticket: {0}")]
    Shape(String),
    #[error("document schema version {0} is newer than this software; please update")]
    NewerSchema(i64),
    #[error("role {role} may not append {kind}")]
    RoleRefused {
        role: &'static str,
        kind: &'static str,
    },
    #[error("document belongs to ticket {found}, not {expected}")]
    WrongTicket { expected: String, found: String },
}

/// A ticket's Automerge document.
pub struct TicketDoc {
    doc: AutoCommit,
}

impl TicketDoc {
    /// A new document for a freshly registered ticket (whose events hold `registered`).
    pub fn create(ticket: &Ticket, actor: &ActorId) -> Result<Self, DocError> {
        let mut doc = AutoCommit::new().with_actor(actor.clone());
        let value = serde_json::to_value(ticket).map_err(|e| DocError::Shape(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(DocError::Shape("ticket is not an object".into()));
        };
        doc.put(ROOT, "v", SCHEMA_VERSION)?;
        for (key, v) in &fields {
            put_json(&mut doc, &ROOT, key.as_str(), v)?;
        }
        doc.commit();
        Ok(Self { doc })
    }

    /// Load a document from saved bytes (a full save followed by any incremental chunks).
    pub fn load(bytes: &[u8], actor: &ActorId) -> Result<Self, DocError> {
        let doc = AutoCommit::load(bytes)?.with_actor(actor.clone());
        let this = Self { doc };
        this.check_version()?;
        Ok(this)
    }

    /// Apply an incremental chunk saved after the base.
    pub fn load_incremental(&mut self, bytes: &[u8]) -> Result<(), DocError> {
        self.doc.load_incremental(bytes)?;
        Ok(())
    }

    fn check_version(&self) -> Result<(), DocError> {
        match self.doc.get(ROOT, "v")? {
            Some((v, _)) => match v.as_i64() {
                Some(n) if n <= SCHEMA_VERSION => Ok(()),
                Some(n) => Err(DocError::NewerSchema(n)),
                None => Err(DocError::Shape("schema version is not a number".into())),
            },
            None => Err(DocError::Shape("no schema version".into())),
        }
    }

    /// The ticket as the document holds it now.
    pub fn read(&self) -> Result<Ticket, DocError> {
        let value = serde_json::to_value(AutoSerde::from(&self.doc))
            .map_err(|e| DocError::Shape(e.to_string()))?;
        serde_json::from_value(value).map_err(|e| DocError::Shape(e.to_string()))
    }

    /// Append an event, refusing what the event's role may not append.
    pub fn append(&mut self, event: &Event) -> Result<(), DocError> {
        if !may_append(event.role, event.kind) {
            return Err(DocError::RoleRefused {
                role: event.role.as_str(),
                kind: event.kind.as_str(),
            });
        }
        let events = self.list("events")?;
        let value = serde_json::to_value(event).map_err(|e| DocError::Shape(e.to_string()))?;
        let at = self.doc.length(&events);
        insert_json(&mut self.doc, &events, at, &value)?;
        Ok(())
    }

    /// Set the state of the named materials on the checklist.
    pub fn set_material_state(
        &mut self,
        names: &[String],
        state: MaterialState,
    ) -> Result<(), DocError> {
        let list = self.list("materials")?;
        let state = serde_json::to_value(state).map_err(|e| DocError::Shape(e.to_string()))?;
        for i in 0..self.doc.length(&list) {
            let Some((_, item)) = self.doc.get(&list, i)? else {
                continue;
            };
            let name = match self.doc.get(&item, "name")? {
                Some((v, _)) => v.as_str().map(str::to_owned),
                None => None,
            };
            if name.is_some_and(|n| names.contains(&n)) {
                put_json(&mut self.doc, &item, "state", &state)?;
            }
        }
        Ok(())
    }

    fn list(&self, key: &str) -> Result<ObjId, DocError> {
        match self.doc.get(ROOT, key)? {
            Some((v, id)) if v.is_object() => Ok(id),
            _ => Err(DocError::Shape(format!("no {key} list"))),
        }
    }

    /// Commit pending operations as one change.
    pub fn commit(&mut self) {
        self.doc.commit();
    }

    /// Everything, compressed or not (uncompressed keeps the bytes searchable in tests).
    pub fn save(&mut self, compress: bool) -> Vec<u8> {
        if compress {
            self.doc.save()
        } else {
            self.doc.save_nocompress()
        }
    }

    /// The changes made since the last save or load.
    pub fn save_incremental(&mut self) -> Vec<u8> {
        self.doc.save_incremental()
    }

    /// Merge another replica's document (or changes) into this one.
    pub fn merge(&mut self, other: &mut TicketDoc) -> Result<(), DocError> {
        self.doc.merge(&mut other.doc)?;
        Ok(())
    }

    pub fn heads(&mut self) -> Vec<automerge::ChangeHash> {
        self.doc.get_heads()
    }

    /// A copy with another actor (a second replica, e.g. the township's).
    pub fn fork_as(&mut self, actor: &ActorId) -> TicketDoc {
        TicketDoc {
            doc: self.doc.fork().with_actor(actor.clone()),
        }
    }
}

fn scalar(v: &Value) -> Option<ScalarValue> {
    match v {
        Value::Null => Some(ScalarValue::Null),
        Value::Bool(b) => Some(ScalarValue::Boolean(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(ScalarValue::Int)
            .or_else(|| n.as_f64().map(ScalarValue::F64)),
        Value::String(s) => Some(ScalarValue::Str(s.as_str().into())),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// Put a JSON value under `key` of a map: objects become maps, arrays lists, the rest scalars.
fn put_json(doc: &mut AutoCommit, obj: &ObjId, key: &str, v: &Value) -> Result<(), DocError> {
    if let Some(s) = scalar(v) {
        doc.put(obj, key, s)?;
        return Ok(());
    }
    let kind = if v.is_array() {
        ObjType::List
    } else {
        ObjType::Map
    };
    let child = doc.put_object(obj, key, kind)?;
    fill(doc, &child, v)
}

fn insert_json(doc: &mut AutoCommit, list: &ObjId, at: usize, v: &Value) -> Result<(), DocError> {
    if let Some(s) = scalar(v) {
        doc.insert(list, at, s)?;
        return Ok(());
    }
    let kind = if v.is_array() {
        ObjType::List
    } else {
        ObjType::Map
    };
    let child = doc.insert_object(list, at, kind)?;
    fill(doc, &child, v)
}

fn fill(doc: &mut AutoCommit, child: &ObjId, v: &Value) -> Result<(), DocError> {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                put_json(doc, child, k, x)?;
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                insert_json(doc, child, i, x)?;
            }
        }
        _ => {}
    }
    Ok(())
}
