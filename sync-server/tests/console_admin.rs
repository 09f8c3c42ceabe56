//! The console's administration pages over real HTTP to the `sync-server` binary: staff
//! accounts (open, disable, re-enable, reset a password), enrollment codes, the audit log;
//! who may open them, CSRF on every form, escaping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use agent_core::domain::catalog::Catalog;
use agent_core::sync::client::sync_now;

use support::console::{csrf_field, get, post, session, sign_in};
use support::{
    add_staff, cli, district_and_township, init_district, init_township, new_tablet, serve,
    start_township, sync_upward, tablet, Server, STAFF_PASSWORD, TOWNSHIP_A, TOWNSHIP_B,
};

const PASSWORD: &str = "柏林镇-2026-secret";

/// The CSRF token of `cookie`'s session, read from a page it may open.
fn csrf_of(server: &Server, cookie: &str, path: &str) -> String {
    let (status, page) = get(server, path, cookie);
    assert_eq!(status, 200, "{path}: {page}");
    csrf_field(&page)
}

/// The table row of `login` on the accounts page.
fn account_row<'a>(page: &'a str, login: &str) -> &'a str {
    let start = page
        .find(&format!(r#"<tr data-login="{login}">"#))
        .unwrap_or_else(|| panic!("no row for {login}: {page}"));
    let end = start + page[start..].find("</tr>").unwrap();
    &page[start..end]
}

/// The account's state cell: 启用 or 停用.
fn state_of(page: &str, login: &str) -> &'static str {
    let row = account_row(page, login);
    if row.contains(r#"<td class="state"><span class="error">停用"#) {
        "停用"
    } else {
        assert!(row.contains(r#"<td class="state">启用"#), "{row}");
        "启用"
    }
}

/// The code shown on the page that issued it.
fn shown_code(page: &str) -> String {
    let at = page
        .find(r#"id="code""#)
        .unwrap_or_else(|| panic!("{page}"));
    let rest = &page[at..];
    let text = &rest[rest.find('>').unwrap() + 1..rest.find("</p>").unwrap()];
    text.trim().to_owned()
}

fn db(server: &Server) -> rusqlite::Connection {
    rusqlite::Connection::open(server.data.join("server.db")).unwrap()
}

fn count(server: &Server, sql: &str) -> i64 {
    db(server).query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn a_township_admin_opens_disables_enables_and_resets_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_township(dir.path());
    assert!(add_staff(&township.data, "admin", "township_admin", PASSWORD).0);
    let admin = session(&township, "admin", PASSWORD);

    // The township's accounts; no way to disable oneself.
    let (status, page) = get(&township, "/console/staff", &admin);
    assert_eq!(status, 200, "{page}");
    assert!(
        account_row(&page, "clerk").contains("乡镇工作人员"),
        "{page}"
    );
    assert!(account_row(&page, "admin").contains("乡镇管理员"), "{page}");
    assert!(account_row(&page, "clerk").contains("/console/staff/disable"));
    assert!(!account_row(&page, "admin").contains("/console/staff/disable"));
    let csrf = csrf_field(&page);

    // An account opened in the console signs in.
    let new_password = "张三的密码-2026";
    let (status, to) = post(
        &township,
        "/console/staff",
        &admin,
        &[
            ("csrf", &csrf),
            ("login", "zhang.san"),
            ("name", "张三"),
            ("role", "township_staff"),
            ("password", new_password),
        ],
    );
    assert_eq!((status, to.as_str()), (303, "/console/staff"));
    let (_, page) = get(&township, "/console/staff", &admin);
    let row = account_row(&page, "zhang.san");
    assert!(
        row.contains("张三") && row.contains("乡镇工作人员"),
        "{row}"
    );
    assert_eq!(state_of(&page, "zhang.san"), "启用");
    let zhang = session(&township, "zhang.san", new_password);
    assert_eq!(get(&township, "/console", &zhang).0, 200);

    // Roles of another level, or a login taken, are refused and open nothing.
    for role in ["window_staff", "district_admin"] {
        let (status, page) = post(
            &township,
            "/console/staff",
            &admin,
            &[
                ("csrf", &csrf),
                ("login", "wrong.level"),
                ("name", "王五"),
                ("role", role),
                ("password", PASSWORD),
            ],
        );
        assert_eq!(status, 403, "{role}: {page}");
    }
    let (status, page) = post(
        &township,
        "/console/staff",
        &admin,
        &[
            ("csrf", &csrf),
            ("login", "zhang.san"),
            ("name", "另一个张三"),
            ("role", "township_staff"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(status, 400);
    assert!(page.contains("已被使用"), "{page}");
    assert_eq!(
        count(
            &township,
            "SELECT COUNT(*) FROM staff_accounts WHERE login = 'wrong.level' OR name = '另一个张三'"
        ),
        0
    );

    // A name with markup is shown as text.
    let (status, _) = post(
        &township,
        "/console/staff",
        &admin,
        &[
            ("csrf", &csrf),
            ("login", "xss"),
            ("name", "<script>alert(1)</script>"),
            ("role", "auditor"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(status, 303);
    let (_, page) = get(&township, "/console/staff", &admin);
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(
        account_row(&page, "xss").contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );

    // Disabling ends the account's session and its sign-ins; the admin cannot disable itself.
    let disable = |login: &str, csrf: &str| {
        post(
            &township,
            "/console/staff/disable",
            &admin,
            &[("csrf", csrf), ("login", login)],
        )
    };
    assert_eq!(disable("zhang.san", &csrf), (303, "/console/staff".into()));
    assert_eq!(
        get(&township, "/console", &zhang),
        (303, "/console/login".to_owned())
    );
    assert_eq!(sign_in(&township, "zhang.san", new_password).status(), 401);
    let (_, page) = get(&township, "/console/staff", &admin);
    assert_eq!(state_of(&page, "zhang.san"), "停用");
    let (status, page) = disable("admin", &csrf);
    assert_eq!(status, 400);
    assert!(page.contains("不能停用自己的账号"), "{page}");
    assert_eq!(state_of(&page, "admin"), "启用");
    assert_eq!(get(&township, "/console/staff", &admin).0, 200);

    // Re-enabled, it signs in again; a password reset ends that session and the old password.
    let (status, _) = post(
        &township,
        "/console/staff/enable",
        &admin,
        &[("csrf", &csrf), ("login", "zhang.san")],
    );
    assert_eq!(status, 303);
    // The session it had before stays ended.
    assert_eq!(
        get(&township, "/console", &zhang),
        (303, "/console/login".to_owned())
    );
    let zhang = session(&township, "zhang.san", new_password);
    let reset = |password: &str| {
        post(
            &township,
            "/console/staff/password",
            &admin,
            &[
                ("csrf", &csrf),
                ("login", "zhang.san"),
                ("password", password),
            ],
        )
    };
    let (status, page) = reset("short");
    assert_eq!(status, 400);
    assert!(page.contains("密码至少8位"), "{page}");
    assert_eq!(get(&township, "/console", &zhang).0, 200);
    let reset_password = "重置后的密码-2026";
    assert_eq!(reset(reset_password).0, 303);
    assert_eq!(
        get(&township, "/console", &zhang),
        (303, "/console/login".to_owned())
    );
    assert_eq!(sign_in(&township, "zhang.san", new_password).status(), 401);
    session(&township, "zhang.san", reset_password);

    // Every change is in the audit log, under the admin, naming the account.
    let logged: Vec<(String, String)> = {
        let conn = db(&township);
        let mut stmt = conn
            .prepare("SELECT action, detail FROM audit_log WHERE login = 'admin' ORDER BY id")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows
    };
    let expected = [
        ("开设账号", "zhang.san"),
        ("开设账号", "xss"),
        ("停用账号", "zhang.san"),
        ("启用账号", "zhang.san"),
        ("重置密码", "zhang.san"),
    ];
    let changes: Vec<(&str, &str)> = logged
        .iter()
        .filter(|(action, _)| action != "登录")
        .map(|(a, d)| (a.as_str(), d.as_str()))
        .collect();
    assert_eq!(changes, expected);
}

#[test]
fn other_roles_and_forged_forms_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_township(dir.path());
    assert!(add_staff(&township.data, "admin", "township_admin", PASSWORD).0);
    let clerk = session(&township, "clerk", STAFF_PASSWORD);
    let clerk_csrf = csrf_of(&township, &clerk, "/console");
    let last_audit = count(&township, "SELECT IFNULL(MAX(id), 0) FROM audit_log");

    // Township staff: every administration page and form is refused, its own valid CSRF
    // token notwithstanding.
    for path in ["/console/staff", "/console/enroll", "/console/audit"] {
        let (status, page) = get(&township, path, &clerk);
        assert_eq!(status, 403, "{path}: {page}");
    }
    let forms: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "/console/staff",
            vec![
                ("login", "intruder"),
                ("name", "入侵者"),
                ("role", "township_admin"),
                ("password", PASSWORD),
            ],
        ),
        ("/console/staff/disable", vec![("login", "admin")]),
        ("/console/staff/enable", vec![("login", "admin")]),
        (
            "/console/staff/password",
            vec![("login", "admin"), ("password", "taken-over-2026")],
        ),
        ("/console/enroll", vec![("point", "101"), ("hours", "24")]),
    ];
    for (path, fields) in &forms {
        let mut form = vec![("csrf", clerk_csrf.as_str())];
        form.extend(fields.iter().copied());
        let (status, page) = post(&township, path, &clerk, &form);
        assert_eq!(status, 403, "{path}: {page}");
    }

    // The admin's forms without its CSRF token, or with another session's, are refused.
    let admin = session(&township, "admin", PASSWORD);
    for csrf in [None, Some("forged"), Some(clerk_csrf.as_str())] {
        for (path, fields) in &forms {
            let mut form: Vec<(&str, &str)> = csrf.map(|c| ("csrf", c)).into_iter().collect();
            let target = [("login", "clerk")];
            let fields = if path.contains("/staff/") {
                &target[..]
            } else {
                &fields[..]
            };
            form.extend(fields.iter().copied());
            let (status, page) = post(&township, path, &admin, &form);
            assert_eq!(status, 403, "{path} {csrf:?}: {page}");
        }
    }

    // Nothing changed: no account opened, none disabled, no password changed, no code.
    assert_eq!(
        count(
            &township,
            "SELECT COUNT(*) FROM staff_accounts WHERE login = 'intruder' OR disabled"
        ),
        0
    );
    assert_eq!(count(&township, "SELECT COUNT(*) FROM enroll_codes"), 0);
    assert_eq!(get(&township, "/console", &clerk).0, 200);
    session(&township, "admin", PASSWORD);
    session(&township, "clerk", STAFF_PASSWORD);
    let changes = count(
        &township,
        &format!("SELECT COUNT(*) FROM audit_log WHERE id > {last_audit} AND action != '登录'"),
    );
    assert_eq!(changes, 0, "only sign-ins were recorded");

    // Signed out: sent to sign in.
    for path in ["/console/staff", "/console/enroll", "/console/audit"] {
        assert_eq!(
            get(&township, path, ""),
            (303, "/console/login".to_owned()),
            "{path}"
        );
    }
    let (status, _) = post(
        &township,
        "/console/staff",
        "",
        &[("login", "anon"), ("role", "auditor")],
    );
    assert_eq!(status, 303);
}

#[test]
fn a_township_admin_issues_a_code_a_tablet_enrolls_with_and_an_auditor_reads_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_township(dir.path());
    assert!(add_staff(&township.data, "admin", "township_admin", PASSWORD).0);
    assert!(add_staff(&township.data, "shen", "auditor", PASSWORD).0);
    let admin = session(&township, "admin", PASSWORD);

    // The township's points only.
    let (status, page) = get(&township, "/console/enroll", &admin);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(r#"<option value="101">"#), "{page}");
    assert!(!page.contains(r#"<option value="201">"#), "{page}");
    let csrf = csrf_field(&page);
    let issue = |fields: &[(&str, &str)]| {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        post(&township, "/console/enroll", &admin, &form)
    };

    // The code is shown once with what it is for; a tablet enrolls with it and syncs.
    let (status, page) = issue(&[("point", "101"), ("device", "7"), ("hours", "24")]);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("代办点101 设备07"), "{page}");
    let code = shown_code(&page);
    assert_eq!(code.len(), 14, "{code}");
    assert_eq!(code.matches('-').count(), 2, "{code}");
    let mut tab = new_tablet(dir.path(), 101, 7);
    agent_core::sync::enroll::enroll(&mut tab, township.url.as_str(), &code).unwrap();
    sync_now(&mut tab, township.url.as_str()).unwrap();
    let (_, page) = get(&township, "/console/enroll", &admin);
    let at = page.find(r#"data-device="101-7""#).expect("device listed");
    assert!(page[at..].split("</tr>").next().unwrap().contains("在用"));

    // Another township's point, a bad number, a used device number: refused, nothing issued.
    let codes = count(&township, "SELECT COUNT(*) FROM enroll_codes");
    let (status, page) = issue(&[("point", "201"), ("hours", "24")]);
    assert_eq!(status, 403, "{page}");
    for (fields, says) in [
        (vec![("point", "101"), ("hours", "abc")], "有效期"),
        (vec![("point", "101"), ("hours", "0")], "有效期"),
        (vec![("point", "101"), ("hours", "99999999999")], "有效期"),
        (vec![("point", "101"), ("device", "100")], "设备编号"),
        (vec![("point", "x")], "请选择代办点"),
        (vec![("point", "101"), ("device", "7")], "已使用过"),
    ] {
        let (status, page) = issue(&fields);
        assert_eq!(status, 400, "{fields:?}: {page}");
        assert!(page.contains(says), "{fields:?}: {page}");
    }
    assert_eq!(count(&township, "SELECT COUNT(*) FROM enroll_codes"), codes);

    // The auditor reads the log, never the admin pages.
    let auditor = session(&township, "shen", PASSWORD);
    for path in ["/console/staff", "/console/enroll"] {
        assert_eq!(get(&township, path, &auditor).0, 403, "{path}");
    }
    let (status, log) = get(&township, "/console/audit", &auditor);
    assert_eq!(status, 200, "{log}");
    assert!(
        log.contains("签发注册码") && log.contains("代办点101 设备07"),
        "{log}"
    );
    assert!(
        log.contains("(命令行)") && log.contains("开设账号"),
        "{log}"
    );
    // Newest first: the auditor's own sign-in comes before the code.
    assert!(log.find("<td>shen</td>").unwrap() < log.find("签发注册码").unwrap());
    let (_, mine) = get(&township, "/console/audit?login=admin", &auditor);
    assert!(mine.contains("签发注册码"), "{mine}");
    assert!(
        !mine.contains("<td>shen</td>") && !mine.contains("(命令行)"),
        "{mine}"
    );
    let (_, none) = get(&township, "/console/audit?ticket=010101999990", &auditor);
    assert!(none.contains("没有符合条件的记录"), "{none}");
    assert_eq!(get(&township, "/console/audit?before=abc", &auditor).0, 400);

    // The township admin reads only the rows of its township's accounts.
    let (status, log) = get(&township, "/console/audit", &admin);
    assert_eq!(status, 200, "{log}");
    assert!(log.contains("签发注册码"), "{log}");
    assert!(!log.contains("(命令行)"), "{log}");

    // A hundred rows a page, newest first, and a link to the earlier ones.
    {
        let conn = db(&township);
        for i in 0..150 {
            conn.execute(
                "INSERT INTO audit_log (at, login, action, detail) VALUES (?1, 'shen', '查看', ?2)",
                rusqlite::params!["2026-03-02T09:00:00+08:00", format!("第{i:03}条")],
            )
            .unwrap();
        }
    }
    let (_, first) = get(&township, "/console/audit?login=shen", &auditor);
    assert_eq!(first.matches("<tr>").count(), 101, "a header and 100 rows");
    assert!(first.contains("第149条") && !first.contains("第049条"));
    let at = first.find(">更早<").expect("a link to earlier rows");
    let href = &first[..at];
    let href = &href[href.rfind("href=\"").unwrap() + 6..href.rfind('"').unwrap()];
    let href = href.replace("&amp;", "&");
    assert!(
        href.contains("login=shen") && href.contains("before="),
        "{href}"
    );
    let (status, earlier) = get(&township, &href, &auditor);
    assert_eq!(status, 200, "{earlier}");
    assert!(earlier.contains("第049条") && !earlier.contains("第149条"));
    assert!(!earlier.contains(">更早<"), "the last page");
}

#[test]
fn a_district_admin_opens_window_staff_and_issues_township_codes() {
    let dir = tempfile::tempdir().unwrap();
    let district_data = dir.path().join("district");
    init_district(&district_data);
    let catalog = dir.path().join("catalog.json");
    std::fs::write(&catalog, serde_json::to_string(&Catalog::demo()).unwrap()).unwrap();
    cli(
        &["import-catalog", catalog.to_str().unwrap()],
        &district_data,
    );
    assert!(add_staff(&district_data, "zhao", "district_admin", PASSWORD).0);
    let district = serve(&district_data);
    let township = start_township(dir.path(), TOWNSHIP_A, &district);
    let _tab = tablet(dir.path(), &township, 101, 1);
    sync_upward(&township);
    let admin = session(&district, "zhao", PASSWORD);

    // District roles; the catalog's windows and the general window to choose from.
    let window = Catalog::demo()
        .items
        .into_iter()
        .find_map(|i| i.window)
        .expect("a window in the demo catalog");
    let (status, page) = get(&district, "/console/staff", &admin);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!(r#"<option value="{window}">"#)),
        "{page}"
    );
    assert!(page.contains("综合窗口（全部转办件）"), "{page}");
    assert!(page.contains(r#"<option value="window_staff">"#), "{page}");
    assert!(
        !page.contains(r#"<option value="township_staff">"#),
        "{page}"
    );
    let csrf = csrf_field(&page);
    let open = |login: &str, role: &str, window: &str| {
        post(
            &district,
            "/console/staff",
            &admin,
            &[
                ("csrf", &csrf),
                ("login", login),
                ("name", "赵六"),
                ("role", role),
                ("window", window),
                ("password", PASSWORD),
            ],
        )
    };
    assert_eq!(open("gongan", "window_staff", &window).0, 303);
    assert_eq!(open("zonghe", "window_staff", "").0, 303);
    let (status, page) = open("nowhere", "window_staff", "不存在的窗口");
    assert_eq!(status, 400);
    assert!(page.contains("不在事项目录中"), "{page}");
    assert_eq!(open("clerk2", "township_staff", "").0, 403);
    let (_, page) = get(&district, "/console/staff", &admin);
    assert!(account_row(&page, "gongan").contains(&window), "{page}");
    assert!(account_row(&page, "zonghe").contains("综合窗口（全部转办件）"));
    assert!(!page.contains("nowhere") && !page.contains("clerk2"));
    session(&district, "gongan", PASSWORD);

    // Township servers and the devices of their points; a code for the second township,
    // with which its new server enrolls.
    let (status, page) = get(&district, "/console/enroll", &admin);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!(r#"<option value="{TOWNSHIP_B}">"#)),
        "{page}"
    );
    assert!(page.contains(r#"data-device="101-1""#), "{page}");
    let (status, page) = post(
        &district,
        "/console/enroll",
        &admin,
        &[("csrf", &csrf), ("township", TOWNSHIP_B), ("hours", "")],
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("乡镇{TOWNSHIP_B}的服务器")),
        "{page}"
    );
    let code = shown_code(&page);
    let b_data = dir.path().join("township-b");
    init_township(&b_data, TOWNSHIP_B, &district.url);
    cli(&["enroll", "--code", &code], &b_data);
    let (_, page) = get(&district, "/console/enroll", &admin);
    let at = page.rfind(&format!("<td>{TOWNSHIP_B}</td>")).unwrap();
    assert!(page[at..].split("</tr>").next().unwrap().contains("已注册"));
    let (status, page) = post(
        &district,
        "/console/enroll",
        &admin,
        &[("csrf", &csrf), ("township", "999999999")],
    );
    assert_eq!(status, 400);
    assert!(page.contains("不在区县目录中"), "{page}");

    // Its audit log has all of it; window staff may not read it.
    let (status, log) = get(&district, "/console/audit", &admin);
    assert_eq!(status, 200, "{log}");
    assert!(log.contains(&format!("乡镇{TOWNSHIP_B}的服务器")), "{log}");
    assert!(log.contains("<td>gongan</td>"), "{log}");
    let window_staff = session(&district, "window", STAFF_PASSWORD);
    assert_eq!(get(&district, "/console/audit", &window_staff).0, 403);
    assert_eq!(get(&district, "/console/staff", &window_staff).0, 403);
}

#[test]
fn a_district_admin_uploads_next_years_calendar_and_it_reaches_the_township() {
    use chrono::Datelike;
    let dir = tempfile::tempdir().unwrap();
    let (district, township) = district_and_township(dir.path());
    assert!(add_staff(&district.data, "zhao", "district_admin", PASSWORD).0);
    assert!(add_staff(&township.data, "li.wen", "township_staff", PASSWORD).0);
    let today = sync_server::now().date_naive();
    let next = today.year() + 1;
    let clerk = session(&township, "li.wen", PASSWORD);
    // From November, every list page warns while next year is missing.
    let (_, list) = get(&township, "/console", &clerk);
    assert_eq!(
        list.contains("calendar-missing"),
        today.month() >= 11,
        "{list}"
    );

    // A clerk reads the calendar but may not upload one.
    let (status, page) = get(&township, "/console/calendar", &clerk);
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains(&format!("<td>{next}</td>")));
    assert!(!page.contains("导入年度日历"));
    let csrf = csrf_field(&page);
    let csv = format!("date,kind,name\n{next}-01-01,holiday,元旦\n");
    let (status, _) = post(
        &township,
        "/console/calendar",
        &clerk,
        &[("csrf", &csrf), ("csv", &csv)],
    );
    assert_eq!(status, 403);

    // The district admin: a malformed schedule is refused with its line, nothing published.
    let admin = session(&district, "zhao", PASSWORD);
    let csrf = csrf_of(&district, &admin, "/console/calendar");
    let bad = format!("date,kind,name\n{next}-01-01,holiday,元旦\n{next}-01-01,holiday,元旦\n");
    let (status, page) = post(
        &district,
        "/console/calendar",
        &admin,
        &[("csrf", &csrf), ("csv", &bad)],
    );
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("重复"), "{page}");
    assert_eq!(
        count(
            &district,
            "SELECT COUNT(*) FROM audit_log WHERE action = '导入工作日历'"
        ),
        0
    );
    let (status, to) = post(
        &district,
        "/console/calendar",
        &admin,
        &[("csrf", &csrf), ("csv", &csv)],
    );
    assert_eq!((status, to.as_str()), (303, "/console/calendar"));
    let (_, page) = get(&district, "/console/calendar", &admin);
    assert!(page.contains(&format!("<td>{next}</td>")), "{page}");
    assert_eq!(
        count(
            &district,
            "SELECT COUNT(*) FROM audit_log WHERE action = '导入工作日历'"
        ),
        1
    );

    // It flows down: the township's calendar covers next year and the warning is gone.
    sync_upward(&township);
    let (_, page) = get(&township, "/console/calendar", &clerk);
    assert!(page.contains(&format!("<td>{next}</td>")), "{page}");
    let (_, list) = get(&township, "/console", &clerk);
    assert!(!list.contains("calendar-missing"));
}

#[test]
fn a_township_admin_stops_a_lost_tablet_and_its_next_sync_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_township(dir.path());
    let mut lost = tablet(dir.path(), &township, 101, 1);
    sync_now(&mut lost, township.url.as_str()).unwrap();
    assert!(add_staff(&township.data, "zhang.admin", "township_admin", PASSWORD).0);
    assert!(add_staff(&township.data, "li.wen", "township_staff", PASSWORD).0);
    let form = |csrf: &str, reason: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("point".to_owned(), "101".to_owned()),
            ("device".to_owned(), "1".to_owned()),
            ("reason".to_owned(), reason.to_owned()),
        ]
    };
    let post_form = |cookie: &str, fields: Vec<(String, String)>| {
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        post(&township, "/console/enroll/revoke", cookie, &fields)
    };

    // A clerk may not; the admin must give a reason.
    let clerk = session(&township, "li.wen", PASSWORD);
    let csrf = csrf_of(&township, &clerk, "/console");
    assert_eq!(post_form(&clerk, form(&csrf, "丢失")).0, 403);
    let admin = session(&township, "zhang.admin", PASSWORD);
    let csrf = csrf_of(&township, &admin, "/console/enroll");
    let (status, page) = post_form(&admin, form(&csrf, ""));
    assert_eq!(status, 400, "{page}");
    assert!(
        sync_now(&mut lost, township.url.as_str()).is_ok(),
        "nothing stopped yet"
    );

    let (status, to) = post_form(&admin, form(&csrf, "平板丢失"));
    assert_eq!((status, to.as_str()), (303, "/console/enroll"));
    let (_, page) = get(&township, "/console/enroll", &admin);
    assert!(page.contains("已停用：平板丢失"), "{page}");
    assert_eq!(
        count(
            &township,
            "SELECT COUNT(*) FROM audit_log WHERE action = '停用设备'"
        ),
        1
    );
    let refused = sync_now(&mut lost, township.url.as_str());
    assert!(
        refused.is_err(),
        "a stopped tablet still syncs: {refused:?}"
    );
}
