//! `GET /console/sms`: the SMS outbox for staff — every message with its state (待发送 /
//! 已发出 / 发送失败 and why), the phone masked. A township's accounts see their township's
//! messages; district accounts see all. Window staff have no SMS to follow.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::html;
use serde::Deserialize;

use agent_core::domain::mask::mask_phone;

use super::{failure, pages, Staffer};
use crate::accounts::StaffRole;
use crate::error::Error;
use crate::http::AppState;
use crate::sms::outbox;

/// Rows a page shows.
const PAGE: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/sms", get(show))
}

#[derive(Deserialize)]
struct Paging {
    before: Option<i64>,
}

async fn show(
    State(state): State<AppState>,
    Staffer(who, _): Staffer,
    Query(paging): Query<Paging>,
) -> Response {
    if who.account.role == StaffRole::WindowStaff {
        return failure(Some(&who), &Error::Forbidden("窗口账号没有短信记录".into()));
    }
    let township = who.account.township.clone();
    let rows = match state
        .with_store(move |store, _| {
            outbox::list(store.conn(), township.as_deref(), paging.before, PAGE)
        })
        .await
    {
        Ok(rows) => rows,
        Err(e) => return failure(Some(&who), &e),
    };
    let body = html! {
        h2 { "短信记录" }
        div.box {
            table id="outbox" {
                thead { tr {
                    th { "生成时间" } th { "手机号" } th { "类型" } th { "办件" }
                    th { "状态" } th { "尝试次数" } th { "说明" }
                } }
                tbody {
                    @for r in &rows {
                        tr data-state=(r.state) {
                            td { (r.created.get(..16).unwrap_or(&r.created).replace('T', " ")) }
                            td { (mask_phone(&r.phone)) }
                            td { (r.template.map_or("—", |t| t.label())) }
                            td { @if let Some(n) = &r.ticket { a href={ "/console/tickets/" (n) } { (n) } } }
                            td {
                                @match r.state.as_str() {
                                    "sent" => "已发出",
                                    "failed" => span.error { "发送失败" },
                                    "cancelled" => "已取消",
                                    _ => "待发送",
                                }
                            }
                            td { (r.attempts) }
                            td { (r.error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            @if rows.len() == PAGE {
                @if let Some(last) = rows.last() {
                    a href={ "/console/sms?before=" (last.id) } { "更早的短信" }
                }
            }
        }
    };
    pages::page("短信记录", Some(&who), body).into_response()
}
