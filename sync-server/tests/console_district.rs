//! District administration in the console over real `sync-server` processes: the catalog's
//! items with their versions (a change makes the next version, reaches the township and its
//! tablets at the next sync, and tickets keep the version they were registered under), the
//! townships and points of the district's directory part (enrolled township servers and
//! revocations kept; the duty and agent mobiles checked, kept by edits that leave them, and
//! shown masked in the lists), refusals for other roles and bad input that change nothing, and markup
//! in the new names shown as text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use agent_core::demo::{self, Rng};
use agent_core::domain::catalog::{Catalog, Item};
use agent_core::domain::directory::DirectoryPart;
use agent_core::domain::number::TicketNumber;
use agent_core::store::Store;
use agent_core::sync::client::sync_now;

use support::console::{csrf_field, get, post, session};
use support::{
    add_staff_ok, cli, init_district, serve, start_township, sync_upward, tablet, Server,
    STAFF_PASSWORD, TOWNSHIP_A, TOWNSHIP_B,
};

// ---- helpers ----

/// A district (the demo directory and catalog, a district admin `dadmin`) and township A
/// synced once.
struct County {
    _dir: tempfile::TempDir,
    district: Server,
    township: Server,
}

fn county() -> County {
    let dir = tempfile::tempdir().unwrap();
    let district_data = dir.path().join("district");
    init_district(&district_data);
    let file = dir.path().join("catalog.json");
    std::fs::write(&file, serde_json::to_string(&Catalog::demo()).unwrap()).unwrap();
    cli(&["import-catalog", file.to_str().unwrap()], &district_data);
    add_staff_ok(&district_data, "dadmin", "district_admin");
    let district = serve(&district_data);
    let township = start_township(dir.path(), TOWNSHIP_A, &district);
    add_staff_ok(&township.data, "tadmin", "township_admin");
    County {
        _dir: dir,
        district,
        township,
    }
}

fn db(server: &Server) -> rusqlite::Connection {
    rusqlite::Connection::open(server.data.join("server.db")).unwrap()
}

fn count(server: &Server, sql: &str) -> i64 {
    db(server).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The catalog a server holds.
fn held_catalog(server: &Server) -> Catalog {
    let body: Vec<u8> = db(server)
        .query_row("SELECT body FROM shared WHERE name = 'catalog'", [], |r| {
            r.get(0)
        })
        .unwrap();
    Catalog::from_json(&String::from_utf8(body).unwrap()).unwrap()
}

/// The district's part of the directory a server holds.
fn district_part(server: &Server) -> DirectoryPart {
    let body: Vec<u8> = db(server)
        .query_row(
            "SELECT body FROM shared WHERE name = 'directory'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// Everything a refused request could have changed on the district: its shared documents
/// (catalog and directory parts, with their versions), the catalog's recorded versions, the
/// audit log and the change log.
fn snapshot(server: &Server) -> Vec<String> {
    let conn = db(server);
    let mut out = Vec::new();
    for sql in [
        "SELECT name || '|' || version || '|' || hex(body) FROM shared ORDER BY name",
        "SELECT code || '|' || version || '|' || item FROM catalog_versions ORDER BY id",
        "SELECT id || '|' || action || '|' || detail FROM audit_log ORDER BY id",
        "SELECT COUNT(*) || ' changes' FROM changes",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

/// Form fields as posted.
type Fields = Vec<(String, String)>;

/// The lines of a snapshot that differ, for a failure message (snapshots are long).
fn changed(before: &[String], after: &[String]) -> String {
    let gone = before.iter().filter(|l| !after.contains(l));
    let new = after.iter().filter(|l| !before.contains(l));
    let short = |l: &String| l.chars().take(160).collect::<String>();
    format!(
        "removed {:?}; added {:?}",
        gone.map(short).collect::<Vec<_>>(),
        new.map(short).collect::<Vec<_>>()
    )
}

/// An item's edit form as the console fills it, with `changes` applied.
fn item_form(item: &Item, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let level = match item.level {
        agent_core::domain::catalog::HandlingLevel::Township => "township",
        agent_core::domain::catalog::HandlingLevel::Window => "window",
    };
    let kind = serde_json::to_value(item.kind).unwrap();
    let materials: Vec<String> = item
        .materials
        .iter()
        .map(|m| format!("{}|{}|{}", m.name, m.form.label(), m.copies))
        .collect();
    let mut fields: Vec<(String, String)> = [
        ("code", item.code.clone()),
        ("name", item.name.clone()),
        ("category", item.category.clone()),
        ("department", item.department.clone()),
        ("level", level.to_owned()),
        ("window", item.window.clone().unwrap_or_default()),
        ("kind", kind.as_str().unwrap().to_owned()),
        ("materials", materials.join("\n")),
        (
            "fee",
            format!("{}.{:02}", item.fee_fen / 100, item.fee_fen % 100),
        ),
        ("legal_basis", item.legal_basis.clone()),
        ("promised_days", item.promised_days.to_string()),
        ("township_review", item.stages.township_review.to_string()),
        ("window_handling", item.stages.window_handling.to_string()),
        (
            "return_to_village",
            item.stages.return_to_village.to_string(),
        ),
        ("base", item.version.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in changes {
        match fields.iter_mut().find(|(name, _)| name == k) {
            Some(f) => f.1 = (*v).to_owned(),
            None => fields.push(((*k).to_owned(), (*v).to_owned())),
        }
    }
    fields
}

/// POST a form given as owned fields, the CSRF token first.
fn post_form(
    server: &Server,
    path: &str,
    cookie: &str,
    csrf: &str,
    fields: &[(String, String)],
) -> (u16, String) {
    let mut all: Vec<(&str, &str)> = vec![("csrf", csrf)];
    all.extend(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    post(server, path, cookie, &all)
}

/// The CSRF token of a session, read from a page it may open.
fn csrf_of(server: &Server, cookie: &str) -> String {
    let (status, page) = get(server, "/console/catalog", cookie);
    assert_eq!(status, 200, "{page}");
    csrf_field(&page)
}

/// The table row whose opening tag carries `attr` (e.g. `data-code="SB001"`).
fn row<'a>(page: &'a str, attr: &str) -> &'a str {
    let start = page
        .find(&format!("<tr {attr}>"))
        .unwrap_or_else(|| panic!("no row {attr}: {page}"));
    let end = start + page[start..].find("</tr>").unwrap();
    &page[start..end]
}

fn register(tab: &mut Store, code: &str, serial: usize) -> TicketNumber {
    let item = tab.catalog().item(code).unwrap().clone();
    let form = demo::form(&mut Rng::new(serial as u64 + 3), &item, serial, true);
    tab.register(&form).unwrap().view.ticket.number.clone()
}

// ---- the catalog ----

#[test]
fn a_changed_item_gets_the_next_version_and_reaches_the_villages_while_old_tickets_keep_theirs() {
    let c = county();
    let (d, t) = (&c.district, &c.township);
    let dir = c._dir.path();
    // A ticket registered under SB001 version 1 before anything changes.
    let mut tab = tablet(dir, t, 101, 1);
    sync_now(&mut tab, t.url.as_str()).unwrap();
    assert_eq!(tab.catalog().item("SB001").unwrap().version, 1);
    let old_ticket = register(&mut tab, "SB001", 1);
    sync_now(&mut tab, t.url.as_str()).unwrap();

    let admin = session(d, "dadmin", STAFF_PASSWORD);
    let csrf = csrf_of(d, &admin);
    let (status, page) = get(d, "/console/catalog/SB001", &admin);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(r#"id="edit-item""#), "{page}");
    assert!(row(&page, r#"data-version="1""#).contains("(命令行)"));
    let audit_before = count(d, "SELECT COUNT(*) FROM audit_log");

    // The fee goes from free to 12.50 yuan.
    let sb001 = Catalog::demo().item("SB001").unwrap().clone();
    let form = item_form(&sb001, &[("fee", "12.5")]);
    let (status, to) = post_form(d, "/console/catalog/SB001", &admin, &csrf, &form);
    assert_eq!(
        (status, to.as_str()),
        (303, "/console/catalog/SB001?saved=2")
    );
    let held = held_catalog(d);
    assert_eq!(held.version, 2, "the catalog's version is bumped");
    let item = held.item("SB001").unwrap();
    assert_eq!((item.version, item.fee_fen), (2, 1250));
    assert_eq!(
        held.item("WJ002").unwrap().version,
        1,
        "other items keep theirs"
    );

    // The list and the history show it.
    let (_, list) = get(d, "/console/catalog", &admin);
    assert!(list.contains(r#"id="catalog-version">v2<"#), "{list}");
    let listed = row(&list, r#"data-code="SB001""#);
    assert!(
        listed.contains(r#"<td class="fee">12.50</td>"#)
            && listed.contains(r#"<td class="version">v2</td>"#),
        "{listed}"
    );
    let (_, page) = get(d, "/console/catalog/SB001?saved=2", &admin);
    assert!(page.contains("已保存为第2版"), "{page}");
    let v2 = row(&page, r#"data-version="2""#);
    assert!(
        v2.contains(r#"<td class="fee">12.50</td>"#) && v2.contains("dadmin"),
        "{v2}"
    );
    assert!(row(&page, r#"data-version="1""#).contains(r#"<td class="fee">0.00</td>"#));
    assert_eq!(
        count(
            d,
            "SELECT COUNT(*) FROM catalog_versions WHERE code = 'SB001'"
        ),
        2
    );
    assert_eq!(count(d, "SELECT COUNT(*) FROM audit_log"), audit_before + 1);
    let detail: String = db(d)
        .query_row(
            "SELECT action || detail FROM audit_log ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        detail.starts_with("修改事项") && detail.contains("收费"),
        "{detail}"
    );

    // The same form again (opened at version 2) makes no version and publishes nothing.
    let before = snapshot(d);
    let again = item_form(item, &[]);
    let (status, to) = post_form(d, "/console/catalog/SB001", &admin, &csrf, &again);
    assert_eq!(
        (status, to.as_str()),
        (303, "/console/catalog/SB001?saved=0")
    );
    let after = snapshot(d);
    assert!(
        after == before,
        "an unchanged save changed: {}",
        changed(&before, &after)
    );
    let (_, page) = get(d, &to, &admin);
    assert!(page.contains("内容没有变化，未生成新版本"), "{page}");
    // A form still opened at version 1 is refused: someone saved since.
    let stale = item_form(item, &[("base", "1"), ("fee", "1")]);
    let (status, page) = post_form(d, "/console/catalog/SB001", &admin, &csrf, &stale);
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("已被修改为第2版"), "{page}");
    let after = snapshot(d);
    assert!(
        after == before,
        "a stale form changed: {}",
        changed(&before, &after)
    );

    // A new item: the next version again.
    let mut new_item = Catalog::demo().item("MZ007").unwrap().clone();
    new_item.code = "XZ100".into();
    new_item.name = "新增的代办事项".into();
    let form = item_form(&new_item, &[("base", "")]);
    let (status, to) = post_form(d, "/console/catalog", &admin, &csrf, &form);
    assert_eq!(
        (status, to.as_str()),
        (303, "/console/catalog/XZ100?saved=3")
    );
    let (status, page) = post_form(d, "/console/catalog", &admin, &csrf, &form);
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("事项编码XZ100已存在"), "{page}");
    assert_eq!(held_catalog(d).version, 3);

    // The township receives the new catalog at its next sync, and its tablets at theirs.
    sync_upward(t);
    let clerk = session(t, "clerk", STAFF_PASSWORD);
    let (status, list) = get(t, "/console/catalog", &clerk);
    assert_eq!(status, 200, "{list}");
    assert!(list.contains(r#"id="catalog-version">v3<"#), "{list}");
    assert!(row(&list, r#"data-code="SB001""#).contains(r#"<td class="fee">12.50</td>"#));
    assert!(
        !list.contains(r#"id="new-item""#),
        "a township edits nothing"
    );
    sync_now(&mut tab, t.url.as_str()).unwrap();
    let on_tablet = tab.catalog().item("SB001").unwrap();
    assert_eq!((on_tablet.version, on_tablet.fee_fen), (2, 1250));
    assert!(tab.catalog().item("XZ100").is_some());

    // The ticket registered earlier keeps version 1; one registered now has version 2.
    let new_ticket = register(&mut tab, "SB001", 2);
    sync_now(&mut tab, t.url.as_str()).unwrap();
    let (status, page) = get(t, &format!("/console/tickets/{old_ticket}"), &clerk);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("事项版本 v1"), "{page}");
    let (_, page) = get(t, &format!("/console/tickets/{new_ticket}"), &clerk);
    assert!(page.contains("事项版本 v2"), "{page}");
}

#[test]
fn other_roles_are_refused_and_bad_input_is_explained_and_changes_nothing() {
    let c = county();
    let (d, t) = (&c.district, &c.township);
    let admin = session(d, "dadmin", STAFF_PASSWORD);
    let csrf = csrf_of(d, &admin);
    let sb001 = Catalog::demo().item("SB001").unwrap().clone();
    let fee_change = item_form(&sb001, &[("fee", "30")]);
    let new_point = |number: &str, township: &str| -> Vec<(String, String)> {
        [
            ("number", number),
            ("name", "新建代办点"),
            ("township", township),
            ("distance_km", "12.5"),
            ("fare", "15"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    };
    // Window staff and the auditor at the district, the township's admin and clerk at the
    // township; every session opened first, so that the states compared differ only by what
    // the requests did.
    let others: Vec<(&Server, &str, String, String)> =
        [(d, "window"), (d, "auditor"), (t, "tadmin"), (t, "clerk")]
            .into_iter()
            .map(|(server, login)| {
                let cookie = session(server, login, STAFF_PASSWORD);
                let token = csrf_of(server, &cookie);
                (server, login, cookie, token)
            })
            .collect();
    let before = snapshot(d);
    for (server, login, cookie, token) in &others {
        let (server, login, cookie, token) = (*server, *login, cookie.as_str(), token.as_str());
        let (status, page) = get(server, "/console/catalog/SB001", cookie);
        assert_eq!(status, 200, "{login} reads the catalog: {page}");
        assert!(!page.contains(r#"id="edit-item""#), "{login}: {page}");
        let (status, page) = get(server, "/console/townships", cookie);
        assert_eq!(status, 200, "{login} reads the townships: {page}");
        assert!(!page.contains(r#"id="new-point""#), "{login}: {page}");
        for (path, fields) in [
            ("/console/catalog/SB001", fee_change.clone()),
            ("/console/catalog", item_form(&sb001, &[("code", "QT001")])),
            ("/console/points", new_point("9001", TOWNSHIP_A)),
            (
                "/console/points/101",
                new_point("101", TOWNSHIP_A)[1..].to_vec(),
            ),
            (
                "/console/townships",
                vec![
                    ("code".into(), "431023199".into()),
                    ("name".into(), "新乡".into()),
                ],
            ),
            (
                &format!("/console/townships/{TOWNSHIP_A}"),
                vec![("name".into(), "改名镇".into())],
            ),
        ] {
            let (status, page) = post_form(server, path, cookie, token, &fields);
            assert_eq!(status, 403, "{login} {path}: {page}");
            assert!(page.contains("只有区县管理员"), "{login} {path}: {page}");
        }
    }
    // The district admin's own forms without its CSRF token.
    let (status, page) = post_form(d, "/console/catalog/SB001", &admin, "", &fee_change);
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("表单已过期或来源不明"), "{page}");
    let after = snapshot(d);
    assert!(
        after == before,
        "refused requests changed: {}",
        changed(&before, &after)
    );

    // Bad input, each with its reason in Chinese, the form kept as typed.
    let cases: Vec<(&str, Fields, &str)> = vec![
        (
            "/console/catalog/SB001",
            item_form(&sb001, &[("fee", "-5")]),
            "收费金额不能为负数",
        ),
        (
            "/console/catalog/SB001",
            item_form(&sb001, &[("fee", "1.005")]),
            "收费金额最多两位小数",
        ),
        (
            "/console/catalog/SB001",
            item_form(&sb001, &[("promised_days", "0")]),
            "承诺件的承诺时限至少为1个工作日",
        ),
        (
            "/console/catalog/SB001",
            item_form(&sb001, &[("materials", "户口簿|复印本|1")]),
            "须注明“原件”或“复印件”",
        ),
        (
            "/console/catalog",
            item_form(&sb001, &[("code", "NEW 1")]),
            "事项编码须为1至16位",
        ),
        (
            "/console/catalog",
            item_form(
                &sb001,
                &[
                    ("code", "QT002"),
                    ("kind", "reported"),
                    ("promised_days", "0"),
                ],
            ),
            "上报件的承诺时限至少为1个工作日",
        ),
        (
            "/console/points",
            new_point("101", TOWNSHIP_A),
            "代办点编号101已被",
        ),
        (
            "/console/points",
            new_point("9002", "431099999"),
            "所属乡镇431099999不在目录中",
        ),
        (
            "/console/points",
            new_point("10000", TOWNSHIP_A),
            "代办点编号不能超过9999",
        ),
        (
            "/console/points/101",
            vec![
                ("name".into(), "柏林村代办点".into()),
                ("distance_km".into(), "-3".into()),
                ("fare".into(), "8".into()),
            ],
            "到县城的距离（公里）不能为负数",
        ),
        (
            "/console/townships",
            vec![
                ("code".into(), TOWNSHIP_B.into()),
                ("name".into(), "重名".into()),
            ],
            "已被",
        ),
    ];
    for (path, fields, reason) in &cases {
        let (status, page) = post_form(d, path, &admin, &csrf, fields);
        assert_eq!(status, 400, "{path} {reason}: {page}");
        assert!(page.contains(reason), "{path}: want {reason}: {page}");
        assert!(page.contains("未保存，请修改后重试"), "{path}: {page}");
    }
    // The refused item form comes back as typed.
    let (_, page) = post_form(d, "/console/catalog/SB001", &admin, &csrf, &cases[0].1);
    assert!(
        page.contains(r#"name="fee" inputmode="decimal" required value="-5""#),
        "{page}"
    );
    let after = snapshot(d);
    assert!(
        after == before,
        "bad input changed: {}",
        changed(&before, &after)
    );
    assert_eq!(held_catalog(d).version, 1);
}

// ---- townships and points ----

#[test]
fn a_district_admin_adds_and_edits_townships_and_points_keeping_enrollments_and_revocations() {
    let c = county();
    let (d, t) = (&c.district, &c.township);
    let _tab = tablet(c._dir.path(), t, 101, 1);
    sync_upward(t);
    // A revocation the district made, and township A's enrolled server, in the district's
    // part.
    cli(
        &[
            "revoke", "--point", "102", "--device", "7", "--reason", "丢失",
        ],
        &d.data,
    );
    let held = district_part(d);
    let server_a = held
        .townships
        .iter()
        .find(|t| t.code == TOWNSHIP_A)
        .unwrap()
        .server
        .clone()
        .expect("township A's server enrolled");
    assert_eq!(held.revoked.len(), 1);

    let admin = session(d, "dadmin", STAFF_PASSWORD);
    let csrf = csrf_of(d, &admin);
    let (status, page) = get(d, "/console/townships", &admin);
    assert_eq!(status, 200, "{page}");
    let p101 = row(&page, r#"data-point="101""#);
    assert!(
        p101.contains(r#"<td class="devices">1</td>"#),
        "101's tablet: {p101}"
    );
    let audit_before = count(d, "SELECT COUNT(*) FROM audit_log");

    let fields = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let ok = |path: &str, pairs: &[(&str, &str)]| {
        let (status, to) = post_form(d, path, &admin, &csrf, &fields(pairs));
        assert_eq!((status, to.as_str()), (303, "/console/townships"), "{path}");
    };
    ok(
        "/console/townships",
        &[("code", "431023103"), ("name", "新场镇")],
    );
    ok(
        "/console/points",
        &[
            ("number", "301"),
            ("name", "新场村代办点"),
            ("township", "431023103"),
            ("distance_km", "12.5"),
            ("fare", "15"),
        ],
    );
    ok(
        "/console/points/101",
        &[
            ("name", "柏林村便民代办点"),
            ("distance_km", "21"),
            ("fare", "18.50"),
        ],
    );
    ok(
        &format!("/console/townships/{TOWNSHIP_B}"),
        &[("name", "龙潭新镇")],
    );
    assert_eq!(count(d, "SELECT COUNT(*) FROM audit_log"), audit_before + 4);
    let actions: Vec<String> = {
        let conn = db(d);
        let mut stmt = conn
            .prepare("SELECT action FROM audit_log ORDER BY id DESC LIMIT 4")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert_eq!(
        actions,
        ["修改乡镇", "修改代办点", "新增代办点", "新增乡镇"]
    );

    // The part as published: the changes, the enrolled server and the revocation kept.
    let part = district_part(d);
    let p301 = part.points.iter().find(|p| p.number == 301).unwrap();
    assert_eq!(
        (p301.township.as_str(), p301.distance_km, p301.fare_fen),
        ("431023103", 12.5, 1500)
    );
    let p101 = part.points.iter().find(|p| p.number == 101).unwrap();
    assert_eq!(
        (
            p101.name.as_str(),
            p101.distance_km,
            p101.fare_fen,
            p101.township.as_str()
        ),
        ("柏林村便民代办点", 21.0, 1850, TOWNSHIP_A)
    );
    let a = part
        .townships
        .iter()
        .find(|t| t.code == TOWNSHIP_A)
        .unwrap();
    assert_eq!(a.server.as_ref(), Some(&server_a));
    assert_eq!(part.revoked, held.revoked);

    // The page shows them.
    let (_, page) = get(d, "/console/townships", &admin);
    let p301 = row(&page, r#"data-point="301""#);
    assert!(
        p301.contains("新场村代办点")
            && p301.contains(r#"<td class="distance">12.5</td>"#)
            && p301.contains(r#"<td class="fare">15.00</td>"#)
            && p301.contains("新场镇"),
        "{p301}"
    );
    assert!(page.contains("龙潭新镇"), "{page}");

    // The township still syncs (its server identity is intact), receives the part, and its
    // clerk sees its own township only.
    sync_upward(t);
    assert_eq!(district_part(t), part);
    let clerk = session(t, "clerk", STAFF_PASSWORD);
    let (status, page) = get(t, "/console/townships", &clerk);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!(r#"data-township="{TOWNSHIP_A}""#)),
        "{page}"
    );
    assert!(page.contains("柏林村便民代办点"), "{page}");
    for other in [TOWNSHIP_B, "431023103"] {
        assert!(
            !page.contains(&format!(r#"data-township="{other}""#)),
            "{other} shown to township A: {page}"
        );
    }
    assert!(!page.contains("新场村代办点"), "{page}");
}

/// A district admin's form, as owned fields.
fn pairs(fields: &[(&str, &str)]) -> Fields {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The audit log's latest `n` entries, newest first, as `action|detail`.
fn latest_audit(server: &Server, n: usize) -> Vec<String> {
    let conn = db(server);
    let mut stmt = conn
        .prepare("SELECT action || '|' || detail FROM audit_log ORDER BY id DESC LIMIT ?1")
        .unwrap();
    let rows = stmt
        .query_map([i64::try_from(n).unwrap()], |r| r.get(0))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn duty_and_agent_phones_are_checked_kept_by_other_edits_and_masked_in_lists() {
    let c = county();
    let (d, t) = (&c.district, &c.township);
    let admin = session(d, "dadmin", STAFF_PASSWORD);
    let csrf = csrf_of(d, &admin);
    let ok = |path: &str, fields: &[(&str, &str)]| {
        let (status, to) = post_form(d, path, &admin, &csrf, &pairs(fields));
        assert_eq!(
            (status, to.as_str()),
            (303, "/console/townships"),
            "{path} {fields:?}"
        );
    };
    let township_a = format!("/console/townships/{TOWNSHIP_A}");
    let township = |part: &DirectoryPart, code: &str| {
        part.townships
            .iter()
            .find(|t| t.code == code)
            .unwrap()
            .clone()
    };
    let point = |part: &DirectoryPart, number: u32| {
        part.points
            .iter()
            .find(|p| p.number == number)
            .unwrap()
            .clone()
    };

    // The demo's phones, masked in the list: point 101's agent 13907310101.
    let held = district_part(d);
    assert_eq!(
        point(&held, 101).agent_phone.as_deref(),
        Some("13907310101")
    );
    let (status, page) = get(d, "/console/townships", &admin);
    assert_eq!(status, 200, "{page}");
    let p101 = row(&page, r#"data-point="101""#);
    assert!(
        p101.contains(r#"<td class="agent_phone">139****0101</td>"#),
        "{p101}"
    );
    // The district admin's edit form holds it in full.
    assert!(
        p101.contains(
            r#"name="agent_phone" inputmode="tel" placeholder="代理员手机" value="13907310101""#
        ),
        "{p101}"
    );

    // The district admin sets township A's duty mobile and point 101's agent's, as typed
    // (separators, +86, full-width digits): stored as 11 digits.
    ok(
        &township_a,
        &[("name", "柏林镇"), ("phone", "+86 136-0731-0808")],
    );
    ok(
        "/console/points/101",
        &[
            ("name", "柏林村代办点"),
            ("distance_km", "18"),
            ("fare", "10"),
            ("agent_phone", "１５８ ０７３１ ２２２２"),
        ],
    );
    let part = district_part(d);
    assert_eq!(
        township(&part, TOWNSHIP_A).phone.as_deref(),
        Some("13607310808")
    );
    let p101 = point(&part, 101);
    assert_eq!(
        (p101.agent_phone.as_deref(), p101.fare_fen),
        (Some("15807312222"), 1000)
    );
    // Audited with the phones masked, naming what changed.
    let audit = latest_audit(d, 2);
    assert!(
        audit[1].starts_with("修改乡镇|")
            && audit[1].contains("值班手机138****0101→136****0808")
            && !audit[1].contains("名称"),
        "{audit:?}"
    );
    assert!(
        audit[0].starts_with("修改代办点|")
            && audit[0].contains("代理员手机139****0101→158****2222"),
        "{audit:?}"
    );
    for full in ["13807310101", "13607310808", "13907310101", "15807312222"] {
        assert!(!audit.iter().any(|a| a.contains(full)), "{full}: {audit:?}");
    }

    // A rename and a point edit that leave the phone (not posted, or posted as the form
    // shows it) keep it.
    ok(&township_a, &[("name", "柏林新镇")]);
    ok(
        "/console/points/101",
        &[
            ("name", "柏林村便民代办点"),
            ("distance_km", "21"),
            ("fare", "18.5"),
        ],
    );
    let part = district_part(d);
    let a = township(&part, TOWNSHIP_A);
    assert_eq!(
        (a.name.as_str(), a.phone.as_deref()),
        ("柏林新镇", Some("13607310808"))
    );
    let p101 = point(&part, 101);
    assert_eq!(
        (p101.name.as_str(), p101.agent_phone.as_deref()),
        ("柏林村便民代办点", Some("15807312222"))
    );
    assert!(
        !latest_audit(d, 2).iter().any(|a| a.contains("手机")),
        "unchanged phones audited: {:?}",
        latest_audit(d, 2)
    );
    ok(&township_a, &[("name", "柏林镇"), ("phone", "13607310808")]);
    assert_eq!(
        township(&district_part(d), TOWNSHIP_A).phone.as_deref(),
        Some("13607310808")
    );
    // Left empty: none. A new township and point with theirs.
    ok(
        "/console/points/102",
        &[
            ("name", "东湾村代办点"),
            ("distance_km", "25.5"),
            ("fare", "14"),
            ("agent_phone", " "),
        ],
    );
    ok(
        "/console/townships",
        &[
            ("code", "431023103"),
            ("name", "新场镇"),
            ("phone", "13607310303"),
        ],
    );
    ok(
        "/console/points",
        &[
            ("number", "301"),
            ("name", "新场村代办点"),
            ("township", "431023103"),
            ("distance_km", "12.5"),
            ("fare", "15"),
            ("agent_phone", "13607310301"),
        ],
    );
    let part = district_part(d);
    assert_eq!(point(&part, 102).agent_phone, None);
    assert_eq!(
        township(&part, "431023103").phone.as_deref(),
        Some("13607310303")
    );
    assert_eq!(
        point(&part, 301).agent_phone.as_deref(),
        Some("13607310301")
    );

    // Bad numbers: a clear reason, the form refused whole, nothing changed.
    let before = snapshot(d);
    let point_edit = |phone: &str| {
        pairs(&[
            ("name", "改了名的代办点"),
            ("distance_km", "30"),
            ("fare", "20"),
            ("agent_phone", phone),
        ])
    };
    let cases: Vec<(String, Fields, &str)> = vec![
        (
            township_a.clone(),
            pairs(&[("name", "改了名的镇"), ("phone", "12345")]),
            "值班手机：手机号码应为11位数字，现为5位",
        ),
        (
            township_a.clone(),
            pairs(&[("name", "改了名的镇"), ("phone", "10086")]),
            "值班手机：手机号码应为11位数字，现为5位",
        ),
        (
            "/console/points/101".into(),
            point_edit("10086"),
            "代办点101：代理员手机：手机号码应为11位数字，现为5位",
        ),
        (
            "/console/points/101".into(),
            point_edit("12807310101"),
            "代理员手机须为大陆手机号码",
        ),
        (
            "/console/points/101".into(),
            point_edit("0731-8888-888"),
            "代理员手机须为大陆手机号码",
        ),
        (
            "/console/points/101".into(),
            point_edit("139-0731-01O1"),
            "代理员手机只能包含数字",
        ),
        (
            "/console/townships".into(),
            pairs(&[
                ("code", "431023104"),
                ("name", "又一镇"),
                ("phone", "12345"),
            ]),
            "值班手机：手机号码应为11位数字",
        ),
        (
            "/console/points".into(),
            pairs(&[
                ("number", "302"),
                ("name", "又一代办点"),
                ("township", "431023103"),
                ("distance_km", "3"),
                ("fare", "4"),
                ("agent_phone", "10086"),
            ]),
            "代理员手机：手机号码应为11位数字",
        ),
    ];
    for (path, fields, reason) in &cases {
        let (status, page) = post_form(d, path, &admin, &csrf, fields);
        assert_eq!(status, 400, "{path} {fields:?}: {page}");
        assert!(
            page.contains("未保存，请修改后重试") && page.contains(reason),
            "{path} {fields:?}: want {reason}: {page}"
        );
    }
    let after = snapshot(d);
    assert!(
        after == before,
        "bad phones changed: {}",
        changed(&before, &after)
    );

    // The lists show every phone masked; only the district admin's forms hold them in full.
    let part = district_part(d);
    let phones: Vec<String> = part
        .townships
        .iter()
        .filter_map(|t| t.phone.clone())
        .chain(part.points.iter().filter_map(|p| p.agent_phone.clone()))
        .collect();
    assert!(phones.contains(&"15807312222".to_owned()), "{phones:?}");
    let (_, page) = get(d, "/console/townships", &admin);
    let p101 = row(&page, r#"data-point="101""#);
    assert!(
        p101.contains(r#"<td class="agent_phone">158****2222</td>"#)
            && p101.contains(r#"value="15807312222""#),
        "{p101}"
    );
    assert!(
        row(&page, r#"data-point="102""#).contains(r#"<td class="agent_phone"></td>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<span class="phone">136****0808</span>"#)
            && page.contains(
                r#"name="phone" inputmode="tel" placeholder="不填请留空" value="13607310808""#
            ),
        "{page}"
    );
    sync_upward(t);
    assert_eq!(district_part(t), part);
    let reader = session(d, "auditor", STAFF_PASSWORD);
    let clerk = session(t, "clerk", STAFF_PASSWORD);
    for (server, cookie, who) in [
        (d, &reader, "district auditor"),
        (t, &clerk, "township clerk"),
    ] {
        let (status, page) = get(server, "/console/townships", cookie);
        assert_eq!(status, 200, "{who}: {page}");
        assert!(
            page.contains(r#"<span class="phone">136****0808</span>"#),
            "{who}: {page}"
        );
        let p101 = row(&page, r#"data-point="101""#);
        assert!(
            p101.contains(r#"<td class="agent_phone">158****2222</td>"#),
            "{who}: {p101}"
        );
        assert!(
            row(&page, r#"data-point="103""#)
                .contains(r#"<td class="agent_phone">139****0103</td>"#),
            "{who}: {page}"
        );
        for full in &phones {
            assert!(
                !page.contains(full.as_str()),
                "{who} sees {full} in full: {page}"
            );
        }
        assert!(!page.contains(r#"name="agent_phone""#), "{who}: {page}");
    }
}

// ---- markup ----

const ITEM_XSS: &str = "<script>alert('item')</script>代办事项";
const MATERIAL_XSS: &str = "<img src=x onerror=alert('m')>申请书";
const TOWNSHIP_XSS: &str = "<svg onload=alert('t')>新镇";
const POINT_XSS: &str = "\"><iframe src=javascript:alert('p')>点";

#[test]
fn markup_in_items_townships_and_points_is_shown_as_text() {
    let c = county();
    let (d, t) = (&c.district, &c.township);
    let admin = session(d, "dadmin", STAFF_PASSWORD);
    let csrf = csrf_of(d, &admin);
    let mut item = Catalog::demo().item("MZ007").unwrap().clone();
    item.code = "XSS01".into();
    let form = item_form(
        &item,
        &[
            ("name", ITEM_XSS),
            ("materials", &format!("{MATERIAL_XSS}|原件|1")),
            ("category", "<b>类别</b>"),
        ],
    );
    assert_eq!(
        post_form(d, "/console/catalog", &admin, &csrf, &form).0,
        303
    );
    let own = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let township = own(&[("code", "431023109"), ("name", TOWNSHIP_XSS)]);
    assert_eq!(
        post_form(d, "/console/townships", &admin, &csrf, &township).0,
        303
    );
    let point = own(&[
        ("number", "109"),
        ("name", POINT_XSS),
        ("township", TOWNSHIP_A),
        ("distance_km", "3"),
        ("fare", "4"),
    ]);
    assert_eq!(
        post_form(d, "/console/points", &admin, &csrf, &point).0,
        303
    );
    sync_upward(t);
    let clerk = session(t, "clerk", STAFF_PASSWORD);

    let escaped = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let pages = [
        (d, "/console/catalog", &admin, vec![ITEM_XSS]),
        (
            d,
            "/console/catalog/XSS01",
            &admin,
            vec![ITEM_XSS, MATERIAL_XSS],
        ),
        (
            t,
            "/console/catalog/XSS01",
            &clerk,
            vec![ITEM_XSS, MATERIAL_XSS],
        ),
        (
            d,
            "/console/townships",
            &admin,
            vec![TOWNSHIP_XSS, POINT_XSS],
        ),
        (t, "/console/townships", &clerk, vec![POINT_XSS]),
    ];
    for (server, path, cookie, shown) in pages {
        let (status, html) = get(server, path, cookie);
        assert_eq!(status, 200, "{path}: {html}");
        for raw in [
            ITEM_XSS,
            MATERIAL_XSS,
            TOWNSHIP_XSS,
            POINT_XSS,
            "<b>类别</b>",
        ] {
            assert!(!html.contains(raw), "{path}: {raw} unescaped:\n{html}");
        }
        for tag in ["<script", "<img", "<svg", "<iframe", "<b>"] {
            assert!(!html.contains(tag), "{path}: {tag} in the page:\n{html}");
        }
        for text in shown {
            assert!(
                html.contains(&escaped(text)),
                "{path}: {text} not shown as text:\n{html}"
            );
        }
    }
}
