//! The proxy ticket (承办单) and the registration form that creates one.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::domain::calendar::Calendar;
use crate::domain::catalog::{Catalog, HandlingLevel, Item, MaterialForm, StageBudgets};
use crate::domain::deadline::{self, Deadline};
use crate::domain::event::Event;
use crate::domain::lifecycle::{self, Lifecycle};
use crate::domain::number::TicketNumber;
use crate::domain::receipt::yuan;
use crate::domain::validate::{
    check_id_number, check_mobile, check_required, normalize, Field, IdKind, IdNumber,
    ValidationError, MAX_ID_NUMBER_CHARS, MOBILE_DIGITS,
};

/// The catalog item a ticket was registered under, frozen at that version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRef {
    pub code: String,
    pub version: u32,
    pub name: String,
    pub level: HandlingLevel,
    pub promised_days: u32,
    pub stages: StageBudgets,
    /// Statutory fee in fen at registration, kept so the board can flag differing fees.
    pub fee_fen: i64,
}

impl From<&Item> for ItemRef {
    fn from(i: &Item) -> Self {
        Self {
            code: i.code.clone(),
            version: i.version,
            name: i.name.clone(),
            level: i.level,
            promised_days: i.promised_days,
            stages: i.stages,
            fee_fen: i.fee_fen,
        }
    }
}

/// The person the ticket is for. Debug never prints personal data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applicant {
    pub name: String,
    pub id: IdNumber,
    pub phone: Option<String>,
    pub village: String,
    pub group: String,
    pub address: String,
}

impl fmt::Debug for Applicant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Applicant")
            .field("village", &self.village)
            .finish_non_exhaustive()
    }
}

/// Where a material stands on the checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialState {
    Received,
    Missing,
    /// An original handed back to the applicant.
    Returned,
}

impl MaterialState {
    pub fn label(self) -> &'static str {
        match self {
            MaterialState::Received => "已收",
            MaterialState::Missing => "缺",
            MaterialState::Returned => "已退还",
        }
    }
}

/// One line of the materials checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialLine {
    pub name: String,
    pub form: MaterialForm,
    pub copies: u32,
    pub state: MaterialState,
}

/// Fees collected at the point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fee {
    pub amount_fen: i64,
    pub receipt_no: Option<String>,
}

/// A proxy ticket as its document holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub number: TicketNumber,
    pub item: ItemRef,
    pub applicant: Applicant,
    pub materials: Vec<MaterialLine>,
    pub fee: Fee,
    /// 首问负责: the registering agent stays the owner.
    pub agent: String,
    pub point: u32,
    pub device: u32,
    pub remarks: String,
    /// Device time of registration (not legal time).
    pub registered_at: DateTime<FixedOffset>,
    pub events: Vec<Event>,
}

impl Ticket {
    /// The folded lifecycle (status, 需核对, legal dates).
    pub fn lifecycle(&self) -> Lifecycle {
        lifecycle::fold(&self.events, self.item.promised_days, &self.item.stages)
    }

    /// Lifecycle plus deadline as of `today`.
    pub fn view(&self, cal: &Calendar, today: NaiveDate, margin: u32) -> TicketView {
        let life = self.lifecycle();
        let deadline = deadline::compute(&life.clock, cal, today, margin);
        TicketView {
            ticket: self.clone(),
            life,
            deadline,
        }
    }
}

/// Longest note an event may carry, in characters.
pub const MAX_NOTE_CHARS: usize = 500;
/// Largest event payload, as JSON bytes (lists of materials, a rating, a reason).
pub const MAX_PAYLOAD_BYTES: usize = 4096;

/// Longest fields of the registration form ([`NewTicket::check`]), in characters after NFKC
/// normalisation. [`Ticket::check_limits`] holds a ticket from a peer to the same.
pub const MAX_ITEM_CODE_CHARS: usize = 32;
pub const MAX_APPLICANT_NAME_CHARS: usize = 50;
pub const MAX_VILLAGE_CHARS: usize = 50;
pub const MAX_GROUP_CHARS: usize = 30;
pub const MAX_ADDRESS_CHARS: usize = 200;
pub const MAX_REMARKS_CHARS: usize = 500;
pub const MAX_MATERIAL_NAME_CHARS: usize = 60;
pub const MAX_RECEIPT_NO_CHARS: usize = 40;
/// Longest text no form field bounds, held to on a peer's ticket anyway: names copied from
/// the district's catalog (item, materials: a dozen characters in the demo catalog), the
/// agent, an event's id (16–32 hex digits) and actor (an agent, a staff name of at most 64
/// characters, a server id).
pub const MAX_LABEL_CHARS: usize = 200;

impl Ticket {
    /// Whether `event` may be recorded on this ticket now: note and payload bounds, the role
    /// table, and the lifecycle (no new anomaly). The one rule for tablets and servers alike;
    /// the error is the reason to show, in Chinese.
    pub fn check_event(&self, event: &Event) -> Result<(), String> {
        check_event_size(event)?;
        if !crate::domain::event::may_append(event.role, event.kind) {
            return Err(format!(
                "{}不能记录“{}”",
                event.role.label(),
                event.kind.label()
            ));
        }
        let before = self.lifecycle();
        let mut events = self.events.clone();
        events.push(event.clone());
        let after = lifecycle::fold(&events, self.item.promised_days, &self.item.stages);
        match after.anomalies.get(before.anomalies.len()) {
            Some(a) => Err(a.reason.clone()),
            None => Ok(()),
        }
    }

    /// Whether every field keeps to the limits the tablet's form and events keep to (lengths
    /// only; see [`NewTicket::check`], [`Ticket::check_event`]), so a server stores nothing a
    /// tablet could not have written. Text no form bounds is held to [`MAX_LABEL_CHARS`].
    /// Every event is checked, stamps and staff events too (they are made under the same
    /// limits). Event ids are unique: a server tells recorded events from new ones by id.
    /// The error is the reason to show, in Chinese; it names the field, never its value.
    pub fn check_limits(&self) -> Result<(), String> {
        let a = &self.applicant;
        let fields = [
            (
                Field::ItemCode,
                self.item.code.as_str(),
                MAX_ITEM_CODE_CHARS,
            ),
            (Field::ItemName, &self.item.name, MAX_LABEL_CHARS),
            (Field::ApplicantName, &a.name, MAX_APPLICANT_NAME_CHARS),
            (Field::Village, &a.village, MAX_VILLAGE_CHARS),
            (Field::Group, &a.group, MAX_GROUP_CHARS),
            (Field::Address, &a.address, MAX_ADDRESS_CHARS),
            (Field::Remarks, &self.remarks, MAX_REMARKS_CHARS),
            (Field::AgentName, &self.agent, MAX_LABEL_CHARS),
            (
                Field::ReceiptNo,
                self.fee.receipt_no.as_deref().unwrap_or_default(),
                MAX_RECEIPT_NO_CHARS,
            ),
        ];
        let materials = self
            .materials
            .iter()
            .map(|m| (Field::MaterialName, m.name.as_str(), MAX_LABEL_CHARS));
        for (field, text, max) in fields.into_iter().chain(materials) {
            let actual = text.chars().count();
            if actual > max {
                return Err(ValidationError::TooLong { field, max, actual }.to_string());
            }
        }
        for id in [&a.id.stored, &a.id.search_key] {
            let len = id.chars().count();
            if len > MAX_ID_NUMBER_CHARS {
                return Err(ValidationError::IdWrongLength {
                    kind: a.id.kind,
                    len,
                }
                .to_string());
            }
        }
        if let Some(len) = a.phone.as_ref().map(|p| p.chars().count()) {
            if len > MOBILE_DIGITS {
                return Err(ValidationError::MobileWrongLength { len }.to_string());
            }
        }
        let mut ids = std::collections::HashSet::with_capacity(self.events.len());
        for e in &self.events {
            check_event_size(e)?;
            if e.id.chars().count() > MAX_LABEL_CHARS || e.actor.chars().count() > MAX_LABEL_CHARS {
                return Err(format!("事件“{}”的编号或记录人过长", e.kind.label()));
            }
            if !ids.insert(e.id.as_str()) {
                return Err("办件中有编号重复的事件".into());
            }
        }
        Ok(())
    }

    /// The materials a `supplement_provided` event hands in: its `provided` list if given
    /// (each must be on the checklist), else the outstanding request's items that are on the
    /// checklist (the township may ask for something the catalog does not list).
    pub fn supplied_materials(&self, event: &Event) -> Result<Vec<String>, String> {
        let on_list = |name: &String| self.materials.iter().any(|m| &m.name == name);
        let mut provided = event.payload_list("provided");
        if let Some(unknown) = provided.iter().find(|p| !on_list(p)) {
            return Err(format!("材料清单中没有“{unknown}”"));
        }
        if provided.is_empty() {
            provided = self.lifecycle().missing;
            provided.retain(|p| on_list(p));
        }
        Ok(provided)
    }
}

/// An event's note and payload within [`MAX_NOTE_CHARS`] and [`MAX_PAYLOAD_BYTES`].
fn check_event_size(event: &Event) -> Result<(), String> {
    if event.note.chars().count() > MAX_NOTE_CHARS {
        return Err(format!("备注不能超过{MAX_NOTE_CHARS}个字"));
    }
    if !event.payload.is_object() || event.payload.to_string().len() > MAX_PAYLOAD_BYTES {
        return Err("附加信息格式不正确或过长".into());
    }
    Ok(())
}

/// A ticket with everything derived from it, as the host shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketView {
    pub ticket: Ticket,
    pub life: Lifecycle,
    pub deadline: Deadline,
}

/// One material on the registration form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialInput {
    pub name: String,
    pub received: bool,
    /// Defaults to the catalog's count.
    #[serde(default)]
    pub copies: Option<u32>,
}

/// The registration form as the agent fills it in. Materials not listed are missing.
/// Unknown fields are refused, so a misspelt field is an error, not silently dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    pub item_code: String,
    pub applicant_name: String,
    #[serde(default = "resident_id")]
    pub id_kind: IdKind,
    pub id_number: String,
    #[serde(default)]
    pub phone: Option<String>,
    pub village: String,
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub materials: Vec<MaterialInput>,
    #[serde(default)]
    pub fee_fen: i64,
    #[serde(default)]
    pub receipt_no: Option<String>,
    #[serde(default)]
    pub remarks: String,
}

fn resident_id() -> IdKind {
    IdKind::ResidentId
}

impl fmt::Debug for NewTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewTicket")
            .field("item_code", &self.item_code)
            .finish_non_exhaustive()
    }
}

/// Why a registration form cannot be accepted. Messages are for the agent, in Chinese.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("事项目录中没有编码为“{0}”的事项，请先同步事项目录")]
    UnknownItem(String),
    #[error("事项“{item}”不需要材料“{material}”")]
    UnknownMaterial { item: String, material: String },
    #[error("材料“{0}”重复填写")]
    DuplicateMaterial(String),
    #[error("材料份数应在1–20之间")]
    BadCopies,
    #[error("收费金额不能为负数")]
    NegativeFee,
    #[error("收取费用时必须填写收据号")]
    ReceiptRequired,
}

/// Things the agent should know but that do not stop registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "warning")]
pub enum FormWarning {
    /// A 15-digit legacy ID number, kept as given.
    LegacyIdNumber,
    /// The fee charged differs from the statutory fee.
    FeeDiffers {
        statutory_fen: i64,
        charged_fen: i64,
    },
    /// Materials still missing: the ticket starts with a supplement list.
    MaterialsMissing { names: Vec<String> },
}

impl FormWarning {
    /// What to tell the agent, in Chinese.
    pub fn message(&self) -> String {
        match self {
            FormWarning::LegacyIdNumber => "15位旧身份证号，已按原样保存".into(),
            FormWarning::FeeDiffers {
                statutory_fen,
                charged_fen,
            } => format!(
                "收费{}元与法定收费{}元不一致，请核对",
                yuan(*charged_fen),
                yuan(*statutory_fen)
            ),
            FormWarning::MaterialsMissing { names } => {
                format!("尚缺材料：{}", names.join("、"))
            }
        }
    }
}

/// A checked form, ready to become a ticket.
#[derive(Debug, Clone)]
pub struct CheckedForm {
    pub item: ItemRef,
    pub applicant: Applicant,
    pub materials: Vec<MaterialLine>,
    pub fee: Fee,
    pub remarks: String,
    pub warnings: Vec<FormWarning>,
}

impl NewTicket {
    /// Validate the form against the catalog, after NFKC normalisation of every text field.
    pub fn check(&self, catalog: &Catalog, today: NaiveDate) -> Result<CheckedForm, FormError> {
        let code =
            check_required(Field::ItemCode, &self.item_code, MAX_ITEM_CODE_CHARS)?.to_uppercase();
        let item = catalog
            .item(&code)
            .ok_or_else(|| FormError::UnknownItem(code.clone()))?;
        let name = check_required(
            Field::ApplicantName,
            &self.applicant_name,
            MAX_APPLICANT_NAME_CHARS,
        )?;
        let id = check_id_number(self.id_kind, &self.id_number, today)?;
        let phone = match self.phone.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(check_mobile(p)?),
        };
        let village = check_required(Field::Village, &self.village, MAX_VILLAGE_CHARS)?;
        let group = optional(&self.group, Field::Group, MAX_GROUP_CHARS)?;
        let address = optional(&self.address, Field::Address, MAX_ADDRESS_CHARS)?;
        let remarks = optional(&self.remarks, Field::Remarks, MAX_REMARKS_CHARS)?;
        let mut warnings = Vec::new();
        if id.legacy {
            warnings.push(FormWarning::LegacyIdNumber);
        }

        let mut given: Vec<(String, &MaterialInput)> = Vec::new();
        for m in &self.materials {
            let n = check_required(Field::MaterialName, &m.name, MAX_MATERIAL_NAME_CHARS)?;
            if !item.materials.iter().any(|r| r.name == n) {
                return Err(FormError::UnknownMaterial {
                    item: item.name.clone(),
                    material: n,
                });
            }
            if given.iter().any(|(g, _)| *g == n) {
                return Err(FormError::DuplicateMaterial(n));
            }
            if matches!(m.copies, Some(c) if c == 0 || c > 20) {
                return Err(FormError::BadCopies);
            }
            given.push((n, m));
        }
        let materials: Vec<MaterialLine> = item
            .materials
            .iter()
            .map(|r| {
                let input = given.iter().find(|(g, _)| *g == r.name).map(|(_, m)| *m);
                MaterialLine {
                    name: r.name.clone(),
                    form: r.form,
                    copies: input.and_then(|m| m.copies).unwrap_or(r.copies),
                    state: if input.is_some_and(|m| m.received) {
                        MaterialState::Received
                    } else {
                        MaterialState::Missing
                    },
                }
            })
            .collect();
        let missing: Vec<String> = materials
            .iter()
            .filter(|m| m.state == MaterialState::Missing)
            .map(|m| m.name.clone())
            .collect();
        if !missing.is_empty() {
            warnings.push(FormWarning::MaterialsMissing { names: missing });
        }

        if self.fee_fen < 0 {
            return Err(FormError::NegativeFee);
        }
        let receipt_no = match self.receipt_no.as_deref() {
            Some(r) if !normalize(r).is_empty() => {
                Some(check_required(Field::ReceiptNo, r, MAX_RECEIPT_NO_CHARS)?)
            }
            _ => None,
        };
        if self.fee_fen > 0 && receipt_no.is_none() {
            return Err(FormError::ReceiptRequired);
        }
        if self.fee_fen != item.fee_fen {
            warnings.push(FormWarning::FeeDiffers {
                statutory_fen: item.fee_fen,
                charged_fen: self.fee_fen,
            });
        }
        Ok(CheckedForm {
            item: ItemRef::from(item),
            applicant: Applicant {
                name,
                id,
                phone,
                village,
                group,
                address,
            },
            materials,
            fee: Fee {
                amount_fen: self.fee_fen,
                receipt_no,
            },
            remarks,
            warnings,
        })
    }
}

fn optional(input: &str, field: Field, max: usize) -> Result<String, FormError> {
    if normalize(input).is_empty() {
        Ok(String::new())
    } else {
        Ok(check_required(field, input, max)?)
    }
}
