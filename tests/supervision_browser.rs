//! The supervision board (电子监察) and the reports in real headless Chromium, across real
//! processes, on an injected clock (`DAIBAN_CLOCK_FILE` for the servers, the same file for
//! the tablets): a supervisor watches a ticket turn yellow, then red, as the days pass; a
//! month's report agrees with the tickets the servers hold, and so does its XLSX export read
//! back; a 不满意 rating opens a follow-up on the board until the township answers it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_core::crypto::StoreKey;
use agent_core::domain::calendar::Calendar;
use agent_core::domain::catalog::{Catalog, HandlingLevel};
use agent_core::domain::deadline::{self, Light, DEFAULT_MARGIN};
use agent_core::domain::event::{EventDraft, EventKind};
use agent_core::domain::number::TicketNumber;
use agent_core::domain::ticket::NewTicket;
use agent_core::store::{Store, StoreOptions};
use agent_core::sync::client::sync_now;
use browser::Browser;
use calamine::{DataType, Reader};
use chrono::{DateTime, NaiveDate};
use serde_json::{json, Value};
use support::*;

fn screens() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screens")
}

/// The injected clock: one file every process reads the time from.
struct Clock(PathBuf);

impl Clock {
    fn new(dir: &Path, day: NaiveDate) -> Clock {
        let clock = Clock(dir.join("clock"));
        clock.set(day);
        clock
    }

    fn set(&self, day: NaiveDate) {
        std::fs::write(&self.0, format!("{day}T10:00:00+08:00")).unwrap();
        // Staff API sessions last hours, not days.
        forget_tokens();
    }

    fn env(&self) -> [(&'static str, &str); 1] {
        [(sync_server::CLOCK_FILE_ENV, self.0.to_str().unwrap())]
    }
}

/// A district and township A, both on the injected clock.
fn servers(dir: &Path, clock: &Clock) -> (Server, Server) {
    let district_data = dir.join("district");
    init_district(&district_data);
    let district = serve_with(&district_data, "127.0.0.1:0", &clock.env(), false);
    let data = dir.join("township");
    init_township(&data, TOWNSHIP_A, &district.url);
    enroll_township(&district, &data, TOWNSHIP_A);
    let township = serve_with(&data, "127.0.0.1:0", &clock.env(), false);
    sync_upward(&township);
    (district, township)
}

/// A tablet of `point` enrolled with `township`, its clock the injected one.
fn tablet_on(dir: &Path, township: &Server, point: u32, clock: &Clock) -> Store {
    let mut o = StoreOptions::new(
        StoreKey::from_bytes(&[point as u8; 32]).unwrap(),
        point,
        1,
        format!("agent-{point}"),
    );
    let file = clock.0.clone();
    o.clock = Arc::new(move || {
        DateTime::parse_from_rfc3339(std::fs::read_to_string(&file).unwrap().trim()).unwrap()
    });
    let mut store = Store::open(dir.join(format!("tablet-{point}.db")), o).unwrap();
    enroll_tablet(&mut store, township, township.url.as_str());
    store
}

/// Forms for items the township handles itself, promised within `max_days`.
fn township_forms(n: usize, max_days: u32) -> Vec<NewTicket> {
    let catalog = Catalog::demo();
    agent_core::demo::forms(7, 400, &catalog)
        .into_iter()
        .filter(|f| {
            catalog.item(&f.item_code).is_some_and(|i| {
                i.level == HandlingLevel::Township && (2..=max_days).contains(&i.promised_days)
            })
        })
        .take(n)
        .collect()
}

fn sign_in(b: &Browser, url: &str, login: &str) {
    b.goto(&format!("{url}/console/login"));
    b.fill("#login", login);
    b.fill("#password", STAFF_PASSWORD);
    b.click("button[type=submit]");
    // The login page has a <main> too: wait for what only a signed-in page has (a failed
    // sign-in times out here, naming the login page's URL).
    b.wait_for("form[action='/console/logout']");
    assert!(
        !b.current_url().ends_with("/console/login"),
        "sign-in as {login}: {}",
        b.text("main")
    );
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The leading number of an element's text ("6件" → 6).
fn number_in(b: &Browser, css: &str) -> i64 {
    let text = b.text(css);
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{css}: no number in {text:?}"))
}

fn agent(store: &mut Store, number: &TicketNumber, kind: EventKind, payload: Value) {
    store
        .append(
            number,
            &EventDraft {
                kind,
                note: String::new(),
                payload,
            },
        )
        .unwrap();
}

#[test]
fn a_supervisor_sees_a_ticket_turn_yellow_then_red_as_the_days_pass() {
    let Some(b) = Browser::start() else {
        eprintln!("chromium not installed: skipped (CI sets DAIBAN_REQUIRE_CHROMIUM)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let start = day(2026, 6, 1);
    let clock = Clock::new(dir.path(), start);
    let (_district, township) = servers(dir.path(), &clock);
    let mut tablet = tablet_on(dir.path(), &township, 101, &clock);
    let form = township_forms(1, 7).pop().unwrap();
    let promised = Catalog::demo().item(&form.item_code).unwrap().promised_days;
    let number = tablet.register(&form).unwrap().view.ticket.number;
    sync_now(&mut tablet, township.url.as_str()).unwrap();
    staff_ok(&township, "township", &number, "accepted", json!({}));

    // The days on which the light should change, by the shipped working-day calendar.
    let cal = Calendar::default_cn();
    let due = cal.add_working_days(start, promised).unwrap();
    let light_on =
        |d: NaiveDate| deadline::light(deadline::remaining(&cal, d, due).unwrap(), DEFAULT_MARGIN);
    let days: Vec<NaiveDate> = start.iter_days().take(40).collect();
    let first = |light: Light| *days.iter().find(|d| light_on(**d) == light).unwrap();
    let (yellow, red) = (first(Light::Yellow), first(Light::Red));

    let board = format!("{}/console/board", township.url);
    let listed =
        |b: &Browser, list: &str| b.text(&format!("#{list} table")).contains(number.as_str());
    for (today, light) in [(start, "green"), (yellow, "yellow"), (red, "red")] {
        clock.set(today);
        // A session lasts hours, not days: the supervisor signs in each day.
        sign_in(&b, &township.url, staff_login("reader"));
        b.goto(&board);
        b.wait_for("#summary");
        assert!(
            b.text("main").contains(&format!("统计日期：{today}")),
            "the board counts as of the injected day"
        );
        for (id, expected) in
            [("green", 0), ("yellow", 0), ("red", 0)].map(|(id, _)| (id, i64::from(id == light)))
        {
            assert_eq!(
                number_in(&b, &format!("#{id}")),
                expected,
                "{id} on {today}"
            );
        }
        assert_eq!(
            listed(&b, "due-soon"),
            light == "yellow",
            "due soon on {today}"
        );
        assert_eq!(listed(&b, "overdue"), light == "red", "overdue on {today}");
        if light == "red" {
            assert!(
                b.text("#overdue").contains("超期"),
                "{}",
                b.text("#overdue")
            );
            b.screenshot(screens().join("board-red.png"));
        }
    }
    // The township's lights by point and by item count it too, by name.
    assert!(
        b.text("#point-lights").contains("东坪村代办点"),
        "{}",
        b.text("#point-lights")
    );
    let item = Catalog::demo().item(&form.item_code).unwrap().name.clone();
    assert!(
        b.text("#item-lights").contains(&item),
        "{}",
        b.text("#item-lights")
    );
}

/// What the test expects of a report, worked out from the tickets' own views.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    registered: i64,
    accepted: i64,
    completed: i64,
    on_time: i64,
    rated: i64,
    delivered: i64,
}

fn in_month(date: Option<&str>, month: &str) -> bool {
    date.is_some_and(|d| d.starts_with(month))
}

/// Count the tickets' own dates (read from each ticket's view) that fall in `month`.
fn expected(server: &Server, numbers: &[TicketNumber], month: &str) -> (Expected, Vec<(u32, i64)>) {
    let mut e = Expected::default();
    let mut by_point: std::collections::BTreeMap<u32, i64> = Default::default();
    for n in numbers {
        let v = server_view(server, n).unwrap();
        let registered = v["ticket"]["registered_at"].as_str().unwrap();
        // Registration is a tablet time; the report counts the China calendar day.
        let registered = DateTime::parse_from_rfc3339(registered)
            .unwrap()
            .with_timezone(&agent_core::store::china_offset())
            .date_naive()
            .to_string();
        if in_month(Some(&registered), month) {
            e.registered += 1;
            *by_point
                .entry(v["ticket"]["point"].as_u64().unwrap() as u32)
                .or_default() += 1;
        }
        let clock = &v["life"]["clock"];
        e.accepted += i64::from(in_month(clock["accepted"].as_str(), month));
        if !v["life"]["outcome"].is_null() && in_month(clock["finished"].as_str(), month) {
            e.completed += 1;
            e.on_time += i64::from(v["deadline"]["state"]["on_time"].as_bool().unwrap());
        }
        let delivered = clock["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == "return_to_village")
            .and_then(|s| s["end"].as_str());
        e.delivered += i64::from(in_month(delivered, month));
        e.rated += i64::from(!v["life"]["evaluation"].is_null());
    }
    (e, by_point.into_iter().collect())
}

#[test]
fn a_months_report_and_its_xlsx_agree_with_the_tickets_and_a_bad_rating_is_followed_up() {
    let Some(b) = Browser::start() else {
        eprintln!("chromium not installed: skipped (CI sets DAIBAN_REQUIRE_CHROMIUM)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::new(dir.path(), day(2026, 6, 1));
    let (_district, township) = servers(dir.path(), &clock);
    let mut tablets = [
        tablet_on(dir.path(), &township, 101, &clock),
        tablet_on(dir.path(), &township, 102, &clock),
    ];
    // Six tickets: four at 101, two at 102; one registered in May, outside the report.
    clock.set(day(2026, 5, 29));
    let forms = township_forms(6, 7);
    let mut numbers = Vec::new();
    for (i, form) in forms.iter().enumerate() {
        if i == 1 {
            clock.set(day(2026, 6, 1));
        }
        let t = &mut tablets[usize::from(i >= 4)];
        numbers.push(t.register(form).unwrap().view.ticket.number);
    }
    for t in &mut tablets {
        sync_now(t, township.url.as_str()).unwrap();
    }
    let staff = |n: &TicketNumber, kind: &str, payload: Value| {
        staff_ok(&township, "township", n, kind, payload);
    };
    // Five accepted; three completed (two on time, one long after its due date); the first
    // two returned, delivered and rated, one of them 不满意.
    for n in &numbers[..5] {
        staff(n, "accepted", json!({}));
    }
    clock.set(day(2026, 6, 2));
    for n in &numbers[..2] {
        staff(n, "handled", json!({}));
        staff(
            n,
            "completed",
            json!({ "outcome": "approved", "certificate_no": "ZS-1" }),
        );
        staff(n, "returned", json!({}));
    }
    clock.set(day(2026, 6, 26));
    staff(&numbers[2], "handled", json!({}));
    staff(&numbers[2], "completed", json!({ "outcome": "denied" }));
    sync_now(&mut tablets[0], township.url.as_str()).unwrap();
    for (n, score) in numbers[..2].iter().zip([5, 2]) {
        agent(&mut tablets[0], n, EventKind::Delivered, json!({}));
        agent(
            &mut tablets[0],
            n,
            EventKind::Evaluated,
            json!({ "score": score }),
        );
    }
    sync_now(&mut tablets[0], township.url.as_str()).unwrap();
    clock.set(day(2026, 6, 29));

    let (want, by_point) = expected(&township, &numbers, "2026-06");
    assert_eq!(
        want,
        Expected {
            registered: 5,
            accepted: 5,
            completed: 3,
            on_time: 2,
            rated: 2,
            delivered: 2,
        },
        "the scenario itself"
    );

    sign_in(&b, &township.url, staff_login("reader"));
    b.goto(&format!("{}/console/reports?period=2026-06", township.url));
    b.wait_for("#totals");
    let page = Expected {
        registered: number_in(&b, "#registered"),
        accepted: number_in(&b, "#accepted"),
        completed: number_in(&b, "#completed"),
        on_time: number_in(&b, "#on-time"),
        rated: number_in(&b, "#rated"),
        delivered: number_in(&b, "#trips") / 2,
    };
    assert_eq!(page, want, "the report's totals");
    // Both deliveries were at point 101: two round trips each, at its distance and fare.
    let point = &agent_core::demo::points()[0];
    let trips = 2 * want.delivered;
    let saved = format!(
        "往返县城 {trips}次，路程 {:.0}公里，路费 {}.00元",
        trips as f64 * 2.0 * point.distance_km,
        trips * point.fare_fen / 100
    );
    assert_eq!(b.text("#saved"), saved);
    for (point, registered) in &by_point {
        let cell = format!("#point-table tr[data-key='{point}'] td.registered");
        assert_eq!(number_in(&b, &cell), *registered, "point {point}");
    }
    assert!(b.count("svg.chart") >= 2, "charts drawn");
    b.screenshot(screens().join("report.png"));

    // The exports, downloaded with the supervisor's session.
    let cookie = b
        .cookies()
        .into_iter()
        .map(|c| format!("{}={}", c.name, c.value))
        .collect::<Vec<_>>()
        .join("; ");
    let download = |path: &str| {
        let resp = reqwest::blocking::Client::new()
            .get(format!("{}{path}", township.url))
            .header("cookie", &cookie)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        resp.bytes().unwrap().to_vec()
    };
    let xlsx = download("/console/reports/xlsx?period=2026-06");
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx)).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let header: Vec<String> = sheet
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let total = sheet.rows().find(|r| r[0] == "合计").expect("a total row");
    let num = |row: &[calamine::Data], name: &str| row[col(name)].as_f64().unwrap() as i64;
    assert_eq!(
        Expected {
            registered: num(total, "登记"),
            accepted: num(total, "受理"),
            completed: num(total, "办结"),
            on_time: num(total, "按时办结"),
            rated: num(total, "评价"),
            delivered: num(total, "节省往返(次)") / 2,
        },
        want,
        "the XLSX totals"
    );
    for (point, registered) in &by_point {
        let row = sheet
            .rows()
            .find(|r| r[0] == "代办点" && r[1] == point.to_string().as_str())
            .unwrap();
        assert_eq!(num(row, "登记"), *registered, "XLSX point {point}");
    }
    let csv = download("/console/reports/csv?period=2026-06");
    assert!(
        csv.starts_with(b"\xEF\xBB\xBF"),
        "a byte-order mark for spreadsheets"
    );
    let mut rows = csv::Reader::from_reader(&csv[3..]);
    let first = rows.records().next().unwrap().unwrap();
    assert_eq!(
        (&first[0], &first[3]),
        ("合计", want.registered.to_string().as_str())
    );

    // The 不满意 rating waits on the board until the township answers it.
    b.goto(&format!("{}/console/board", township.url));
    b.wait_for("#follow-ups");
    assert_eq!(number_in(&b, "#follow-up-count"), 1);
    assert!(b.text("#follow-ups table").contains(numbers[1].as_str()));
    let ratings = b.text("#ratings");
    assert!(ratings.contains("不满意"), "{ratings}");
    sign_in(&b, &township.url, staff_login("township"));
    b.goto(&format!("{}/console/tickets/{}", township.url, numbers[1]));
    b.wait_for("form[data-kind=followed_up]");
    assert!(b.text("#rating").contains("待回访答复"));
    b.fill(
        "form[data-kind=followed_up] input[name=note]",
        "已电话回访，说明了办理时限",
    );
    b.click("form[data-kind=followed_up] button[type=submit]");
    b.wait_for("#rating");
    assert!(
        b.text("#rating").contains("已于2026-06-29回访答复"),
        "{}",
        b.text("#rating")
    );
    b.goto(&format!("{}/console/board", township.url));
    b.wait_for("#follow-ups");
    assert_eq!(number_in(&b, "#follow-up-count"), 0);
}
