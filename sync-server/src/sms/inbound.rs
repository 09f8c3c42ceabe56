//! Inbound texts: a status query answered only to the phone registered on the ticket (anyone
//! else gets exactly what an unknown number gets), a number with a wrong check digit asked to
//! be checked, a 好差评 rating appended to the ticket as an `evaluated` event, 退订.
//!
//! Nothing is ever answered to operator or service numbers (10086, 10010, 10000, 106…,
//! 95…): only 11-digit mainland mobiles get replies, so two machines cannot loop. A phone
//! past its rate limit gets no reply at all, so nobody can walk the ticket numbers.

use chrono::{DateTime, Duration, FixedOffset};
use rusqlite::{params, OptionalExtension};

use agent_core::doc::TicketDoc;
use agent_core::domain::deadline::DEFAULT_MARGIN;
use agent_core::domain::event::{evaluation_label, EventDraft, EventKind, Role, UNSATISFIED};
use agent_core::domain::lifecycle::Status;
use agent_core::domain::number::TicketNumber;
use agent_core::domain::ticket::TicketView;
use agent_core::domain::validate::check_mobile;

use super::outbox::{enqueue, opt_out, Queued};
use super::templates::Message;
use super::text::{self, Asked};
use super::{Incoming, Template};
use crate::error::{Error, Result};
use crate::index::Scope;
use crate::staff::{self, Staff};
use crate::store::{load_doc, ServerStore};
use crate::sync::ServerInfo;

/// Texts one phone may send in an hour, and in a day, before it gets no more replies.
pub const PER_HOUR: i64 = 6;
pub const PER_DAY: i64 = 20;

/// Handle one inbound text: record it (once per reference), act on it, queue the reply.
/// Returns what it was read as (for logs and tests; never the text or the phone).
pub fn handle(
    store: &mut ServerStore,
    info: &ServerInfo,
    sign: &str,
    msg: &Incoming,
    now: DateTime<FixedOffset>,
) -> Result<&'static str> {
    let seen = store
        .conn()
        .query_row(
            "SELECT 1 FROM sms_inbox WHERE reference = ?1",
            [&msg.reference],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if seen {
        return Ok("seen");
    }
    let asked = text::parse(&msg.text);
    // Operators, service numbers and short codes get nothing back.
    let Ok(phone) = check_mobile(&msg.from) else {
        let text = Handled::silent("no_reply");
        return note(store, info, msg, &msg.from, text, sign, now);
    };
    let since = |d: Duration| (now - d).to_rfc3339();
    let (hour, day): (i64, i64) = store.conn().query_row(
        "SELECT COUNT(*) FILTER (WHERE received >= ?2), COUNT(*) FROM sms_inbox
         WHERE phone = ?1 AND received >= ?3",
        params![phone, since(Duration::hours(1)), since(Duration::days(1))],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let limited = hour >= PER_HOUR || day >= PER_DAY;
    if asked == Asked::Unsubscribe {
        // Honoured even past the limit (then without a reply).
        let tx = store.begin()?;
        opt_out(&tx, &phone, now)?;
        tx.commit()?;
    }
    let handled = if limited {
        Handled::silent("limited")
    } else {
        match asked {
            Asked::Query(number) => {
                // A ticket that does not load answers as one that is not there.
                let own = own_ticket(store, &number, &phone, now).unwrap_or_else(|e| {
                    tracing::error!(ticket = %number, error = %e, "ticket for an SMS query does not load");
                    None
                });
                match own {
                    Some(view) => Handled {
                        asked: "query",
                        ticket: Some(number.as_str().to_owned()),
                        reply: Some(status(store, &view)?),
                    },
                    None => Handled::reply("query", unknown(number.as_str())),
                }
            }
            Asked::BadNumber => {
                Handled::reply("bad_number", Message::new(Template::CheckNumber, &[]))
            }
            Asked::Rating {
                score,
                numbers,
                comment,
            } => {
                // Recorded before the rating is appended: a text read again after a kill in
                // between is seen, never a second rating (at worst a rating lost).
                note(
                    store,
                    info,
                    msg,
                    &phone,
                    Handled::silent("rating"),
                    sign,
                    now,
                )?;
                match rate(store, info, &phone, score, &numbers, &comment, now) {
                    Ok((ticket, reply)) => Handled {
                        asked: "rating",
                        ticket,
                        reply: Some(reply),
                    },
                    Err(e) => {
                        tracing::error!(error = %e, "SMS rating not recorded");
                        Handled::reply("rating_failed", Message::new(Template::Help, &[]))
                    }
                }
            }
            Asked::Unsubscribe => {
                Handled::reply("unsubscribe", Message::new(Template::Unsubscribed, &[]))
            }
            Asked::Unknown => Handled::reply("unknown", Message::new(Template::Help, &[])),
        }
    };
    note(store, info, msg, &phone, handled, sign, now)
}

/// What an inbound text was read as, the applicant's own ticket it concerned, and the reply.
struct Handled {
    asked: &'static str,
    ticket: Option<String>,
    reply: Option<Message>,
}

impl Handled {
    fn silent(asked: &'static str) -> Handled {
        Handled {
            asked,
            ticket: None,
            reply: None,
        }
    }

    fn reply(asked: &'static str, reply: Message) -> Handled {
        Handled {
            asked,
            ticket: None,
            reply: Some(reply),
        }
    }
}

/// Record the inbound text and queue its reply, in one transaction. The reply is listed
/// under the ticket's township, else this server's.
fn note(
    store: &mut ServerStore,
    info: &ServerInfo,
    msg: &Incoming,
    phone: &str,
    handled: Handled,
    sign: &str,
    now: DateTime<FixedOffset>,
) -> Result<&'static str> {
    let ticket = handled.ticket.as_deref();
    let township = match ticket.and_then(|n| TicketNumber::parse(n).ok()) {
        Some(n) => store.directory()?.township_of(n.point()).map(str::to_owned),
        None => None,
    }
    .or_else(|| info.township.clone());
    let tx = store.begin()?;
    tx.execute(
        "INSERT INTO sms_inbox (reference, phone, text, received, asked, ticket)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (reference) DO UPDATE SET asked = excluded.asked, ticket = excluded.ticket",
        params![
            msg.reference,
            phone,
            msg.text,
            now.to_rfc3339(),
            handled.asked,
            ticket
        ],
    )?;
    if let Some(message) = handled.reply {
        let q = Queued {
            reason: format!("reply:{}", msg.reference),
            ticket: ticket.map(str::to_owned),
            township,
            phone: phone.to_owned(),
            message,
        };
        enqueue(&tx, &q, sign, now)?;
    }
    tx.commit()?;
    Ok(handled.asked)
}

/// What a query for a ticket that is not this phone's gets: the same as for a number never
/// issued.
fn unknown(number: &str) -> Message {
    Message::new(Template::Unknown, &[("number", number)])
}

/// The ticket if the server holds it and `phone` is the one registered on it.
fn own_ticket(
    store: &ServerStore,
    number: &TicketNumber,
    phone: &str,
    now: DateTime<FixedOffset>,
) -> Result<Option<TicketView>> {
    let Some(bytes) = load_doc(store.conn(), number.as_str())? else {
        return Ok(None);
    };
    let ticket = TicketDoc::load_own(&bytes, store.actor()).and_then(|d| d.read())?;
    if ticket.applicant.phone.as_deref() != Some(phone) {
        return Ok(None);
    }
    let calendar = store.calendar()?;
    Ok(Some(ticket.view(
        &calendar,
        now.date_naive(),
        DEFAULT_MARGIN,
    )))
}

/// The status reply: the item, where it stands and what to do next.
fn status(store: &ServerStore, view: &TicketView) -> Result<Message> {
    let t = &view.ticket;
    let point = store
        .directory()?
        .point(t.point)
        .map_or_else(|| "代办点".to_owned(), |p| p.name.clone());
    let due = view
        .deadline
        .due
        .map(|d| format!("，承诺{}前办结", d.format("%Y-%m-%d")))
        .unwrap_or_default();
    let (stage, next) = match view.life.status {
        Status::Registered | Status::Received => ("已登记，待乡镇受理".to_owned(), String::new()),
        Status::Accepted | Status::Handling | Status::Forwarded => {
            (format!("已受理{due}"), String::new())
        }
        Status::AwaitingSupplement => (
            "待补正".to_owned(),
            format!("请到{point}补交：{}", view.life.missing.join("、")),
        ),
        Status::Completed => ("已办结".to_owned(), "结果正送回代办点".to_owned()),
        Status::Returned => (
            "已办结".to_owned(),
            format!("结果已到{point}，请本人持身份证领取"),
        ),
        Status::Delivered => ("已送达".to_owned(), String::new()),
        Status::Rejected => ("不予受理".to_owned(), format!("详情请到{point}咨询")),
        Status::Withdrawn => ("已撤回".to_owned(), String::new()),
    };
    Ok(Message::new(
        Template::Status,
        &[
            ("number", t.number.as_str()),
            ("item", &t.item.name),
            ("stage", &stage),
            ("next", &next),
        ],
    ))
}

/// Which ticket a bare rating is for.
#[derive(Debug, PartialEq, Eq)]
enum Choice<'a> {
    None,
    One(&'a str),
    /// Delivered the same day: which one is meant cannot be told.
    Which(Vec<&'a str>),
}

/// From the phone's unrated delivered tickets, latest delivery first: the latest, unless
/// another was delivered the same day.
fn choose(found: &[(String, Option<String>)]) -> Choice<'_> {
    match found {
        [] => Choice::None,
        [a, b, ..] if a.1 == b.1 => Choice::Which(
            found
                .iter()
                .filter(|f| f.1 == a.1)
                .map(|f| f.0.as_str())
                .collect(),
        ),
        [latest, ..] => Choice::One(&latest.0),
    }
}

/// Rate the ticket named, or else the phone's most recently delivered unrated ticket: append
/// the `evaluated` event as the server; the ticket rated and the reply.
fn rate(
    store: &mut ServerStore,
    info: &ServerInfo,
    phone: &str,
    score: u8,
    named: &[TicketNumber],
    comment: &str,
    now: DateTime<FixedOffset>,
) -> Result<(Option<String>, Message)> {
    let number = match named {
        [n] => match own_ticket(store, n, phone, now)? {
            Some(v) if v.life.evaluation.is_none() => n.as_str().to_owned(),
            _ => return Ok((None, unknown(n.as_str()))),
        },
        // Several named: which one is meant cannot be told.
        [_, ..] => {
            let all: Vec<&str> = named.iter().map(TicketNumber::as_str).collect();
            return Ok((
                None,
                Message::new(Template::WhichTicket, &[("numbers", &all.join("、"))]),
            ));
        }
        [] => {
            crate::index::refresh(store)?;
            // Unrated and delivered, the latest delivery first.
            let mut stmt = store.conn().prepare(
                "SELECT ticket, delivered FROM ticket_index
                 WHERE phone = ?1 AND status = 'delivered' AND evaluation IS NULL
                 ORDER BY delivered DESC, ticket DESC LIMIT 5",
            )?;
            let found = stmt
                .query_map([phone], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            drop(stmt);
            match choose(&found) {
                Choice::None => return Ok((None, Message::new(Template::Help, &[]))),
                Choice::Which(same) => {
                    return Ok((
                        None,
                        Message::new(Template::WhichTicket, &[("numbers", &same.join("、"))]),
                    ))
                }
                Choice::One(number) => number.to_owned(),
            }
        }
    };
    let server = Staff {
        login: info.server_id.clone(),
        role: Role::Server,
        scope: Scope::default(),
        reviews: false,
    };
    let draft = EventDraft {
        kind: EventKind::Evaluated,
        note: comment.to_owned(),
        payload: serde_json::json!({ "score": score, "via": "sms" }),
    };
    match staff::append(store, info, &number, &server, &draft, now) {
        Ok(_) => {}
        // Rated meanwhile (at the point, or by an earlier text).
        Err(Error::Refused(_)) => return Ok((None, unknown(&number))),
        Err(e) => return Err(e),
    }
    let more = if score <= UNSATISFIED {
        format!("我们将在{}个工作日内回访。", info.followup_days)
    } else {
        "谢谢！".to_owned()
    };
    Ok((
        Some(number.clone()),
        Message::new(
            Template::Rated,
            &[
                ("number", &number),
                ("level", evaluation_label(score)),
                ("more", &more),
            ],
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_rating_goes_to_the_latest_delivery_unless_two_share_its_day() {
        let row = |t: &str, d: &str| (t.to_owned(), Some(d.to_owned()));
        assert_eq!(choose(&[]), Choice::None);
        assert_eq!(
            choose(&[row("a", "2026-06-05"), row("b", "2026-06-01")]),
            Choice::One("a")
        );
        assert_eq!(
            choose(&[
                row("a", "2026-06-05"),
                row("b", "2026-06-05"),
                row("c", "2026-06-01")
            ]),
            Choice::Which(vec!["a", "b"])
        );
    }
}
