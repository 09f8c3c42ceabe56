//! The web console under `/console`: staff sign in (accounts, sessions, lockout in
//! [`crate::accounts`]), then see the tickets of their scope. Pages are rendered on the
//! server ([`pages`]).
//!
//! Sessions ride in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS). Every form that
//! changes something carries the session's CSRF token; the sign-in form, before any session,
//! carries a token that must match a cookie of its own (double submit). Every page is sent
//! with a strict Content-Security-Policy and is never cached.

mod pages;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::accounts::{self, SignedIn};
use crate::error::Error;
use crate::http::AppState;

const SESSION_COOKIE: &str = "daiban_session";
const LOGIN_COOKIE: &str = "daiban_login";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(inbox))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/tickets/{number}", get(ticket))
        .layer(axum::middleware::map_response(harden))
}

/// Headers every console answer carries.
async fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

/// A cookie's value from the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Secure over HTTPS.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.https { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A signed-in staff member on a console page; anyone else is sent to sign in.
pub struct Staffer(pub SignedIn, String);

impl FromRequestParts<AppState> for Staffer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/console/login").into_response();
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(to_login());
        };
        let now = crate::now();
        let lookup = token.clone();
        match state
            .with_store(move |store, _| accounts::session(store, &lookup, now))
            .await
        {
            Ok(Some(signed_in)) => Ok(Staffer(signed_in, token)),
            Ok(None) => Err(to_login()),
            Err(e) => Err(failure(None, &e)),
        }
    }
}

/// An error as a page: refusals with their message, internals logged and hidden.
fn failure(who: Option<&SignedIn>, e: &Error) -> Response {
    let (status, text) = crate::http::classify(e);
    (status, pages::refused(who, &text)).into_response()
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    login: String,
    password: String,
}

async fn login_page(State(state): State<AppState>) -> Response {
    login_form(&state, None, StatusCode::OK)
}

/// The sign-in form with a fresh double-submit token (in the form and in its own cookie).
fn login_form(state: &AppState, error: Option<&str>, status: StatusCode) -> Response {
    let token = match accounts::random_token() {
        Ok(t) => t,
        Err(e) => return failure(None, &e),
    };
    let mut response = (status, pages::login(&token, error)).into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(state, LOGIN_COOKIE, &token, 3600));
    response
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if cookie(&headers, LOGIN_COOKIE) != Some(form.csrf.as_str()) {
        return login_form(
            &state,
            Some("登录页面已过期，请重新登录"),
            StatusCode::FORBIDDEN,
        );
    }
    match state.sign_in(&form.login, form.password).await {
        Ok((token, _)) => {
            let mut response = Redirect::to("/console").into_response();
            let h = response.headers_mut();
            h.append(
                SET_COOKIE,
                set_cookie(
                    &state,
                    SESSION_COOKIE,
                    &token,
                    accounts::SESSION_HOURS * 3600,
                ),
            );
            h.append(SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, "", 0));
            response
        }
        Err(e @ (Error::Unauthenticated(_) | Error::Forbidden(_))) => {
            let (status, text) = crate::http::classify(&e);
            login_form(&state, Some(&text), status)
        }
        Err(e) => failure(None, &e),
    }
}

async fn logout(
    State(state): State<AppState>,
    Staffer(who, token): Staffer,
    Form(form): Form<CsrfForm>,
) -> Response {
    if form.csrf != who.csrf {
        return csrf_refused(&who);
    }
    let now = crate::now();
    if let Err(e) = state
        .with_store(move |store, _| accounts::sign_out(store, &token, now))
        .await
    {
        return failure(Some(&who), &e);
    }
    let mut response = Redirect::to("/console/login").into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", 0));
    response
}

fn csrf_refused(who: &SignedIn) -> Response {
    (
        StatusCode::FORBIDDEN,
        pages::refused(Some(who), "表单已过期或来源不明，请返回后重新操作"),
    )
        .into_response()
}

async fn inbox(State(state): State<AppState>, Staffer(who, _): Staffer) -> Response {
    if !who.account.role.sees_tickets() {
        return failure(Some(&who), &Error::Forbidden("本账号不办理办件".into()));
    }
    match state.with_store(|store, _| crate::staff::list(store)).await {
        Ok(rows) => pages::inbox(&who, &rows).into_response(),
        Err(e) => failure(Some(&who), &e),
    }
}

async fn ticket(
    State(state): State<AppState>,
    Staffer(who, _): Staffer,
    Path(number): Path<String>,
) -> Response {
    if !who.account.role.sees_tickets() {
        return failure(Some(&who), &Error::Forbidden("本账号不办理办件".into()));
    }
    let now = crate::now();
    match state
        .with_store(move |store, _| crate::staff::view(store, &number, now))
        .await
    {
        Ok(view) => pages::ticket(&who, &view).into_response(),
        Err(e) => failure(Some(&who), &e),
    }
}
