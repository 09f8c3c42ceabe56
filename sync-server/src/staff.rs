//! Staff actions on the server, for the JSON API and the web console (one code path).
//! Staff events carry server time; the role table and the lifecycle decide what may be
//! recorded, with the same rules the tablet's store applies to agent events.

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::Serialize;

use agent_core::doc::TicketDoc;
use agent_core::domain::deadline::DEFAULT_MARGIN;
use agent_core::domain::event::{Event, EventDraft, EventKind, Role};
use agent_core::domain::lifecycle::Anomaly;
use agent_core::domain::mask::{mask_id, mask_name, mask_phone};
use agent_core::domain::number::TicketNumber;
use agent_core::domain::ticket::{MaterialState, Ticket, TicketView};
use agent_core::domain::validate::normalize;

use crate::accounts::{audit, Account, StaffRole};
use crate::error::{Error, Result};
use crate::index::{self, Scope, Search};
use crate::store::{append_doc, insert_change, load_doc, ServerStore};
use crate::sync::ServerInfo;

/// A signed-in account acting on tickets: its login, the role its events carry, and the
/// tickets it may touch.
#[derive(Debug, Clone)]
pub struct Staff {
    pub login: String,
    pub role: Role,
    pub scope: Scope,
    /// A township admin: the one who may resolve 需核对.
    pub reviews: bool,
}

impl Staff {
    /// The account as one who appends ticket events; `None` for one who appends none
    /// (district admin, auditor).
    pub fn from_account(account: &Account) -> Option<Staff> {
        Some(Staff {
            login: account.login.clone(),
            role: account.role.event_role()?,
            scope: Scope::of(account),
            reviews: account.role == StaffRole::TownshipAdmin,
        })
    }

    /// The change-log origin of this staff member's events.
    pub fn origin(&self) -> String {
        format!("staff:{}", self.login)
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

/// A page of the list and the key of the next (`after=`), if any.
#[derive(Debug, Clone, Serialize)]
pub struct ListPage {
    pub rows: Vec<ListRow>,
    pub next: Option<String>,
}

fn parse_number(number: &str) -> Result<TicketNumber> {
    TicketNumber::parse(number).map_err(|_| Error::BadRequest("办件编号无效".into()))
}

/// The ticket as of today, if `scope` may see it: one outside the scope is answered as absent.
fn check_scope(
    store: &mut ServerStore,
    scope: &Scope,
    number: &TicketNumber,
    today: NaiveDate,
) -> Result<TicketView> {
    index::visible(store, scope, number.as_str(), today)?
        .ok_or_else(|| Error::NotFound(number.to_string()))
}

/// Append a staff event with server time; returns the ticket view as of today.
pub fn append(
    store: &mut ServerStore,
    info: &ServerInfo,
    number: &str,
    staff: &Staff,
    draft: &EventDraft,
    now: DateTime<FixedOffset>,
) -> Result<TicketView> {
    // Staff work on their own level's server; the server itself (an SMS rating) on either.
    if staff.role != info.role.staff_role() && staff.role != Role::Server {
        return Err(Error::Forbidden(format!(
            "{}的工作人员不在这个服务器上办理",
            staff.role.label()
        )));
    }
    let number = parse_number(number)?;
    check_scope(store, &staff.scope, &number, now.date_naive())?;
    let calendar = store.calendar()?;
    // The change is logged in the ticket's township's scope.
    let township = match &info.township {
        Some(code) => code.clone(),
        None => store
            .directory()?
            .township_of(number.point())
            .map(str::to_owned)
            .ok_or_else(|| Error::NotFound(number.to_string()))?,
    };
    let actor = store.actor().clone();
    let tx = store.begin()?;
    let bytes =
        load_doc(&tx, number.as_str())?.ok_or_else(|| Error::NotFound(number.to_string()))?;
    let mut doc = TicketDoc::load_own(&bytes, &actor)?;
    let ticket = doc.read()?;
    let event = Event {
        id: crate::new_event_id(),
        kind: draft.kind,
        at: now,
        actor: staff.login.clone(),
        role: staff.role,
        note: normalize(&draft.note),
        payload: draft.payload.clone(),
    };
    ticket.check_event(&event).map_err(Error::Refused)?;
    if event.kind == EventKind::Reviewed {
        check_review(staff, &ticket, &event)?;
    }
    if event.kind == EventKind::FollowedUp && event.note.is_empty() {
        return Err(Error::BadRequest("请写明回访答复的内容".into()));
    }
    let before = doc.heads();
    if event.kind == EventKind::SupplementProvided {
        // Recorded at the township counter, by the same rule as on the tablet.
        let provided = ticket.supplied_materials(&event).map_err(Error::Refused)?;
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
        &township,
        &staff.origin(),
        &changes,
    )?;
    append_doc(&tx, number.as_str(), ticket.point, &changes)?;
    audit(
        &tx,
        &staff.login,
        event.kind.label(),
        Some(number.as_str()),
        "",
        now,
    )?;
    tx.commit()?;
    Ok(ticket.view(&calendar, now.date_naive(), DEFAULT_MARGIN))
}

/// A 需核对 decision: by a township admin, with the decision written down, naming only
/// anomalies still open on the ticket.
fn check_review(staff: &Staff, ticket: &Ticket, event: &Event) -> Result<()> {
    if !staff.reviews {
        return Err(Error::Forbidden("只有乡镇管理员可以处理需核对".into()));
    }
    if event.note.is_empty() {
        return Err(Error::BadRequest("请写明核对处理的决定".into()));
    }
    let open = open_anomalies(ticket);
    let resolves = event.payload_list("resolves");
    if resolves.is_empty()
        || resolves
            .iter()
            .any(|id| !open.iter().any(|a| a.event_id == *id))
    {
        return Err(Error::BadRequest("请选择尚待核对的记录".into()));
    }
    Ok(())
}

/// The anomalies no `reviewed` decision has named yet.
pub fn open_anomalies(ticket: &Ticket) -> Vec<Anomaly> {
    let resolved: Vec<String> = ticket
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Reviewed)
        .flat_map(|e| e.payload_list("resolves"))
        .collect();
    ticket
        .lifecycle()
        .anomalies
        .into_iter()
        .filter(|a| !resolved.contains(&a.event_id))
        .collect()
}

/// One ticket as of today, if `account` may see it.
pub fn view(
    store: &mut ServerStore,
    account: &Account,
    number: &str,
    now: DateTime<FixedOffset>,
) -> Result<TicketView> {
    let number = parse_number(number)?;
    check_scope(store, &Scope::of(account), &number, now.date_naive())
}

/// The view with the applicant masked as lists and pages show it (name, ID number, phone;
/// the street address hidden): what the staff API answers unless an unmasking is asked for,
/// with a reason, and logged.
pub fn masked(mut view: TicketView) -> TicketView {
    let a = &mut view.ticket.applicant;
    a.name = mask_name(&a.name);
    a.id.stored = mask_id(&a.id.stored);
    a.id.search_key = mask_id(&a.id.search_key);
    a.phone = a.phone.as_deref().map(mask_phone);
    if !a.address.is_empty() {
        a.address = "（已隐藏）".into();
    }
    view
}

/// A ticket with its applicant to be shown unmasked: allowed to an account that sees
/// tickets, for a stated reason, and recorded in the audit log first.
pub fn unmask(
    store: &mut ServerStore,
    account: &Account,
    number: &str,
    reason: &str,
    now: DateTime<FixedOffset>,
) -> Result<TicketView> {
    let reason = normalize(reason);
    if reason.is_empty() || reason.chars().count() > 100 {
        return Err(Error::BadRequest(
            "查看完整个人信息须填写事由（100字以内）".into(),
        ));
    }
    let view = view(store, account, number, now)?;
    let tx = store.begin()?;
    audit(
        &tx,
        &account.login,
        "查看完整个人信息",
        Some(view.ticket.number.as_str()),
        &reason,
        now,
    )?;
    tx.commit()?;
    Ok(view)
}

/// The staff actions, in the order the console offers them.
pub const ACTIONS: [EventKind; 10] = [
    EventKind::Accepted,
    EventKind::SupplementRequested,
    EventKind::Rejected,
    EventKind::Handled,
    EventKind::SpecialStarted,
    EventKind::SpecialEnded,
    EventKind::Forwarded,
    EventKind::Completed,
    EventKind::Returned,
    EventKind::FollowedUp,
];

/// The actions `staff` may take on the ticket now: its role may record them and the
/// lifecycle takes them (tried with the least payload each needs).
pub fn available(staff: &Staff, view: &TicketView, now: DateTime<FixedOffset>) -> Vec<EventKind> {
    ACTIONS
        .into_iter()
        .filter(|&kind| {
            let payload = match kind {
                EventKind::Completed => serde_json::json!({ "outcome": "approved" }),
                _ => serde_json::json!({}),
            };
            let trial = Event {
                id: String::new(),
                kind,
                at: now,
                actor: staff.login.clone(),
                role: staff.role,
                note: String::new(),
                payload,
            };
            view.ticket.check_event(&trial).is_ok()
        })
        .collect()
}

/// One page of the tickets `account` may see that match `search`, applicants masked.
pub fn list(store: &mut ServerStore, account: &Account, search: &Search) -> Result<ListPage> {
    index::refresh(store)?;
    let found = index::search(
        store,
        &Scope::of(account),
        search,
        crate::now().date_naive(),
    )?;
    Ok(ListPage {
        rows: found
            .rows
            .into_iter()
            .map(|r| ListRow {
                item: r.item_name,
                applicant: mask_name(&r.applicant),
                status: r.status.as_str().to_owned(),
                status_label: r.status.label().to_owned(),
                needs_review: r.needs_review,
                number: r.number,
            })
            .collect(),
        next: found.next,
    })
}
