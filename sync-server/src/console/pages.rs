//! The console's pages (maud: every interpolated value is HTML-escaped). Simplified Chinese,
//! laid out for a 1366×768 office screen; no script is needed to use them.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use agent_core::domain::deadline::Light;
use agent_core::domain::event::{evaluation_label, Event, EventKind, UNSATISFIED};
use agent_core::domain::lifecycle::Status;
use agent_core::domain::mask::{mask_id, mask_name, mask_phone};
use agent_core::domain::ticket::TicketView;

use crate::accounts::{SignedIn, StaffRole};
use crate::index::{Found, Search};

const STYLE: &str = r#"
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;background:#f4f6f8;color:#1d2733;font-size:15px}
header{background:#1f4e79;color:#fff;padding:8px 16px;display:flex;justify-content:space-between;align-items:center}
header a,header button{color:#fff}
header form{display:inline;margin:0}
header button{background:none;border:1px solid #fff;border-radius:3px;padding:2px 8px;cursor:pointer}
main{max-width:1300px;margin:12px auto;padding:0 16px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #dde3ea;padding:6px 8px;text-align:left}
th{background:#e9eef4}
.box{background:#fff;padding:12px 16px;margin-bottom:12px;border:1px solid #dde3ea}
.error{color:#a4262c;font-weight:bold}
.light-green{color:#107c10}.light-yellow{color:#986f0b}.light-red{color:#a4262c;font-weight:bold}
label{display:block;margin:8px 0 2px}
input[type=text],input[type=password]{width:260px;padding:4px}
button.primary{margin-top:12px;padding:6px 20px;background:#1f4e79;color:#fff;border:0;border-radius:3px}
dl{display:grid;grid-template-columns:8em 1fr;gap:4px 12px;margin:0}
dt{color:#57636f}
nav.tabs{display:flex;flex-wrap:wrap;gap:4px;margin-bottom:8px}
nav.tabs a{padding:4px 10px;background:#fff;border:1px solid #dde3ea;border-radius:3px;text-decoration:none;color:#1f4e79}
nav.tabs a.on{background:#1f4e79;color:#fff}
.count{font-weight:bold}
form.search{display:flex;flex-wrap:wrap;gap:4px 16px;align-items:flex-end}
form.search label{margin:0}
form.search input[type=text]{width:240px}
"#;

/// An HTML document in the console's style: `title` (with `site` after it), a header bar
/// (`banner` on the left, `side` on the right) and the body. Shared with the public pages.
pub(crate) fn document(
    title: &str,
    site: &str,
    banner: &str,
    side: Markup,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (site) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { strong { (banner) } (side) }
                main { (body) }
            }
        }
    }
}

/// The frame of every console page: title, who is signed in (with a sign-out form), the body.
pub(super) fn page(title: &str, who: Option<&SignedIn>, body: Markup) -> Markup {
    let side = html! {
        @if let Some(w) = who {
            span {
                (w.account.name) "（" (w.account.role.label()) "） "
                (links(w.account.role))
                form method="post" action="/console/logout" {
                    input type="hidden" name="csrf" value=(w.csrf);
                    button type="submit" { "退出" }
                }
            }
        }
    };
    document(
        title,
        "代办服务管理",
        "为民服务全程代理 · 管理平台",
        side,
        body,
    )
}

/// Links to the pages a role may open.
fn links(role: StaffRole) -> Markup {
    let admin = matches!(role, StaffRole::TownshipAdmin | StaffRole::DistrictAdmin);
    html! {
        @if role.sees_tickets() { a href="/console" { "办件" } " " }
        a href="/console/board" { "电子监察" } " "
        a href="/console/reports" { "统计报表" } " "
        @if role != StaffRole::WindowStaff { a href="/console/sms" { "短信记录" } " " }
        @if admin {
            a href="/console/staff" { "账号管理" } " "
            a href="/console/enroll" { "设备注册码" } " "
        }
        @if admin || role == StaffRole::Auditor { a href="/console/audit" { "审计日志" } " " }
        a href="/console/calendar" { "工作日历" } " "
        a href="/console/catalog" { "事项目录" } " " a href="/console/townships" { "乡镇和代办点" } " "
    }
}

/// The sign-in form; `error` is shown above it.
pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    page(
        "登录",
        None,
        html! {
            div.box style="max-width:360px;margin:60px auto" {
                h2 { "工作人员登录" }
                @if let Some(e) = error { p.error { (e) } }
                form method="post" action="/console/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="login" { "登录名" }
                    input id="login" type="text" name="login" autocomplete="username" required autofocus;
                    label for="password" { "密码" }
                    input id="password" type="password" name="password" autocomplete="current-password" required;
                    br;
                    button.primary type="submit" { "登录" }
                }
            }
        },
    )
}

/// What the list page offers to pick from: counts by status (and of 需核对) in the account's
/// scope, the catalog's items, the points in scope.
pub struct Choices {
    /// Next year's working-day calendar is due and missing (from November).
    pub calendar_missing: Option<i32>,
    pub counts: (Vec<(Status, i64)>, i64),
    pub items: Vec<(String, String)>,
    pub points: Vec<(u32, String)>,
}

pub(super) fn light_label(light: Option<Light>) -> (&'static str, &'static str) {
    match light {
        Some(Light::Green) => ("light-green", "绿灯"),
        Some(Light::Yellow) => ("light-yellow", "黄灯"),
        Some(Light::Red) => ("light-red", "红灯"),
        None => ("", "—"),
    }
}

/// The ticket list: tabs by status (`tab` on), the search form with the filters typed, one
/// page of results (applicants masked) and a button for the next page. `personal`: the
/// query named a person (phone, ID number, name), shown back masked only — so the page
/// never holds it and such a search has no next page. `found` is the search's refusal when it
/// could not run.
pub fn list(
    who: &SignedIn,
    search: &Search,
    tab: &str,
    personal: Option<&str>,
    choices: &Choices,
    found: &Result<Found, String>,
) -> Markup {
    let (counts, review) = &choices.counts;
    let point_name = |n: u32| {
        choices
            .points
            .iter()
            .find(|(p, _)| *p == n)
            .map_or(n.to_string(), |(_, name)| name.clone())
    };
    let selected = |field: &str, value: &str| field == value;
    // The next page runs the same search: the typed filters and the tab's status.
    let paging = Search {
        status: tab.to_owned(),
        ..search.clone()
    };
    page(
        "办件",
        Some(who),
        html! {
            @if let Some(year) = choices.calendar_missing {
                p.box.error id="calendar-missing" {
                    (year) "年工作日历尚未导入，跨年的办理期限将无法计算。"
                    a href="/console/calendar" { "查看工作日历" }
                }
            }
            nav.tabs {
                @for (status, n) in counts {
                    a href={ "/console?status=" (status.as_str()) }
                      class=[selected(tab, status.as_str()).then_some("on")] {
                        (status.label()) " " span.count { (n) }
                    }
                }
                a href="/console?review=1" class=[search.review.then_some("on")] {
                    "需核对 " span.count id="review-count" { (review) }
                }
                a href="/console?all=1" { "全部" }
            }
            form.box.search method="post" action="/console" {
                input type="hidden" name="csrf" value=(who.csrf);
                label { "关键词 " input type="text" name="q" value=[personal.is_none().then_some(&search.q)] placeholder="办件编号 / 手机号 / 证件号码 / 姓名"; }
                label { "事项 "
                    select name="item" {
                        option value="" { "全部" }
                        @for (code, name) in &choices.items {
                            option value=(code) selected[selected(&search.item, code)] { (name) }
                        }
                    }
                }
                label { "状态 "
                    select name="status" {
                        option value="" { "全部" }
                        @for status in Status::ALL {
                            option value=(status.as_str()) selected[selected(&search.status, status.as_str())] { (status.label()) }
                        }
                    }
                }
                label { "灯 "
                    select name="light" {
                        option value="" { "全部" }
                        @for (value, text) in [("red", "红灯"), ("yellow", "黄灯"), ("green", "绿灯")] {
                            option value=(value) selected[selected(&search.light, value)] { (text) }
                        }
                    }
                }
                label { "代办点 "
                    select name="point" {
                        option value="" { "全部" }
                        @for (number, name) in &choices.points {
                            option value=(number) selected[selected(&search.point, &number.to_string())] { (name) }
                        }
                    }
                }
                label { "登记日期 " input type="date" name="from" value=(search.from); " 至 " input type="date" name="to" value=(search.to); }
                label { input type="checkbox" name="review" value="1" checked[search.review]; " 仅看需核对" }
                button.primary type="submit" { "查询" }
            }
            @if let Some(p) = personal {
                p { "已按" (p) "查询（个人信息不在页面上显示）。" }
            }
            @match found {
                Err(message) => p.box.error { (message) },
                Ok(found) if found.rows.is_empty() => p.box { "没有符合条件的办件。" },
                Ok(found) => {
                    table id="tickets" {
                        thead { tr {
                            th { "办件编号" } th { "事项" } th { "申请人" } th { "代办点" }
                            th { "登记日期" } th { "状态" } th { "承诺办结" } th { "需核对" }
                        } }
                        tbody {
                            @for r in &found.rows {
                                @let (class, text) = light_label(r.light);
                                tr {
                                    td { a href={ "/console/tickets/" (r.number) } { (r.number) } }
                                    td { (r.item_name) }
                                    td { (mask_name(&r.applicant)) }
                                    td { (point_name(r.point)) }
                                    td { (r.registered) }
                                    td { (r.status.label()) }
                                    td {
                                        @if let Some(due) = r.due { (due.format("%Y-%m-%d")) " " }
                                        span class=(class) { (text) }
                                    }
                                    td { @if r.needs_review { "是" } }
                                }
                            }
                        }
                    }
                    @if found.next.is_some() && personal.is_some() {
                        p { "仅显示最近" (found.rows.len()) "件，请增加筛选条件。" }
                    } @else if let Some(next) = &found.next {
                        form method="post" action="/console" {
                            input type="hidden" name="csrf" value=(who.csrf);
                            @for (name, value) in paging.fields() {
                                input type="hidden" name=(name) value=(value);
                            }
                            input type="hidden" name="after" value=(next);
                            button type="submit" { "下一页" }
                        }
                    }
                }
            }
        },
    )
}

/// What a ticket's page shows besides the ticket.
pub struct TicketPage<'a> {
    pub view: &'a TicketView,
    /// The actions this account may take on it now.
    pub actions: Vec<EventKind>,
    /// The account may resolve 需核对.
    pub reviews: bool,
    /// Windows to forward to, the item's own first.
    pub windows: &'a [String],
    /// The applicant is shown in full (an unmasking just recorded).
    pub unmasked: bool,
}

/// One ticket: the applicant (masked unless `unmasked`), the deadline with its light, 需核对,
/// the event timeline, and a form for each action this account may take on it now.
pub fn ticket(who: &SignedIn, p: &TicketPage<'_>) -> Markup {
    let (view, actions, reviews, unmasked) = (p.view, &p.actions, p.reviews, p.unmasked);
    let t = &view.ticket;
    let a = &t.applicant;
    let shown = |full: &str, masked: String| if unmasked { full.to_owned() } else { masked };
    let action_url = format!("/console/tickets/{}/events", t.number);
    let (light_class, light_text) = light_label(view.deadline.light);
    page(
        &format!("办件 {}", t.number),
        Some(who),
        html! {
            h2 { "办件 " (t.number) }
            p.print {
                "打印："
                a href={ "/console/tickets/" (t.number) "/receipt" } { "受理回执" } " "
                a href={ "/console/tickets/" (t.number) "/form" } { "承办单" }
            }
            div.box {
                dl {
                    dt { "事项" } dd { (t.item.name) " · " span id="item-version" { "事项版本 v" (t.item.version) } }
                    dt { "状态" } dd id="status" { (view.life.status.label()) }
                    dt { "申请人" } dd { (shown(&a.name, mask_name(&a.name))) }
                    dt { "证件号码" } dd { (shown(&a.id.stored, mask_id(&a.id.stored))) }
                    dt { "联系电话" } dd {
                        @if let Some(p) = &a.phone { (shown(p, mask_phone(p))) }
                    }
                    dt { "村组" } dd { (a.village) " " (a.group) }
                    dt { "承诺办结" } dd {
                        @if let Some(due) = view.deadline.due { (due.format("%Y-%m-%d")) " " }
                        span class=(light_class) { (light_text) }
                        @if view.deadline.paused_days > 0 { "（暂停" (view.deadline.paused_days) "个工作日）" }
                    }
                    @if let Some(score) = view.life.evaluation {
                        dt { "好差评" } dd id="rating" {
                            (evaluation_label(score))
                            @if score <= UNSATISFIED {
                                @match view.life.followed_up {
                                    Some(d) => { "（已于" (d.format("%Y-%m-%d")) "回访答复）" }
                                    None => { "（待回访答复）" }
                                }
                            }
                        }
                    }
                }
            }
            @if !unmasked {
                form.box method="post" action={ "/console/tickets/" (t.number) "/unmask" } {
                    input type="hidden" name="csrf" value=(who.csrf);
                    label for="unmask-reason" { "查看完整个人信息（将记录查看人、时间和事由）" }
                    input id="unmask-reason" type="text" name="reason" required placeholder="事由";
                    " "
                    button type="submit" { "查看" }
                }
            } @else {
                p.box { "完整个人信息仅本次显示，查看已记录。" }
            }
            @if !view.life.anomalies.is_empty() {
                (review(who, view, reviews))
            }
            @if !view.life.missing.is_empty() {
                div.box { "待补正材料：" (view.life.missing.join("、")) }
            }
            @if !actions.is_empty() {
                div.box {
                    h3 { "办理" }
                    @for kind in actions {
                        form.action method="post" action=(action_url) data-kind=(kind.as_str()) {
                            input type="hidden" name="csrf" value=(who.csrf);
                            input type="hidden" name="kind" value=(kind.as_str());
                            (action_fields(*kind, view, p.windows))
                            button.primary type="submit" { (kind.label()) }
                        }
                    }
                }
            }
            div.box {
                h3 { "办理记录" }
                table {
                    thead { tr { th { "时间" } th { "环节" } th { "办理人" } th { "说明" } } }
                    tbody {
                        @for e in &t.events {
                            tr {
                                td { (e.at.format("%Y-%m-%d %H:%M")) }
                                td { (e.kind.label()) }
                                td { (e.role.label()) }
                                td { (e.note) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// 需核对: each event that did not fit beside the event in force when it came, the
/// decision recorded for it (or that it waits for one), and for a township admin the form
/// that records a decision.
fn review(who: &SignedIn, view: &TicketView, reviews: bool) -> Markup {
    let events = &view.ticket.events;
    let anomalous = |id: &str| view.life.anomalies.iter().any(|a| a.event_id == id);
    // The event in force when `id` came: the last earlier one that counted.
    let in_force = |id: &str| {
        let at = events.iter().position(|e| e.id == id).unwrap_or(0);
        events[..at].iter().rev().find(|e| {
            !anomalous(&e.id) && !matches!(e.kind, EventKind::Arrived | EventKind::Reviewed)
        })
    };
    let decision = |id: &str| {
        events.iter().find(|e| {
            e.kind == EventKind::Reviewed && e.payload_list("resolves").iter().any(|r| r == id)
        })
    };
    let event = |e: Option<&Event>| {
        html! {
            @if let Some(e) = e {
                strong { (e.kind.label()) } br;
                (e.at.format("%Y-%m-%d %H:%M")) " " (e.role.label()) br;
                (e.note)
            }
        }
    };
    let open: Vec<_> = view
        .life
        .anomalies
        .iter()
        .filter(|a| decision(&a.event_id).is_none())
        .collect();
    html! {
        div.box id="review" {
            h3 { "需核对" }
            table {
                thead { tr { th { "已生效的记录" } th { "未生效的记录" } th { "原因" } th { "核对处理" } } }
                tbody {
                    @for a in &view.life.anomalies {
                        tr {
                            td { (event(in_force(&a.event_id))) }
                            td { (event(events.iter().find(|e| e.id == a.event_id))) }
                            td { (a.reason) }
                            td {
                                @match decision(&a.event_id) {
                                    Some(d) => { (d.note) br; (d.at.format("%Y-%m-%d %H:%M")) " " (d.actor) }
                                    None => span.error { "待核对" }
                                }
                            }
                        }
                    }
                }
            }
            @if reviews && !open.is_empty() {
                form method="post" action={ "/console/tickets/" (view.ticket.number) "/review" } {
                    input type="hidden" name="csrf" value=(who.csrf);
                    @for a in &open {
                        label { input type="checkbox" name="resolves" value=(a.event_id) checked; " " (a.kind.label()) "（" (a.reason) "）" }
                    }
                    label { "核对决定（将记录在办件上） " input type="text" name="note" required; }
                    button.primary type="submit" { "记录核对决定" }
                }
            }
        }
    }
}

/// The fields an action's form asks for besides the note.
fn action_fields(kind: EventKind, view: &TicketView, windows: &[String]) -> Markup {
    html! {
        @match kind {
            EventKind::SupplementRequested => {
                fieldset {
                    legend { "须补正的材料（一次性告知）" }
                    @for m in &view.ticket.materials {
                        label { input type="checkbox" name="missing" value=(m.name); " " (m.name) }
                    }
                }
            }
            EventKind::Forwarded => {
                label { "转至窗口 "
                    input type="text" name="window" required list="windows" value=[windows.first()];
                }
                datalist id="windows" { @for w in windows { option value=(w) {} } }
            }
            EventKind::Completed => {
                label { input type="radio" name="outcome" value="approved" required; " 批准" }
                label { input type="radio" name="outcome" value="denied"; " 不予批准" }
                label { "证照编号 " input type="text" name="certificate_no"; }
            }
            _ => {}
        }
        label {
            @match kind {
                EventKind::Rejected => "不予受理理由 ",
                EventKind::FollowedUp => "回访答复（向申请人说明的处理结果） ",
                _ => "说明 ",
            }
            @if matches!(kind, EventKind::Rejected | EventKind::FollowedUp) {
                input type="text" name="note" required;
            } @else {
                input type="text" name="note";
            }
        }
    }
}

/// A refusal the person can act on (403, 404): the message and a way back.
pub fn refused(who: Option<&SignedIn>, message: &str) -> Markup {
    page(
        "无法打开",
        who,
        html! {
            div.box {
                p.error { (message) }
                a href="/console" { "返回待办" }
            }
        },
    )
}
