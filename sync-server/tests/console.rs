//! The console over real HTTP to the `sync-server` binary: staff accounts opened with
//! `add-staff`, sign-in with its double-submit token, lockout, sessions in HttpOnly
//! SameSite cookies, CSRF on sign-out, who may open which page, masking and escaping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use agent_core::domain::catalog::Catalog;
use agent_core::domain::number::TicketNumber;
use agent_core::store::Store;
use agent_core::sync::client::sync_now;
use serde_json::json;

use reqwest::blocking::Client;
use support::console::{client, cookie_value, csrf_field, get, listed, post, set_cookie, sign_in};
use support::{add_staff, bearer, district_and_township, staff_ok, tablet, Server};

const PASSWORD: &str = "柏林镇-2026-secret";

/// A session cookie for `login` (password [`PASSWORD`]).
fn session(server: &Server, login: &str) -> String {
    support::console::session(server, login, PASSWORD)
}

fn register(store: &mut Store, seed: u64) -> agent_core::domain::ticket::NewTicket {
    let form = agent_core::demo::forms(seed, 1, &Catalog::demo())
        .pop()
        .unwrap();
    store.register(&form).unwrap();
    form
}

#[test]
fn staff_sign_in_see_their_tickets_masked_and_are_locked_out_after_five_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (district, township) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &township, 101, 1);
    let form = register(&mut a, 1);
    sync_now(&mut a, township.url.as_str()).unwrap();
    let number = a.search(&Default::default()).unwrap().items[0]
        .number
        .clone();

    // Accounts: the right level only, a real password only, a login once.
    let (ok, out) = add_staff(&township.data, "li.wen", "township_staff", PASSWORD);
    assert!(ok, "{out}");
    assert!(out.contains("li.wen"), "{out}");
    let (ok, out) = add_staff(&township.data, "li.wen", "township_staff", PASSWORD);
    assert!(!ok && out.contains("已被使用"), "{out}");
    let (ok, out) = add_staff(&township.data, "short", "township_staff", "1234");
    assert!(!ok && out.contains("密码至少"), "{out}");
    let (ok, out) = add_staff(&district.data, "wang", "township_admin", PASSWORD);
    assert!(!ok && out.contains("不能在这一级服务器上开设"), "{out}");
    assert!(add_staff(&district.data, "zhao", "district_admin", PASSWORD).0);

    // Anonymous: every page sends to the sign-in form.
    for path in ["/console", &format!("/console/tickets/{number}")] {
        assert_eq!(
            get(&township, path, ""),
            (303, "/console/login".to_owned()),
            "{path}"
        );
        let forged = "daiban_session=00";
        assert_eq!(get(&township, path, forged).0, 303, "{path}");
    }

    // A sign-in without its own form token is refused.
    let resp = client()
        .post(format!("{}/console/login", township.url))
        .form(&[("csrf", "x"), ("login", "li.wen"), ("password", PASSWORD)])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(set_cookie(&resp, "daiban_session").is_none());

    // Signed in: the cookie is HttpOnly and SameSite=Strict; the inbox lists the ticket with
    // the applicant masked; the ticket page masks ID number and phone.
    let resp = sign_in(&township, "li.wen", PASSWORD);
    assert_eq!(resp.status().as_u16(), 303);
    let line = set_cookie(&resp, "daiban_session").unwrap();
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let cookie = format!("daiban_session={}", cookie_value(&line));
    let (status, inbox) = get(&township, "/console", &cookie);
    assert_eq!(status, 200, "{inbox}");
    let masked = agent_core::domain::mask::mask_name(&form.applicant_name);
    assert!(
        inbox.contains(&number) && inbox.contains(&masked),
        "{inbox}"
    );
    assert!(
        !inbox.contains(&form.applicant_name),
        "full name in the inbox"
    );
    let (status, page) = get(&township, &format!("/console/tickets/{number}"), &cookie);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&masked) && page.contains("**********"),
        "{page}"
    );
    assert!(
        !page.contains(&form.id_number),
        "full ID number on the page"
    );
    if let Some(phone) = &form.phone {
        assert!(!page.contains(phone.as_str()), "full phone on the page");
        assert!(page.contains("****"), "{page}");
    }
    let (status, page) = get(&township, "/console/tickets/010101999990", &cookie);
    assert!(status == 404 || status == 400, "{status} {page}");

    // Markup in a note is shown as text.
    staff_ok(
        &township,
        "township",
        &agent_core::domain::number::TicketNumber::parse(&number).unwrap(),
        "accepted",
        json!({}),
    );
    let resp = client()
        .post(format!("{}/api/tickets/{number}/events", township.url))
        .header("authorization", bearer(&township.url, "township"))
        .json(&json!({ "kind": "handled", "note": "<script>alert(1)</script><img src=x onerror=alert(2)>", "payload": {} }))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().unwrap());
    let (_, page) = get(&township, &format!("/console/tickets/{number}"), &cookie);
    assert!(
        !page.contains("<script>alert") && !page.contains("<img src=x"),
        "{page}"
    );
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );

    // An action or an unmasking without the session's CSRF token is refused, and changes
    // nothing; unmasking needs a reason and is recorded with it.
    let post_form = |path: &str, form: &[(&str, &str)]| {
        client()
            .post(format!("{}{path}", township.url))
            .header("cookie", &cookie)
            .form(form)
            .send()
            .unwrap()
    };
    let (_, page) = get(&township, &format!("/console/tickets/{number}"), &cookie);
    let csrf = csrf_field(&page);
    let events = format!("/console/tickets/{number}/events");
    let unmask = format!("/console/tickets/{number}/unmask");
    for form in [
        vec![("kind", "handled")],
        vec![("csrf", "forged"), ("kind", "handled")],
    ] {
        assert_eq!(post_form(&events, &form).status().as_u16(), 403);
        assert_eq!(
            post_form(&unmask, &[("csrf", "forged"), ("reason", "核对")])
                .status()
                .as_u16(),
            403
        );
    }
    let resp = post_form(&unmask, &[("csrf", csrf.as_str()), ("reason", " ")]);
    assert_eq!(resp.status().as_u16(), 400);
    let resp = post_form(
        &unmask,
        &[("csrf", csrf.as_str()), ("reason", "电话核对申请人身份")],
    );
    assert_eq!(resp.status().as_u16(), 200);
    let page = resp.text().unwrap();
    assert!(
        page.contains(&form.id_number) && page.contains(&form.applicant_name),
        "{page}"
    );
    let db = rusqlite::Connection::open(township.data.join("server.db")).unwrap();
    let (login, reason): (String, String) = db
        .query_row(
            "SELECT login, detail FROM audit_log WHERE action = '查看完整个人信息' AND ticket = ?1",
            [&number],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (login.as_str(), reason.as_str()),
        ("li.wen", "电话核对申请人身份")
    );
    let resp = post_form(
        &events,
        &[("csrf", csrf.as_str()), ("kind", "special_started")],
    );
    assert_eq!(resp.status().as_u16(), 303);
    let (_, page) = get(&township, &format!("/console/tickets/{number}"), &cookie);
    assert!(
        !page.contains(&form.id_number),
        "unmasked beyond the one view"
    );
    let actions: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE ticket = ?1 AND login = 'li.wen'",
            [&number],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(actions, 2, "the unmasking and the action");

    // A district admin handles no tickets: its console opens at administration, and a
    // ticket's page is refused.
    let admin = session(&district, "zhao");
    let (status, page) = get(&district, "/console", &admin);
    assert_eq!((status, page.as_str()), (303, "/console/staff"));
    let (status, page) = get(&district, &format!("/console/tickets/{number}"), &admin);
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("本账号不办理办件"), "{page}");

    // Sign-out needs the session's CSRF token; then the session is gone.
    let (_, inbox) = get(&township, "/console", &cookie);
    let csrf = csrf_field(&inbox);
    let resp = client()
        .post(format!("{}/console/logout", township.url))
        .header("cookie", &cookie)
        .form(&[("csrf", "not-the-token")])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(get(&township, "/console", &cookie).0, 200);
    let resp = client()
        .post(format!("{}/console/logout", township.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(get(&township, "/console", &cookie).0, 303);

    // Five wrong passwords lock the account, even against the right one.
    for _ in 0..5 {
        let resp = sign_in(&township, "li.wen", "wrong password");
        assert_eq!(resp.status().as_u16(), 401);
        assert!(resp.text().unwrap().contains("用户名或密码错误"));
    }
    let resp = sign_in(&township, "li.wen", PASSWORD);
    assert_eq!(resp.status().as_u16(), 403);
    assert!(set_cookie(&resp, "daiban_session").is_none());
    assert!(resp.text().unwrap().contains("已锁定"));
    // An unknown login is told the same as a wrong password.
    let resp = sign_in(&township, "nobody", PASSWORD);
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.text().unwrap().contains("用户名或密码错误"));
}

#[test]
fn staff_find_tickets_by_number_phone_id_name_status_and_point() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &township, 101, 1);
    let mut b = tablet(dir.path(), &township, 102, 1);
    let forms: Vec<_> = (1..=4).map(|seed| register(&mut a, seed)).collect();
    let other = register(&mut b, 9);
    sync_now(&mut a, township.url.as_str()).unwrap();
    sync_now(&mut b, township.url.as_str()).unwrap();
    // Each form's ticket number, by applicant (the tablet lists its tickets).
    let named: Vec<(String, String)> = a
        .search(&Default::default())
        .unwrap()
        .items
        .into_iter()
        .map(|i| {
            let n = TicketNumber::parse(&i.number).unwrap();
            (
                a.get(&n).unwrap().ticket.applicant.name,
                i.number.to_string(),
            )
        })
        .collect();
    let number_of = |form: &agent_core::domain::ticket::NewTicket| {
        named
            .iter()
            .find(|(name, _)| *name == form.applicant_name)
            .map(|(_, n)| n.clone())
            .unwrap()
    };
    let first = number_of(&forms[0]);
    staff_ok(
        &township,
        "township",
        &TicketNumber::parse(&first).unwrap(),
        "accepted",
        json!({}),
    );
    assert!(add_staff(&township.data, "li.wen", "township_staff", PASSWORD).0);
    let cookie = session(&township, "li.wen");

    // The inbox holds what waits for acceptance: all but the accepted one.
    let (status, inbox) = get(&township, "/console", &cookie);
    assert_eq!(status, 200, "{inbox}");
    let mut waiting = listed(&inbox);
    waiting.sort();
    assert_eq!(waiting.len(), 4, "{inbox}");
    assert!(!waiting.contains(&first));
    let csrf = csrf_field(&inbox);

    // The inbox's own filter stays out of its search form: the accepted ticket is found.
    assert!(!inbox.contains(r#"<option value="received" selected>"#));
    // One box takes a number, a phone, an ID number or the start of a name.
    let search = |fields: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let (status, page) = post(&township, "/console", &cookie, &all);
        assert_eq!(status, 200, "{page}");
        page
    };
    assert_eq!(listed(&search(&[("q", &first)])), vec![first.clone()]);
    let target = &forms[1];
    let target_number = number_of(target);
    assert_eq!(
        listed(&search(&[("q", &target_number)])),
        vec![target_number.clone()]
    );
    let phone = target.phone.clone().unwrap();
    assert!(listed(&search(&[("q", &phone)])).contains(&target_number));
    assert!(listed(&search(&[("q", &target.id_number)])).contains(&target_number));
    let surname: String = target.applicant_name.chars().take(1).collect();
    let by_name = listed(&search(&[("q", &surname)]));
    assert!(by_name.contains(&target_number), "{surname}");
    // The results page never shows the phone or ID number typed into it: masked only.
    let page = search(&[("q", &phone)]);
    assert!(!page.contains(&phone), "{page}");
    assert!(page.contains(&agent_core::domain::mask::mask_phone(&phone)));
    // A number with a wrong check digit is told so, not guessed at.
    let mut wrong = target_number.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    assert!(search(&[("q", &wrong)]).contains("校验位不符"));

    // Filters: status, point, registration date.
    assert_eq!(
        listed(&search(&[("status", "accepted")])),
        vec![first.clone()]
    );
    let other_number = b.search(&Default::default()).unwrap().items[0]
        .number
        .to_string();
    assert_eq!(listed(&search(&[("point", "102")])), vec![other_number]);
    let today = sync_server::now().format("%Y-%m-%d").to_string();
    assert_eq!(
        listed(&search(&[("from", &today), ("to", &today)])).len(),
        5
    );
    assert!(listed(&search(&[("to", "2000-01-01")])).is_empty());
    assert!(search(&[("from", "yesterday")]).contains("日期格式"));
    // The other point's applicant is found by name too, and the tab counts add up.
    let (_, all) = get(&township, "/console?all=1", &cookie);
    assert_eq!(listed(&all).len(), 5);
    assert!(all.contains(&agent_core::domain::mask::mask_name(&other.applicant_name)));
}

#[test]
fn conflicts_are_listed_side_by_side_and_resolved_by_a_township_admin() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &township, 101, 1);
    register(&mut a, 3);
    sync_now(&mut a, township.url.as_str()).unwrap();
    let number =
        TicketNumber::parse(&a.search(&Default::default()).unwrap().items[0].number).unwrap();
    // The township rejects while the village, offline, records the applicant's withdrawal:
    // whichever the merge puts first closes the ticket, and the other cannot follow it.
    staff_ok(&township, "township", &number, "rejected", json!({}));
    a.append(
        &number,
        &agent_core::domain::event::EventDraft {
            kind: agent_core::domain::event::EventKind::Withdrawn,
            note: "申请人不办了".into(),
            payload: json!({}),
        },
    )
    .unwrap();
    sync_now(&mut a, township.url.as_str()).unwrap();
    let number = number.to_string();

    assert!(add_staff(&township.data, "li.wen", "township_staff", PASSWORD).0);
    assert!(add_staff(&township.data, "zhang.admin", "township_admin", PASSWORD).0);
    let clerk = session(&township, "li.wen");
    let (_, conflicts) = get(&township, "/console?review=1", &clerk);
    assert_eq!(listed(&conflicts), vec![number.clone()], "{conflicts}");
    assert!(conflicts.contains(r#"id="review-count">1<"#), "{conflicts}");

    // Side by side: the rejection in force and the withdrawal that did not count (or the
    // other way round, as the merge ordered them); a clerk sees no form and may not post.
    let path = format!("/console/tickets/{number}");
    let (_, page) = get(&township, &path, &clerk);
    let review = &page[page.find(r#"id="review""#).expect("a review box")..];
    assert!(
        review.contains("受理") && review.contains("撤回"),
        "{review}"
    );
    assert!(review.contains("待核对"));
    assert!(!review.contains("记录核对决定"));
    let anomaly = {
        let v = support::server_view(&township, &TicketNumber::parse(&number).unwrap()).unwrap();
        v["life"]["anomalies"][0]["event_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let csrf = csrf_field(&page);
    let decision = "已电话核实 按先到的记录为准";
    let fields = [
        ("csrf", csrf.as_str()),
        ("resolves", &anomaly),
        ("note", decision),
    ];
    assert_eq!(
        post(&township, &format!("{path}/review"), &clerk, &fields).0,
        403
    );

    // The admin records the decision; it needs a note and only open records.
    let admin = session(&township, "zhang.admin");
    let (_, page) = get(&township, &path, &admin);
    assert!(page.contains("记录核对决定"));
    let csrf = csrf_field(&page);
    let review_path = format!("{path}/review");
    let (status, text) = post(
        &township,
        &review_path,
        &admin,
        &[("csrf", &csrf), ("resolves", &anomaly)],
    );
    assert_eq!(status, 400, "{text}");
    let (status, text) = post(
        &township,
        &review_path,
        &admin,
        &[
            ("csrf", &csrf),
            ("resolves", "no-such-event"),
            ("note", decision),
        ],
    );
    assert_eq!(status, 400, "{text}");
    let (status, to) = post(
        &township,
        &review_path,
        &admin,
        &[("csrf", &csrf), ("resolves", &anomaly), ("note", decision)],
    );
    assert_eq!((status, to.as_str()), (303, path.as_str()));

    let (_, page) = get(&township, &path, &admin);
    let review = &page[page.find(r#"id="review""#).unwrap()..];
    assert!(
        review.contains(decision) && !review.contains("待核对"),
        "{review}"
    );
    let (_, conflicts) = get(&township, "/console?review=1", &admin);
    assert!(listed(&conflicts).is_empty());
    let db = rusqlite::Connection::open(township.data.join("server.db")).unwrap();
    let logged: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE login = 'zhang.admin' AND action = '核对处理' AND ticket = ?1",
            [&number],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(logged, 1);
}

#[test]
fn an_address_that_fails_too_often_waits_while_others_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_township(dir.path());
    assert!(add_staff(&township.data, "li.wen", "township_staff", PASSWORD).0);
    let from = |ip: &str| {
        Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let login = |client: &Client, login: &str, password: &str| {
        client
            .post(format!("{}/api/login", township.url))
            .json(&json!({ "login": login, "password": password }))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // Spraying one password over many logins: each fails, then the address must wait,
    // even with a right password.
    let sprayer = from("127.0.0.1");
    for i in 0..sync_server::throttle::MAX_FAILURES {
        assert_eq!(login(&sprayer, &format!("user{i}"), "password1"), 401);
    }
    assert_eq!(login(&sprayer, "li.wen", PASSWORD), 429);
    let resp = sign_in(&township, "li.wen", PASSWORD);
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.text().unwrap().contains("登录失败次数过多"));
    // Another desk signs in; the account itself was never locked.
    assert_eq!(login(&from("127.0.0.2"), "li.wen", PASSWORD), 200);
}
