//! `GET /console/board`: the supervision board (电子监察) for every signed-in account, in its
//! scope (a township its own tickets, a window what was forwarded to it, the county all).
//! No applicant appears on it: tickets are named by number and item only.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

use agent_core::domain::directory::Directory;
use agent_core::domain::event::evaluation_label;
use agent_core::domain::receipt::yuan;

use super::pages::{self, light_label};
use super::{calendar, failure, Staffer};
use crate::http::AppState;
use crate::index::Scope;
use crate::supervision::{self, Board, Late, Lights, Listed, RECENT_DAYS};

pub fn router() -> Router<AppState> {
    Router::new().route("/console/board", get(show))
}

async fn show(State(state): State<AppState>, Staffer(who, _): Staffer) -> Response {
    let scope = Scope::of(&who.account);
    let today = crate::now().date_naive();
    let result = state
        .with_store(move |store, info| {
            let board = supervision::board(store, &scope, today, info.followup_days)?;
            let missing = calendar::missing_year(&store.calendar()?, today);
            Ok((board, store.directory()?, missing, info.followup_days))
        })
        .await;
    let (board, directory, missing, days) = match result {
        Ok(found) => found,
        Err(e) => return failure(Some(&who), &e),
    };
    let body = html! {
        h2 { "电子监察" }
        p { "统计日期：" (board.today.format("%Y-%m-%d")) }
        @if let Some(year) = missing {
            p.box.error id="calendar-missing" { (year) "年工作日历尚未导入，请区县管理员在“工作日历”中导入。" }
        }
        (summary(&board, days))
        div.box {
            h3 { "在办件亮灯情况" }
            (lights_table("township-lights", "乡镇", board.by_township.iter().map(|(code, l)| {
                (directory.township(code).map_or(code.clone(), |t| t.name.clone()), l)
            })))
            (lights_table("point-lights", "代办点", board.by_point.iter().map(|(n, l)| (point_name(&directory, *n), l))))
            @if !board.by_window.is_empty() {
                (lights_table("window-lights", "窗口", board.by_window.iter().map(|(w, l)| (w.clone(), l))))
            }
            (lights_table("item-lights", "事项", board.by_item.iter().map(|(i, l)| (i.clone(), l))))
        }
        (late_list("overdue", "超期办件（红灯）", &board.overdue, &directory))
        (late_list("due-soon", "临近到期（黄灯）", &board.due_soon, &directory))
        div.box id="overruns" {
            h3 { "环节超时 " span.count { (board.overruns.total) } }
            table {
                thead { tr { th { "办件编号" } th { "事项" } th { "代办点" } th { "环节" } th { "开始" } th { "已用/时限（工作日）" } } }
                tbody {
                    @for o in &board.overruns.rows {
                        tr {
                            td { (ticket_link(&o.number)) }
                            td { (o.item_name) }
                            td { (point_name(&directory, o.point)) }
                            td { (stage_label(&o.stage)) }
                            td { (o.start.format("%Y-%m-%d")) }
                            td.light-red { (o.taken) " / " (o.budget) }
                        }
                    }
                }
            }
            (more(&board.overruns))
        }
        div.box id="fees" {
            h3 { "收费与目录不符 " span.count { (board.fees.total) } }
            table {
                thead { tr { th { "办件编号" } th { "事项" } th { "代办点" } th { "登记日期" } th { "实收" } th { "目录标准" } } }
                tbody {
                    @for f in &board.fees.rows {
                        tr {
                            td { (ticket_link(&f.number)) }
                            td { (f.item_name) }
                            td { (point_name(&directory, f.point)) }
                            td { (f.registered) }
                            td.light-red { (yuan(f.charged_fen)) "元" }
                            td { (yuan(f.statutory_fen)) "元" }
                        }
                    }
                }
            }
            (more(&board.fees))
        }
        div.box id="ratings" {
            h3 { "近" (RECENT_DAYS) "日好差评" }
            (super::reports::rating_bars(&board.recent))
        }
        div.box id="follow-ups" {
            h3 { "差评回访 " span.count { (board.follow_ups.total) } }
            p { "“不满意”“非常不满意”的评价须在" (days) "个工作日内回访答复（在办件页面填写）。" }
            table {
                thead { tr { th { "办件编号" } th { "事项" } th { "代办点" } th { "评价" } th { "评价日期" } th { "答复期限" } } }
                tbody {
                    @for f in &board.follow_ups.rows {
                        @let (class, text) = light_label(f.light);
                        tr {
                            td { (ticket_link(&f.number)) }
                            td { (f.item_name) }
                            td { (point_name(&directory, f.point)) }
                            td { (evaluation_label(f.score)) }
                            td { (f.rated.format("%Y-%m-%d")) }
                            td class=(class) {
                                @if let Some(due) = f.due { (due.format("%Y-%m-%d")) " " }
                                (text)
                            }
                        }
                    }
                }
            }
            (more(&board.follow_ups))
        }
    };
    pages::page("电子监察", Some(&who), body).into_response()
}

/// The headline figures.
fn summary(board: &Board, days: u32) -> Markup {
    let recent = &board.recent;
    html! {
        div.box id="summary" {
            dl {
                dt { "在办件" } dd id="live" {
                    (board.lights.total()) "件："
                    span.light-green { "绿灯 " span id="green" { (board.lights.green) } } "，"
                    span.light-yellow { "黄灯 " span id="yellow" { (board.lights.yellow) } } "，"
                    span.light-red { "红灯 " span id="red" { (board.lights.red) } }
                }
                dt { "近" (RECENT_DAYS) "日办结" } dd id="on-time" {
                    (recent.completed) "件，按时办结 " (recent.on_time) "件"
                    @if let Some(rate) = recent.on_time_rate() { "，按时办结率 " (format!("{rate:.1}")) "%" }
                }
                dt { "近" (RECENT_DAYS) "日评价" } dd {
                    (recent.rated()) "件"
                    @if let Some(rate) = recent.satisfaction_rate() { "，满意率 " (format!("{rate:.1}")) "%" }
                }
                dt { "待回访" } dd id="follow-up-count" {
                    (board.follow_ups.total) "件"
                    @if board.follow_ups_late > 0 { "，" span.light-red { "超过" (days) "个工作日未答复 " (board.follow_ups_late) "件" } }
                }
            }
        }
    }
}

fn lights_table<'a>(
    id: &str,
    what: &str,
    rows: impl Iterator<Item = (String, &'a Lights)>,
) -> Markup {
    html! {
        table id=(id) {
            thead { tr { th { (what) } th { "绿灯" } th { "黄灯" } th { "红灯" } th { "合计" } } }
            tbody {
                @for (name, l) in rows {
                    tr {
                        td { (name) }
                        td.light-green { (l.green) }
                        td.light-yellow { (l.yellow) }
                        td.light-red { (l.red) }
                        td { (l.total()) }
                    }
                }
            }
        }
    }
}

fn late_list(id: &str, title: &str, list: &Listed<Late>, directory: &Directory) -> Markup {
    html! {
        div.box id=(id) {
            h3 { (title) " " span.count { (list.total) } }
            table {
                thead { tr { th { "办件编号" } th { "事项" } th { "代办点" } th { "承诺办结" } th { "剩余工作日" } } }
                tbody {
                    @for l in &list.rows {
                        tr {
                            td { (ticket_link(&l.number)) }
                            td { (l.item_name) }
                            td { (point_name(directory, l.point)) }
                            td { @if let Some(due) = l.due { (due.format("%Y-%m-%d")) } @else { "暂停计时" } }
                            td {
                                @match l.remaining {
                                    Some(left) if left < 0 => { "超期" (-left) "个工作日" }
                                    Some(left) => { (left) }
                                    None => { "—" }
                                }
                            }
                        }
                    }
                }
            }
            (more(list))
        }
    }
}

fn more<T>(list: &Listed<T>) -> Markup {
    html! {
        @if list.total > list.rows.len() {
            p { "仅列出前" (list.rows.len()) "件，共" (list.total) "件。" }
        }
    }
}

fn ticket_link(number: &str) -> Markup {
    html! { a href={ "/console/tickets/" (number) } { (number) } }
}

fn point_name(directory: &Directory, number: u32) -> String {
    directory
        .point(number)
        .map_or_else(|| number.to_string(), |p| p.name.clone())
}

/// A stage's name for people.
pub(super) fn stage_label(stage: &str) -> &str {
    match stage {
        "township_review" => "乡镇审核",
        "window_handling" => "窗口办理",
        "return_to_village" => "结果送回",
        other => other,
    }
}
