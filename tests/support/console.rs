//! A console client for the HTTP tests: sign-in with the double-submit token, session
//! cookies, CSRF tokens read from pages, GET and POST without following redirects.

use reqwest::blocking::{Client, Response};
use reqwest::redirect::Policy;

use super::Server;

pub fn client() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

/// A cookie the response sets: its whole `Set-Cookie` line.
pub fn set_cookie(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of a `Set-Cookie` line.
pub fn cookie_value(line: &str) -> String {
    line.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

/// The value of the first hidden `csrf` input of a page.
pub fn csrf_field(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Open the sign-in page and post `password` for `login`: the response.
pub fn sign_in(server: &Server, login: &str, password: &str) -> Response {
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

/// A session cookie (`daiban_session=…`) for `login`.
pub fn session(server: &Server, login: &str, password: &str) -> String {
    let resp = sign_in(server, login, password);
    assert_eq!(
        resp.status().as_u16(),
        303,
        "{login}: {}",
        resp.text().unwrap()
    );
    let line = set_cookie(&resp, "daiban_session").unwrap();
    format!("daiban_session={}", cookie_value(&line))
}

/// GET a page with `cookie` ("" for none): (status, body, or the redirect's location).
pub fn get(server: &Server, path: &str, cookie: &str) -> (u16, String) {
    let mut req = client().get(format!("{}{path}", server.url));
    if !cookie.is_empty() {
        req = req.header("cookie", cookie);
    }
    answer(req.send().unwrap())
}

/// POST a form: (status, body, or the redirect's location).
pub fn post(server: &Server, path: &str, cookie: &str, form: &[(&str, &str)]) -> (u16, String) {
    answer(
        client()
            .post(format!("{}{path}", server.url))
            .header("cookie", cookie)
            .form(form)
            .send()
            .unwrap(),
    )
}

/// (status, body, or the redirect's location).
pub fn answer(resp: Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let body = resp.text().unwrap();
    (status, location.unwrap_or(body))
}

/// The ticket numbers a list page links to, in order.
pub fn listed(html: &str) -> Vec<String> {
    html.split(r#"href="/console/tickets/"#)
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .collect()
}
