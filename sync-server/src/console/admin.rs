//! Administration in the console: staff accounts, device enrollment codes, the audit log.
//!
//! Every route decides on the server who may use it and over what: a township admin, on its
//! own township's server, over that township's accounts and points; a district admin, on the
//! district server, over the district's accounts and the township servers; the audit log also
//! for auditors. Every change is written to the audit log with it.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, FixedOffset};
use maud::{html, Markup};

use agent_core::domain::directory::Directory;
use agent_core::domain::validate::normalize;
use agent_core::sync::wire::Peer;

use super::{failure, field, pages, Posted, Staffer};
use crate::accounts::{self, AccountRow, AuditQuery, AuditRow, NewAccount, SignedIn, StaffRole};
use crate::config::ServerRole;
use crate::enroll::{CodeFor, Issued, MAX_CODE_HOURS};
use crate::error::Error;
use crate::http::AppState;
use crate::store::ServerStore;
use crate::sync::ServerInfo;

/// How long a code lives unless the admin says otherwise: three days to install a tablet.
const DEFAULT_CODE_HOURS: u32 = 72;
/// Audit rows per page.
const AUDIT_PAGE: u32 = 100;
/// A window-staff account without a window: it sees every forwarded ticket.
const GENERAL_WINDOW: &str = "综合窗口（全部转办件）";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/staff", get(staff_page).post(open_account))
        .route("/console/staff/disable", post(disable))
        .route("/console/staff/enable", post(enable))
        .route("/console/staff/password", post(reset_password))
        .route("/console/enroll", get(enroll_page).post(issue))
        .route("/console/enroll/revoke", post(revoke))
        .route("/console/audit", get(audit_page))
}

/// What an admin manages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Admin {
    /// A township admin on its township's server: that township's accounts and points.
    Township(String),
    /// A district admin on the district server: its accounts and the township servers.
    District,
}

impl Admin {
    /// The admin `who` is on this server; anyone else is refused.
    fn of(who: &SignedIn, info: &ServerInfo) -> Result<Admin, Error> {
        let a = &who.account;
        match (a.role, info.role) {
            (StaffRole::TownshipAdmin, ServerRole::Township) => {
                match (&a.township, &info.township) {
                    (Some(mine), Some(here)) if mine == here => Ok(Admin::Township(mine.clone())),
                    _ => Err(Error::Forbidden("本账号不属于这个乡镇".into())),
                }
            }
            (StaffRole::DistrictAdmin, ServerRole::District) => Ok(Admin::District),
            _ => Err(Error::Forbidden(
                "只有乡镇管理员和区县管理员可以使用此页面".into(),
            )),
        }
    }

    fn township(&self) -> Option<&str> {
        match self {
            Admin::Township(t) => Some(t),
            Admin::District => None,
        }
    }

    /// Roles of the accounts it opens and changes.
    fn roles(&self) -> &'static [StaffRole] {
        match self {
            Admin::Township(_) => &[
                StaffRole::TownshipStaff,
                StaffRole::TownshipAdmin,
                StaffRole::Auditor,
            ],
            Admin::District => &[
                StaffRole::WindowStaff,
                StaffRole::DistrictAdmin,
                StaffRole::Auditor,
            ],
        }
    }

    /// Refuses an account outside its scope or of a role it does not manage.
    fn may_change(&self, row: &AccountRow) -> Result<(), Error> {
        if row.township.as_deref() == self.township() && self.roles().contains(&row.role) {
            Ok(())
        } else {
            Err(Error::Forbidden("这个账号不归本管理员管理".into()))
        }
    }
}

// ---- staff accounts ----

async fn staff_page(State(state): State<AppState>, Staffer(who, _): Staffer) -> Response {
    staff_view(&state, who, None).await
}

/// The accounts page; `error` (a refused form, 400) above it so the admin can correct it.
async fn staff_view(state: &AppState, who: SignedIn, error: Option<String>) -> Response {
    let admin = match Admin::of(&who, &state.info) {
        Ok(a) => a,
        Err(e) => return failure(Some(&who), &e),
    };
    let scope = admin.clone();
    let loaded = state
        .with_store(move |store, _| {
            let rows = accounts::list(store.conn(), scope.township())?;
            Ok((rows, windows(store, &scope)?))
        })
        .await;
    match loaded {
        Ok((rows, windows)) => {
            let status = if error.is_some() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            let markup = staff_markup(&who, &admin, &rows, &windows, error.as_deref());
            (status, markup).into_response()
        }
        Err(e) => failure(Some(&who), &e),
    }
}

/// After an account change: back to the list, or the list with what was wrong.
async fn after_change(state: &AppState, who: SignedIn, result: Result<(), Error>) -> Response {
    match result {
        Ok(()) => Redirect::to("/console/staff").into_response(),
        Err(Error::BadRequest(text)) => staff_view(state, who, Some(text)).await,
        Err(e) => failure(Some(&who), &e),
    }
}

/// The district windows an account can serve, from the catalog (none on a township).
fn windows(store: &ServerStore, admin: &Admin) -> Result<Vec<String>, Error> {
    if *admin != Admin::District {
        return Ok(Vec::new());
    }
    Ok(store.catalog()?.map(|c| c.windows()).unwrap_or_default())
}

/// `POST /console/staff`: open an account of a role this admin manages.
async fn open_account(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { who, form, .. } = posted;
    let admin = match Admin::of(&who, &state.info) {
        Ok(a) => a,
        Err(e) => return failure(Some(&who), &e),
    };
    let Some(role) = StaffRole::parse(field(&form, "role")) else {
        return after_change(&state, who, Err(Error::BadRequest("请选择角色".into()))).await;
    };
    if !admin.roles().contains(&role) {
        let refusal = Error::Forbidden(format!("不能在此开设{}账号", role.label()));
        return failure(Some(&who), &refusal);
    }
    let login = field(&form, "login").to_owned();
    let name = field(&form, "name").to_owned();
    let password = field(&form, "password").to_owned();
    // Only window staff serve a window; the field is ignored for other roles.
    let window = Some(field(&form, "window").trim().to_owned())
        .filter(|w| role == StaffRole::WindowStaff && !w.is_empty());
    let by = who.account.login.clone();
    let now = crate::now();
    let result = state
        .with_store(move |store, info| {
            if let Some(w) = &window {
                if !windows(store, &admin)?.contains(w) {
                    return Err(Error::BadRequest("所选窗口不在事项目录中".into()));
                }
            }
            let new = NewAccount {
                login: &login,
                name: &name,
                role,
                window: window.as_deref(),
            };
            accounts::add(store, info, &new, &password, &by, now).map(drop)
        })
        .await;
    after_change(&state, who, result).await
}

async fn disable(State(state): State<AppState>, posted: Posted) -> Response {
    switch(state, posted, true).await
}

async fn enable(State(state): State<AppState>, posted: Posted) -> Response {
    switch(state, posted, false).await
}

/// `POST /console/staff/{disable,enable}`: an account of this admin's scope, not its own.
async fn switch(state: AppState, posted: Posted, disabled: bool) -> Response {
    let Posted { who, form, .. } = posted;
    let admin = match Admin::of(&who, &state.info) {
        Ok(a) => a,
        Err(e) => return failure(Some(&who), &e),
    };
    let login = field(&form, "login").to_owned();
    if disabled && login == who.account.login {
        let refusal = Error::BadRequest("不能停用自己的账号".into());
        return after_change(&state, who, Err(refusal)).await;
    }
    let by = who.account.login.clone();
    let now = crate::now();
    let result = state
        .with_store(move |store, _| {
            let row = accounts::find(store.conn(), &login)?
                .ok_or_else(|| Error::BadRequest("没有这个账号".into()))?;
            admin.may_change(&row)?;
            accounts::set_disabled(store, &login, disabled, &by, now)
        })
        .await;
    after_change(&state, who, result).await
}

/// `POST /console/staff/password`: a new password the admin typed; the account's sessions
/// end. Hashed before the store is taken (argon2 is slow on purpose).
async fn reset_password(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { who, form, .. } = posted;
    let admin = match Admin::of(&who, &state.info) {
        Ok(a) => a,
        Err(e) => return failure(Some(&who), &e),
    };
    let login = field(&form, "login").to_owned();
    let password = field(&form, "password").to_owned();
    let hashed = tokio::task::spawn_blocking(move || accounts::hash_password(&password))
        .await
        .unwrap_or_else(|e| Err(Error::Internal(format!("task failed: {e}"))));
    let hash = match hashed {
        Ok(h) => h,
        Err(e) => return after_change(&state, who, Err(e)).await,
    };
    let by = who.account.login.clone();
    let now = crate::now();
    let result = state
        .with_store(move |store, _| {
            let row = accounts::find(store.conn(), &login)?
                .ok_or_else(|| Error::BadRequest("没有这个账号".into()))?;
            admin.may_change(&row)?;
            accounts::set_password(store, &login, &hash, &by, now)
        })
        .await;
    after_change(&state, who, result).await
}

// ---- enrollment codes ----

/// A device as the enrollment page lists it.
struct DeviceRow {
    point: u32,
    point_name: String,
    device: u32,
    /// Revoked, with the reason given.
    revoked: Option<String>,
}

/// What the enrollment page shows.
struct EnrollView {
    /// (number, name) of the points in scope: the township's, or all at the district.
    points: Vec<(u32, String)>,
    /// (code, name, server enrolled) of the townships; only at the district.
    townships: Vec<(String, String, bool)>,
    devices: Vec<DeviceRow>,
}

fn enroll_view(dir: &Directory, admin: &Admin) -> EnrollView {
    let points: Vec<(u32, String)> = dir
        .district
        .points
        .iter()
        .filter(|p| admin.township().is_none_or(|mine| mine == p.township))
        .map(|p| (p.number, p.name.clone()))
        .collect();
    let name_of = |n: u32| points.iter().find(|(p, _)| *p == n).map(|(_, s)| s.clone());
    let mut devices: Vec<DeviceRow> = dir
        .townships
        .values()
        .flat_map(|part| &part.devices)
        .filter_map(|d| {
            Some(DeviceRow {
                point: d.point,
                point_name: name_of(d.point)?,
                device: d.number,
                revoked: dir.revocation(d.point, d.number).map(|r| r.reason.clone()),
            })
        })
        .collect();
    // Numbers revoked before a device ever enrolled with them.
    let revoked = std::iter::once(&dir.district)
        .chain(dir.townships.values())
        .flat_map(|part| &part.revoked);
    for r in revoked {
        let listed = devices
            .iter()
            .any(|d| d.point == r.point && d.device == r.device);
        if let (false, Some(point_name)) = (listed, name_of(r.point)) {
            devices.push(DeviceRow {
                point: r.point,
                point_name,
                device: r.device,
                revoked: Some(r.reason.clone()),
            });
        }
    }
    devices.sort_by_key(|d| (d.point, d.device));
    let townships = match admin {
        Admin::District => dir
            .district
            .townships
            .iter()
            .map(|t| (t.code.clone(), t.name.clone(), t.server.is_some()))
            .collect(),
        Admin::Township(_) => Vec::new(),
    };
    EnrollView {
        points,
        townships,
        devices,
    }
}

async fn enroll_page(State(state): State<AppState>, Staffer(who, _): Staffer) -> Response {
    enroll_page_with(&state, who, None).await
}

/// The enrollment page; `error` (a refused form, 400) above it.
async fn enroll_page_with(state: &AppState, who: SignedIn, error: Option<String>) -> Response {
    let admin = match Admin::of(&who, &state.info) {
        Ok(a) => a,
        Err(e) => return failure(Some(&who), &e),
    };
    let scope = admin.clone();
    let loaded = state
        .with_store(move |store, _| Ok(enroll_view(&store.directory()?, &scope)))
        .await;
    match loaded {
        Ok(view) => {
            let status = if error.is_some() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            let markup = enroll_markup(&who, &admin, &view, error.as_deref());
            (status, markup).into_response()
        }
        Err(e) => failure(Some(&who), &e),
    }
}

/// `POST /console/enroll`: issue a code (a device of one of the township's points, or a
/// township server) and show it, once.
async fn issue(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { who, form, .. } = posted;
    let admin = match Admin::of(&who, &state.info) {
        Ok(a) => a,
        Err(e) => return failure(Some(&who), &e),
    };
    let parsed = code_for(&admin, &form).and_then(|t| Ok((t, code_hours(field(&form, "hours"))?)));
    let (target, hours) = match parsed {
        Ok(p) => p,
        Err(Error::BadRequest(text)) => return enroll_page_with(&state, who, Some(text)).await,
        Err(e) => return failure(Some(&who), &e),
    };
    let by = who.account.login.clone();
    let now = crate::now();
    let result = state
        .with_store(move |store, info| issue_audited(store, info, &admin, &target, hours, &by, now))
        .await;
    match result {
        Ok(issued) => issued_markup(&who, &issued).into_response(),
        Err(Error::BadRequest(text)) => enroll_page_with(&state, who, Some(text)).await,
        Err(e) => failure(Some(&who), &e),
    }
}

/// `POST /console/enroll/revoke` (`point`, `device`, `reason`): stop a lost or broken
/// tablet. Every server on its path refuses it from its next sync on and tells it to wipe
/// (see `enroll::revoke`); the district hears of it at the township's next sync.
async fn revoke(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { who, form, .. } = posted;
    if let Err(e) = Admin::of(&who, &state.info) {
        return failure(Some(&who), &e);
    }
    let number = |name: &str| field(&form, name).trim().parse::<u32>().ok();
    let reason = normalize(field(&form, "reason"));
    let (Some(point), Some(device)) = (number("point"), number("device")) else {
        return enroll_page_with(&state, who, Some("请选择要停用的设备".into())).await;
    };
    if reason.is_empty() || reason.chars().count() > 100 {
        return enroll_page_with(&state, who, Some("请填写停用原因（100字以内）".into())).await;
    }
    let by = who.account.login.clone();
    let now = crate::now();
    let result = state
        .with_store(move |store, info| {
            crate::enroll::revoke(store, info, point, device, &reason)?;
            let tx = store.begin()?;
            let detail = format!("代办点{point} 设备{device:02}：{reason}");
            accounts::audit(&tx, &by, "停用设备", None, &detail, now)?;
            tx.commit()?;
            Ok(())
        })
        .await;
    match result {
        Ok(()) => {
            state.nudge();
            Redirect::to("/console/enroll").into_response()
        }
        Err(Error::BadRequest(text)) => enroll_page_with(&state, who, Some(text)).await,
        Err(e) => failure(Some(&who), &e),
    }
}

/// What the form asks a code for.
fn code_for(admin: &Admin, form: &[(String, String)]) -> Result<CodeFor, Error> {
    match admin {
        Admin::Township(_) => {
            let point = field(form, "point")
                .trim()
                .parse::<u32>()
                .map_err(|_| Error::BadRequest("请选择代办点".into()))?;
            let device = match field(form, "device").trim() {
                "" => None,
                d => Some(
                    d.parse::<u32>()
                        .ok()
                        .filter(|d| (1..=99).contains(d))
                        .ok_or_else(|| {
                            Error::BadRequest("设备编号须为1至99的整数，或留空自动分配".into())
                        })?,
                ),
            };
            Ok(CodeFor::Device { point, device })
        }
        Admin::District => match field(form, "township").trim() {
            "" => Err(Error::BadRequest("请选择乡镇".into())),
            code => Ok(CodeFor::Township(code.to_owned())),
        },
    }
}

/// Validity in hours: empty for the default, else 1 to [`MAX_CODE_HOURS`].
fn code_hours(text: &str) -> Result<u32, Error> {
    match text.trim() {
        "" => Ok(DEFAULT_CODE_HOURS),
        t => t
            .parse::<u32>()
            .ok()
            .filter(|h| (1..=MAX_CODE_HOURS).contains(h))
            .ok_or_else(|| {
                Error::BadRequest(format!("有效期须为1至{MAX_CODE_HOURS}之间的整数（小时）"))
            }),
    }
}

/// Issue the code and record it. The code is shown only once the record is written: a code
/// whose record failed is never seen by anyone (only its digest is kept), so it is unusable.
fn issue_audited(
    store: &mut ServerStore,
    info: &ServerInfo,
    admin: &Admin,
    target: &CodeFor,
    hours: u32,
    by: &str,
    now: DateTime<FixedOffset>,
) -> Result<Issued, Error> {
    if let (Admin::Township(mine), CodeFor::Device { point, .. }) = (admin, target) {
        if store.directory()?.township_of(*point) != Some(mine.as_str()) {
            return Err(Error::Forbidden(format!("代办点{point}不属于本乡镇")));
        }
    }
    let issued = crate::enroll::issue_code(store, info, target, hours, now)?;
    let detail = format!(
        "{}，有效至{}",
        whom(&issued.peer),
        issued.expires.format("%Y-%m-%d %H:%M")
    );
    let tx = store.begin()?;
    accounts::audit(&tx, by, "签发注册码", None, &detail, now)?;
    tx.commit()?;
    Ok(issued)
}

fn whom(peer: &Peer) -> String {
    match peer {
        Peer::Device { point, device } => format!("代办点{point} 设备{device:02}"),
        Peer::Township { code } => format!("乡镇{code}的服务器"),
    }
}

// ---- audit log ----

/// Whose rows `who` may read here: `None` every row of this server, `Some(t)` the rows of
/// township `t`'s accounts (a township admin).
fn audit_scope(who: &SignedIn, info: &ServerInfo) -> Result<Option<String>, Error> {
    match who.account.role {
        StaffRole::Auditor => Ok(None),
        StaffRole::TownshipAdmin | StaffRole::DistrictAdmin => Ok(match Admin::of(who, info)? {
            Admin::Township(t) => Some(t),
            Admin::District => None,
        }),
        _ => Err(Error::Forbidden(
            "只有监察审计员和管理员可以查看审计日志".into(),
        )),
    }
}

/// `GET /console/audit?login=&ticket=&before=`: newest first, a page at a time.
async fn audit_page(
    State(state): State<AppState>,
    Staffer(who, _): Staffer,
    RawQuery(query): RawQuery,
) -> Response {
    let township = match audit_scope(&who, &state.info) {
        Ok(t) => t,
        Err(e) => return failure(Some(&who), &e),
    };
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let login = field(&params, "login").trim().to_owned();
    let ticket = field(&params, "ticket").trim().to_owned();
    let before = match field(&params, "before").trim() {
        "" => None,
        b => match b.parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                let refusal = Error::BadRequest("翻页参数无效，请从第一页重新查看".into());
                return failure(Some(&who), &refusal);
            }
        },
    };
    let (l, t) = (login.clone(), ticket.clone());
    let read = state
        .with_store(move |store, _| {
            let q = AuditQuery {
                login: Some(l.as_str()).filter(|s| !s.is_empty()),
                ticket: Some(t.as_str()).filter(|s| !s.is_empty()),
                township: township.as_deref(),
                before,
                limit: AUDIT_PAGE + 1,
            };
            accounts::audit_log(store.conn(), &q)
        })
        .await;
    let mut rows = match read {
        Ok(rows) => rows,
        Err(e) => return failure(Some(&who), &e),
    };
    let earlier = (rows.len() > AUDIT_PAGE as usize).then(|| {
        rows.truncate(AUDIT_PAGE as usize);
        let mut link = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("login", login.as_str()), ("ticket", ticket.as_str())] {
            if !v.is_empty() {
                link.append_pair(k, v);
            }
        }
        let last = rows.last().map_or(0, |r| r.id);
        link.append_pair("before", &last.to_string());
        format!("/console/audit?{}", link.finish())
    });
    audit_markup(&who, &rows, &login, &ticket, earlier.as_deref()).into_response()
}

// ---- markup ----

/// The date of an RFC 3339 time; a time in minutes.
fn day(at: &str) -> &str {
    at.get(..10).unwrap_or(at)
}

fn minute(at: &str) -> String {
    DateTime::parse_from_rfc3339(at).map_or_else(
        |_| at.to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn staff_markup(
    who: &SignedIn,
    admin: &Admin,
    rows: &[AccountRow],
    windows: &[String],
    error: Option<&str>,
) -> Markup {
    let heading = match admin {
        Admin::Township(_) => "本乡镇工作人员账号",
        Admin::District => "区县服务器账号",
    };
    pages::page(
        "账号管理",
        Some(who),
        html! {
            h2 { (heading) }
            @if let Some(e) = error { p.error.box { (e) } }
            table {
                thead { tr {
                    th { "登录名" } th { "姓名" } th { "角色" } th { "窗口" } th { "状态" }
                    th { "开设日期" } th { "操作" }
                } }
                tbody {
                    @for r in rows {
                        tr data-login=(r.login) {
                            td { (r.login) }
                            td { (r.name) }
                            td { (r.role.label()) }
                            td { @if r.role == StaffRole::WindowStaff {
                                (r.window.as_deref().unwrap_or(GENERAL_WINDOW))
                            } }
                            td.state { @if r.disabled { span.error { "停用" } } @else { "启用" } }
                            td { (day(&r.created_at)) }
                            td { @if admin.may_change(r).is_ok() {
                                @if r.disabled {
                                    form method="post" action="/console/staff/enable" style="display:inline" {
                                        input type="hidden" name="csrf" value=(who.csrf);
                                        input type="hidden" name="login" value=(r.login);
                                        button type="submit" { "启用" }
                                    }
                                } @else if r.login != who.account.login {
                                    form method="post" action="/console/staff/disable" style="display:inline" {
                                        input type="hidden" name="csrf" value=(who.csrf);
                                        input type="hidden" name="login" value=(r.login);
                                        button type="submit" { "停用" }
                                    }
                                }
                                " "
                                form method="post" action="/console/staff/password" style="display:inline" {
                                    input type="hidden" name="csrf" value=(who.csrf);
                                    input type="hidden" name="login" value=(r.login);
                                    input type="password" name="password" style="width:9em"
                                        placeholder="新密码" autocomplete="new-password" required;
                                    " "
                                    button type="submit" { "重置密码" }
                                }
                            } }
                        }
                    }
                }
            }
            form.box method="post" action="/console/staff" style="margin-top:12px" {
                h3 { "开设账号" }
                input type="hidden" name="csrf" value=(who.csrf);
                label for="new-login" { "登录名（2至32位字母、数字或 . _ -）" }
                input id="new-login" type="text" name="login" required autocomplete="off";
                label for="new-name" { "姓名" }
                input id="new-name" type="text" name="name" required;
                label for="new-role" { "角色" }
                select id="new-role" name="role" {
                    @for role in admin.roles() { option value=(role.as_str()) { (role.label()) } }
                }
                @if *admin == Admin::District {
                    label for="new-window" { "所属窗口（仅窗口工作人员）" }
                    select id="new-window" name="window" {
                        option value="" { (GENERAL_WINDOW) }
                        @for w in windows { option value=(w) { (w) } }
                    }
                }
                label for="new-password" { "初始密码（至少" (accounts::MIN_PASSWORD_CHARS) "位）" }
                input id="new-password" type="password" name="password" required
                    autocomplete="new-password";
                br;
                button.primary type="submit" { "开设账号" }
            }
        },
    )
}

fn enroll_markup(who: &SignedIn, admin: &Admin, view: &EnrollView, error: Option<&str>) -> Markup {
    pages::page(
        "设备注册码",
        Some(who),
        html! {
            h2 { "签发注册码" }
            @if let Some(e) = error { p.error.box { (e) } }
            form.box method="post" action="/console/enroll" {
                input type="hidden" name="csrf" value=(who.csrf);
                @match admin {
                    Admin::Township(_) => {
                        @if view.points.is_empty() {
                            p.error { "本服务器尚未收到区县目录，暂不能签发注册码。" }
                        }
                        label for="code-point" { "代办点" }
                        select id="code-point" name="point" required {
                            @for (number, name) in &view.points {
                                option value=(number) { (number) " " (name) }
                            }
                        }
                        label for="code-device" { "设备编号（1至99，留空自动分配）" }
                        input id="code-device" type="text" name="device" inputmode="numeric";
                    }
                    Admin::District => {
                        label for="code-township" { "乡镇服务器" }
                        select id="code-township" name="township" required {
                            @for (code, name, enrolled) in &view.townships {
                                option value=(code) {
                                    (code) " " (name) @if *enrolled { "（已注册，重新签发将替换）" }
                                }
                            }
                        }
                    }
                }
                label for="code-hours" { "有效期（小时，1至" (MAX_CODE_HOURS) "）" }
                input id="code-hours" type="text" name="hours" inputmode="numeric"
                    value=(DEFAULT_CODE_HOURS);
                br;
                button.primary type="submit" { "签发注册码" }
            }
            @if !view.townships.is_empty() {
                h3 { "乡镇服务器" }
                table {
                    thead { tr { th { "乡镇代码" } th { "名称" } th { "状态" } } }
                    tbody {
                        @for (code, name, enrolled) in &view.townships {
                            tr {
                                td { (code) } td { (name) }
                                td { @if *enrolled { "已注册" } @else { "未注册" } }
                            }
                        }
                    }
                }
            }
            h3 { "已登记设备" }
            @if view.devices.is_empty() {
                p.box { "暂无已登记的设备。" }
            } @else {
                table id="devices" {
                    thead { tr { th { "代办点" } th { "设备编号" } th { "状态" } th { "停用（丢失、损坏、交回）" } } }
                    tbody {
                        @for d in &view.devices {
                            tr data-device=(format!("{}-{}", d.point, d.device)) {
                                td { (d.point) " " (d.point_name) }
                                td { (format!("{:02}", d.device)) }
                                td { @match &d.revoked {
                                    None => "在用",
                                    Some(reason) if reason.is_empty() => span.error { "已停用" },
                                    Some(reason) => span.error { "已停用：" (reason) },
                                } }
                                td {
                                    @if d.revoked.is_none() {
                                        form method="post" action="/console/enroll/revoke" {
                                            input type="hidden" name="csrf" value=(who.csrf);
                                            input type="hidden" name="point" value=(d.point);
                                            input type="hidden" name="device" value=(d.device);
                                            input type="text" name="reason" required placeholder="停用原因";
                                            " "
                                            button type="submit" { "停用" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn issued_markup(who: &SignedIn, issued: &Issued) -> Markup {
    pages::page(
        "注册码",
        Some(who),
        html! {
            h2 { "注册码已签发" }
            div.box {
                p { "请抄下注册码交给安装人员。注册码只显示这一次，只能使用一次。" }
                p id="code" style="font-size:28px;font-family:monospace;letter-spacing:2px;margin:12px 0" {
                    (issued.code)
                }
                dl {
                    dt { "用于" } dd { (whom(&issued.peer)) }
                    dt { "有效至" } dd { (issued.expires.format("%Y-%m-%d %H:%M")) }
                }
                p { a href="/console/enroll" { "返回设备注册码" } }
            }
        },
    )
}

fn audit_markup(
    who: &SignedIn,
    rows: &[AuditRow],
    login: &str,
    ticket: &str,
    earlier: Option<&str>,
) -> Markup {
    pages::page(
        "审计日志",
        Some(who),
        html! {
            h2 { "审计日志" }
            form.box method="get" action="/console/audit" {
                label for="audit-login" style="display:inline" { "登录名 " }
                input id="audit-login" type="text" name="login" value=(login) style="width:12em";
                " "
                label for="audit-ticket" style="display:inline" { "办件编号 " }
                input id="audit-ticket" type="text" name="ticket" value=(ticket) style="width:12em";
                " "
                button type="submit" { "筛选" }
                " "
                a href="/console/audit" { "全部" }
            }
            @if rows.is_empty() {
                p.box { "没有符合条件的记录。" }
            } @else {
                table id="audit" {
                    thead { tr {
                        th { "时间" } th { "登录名" } th { "操作" } th { "办件编号" } th { "说明" }
                    } }
                    tbody {
                        @for r in rows {
                            tr {
                                td { (minute(&r.at)) }
                                td { (r.login) }
                                td { (r.action) }
                                td { @if let Some(t) = &r.ticket { (t) } }
                                td { (r.detail) }
                            }
                        }
                    }
                }
            }
            @if let Some(href) = earlier {
                p { a href=(href) { "更早" } }
            }
        },
    )
}
