//! The web console under `/console`: staff sign in (accounts, sessions, lockout in
//! [`crate::accounts`]), then see the tickets of their scope. Pages are rendered on the
//! server ([`pages`]).
//!
//! Sessions ride in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS). Every form that
//! changes something carries the session's CSRF token; the sign-in form, before any session,
//! carries a token that must match a cookie of its own (double submit). Every page is sent
//! with a strict Content-Security-Policy and is never cached.

mod admin;
mod board;
mod calendar;
mod catalog;
mod directory;
mod input;
pub(crate) mod pages;
mod print;
mod reports;
mod sms;

use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use agent_core::domain::event::{EventDraft, EventKind};
use agent_core::domain::ticket::TicketView;

use crate::accounts::{self, SignedIn, StaffRole};
use crate::error::Error;
use crate::http::{AppState, PeerIp};
use crate::index::{self, Scope, Search};
use crate::staff::{self, Staff};
use crate::store::ServerStore;

const SESSION_COOKIE: &str = "daiban_session";
const LOGIN_COOKIE: &str = "daiban_login";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(inbox).post(search))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/tickets/{number}", get(ticket))
        .route("/console/tickets/{number}/events", post(act))
        .route("/console/tickets/{number}/unmask", post(unmask))
        .route("/console/tickets/{number}/review", post(review))
        .merge(admin::router())
        .merge(calendar::router())
        .merge(catalog::router())
        .merge(directory::router())
        .merge(board::router())
        .merge(reports::router())
        .merge(sms::router())
        .merge(print::router())
        .layer(axum::middleware::map_response(harden))
}

/// Headers every console (and public) page carries.
pub(crate) async fn harden(mut response: Response) -> Response {
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

/// A form a signed-in staff member posted, its CSRF token checked; its fields in order
/// (repeated ones included).
pub struct Posted {
    pub(super) who: SignedIn,
    token: String,
    pub(super) form: Vec<(String, String)>,
}

/// Largest console form.
const MAX_FORM_BYTES: usize = 64 << 10;

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Staffer(who, token) = Staffer::from_request_parts(&mut parts, state).await?;
        let Ok(body) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return Err(failure(Some(&who), &Error::BadRequest("表单过大".into())));
        };
        let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        if field(&form, "csrf") != who.csrf {
            return Err((
                StatusCode::FORBIDDEN,
                pages::refused(Some(&who), "表单已过期或来源不明，请返回后重新操作"),
            )
                .into_response());
        }
        Ok(Posted { who, token, form })
    }
}

/// The refusal page for an account that neither handles nor reads tickets; `None` for one
/// that does.
pub(super) fn unless_reader(who: &SignedIn) -> Option<Response> {
    (!who.account.role.sees_tickets())
        .then(|| failure(Some(who), &Error::Forbidden("本账号不办理办件".into())))
}

/// An error as a page: refusals with their message, internals logged and hidden.
pub(super) fn failure(who: Option<&SignedIn>, e: &Error) -> Response {
    let (status, text) = crate::http::classify(e);
    (status, pages::refused(who, &text)).into_response()
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
    peer: PeerIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if form.csrf.is_empty() || cookie(&headers, LOGIN_COOKIE) != Some(form.csrf.as_str()) {
        return login_form(
            &state,
            Some("登录页面已过期，请重新登录"),
            StatusCode::FORBIDDEN,
        );
    }
    match state.sign_in(&form.login, form.password, peer).await {
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
        Err(e @ (Error::Unauthenticated(_) | Error::Forbidden(_) | Error::Throttled)) => {
            let (status, text) = crate::http::classify(&e);
            login_form(&state, Some(&text), status)
        }
        Err(e) => failure(None, &e),
    }
}

async fn logout(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { who, token, .. } = posted;
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

/// `GET /console`: the inbox (what waits on this role) or a list picked by link
/// (`?status=`, `?light=`, `?review=1`, `?all=1`; no personal data in links).
async fn inbox(
    State(state): State<AppState>,
    Staffer(who, _): Staffer,
    RawQuery(query): RawQuery,
) -> Response {
    let fields: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let typed = Search::from_fields(&fields);
    let mut search = typed.clone();
    if fields.is_empty() {
        // The inbox's own filter stays out of the search form: a number or phone typed
        // there searches every status.
        search.status = inbox_status(who.account.role).to_owned();
    }
    list(state, who, search, typed).await
}

/// `POST /console`: a search (posted, so names and ID numbers stay out of URLs and history).
async fn search(State(state): State<AppState>, posted: Posted) -> Response {
    let search = Search::from_fields(&posted.form);
    list(state, posted.who, search.clone(), search).await
}

/// What waits on each role when it opens the console.
fn inbox_status(role: StaffRole) -> &'static str {
    match role {
        StaffRole::TownshipStaff | StaffRole::TownshipAdmin => "received",
        StaffRole::WindowStaff => "forwarded",
        StaffRole::DistrictAdmin | StaffRole::Auditor => "",
    }
}

/// A page of the list: `search` is what runs, `typed` what the form shows.
async fn list(state: AppState, who: SignedIn, search: Search, typed: Search) -> Response {
    if who.account.role == StaffRole::DistrictAdmin {
        // Its console starts at administration.
        return Redirect::to("/console/staff").into_response();
    }
    if let Some(refused) = unless_reader(&who) {
        return refused;
    }
    let account = who.account.clone();
    let tab = search.status.clone();
    let result = state
        .with_store(move |store, _| {
            index::refresh(store)?;
            let scope = Scope::of(&account);
            let choices = pages::Choices {
                calendar_missing: calendar::missing_year(
                    &store.calendar()?,
                    crate::now().date_naive(),
                ),
                counts: index::counts(store, &scope)?,
                items: store
                    .catalog()?
                    .map(|c| c.items.into_iter().map(|i| (i.code, i.name)).collect())
                    .unwrap_or_default(),
                points: store
                    .directory()?
                    .district
                    .points
                    .into_iter()
                    .filter(|p| account.township.as_ref().is_none_or(|t| *t == p.township))
                    .map(|p| (p.number, p.name))
                    .collect(),
            };
            // A search that cannot run (a bad date, a wrong check digit) says why on the page.
            let found = index::search(store, &scope, &search, crate::now().date_naive()).map_err(
                |e| match e {
                    Error::BadRequest(text) => text,
                    e => crate::http::classify(&e).1,
                },
            );
            Ok((choices, found))
        })
        .await;
    match result {
        Ok((choices, found)) => {
            // A person named in the query is shown back masked only.
            let personal = index::Query::parse(&typed.q, crate::now().date_naive())
                .ok()
                .flatten()
                .and_then(|q| q.masked());
            pages::list(&who, &typed, &tab, personal.as_deref(), &choices, &found).into_response()
        }
        Err(e) => failure(Some(&who), &e),
    }
}

async fn ticket(
    State(state): State<AppState>,
    Staffer(who, _): Staffer,
    Path(number): Path<String>,
) -> Response {
    if let Some(refused) = unless_reader(&who) {
        return refused;
    }
    let now = crate::now();
    let account = who.account.clone();
    match state
        .with_store(move |store, _| {
            let view = staff::view(store, &account, &number, now)?;
            Ok((windows(store, &view)?, view))
        })
        .await
    {
        Ok((windows, view)) => ticket_page(&who, &view, &windows, false, now),
        Err(e) => failure(Some(&who), &e),
    }
}

/// The district windows a ticket may be forwarded to, its item's own window first.
fn windows(store: &ServerStore, view: &TicketView) -> Result<Vec<String>, Error> {
    let Some(catalog) = store.catalog()? else {
        return Ok(Vec::new());
    };
    let own = catalog
        .items
        .iter()
        .find(|i| i.code == view.ticket.item.code)
        .and_then(|i| i.window.clone());
    let others = catalog
        .windows()
        .into_iter()
        .filter(|w| Some(w) != own.as_ref());
    Ok(own.clone().into_iter().chain(others).collect())
}

fn ticket_page(
    who: &SignedIn,
    view: &TicketView,
    windows: &[String],
    unmasked: bool,
    now: chrono::DateTime<chrono::FixedOffset>,
) -> Response {
    let staff = Staff::from_account(&who.account);
    let page = pages::TicketPage {
        view,
        actions: staff
            .as_ref()
            .map(|s| staff::available(s, view, now))
            .unwrap_or_default(),
        reviews: staff.is_some_and(|s| s.reviews),
        windows,
        unmasked,
    };
    pages::ticket(who, &page).into_response()
}

pub(super) fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// `POST /console/tickets/{n}/events`: one staff action, through the same code as the API;
/// then back to the ticket (or its refusal, with the reason).
async fn act(
    State(state): State<AppState>,
    Path(number): Path<String>,
    posted: Posted,
) -> Response {
    let Posted { who, form, .. } = posted;
    let Some(staff) = Staff::from_account(&who.account) else {
        return failure(Some(&who), &Error::Forbidden("本账号不能办理办件".into()));
    };
    let Some(kind) = EventKind::parse(field(&form, "kind")).filter(|k| staff::ACTIONS.contains(k))
    else {
        return failure(Some(&who), &Error::BadRequest("未知的办理操作".into()));
    };
    let mut payload = serde_json::Map::new();
    if kind == EventKind::SupplementRequested {
        let missing: Vec<&str> = form
            .iter()
            .filter(|(k, _)| k == "missing")
            .map(|(_, v)| v.as_str())
            .collect();
        if missing.is_empty() {
            return failure(Some(&who), &Error::BadRequest("请勾选须补正的材料".into()));
        }
        payload.insert("missing".into(), missing.into());
    }
    for key in ["window", "outcome", "certificate_no"] {
        let value = field(&form, key).trim();
        if !value.is_empty() {
            payload.insert(key.into(), value.into());
        }
    }
    let draft = EventDraft {
        kind,
        note: field(&form, "note").to_owned(),
        payload: payload.into(),
    };
    record(&state, &who, staff, number, draft).await
}

/// Append a staff event through the staff API's code path, then show the ticket (or the
/// refusal with its reason).
async fn record(
    state: &AppState,
    who: &SignedIn,
    staff: Staff,
    number: String,
    draft: EventDraft,
) -> Response {
    let now = crate::now();
    let target = number.clone();
    match state
        .with_store(move |store, info| staff::append(store, info, &target, &staff, &draft, now))
        .await
    {
        Ok(_) => {
            state.nudge();
            Redirect::to(&format!("/console/tickets/{number}")).into_response()
        }
        Err(e) => failure(Some(who), &e),
    }
}

/// `POST /console/tickets/{n}/review`: a township admin's decision on the ticket's 需核对
/// records (`resolves`, repeated; `note`: the decision).
async fn review(
    State(state): State<AppState>,
    Path(number): Path<String>,
    posted: Posted,
) -> Response {
    let Posted { who, form, .. } = posted;
    let Some(staff) = Staff::from_account(&who.account).filter(|s| s.reviews) else {
        return failure(
            Some(&who),
            &Error::Forbidden("只有乡镇管理员可以处理需核对".into()),
        );
    };
    let resolves: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "resolves")
        .map(|(_, v)| v.as_str())
        .collect();
    let draft = EventDraft {
        kind: EventKind::Reviewed,
        note: field(&form, "note").to_owned(),
        payload: serde_json::json!({ "resolves": resolves }),
    };
    record(&state, &who, staff, number, draft).await
}

/// `POST /console/tickets/{n}/unmask`: the ticket once with the applicant in full, the
/// viewing recorded with its reason.
async fn unmask(
    State(state): State<AppState>,
    Path(number): Path<String>,
    posted: Posted,
) -> Response {
    let Posted { who, form, .. } = posted;
    if let Some(refused) = unless_reader(&who) {
        return refused;
    }
    let now = crate::now();
    let account = who.account.clone();
    let reason = field(&form, "reason").to_owned();
    match state
        .with_store(move |store, _| {
            let view = staff::unmask(store, &account, &number, &reason, now)?;
            Ok((windows(store, &view)?, view))
        })
        .await
    {
        Ok((windows, view)) => ticket_page(&who, &view, &windows, true, now),
        Err(e) => failure(Some(&who), &e),
    }
}
