//! The status of a ticket as a deterministic fold over its event list.
//!
//! Every replica holding the same events has them in the same order (Automerge orders
//! concurrent list inserts by operation id), so folding in list order gives the same status
//! everywhere. The fixed rule for events that do not fit the lifecycle (the village withdraws
//! while the township completes): the first in list order wins, the later one is kept in the
//! history, ignored for status, and the ticket is flagged 需核对 until a township admin records a
//! `reviewed` decision naming it (payload `resolves`: the anomalous events' ids).

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::catalog::StageBudgets;
use crate::domain::deadline::{ClockInput, Pause, Stage, StageSpan};
use crate::domain::event::{may_append, Event, EventKind, Outcome, Role, UNSATISFIED};

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// At the village point, not yet seen by the township.
    Registered,
    /// At the township, awaiting review.
    Received,
    /// Waiting for the applicant's supplement (一次性告知).
    AwaitingSupplement,
    Accepted,
    /// Being handled at the township.
    Handling,
    /// Forwarded to a district window.
    Forwarded,
    Completed,
    Rejected,
    /// The result is back at the village point, ready to deliver.
    Returned,
    Delivered,
    Withdrawn,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Status::Registered,
        Status::Received,
        Status::AwaitingSupplement,
        Status::Accepted,
        Status::Handling,
        Status::Forwarded,
        Status::Completed,
        Status::Rejected,
        Status::Returned,
        Status::Delivered,
        Status::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Registered => "registered",
            Status::Received => "received",
            Status::AwaitingSupplement => "awaiting_supplement",
            Status::Accepted => "accepted",
            Status::Handling => "handling",
            Status::Forwarded => "forwarded",
            Status::Completed => "completed",
            Status::Rejected => "rejected",
            Status::Returned => "returned",
            Status::Delivered => "delivered",
            Status::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Chinese label shown to agents, clerks and applicants.
    pub fn label(self) -> &'static str {
        match self {
            Status::Registered => "已登记，待上报",
            Status::Received => "乡镇中心已接收，待受理",
            Status::AwaitingSupplement => "待补正材料",
            Status::Accepted => "已受理",
            Status::Handling => "乡镇中心办理中",
            Status::Forwarded => "已转窗口办理",
            Status::Completed => "已办结",
            Status::Rejected => "不予受理",
            Status::Returned => "结果已到代理点，待领取",
            Status::Delivered => "已送达",
            Status::Withdrawn => "已撤回",
        }
    }

    /// The ticket needs no more work (deadline lists skip it).
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            Status::Completed
                | Status::Rejected
                | Status::Returned
                | Status::Delivered
                | Status::Withdrawn
        )
    }
}

/// An event that did not fit the lifecycle where it stands in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub event_id: String,
    pub kind: EventKind,
    /// Status the ticket was in when the event came.
    pub status: Status,
    pub reason: String,
}

/// The folded state of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub status: Status,
    /// A special procedure (hearing, testing, expert review) is running.
    pub special: bool,
    pub outcome: Option<Outcome>,
    pub certificate_no: Option<String>,
    pub evaluation: Option<u8>,
    /// The rating's legal day (the server's, or for a tablet's rating its `arrived` stamp).
    #[serde(default)]
    pub evaluated_on: Option<NaiveDate>,
    /// The day the township answered a 不满意 or worse rating (回访).
    #[serde(default)]
    pub followed_up: Option<NaiveDate>,
    /// Materials still missing from the outstanding supplement request.
    pub missing: Vec<String>,
    pub anomalies: Vec<Anomaly>,
    /// 需核对: anomalies after the last `reviewed` decision.
    pub needs_review: bool,
    /// Legal dates, for deadlines.
    pub clock: ClockInput,
}

/// Legal dates gathered while folding.
#[derive(Default)]
struct Dates {
    received: Option<NaiveDate>,
    review_end: Option<NaiveDate>,
    forwarded: Option<NaiveDate>,
    completed: Option<NaiveDate>,
    delivered: Option<NaiveDate>,
    /// Withdrawal closes whatever stage was open.
    withdrawn: Option<NaiveDate>,
}

struct Fold<'a> {
    arrivals: HashMap<&'a str, NaiveDate>,
    life: Lifecycle,
    dates: Dates,
    /// Status to go back to when the supplement is provided.
    resume: Option<Status>,
    registered: bool,
    /// Event ids of anomalies a township admin's `reviewed` decision resolved.
    resolved: Vec<String>,
}

impl<'a> Fold<'a> {
    /// The legal day of an event: its own time for staff and servers, the township's
    /// `arrived` stamp for a tablet event (None until the stamp exists).
    fn legal_day(&self, ev: &Event) -> Option<NaiveDate> {
        if ev.has_legal_time() {
            Some(china_day(ev))
        } else {
            self.arrivals.get(ev.id.as_str()).copied()
        }
    }

    fn open_pause(&mut self, day: Option<NaiveDate>) {
        if let (Some(requested), Some(_)) = (day, self.life.clock.accepted) {
            self.life.clock.pauses.push(Pause {
                requested,
                resumed: None,
            });
        }
    }

    fn close_pause(&mut self, day: Option<NaiveDate>) {
        if let Some(p) = self
            .life
            .clock
            .pauses
            .iter_mut()
            .rev()
            .find(|p| p.resumed.is_none())
        {
            p.resumed = day;
        }
    }

    fn review_decided(&mut self, day: Option<NaiveDate>) {
        if self.dates.review_end.is_none() {
            self.dates.review_end = day;
        }
    }

    /// Apply one event, or say why it does not fit.
    fn apply(&mut self, ev: &Event, first: bool) -> Result<(), String> {
        use EventKind as K;
        use Status as S;
        if !may_append(ev.role, ev.kind) {
            return Err(format!("{}无权记录“{}”", ev.role.label(), ev.kind.label()));
        }
        let st = self.life.status;
        let day = self.legal_day(ev);
        let working = matches!(st, S::Accepted | S::Handling | S::Forwarded);
        match ev.kind {
            K::Registered => {
                if !first || self.registered {
                    return Err("登记事件只能是第一条".into());
                }
                self.registered = true;
            }
            K::Received => {
                if self.dates.received.is_none() {
                    self.dates.received = day;
                }
                if st == S::Registered {
                    self.life.status = S::Received;
                }
            }
            K::Arrived => {}
            K::Reviewed => self.resolved.extend(ev.payload_list("resolves")),
            K::Accepted if st == S::Received => {
                self.life.status = S::Accepted;
                self.life.clock.accepted = day;
                self.review_decided(day);
            }
            K::SupplementRequested if st == S::Received || (working && !self.life.special) => {
                self.resume = Some(st);
                self.life.missing = ev.payload_list("missing");
                self.life.status = S::AwaitingSupplement;
                if st == S::Received {
                    self.review_decided(day);
                } else {
                    self.open_pause(day);
                }
            }
            K::SupplementProvided if st == S::AwaitingSupplement => {
                let back = self.resume.take().unwrap_or(S::Received);
                self.life.missing.clear();
                self.life.status = back;
                if back != S::Received {
                    self.close_pause(day);
                }
            }
            K::Rejected
                if st == S::Received
                    || (st == S::AwaitingSupplement && self.life.clock.accepted.is_none()) =>
            {
                self.life.status = S::Rejected;
                self.life.clock.finished = day;
                self.review_decided(day);
            }
            K::Handled if st == S::Accepted => self.life.status = S::Handling,
            K::Forwarded if matches!(st, S::Accepted | S::Handling) && !self.life.special => {
                self.life.status = S::Forwarded;
                self.dates.forwarded = day;
            }
            K::SpecialStarted if working && !self.life.special => {
                self.life.special = true;
                self.open_pause(day);
            }
            K::SpecialEnded if self.life.special => {
                self.life.special = false;
                self.close_pause(day);
            }
            K::Completed if working && !self.life.special => {
                self.life.outcome = match ev.payload_str("outcome") {
                    Some("approved") => Some(Outcome::Approved),
                    Some("denied") => Some(Outcome::Denied),
                    _ => return Err("办结须注明结果：批准（approved）或不予批准（denied）".into()),
                };
                self.life.status = S::Completed;
                self.life.certificate_no = ev.payload_str("certificate_no").map(str::to_owned);
                self.life.clock.finished = day;
                self.dates.completed = day;
            }
            K::Returned if matches!(st, S::Completed | S::Rejected) => {
                self.life.status = S::Returned;
            }
            K::Delivered if st == S::Returned => {
                self.life.status = S::Delivered;
                self.dates.delivered = day;
            }
            K::Evaluated
                if self.life.evaluation.is_none()
                    && matches!(st, S::Returned | S::Delivered | S::Rejected | S::Withdrawn) =>
            {
                let score = ev
                    .payload
                    .get("score")
                    .and_then(|v| v.as_u64())
                    .filter(|s| (1..=5).contains(s));
                match score {
                    Some(s) => {
                        self.life.evaluation = u8::try_from(s).ok();
                        self.life.evaluated_on = day;
                    }
                    None => return Err("评价分值应为1–5".into()),
                }
            }
            K::FollowedUp
                if self.life.followed_up.is_none()
                    && self.life.evaluation.is_some_and(|s| s <= UNSATISFIED) =>
            {
                self.life.followed_up = day;
            }
            K::Withdrawn if !st.is_closed() => {
                self.life.status = S::Withdrawn;
                self.life.special = false;
                // Legal date from the township's stamp only (None until it arrives).
                self.life.clock.finished = day;
                self.dates.withdrawn = day;
            }
            _ => {
                return Err(format!(
                    "“{}”不符合当前状态“{}”",
                    ev.kind.label(),
                    st.label()
                ))
            }
        }
        Ok(())
    }
}

/// The calendar day of an event in China Standard Time, whatever offset its writer used.
fn china_day(ev: &Event) -> NaiveDate {
    ev.at
        .with_timezone(&crate::store::china_offset())
        .date_naive()
}

/// Fold the events (in document order) into the ticket's lifecycle.
/// `promised_days` and `budgets` come from the catalog item the ticket was registered under.
pub fn fold(events: &[Event], promised_days: u32, budgets: &StageBudgets) -> Lifecycle {
    let mut arrivals = HashMap::new();
    for ev in events {
        if ev.kind == EventKind::Arrived && ev.role == Role::Server {
            if let Some(of) = ev.payload_str("of") {
                arrivals.entry(of).or_insert(china_day(ev));
            }
        }
    }
    let mut f = Fold {
        arrivals,
        life: Lifecycle {
            status: Status::Registered,
            special: false,
            outcome: None,
            certificate_no: None,
            evaluation: None,
            evaluated_on: None,
            followed_up: None,
            missing: Vec::new(),
            anomalies: Vec::new(),
            needs_review: false,
            clock: ClockInput {
                promised_days,
                ..ClockInput::default()
            },
        },
        dates: Dates::default(),
        resume: None,
        registered: false,
        resolved: Vec::new(),
    };
    for (i, ev) in events.iter().enumerate() {
        let status = f.life.status;
        if let Err(reason) = f.apply(ev, i == 0) {
            f.life.anomalies.push(Anomaly {
                event_id: ev.id.clone(),
                kind: ev.kind,
                status,
                reason,
            });
        }
    }
    // 需核对 until every anomaly is named by a decision: a decision clears only what the
    // admin saw, never an event that merged in beside it.
    f.life.needs_review = f
        .life
        .anomalies
        .iter()
        .any(|a| !f.resolved.contains(&a.event_id));
    f.life.clock.stages = stage_spans(&f.dates, budgets);
    f.life
}

fn stage_spans(d: &Dates, b: &StageBudgets) -> Vec<StageSpan> {
    let mut spans = Vec::new();
    if let Some(start) = d.received {
        spans.push(StageSpan {
            stage: Stage::TownshipReview,
            start,
            end: d.review_end.or(d.withdrawn),
            budget: b.township_review,
        });
    }
    if let Some(start) = d.forwarded {
        spans.push(StageSpan {
            stage: Stage::WindowHandling,
            start,
            end: d.completed.or(d.withdrawn),
            budget: b.window_handling,
        });
    }
    if let Some(start) = d.completed {
        // Delivered at the tablet but not yet stamped by the server: legally still open.
        spans.push(StageSpan {
            stage: Stage::ReturnToVillage,
            start,
            end: d.delivered,
            budget: b.return_to_village,
        });
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, FixedOffset};

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn ev(id: &str, kind: EventKind, role: Role, t: &str, payload: serde_json::Value) -> Event {
        Event {
            id: id.into(),
            kind,
            at: at(t),
            actor: "x".into(),
            role,
            note: String::new(),
            payload,
        }
    }

    fn base() -> Vec<Event> {
        let none = serde_json::json!({});
        vec![
            ev(
                "r",
                EventKind::Registered,
                Role::Agent,
                "2026-03-02T09:00:00+08:00",
                none.clone(),
            ),
            ev(
                "s",
                EventKind::Received,
                Role::Server,
                "2026-03-02T10:00:00+08:00",
                none.clone(),
            ),
            ev(
                "a",
                EventKind::Accepted,
                Role::Township,
                "2026-03-02T11:00:00+08:00",
                none,
            ),
        ]
    }

    #[test]
    fn a_review_clears_only_the_anomalies_it_names() {
        let none = serde_json::json!({});
        let mut events = base();
        events.push(ev(
            "d1",
            EventKind::Delivered,
            Role::Agent,
            "2026-03-03T09:00:00+08:00",
            none.clone(),
        ));
        let folded = fold(&events, 5, &StageBudgets::default());
        assert!(folded.needs_review);
        events.push(ev(
            "d2",
            EventKind::Delivered,
            Role::Agent,
            "2026-03-03T09:00:00+08:00",
            none,
        ));
        events.push(ev(
            "rv",
            EventKind::Reviewed,
            Role::Township,
            "2026-03-04T09:00:00+08:00",
            serde_json::json!({ "resolves": ["d1"] }),
        ));
        let folded = fold(&events, 5, &StageBudgets::default());
        assert_eq!(folded.anomalies.len(), 2);
        assert!(folded.needs_review, "d2 was never decided on");
        events.push(ev(
            "rv2",
            EventKind::Reviewed,
            Role::Township,
            "2026-03-04T10:00:00+08:00",
            serde_json::json!({ "resolves": ["d2"] }),
        ));
        assert!(!fold(&events, 5, &StageBudgets::default()).needs_review);
    }

    #[test]
    fn only_an_unsatisfied_rating_is_followed_up_and_only_once() {
        let mut events = base();
        for (id, kind, payload) in [
            (
                "c",
                EventKind::Completed,
                serde_json::json!({ "outcome": "approved" }),
            ),
            ("t", EventKind::Returned, serde_json::json!({})),
        ] {
            events.push(ev(
                id,
                kind,
                Role::Township,
                "2026-03-03T09:00:00+08:00",
                payload,
            ));
        }
        let rated = |score: u8| {
            let mut e = events.clone();
            e.push(ev(
                "e",
                EventKind::Evaluated,
                Role::Server,
                "2026-03-04T09:00:00+08:00",
                serde_json::json!({ "score": score }),
            ));
            for id in ["f1", "f2"] {
                e.push(ev(
                    id,
                    EventKind::FollowedUp,
                    Role::Township,
                    "2026-03-05T09:00:00+08:00",
                    serde_json::json!({}),
                ));
            }
            fold(&e, 5, &StageBudgets::default())
        };
        let answered = rated(2);
        assert_eq!(answered.followed_up, NaiveDate::from_ymd_opt(2026, 3, 5));
        let ids: Vec<&str> = answered
            .anomalies
            .iter()
            .map(|a| a.event_id.as_str())
            .collect();
        assert_eq!(ids, ["f2"], "a second answer does not fit");
        let satisfied = rated(3);
        assert_eq!(satisfied.followed_up, None);
        assert_eq!(satisfied.anomalies.len(), 2);
    }

    #[test]
    fn completion_needs_an_outcome() {
        let mut events = base();
        events.push(ev(
            "c",
            EventKind::Completed,
            Role::Township,
            "2026-03-03T09:00:00+08:00",
            serde_json::json!({}),
        ));
        let f = fold(&events, 5, &StageBudgets::default());
        assert_eq!(f.status, Status::Accepted);
        assert!(f.needs_review);
        events.pop();
        events.push(ev(
            "c",
            EventKind::Completed,
            Role::Township,
            "2026-03-03T09:00:00+08:00",
            serde_json::json!({ "outcome": "denied" }),
        ));
        let f = fold(&events, 5, &StageBudgets::default());
        assert_eq!(
            (f.status, f.outcome),
            (Status::Completed, Some(Outcome::Denied))
        );
    }

    #[test]
    fn a_tablet_withdrawal_has_no_legal_date_until_the_stamp() {
        let mut events = base();
        // The tablet's clock says 2019.
        events.push(ev(
            "w",
            EventKind::Withdrawn,
            Role::Agent,
            "2019-01-01T09:00:00+08:00",
            serde_json::json!({}),
        ));
        let f = fold(&events, 5, &StageBudgets::default());
        assert_eq!(f.status, Status::Withdrawn);
        assert_eq!(f.clock.finished, None);
        events.push(ev(
            "ar",
            EventKind::Arrived,
            Role::Server,
            "2026-03-05T10:00:00+08:00",
            serde_json::json!({ "of": "w" }),
        ));
        let f = fold(&events, 5, &StageBudgets::default());
        assert_eq!(f.clock.finished, NaiveDate::from_ymd_opt(2026, 3, 5));
    }

    #[test]
    fn legal_days_are_china_days_whatever_the_writer_offset() {
        let mut events = base();
        events.pop();
        // 23:30 UTC on 2 March is 07:30 on 3 March in China.
        events.push(ev(
            "a",
            EventKind::Accepted,
            Role::Township,
            "2026-03-02T23:30:00+00:00",
            serde_json::json!({}),
        ));
        let f = fold(&events, 5, &StageBudgets::default());
        assert_eq!(f.clock.accepted, NaiveDate::from_ymd_opt(2026, 3, 3));
    }
}
