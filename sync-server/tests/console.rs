//! The console over real HTTP to the `sync-server` binary: staff accounts opened with
//! `add-staff`, sign-in with its double-submit token, lockout, sessions in HttpOnly
//! SameSite cookies, CSRF on sign-out, who may open which page, masking and escaping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use agent_core::domain::catalog::Catalog;
use agent_core::store::Store;
use agent_core::sync::client::sync_now;
use reqwest::blocking::{Client, Response};
use reqwest::redirect::Policy;
use serde_json::json;

use support::{add_staff, bearer, district_and_township, staff_ok, tablet, Server};

const PASSWORD: &str = "柏林镇-2026-secret";

fn client() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

/// A cookie the response sets: its whole `Set-Cookie` line.
fn set_cookie(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(line: &str) -> String {
    line.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

/// The value of the hidden `csrf` input of a page.
fn csrf_field(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Open the sign-in page and post `password` for `login`: the response.
fn sign_in(server: &Server, login: &str, password: &str) -> Response {
    let c = client();
    let page = c
        .get(format!("{}/console/login", server.url))
        .send()
        .unwrap();
    let token = cookie_value(&set_cookie(&page, "daiban_login").unwrap());
    let csrf = csrf_field(&page.text().unwrap());
    assert_eq!(token, csrf);
    c.post(format!("{}/console/login", server.url))
        .header("cookie", format!("daiban_login={token}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("login", login),
            ("password", password),
        ])
        .send()
        .unwrap()
}

/// A session cookie for `login`.
fn session(server: &Server, login: &str) -> String {
    let resp = sign_in(server, login, PASSWORD);
    assert_eq!(resp.status().as_u16(), 303, "{}", resp.text().unwrap());
    let line = set_cookie(&resp, "daiban_session").unwrap();
    format!("daiban_session={}", cookie_value(&line))
}

fn get(server: &Server, path: &str, cookie: Option<&str>) -> (u16, String) {
    let mut req = client().get(format!("{}{path}", server.url));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let body = resp.text().unwrap();
    (status, location.unwrap_or(body))
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
            get(&township, path, None),
            (303, "/console/login".to_owned()),
            "{path}"
        );
        let forged = "daiban_session=00";
        assert_eq!(get(&township, path, Some(forged)).0, 303, "{path}");
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
    let (status, inbox) = get(&township, "/console", Some(&cookie));
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
    let (status, page) = get(
        &township,
        &format!("/console/tickets/{number}"),
        Some(&cookie),
    );
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
    let (status, page) = get(&township, "/console/tickets/010101999990", Some(&cookie));
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
    let (_, page) = get(
        &township,
        &format!("/console/tickets/{number}"),
        Some(&cookie),
    );
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
    let (_, page) = get(
        &township,
        &format!("/console/tickets/{number}"),
        Some(&cookie),
    );
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
    let (_, page) = get(
        &township,
        &format!("/console/tickets/{number}"),
        Some(&cookie),
    );
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
    let (status, page) = get(&district, "/console", Some(&admin));
    assert_eq!((status, page.as_str()), (303, "/console/staff"));
    let (status, page) = get(
        &district,
        &format!("/console/tickets/{number}"),
        Some(&admin),
    );
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("本账号不办理办件"), "{page}");

    // Sign-out needs the session's CSRF token; then the session is gone.
    let (_, inbox) = get(&township, "/console", Some(&cookie));
    let csrf = csrf_field(&inbox);
    let resp = client()
        .post(format!("{}/console/logout", township.url))
        .header("cookie", &cookie)
        .form(&[("csrf", "not-the-token")])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(get(&township, "/console", Some(&cookie)).0, 200);
    let resp = client()
        .post(format!("{}/console/logout", township.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(get(&township, "/console", Some(&cookie)).0, 303);

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
