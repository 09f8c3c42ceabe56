//! The console's main flow in real headless Chromium, across real processes: a ticket a
//! village tablet registered offline and synced is found by a township clerk, who requests a
//! supplement; the village hands it in; the clerk accepts and forwards it to a district
//! window; window staff complete it at the district; the township returns it, and the result
//! reaches the tablet. Screenshots of the key pages go to target/browser-screens/.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent_core::domain::catalog::Catalog;
use agent_core::domain::event::{EventDraft, EventKind};
use agent_core::domain::lifecycle::Status;
use agent_core::domain::mask::mask_name;
use agent_core::domain::number::TicketNumber;
use agent_core::sync::client::sync_now;
use browser::Browser;
use support::*;

fn screens() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screens")
}

/// Sign in at `url`'s console as `login` (the test password).
fn sign_in(b: &Browser, url: &str, login: &str) {
    b.goto(&format!("{url}/console/login"));
    b.fill("#login", login);
    b.fill("#password", STAFF_PASSWORD);
    b.click("button[type=submit]");
    b.wait_for("table, p.box");
}

/// Take the action `kind` on the open ticket page (its form's fields filled by `fill`) and
/// wait until the page that answers shows the ticket in `expect`.
fn act(b: &Browser, kind: &str, expect: Status, fill: impl FnOnce(&Browser)) {
    let form = format!("form[data-kind={kind}]");
    b.wait_for(&form);
    fill(b);
    b.click(&format!("{form} button[type=submit]"));
    let deadline = Instant::now() + browser::WAIT;
    loop {
        // Read from one snapshot of the page: it may be replaced between two calls.
        let page = b.page_source();
        let now = page
            .split_once(r#"id="status">"#)
            .and_then(|(_, rest)| rest.split_once('<'))
            .map(|(text, _)| text.to_owned());
        if now.as_deref() == Some(expect.label()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{kind}: the ticket shows {now:?}, not {}: {}",
            expect.label(),
            page
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_ticket_goes_from_village_to_window_and_back_through_the_console() {
    let Some(b) = Browser::start() else {
        eprintln!("chromium not installed: skipped (CI sets DAIBAN_REQUIRE_CHROMIUM)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (district, township) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &township, 101, 1);
    let form = agent_core::demo::forms(3, 1, &Catalog::demo())
        .pop()
        .unwrap();
    let number: TicketNumber = a.register(&form).unwrap().view.ticket.number;
    sync_now(&mut a, township.url.as_str()).unwrap();

    // The clerk finds it in the inbox, the applicant masked.
    sign_in(&b, &township.url, staff_login("township"));
    let inbox = b.page_source();
    assert!(inbox.contains(number.as_str()), "{inbox}");
    assert!(inbox.contains(&mask_name(&form.applicant_name)));
    assert!(!inbox.contains(&form.applicant_name));
    b.screenshot(screens().join("inbox.png"));
    // ...and by the applicant's phone in the search box, as when a villager calls in.
    let phone = form.phone.clone().unwrap();
    b.fill("form.search input[name=q]", &phone);
    b.click("form.search button[type=submit]");
    b.wait_for("#tickets");
    assert_eq!(b.count("#tickets tbody tr"), 1);
    assert!(b.text("#tickets").contains(number.as_str()));
    b.screenshot(screens().join("search.png"));
    b.click(&format!("a[href='/console/tickets/{number}']"));
    b.wait_for("form[data-kind=accepted]");
    assert!(!b.page_source().contains(&form.id_number));

    // A supplement, picked from the item's list of materials.
    let material = b
        .find("form[data-kind=supplement_requested] input[name=missing]")
        .attr("value")
        .unwrap();
    act(
        &b,
        "supplement_requested",
        Status::AwaitingSupplement,
        |b| {
            b.click("form[data-kind=supplement_requested] input[name=missing]");
            b.fill(
                "form[data-kind=supplement_requested] input[name=note]",
                "请补交",
            );
        },
    );
    let page = b.page_source();
    assert!(page.contains(&format!("待补正材料：{material}")), "{page}");
    b.screenshot(screens().join("supplement.png"));

    // The village hands it in.
    sync_now(&mut a, township.url.as_str()).unwrap();
    a.append(
        &number,
        &EventDraft {
            kind: EventKind::SupplementProvided,
            note: String::new(),
            payload: serde_json::json!({}),
        },
    )
    .unwrap();
    sync_now(&mut a, township.url.as_str()).unwrap();

    // Accept, then forward to a window.
    b.goto(&format!("{}/console/tickets/{number}", township.url));
    act(&b, "accepted", Status::Accepted, |_| {});
    act(&b, "forwarded", Status::Forwarded, |b| {
        b.fill("form[data-kind=forwarded] input[name=window]", "民政局窗口");
    });
    sync_upward(&township);

    // Window staff complete it at the district.
    let w = Browser::start().unwrap();
    sign_in(&w, &district.url, staff_login("window"));
    // Its inbox holds what was forwarded to it.
    assert!(w.text("#tickets").contains(number.as_str()));
    w.click(&format!("a[href='/console/tickets/{number}']"));
    act(&w, "completed", Status::Completed, |w| {
        w.click("form[data-kind=completed] input[value=approved]");
        w.fill(
            "form[data-kind=completed] input[name=certificate_no]",
            "民证2026-0815",
        );
    });
    w.screenshot(screens().join("window-completed.png"));

    // Back at the township, returned to the village; the tablet sees it.
    sync_upward(&township);
    b.goto(&format!("{}/console/tickets/{number}", township.url));
    act(&b, "returned", Status::Returned, |_| {});
    b.screenshot(screens().join("ticket.png"));
    sync_now(&mut a, township.url.as_str()).unwrap();
    let view = a.get(&number).unwrap();
    assert_eq!(view.life.status, Status::Returned);
    assert_eq!(view.life.certificate_no.as_deref(), Some("民证2026-0815"));
}
