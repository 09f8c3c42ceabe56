//! The service catalog in the console (事项目录). Everyone signed in reads every item with its
//! current version, and each item's earlier versions; a district admin, on the district
//! server, edits an item or adds one. A save that changes something publishes the next
//! catalog version (`crate::catalog::save_item`: checked, audited), which reaches every
//! township and tablet at their next sync; a save that changes nothing makes no version.
//! Tickets keep the item version they were registered under.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

use agent_core::domain::catalog::{
    Catalog, HandlingLevel, Item, ItemKind, MaterialForm, RequiredMaterial, StageBudgets,
};
use agent_core::domain::validate::normalize;

use super::{failure, field, input, pages, Posted, Staffer};
use crate::accounts::{SignedIn, StaffRole};
use crate::catalog::{self, ItemVersion, Save, Saved};
use crate::config::ServerRole;
use crate::error::Error;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/catalog", get(list).post(add))
        .route("/console/catalog/{code}", get(show).post(edit))
}

/// Highest statutory fee a form takes: one million yuan, in fen.
const MAX_FEE_FEN: i64 = 100_000_000;
/// Highest number of working days (promise or stage budget) a form takes.
const MAX_DAYS: u32 = 999;
/// Most materials one item lists.
const MAX_MATERIALS: usize = 50;

/// Only a district admin, on the district server, edits the catalog.
fn may_edit(state: &AppState, who: &SignedIn) -> bool {
    who.account.role == StaffRole::DistrictAdmin && state.info.role == ServerRole::District
}

fn level_label(level: HandlingLevel) -> &'static str {
    match level {
        HandlingLevel::Township => "乡镇办理",
        HandlingLevel::Window => "转区县窗口办理",
    }
}

fn kind_label(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Immediate => "即办件",
        ItemKind::Promised => "承诺件",
        ItemKind::Reported => "上报件",
    }
}

const LEVELS: [(&str, HandlingLevel); 2] = [
    ("township", HandlingLevel::Township),
    ("window", HandlingLevel::Window),
];
const KINDS: [(&str, ItemKind); 3] = [
    ("immediate", ItemKind::Immediate),
    ("promised", ItemKind::Promised),
    ("reported", ItemKind::Reported),
];

/// A code as one segment of a URL path: letters, digits and `-_.~` kept, the rest
/// percent-encoded.
fn segment(code: &str) -> String {
    let mut out = String::new();
    for b in code.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A time of the version history, to the minute.
fn minute(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at).map_or_else(
        |_| at.to_owned(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// The item form's fields as typed (or as the item stands), so a refused form comes back
/// with what the clerk typed.
#[derive(Debug, Clone, Default)]
struct Draft {
    code: String,
    name: String,
    category: String,
    department: String,
    level: String,
    window: String,
    kind: String,
    /// One material a line: `名称|原件或复印件|份数`.
    materials: String,
    /// Yuan.
    fee: String,
    legal_basis: String,
    promised_days: String,
    township_review: String,
    window_handling: String,
    return_to_village: String,
    /// The item version the edit form was opened at.
    base: String,
}

impl Draft {
    /// A blank form for a new item.
    fn blank() -> Draft {
        Draft {
            level: "township".into(),
            kind: "promised".into(),
            fee: "0".into(),
            ..Draft::default()
        }
    }

    fn of(item: &Item) -> Draft {
        let level = LEVELS.iter().find(|(_, l)| *l == item.level);
        let kind = KINDS.iter().find(|(_, k)| *k == item.kind);
        Draft {
            code: item.code.clone(),
            name: item.name.clone(),
            category: item.category.clone(),
            department: item.department.clone(),
            level: level.map_or("", |p| p.0).to_owned(),
            window: item.window.clone().unwrap_or_default(),
            kind: kind.map_or("", |p| p.0).to_owned(),
            materials: item
                .materials
                .iter()
                .map(|m| format!("{}|{}|{}", m.name, m.form.label(), m.copies))
                .collect::<Vec<_>>()
                .join("\n"),
            fee: input::shown(item.fee_fen),
            legal_basis: item.legal_basis.clone(),
            promised_days: item.promised_days.to_string(),
            township_review: item.stages.township_review.to_string(),
            window_handling: item.stages.window_handling.to_string(),
            return_to_village: item.stages.return_to_village.to_string(),
            base: item.version.to_string(),
        }
    }

    fn posted(form: &[(String, String)]) -> Draft {
        let f = |name: &str| field(form, name).to_owned();
        Draft {
            code: f("code"),
            name: f("name"),
            category: f("category"),
            department: f("department"),
            level: f("level"),
            window: f("window"),
            kind: f("kind"),
            materials: f("materials"),
            fee: f("fee"),
            legal_basis: f("legal_basis"),
            promised_days: f("promised_days"),
            township_review: f("township_review"),
            window_handling: f("window_handling"),
            return_to_village: f("return_to_village"),
            base: f("base"),
        }
    }

    /// The item the form describes (version 0: the save gives it one), or every reason it
    /// cannot be used. A new item's code is checked; an edited item keeps its own.
    fn item(&self, new: bool) -> Result<Item, Vec<String>> {
        let mut errors = Vec::new();
        let mut ok = |r: Result<String, String>| r.map_err(|e| errors.push(e)).unwrap_or_default();
        let code = if new {
            ok(item_code(&self.code))
        } else {
            self.code.clone()
        };
        let name = ok(input::text("事项名称", &self.name, 60));
        let category = ok(input::text("事项类别", &self.category, 30));
        let department = ok(input::text("实施部门", &self.department, 30));
        let legal_basis = ok(input::text("设定依据", &self.legal_basis, 500));
        let level = LEVELS.iter().find(|(s, _)| *s == self.level).map(|p| p.1);
        let window = match level {
            Some(HandlingLevel::Window) => Some(ok(input::text("办理窗口", &self.window, 60))),
            _ => None,
        };
        let kind = KINDS.iter().find(|(s, _)| *s == self.kind).map(|p| p.1);
        let mut number = |r: Result<u32, String>| r.map_err(|e| errors.push(e)).unwrap_or_default();
        let promised = input::whole("承诺时限", &self.promised_days, MAX_DAYS);
        let no_promise = promised == Ok(0);
        let promised_days = number(promised);
        let stages = StageBudgets {
            township_review: number(input::whole(
                "乡镇审核时限",
                &self.township_review,
                MAX_DAYS,
            )),
            window_handling: number(input::whole(
                "窗口办理时限",
                &self.window_handling,
                MAX_DAYS,
            )),
            return_to_village: number(input::whole(
                "返回代办点时限",
                &self.return_to_village,
                MAX_DAYS,
            )),
        };
        let fee_fen = input::hundredths("收费金额", &self.fee, MAX_FEE_FEN)
            .map_err(|e| errors.push(e))
            .unwrap_or_default();
        let materials = materials(&self.materials).unwrap_or_else(|mut e| {
            errors.append(&mut e);
            Vec::new()
        });
        if level.is_none() {
            errors.push("请选择办理层级".into());
        }
        match kind {
            None => errors.push("请选择事项类型".into()),
            Some(k) if k != ItemKind::Immediate && no_promise => {
                errors.push(format!(
                    "{}的承诺时限至少为1个工作日（只有即办件可以为0）",
                    kind_label(k)
                ));
            }
            Some(_) => {}
        }
        let (Some(level), Some(kind), true) = (level, kind, errors.is_empty()) else {
            return Err(errors);
        };
        Ok(Item {
            code,
            version: 0,
            name,
            category,
            department,
            level,
            window,
            kind,
            materials,
            fee_fen,
            legal_basis,
            promised_days,
            stages,
        })
    }
}

/// An item code: 1–16 letters, digits, `-` or `_` (it is part of the item's page address).
fn item_code(input: &str) -> Result<String, String> {
    let code = normalize(input);
    let fine = (1..=16).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fine {
        Ok(code)
    } else {
        Err("事项编码须为1至16位字母、数字、“-”或“_”，如 SB001".into())
    }
}

/// The materials, one a line: `名称|原件或复印件|份数` (the count may be left out: 1).
fn materials(text: &str) -> Result<Vec<RequiredMaterial>, Vec<String>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = input::tidy(line);
        if line.is_empty() {
            continue;
        }
        let at = |e: &str| format!("所需材料第{}行“{line}”：{e}", n + 1);
        let parts: Vec<&str> = line.split(['|', '｜']).map(str::trim).collect();
        let (name, form, copies) = match parts.as_slice() {
            [name, form] => (*name, *form, "1"),
            [name, form, copies] => (*name, *form, *copies),
            _ => {
                errors.push(at("请按“名称|原件或复印件|份数”填写"));
                continue;
            }
        };
        let name = match input::text("材料名称", name, 100) {
            Ok(name) => name,
            Err(e) => {
                errors.push(at(&e));
                continue;
            }
        };
        let form = match form {
            "原件" | "original" => MaterialForm::Original,
            "复印件" | "copy" => MaterialForm::Copy,
            _ => {
                errors.push(at("须注明“原件”或“复印件”"));
                continue;
            }
        };
        let copies = match input::whole("份数", copies, 99) {
            Ok(c) if c > 0 => c,
            Ok(_) => {
                errors.push(at("份数至少为1"));
                continue;
            }
            Err(e) => {
                errors.push(at(&e));
                continue;
            }
        };
        if out.iter().any(|m: &RequiredMaterial| m.name == name) {
            errors.push(at("材料名称重复"));
            continue;
        }
        out.push(RequiredMaterial { name, form, copies });
    }
    if out.is_empty() && errors.is_empty() {
        errors.push("请至少填写一项所需材料".into());
    }
    if out.len() > MAX_MATERIALS {
        errors.push(format!("所需材料最多{MAX_MATERIALS}项"));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

// ---- handlers ----

/// `GET /console/catalog`: every item.
async fn list(State(state): State<AppState>, Staffer(who, _): Staffer) -> Response {
    list_view(&state, &who, None, &[]).await
}

/// The list page; a district admin also gets the new-item form (`draft`, refused with
/// `errors`, when a new item was refused: 400).
async fn list_view(
    state: &AppState,
    who: &SignedIn,
    draft: Option<Draft>,
    errors: &[String],
) -> Response {
    let catalog = match state.with_store(|store, _| store.catalog()).await {
        Ok(c) => c,
        Err(e) => return failure(Some(who), &e),
    };
    let edits = may_edit(state, who);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let windows = catalog.as_ref().map(Catalog::windows).unwrap_or_default();
    let body = html! {
        h2 { "事项目录" }
        @match &catalog {
            None => p.box { "区县尚未发布事项目录。" },
            Some(c) => {
                p { "目录版本 " strong id="catalog-version" { "v" (c.version) } "，共" (c.items.len()) "项。修改后的事项以新版本下发各乡镇和代办点；已登记的办件仍按登记时的版本办理。" }
                table id="catalog" {
                    thead { tr {
                        th { "编码" } th { "事项名称" } th { "类别" } th { "实施部门" }
                        th { "办理层级" } th { "类型" } th { "收费（元）" } th { "承诺时限" }
                        th { "环节时限（审核/窗口/返回）" } th { "版本" }
                    } }
                    tbody {
                        @for i in &c.items {
                            tr data-code=(i.code) {
                                td { a href={ "/console/catalog/" (segment(&i.code)) } { (i.code) } }
                                td { (i.name) }
                                td { (i.category) }
                                td { (i.department) }
                                td { (level_label(i.level)) @if let Some(w) = &i.window { br; (w) } }
                                td { (kind_label(i.kind)) }
                                td.fee { (input::shown(i.fee_fen)) }
                                td { (i.promised_days) "个工作日" }
                                td { (i.stages.township_review) " / " (i.stages.window_handling) " / " (i.stages.return_to_village) }
                                td.version { "v" (i.version) }
                            }
                        }
                    }
                }
            }
        }
        @if edits {
            form.box method="post" action="/console/catalog" style="margin-top:12px" id="new-item" {
                h3 { "新增事项" }
                @if catalog.is_none() {
                    p { "区县尚未发布事项目录：在此新增的事项将成为目录的全部内容。完整目录请用 import-catalog 导入。" }
                }
                (errors_markup(errors))
                input type="hidden" name="csrf" value=(who.csrf);
                label for="item-code" { "事项编码（1至16位字母、数字、“-”或“_”，保存后不能更改）" }
                input id="item-code" type="text" name="code" required value=(draft.as_ref().map_or("", |d| d.code.as_str()));
                (item_fields(&draft.unwrap_or_else(Draft::blank), &windows))
                br;
                button.primary type="submit" { "新增事项" }
            }
        }
    };
    (status, pages::page("事项目录", Some(who), body)).into_response()
}

/// `POST /console/catalog`: add an item.
async fn add(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { who, form, .. } = posted;
    if !may_edit(&state, &who) {
        return refused(&who);
    }
    let draft = Draft::posted(&form);
    let item = match draft.item(true) {
        Ok(i) => i,
        Err(errors) => return list_view(&state, &who, Some(draft), &errors).await,
    };
    let code = item.code.clone();
    match save(&state, &who, item, Save::New).await {
        Ok(saved) => Redirect::to(&after_save(&code, &saved)).into_response(),
        Err(Error::BadRequest(text)) => list_view(&state, &who, Some(draft), &[text]).await,
        Err(e) => failure(Some(&who), &e),
    }
}

/// `GET /console/catalog/{code}` (`?saved=N`: the version a save just published, 0 for
/// none): one item, its version history, and for a district admin the edit form.
async fn show(
    State(state): State<AppState>,
    Staffer(who, _): Staffer,
    Path(code): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let fields: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let notice = match field(&fields, "saved").parse::<u32>() {
        Ok(0) => Some("内容没有变化，未生成新版本。".to_owned()),
        Ok(v) => Some(format!("已保存为第{v}版，各乡镇和代办点在下次同步时收到。")),
        Err(_) => None,
    };
    item_view(&state, &who, &code, None, &[], notice).await
}

/// The item page; `draft` and `errors` when an edit was refused (400).
async fn item_view(
    state: &AppState,
    who: &SignedIn,
    code: &str,
    draft: Option<Draft>,
    errors: &[String],
    notice: Option<String>,
) -> Response {
    let wanted = code.to_owned();
    let loaded = state
        .with_store(move |store, _| {
            let catalog = store.catalog()?;
            let history = catalog::history(store.conn(), &wanted)?;
            Ok((catalog, history))
        })
        .await;
    let (catalog, history) = match loaded {
        Ok(l) => l,
        Err(e) => return failure(Some(who), &e),
    };
    let Some(item) = catalog.as_ref().and_then(|c| c.item(code)) else {
        let text = format!("事项目录中没有编码为{code}的事项");
        return (StatusCode::NOT_FOUND, pages::refused(Some(who), &text)).into_response();
    };
    let windows = catalog.as_ref().map(Catalog::windows).unwrap_or_default();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let draft = draft.unwrap_or_else(|| Draft::of(item));
    let body = html! {
        p { a href="/console/catalog" { "返回事项目录" } }
        h2 { (item.name) " " small { "（" (item.code) "）" } }
        @if let Some(n) = &notice { p.box id="notice" { (n) } }
        div.box {
            dl {
                dt { "当前版本" } dd id="item-version" { "v" (item.version) }
                dt { "事项类别" } dd { (item.category) }
                dt { "实施部门" } dd { (item.department) }
                dt { "办理层级" } dd { (level_label(item.level)) @if let Some(w) = &item.window { "：" (w) } }
                dt { "事项类型" } dd { (kind_label(item.kind)) }
                dt { "收费" } dd id="item-fee" { (input::shown(item.fee_fen)) " 元" }
                dt { "设定依据" } dd { (item.legal_basis) }
                dt { "承诺时限" } dd { "受理后" (item.promised_days) "个工作日" }
                dt { "环节时限" } dd {
                    "乡镇审核" (item.stages.township_review) "天，窗口办理" (item.stages.window_handling)
                    "天，返回代办点" (item.stages.return_to_village) "天（工作日）"
                }
                dt { "所需材料" } dd { (materials_markup(&item.materials)) }
            }
        }
        @if may_edit(state, who) {
            form.box method="post" action={ "/console/catalog/" (segment(&item.code)) } id="edit-item" {
                h3 { "修改事项" }
                p { "保存后生成第" (catalog.as_ref().map_or(0, |c| c.version) + 1) "版并下发；内容没有变化时不生成新版本。" }
                (errors_markup(errors))
                input type="hidden" name="csrf" value=(who.csrf);
                input type="hidden" name="base" value=(draft.base);
                (item_fields(&draft, &windows))
                br;
                button.primary type="submit" { "保存" }
            }
        }
        div.box {
            h3 { "版本记录" }
            @if history.is_empty() {
                p { "本服务器没有该事项的版本记录（版本记录在区县服务器导入或修改事项时保存）。" }
            } @else {
                (history_markup(&history))
            }
        }
    };
    let title = format!("事项 {}", item.code);
    (status, pages::page(&title, Some(who), body)).into_response()
}

/// `POST /console/catalog/{code}`: save the item as the form has it.
async fn edit(State(state): State<AppState>, Path(code): Path<String>, posted: Posted) -> Response {
    let Posted { who, form, .. } = posted;
    if !may_edit(&state, &who) {
        return refused(&who);
    }
    let mut draft = Draft::posted(&form);
    draft.code.clone_from(&code);
    let base = match draft.base.trim() {
        "" => None,
        b => b.parse::<u32>().ok(),
    };
    let item = match draft.item(false) {
        Ok(i) => i,
        Err(errors) => return item_view(&state, &who, &code, Some(draft), &errors, None).await,
    };
    match save(&state, &who, item, Save::Edit { base }).await {
        Ok(saved) => Redirect::to(&after_save(&code, &saved)).into_response(),
        Err(Error::BadRequest(text)) => {
            item_view(&state, &who, &code, Some(draft), &[text], None).await
        }
        Err(e) => failure(Some(&who), &e),
    }
}

fn refused(who: &SignedIn) -> Response {
    failure(
        Some(who),
        &Error::Forbidden("只有区县管理员可以在区县服务器上修改事项目录".into()),
    )
}

async fn save(state: &AppState, who: &SignedIn, item: Item, how: Save) -> Result<Saved, Error> {
    let by = who.account.login.clone();
    let now = crate::now();
    state
        .with_store(move |store, _| catalog::save_item(store, item, how, &by, now))
        .await
}

/// Where a save sends the admin: the item, saying what the save did.
fn after_save(code: &str, saved: &Saved) -> String {
    let version = match saved {
        Saved::Unchanged => 0,
        Saved::Published(v) => *v,
    };
    format!("/console/catalog/{}?saved={version}", segment(code))
}

// ---- markup ----

fn errors_markup(errors: &[String]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.error id="errors" {
                "未保存，请修改后重试："
                ul { @for e in errors { li { (e) } } }
            }
        }
    }
}

fn materials_markup(materials: &[RequiredMaterial]) -> Markup {
    html! {
        ol style="margin:0;padding-left:1.5em" {
            @for m in materials { li { (m.name) "（" (m.form.label()) (m.copies) "份）" } }
        }
    }
}

/// The item's fields on the new and edit forms (the code apart).
fn item_fields(d: &Draft, windows: &[String]) -> Markup {
    html! {
        label for="item-name" { "事项名称" }
        input id="item-name" type="text" name="name" required value=(d.name);
        label for="item-category" { "事项类别（行政许可、公共服务、行政确认……）" }
        input id="item-category" type="text" name="category" required value=(d.category);
        label for="item-department" { "实施部门" }
        input id="item-department" type="text" name="department" required value=(d.department);
        label for="item-level" { "办理层级" }
        select id="item-level" name="level" {
            @for (slug, level) in LEVELS {
                option value=(slug) selected[d.level == slug] { (level_label(level)) }
            }
        }
        label for="item-window" { "办理窗口（转区县窗口办理时填写）" }
        input id="item-window" type="text" name="window" list="item-windows" value=(d.window);
        datalist id="item-windows" { @for w in windows { option value=(w) {} } }
        label for="item-kind" { "事项类型" }
        select id="item-kind" name="kind" {
            @for (slug, kind) in KINDS {
                option value=(slug) selected[d.kind == slug] { (kind_label(kind)) }
            }
        }
        label for="item-materials" { "所需材料（每行一项：名称|原件或复印件|份数，如 户口簿|原件|1）" }
        textarea id="item-materials" name="materials" rows="6" cols="60" required { (d.materials) }
        label for="item-fee" { "收费金额（元，最多两位小数；不收费填0）" }
        input id="item-fee" type="text" name="fee" inputmode="decimal" required value=(d.fee);
        label for="item-basis" { "设定依据（收费或事项的法律依据）" }
        textarea id="item-basis" name="legal_basis" rows="2" cols="60" required { (d.legal_basis) }
        label for="item-days" { "承诺时限（受理后的工作日数；即办件可填0）" }
        input id="item-days" type="text" name="promised_days" inputmode="numeric" required value=(d.promised_days);
        fieldset style="margin-top:8px" {
            legend { "环节时限（工作日）" }
            label { "乡镇审核 " input type="text" name="township_review" inputmode="numeric" style="width:5em" required value=(d.township_review); }
            label { "窗口办理 " input type="text" name="window_handling" inputmode="numeric" style="width:5em" required value=(d.window_handling); }
            label { "返回代办点 " input type="text" name="return_to_village" inputmode="numeric" style="width:5em" required value=(d.return_to_village); }
        }
    }
}

fn history_markup(history: &[ItemVersion]) -> Markup {
    html! {
        table id="history" {
            thead { tr {
                th { "版本" } th { "发布时间" } th { "发布人" } th { "事项名称" } th { "收费（元）" }
                th { "承诺时限" } th { "环节时限（审核/窗口/返回）" } th { "办理层级" } th { "所需材料" }
            } }
            tbody {
                @for v in history {
                    @let i = &v.item;
                    tr data-version=(i.version) {
                        td { "v" (i.version) }
                        td { (minute(&v.at)) }
                        td { (v.by) }
                        td { (i.name) }
                        td.fee { (input::shown(i.fee_fen)) }
                        td { (i.promised_days) "个工作日" }
                        td { (i.stages.township_review) " / " (i.stages.window_handling) " / " (i.stages.return_to_village) }
                        td { (level_label(i.level)) @if let Some(w) = &i.window { "：" (w) } }
                        td { (materials_markup(&i.materials)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_reads_back_from_its_own_form() {
        for item in Catalog::demo().items {
            let mut back = Draft::of(&item).item(false).unwrap();
            back.version = item.version;
            assert_eq!(back, item);
        }
    }

    #[test]
    fn a_bad_form_says_every_reason() {
        let mut d = Draft::of(Catalog::demo().item("SB001").unwrap());
        d.fee = "-3".into();
        d.name = String::new();
        d.materials = "户口簿|原件|1\n照片|彩色|2\n户口簿|复印件".into();
        let errors = d.item(true).unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains("收费金额不能为负数")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("请填写事项名称")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("第2行") && e.contains("原件")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("第3行") && e.contains("重复")),
            "{errors:?}"
        );

        let mut d = Draft::of(Catalog::demo().item("SB001").unwrap());
        d.promised_days = "0".into();
        let errors = d.item(true).unwrap_err();
        assert!(
            errors[0].contains("承诺件的承诺时限至少为1个工作日"),
            "{errors:?}"
        );
        d.kind = "immediate".into();
        assert!(d.item(true).is_ok());

        d.code = "SB 001/x".into();
        assert!(d.item(true).unwrap_err()[0].contains("事项编码"));
        d.code = "SB001".into();
        d.materials = "\n \n".into();
        assert!(d.item(true).unwrap_err()[0].contains("至少填写一项"));
        d.materials = "户口簿".into();
        assert!(d.item(true).unwrap_err()[0].contains("名称|原件或复印件|份数"));
        d.materials = "户口簿 ｜ 原件".into();
        assert_eq!(d.item(true).unwrap().materials[0].copies, 1);
    }

    #[test]
    fn codes_are_path_segments() {
        assert_eq!(segment("SB001"), "SB001");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
    }
}
