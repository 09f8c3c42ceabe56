//! The printable forms in real headless Chromium: a township clerk opens a ticket's 受理回执
//! and 代理承办单 from its page; the Chinese text is in the page and is drawn with CJK glyphs,
//! not tofu; the receipt fits half an A4. Screenshots go to target/browser-screens/
//! (receipt.png, form.png; copies in docs/screens).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::path::PathBuf;

use agent_core::demo;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::mask::mask_id;
use agent_core::sync::client::sync_now;
use browser::Browser;
use support::*;

fn screens() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screens")
}

/// Draws each distinct Han character of the page, in the font the page gives its body, onto a
/// canvas and compares the pixels. Without a CJK font every one of them comes out as the same
/// missing-glyph box (tofu), identical to the box of an unassigned code point (U+0378); with
/// one, each is its own glyph about one em wide. (`document.fonts.check` cannot tell: it
/// answers true for a font that is not installed, as there is nothing to load.)
const GLYPHS: &str = r#"
const font = getComputedStyle(document.body).fontFamily;
const chars = [...new Set(document.body.innerText.match(/\p{Script=Han}/gu))];
const canvas = document.createElement('canvas');
canvas.width = canvas.height = 64;
const ctx = canvas.getContext('2d', { willReadFrequently: true });
ctx.font = '48px ' + font;
ctx.textBaseline = 'top';
const draw = ch => {
  ctx.clearRect(0, 0, 64, 64);
  ctx.fillText(ch, 8, 8);
  return ctx.getImageData(0, 0, 64, 64).data.join();
};
const tofu = draw('\u0378');
const drawn = chars.map(draw);
const widths = chars.map(ch => ctx.measureText(ch).width);
return {
  font,
  chars: chars.length,
  distinct: new Set(drawn).size,
  tofu: drawn.filter(d => d === tofu).length,
  narrow: widths.filter(w => Math.abs(w - 48) > 2).length,
};
"#;

/// Asserts the open page's Chinese is drawn with real CJK glyphs (see [`GLYPHS`]).
fn assert_cjk_glyphs(b: &Browser, what: &str) {
    let r = b.execute(GLYPHS);
    let n = |k: &str| r[k].as_u64().unwrap();
    assert!(
        r["font"].as_str().unwrap().contains("Noto Sans CJK SC"),
        "{what}: {r}"
    );
    assert!(
        n("chars") >= 30,
        "{what}: too little Chinese on the page: {r}"
    );
    assert_eq!(
        n("distinct"),
        n("chars"),
        "{what}: glyphs drawn alike (tofu): {r}"
    );
    assert_eq!(n("tofu"), 0, "{what}: missing-glyph boxes: {r}");
    assert_eq!(n("narrow"), 0, "{what}: Han glyphs not one em wide: {r}");
}

#[test]
fn the_receipt_and_the_form_render_chinese_in_chromium() {
    let Some(b) = Browser::start() else {
        eprintln!("chromium not installed: skipped (CI sets DAIBAN_REQUIRE_CHROMIUM)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_township(dir.path());
    let mut a = tablet(dir.path(), &township, 101, 1);
    let catalog = Catalog::demo();
    let form = demo::form(
        &mut demo::Rng::new(7),
        catalog.item("SW005").unwrap(),
        0,
        false,
    );
    let number = a.register(&form).unwrap().view.ticket.number;
    sync_now(&mut a, township.url.as_str()).unwrap();

    // Signed in as the clerk, from the ticket's page.
    b.goto(&format!("{}/console/login", township.url));
    b.fill("#login", staff_login("township"));
    b.fill("#password", STAFF_PASSWORD);
    b.click("button[type=submit]");
    b.wait_for("table, p.box");
    b.goto(&format!("{}/console/tickets/{number}", township.url));
    b.click(&format!("a[href='/console/tickets/{number}/receipt']"));

    // The receipt: number, item, applicant, SMS help; the ID number masked.
    assert_eq!(b.text("#number"), number.as_str());
    assert_eq!(b.status(), 200);
    let text = b.text(".receipt");
    for t in [
        "柏林镇为民服务全程代理",
        "受理回执",
        "白酒零售许可证（SW005）",
        &form.applicant_name,
        &mask_id(&form.id_number),
        "50.00 元（收据号 SJ000001）",
        "尚缺材料：营业执照副本",
        "短信查询",
    ] {
        assert!(text.contains(t), "{t} missing: {text}");
    }
    assert!(!b.page_source().contains(&form.id_number));
    assert_cjk_glyphs(&b, "receipt");
    b.screenshot(screens().join("receipt.png"));
    // Half an A4 (148.5 mm) holds it, as laid out 148 mm wide.
    let height_mm = b
        .execute(
            "return document.querySelector('.receipt').getBoundingClientRect().height * 25.4 / 96",
        )
        .as_f64()
        .unwrap();
    assert!(height_mm <= 148.5, "the receipt is {height_mm:.0} mm tall");

    // The 承办单, from the receipt's toolbar.
    b.click(&format!(
        ".toolbar a[href='/console/tickets/{number}/form']"
    ));
    b.wait_for(".form");
    assert_eq!(b.text("#number"), number.as_str());
    let text = b.text(".form");
    for t in [
        "为民服务全程代理承办单",
        "材料清单",
        "营业执照副本",
        "办理记录",
        "村代理点登记",
        "代理员签字",
        "申请人签字",
        "经办人签字",
    ] {
        assert!(text.contains(t), "{t} missing: {text}");
    }
    assert!(!b.page_source().contains(&form.id_number));
    assert_cjk_glyphs(&b, "form");
    b.screenshot(screens().join("form.png"));
}
