//! Lifecycle events: the append-only history of a ticket, and which role may append what.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// Who appends an event. Every actor (device, staff account, server) has exactly one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The village proxy agent (代理员) on a tablet.
    Agent,
    /// Township service center staff (乡镇中心).
    Township,
    /// District department window staff (窗口).
    Window,
    /// A township or district server: stamps (`received`, `arrived`) and SMS ratings.
    Server,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Township => "township",
            Role::Window => "window",
            Role::Server => "server",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Agent, Role::Township, Role::Window, Role::Server]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Chinese label for printed forms and the console.
    pub fn label(self) -> &'static str {
        match self {
            Role::Agent => "村代理员",
            Role::Township => "乡镇中心",
            Role::Window => "区县窗口",
            Role::Server => "系统",
        }
    }
}

/// The kinds of lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The agent registered the ticket at the village point (always the first event).
    Registered,
    /// Stamp: the ticket first reached its township server (server time).
    Received,
    /// Stamp: a clock-moving tablet event first reached the township server; payload `of`.
    Arrived,
    /// 受理: the clock starts.
    Accepted,
    /// 一次性告知: the complete list of missing materials (payload `missing`).
    SupplementRequested,
    /// 补正: the missing materials were handed in (payload `provided`).
    SupplementProvided,
    /// 不予受理, with a reason.
    Rejected,
    /// The township handles the item itself.
    Handled,
    /// 转办 to a district window (payload `window`).
    Forwarded,
    /// A special procedure (hearing, testing, expert review) pauses the clock.
    SpecialStarted,
    SpecialEnded,
    /// 办结: payload `outcome` (approved / denied), `reason`, `certificate_no`.
    Completed,
    /// The result went back to the village point.
    Returned,
    /// 送达 / 签收 at the village point.
    Delivered,
    /// 好差评, payload `score` 1–5.
    Evaluated,
    /// The applicant withdrew the request.
    Withdrawn,
    /// A township admin resolved 需核对 with a recorded decision; payload `resolves`: the ids
    /// of the anomalous events it decided on.
    Reviewed,
    /// 回访答复: the township answered a 不满意 or worse rating (the answer is the note).
    FollowedUp,
}

impl EventKind {
    pub const ALL: [EventKind; 18] = [
        EventKind::Registered,
        EventKind::Received,
        EventKind::Arrived,
        EventKind::Accepted,
        EventKind::SupplementRequested,
        EventKind::SupplementProvided,
        EventKind::Rejected,
        EventKind::Handled,
        EventKind::Forwarded,
        EventKind::SpecialStarted,
        EventKind::SpecialEnded,
        EventKind::Completed,
        EventKind::Returned,
        EventKind::Delivered,
        EventKind::Evaluated,
        EventKind::Withdrawn,
        EventKind::Reviewed,
        EventKind::FollowedUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Registered => "registered",
            EventKind::Received => "received",
            EventKind::Arrived => "arrived",
            EventKind::Accepted => "accepted",
            EventKind::SupplementRequested => "supplement_requested",
            EventKind::SupplementProvided => "supplement_provided",
            EventKind::Rejected => "rejected",
            EventKind::Handled => "handled",
            EventKind::Forwarded => "forwarded",
            EventKind::SpecialStarted => "special_started",
            EventKind::SpecialEnded => "special_ended",
            EventKind::Completed => "completed",
            EventKind::Returned => "returned",
            EventKind::Delivered => "delivered",
            EventKind::Evaluated => "evaluated",
            EventKind::Withdrawn => "withdrawn",
            EventKind::Reviewed => "reviewed",
            EventKind::FollowedUp => "followed_up",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Chinese label for the timeline.
    pub fn label(self) -> &'static str {
        match self {
            EventKind::Registered => "村代理点登记",
            EventKind::Received => "乡镇中心接收",
            EventKind::Arrived => "到达乡镇中心",
            EventKind::Accepted => "受理",
            EventKind::SupplementRequested => "一次性告知补正",
            EventKind::SupplementProvided => "补正材料已提交",
            EventKind::Rejected => "不予受理",
            EventKind::Handled => "乡镇中心办理",
            EventKind::Forwarded => "转办窗口",
            EventKind::SpecialStarted => "特别程序开始",
            EventKind::SpecialEnded => "特别程序结束",
            EventKind::Completed => "办结",
            EventKind::Returned => "结果送回代理点",
            EventKind::Delivered => "送达签收",
            EventKind::Evaluated => "评价",
            EventKind::Withdrawn => "申请人撤回",
            EventKind::Reviewed => "核对处理",
            EventKind::FollowedUp => "差评回访答复",
        }
    }

    /// Tablet events whose legal time is the township server's `arrived` stamp: those that
    /// move the clock, and a rating, whose day starts the follow-up's answer deadline.
    pub fn moves_clock_from_tablet(self) -> bool {
        matches!(
            self,
            EventKind::SupplementProvided
                | EventKind::Delivered
                | EventKind::Withdrawn
                | EventKind::Evaluated
        )
    }
}

/// The one role table: which role may append which event.
/// An evaluation comes from the agent (rated at the point) or a server (rated by SMS).
pub fn may_append(role: Role, kind: EventKind) -> bool {
    use EventKind::*;
    match role {
        Role::Agent => matches!(
            kind,
            Registered | SupplementProvided | Delivered | Evaluated | Withdrawn
        ),
        Role::Township => matches!(
            kind,
            Accepted
                | SupplementRequested
                | SupplementProvided
                | Rejected
                | Handled
                | Forwarded
                | SpecialStarted
                | SpecialEnded
                | Completed
                | Returned
                | Withdrawn
                | Reviewed
                | FollowedUp
        ),
        Role::Window => matches!(
            kind,
            SupplementRequested | SpecialStarted | SpecialEnded | Completed
        ),
        Role::Server => matches!(kind, Received | Arrived | Evaluated),
    }
}

/// Result of a completed ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approved,
    Denied,
}

/// The highest 好差评 score that opens a follow-up (回访): 2 不满意 or 1 非常不满意.
pub const UNSATISFIED: u8 = 2;

/// The five 好差评 levels.
pub fn evaluation_label(score: u8) -> &'static str {
    match score {
        5 => "非常满意",
        4 => "满意",
        3 => "基本满意",
        2 => "不满意",
        1 => "非常不满意",
        _ => "未知评价",
    }
}

/// One event as stored in the ticket document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique within the ticket; `arrived` stamps refer to it.
    pub id: String,
    pub kind: EventKind,
    /// Time as reported by whoever appended it: device time for tablets (not trusted for
    /// deadlines), server time for staff and server events.
    pub at: DateTime<FixedOffset>,
    /// Agent id, staff account or server id.
    pub actor: String,
    pub role: Role,
    pub note: String,
    /// Kind-specific details (see [`EventKind`]); an empty object when none.
    pub payload: serde_json::Value,
}

impl Event {
    /// A string field of the payload.
    pub fn payload_str(&self, key: &str) -> Option<&str> {
        self.payload.get(key).and_then(|v| v.as_str())
    }

    /// A list-of-strings field of the payload (materials).
    pub fn payload_list(&self, key: &str) -> Vec<String> {
        self.payload
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether this event's time is legal (server clock) rather than a tablet's.
    pub fn has_legal_time(&self) -> bool {
        self.role != Role::Agent
    }
}

/// What a caller asks to append; the store or server fills in id, actor, role and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDraft {
    pub kind: EventKind,
    #[serde(default)]
    pub note: String,
    #[serde(default = "empty_payload")]
    pub payload: serde_json::Value,
}

fn empty_payload() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

impl EventDraft {
    pub fn new(kind: EventKind, note: impl Into<String>) -> Self {
        Self {
            kind,
            note: note.into(),
            payload: empty_payload(),
        }
    }

    /// Add a payload field.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        if let serde_json::Value::Object(map) = &mut self.payload {
            map.insert(key.to_owned(), value.into());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_table_matches_the_design() {
        assert!(may_append(Role::Agent, EventKind::Registered));
        assert!(
            !may_append(Role::Agent, EventKind::Completed),
            "a tablet cannot complete"
        );
        assert!(
            !may_append(Role::Township, EventKind::Delivered),
            "a township cannot sign"
        );
        assert!(
            !may_append(Role::Agent, EventKind::Received),
            "only servers stamp"
        );
        assert!(
            may_append(Role::Server, EventKind::Evaluated),
            "SMS ratings"
        );
        assert!(may_append(Role::Window, EventKind::Completed));
        assert!(!may_append(Role::Window, EventKind::Forwarded));
    }

    #[test]
    fn kind_names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(EventKind::parse("bogus"), None);
    }
}
