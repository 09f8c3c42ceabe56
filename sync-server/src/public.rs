//! Pages anyone may read without signing in: the disclosure board (办件公示: number, item,
//! dates, result, the applicant's name masked — never an ID number, phone or address) and the
//! public service catalog (行政权力公开目录). Served by whichever server holds the data: a
//! township shows its own tickets, a district every township's.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

use agent_core::domain::catalog::HandlingLevel;
use agent_core::domain::event::Outcome;
use agent_core::domain::lifecycle::Status;
use agent_core::domain::receipt::yuan;

use crate::console::pages::document;
use crate::error::Error;
use crate::http::AppState;
use crate::index::{self, PublicRow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/public", get(home))
        .route("/public/disclosure", get(disclosure))
        .route("/public/catalog", get(catalog))
        .layer(axum::middleware::map_response(crate::console::harden))
}

fn page(title: &str, body: Markup) -> Markup {
    let side = html! {
        span { a href="/public/disclosure" { "办件公示" } " " a href="/public/catalog" { "服务事项目录" } }
    };
    let body = html! { h2 { (title) } (body) };
    document(
        title,
        "为民服务全程代理",
        "为民服务全程代理 · 信息公开",
        side,
        body,
    )
}

/// An error as a page, internals hidden.
fn failure(e: &Error) -> Response {
    let (status, text) = crate::http::classify(e);
    (status, page("无法打开", html! { p.box.error { (text) } })).into_response()
}

async fn home() -> Markup {
    page(
        "信息公开",
        html! {
            ul.box {
                li { a href="/public/disclosure" { "办件公示" } "：每一件代办事项的受理、办结日期和结果" }
                li { a href="/public/catalog" { "服务事项目录" } "：可代办的事项、依据、收费、时限和所需材料" }
            }
        },
    )
}

/// What the board says a ticket came to.
fn result(r: &PublicRow) -> &'static str {
    match (r.status, r.outcome) {
        (_, Some(Outcome::Approved)) => "办结（准予）",
        (_, Some(Outcome::Denied)) => "办结（不予批准）",
        (Status::Rejected, _) => "不予受理",
        (Status::Withdrawn, _) => "申请人撤回",
        (s, _) if s.is_closed() => "办结",
        _ => "办理中",
    }
}

/// `GET /public/disclosure[?after=KEY]`: the board, newest first, a page at a time.
async fn disclosure(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let after = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "after")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let loaded = state
        .with_store(move |store, _| {
            index::refresh(store)?;
            index::disclosure(store, &after)
        })
        .await;
    let (rows, next) = match loaded {
        Ok(found) => found,
        Err(e) => return failure(&e),
    };
    page(
        "办件公示",
        html! {
            @if rows.is_empty() {
                p.box { "暂无办件。" }
            } @else {
                table id="disclosure" {
                    thead { tr {
                        th { "办件编号" } th { "事项" } th { "申请人" } th { "登记日期" }
                        th { "受理日期" } th { "办结日期" } th { "结果" }
                    } }
                    tbody {
                        @for r in &rows {
                            tr {
                                td { (r.number) }
                                td { (r.item_name) }
                                td { (r.applicant_masked) }
                                td { (r.registered) }
                                td { (r.accepted.as_deref().unwrap_or("—")) }
                                td { (r.finished.as_deref().unwrap_or("—")) }
                                td { (result(r)) }
                            }
                        }
                    }
                }
                @if let Some(next) = next {
                    p { a href={ "/public/disclosure?" (form_urlencoded::Serializer::new(String::new()).append_pair("after", &next).finish()) } { "更早的办件" } }
                }
            }
        },
    )
    .into_response()
}

/// `GET /public/catalog`: every item a village point can take, as the district publishes it.
async fn catalog(State(state): State<AppState>) -> Response {
    let catalog = match state.with_store(|store, _| store.catalog()).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return page(
                "服务事项目录",
                html! { p.box { "区县尚未发布服务事项目录。" } },
            )
            .into_response()
        }
        Err(e) => return failure(&e),
    };
    page(
        "服务事项目录",
        html! {
            p { "以下事项均可在村（社区）代办点由代理员全程代办，申请人无需往返县城。" }
            @for item in &catalog.items {
                section.box id={ "item-" (item.code) } {
                    h3 { (item.name) " " small { "（" (item.code) "）" } }
                    dl {
                        dt { "事项类别" } dd { (item.category) }
                        dt { "实施部门" } dd { (item.department) }
                        dt { "办理地点" } dd {
                            @match (item.level, &item.window) {
                                (HandlingLevel::Window, Some(w)) => { (w) "（经乡镇便民服务中心转办）" }
                                _ => "乡镇便民服务中心",
                            }
                        }
                        dt { "设定依据" } dd { (item.legal_basis) }
                        dt { "收费标准" } dd {
                            @if item.fee_fen == 0 { "不收费" } @else { (yuan(item.fee_fen)) " 元" }
                        }
                        dt { "承诺时限" } dd { "受理后 " (item.promised_days) " 个工作日" }
                        dt { "所需材料" } dd {
                            @if item.materials.is_empty() { "无" }
                            ol {
                                @for m in &item.materials {
                                    li { (m.name) "（" (m.form.label()) (m.copies) "份）" }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}
