//! Monthly and annual reports in the console (`GET /console/reports?period=2026-11`), with
//! charts drawn as SVG on the server, and their exports (`/console/reports/csv`,
//! `/console/reports/xlsx`, same `period`). Every signed-in account, in its scope.

use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use super::{failure, pages, Staffer};
use crate::error::Error;
use crate::http::AppState;
use crate::index::Scope;
use crate::reports::{self, Figures, Line, Period, Report};
use agent_core::domain::receipt::yuan;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/reports", get(show))
        .route("/console/reports/csv", get(csv))
        .route("/console/reports/xlsx", get(xlsx))
}

#[derive(Deserialize)]
struct Asked {
    #[serde(default)]
    period: String,
}

impl Asked {
    /// The period asked for; this month when none.
    fn period(&self) -> Result<Period, Error> {
        if self.period.trim().is_empty() {
            Ok(Period::month_of(crate::now().date_naive()))
        } else {
            Period::parse(&self.period)
        }
    }
}

async fn load(
    state: &AppState,
    who: &crate::accounts::SignedIn,
    asked: &Asked,
) -> Result<Report, Error> {
    let period = asked.period()?;
    let scope = Scope::of(&who.account);
    state
        .with_store(move |store, _| reports::report(store, &scope, period))
        .await
}

async fn show(
    State(state): State<AppState>,
    Staffer(who, _): Staffer,
    Query(asked): Query<Asked>,
) -> Response {
    let report = match load(&state, &who, &asked).await {
        Ok(r) => r,
        Err(e) => return failure(Some(&who), &e),
    };
    let period = report.period;
    let key = period.key();
    let t = &report.total;
    let body = html! {
        h2 { (period.label()) (if matches!(period, Period::Year(_)) { "年度" } else { "月度" }) "统计报表" }
        form.box.search method="get" action="/console/reports" {
            label { "统计期（月报如 2026-11，年报如 2026） "
                input type="text" name="period" value=(key) required; }
            button.primary type="submit" { "查看" }
            " "
            a id="export-csv" href={ "/console/reports/csv?period=" (key) } { "导出 CSV" }
            " "
            a id="export-xlsx" href={ "/console/reports/xlsx?period=" (key) } { "导出 Excel" }
        }
        div.box id="totals" {
            dl {
                dt { "登记" } dd id="registered" { (t.registered) "件" }
                dt { "受理" } dd id="accepted" { (t.accepted) "件" }
                dt { "办结" } dd id="completed" { (t.completed) "件" }
                dt { "按时办结" } dd id="on-time" { (t.on_time) "件" (rate(t.on_time_rate(), "，按时办结率 ", "%")) }
                dt { "平均用时" } dd id="average-days" { (rate(t.average_days(), "", "个工作日")) }
                dt { "环节超时" } dd { (t.stage_overruns) "件" }
                dt { "评价" } dd id="rated" { (t.rated()) "件" (rate(t.satisfaction_rate(), "，满意率 ", "%")) }
                dt { "为群众节省" } dd id="saved" {
                    "往返县城 " span id="trips" { (t.trips_saved) } "次，路程 " (format!("{:.0}", t.km_saved)) "公里，路费 " (yuan(t.fare_saved_fen)) "元"
                }
            }
            p { "办结、按时办结和平均用时按办结日期统计，评价按评价日期，节省按送达日期（每件免去申请、取件各一次往返县城）。" }
        }
        @if !report.by_month.is_empty() {
            div.box { h3 { "各月登记与办结" } (bars(&report.by_month)) }
        }
        div.box { h3 { "各乡镇登记与办结" } (bars(&report.by_township)) }
        div.box { h3 { "满意度" } (rating_bars(t)) }
        (table("township-table", "乡镇", &report.by_township))
        (table("point-table", "代办点", &report.by_point))
        (table("item-table", "事项", &report.by_item))
    };
    pages::page(&format!("{}统计报表", period.label()), Some(&who), body).into_response()
}

fn rate(value: Option<f64>, before: &str, after: &str) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{before}{v:.1}{after}"))
}

/// A table of one grouping.
fn table(id: &str, what: &str, lines: &[Line]) -> Markup {
    html! {
        div.box {
            h3 { "按" (what) }
            table id=(id) {
                thead { tr {
                    th { (what) } th { "登记" } th { "受理" } th { "办结" } th { "按时办结率" }
                    th { "平均用时" } th { "评价" } th { "满意率" } th { "节省往返" } th { "节省路费" }
                } }
                tbody {
                    @for l in lines {
                        @let f = &l.figures;
                        tr data-key=(l.key) {
                            td { (l.name) }
                            td.registered { (f.registered) }
                            td.accepted { (f.accepted) }
                            td.completed { (f.completed) }
                            td { (rate(f.on_time_rate(), "", "%")) }
                            td { (rate(f.average_days(), "", "")) }
                            td { (f.rated()) }
                            td { (rate(f.satisfaction_rate(), "", "%")) }
                            td { (f.trips_saved) }
                            td { (yuan(f.fare_saved_fen)) "元" }
                        }
                    }
                }
            }
        }
    }
}

const WIDTH: i64 = 640;
const LABEL: i64 = 130;
const BAR: i64 = 11;

/// Horizontal bars, registered and completed per line, scaled to the largest.
fn bars(lines: &[Line]) -> Markup {
    let most = lines
        .iter()
        .map(|l| l.figures.registered.max(l.figures.completed))
        .max()
        .unwrap_or(0)
        .max(1);
    let span = WIDTH - LABEL - 60;
    let row = 2 * BAR + 8;
    let height = 20 + row * i64::try_from(lines.len()).unwrap_or(0);
    let series = |f: &Figures| [(f.registered, "#1f4e79"), (f.completed, "#5b9bd5")];
    html! {
        svg.chart width=(WIDTH) height=(height) viewBox={ "0 0 " (WIDTH) " " (height) } role="img" {
            rect x=(LABEL) y="2" width="10" height="10" fill="#1f4e79" {}
            text x=(LABEL + 14) y="11" font-size="11" { "登记" }
            rect x=(LABEL + 60) y="2" width="10" height="10" fill="#5b9bd5" {}
            text x=(LABEL + 74) y="11" font-size="11" { "办结" }
            @for (i, l) in (0i64..).zip(lines) {
                @let y = 20 + i * row;
                text x="0" y=(y + BAR + 4) font-size="12" { (l.name) }
                @for (j, (value, color)) in (0i64..).zip(series(&l.figures)) {
                    @let w = span * value / most;
                    rect x=(LABEL) y=(y + j * BAR) width=(w) height=(BAR - 1) fill=(color) {}
                    text x=(LABEL + w + 4) y=(y + j * BAR + BAR - 2) font-size="10" { (value) }
                }
            }
        }
    }
}

/// The five rating levels as bars (also on the board).
pub(super) fn rating_bars(f: &Figures) -> Markup {
    let most = f.ratings.iter().copied().max().unwrap_or(0).max(1);
    let span = WIDTH - LABEL - 60;
    html! {
        svg.chart width=(WIDTH) height="110" viewBox={ "0 0 " (WIDTH) " 110" } role="img" {
            @for (i, score) in (0i64..).zip((1..=5u8).rev()) {
                @let n = f.ratings[usize::from(score - 1)];
                @let w = span * n / most;
                text x="0" y=(i * 20 + 14) font-size="12" { (agent_core::domain::event::evaluation_label(score)) }
                rect x=(LABEL) y=(i * 20 + 3) width=(w) height="14" fill=(if score <= 2 { "#a4262c" } else { "#1f4e79" }) {}
                text x=(LABEL + w + 4) y=(i * 20 + 14) font-size="11" { (n) }
            }
        }
    }
}

/// A download: the body with its type and a file name (ASCII, then UTF-8 for the Chinese).
fn download(body: Vec<u8>, mime: &'static str, period: Period, ext: &str) -> Response {
    let name = format!("report-{}.{ext}", period.key());
    let chinese = format!("{}统计报表.{ext}", period.label());
    let encoded: String = form_urlencoded::byte_serialize(chinese.as_bytes()).collect();
    let disposition = format!("attachment; filename=\"{name}\"; filename*=UTF-8''{encoded}");
    (
        [
            (CONTENT_TYPE, mime.to_owned()),
            (CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

async fn csv(
    State(state): State<AppState>,
    Staffer(who, _): Staffer,
    Query(asked): Query<Asked>,
) -> Response {
    match load(&state, &who, &asked)
        .await
        .and_then(|r| Ok((reports::to_csv(&r)?, r.period)))
    {
        Ok((body, period)) => download(body, "text/csv; charset=utf-8", period, "csv"),
        Err(e) => failure(Some(&who), &e),
    }
}

async fn xlsx(
    State(state): State<AppState>,
    Staffer(who, _): Staffer,
    Query(asked): Query<Asked>,
) -> Response {
    match load(&state, &who, &asked)
        .await
        .and_then(|r| Ok((reports::to_xlsx(&r)?, r.period)))
    {
        Ok((body, period)) => download(
            body,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            period,
            "xlsx",
        ),
        Err(e) => failure(Some(&who), &e),
    }
}
