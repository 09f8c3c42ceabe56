//! Townships and village points in the console (乡镇和代办点): the district's part of the
//! directory. Everyone signed in reads it (a township's accounts their own township only),
//! with each point's distance and fare to the county seat and its tablets in use; a district
//! admin, on the district server, adds townships and points and edits their names, distances,
//! fares and phones. The phones (a township's duty mobile 值班手机, a point's agent's mobile
//! 代理员手机, which the SMS gateway texts when a ticket runs overdue) are optional, checked as
//! mainland mobiles and stored as their 11 digits; lists show them masked to everyone, the
//! district admin's edit forms in full, and the audit log masked. Each change is checked as the whole part (`DirectoryPart::from_json`),
//! published as the district's part, audited, and reaches every server and tablet at their
//! next sync. The part is edited as held, so the township servers' enrolled identities and
//! the revocations in it stay (`enroll::keep_enrolled` once more after the checks).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;

use agent_core::domain::directory::{Directory, DirectoryPart, Point, Township};
use agent_core::domain::mask::mask_phone;
use agent_core::domain::number::MAX_POINT;
use agent_core::domain::validate::{check_mobile, normalize, ValidationError};

use super::{failure, field, input, pages, Posted, Staffer};
use crate::accounts::{self, SignedIn, StaffRole};
use crate::config::ServerRole;
use crate::error::Error;
use crate::http::AppState;
use crate::store::ServerStore;
use crate::sync::ServerInfo;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/townships", get(show).post(add_township))
        .route("/console/townships/{township}", post(edit_township))
        .route("/console/points", post(add_point))
        .route("/console/points/{point}", post(edit_point))
}

/// Longest distance to the county seat a form takes, in hundredths of a km.
const MAX_DISTANCE: i64 = 1_000 * 100;
/// Highest round-trip fare a form takes: 10,000 yuan, in fen.
const MAX_FARE_FEN: i64 = 1_000_000;

/// Only a district admin, on the district server, edits the district's part.
fn may_edit(info: &ServerInfo, who: &SignedIn) -> bool {
    who.account.role == StaffRole::DistrictAdmin && info.role == ServerRole::District
}

fn refused(who: &SignedIn) -> Response {
    failure(
        Some(who),
        &Error::Forbidden("只有区县管理员可以在区县服务器上维护乡镇和代办点".into()),
    )
}

/// The new-township and new-point forms as typed, so a refused form comes back with them.
#[derive(Debug, Clone, Default)]
struct Typed {
    township_code: String,
    township_name: String,
    township_phone: String,
    number: String,
    name: String,
    township: String,
    distance: String,
    fare: String,
    agent_phone: String,
}

impl Typed {
    fn posted(form: &[(String, String)]) -> Typed {
        let f = |name: &str| field(form, name).to_owned();
        Typed {
            township_code: f("code"),
            township_name: f("name"),
            township_phone: f("phone"),
            number: f("number"),
            name: f("name"),
            township: f("township"),
            distance: f("distance_km"),
            fare: f("fare"),
            agent_phone: f("agent_phone"),
        }
    }
}

/// A township code: 1–32 letters, digits or `-` (it names the township's directory part).
fn township_code(text: &str) -> Result<String, String> {
    let code = normalize(text);
    let fine = (1..=32).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if fine {
        Ok(code)
    } else {
        Err("乡镇代码须为1至32位数字或字母（如行政区划代码 431023101）".into())
    }
}

/// An optional mobile as typed: `None` when left empty, else its 11 digits, or why it is not
/// a mainland mobile (`label` names the field; the number typed is not repeated).
fn mobile(label: &str, input: &str) -> Result<Option<String>, String> {
    if input::tidy(input).is_empty() {
        return Ok(None);
    }
    match check_mobile(input) {
        Ok(digits) => Ok(Some(digits)),
        Err(ValidationError::MobileEmpty | ValidationError::MobileBadCharacters) => Err(format!(
            "{label}只能包含数字（可带+86），请核对后重新输入；不填请留空"
        )),
        Err(ValidationError::MobileNotMainland) => Err(format!(
            "{label}须为大陆手机号码（以13至19开头的11位数字），请核对后重新输入；座机号码不能接收短信"
        )),
        Err(e) => Err(format!("{label}：{e}")),
    }
}

/// The mobile field `name` of an edit form: `None` when the form does not post it (what is
/// held stays), else as [`mobile`] (empty: none).
fn posted_mobile(
    form: &[(String, String)],
    name: &str,
    label: &str,
) -> Result<Option<Option<String>>, String> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| mobile(label, v))
        .transpose()
}

/// A phone for the audit log: masked, or 无 when none.
fn masked(phone: Option<&str>) -> String {
    phone.map_or_else(|| "无".to_owned(), mask_phone)
}

/// Name, distance (km) and fare (yuan) of a point's form.
fn point_fields(form: &[(String, String)]) -> Result<(String, f64, i64), Vec<String>> {
    let mut errors = Vec::new();
    let name = input::text("代办点名称", field(form, "name"), 40);
    let distance = input::hundredths(
        "到县城的距离（公里）",
        field(form, "distance_km"),
        MAX_DISTANCE,
    );
    let fare = input::hundredths("往返车费（元）", field(form, "fare"), MAX_FARE_FEN);
    let name = name.map_err(|e| errors.push(e)).unwrap_or_default();
    let distance = distance.map_err(|e| errors.push(e)).unwrap_or_default();
    let fare = fare.map_err(|e| errors.push(e)).unwrap_or_default();
    if errors.is_empty() {
        // At most MAX_DISTANCE hundredths of a km: within i32.
        let km = f64::from(i32::try_from(distance).unwrap_or(0)) / 100.0;
        Ok((name, km, fare))
    } else {
        Err(errors)
    }
}

// ---- the page ----

async fn show(State(state): State<AppState>, Staffer(who, _): Staffer) -> Response {
    view(&state, &who, Typed::default(), &[]).await
}

/// The townships with their points; for a district admin the forms (`typed` and `errors`
/// when one was refused: 400).
async fn view(state: &AppState, who: &SignedIn, typed: Typed, errors: &[String]) -> Response {
    let dir = match state.with_store(|store, _| store.directory()).await {
        Ok(d) => d,
        Err(e) => return failure(Some(who), &e),
    };
    let edits = may_edit(&state.info, who);
    let mine = who.account.township.as_deref();
    let townships: Vec<&Township> = dir
        .district
        .townships
        .iter()
        .filter(|t| mine.is_none_or(|m| m == t.code))
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = html! {
        h2 { "乡镇和代办点" }
        @if !errors.is_empty() {
            div.box.error id="errors" {
                "未保存，请修改后重试："
                ul { @for e in errors { li { (e) } } }
            }
        }
        @if townships.is_empty() {
            p.box { "目录中还没有乡镇。" }
        }
        @for t in &townships {
            @let points: Vec<&Point> = dir.district.points.iter().filter(|p| p.township == t.code).collect();
            div.box data-township=(t.code) {
                h3 { (t.name) " " small { "（" (t.code) "）" } }
                p {
                    "乡镇服务器："
                    @if t.server.is_some() { "已注册" } @else { "未注册" }
                    "；代办点" (points.len()) "个；值班手机："
                    span.phone { @if let Some(phone) = &t.phone { (mask_phone(phone)) } @else { "未填" } }
                    "。"
                }
                @if edits {
                    form method="post" action={ "/console/townships/" (t.code) } {
                        input type="hidden" name="csrf" value=(who.csrf);
                        label style="display:inline" { "乡镇名称 " input type="text" name="name" required value=(t.name); }
                        " "
                        label style="display:inline" {
                            "值班手机 "
                            input type="tel" name="phone" inputmode="tel" placeholder="不填请留空" value=(t.phone.as_deref().unwrap_or_default()) style="width:9em";
                        }
                        " "
                        button type="submit" { "保存" }
                    }
                }
                @if points.is_empty() {
                    p { "本乡镇还没有代办点。" }
                } @else {
                    table.points {
                        thead { tr {
                            th { "编号" } th { "代办点名称" } th { "所属乡镇" } th { "到县城距离（公里）" }
                            th { "往返车费（元）" } th { "代理员手机" } th { "在用设备" }
                            @if edits { th { "修改（名称、距离、车费、代理员手机）" } }
                        } }
                        tbody {
                            @for p in &points {
                                tr data-point=(p.number) {
                                    td { (p.number) }
                                    td.name { (p.name) }
                                    td { (t.name) }
                                    td.distance { (p.distance_km) }
                                    td.fare { (input::shown(p.fare_fen)) }
                                    td.agent_phone { @if let Some(phone) = &p.agent_phone { (mask_phone(phone)) } }
                                    td.devices { (devices_in_use(&dir, p.number)) }
                                    @if edits {
                                        td {
                                            form method="post" action={ "/console/points/" (p.number) } {
                                                input type="hidden" name="csrf" value=(who.csrf);
                                                input type="text" name="name" required value=(p.name) style="width:9em";
                                                " "
                                                input type="text" name="distance_km" required value=(p.distance_km) style="width:4em" inputmode="decimal";
                                                " "
                                                input type="text" name="fare" required value=(input::shown(p.fare_fen)) style="width:5em" inputmode="decimal";
                                                " "
                                                input type="tel" name="agent_phone" inputmode="tel" placeholder="代理员手机" value=(p.agent_phone.as_deref().unwrap_or_default()) style="width:9em";
                                                " "
                                                button type="submit" { "保存" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if edits {
            form.box method="post" action="/console/points" id="new-point" {
                h3 { "新增代办点" }
                p { "代办点编号是该点所有办件编号的开头，登记后不能更改，也不能改属其他乡镇。" }
                input type="hidden" name="csrf" value=(who.csrf);
                label for="point-number" { "代办点编号（1至" (MAX_POINT) "，不与已有代办点重复）" }
                input id="point-number" type="text" name="number" inputmode="numeric" required value=(typed.number);
                label for="point-name" { "代办点名称" }
                input id="point-name" type="text" name="name" required value=(typed.name);
                label for="point-township" { "所属乡镇" }
                select id="point-township" name="township" required {
                    @for t in &dir.district.townships {
                        option value=(t.code) selected[typed.township == t.code] { (t.code) " " (t.name) }
                    }
                }
                label for="point-distance" { "到县城的距离（公里）" }
                input id="point-distance" type="text" name="distance_km" inputmode="decimal" required value=(typed.distance);
                label for="point-fare" { "往返县城的车费（元）" }
                input id="point-fare" type="text" name="fare" inputmode="decimal" required value=(typed.fare);
                label for="point-agent-phone" { "代理员手机（选填；办件逾期时短信提醒）" }
                input id="point-agent-phone" type="tel" name="agent_phone" inputmode="tel" value=(typed.agent_phone);
                br;
                button.primary type="submit" { "新增代办点" }
            }
            form.box method="post" action="/console/townships" id="new-township" {
                h3 { "新增乡镇" }
                input type="hidden" name="csrf" value=(who.csrf);
                label for="township-code" { "乡镇代码（登记后不能更改）" }
                input id="township-code" type="text" name="code" required value=(typed.township_code);
                label for="township-name" { "乡镇名称" }
                input id="township-name" type="text" name="name" required value=(typed.township_name);
                label for="township-phone" { "值班手机（选填；办件逾期时短信提醒）" }
                input id="township-phone" type="tel" name="phone" inputmode="tel" value=(typed.township_phone);
                br;
                button.primary type="submit" { "新增乡镇" }
            }
        }
    };
    (status, pages::page("乡镇和代办点", Some(who), body)).into_response()
}

/// Tablets of a point enrolled and not revoked.
fn devices_in_use(dir: &Directory, point: u32) -> usize {
    dir.townships
        .values()
        .flat_map(|part| &part.devices)
        .filter(|d| d.point == point && !dir.is_revoked(point, d.number))
        .count()
}

// ---- changes ----

/// One change to the district's part.
enum Change {
    AddTownship {
        code: String,
        name: String,
        phone: Option<String>,
    },
    /// A township's name, and its duty mobile when `phone` is `Some` (`Some(None)`: none).
    EditTownship {
        code: String,
        name: String,
        phone: Option<Option<String>>,
    },
    AddPoint(Point),
    /// A point's name, distance and fare, and its agent's mobile when `agent_phone` is `Some`
    /// (`Some(None)`: none).
    EditPoint {
        number: u32,
        name: String,
        distance_km: f64,
        fare_fen: i64,
        agent_phone: Option<Option<String>>,
    },
}

impl Change {
    /// Apply it to `part`: the audit log's action and detail (phones masked), or why it cannot
    /// be made.
    fn apply(self, part: &mut DirectoryPart) -> Result<(&'static str, String), String> {
        match self {
            Change::AddTownship { code, name, phone } => {
                if let Some(t) = part.townships.iter().find(|t| t.code == code) {
                    return Err(format!("乡镇代码{code}已被“{}”使用", t.name));
                }
                let mut detail = format!("{code} {name}");
                if let Some(phone) = &phone {
                    detail.push_str(&format!("（值班手机{}）", mask_phone(phone)));
                }
                part.townships.push(Township {
                    code,
                    name,
                    server: None,
                    phone,
                });
                Ok(("新增乡镇", detail))
            }
            Change::EditTownship { code, name, phone } => {
                let t = part
                    .townships
                    .iter_mut()
                    .find(|t| t.code == code)
                    .ok_or_else(|| format!("乡镇{code}不在目录中"))?;
                let mut what = Vec::new();
                if t.name != name {
                    what.push(format!("名称{}→{name}", t.name));
                }
                if let Some(phone) = phone.filter(|p| *p != t.phone) {
                    what.push(format!(
                        "值班手机{}→{}",
                        masked(t.phone.as_deref()),
                        masked(phone.as_deref())
                    ));
                    t.phone = phone;
                }
                t.name = name;
                Ok((
                    "修改乡镇",
                    format!("{code} {}：{}", t.name, what.join("，")),
                ))
            }
            Change::AddPoint(point) => {
                if let Some(p) = part.points.iter().find(|p| p.number == point.number) {
                    return Err(format!(
                        "代办点编号{}已被“{}”使用，请换一个编号",
                        point.number, p.name
                    ));
                }
                if !part.townships.iter().any(|t| t.code == point.township) {
                    return Err(format!("所属乡镇{}不在目录中", point.township));
                }
                let mut detail = format!(
                    "{} {}（{}，{}公里，车费{}元",
                    point.number,
                    point.name,
                    point.township,
                    point.distance_km,
                    input::shown(point.fare_fen)
                );
                if let Some(phone) = &point.agent_phone {
                    detail.push_str(&format!("，代理员手机{}", mask_phone(phone)));
                }
                detail.push('）');
                part.points.push(point);
                Ok(("新增代办点", detail))
            }
            Change::EditPoint {
                number,
                name,
                distance_km,
                fare_fen,
                agent_phone,
            } => {
                let p = part
                    .points
                    .iter_mut()
                    .find(|p| p.number == number)
                    .ok_or_else(|| format!("代办点{number}不在目录中"))?;
                let mut what = Vec::new();
                if p.name != name {
                    what.push(format!("名称{}→{name}", p.name));
                }
                if p.distance_km != distance_km {
                    what.push(format!("距离{}→{distance_km}公里", p.distance_km));
                }
                if p.fare_fen != fare_fen {
                    what.push(format!(
                        "车费{}→{}元",
                        input::shown(p.fare_fen),
                        input::shown(fare_fen)
                    ));
                }
                if let Some(phone) = agent_phone.filter(|a| *a != p.agent_phone) {
                    what.push(format!(
                        "代理员手机{}→{}",
                        masked(p.agent_phone.as_deref()),
                        masked(phone.as_deref())
                    ));
                    p.agent_phone = phone;
                }
                p.name = name;
                p.distance_km = distance_km;
                p.fare_fen = fare_fen;
                Ok((
                    "修改代办点",
                    format!("{number} {}：{}", p.name, what.join("，")),
                ))
            }
        }
    }
}

/// Apply `change` to the district's part as held, check the whole part, publish it and audit
/// it, in one transaction. A change that leaves the part as it was publishes nothing.
fn publish_change(
    store: &mut ServerStore,
    info: &ServerInfo,
    change: Change,
    by: &str,
    now: chrono::DateTime<chrono::FixedOffset>,
) -> Result<(), Error> {
    let tx = store.begin()?;
    let (name, held) = crate::enroll::own_part(&tx, info)?;
    let mut part = held.clone();
    let (action, detail) = change.apply(&mut part).map_err(Error::BadRequest)?;
    if part == held {
        return Ok(());
    }
    let json = serde_json::to_string(&part).map_err(|e| Error::Internal(e.to_string()))?;
    let dir = crate::store::directory(&tx)?;
    // The checks an import makes; a directory still being built (townships before their
    // first point) has nothing else to check.
    let mut checked = if part.points.is_empty() {
        part
    } else {
        DirectoryPart::from_json(&json, None, &dir).map_err(|e| Error::BadRequest(e.to_string()))?
    };
    crate::enroll::keep_enrolled(&mut checked, &held);
    let body = serde_json::to_vec(&checked).map_err(|e| Error::Internal(e.to_string()))?;
    crate::store::publish(&tx, &name, &body)?;
    accounts::audit(&tx, by, action, None, &detail, now)?;
    tx.commit()?;
    Ok(())
}

/// Publish `change` as `who`, then back to the page (or the page with why not, the forms as
/// typed).
async fn submit(state: &AppState, who: SignedIn, change: Change, typed: Typed) -> Response {
    let by = who.account.login.clone();
    let now = crate::now();
    let result = state
        .with_store(move |store, info| publish_change(store, info, change, &by, now))
        .await;
    match result {
        Ok(()) => Redirect::to("/console/townships").into_response(),
        Err(Error::BadRequest(text)) => view(state, &who, typed, &[text]).await,
        Err(e) => failure(Some(&who), &e),
    }
}

/// `POST /console/townships` (`code`, `name`, optional `phone`): a new township.
async fn add_township(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { who, form, .. } = posted;
    if !may_edit(&state.info, &who) {
        return refused(&who);
    }
    let mut typed = Typed::posted(&form);
    typed.name.clear();
    let code = township_code(field(&form, "code"));
    let name = input::text("乡镇名称", field(&form, "name"), 40);
    let phone = mobile("值班手机", field(&form, "phone"));
    match (code, name, phone) {
        (Ok(code), Ok(name), Ok(phone)) => {
            let change = Change::AddTownship { code, name, phone };
            submit(&state, who, change, typed).await
        }
        (code, name, phone) => {
            let errors: Vec<String> = [code.err(), name.err(), phone.err()]
                .into_iter()
                .flatten()
                .collect();
            view(&state, &who, typed, &errors).await
        }
    }
}

/// `POST /console/townships/{township}` (`name`, `phone`): a township's name and duty mobile
/// (empty: none; not posted: kept).
async fn edit_township(
    State(state): State<AppState>,
    Path(code): Path<String>,
    posted: Posted,
) -> Response {
    let Posted { who, form, .. } = posted;
    if !may_edit(&state.info, &who) {
        return refused(&who);
    }
    let name = input::text("乡镇名称", field(&form, "name"), 40);
    let phone = posted_mobile(&form, "phone", "值班手机");
    match (name, phone) {
        (Ok(name), Ok(phone)) => {
            let change = Change::EditTownship { code, name, phone };
            submit(&state, who, change, Typed::default()).await
        }
        (name, phone) => {
            let errors: Vec<String> = [name.err(), phone.err()]
                .into_iter()
                .flatten()
                .map(|e| format!("乡镇{code}：{e}"))
                .collect();
            view(&state, &who, Typed::default(), &errors).await
        }
    }
}

/// `POST /console/points` (`number`, `name`, `township`, `distance_km`, `fare`, optional
/// `agent_phone`): a new point.
async fn add_point(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { who, form, .. } = posted;
    if !may_edit(&state.info, &who) {
        return refused(&who);
    }
    let mut typed = Typed::posted(&form);
    typed.township_name.clear();
    let number = input::whole("代办点编号", field(&form, "number"), MAX_POINT).and_then(|n| {
        if n == 0 {
            Err(format!("代办点编号须在1至{MAX_POINT}之间"))
        } else {
            Ok(n)
        }
    });
    let fields = point_fields(&form);
    let agent_phone = mobile("代理员手机", field(&form, "agent_phone"));
    let township = normalize(field(&form, "township"));
    match (number, fields, agent_phone) {
        (Ok(number), Ok((name, distance_km, fare_fen)), Ok(agent_phone)) => {
            let point = Point {
                number,
                name,
                township,
                distance_km,
                fare_fen,
                agent_phone,
            };
            submit(&state, who, Change::AddPoint(point), typed).await
        }
        (number, fields, agent_phone) => {
            let mut errors: Vec<String> = number.err().into_iter().collect();
            errors.extend(fields.err().unwrap_or_default());
            errors.extend(agent_phone.err());
            view(&state, &who, typed, &errors).await
        }
    }
}

/// `POST /console/points/{point}` (`name`, `distance_km`, `fare`, `agent_phone`): a point's
/// name, distance, fare and agent's mobile (empty: none; not posted: kept); its number and
/// township stay.
async fn edit_point(
    State(state): State<AppState>,
    Path(number): Path<String>,
    posted: Posted,
) -> Response {
    let Posted { who, form, .. } = posted;
    if !may_edit(&state.info, &who) {
        return refused(&who);
    }
    let Ok(number) = number.parse::<u32>() else {
        let text = format!("没有编号为{number}的代办点");
        return (StatusCode::NOT_FOUND, pages::refused(Some(&who), &text)).into_response();
    };
    let agent_phone = posted_mobile(&form, "agent_phone", "代理员手机");
    match (point_fields(&form), agent_phone) {
        (Ok((name, distance_km, fare_fen)), Ok(agent_phone)) => {
            let change = Change::EditPoint {
                number,
                name,
                distance_km,
                fare_fen,
                agent_phone,
            };
            submit(&state, who, change, Typed::default()).await
        }
        (fields, agent_phone) => {
            let errors: Vec<String> = fields
                .err()
                .unwrap_or_default()
                .into_iter()
                .chain(agent_phone.err())
                .map(|e| format!("代办点{number}：{e}"))
                .collect();
            view(&state, &who, Typed::default(), &errors).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(number: u32, township: &str) -> Point {
        Point {
            number,
            name: format!("{number}号点"),
            township: township.into(),
            distance_km: 10.0,
            fare_fen: 800,
            agent_phone: None,
        }
    }

    #[test]
    fn changes_refuse_duplicates_and_unknown_townships() {
        let mut part = agent_core::demo::district_directory();
        let code = part.townships[0].code.clone();
        let before = part.clone();
        let dup = Change::AddPoint(point(101, &code)).apply(&mut part);
        assert!(dup.unwrap_err().contains("代办点编号101已被"));
        let lost = Change::AddPoint(point(9001, "000")).apply(&mut part);
        assert!(lost.unwrap_err().contains("所属乡镇000不在目录中"));
        let twice = Change::AddTownship {
            code: code.clone(),
            name: "又一个".into(),
            phone: None,
        }
        .apply(&mut part);
        assert!(twice.unwrap_err().contains("已被"));
        assert_eq!(part, before);
        let (action, _) = Change::AddPoint(point(9001, &code))
            .apply(&mut part)
            .unwrap();
        assert_eq!(action, "新增代办点");
        assert_eq!(part.points.len(), before.points.len() + 1);
    }

    #[test]
    fn township_codes_name_a_directory_part() {
        assert_eq!(
            township_code(" ４３１０２３１０３ "),
            Ok("431023103".into())
        );
        assert!(township_code("a b").is_err());
        assert!(township_code("x:y").is_err());
        assert!(township_code(&"1".repeat(33)).is_err());
    }

    #[test]
    fn mobiles_are_optional_checked_and_stored_as_eleven_digits() {
        assert_eq!(mobile("值班手机", " \u{3000} "), Ok(None));
        assert_eq!(
            mobile("值班手机", "+86 139-0731-0101"),
            Ok(Some("13907310101".into()))
        );
        assert_eq!(
            mobile("值班手机", "１３９０７３１０１０１"),
            Ok(Some("13907310101".into()))
        );
        for bad in [
            "12345",
            "10086",
            "12807310101",
            "0731-8888888",
            "139O7310101",
            "--",
        ] {
            let e = mobile("值班手机", bad).unwrap_err();
            assert!(e.starts_with("值班手机"), "{bad}: {e}");
            assert!(!e.contains(bad), "{bad} repeated: {e}");
        }
        assert!(mobile("代理员手机", "10086").unwrap_err().contains("11位"));
        let form = |v: &str| vec![("agent_phone".to_owned(), v.to_owned())];
        assert_eq!(posted_mobile(&[], "agent_phone", "代理员手机"), Ok(None));
        assert_eq!(
            posted_mobile(&form(""), "agent_phone", "代理员手机"),
            Ok(Some(None))
        );
        assert_eq!(
            posted_mobile(&form("13907310999"), "agent_phone", "代理员手机"),
            Ok(Some(Some("13907310999".into())))
        );
    }

    #[test]
    fn edits_keep_a_phone_the_form_does_not_change_and_audit_it_masked() {
        let mut part = agent_core::demo::district_directory();
        let code = part.townships[0].code.clone();
        let held = part.townships[0].phone.clone().unwrap();
        let rename = Change::EditTownship {
            code: code.clone(),
            name: "新名镇".into(),
            phone: None,
        };
        let (action, detail) = rename.apply(&mut part).unwrap();
        assert_eq!(action, "修改乡镇");
        assert_eq!(part.townships[0].phone.as_deref(), Some(held.as_str()));
        assert!(
            detail.contains("名称") && !detail.contains("值班手机"),
            "{detail}"
        );
        let again = Change::EditTownship {
            code: code.clone(),
            name: "新名镇".into(),
            phone: Some(Some(held.clone())),
        };
        let (_, detail) = again.apply(&mut part).unwrap();
        assert!(!detail.contains("值班手机"), "{detail}");
        let phone = Change::EditTownship {
            code,
            name: "新名镇".into(),
            phone: Some(Some("13912340000".into())),
        };
        let (_, detail) = phone.apply(&mut part).unwrap();
        assert_eq!(part.townships[0].phone.as_deref(), Some("13912340000"));
        assert!(
            detail.contains(&format!("值班手机{}→139****0000", mask_phone(&held))),
            "{detail}"
        );
        assert!(
            !detail.contains("13912340000") && !detail.contains(&held),
            "{detail}"
        );

        let p = part.points[0].clone();
        let edit = |agent_phone| Change::EditPoint {
            number: p.number,
            name: p.name.clone(),
            distance_km: p.distance_km,
            fare_fen: p.fare_fen + 100,
            agent_phone,
        };
        let (action, detail) = edit(None).apply(&mut part).unwrap();
        assert_eq!(action, "修改代办点");
        assert_eq!(part.points[0].agent_phone, p.agent_phone);
        assert!(
            detail.contains("车费") && !detail.contains("名称"),
            "{detail}"
        );
        let (_, detail) = edit(Some(None)).apply(&mut part).unwrap();
        assert_eq!(part.points[0].agent_phone, None);
        assert!(detail.contains("→无"), "{detail}");
    }
}
