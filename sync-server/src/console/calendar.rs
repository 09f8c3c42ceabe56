//! The working-day calendar in the console. Everyone signed in sees which years it covers; a
//! district admin uploads a year's schedule (CSV, as the State Council publishes it each
//! autumn), which replaces those years and flows to every township and tablet at their next
//! sync. From November a missing next year is warned about: deadlines that reach into it
//! cannot be counted.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::{Datelike, NaiveDate};
use maud::html;

use agent_core::domain::calendar::{Calendar, CalendarRow};
use agent_core::sync::shared::SharedName;

use super::{failure, field, pages, Posted, Staffer};
use crate::accounts::{self, SignedIn, StaffRole};
use crate::config::ServerRole;
use crate::error::Error;
use crate::http::AppState;
use crate::store::ServerStore;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/calendar", get(show).post(upload))
}

/// The year whose schedule is due and missing: next year, from November on.
pub fn missing_year(calendar: &Calendar, today: NaiveDate) -> Option<i32> {
    let next = today.year() + 1;
    (today.month() >= 11 && !calendar.covers(next)).then_some(next)
}

/// `calendar` with the years of `upload` replaced by its rows.
fn merged(calendar: &Calendar, upload: &Calendar) -> Result<Calendar, Error> {
    let years = upload.years();
    let kept = calendar
        .rows()
        .into_iter()
        .filter(|r| !years.contains(&r.date.year()));
    let mut rows: Vec<CalendarRow> = kept.chain(upload.rows()).collect();
    rows.sort_by_key(|r| r.date);
    Calendar::from_rows(rows).map_err(|e| Error::BadRequest(e.to_string()))
}

async fn show(State(state): State<AppState>, Staffer(who, _): Staffer) -> Response {
    view(&state, &who, None, StatusCode::OK).await
}

/// The page: covered years with their rows, the warning, and for a district admin the upload
/// form (`error` above it when an upload was refused).
async fn view(
    state: &AppState,
    who: &SignedIn,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let calendar = match state.with_store(|store, _| store.calendar()).await {
        Ok(c) => c,
        Err(e) => return failure(Some(who), &e),
    };
    let uploads = may_upload(state, who);
    let missing = missing_year(&calendar, crate::now().date_naive());
    let rows = calendar.rows();
    let body = html! {
        h2 { "工作日历" }
        @if let Some(year) = missing {
            p.box.error id="calendar-missing" { (year) "年工作日历尚未导入：办理期限跨入该年的办件将无法计算期限。" }
        }
        div.box {
            h3 { "已导入的年度" }
            table id="years" {
                thead { tr { th { "年度" } th { "节假日（天）" } th { "调休上班（天）" } } }
                tbody {
                    @for year in calendar.years() {
                        @let of_year = rows.iter().filter(|r| r.date.year() == year);
                        @let holidays = of_year.clone().filter(|r| r.kind.as_str() == "holiday").count();
                        tr { td { (year) } td { (holidays) } td { (of_year.count() - holidays) } }
                    }
                }
            }
        }
        @if uploads {
            form.box method="post" action="/console/calendar" {
                input type="hidden" name="csrf" value=(who.csrf);
                h3 { "导入年度日历" }
                p { "按国务院办公厅公布的放假安排填写，每行：日期,类型（holiday 放假 / workday 调休上班）,名称。导入的年度整体替换原有内容，各乡镇和平板在下次同步时收到。" }
                @if let Some(e) = &error { p.error { (e) } }
                textarea name="csv" rows="12" cols="60" required placeholder="date,kind,name\n2027-01-01,holiday,元旦" {}
                br;
                button.primary type="submit" { "导入" }
            }
        }
    };
    (status, pages::page("工作日历", Some(who), body)).into_response()
}

/// Only a district admin, on the district server, publishes the calendar.
fn may_upload(state: &AppState, who: &SignedIn) -> bool {
    who.account.role == StaffRole::DistrictAdmin && state.info.role == ServerRole::District
}

/// `POST /console/calendar` (`csv`): check the schedule, merge it in, publish it, audit it.
async fn upload(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { who, form, .. } = posted;
    if !may_upload(&state, &who) {
        return failure(
            Some(&who),
            &Error::Forbidden("只有区县管理员可以导入工作日历".into()),
        );
    }
    let upload = match Calendar::parse_csv(field(&form, "csv")) {
        Ok(c) => c,
        Err(e) => return view(&state, &who, Some(e.to_string()), StatusCode::BAD_REQUEST).await,
    };
    let login = who.account.login.clone();
    let now = crate::now();
    let result = state
        .with_store(move |store, _| publish(store, &upload, &login, now))
        .await;
    match result {
        Ok(()) => Redirect::to("/console/calendar").into_response(),
        Err(Error::BadRequest(text)) => {
            view(&state, &who, Some(text), StatusCode::BAD_REQUEST).await
        }
        Err(e) => failure(Some(&who), &e),
    }
}

fn publish(
    store: &mut ServerStore,
    upload: &Calendar,
    login: &str,
    now: chrono::DateTime<chrono::FixedOffset>,
) -> Result<(), Error> {
    let calendar = merged(&store.calendar()?, upload)?;
    let tx = store.begin()?;
    crate::store::publish(&tx, &SharedName::Calendar, calendar.to_csv().as_bytes())?;
    let years: Vec<String> = upload.years().iter().map(i32::to_string).collect();
    accounts::audit(&tx, login, "导入工作日历", None, &years.join("、"), now)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn next_year_is_due_from_november_and_an_upload_replaces_its_years() {
        let shipped = Calendar::default_cn();
        let last = *shipped.years().last().unwrap();
        assert_eq!(missing_year(&shipped, day(last, 10, 31)), None);
        assert_eq!(missing_year(&shipped, day(last, 11, 1)), Some(last + 1));
        let next = Calendar::parse_csv(&format!(
            "date,kind,name\n{y}-01-01,holiday,元旦\n{y}-02-20,workday,春节\n",
            y = last + 1
        ))
        .unwrap();
        let both = merged(&shipped, &next).unwrap();
        assert_eq!(missing_year(&both, day(last, 12, 31)), None);
        assert_eq!(both.rows().len(), shipped.rows().len() + 2);
        // Uploading a year again replaces it rather than adding to it.
        let again = merged(&both, &next).unwrap();
        assert_eq!(again, both);
    }
}
