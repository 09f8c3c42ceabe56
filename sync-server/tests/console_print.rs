//! The printable forms over real HTTP to the `sync-server` binary: the applicant's 受理回执
//! and the 代理承办单 of a ticket a tablet registered and synced, as the ticket moves from
//! registration through a supplement, acceptance and a district window to completion; who may
//! print them (the ticket page's rules: signed in, sees tickets, ticket in scope).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use agent_core::demo;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::event::{EventDraft, EventKind};
use agent_core::domain::mask::{mask_id, mask_phone};
use agent_core::domain::number::TicketNumber;
use agent_core::domain::ticket::NewTicket;
use agent_core::store::Store;
use agent_core::sync::client::sync_now;
use serde_json::json;

use support::console::{client, get, session};
use support::{
    add_staff_ok, district_and_township, server_view, staff_login, staff_ok, start_township,
    sync_upward, tablet, Server, STAFF_PASSWORD, TOWNSHIP_B,
};

/// A ticket for 白酒零售许可证 (SW005: a 50-yuan fee with a receipt number, five materials),
/// its first material missing, and markup in the remarks; registered and synced.
fn register(store: &mut Store, township: &Server) -> (NewTicket, TicketNumber) {
    let catalog = Catalog::demo();
    let item = catalog.item("SW005").unwrap();
    let mut form = demo::form(&mut demo::Rng::new(7), item, 0, false);
    form.remarks = "<b>加急</b>".into();
    let number = store.register(&form).unwrap().view.ticket.number;
    sync_now(store, township.url.as_str()).unwrap();
    (form, number)
}

/// A session of the test account `role` (`township`, `window`, `reader`).
fn signed_in(server: &Server, role: &str) -> String {
    session(server, staff_login(role), STAFF_PASSWORD)
}

fn paths(number: &TicketNumber) -> [String; 2] {
    [
        format!("/console/tickets/{number}/receipt"),
        format!("/console/tickets/{number}/form"),
    ]
}

/// Both sheets as `cookie` sees them, each answered 200.
fn sheets(server: &Server, number: &TicketNumber, cookie: &str) -> [String; 2] {
    paths(number).map(|path| {
        let (status, page) = get(server, &path, cookie);
        assert_eq!(status, 200, "{path}: {page}");
        page
    })
}

/// How the sheets print the promised completion date, from the server's own deadline.
fn promised(server: &Server, number: &TicketNumber) -> String {
    let view = server_view(server, number).unwrap();
    match view["deadline"]["due"].as_str() {
        Some(due) => {
            let d = chrono::NaiveDate::parse_from_str(due, "%Y-%m-%d").unwrap();
            d.format("%Y年%-m月%-d日前").to_string()
        }
        None => format!(
            "受理后{}个工作日内办结",
            view["ticket"]["item"]["promised_days"]
        ),
    }
}

#[test]
fn the_receipt_and_the_form_print_the_ticket_with_the_applicant_masked() {
    let dir = tempfile::tempdir().unwrap();
    let (district, township) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &township, 101, 1);
    let (form, number) = register(&mut a, &township);
    let clerk = signed_in(&township, "township");
    let full_id = form.id_number.as_str();
    let full_phone = form.phone.clone().unwrap();

    // The ticket page links to both.
    let (_, page) = get(&township, &format!("/console/tickets/{number}"), &clerk);
    for path in paths(&number) {
        assert!(page.contains(&format!(r#"href="{path}""#)), "{page}");
    }

    // Registered: number, item, applicant (name in full, ID and phone masked), point, agent,
    // materials with the missing one, fee with its receipt number, the promise, SMS help.
    let [receipt, sheet] = sheets(&township, &number, &clerk);
    for page in [&receipt, &sheet] {
        for text in [
            number.as_str(),
            "白酒零售许可证",
            "SW005",
            &form.applicant_name,
            &mask_id(full_id),
            &mask_phone(&full_phone),
            "东坪村代办点",
            "agent-101-1",
            "50.00",
            "SJ000001",
            "尚缺材料：营业执照副本",
            "受理后15个工作日内办结",
            "柏林镇",
            "@media print",
        ] {
            assert!(page.contains(text), "{text} missing: {page}");
        }
        for m in &form.materials {
            assert!(page.contains(&m.name), "{}: {page}", m.name);
        }
        assert!(!page.contains(full_id), "full ID number printed");
        assert!(!page.contains(&full_phone), "full phone printed");
    }
    assert!(receipt.contains("受理回执") && receipt.contains("50.00 元（收据号 SJ000001）"));
    assert!(
        receipt.contains("身份证复印件×1、经营场所证明×1"),
        "{receipt}"
    );
    assert!(
        receipt.contains("短信查询") && receipt.contains("好差评"),
        "{receipt}"
    );
    assert!(sheet.contains("为民服务全程代理承办单"));
    for text in [
        "代理员签字",
        "申请人签字",
        "经办人签字",
        "复印件",
        "原件",
        "村代理点登记",
    ] {
        assert!(sheet.contains(text), "{text}: {sheet}");
    }
    // The remarks are text, not markup.
    assert!(sheet.contains("&lt;b&gt;加急&lt;/b&gt;") && !sheet.contains("<b>加急"));
    // Never cached, under the console's CSP.
    let resp = client()
        .get(format!("{}{}", township.url, paths(&number)[0]))
        .header("cookie", &clerk)
        .send()
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));

    // A supplement is requested: the receipt says the material is awaited.
    staff_ok(
        &township,
        "township",
        &number,
        "supplement_requested",
        json!({ "missing": ["营业执照副本"] }),
    );
    let [receipt, sheet] = sheets(&township, &number, &clerk);
    assert!(
        sheet.contains("<td>营业执照副本</td><td>复印件</td><td>1</td><td>缺（待补正）</td>"),
        "{sheet}"
    );
    assert!(receipt.contains("尚缺材料：营业执照副本"), "{receipt}");

    // Handed in and accepted: the promised date is the due date now, the acceptance dated.
    sync_now(&mut a, township.url.as_str()).unwrap();
    a.append(
        &number,
        &EventDraft {
            kind: EventKind::SupplementProvided,
            note: String::new(),
            payload: json!({}),
        },
    )
    .unwrap();
    sync_now(&mut a, township.url.as_str()).unwrap();
    staff_ok(&township, "township", &number, "accepted", json!({}));
    let due = promised(&township, &number);
    let [receipt, sheet] = sheets(&township, &number, &clerk);
    for page in [&receipt, &sheet] {
        assert!(page.contains(&due), "{due}: {page}");
        assert!(!page.contains("尚缺材料"), "{page}");
    }
    let today = chrono::Utc::now().with_timezone(&agent_core::store::china_offset());
    let accepted = format!(
        "<th>受理日期</th><td>{}</td>",
        today.format("%Y年%-m月%-d日")
    );
    assert!(sheet.contains(&accepted), "{accepted}: {sheet}");
    assert!(sheet.contains("乡镇中心（clerk）"), "{sheet}");

    // At the district: a window sees it only once it is forwarded there; then it completes
    // it and the 承办单 prints the result and the certificate number.
    sync_upward(&township);
    let window = signed_in(&district, "window");
    for path in paths(&number) {
        assert_eq!(
            get(&district, &path, &window).0,
            404,
            "{path} before forwarding"
        );
    }
    staff_ok(
        &township,
        "township",
        &number,
        "forwarded",
        json!({ "window": "县政务服务中心商务窗口" }),
    );
    sync_upward(&township);
    staff_ok(
        &district,
        "window",
        &number,
        "completed",
        json!({ "outcome": "approved", "certificate_no": "商证2026-0042" }),
    );
    let [_, sheet] = sheets(&district, &number, &window);
    for text in [
        "批准",
        "商证2026-0042",
        "转办窗口",
        "区县窗口（window）",
        "办结",
    ] {
        assert!(sheet.contains(text), "{text}: {sheet}");
    }
    assert!(!sheet.contains(full_id) && !sheet.contains(&full_phone));
    // The district's auditor reads every ticket; back at the township the result shows too.
    sheets(&district, &number, &signed_in(&district, "reader"));
    sync_upward(&township);
    let [_, sheet] = sheets(&township, &number, &clerk);
    assert!(sheet.contains("商证2026-0042"), "{sheet}");
}

#[test]
fn only_those_who_may_see_the_ticket_print_it() {
    let dir = tempfile::tempdir().unwrap();
    let (district, township) = district_and_township(dir.path());
    let other = start_township(dir.path(), TOWNSHIP_B, &district);
    let mut a = tablet(dir.path(), &township, 101, 1);
    let mut b = tablet(dir.path(), &other, 201, 1);
    let (_, mine) = register(&mut a, &township);
    let (_, theirs) = register(&mut b, &other);
    let clerk = signed_in(&township, "township");

    for path in paths(&mine) {
        // Anonymous, or with a forged session: to the sign-in form.
        for cookie in ["", "daiban_session=00"] {
            assert_eq!(
                get(&township, &path, cookie),
                (303, "/console/login".to_owned()),
                "{path} {cookie:?}"
            );
        }
        // The township's own clerk and auditor may print it.
        assert_eq!(get(&township, &path, &clerk).0, 200, "{path}");
        assert_eq!(
            get(&township, &path, &signed_in(&township, "reader")).0,
            200
        );
    }

    // Another township's ticket is as absent as a number never issued; a malformed number
    // is refused as such.
    for path in paths(&theirs) {
        let (status, page) = get(&township, &path, &clerk);
        assert_eq!(status, 404, "{path}: {page}");
    }
    let (status, _) = get(&township, "/console/tickets/12345/receipt", &clerk);
    assert_eq!(status, 400);

    // At the district: a window not forwarded the ticket gets 404 for both townships'
    // tickets; a district admin handles no tickets at all.
    sync_upward(&township);
    sync_upward(&other);
    let window = signed_in(&district, "window");
    add_staff_ok(&district.data, "zhao", "district_admin");
    let admin = session(&district, "zhao", STAFF_PASSWORD);
    for number in [&mine, &theirs] {
        for path in paths(number) {
            assert_eq!(get(&district, &path, &window).0, 404, "{path}");
            let (status, page) = get(&district, &path, &admin);
            assert_eq!(status, 403, "{path}");
            assert!(page.contains("本账号不办理办件"), "{page}");
        }
    }
}
