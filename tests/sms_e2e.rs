//! SMS end to end across real processes, through the smstools3 spool files (the format smsd
//! 3.1.21 reads and writes; `sync-server/tests/smsd.rs` runs the real daemon on them): a
//! ticket registered offline at a village tablet and synced, a supplement requested at the
//! township → a text in `outgoing/` with the missing materials; a status query from the
//! registered phone → the status; from another phone → exactly what an unknown number gets;
//! after delivery a rating reply → an evaluation on the ticket, visible at the district.
//! And crash safety: a server killed between storing a message and handing it over, or
//! between handing it over and recording that, sends it exactly once after the restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agent_core::domain::catalog::{Catalog, HandlingLevel};
use agent_core::domain::event::{EventDraft, EventKind};
use agent_core::domain::number::TicketNumber;
use agent_core::domain::ticket::NewTicket;
use agent_core::sync::client::sync_now;
use serde_json::json;
use support::*;

const PHONE: &str = "13912345678";
const OTHER: &str = "13987654321";
const SIGN: &str = "示范县代办";

/// A township (under a district) whose SMS gateway is the smstools spool at `spool`, served
/// with `env` (stderr captured when `capture`, for fault points).
fn township_with_sms(
    dir: &Path,
    district: &Server,
    spool: &Path,
    env: &[(&str, &str)],
    capture: bool,
) -> Server {
    let data = dir.join("township");
    if !data.exists() {
        init_township(&data, TOWNSHIP_A, &district.url);
        enroll_township(district, &data, TOWNSHIP_A);
        for sub in ["outgoing", "incoming", "sent", "failed", "checked"] {
            std::fs::create_dir_all(spool.join(sub)).unwrap();
        }
        let mut config = std::fs::read_to_string(data.join("daiban.toml")).unwrap();
        config.push_str(&format!(
            "\n[sms]\ngateway = \"smstools\"\nsign_name = \"{SIGN}\"\npoll_secs = 1\n\n[sms.smstools]\nspool = \"{}\"\n",
            spool.display()
        ));
        std::fs::write(data.join("daiban.toml"), config).unwrap();
    }
    serve_with(&data, "127.0.0.1:0", env, capture)
}

/// An outgoing spool file: to whom, and the text.
#[derive(Debug, Clone)]
struct Sms {
    file: String,
    to: String,
    text: String,
}

/// Read an outgoing file the way smsd does: headers, a blank line, the body (UTF-16BE with
/// `Alphabet: UCS2`).
fn read_outgoing(path: &Path) -> Sms {
    let bytes = std::fs::read(path).unwrap();
    let split = bytes.windows(2).position(|w| w == b"\n\n").unwrap();
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let body = &bytes[split + 2..];
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_owned)
    };
    let text = if header("Alphabet").as_deref() == Some("UCS2") {
        let units: Vec<u16> = body
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).unwrap()
    } else {
        String::from_utf8(body.to_vec()).unwrap()
    };
    Sms {
        file: path.file_name().unwrap().to_string_lossy().into_owned(),
        to: header("To").unwrap(),
        text,
    }
}

fn outgoing(spool: &Path) -> Vec<Sms> {
    let mut all: Vec<Sms> = std::fs::read_dir(spool.join("outgoing"))
        .unwrap()
        .map(|e| read_outgoing(&e.unwrap().path()))
        .collect();
    all.sort_by(|a, b| a.file.cmp(&b.file));
    all
}

/// Wait for a new outgoing text to `phone` (one not in `seen`) and mark it seen.
fn next_to(spool: &Path, phone: &str, seen: &mut Vec<String>) -> Sms {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(sms) = outgoing(spool)
            .into_iter()
            .find(|s| s.to == format!("86{phone}") && !seen.contains(&s.file))
        {
            seen.push(sms.file.clone());
            return sms;
        }
        assert!(
            Instant::now() < deadline,
            "no new text to {phone}; outgoing: {:?}",
            outgoing(spool)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Drop an inbound text into `incoming/` as smsd 3.1.21 writes one (UCS2 body).
fn inbound(spool: &Path, name: &str, from: &str, text: &str) {
    // Mobiles come with the country code; service numbers as they are.
    let from = if from.len() == 11 {
        format!("86{from}")
    } else {
        from.to_owned()
    };
    let mut file = format!(
        "From: {from}\nFrom_TOA: 91 international, ISDN/telephone\nFrom_SMSC: 8613800731500\n\
         Sent: 26-06-01 10:00:00\nReceived: 26-06-01 10:00:05\nSubject: GSM1\nModem: GSM1\n\
         IMSI: 460001234567890\nIMEI: 861234567890123\nReport: no\nAlphabet: UCS2\nLength: {}\n\n",
        text.encode_utf16().count()
    )
    .into_bytes();
    for unit in text.encode_utf16() {
        file.extend_from_slice(&unit.to_be_bytes());
    }
    let tmp = spool.join(format!("{name}.part"));
    std::fs::write(&tmp, file).unwrap();
    std::fs::rename(tmp, spool.join("incoming").join(name)).unwrap();
}

/// A form for an item the township handles itself, for `PHONE`.
fn form() -> NewTicket {
    let catalog = Catalog::demo();
    let mut form = agent_core::demo::forms(11, 300, &catalog)
        .into_iter()
        .find(|f| {
            catalog
                .item(&f.item_code)
                .is_some_and(|i| i.level == HandlingLevel::Township && !i.materials.is_empty())
        })
        .unwrap();
    form.phone = Some(PHONE.into());
    form
}

fn agent(tablet: &mut agent_core::store::Store, number: &TicketNumber, kind: EventKind) {
    tablet
        .append(
            number,
            &EventDraft {
                kind,
                note: String::new(),
                payload: json!({}),
            },
        )
        .unwrap();
}

#[test]
fn queries_notifications_and_a_rating_by_sms_across_real_processes() {
    let dir = tempfile::tempdir().unwrap();
    let spool: PathBuf = dir.path().join("spool");
    let district_data = dir.path().join("district");
    init_district(&district_data);
    let district = serve(&district_data);
    let township = township_with_sms(dir.path(), &district, &spool, &[], false);
    sync_upward(&township);
    let mut tablet = tablet(dir.path(), &township, 101, 1);
    let form = form();
    let catalog = Catalog::demo();
    let item = catalog.item(&form.item_code).unwrap();
    let registered = tablet.register(&form).unwrap();
    let number = registered.view.ticket.number.clone();
    let id_number = registered.view.ticket.applicant.id.stored.clone();
    sync_now(&mut tablet, township.url.as_str()).unwrap();
    let mut seen = Vec::new();

    // A supplement requested at the township: the applicant is told what to bring.
    let material = item.materials[0].name.clone();
    staff_ok(
        &township,
        "township",
        &number,
        "supplement_requested",
        json!({ "missing": [material] }),
    );
    let told = next_to(&spool, PHONE, &mut seen);
    assert!(told.text.starts_with(&format!("【{SIGN}】")), "{told:?}");
    assert!(
        told.text.contains("需补交") && told.text.contains(&material),
        "{told:?}"
    );
    assert!(told.text.contains(number.as_str()), "{told:?}");

    // The registered phone asks (full-width keyword, spaces in the number).
    let spaced = format!(
        "{} {} {}",
        &number.as_str()[..4],
        &number.as_str()[4..8],
        &number.as_str()[8..]
    );
    inbound(&spool, "GSM1.q1", PHONE, &format!("ＣＸ {spaced} 谢谢"));
    let status = next_to(&spool, PHONE, &mut seen);
    assert!(
        status.text.contains(&item.name)
            && status.text.contains("待补正")
            && status.text.contains(&material),
        "{status:?}"
    );

    // Another phone asking for it gets exactly what a number never issued gets.
    let never = TicketNumber::new(101, 9, 99_999).unwrap();
    inbound(&spool, "GSM1.q2", OTHER, &format!("查询{number}"));
    let theirs = next_to(&spool, OTHER, &mut seen);
    inbound(&spool, "GSM1.q3", OTHER, &format!("查询{never}"));
    let unknown = next_to(&spool, OTHER, &mut seen);
    assert_eq!(
        theirs.text.replace(number.as_str(), "#"),
        unknown.text.replace(never.as_str(), "#"),
        "a ticket not registered to the phone answers as an unknown number"
    );
    assert!(!theirs.text.contains(&item.name), "{theirs:?}");

    // A wrong check digit is never looked up.
    let mut wrong = number.as_str().to_owned();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '9' {
        '0'
    } else {
        char::from(last as u8 + 1)
    });
    inbound(&spool, "GSM1.q4", PHONE, &format!("查询 {wrong}"));
    let check = next_to(&spool, PHONE, &mut seen);
    assert!(check.text.contains("编号有误"), "{check:?}");

    // An operator's number gets no answer.
    inbound(&spool, "GSM1.q5", "10086", "您的话费余额为5元");

    // The supplement handed in; the ticket handled, completed and returned: the applicant is
    // told the result is at the village point.
    sync_now(&mut tablet, township.url.as_str()).unwrap();
    agent(&mut tablet, &number, EventKind::SupplementProvided);
    sync_now(&mut tablet, township.url.as_str()).unwrap();
    for (kind, payload) in [
        ("accepted", json!({})),
        ("handled", json!({})),
        (
            "completed",
            json!({ "outcome": "approved", "certificate_no": "ZS-9" }),
        ),
        ("returned", json!({})),
    ] {
        staff_ok(&township, "township", &number, kind, payload);
    }
    let ready = next_to(&spool, PHONE, &mut seen);
    assert!(ready.text.contains("已送到"), "{ready:?}");

    // Delivered at the point: the invitation to rate; a bare "5" rates this ticket.
    sync_now(&mut tablet, township.url.as_str()).unwrap();
    agent(&mut tablet, &number, EventKind::Delivered);
    sync_now(&mut tablet, township.url.as_str()).unwrap();
    let invite = next_to(&spool, PHONE, &mut seen);
    assert!(
        invite.text.contains("请评价") && invite.text.contains("TD"),
        "{invite:?}"
    );
    inbound(&spool, "GSM1.r1", PHONE, "5 办得很快👍");
    let rated = next_to(&spool, PHONE, &mut seen);
    assert!(rated.text.contains("非常满意"), "{rated:?}");
    sync_upward(&township);
    let at_district = server_view(&district, &number).unwrap();
    assert_eq!(at_district["life"]["evaluation"], 5, "{at_district}");
    let event = at_district["ticket"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "evaluated")
        .unwrap()
        .clone();
    assert_eq!(
        (event["role"].as_str(), event["note"].as_str()),
        (Some("server"), Some("办得很快👍"))
    );

    let all = outgoing(&spool);
    assert!(
        all.iter().all(|s| s.to != "8610086" && s.to != "10086"),
        "{all:?}"
    );
    for s in &all {
        assert!(!s.text.contains(&id_number), "an ID number in {s:?}");
        assert!(s.text.starts_with(&format!("【{SIGN}】")));
    }
    // Per-phone rate limit: someone walking the ticket numbers gets a few answers, then none.
    let limit = usize::try_from(sync_server::sms::inbound::PER_HOUR).unwrap();
    for i in 0..limit {
        let guess = TicketNumber::new(101, 8, 100 + u32::try_from(i).unwrap()).unwrap();
        inbound(
            &spool,
            &format!("GSM1.w{i}"),
            OTHER,
            &format!("查询{guess}"),
        );
    }
    for _ in 2..limit {
        next_to(&spool, OTHER, &mut seen);
    }
    // Absence takes a wait: a few of the gateway's one-second rounds.
    std::thread::sleep(Duration::from_secs(4));
    let to_other = outgoing(&spool)
        .iter()
        .filter(|s| s.to == format!("86{OTHER}"))
        .count();
    assert_eq!(to_other, limit, "no answers past the limit");

    // smsd gives up on the supplement notice (the modem refused it): staff see it failed.
    let file = spool.join("outgoing").join(&told.file);
    let mut failed = b"Fail_reason: Unknown error\n".to_vec();
    failed.extend(std::fs::read(&file).unwrap());
    std::fs::write(spool.join("failed").join(&told.file), failed).unwrap();
    std::fs::remove_file(file).unwrap();
    let id: i64 = told.file.trim_start_matches("daiban-").parse().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("township").join("server.db")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (state, error): (String, Option<String>) = db
            .query_row(
                "SELECT state, error FROM sms_outbox WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        if state == "failed" {
            assert!(error.unwrap_or_default().contains("Unknown error"));
            break;
        }
        assert!(Instant::now() < deadline, "still {state}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Every inbound file was handled and moved out of incoming/.
    assert_eq!(
        std::fs::read_dir(spool.join("incoming")).unwrap().count(),
        0
    );
}

/// The outbox's rows: (reason, state).
fn outbox(data: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(data.join("server.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT reason, state FROM sms_outbox ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    rows
}

#[test]
fn a_message_stored_before_a_kill_is_sent_exactly_once_after_the_restart() {
    for point in ["sms_before_handing", "sms_after_handing"] {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let district_data = dir.path().join("district");
        init_district(&district_data);
        let district = serve(&district_data);
        let mut township = township_with_sms(
            dir.path(),
            &district,
            &spool,
            &[(sync_server::fault::FAULT_VAR, point)],
            true,
        );
        sync_upward(&township);
        let mut tablet = tablet(dir.path(), &township, 101, 1);
        let form = form();
        let material = Catalog::demo().item(&form.item_code).unwrap().materials[0]
            .name
            .clone();
        let number = tablet.register(&form).unwrap().view.ticket.number;
        sync_now(&mut tablet, township.url.as_str()).unwrap();
        staff_ok(
            &township,
            "township",
            &number,
            "supplement_requested",
            json!({ "missing": [material] }),
        );
        assert!(
            township.wait_for_stderr(&format!("fault point reached: {point}")),
            "{point}"
        );
        township.kill();
        let before = outgoing(&spool).len();
        assert_eq!(
            before,
            usize::from(point == "sms_after_handing"),
            "{point}: handed over before the kill"
        );
        let data = dir.path().join("township");
        assert_eq!(outbox(&data).len(), 1, "{point}: stored before the kill");

        let township = serve(&data);
        let mut seen = Vec::new();
        let sms = next_to(&spool, PHONE, &mut seen);
        assert!(sms.text.contains(&material));
        // A few more rounds: nothing is sent again.
        let deadline = Instant::now() + Duration::from_secs(10);
        while outbox(&data).iter().any(|(_, state)| state != "sent") {
            assert!(Instant::now() < deadline, "{point}: {:?}", outbox(&data));
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(outgoing(&spool).len(), 1, "{point}: exactly once");
        drop(township);
    }
}

#[test]
fn overdue_tickets_are_texted_to_the_agent_and_the_township_and_td_stops_invitations() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let clock = dir.path().join("clock");
    let set_clock = |day: &str| {
        std::fs::write(&clock, format!("{day}T10:00:00+08:00")).unwrap();
        // Staff API sessions last hours, not days.
        forget_tokens();
    };
    set_clock("2026-06-01");
    let district_data = dir.path().join("district");
    init_district(&district_data);
    let district = serve(&district_data);
    let env = [(sync_server::CLOCK_FILE_ENV, clock.to_str().unwrap())];
    let township = township_with_sms(dir.path(), &district, &spool, &env, false);
    sync_upward(&township);
    let mut tablet = tablet(dir.path(), &township, 101, 1);
    let form = form();
    let number = tablet.register(&form).unwrap().view.ticket.number;
    sync_now(&mut tablet, township.url.as_str()).unwrap();
    staff_ok(&township, "township", &number, "accepted", json!({}));
    let mut seen = Vec::new();

    // A month later it is overdue: the point's agent and the township's duty phone are told.
    set_clock("2026-07-01");
    let directory = agent_core::demo::district_directory();
    let agent_phone = directory.points[0].agent_phone.clone().unwrap();
    let duty_phone = directory.townships[0].phone.clone().unwrap();
    for phone in [&agent_phone, &duty_phone] {
        let sms = next_to(&spool, phone, &mut seen);
        assert!(
            sms.text.contains(number.as_str()) && sms.text.contains("承诺期限"),
            "{sms:?}"
        );
    }

    // The applicant opts out: the result notice and the invitation no longer come, but the
    // answer to a query still does.
    inbound(&spool, "GSM1.td", PHONE, "ＴＤ");
    let confirmed = next_to(&spool, PHONE, &mut seen);
    assert!(confirmed.text.contains("已退订"), "{confirmed:?}");
    for (kind, payload) in [
        ("handled", json!({})),
        ("completed", json!({ "outcome": "approved" })),
        ("returned", json!({})),
    ] {
        staff_ok(&township, "township", &number, kind, payload);
    }
    sync_now(&mut tablet, township.url.as_str()).unwrap();
    agent(&mut tablet, &number, EventKind::Delivered);
    sync_now(&mut tablet, township.url.as_str()).unwrap();
    inbound(&spool, "GSM1.q9", PHONE, &format!("查询{number}"));
    let answer = next_to(&spool, PHONE, &mut seen);
    assert!(answer.text.contains("已送达"), "{answer:?}");
    // Absence takes a wait: a few of the gateway's one-second rounds.
    std::thread::sleep(Duration::from_secs(3));
    let to_applicant: Vec<Sms> = outgoing(&spool)
        .into_iter()
        .filter(|s| s.to == format!("86{PHONE}"))
        .collect();
    assert_eq!(
        to_applicant.len(),
        2,
        "only the two answers: {to_applicant:?}"
    );
}
