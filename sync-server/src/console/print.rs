//! Printable forms: the applicant's 受理回执 (half an A4, or a receipt printer's roll) and the
//! full 代理承办单 (A4), as print-styled HTML. The browser prints them (Ctrl+P): pages need no
//! script, which the console's CSP forbids anyway.
//!
//! Access is the ticket page's: a signed-in account that sees tickets, the ticket in its
//! scope (404 otherwise). The applicant's ID number and phone stay masked on both; the name
//! is printed in full, as on the paper the applicant takes home. Printing only reads, so
//! nothing is audited, and nothing about the applicant is logged.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use agent_core::domain::deadline::ClockState;
use agent_core::domain::event::{evaluation_label, EventKind, Outcome, Role};
use agent_core::domain::mask::{mask_id, mask_phone};
use agent_core::domain::receipt::yuan;
use agent_core::domain::ticket::{MaterialLine, MaterialState, TicketView};

use super::{failure, unless_reader, Staffer};
use crate::http::AppState;
use crate::staff;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/tickets/{number}/receipt", get(receipt))
        .route("/console/tickets/{number}/form", get(form))
}

/// Shared by both sheets. On screen a sheet sits on a grey desk under a toolbar; printed,
/// only the sheet is left, filling the paper the printer dialog picks.
const STYLE: &str = r#"
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",SimSun,sans-serif;margin:0;background:#dfe3e8;color:#000;font-size:10.5pt}
.toolbar{background:#1f4e79;color:#fff;padding:8px 16px}
.toolbar a{color:#fff;margin-right:16px}
.sheet{background:#fff;margin:12px auto;padding:10mm;box-sizing:border-box;line-height:1.35}
.receipt{width:148mm;padding:7mm;font-size:10pt;line-height:1.3}
.form{width:210mm;min-height:297mm;padding:12mm}
h1{font-size:15pt;text-align:center;margin:0}
h2{font-size:12pt;text-align:center;margin:1mm 0 3mm;letter-spacing:.5em}
h3{font-size:11pt;margin:4mm 0 1mm}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #000;padding:.6mm 1.5mm;text-align:left;vertical-align:top}
th{font-weight:normal;background:#f0f0f0;white-space:nowrap}
.number{text-align:center;margin:1mm 0 2mm}
.number strong{font-size:18pt;letter-spacing:.08em;font-family:"Noto Sans Mono CJK SC","Noto Sans CJK SC",monospace}
.missing{font-weight:bold;margin:1mm 0}
.notes p{margin:1mm 0}
.signs{display:flex;justify-content:space-between;gap:4mm;margin-top:5mm}
.signs div{flex:1;line-height:2}
.foot{text-align:right;margin:2mm 0 0;font-size:9pt}
@media print{
 body{background:#fff}
 .toolbar{display:none}
 .sheet{margin:0;padding:0;width:auto;min-height:0}
 tr,.signs{break-inside:avoid}
}
"#;

/// The print frame: title, toolbar (links back and to the other sheet; not printed), sheet.
/// `page` is the sheet's `@page` rule.
fn frame(title: &str, number: &str, page: &str, sheet: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                title { (title) " " (number) }
                style { (PreEscaped(STYLE)) (PreEscaped(page)) }
            }
            body {
                div.toolbar {
                    a href={ "/console/tickets/" (number) } { "返回办件" }
                    a href={ "/console/tickets/" (number) "/receipt" } { "受理回执" }
                    a href={ "/console/tickets/" (number) "/form" } { "承办单" }
                    "请使用浏览器的打印功能（Ctrl+P）打印本页"
                }
                (sheet)
            }
        }
    }
}

/// A ticket with the names the sheets print beside it.
struct Sheet {
    view: TicketView,
    /// The village point's name (its number when the directory lacks it).
    point: String,
    /// The township's name ("乡镇" when the directory lacks it).
    township: String,
    /// The number villagers text to query, when this server runs the SMS gateway.
    query_number: Option<String>,
    today: NaiveDate,
}

/// `GET /console/tickets/{n}/receipt`
async fn receipt(state: State<AppState>, staffer: Staffer, number: Path<String>) -> Response {
    sheet(state, staffer, number, receipt_sheet).await
}

/// `GET /console/tickets/{n}/form`
async fn form(state: State<AppState>, staffer: Staffer, number: Path<String>) -> Response {
    sheet(state, staffer, number, form_sheet).await
}

/// Load the ticket as the ticket page does (same refusals), then render it with `render`.
async fn sheet(
    State(state): State<AppState>,
    Staffer(who, _): Staffer,
    Path(number): Path<String>,
    render: fn(&Sheet) -> Markup,
) -> Response {
    if let Some(refused) = unless_reader(&who) {
        return refused;
    }
    let now = crate::now();
    let account = who.account.clone();
    let query_number = state.sms.as_ref().and_then(|s| s.query_number.clone());
    let loaded = state
        .with_store(move |store, _| {
            let view = staff::view(store, &account, &number, now)?;
            let dir = store.directory()?;
            let point = dir.point(view.ticket.point).map(|p| p.name.clone());
            let township = dir
                .township_of(view.ticket.point)
                .and_then(|code| dir.district.townships.iter().find(|t| t.code == code))
                .map(|t| t.name.clone());
            Ok(Sheet {
                point: point.unwrap_or_else(|| format!("{:04}号代办点", view.ticket.point)),
                township: township.unwrap_or_else(|| "乡镇".into()),
                query_number,
                view,
                today: now.date_naive(),
            })
        })
        .await;
    match loaded {
        Ok(sheet) => render(&sheet).into_response(),
        Err(e) => failure(Some(&who), &e),
    }
}

fn date(d: NaiveDate) -> String {
    d.format("%Y年%-m月%-d日").to_string()
}

/// Whether a checklist line is still awaited: missing on the checklist, or asked for in the
/// open supplement request (the township may find a received copy unusable).
fn awaited(view: &TicketView, m: &MaterialLine) -> bool {
    m.state == MaterialState::Missing || view.life.missing.contains(&m.name)
}

/// Every material still awaited, on the checklist or only in the supplement request.
fn missing(view: &TicketView) -> Vec<String> {
    let mut names: Vec<String> = view
        .ticket
        .materials
        .iter()
        .filter(|m| awaited(view, m))
        .map(|m| m.name.clone())
        .collect();
    for name in &view.life.missing {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// A checklist line's state as printed.
fn state_label(view: &TicketView, m: &MaterialLine) -> &'static str {
    if view.life.missing.contains(&m.name) {
        "缺（待补正）"
    } else {
        m.state.label()
    }
}

/// The receipt's short list of the lines in `state` (and not awaited), as "name×copies":
/// one table row rather than a table, so the receipt stays within half an A4.
fn names(view: &TicketView, state: MaterialState) -> String {
    let named: Vec<String> = view
        .ticket
        .materials
        .iter()
        .filter(|m| m.state == state && !awaited(view, m))
        .map(|m| format!("{}×{}", m.name, m.copies))
        .collect();
    named.join("、")
}

fn fee(view: &TicketView) -> String {
    let f = &view.ticket.fee;
    match &f.receipt_no {
        Some(no) => format!("{} 元（收据号 {no}）", yuan(f.amount_fen)),
        None if f.amount_fen == 0 => "不收费".into(),
        None => format!("{} 元", yuan(f.amount_fen)),
    }
}

/// The promised completion date: the due date once the clock runs, else the promise itself.
fn promised(view: &TicketView) -> String {
    let days = view.ticket.item.promised_days;
    match (view.deadline.state, view.deadline.due) {
        (ClockState::Finished { on_time }, Some(due)) => {
            let how = if on_time {
                "按期办结"
            } else {
                "超期办结"
            };
            format!("{}前（{how}）", date(due))
        }
        (_, Some(due)) => format!("{}前", date(due)),
        _ => format!("受理后{days}个工作日内办结"),
    }
}

/// The day of the first event of `kind` (server time for township stamps and staff events).
fn day_of(view: &TicketView, kind: EventKind) -> Option<NaiveDate> {
    let event = view.ticket.events.iter().find(|e| e.kind == kind)?;
    Some(event.at.date_naive())
}

fn or_blank(d: Option<NaiveDate>) -> String {
    d.map(date).unwrap_or_default()
}

/// The 受理回执 the applicant takes home: what was handed in and paid, when it is due, and
/// how to follow it by SMS. Sized to half an A4 (148 mm wide on screen; `@page` leaves the
/// paper to the printer dialog, so a receipt printer's roll works too).
fn receipt_sheet(s: &Sheet) -> Markup {
    let (view, t) = (&s.view, &s.view.ticket);
    let a = &t.applicant;
    let missing = missing(view);
    let sheet = html! {
        div.sheet.receipt {
            h1 { (s.township) "为民服务全程代理" }
            h2 { "受理回执" }
            div.number { "办件编号 " strong id="number" { (t.number) } }
            table.fields {
                tr { th { "办理事项" } td colspan="3" { (t.item.name) "（" (t.item.code) "）" } }
                tr {
                    th { "申请人" } td { (a.name) }
                    th { "联系电话" } td { @if let Some(p) = &a.phone { (mask_phone(p)) } }
                }
                tr { th { "证件号码" } td colspan="3" { (mask_id(&a.id.stored)) } }
                tr { th { "代办点" } td { (s.point) } th { "代理员" } td { (t.agent) } }
                tr {
                    th { "登记时间" } td { (t.registered_at.format("%Y-%m-%d %H:%M")) }
                    th { "当前状态" } td { (view.life.status.label()) }
                }
                tr { th { "已收材料" } td colspan="3" { (names(view, MaterialState::Received)) } }
                @let returned = names(view, MaterialState::Returned);
                @if !returned.is_empty() {
                    tr { th { "已退还原件" } td colspan="3" { (returned) } }
                }
                tr { th { "收费" } td colspan="3" { (fee(view)) } }
                tr { th { "承诺办结" } td colspan="3" { (promised(view)) } }
            }
            @if !missing.is_empty() {
                p.missing { "尚缺材料：" (missing.join("、")) "（请尽快交代理员）" }
            }
            div.notes {
                p {
                    "短信查询：用登记的手机发送“查询" (t.number) "”至"
                    @match &s.query_number {
                        Some(n) => { (n) }
                        None => { (s.township) "便民服务中心短信查询号码" }
                    }
                    "，即可收到办理进度。"
                }
                p { "服务评价：办结送达后，请按短信提示对本次服务作出好差评。" }
                p { "请妥善保管本回执，领取办理结果时请出示。" }
            }
            div.signs {
                div { "代理员签字：" }
                div { "申请人签字：" }
            }
            p.foot { (s.township) "便民服务中心　" (date(s.today)) "打印" }
        }
    };
    frame("受理回执", t.number.as_str(), "@page{margin:8mm}", sheet)
}

/// Who recorded an event: the role, and the agent, login or server that wrote it.
fn recorder(role: Role, actor: &str) -> String {
    match role {
        Role::Server => role.label().to_owned(),
        _ => format!("{}（{actor}）", role.label()),
    }
}

/// The 代理承办单 on A4: the whole ticket as the township files it, with its timeline and
/// the signature lines of agent, applicant and the township clerk.
fn form_sheet(s: &Sheet) -> Markup {
    let (view, t) = (&s.view, &s.view.ticket);
    let a = &t.applicant;
    let life = &view.life;
    let missing = missing(view);
    let result = match life.outcome {
        Some(Outcome::Approved) => "批准",
        Some(Outcome::Denied) => "不予批准",
        None => "",
    };
    let sheet = html! {
        div.sheet.form {
            h1 { "为民服务全程代理承办单" }
            div.number { (s.township) "　" (s.point) "　办件编号 " strong id="number" { (t.number) } }
            table.fields {
                tr {
                    th { "办理事项" } td { (t.item.name) "（" (t.item.code) "）" }
                    th { "登记时间" } td { (t.registered_at.format("%Y-%m-%d %H:%M")) }
                }
                tr { th { "申请人" } td { (a.name) } th { "证件号码" } td { (mask_id(&a.id.stored)) } }
                tr {
                    th { "联系电话" } td { @if let Some(p) = &a.phone { (mask_phone(p)) } }
                    th { "村组" } td { (a.village) " " (a.group) }
                }
                tr { th { "代办点" } td { (s.point) "（" (t.point) "）" } th { "代理员" } td { (t.agent) } }
                tr {
                    th { "收费" } td { (yuan(t.fee.amount_fen)) " 元" }
                    th { "收据号" } td { (t.fee.receipt_no.as_deref().unwrap_or("—")) }
                }
                tr {
                    th { "乡镇接收" } td { (or_blank(day_of(view, EventKind::Received))) }
                    th { "受理日期" } td { (or_blank(life.clock.accepted)) }
                }
                tr {
                    th { "承诺时限" } td { (t.item.promised_days) "个工作日" }
                    th { "承诺办结" } td { (promised(view)) }
                }
                tr {
                    th { "当前状态" } td { (life.status.label()) }
                    th { "办理结果" } td { (result) }
                }
                tr {
                    th { "证照编号" } td { (life.certificate_no.as_deref().unwrap_or("")) }
                    th { "好差评" } td { @if let Some(score) = life.evaluation { (evaluation_label(score)) } }
                }
                tr { th { "备注" } td colspan="3" { (t.remarks) } }
            }
            h3 { "材料清单" }
            table.materials {
                tr { th { "序号" } th { "材料名称" } th { "形式" } th { "份数" } th { "状态" } }
                @for (i, m) in t.materials.iter().enumerate() {
                    tr {
                        td { (i + 1) } td { (m.name) } td { (m.form.label()) }
                        td { (m.copies) } td { (state_label(view, m)) }
                    }
                }
            }
            @if !missing.is_empty() {
                p.missing { "尚缺材料：" (missing.join("、")) }
            }
            h3 { "办理记录" }
            table.events {
                tr { th { "时间" } th { "环节" } th { "办理人" } th { "说明" } }
                // `arrived` stamps only date the tablet event listed before them.
                @for e in t.events.iter().filter(|e| e.kind != EventKind::Arrived) {
                    tr {
                        td { (e.at.format("%Y-%m-%d %H:%M")) }
                        td { (e.kind.label()) }
                        td { (recorder(e.role, &e.actor)) }
                        td { (e.note) }
                    }
                }
            }
            div.signs {
                div { "代理员签字：" br; "日期：" }
                div { "申请人签字：" br; "日期：" }
                div { "经办人签字：" br; "日期：" }
            }
            p.foot { (s.township) "便民服务中心　" (date(s.today)) "打印" }
        }
    };
    frame(
        "代理承办单",
        t.number.as_str(),
        "@page{size:A4;margin:12mm}",
        sheet,
    )
}
