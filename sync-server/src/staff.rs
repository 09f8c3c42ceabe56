//! Staff actions on the server: the JSON API today, the web console later (one code path).
//! Staff events carry server time; the role table and the lifecycle decide what may be
//! recorded, with the same rules the tablet's store applies to agent events.

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use agent_core::doc::TicketDoc;
use agent_core::domain::deadline::DEFAULT_MARGIN;
use agent_core::domain::event::{may_append, Event, EventDraft, EventKind, Role};
use agent_core::domain::lifecycle;
use agent_core::domain::mask::mask_name;
use agent_core::domain::number::TicketNumber;
use agent_core::domain::ticket::{MaterialState, Ticket, TicketView};
use agent_core::domain::validate::normalize;

use crate::error::{Error, Result};
use crate::store::{insert_change, load_doc, save_doc, ServerStore};

/// Longest note, in characters (as on the tablet).
const MAX_NOTE_CHARS: usize = 500;
/// Largest payload, as JSON bytes (as on the tablet).
const MAX_PAYLOAD_BYTES: usize = 4096;
/// Longest staff name accepted in the identity header.
const MAX_STAFF_NAME: usize = 64;
/// Most rows one list returns.
const LIST_LIMIT: i64 = 500;

/// A staff identity. Minimal until the console's accounts (issue 7): a name and a role from
/// request headers, trusted as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub name: String,
    pub role: Role,
}

impl Staff {
    /// From the header values; `None` when missing or not a staff role.
    pub fn from_headers(name: Option<&str>, role: Option<&str>) -> Option<Staff> {
        let name = name?.trim();
        let ok_name = !name.is_empty()
            && name.chars().count() <= MAX_STAFF_NAME
            && !name.chars().any(char::is_control);
        let role = Role::parse(role?.trim())?;
        (ok_name && matches!(role, Role::Township | Role::Window)).then(|| Staff {
            name: name.to_owned(),
            role,
        })
    }

    /// The change-log origin of this staff member's events.
    pub fn origin(&self) -> String {
        format!("staff:{}", self.name)
    }
}

/// One row of the ticket list. No personal data except the masked applicant name.
#[derive(Debug, Clone, Serialize)]
pub struct ListRow {
    pub number: String,
    pub item: String,
    pub applicant: String,
    pub status: String,
    pub status_label: String,
    pub needs_review: bool,
}

fn parse_number(number: &str) -> Result<TicketNumber> {
    TicketNumber::parse(number).map_err(|_| Error::BadRequest("办件编号无效".into()))
}

fn load(store: &ServerStore, number: &TicketNumber) -> Result<TicketDoc> {
    let bytes = load_doc(store.conn(), number.as_str())?
        .ok_or_else(|| Error::NotFound(number.to_string()))?;
    Ok(TicketDoc::load(&bytes, store.actor())?)
}

/// Append a staff event with server time; returns the ticket view as of today.
pub fn append(
    store: &mut ServerStore,
    number: &str,
    staff: &Staff,
    draft: &EventDraft,
    now: DateTime<FixedOffset>,
) -> Result<TicketView> {
    let number = parse_number(number)?;
    let calendar = store.calendar()?;
    let actor = store.actor().clone();
    let tx = store.begin()?;
    let bytes =
        load_doc(&tx, number.as_str())?.ok_or_else(|| Error::NotFound(number.to_string()))?;
    let mut doc = TicketDoc::load(&bytes, &actor)?;
    let ticket = doc.read()?;
    let event = Event {
        id: crate::new_event_id(),
        kind: draft.kind,
        at: now,
        actor: staff.name.clone(),
        role: staff.role,
        note: normalize(&draft.note),
        payload: draft.payload.clone(),
    };
    check_event(&ticket, &event)?;
    let before = doc.heads();
    if event.kind == EventKind::SupplementProvided {
        // Recorded at the township counter: the materials named (or all requested ones that
        // are on the checklist) are now received, as the tablet's store does.
        let on_list = |name: &String| ticket.materials.iter().any(|m| &m.name == name);
        let mut provided = event.payload_list("provided");
        if let Some(unknown) = provided.iter().find(|p| !on_list(p)) {
            return Err(Error::Refused(format!("材料清单中没有“{unknown}”")));
        }
        if provided.is_empty() {
            provided = ticket.lifecycle().missing;
            provided.retain(|p| on_list(p));
        }
        doc.set_material_state(&provided, MaterialState::Received)?;
    }
    doc.append(&event)?;
    doc.commit();
    let changes = doc.changes_since(&before);
    let ticket = doc.read()?;
    insert_change(
        &tx,
        number.as_str(),
        ticket.point,
        &staff.origin(),
        &changes,
    )?;
    save_doc(&tx, number.as_str(), ticket.point, &doc.save(true))?;
    tx.commit()?;
    Ok(ticket.view(&calendar, now.date_naive(), DEFAULT_MARGIN))
}

/// Refuse what the role may not record, or what does not fit the lifecycle now, with the
/// reason (the same rules as the tablet's `check_draft` in agent-core's store).
fn check_event(ticket: &Ticket, event: &Event) -> Result<()> {
    if event.note.chars().count() > MAX_NOTE_CHARS {
        return Err(Error::Refused(format!("备注不能超过{MAX_NOTE_CHARS}个字")));
    }
    if !event.payload.is_object() || event.payload.to_string().len() > MAX_PAYLOAD_BYTES {
        return Err(Error::Refused("附加信息格式不正确或过长".into()));
    }
    if !may_append(event.role, event.kind) {
        return Err(Error::Refused(format!(
            "{}不能记录“{}”",
            event.role.label(),
            event.kind.label()
        )));
    }
    let before = ticket.lifecycle();
    let mut events = ticket.events.clone();
    events.push(event.clone());
    let after = lifecycle::fold(&events, ticket.item.promised_days, &ticket.item.stages);
    match after.anomalies.get(before.anomalies.len()) {
        Some(a) => Err(Error::Refused(a.reason.clone())),
        None => Ok(()),
    }
}

/// One ticket as of today.
pub fn view(store: &ServerStore, number: &str, now: DateTime<FixedOffset>) -> Result<TicketView> {
    let number = parse_number(number)?;
    let ticket = load(store, &number)?.read()?;
    Ok(ticket.view(&store.calendar()?, now.date_naive(), DEFAULT_MARGIN))
}

/// Tickets by number (first [`LIST_LIMIT`]); a document that does not load is skipped and
/// logged, never allowed to hide the rest.
pub fn list(store: &ServerStore) -> Result<Vec<ListRow>> {
    let mut stmt = store
        .conn()
        .prepare("SELECT ticket, doc FROM docs ORDER BY ticket LIMIT ?1")?;
    let rows = stmt.query_map([LIST_LIMIT], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (number, bytes) = row?;
        let ticket = match TicketDoc::load(&bytes, store.actor()).and_then(|d| d.read()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(ticket = %number, error = %e, "stored document does not load");
                continue;
            }
        };
        let life = ticket.lifecycle();
        out.push(ListRow {
            number,
            item: ticket.item.name.clone(),
            applicant: mask_name(&ticket.applicant.name),
            status: life.status.as_str().to_owned(),
            status_label: life.status.label().to_owned(),
            needs_review: life.needs_review,
        });
    }
    Ok(out)
}
