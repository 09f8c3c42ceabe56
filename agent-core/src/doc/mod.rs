//! One Automerge document per ticket.
//!
//! Layout of the root map:
//! - set-once fields are scalars: `number`, `agent`, `point`, `device`, `remarks`,
//!   `registered_at`, and the set-once records `item`, `applicant`, `fee` as JSON-text scalars;
//! - `materials`: a list of JSON-text scalars (name, form, copies), with each material's state
//!   in the `material_state` map (name → state), the one thing that changes;
//! - `events`: the append-only lifecycle, one JSON-text scalar per (immutable) event.
//!
//! Whole records as single scalars keep a ticket to about twenty operations: creating the
//! document took 1.7 ms with one operation per JSON field and ~0.5 ms this way (release build,
//! `agent-core/benches/store.rs`), and the saved document is smaller.

use automerge::transaction::Transactable;
use std::collections::HashMap;

pub mod limits;

use automerge::{
    ActorId, AutoCommit, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, ScalarValueRef,
    ValueRef, ROOT,
};
use serde_json::Value;

use crate::domain::event::{may_append, Event};
use crate::domain::ticket::{MaterialState, Ticket};
use crate::sync::pack::{unpack, PackError};
use limits::{Limit, LOAD_MAX};

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
    /// The changes build on history this replica does not hold (it was restored from an
    /// older backup, or a page was skipped); nothing was applied.
    #[error("changes build on history this copy does not have")]
    MissingHistory,
    #[error("{0}")]
    Packed(PackError),
    /// More than any replica loads at once ([`limits::LOAD_MAX`]), or not chunks this
    /// software sends; refused before Automerge parsed anything.
    #[error("{0}")]
    Limit(#[from] Limit),
}

impl From<PackError> for DocError {
    fn from(e: PackError) -> Self {
        match e {
            PackError::MissingHistory => DocError::MissingHistory,
            e => DocError::Packed(e),
        }
    }
}

/// A ticket's Automerge document.
pub struct TicketDoc {
    doc: AutoCommit,
    /// Heads of what is already stored (loaded or saved), so an incremental save holds only
    /// what is new. (`AutoCommit::save_incremental` after `load` would return everything.)
    saved: Vec<ChangeHash>,
}

impl TicketDoc {
    /// A new document for a freshly registered ticket (whose events hold `registered`).
    pub fn create(ticket: &Ticket, actor: &ActorId) -> Result<Self, DocError> {
        let mut doc = AutoCommit::new().with_actor(actor.clone());
        let Value::Object(fields) = to_json(ticket)? else {
            return Err(DocError::Shape("ticket is not an object".into()));
        };
        doc.put(ROOT, "v", SCHEMA_VERSION)?;
        for (key, v) in &fields {
            match (key.as_str(), v) {
                ("materials", Value::Array(items)) => {
                    let list = doc.put_object(ROOT, "materials", ObjType::List)?;
                    let states = doc.put_object(ROOT, MATERIAL_STATE, ObjType::Map)?;
                    for (i, m) in items.iter().enumerate() {
                        let mut m = m.clone();
                        let state = m.as_object_mut().and_then(|o| o.remove("state"));
                        let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
                        if let Some(Value::String(state)) = state {
                            doc.put(&states, name, state)?;
                        }
                        doc.insert(&list, i, m.to_string())?;
                    }
                }
                ("events", Value::Array(events)) => {
                    let list = doc.put_object(ROOT, "events", ObjType::List)?;
                    for (i, e) in events.iter().enumerate() {
                        doc.insert(&list, i, e.to_string())?;
                    }
                }
                (_, Value::Object(_) | Value::Array(_)) => {
                    doc.put(ROOT, key.as_str(), v.to_string())?
                }
                (_, scalar) => doc.put(ROOT, key.as_str(), to_scalar(scalar))?,
            }
        }
        doc.commit();
        Ok(Self {
            doc,
            saved: Vec::new(),
        })
    }

    /// Load a document from saved bytes (a full save followed by any incremental chunks).
    /// Changes without their history give [`DocError::MissingHistory`]; more than
    /// [`limits::LOAD_MAX`] gives [`DocError::Limit`] before anything is parsed.
    pub fn load(bytes: &[u8], actor: &ActorId) -> Result<Self, DocError> {
        limits::measure(bytes, LOAD_MAX)?;
        Self::load_own(bytes, actor)
    }

    /// [`Self::load`] without measuring first, for a copy this replica stored itself (sealed
    /// on a tablet, in a server's store), or bytes already measured
    /// ([`limits::check_upload`]). Anything else from a peer goes through [`Self::load`].
    pub fn load_own(bytes: &[u8], actor: &ActorId) -> Result<Self, DocError> {
        let mut doc = match AutoCommit::load(bytes) {
            Ok(doc) => doc.with_actor(actor.clone()),
            Err(automerge::AutomergeError::MissingDeps) => return Err(DocError::MissingHistory),
            Err(e) => return Err(e.into()),
        };
        let saved = doc.get_heads();
        let this = Self { doc, saved };
        this.check_version()?;
        Ok(this)
    }

    /// Apply an incremental chunk this store saved after the base (already stored, so not
    /// saved again).
    pub fn load_stored_chunk(&mut self, bytes: &[u8]) -> Result<(), DocError> {
        self.doc.load_incremental(bytes)?;
        self.saved = self.doc.get_heads();
        Ok(())
    }

    /// Apply changes from another replica (a document or raw changes). They count as unsaved
    /// here. Bytes that do not parse are refused whole: Automerge's own incremental load
    /// skips what it cannot parse, which would hide garbage from a peer. Changes whose
    /// dependencies this copy lacks give [`DocError::MissingHistory`]; Automerge would only
    /// queue them in memory, and a save would silently drop them, so the caller must not save
    /// this document and should ask for the whole history instead. More than
    /// [`limits::LOAD_MAX`] gives [`DocError::Limit`] before anything is parsed.
    pub fn apply_remote(&mut self, bytes: &[u8]) -> Result<(), DocError> {
        limits::measure(bytes, LOAD_MAX)?;
        // Parsed standalone, changes that build on this document lack their dependencies;
        // that is expected. Anything else means the bytes are not Automerge.
        match automerge::Automerge::load_with_options(
            bytes,
            automerge::LoadOptions::new()
                .on_partial_load(automerge::OnPartialLoad::Error)
                .verification_mode(automerge::VerificationMode::DontCheck),
        ) {
            Ok(_) | Err(automerge::AutomergeError::MissingDeps) => {}
            Err(e) => return Err(e.into()),
        }
        self.doc.load_incremental(bytes)?;
        if !self.doc.get_missing_deps(&[]).is_empty() {
            return Err(DocError::MissingHistory);
        }
        self.check_version()
    }

    /// Apply changes in their wire form ([`crate::sync::pack`]). Their dependencies are
    /// looked up among this copy's heads first (the usual case), then its whole history
    /// (also when a shortened hash happened to fit a head that is not the dependency).
    pub fn apply_packed(&mut self, packed: &[u8]) -> Result<(), DocError> {
        let raw = match unpack(packed, &self.doc.get_heads()) {
            Err(_) => {
                let all: Vec<ChangeHash> = self
                    .doc
                    .get_changes_meta(&[])
                    .iter()
                    .map(|c| c.hash)
                    .collect();
                unpack(packed, &all)?
            }
            raw => raw?,
        };
        self.apply_remote(&raw)
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

    /// The ticket as the document holds it now. One pass over each object: every `get`
    /// seeks through Automerge's columns, and servers read every uploaded ticket.
    pub fn read(&self) -> Result<Ticket, DocError> {
        let mut root = serde_json::Map::new();
        let (mut materials, mut states) = (None, None);
        for entry in self.doc.map_range(ROOT, ..) {
            let key = entry.key.as_ref();
            let value = match (key, &entry.value) {
                ("v", _) => continue,
                (MATERIAL_STATE, ValueRef::Object(ObjType::Map)) => {
                    states = Some(entry.id());
                    continue;
                }
                ("materials", ValueRef::Object(ObjType::List)) => {
                    materials = Some(entry.id());
                    continue;
                }
                ("events", ValueRef::Object(ObjType::List)) => {
                    Value::Array(self.json_list(&entry.id(), "events")?)
                }
                (k, ValueRef::Scalar(s)) => match (OBJECT_FIELDS.contains(&k), scalar_json(s)) {
                    (true, Value::String(text)) => parse(&text)?,
                    (_, v) => v,
                },
                (k, ValueRef::Object(_)) => {
                    return Err(DocError::Shape(format!("{k} holds an unexpected object")))
                }
            };
            root.insert(key.to_owned(), value);
        }
        if let Some(list) = materials {
            let states =
                states.ok_or_else(|| DocError::Shape("no material_state object".into()))?;
            let states: HashMap<String, String> = self
                .doc
                .map_range(&states, ..)
                .filter_map(|e| match e.value {
                    ValueRef::Scalar(ScalarValueRef::Str(s)) => {
                        Some((e.key.into_owned(), s.into_owned()))
                    }
                    _ => None,
                })
                .collect();
            let mut items = self.json_list(&list, "materials")?;
            for m in &mut items {
                let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
                let state = states
                    .get(name)
                    .map_or("missing", String::as_str)
                    .to_owned();
                if let Some(o) = m.as_object_mut() {
                    o.insert("state".into(), Value::String(state));
                }
            }
            root.insert("materials".into(), Value::Array(items));
        }
        serde_json::from_value(Value::Object(root)).map_err(shape)
    }

    /// A list of JSON-text scalars, parsed.
    fn json_list(&self, list: &ObjId, key: &str) -> Result<Vec<Value>, DocError> {
        self.doc
            .list_range(list, ..)
            .map(|e| match &e.value {
                ValueRef::Scalar(ScalarValueRef::Str(text)) => parse(text),
                _ => Err(DocError::Shape(format!("{key} holds a non-text entry"))),
            })
            .collect()
    }

    /// Append an event, refusing what the event's role may not append.
    pub fn append(&mut self, event: &Event) -> Result<(), DocError> {
        if !may_append(event.role, event.kind) {
            return Err(DocError::RoleRefused {
                role: event.role.as_str(),
                kind: event.kind.as_str(),
            });
        }
        let events = self.obj("events")?;
        let at = self.doc.length(&events);
        self.doc.insert(&events, at, to_json(event)?.to_string())?;
        Ok(())
    }

    /// Set the state of the named materials on the checklist.
    pub fn set_material_state(
        &mut self,
        names: &[String],
        state: MaterialState,
    ) -> Result<(), DocError> {
        let states = self.obj(MATERIAL_STATE)?;
        let state = match to_json(&state)? {
            Value::String(s) => s,
            _ => return Err(DocError::Shape("material state is not text".into())),
        };
        for name in names {
            self.doc.put(&states, name.as_str(), state.as_str())?;
        }
        Ok(())
    }

    fn obj(&self, key: &str) -> Result<ObjId, DocError> {
        match self.doc.get(ROOT, key)? {
            Some((v, id)) if v.is_object() => Ok(id),
            _ => Err(DocError::Shape(format!("no {key} object"))),
        }
    }

    /// Commit pending operations as one change.
    pub fn commit(&mut self) {
        self.doc.commit();
    }

    /// Everything, compressed or not (uncompressed keeps the bytes searchable in tests).
    pub fn save(&mut self, compress: bool) -> Vec<u8> {
        let bytes = if compress {
            self.doc.save()
        } else {
            self.doc.save_nocompress()
        };
        self.saved = self.doc.get_heads();
        bytes
    }

    /// The changes made or merged since the last save or load.
    pub fn save_incremental(&mut self) -> Vec<u8> {
        let bytes = self.doc.save_after(&self.saved);
        self.saved = self.doc.get_heads();
        bytes
    }

    /// Merge another replica's document (or changes) into this one.
    pub fn merge(&mut self, other: &mut TicketDoc) -> Result<(), DocError> {
        self.doc.merge(&mut other.doc)?;
        self.check_version()
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The changes not covered by `heads` (all of them for no heads): what a peer that has
    /// `heads` lacks. Raw, uncompressed changes, so a batch of them compresses well together.
    pub fn changes_since(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// The actors of the changes not covered by `heads` (all changes for no heads): who
    /// wrote what a peer brings.
    pub fn actors_since(&mut self, heads: &[ChangeHash]) -> Vec<ActorId> {
        let mut actors: Vec<ActorId> = Vec::new();
        for change in self.doc.get_changes_meta(heads) {
            if !actors.contains(&change.actor) {
                actors.push(change.actor.into_owned());
            }
        }
        actors
    }

    /// The actor that wrote each event, in the order [`Self::read`] lists the events: the
    /// author whose role table an event is checked against.
    pub fn event_authors(&self) -> Result<Vec<ActorId>, DocError> {
        let events = self.obj("events")?;
        self.doc
            .list_range(&events, ..)
            .map(|e| match e.id() {
                automerge::ObjId::Id(_, actor, _) => Ok(actor),
                automerge::ObjId::Root => Err(DocError::Shape("event without an author".into())),
            })
            .collect()
    }

    /// A copy with another actor (a second replica, e.g. the township's).
    pub fn fork_as(&mut self, actor: &ActorId) -> TicketDoc {
        let doc = self.doc.fork().with_actor(actor.clone());
        TicketDoc {
            doc,
            saved: self.saved.clone(),
        }
    }
}

/// Heads as stored: the 32-byte hashes one after another.
pub fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

/// Heads from their stored form; a damaged value reads as no heads (everything is resent,
/// which is safe: peers ignore changes they have).
pub fn decode_heads(bytes: &[u8]) -> Vec<ChangeHash> {
    bytes
        .chunks(32)
        .map(ChangeHash::try_from)
        .collect::<Result<_, _>>()
        .unwrap_or_default()
}

/// Root keys holding a whole set-once record as JSON text.
const OBJECT_FIELDS: [&str; 3] = ["item", "applicant", "fee"];
/// Root map of material name → state.
const MATERIAL_STATE: &str = "material_state";

/// A shape error from serde, without serde's text when it could quote a value (a name or an
/// ID number in "invalid type: string …"): only missing fields and positions are kept.
fn shape(e: serde_json::Error) -> DocError {
    let text = e.to_string();
    if text.starts_with("missing field") {
        DocError::Shape(text)
    } else {
        DocError::Shape(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, DocError> {
    serde_json::to_value(v).map_err(shape)
}

fn parse(text: &str) -> Result<Value, DocError> {
    serde_json::from_str(text).map_err(shape)
}

fn to_scalar(v: &Value) -> ScalarValue {
    match v {
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Number(n) => n
            .as_i64()
            .map(ScalarValue::Int)
            .or_else(|| n.as_f64().map(ScalarValue::F64))
            .unwrap_or(ScalarValue::Null),
        Value::String(s) => ScalarValue::Str(s.as_str().into()),
        Value::Null | Value::Array(_) | Value::Object(_) => ScalarValue::Null,
    }
}

/// A scalar read from the document as JSON.
fn scalar_json(s: &ScalarValueRef<'_>) -> Value {
    match s {
        ScalarValueRef::Str(s) => Value::String(s.to_string()),
        ScalarValueRef::Int(i) => Value::from(*i),
        ScalarValueRef::Uint(u) => Value::from(*u),
        ScalarValueRef::F64(f) => Value::from(*f),
        ScalarValueRef::Boolean(b) => Value::Bool(*b),
        _ => Value::Null,
    }
}
