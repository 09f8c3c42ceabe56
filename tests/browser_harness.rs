//! The browser harness checked against itself in real headless Chromium: it reaches a real
//! township server over loopback, handles cookies, types Chinese into a form, clicks, reads
//! back what the page's script wrote, and saves screenshots that show the page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::path::PathBuf;
use std::time::Instant;

use browser::Browser;

/// A form whose submit rewrites the heading, in inline JS: proves typing, clicking and
/// reading the DOM back, with CJK text on every step.
const FORM: &str = r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>承办单</title></head><body style="font: 40px sans-serif">
<h1 id="heading">承办单</h1>
<form onsubmit="event.preventDefault();
  document.getElementById('heading').textContent = '已受理：' + this.who.value;">
<input id="who" name="who"><button id="go" type="submit">提交</button></form></body></html>"#;

/// A `data:` URL for an HTML page (everything but unreserved ASCII percent-encoded).
fn data_url(html: &str) -> String {
    let mut url = String::from("data:text/html;charset=utf-8,");
    for b in html.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

fn screens() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screens")
}

#[test]
fn the_harness_drives_real_chromium() {
    let t = Instant::now();
    let Some(b) = Browser::start() else { return };
    eprintln!("chromedriver + chromium session: {:?}", t.elapsed());

    // A real township server, reached by the browser: the staff API refuses an anonymous
    // GET with a JSON message, which Chromium shows as text.
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let (_district, township) = support::district_and_township(dir.path());
    eprintln!("district + township: {:?}", t.elapsed());
    let t = Instant::now();
    let url = format!("{}/api/tickets", township.url);
    b.goto(&url);
    assert_eq!(b.current_url(), url);
    assert_eq!(b.status(), 401);
    assert!(b.text("body").contains("staff identity required"));

    // Cookies on the township's origin: set by the page, seen with attributes, deleted.
    b.execute("document.cookie = 'harness=甲一; SameSite=Strict'; return null");
    let cookies = b.cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let c = &cookies[0];
    assert_eq!((c.name.as_str(), c.value.as_str()), ("harness", "甲一"));
    assert_eq!((c.http_only, c.secure), (false, false));
    assert_eq!(c.same_site, "Strict");
    b.delete_cookies();
    assert!(b.cookies().is_empty());

    // A blank page, for the size a screenshot of nothing has.
    b.goto(&data_url("<!doctype html><title>blank</title>"));
    let blank = b.screenshot(screens().join("blank.png"));

    // The form: Chinese typed in, the click runs the page's script, the heading changes.
    b.goto(&data_url(FORM));
    assert_eq!(b.title(), "承办单");
    assert_eq!(b.text("#heading"), "承办单");
    assert_eq!(b.count("#missing"), 0);
    b.fill("#who", "张三 申请低保");
    b.click("#go");
    assert_eq!(b.text("#heading"), "已受理：张三 申请低保");
    assert!(b.page_source().contains("已受理：张三 申请低保"));
    assert_eq!(b.find("#who").attr("name").as_deref(), Some("who"));

    let path = screens().join("harness.png");
    let _ = std::fs::remove_file(&path);
    b.screenshot(&path);
    let png = std::fs::read(&path).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // IHDR: width and height, big-endian, at bytes 16..24.
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1366, "--window-size=1366,768");
    assert!(
        png.len() > blank.len() + 1000,
        "the page's screenshot ({} bytes) is no bigger than a blank page's ({} bytes)",
        png.len(),
        blank.len()
    );
    eprintln!(
        "pages and screenshots: {:?} (blank {} B, form {} B)",
        t.elapsed(),
        blank.len(),
        png.len()
    );
}
