//! SMS (短信): status queries, notifications and 好差评 ratings through a GSM modem
//! (smstools3's spool) or a cloud SMS provider (Aliyun, Tencent Cloud).
//!
//! - [`text`]: what a villager's inbound text asks (a query, a rating, 退订), tolerant of
//!   keywords, full-width characters, spaces and extra words.
//! - [`smstools`]: the smsd spool: outgoing files (UCS2 for Chinese, written then renamed
//!   into `outgoing/`), incoming files parsed by header name.
//! - [`aliyun`], [`tencent`]: SendSms with the providers' signatures, and their inbound-reply
//!   callbacks.

pub mod aliyun;
pub mod callback;
pub mod inbound;
pub mod notify;
pub mod outbox;
pub mod service;
pub mod sign;
pub mod smstools;
pub mod templates;
pub mod tencent;
pub mod text;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// Which message. Each is one Chinese text here (for the modem) and one pre-approved
/// template code with named parameters at a cloud provider (mapped in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// Reply to a status query: item, stage, promised date, what to do next.
    Status,
    /// The number's check digit fails.
    CheckNumber,
    /// No ticket under this number for this phone (the same reply whether it exists or not).
    Unknown,
    /// A text we could not read (or a rating with nothing to rate): how to query and rate.
    Help,
    /// A supplement was requested: the complete list of missing materials.
    Supplement,
    /// The result is back at the village point.
    ResultReady,
    /// To the owner agent and the township: a ticket is overdue.
    Overdue,
    /// After delivery: please rate the service.
    RateInvite,
    /// A rating was recorded.
    Rated,
    /// A bare rating digit fits more than one ticket: which one?
    WhichTicket,
    /// 退订 confirmed.
    Unsubscribed,
}

impl Template {
    pub const ALL: [Template; 11] = [
        Template::Status,
        Template::CheckNumber,
        Template::Unknown,
        Template::Help,
        Template::Supplement,
        Template::ResultReady,
        Template::Overdue,
        Template::RateInvite,
        Template::Rated,
        Template::WhichTicket,
        Template::Unsubscribed,
    ];

    /// Its name in the config (`[sms.aliyun.templates]` etc.) and the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            Template::Status => "status",
            Template::CheckNumber => "check_number",
            Template::Unknown => "unknown",
            Template::Help => "help",
            Template::Supplement => "supplement",
            Template::ResultReady => "result_ready",
            Template::Overdue => "overdue",
            Template::RateInvite => "rate_invite",
            Template::Rated => "rated",
            Template::WhichTicket => "which_ticket",
            Template::Unsubscribed => "unsubscribed",
        }
    }

    /// What staff see in the outbox.
    pub fn label(self) -> &'static str {
        match self {
            Template::Status => "进度查询答复",
            Template::CheckNumber => "编号有误提示",
            Template::Unknown => "未查到答复",
            Template::Help => "使用说明",
            Template::Supplement => "补正通知",
            Template::ResultReady => "领取通知",
            Template::Overdue => "超期提醒",
            Template::RateInvite => "评价邀请",
            Template::Rated => "评价回执",
            Template::WhichTicket => "评价确认",
            Template::Unsubscribed => "退订确认",
        }
    }

    pub fn parse(s: &str) -> Option<Template> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One message as handed to a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The outbox row: stable across retries and restarts. The spool names its file by it, so
    /// a message smsd already has is not handed over again; the cloud providers only echo it
    /// back (`OutId`, `SessionContext`) and keep no such memory, so a server killed between
    /// their answer and its record sends that message again.
    pub id: i64,
    /// An 11-digit mainland mobile number, no country code.
    pub phone: String,
    pub template: Template,
    /// The template's named parameters, in the template's order.
    pub params: Vec<(String, String)>,
    /// The whole text in Simplified Chinese, as the modem sends it.
    pub text: String,
}

/// What a gateway did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handed {
    /// Taken: the spool file is in `outgoing/`, or the provider accepted it (its reference).
    Accepted { reference: String },
    /// Not sent; `retry`: worth trying again later (network, throttling), else final
    /// (bad number, template refused, account problem).
    Failed { reason: String, retry: bool },
}

/// An inbound SMS as a gateway received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The sender as the gateway gave it, with any `86` / `+86` prefix removed.
    pub from: String,
    pub text: String,
    /// When it was received (the gateway's clock; the server's when the gateway has none).
    pub received: DateTime<FixedOffset>,
    /// Unique per inbound message at its gateway (spool file name, provider message id), so a
    /// message seen twice is handled once.
    pub reference: String,
}
