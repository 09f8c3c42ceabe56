//! The README's main job (the three-level demo) and the scripted offline village day run
//! and tell the stories they should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

/// The example binary cargo builds next to this test's binary (target/<profile>/examples).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built; run `cargo test` (which builds examples)",
        path.display()
    );
    path
}

#[test]
fn village_day_runs_and_reports_the_day() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(example("village_day"))
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "village_day failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "登记 0101010000",    // ticket numbers of point 101, device 01
        "拒绝登记：身份证号", // the bad form is refused with a reason
        "待补正材料，缺：",   // one-time list of missing materials
        "已转窗口办理",
        "补正材料已提交",
        "黄灯",
        "红灯",
        "为民服务全程代理承办单",
        "查询进度",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // The store is encrypted: no applicant name from the output is in the file in clear.
    let db = std::fs::read(dir.path().join("village-101.db")).unwrap();
    let name_line = stdout
        .lines()
        .find(|l| l.starts_with("申 请 人："))
        .unwrap();
    let name = name_line.trim_start_matches("申 请 人：").trim();
    assert!(!name.is_empty());
    assert!(!db.windows(name.len()).any(|w| w == name.as_bytes()));
}

/// README's main job: the three levels on loopback tell the whole story and agree.
#[test]
fn three_level_demo_runs_and_every_level_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(example("demo"))
        .arg(dir.path().join("demo"))
        .arg("--exit")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "区县服务器（示范县）  http://127.0.0.1:",
        "乡镇服务器（柏林镇）  http://127.0.0.1:",
        "同步 平板 → 乡镇：上传 3 件",
        "已转窗口办理",
        "窗口  → 已办结",
        "为民服务全程代理承办单",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("== 三级状态一致"))
        .skip(2)
        .take(3)
        .collect();
    assert_eq!(table.len(), 3, "{stdout}");
    for row in table {
        assert!(row.contains("  一致  "), "levels disagree: {row}");
    }
    assert_eq!(
        stdout.matches("已送达 / 已送达 / 已送达").count(),
        2,
        "{stdout}"
    );
    // The township's SMS gateway invited both applicants to rate and answered a query.
    let sms: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("== 短信"))
        .filter(|l| l.starts_with("→ "))
        .collect();
    assert!(
        sms.iter().filter(|l| l.contains("请评价")).count() >= 2,
        "{stdout}"
    );
    assert!(sms.iter().any(|l| l.contains("）已送达")), "{stdout}");
    assert!(
        sms.iter().all(|l| l.contains("****")),
        "phones masked: {stdout}"
    );
    // A non-empty directory is refused rather than mixed into.
    let again = Command::new(example("demo"))
        .arg(dir.path().join("demo"))
        .arg("--exit")
        .output()
        .unwrap();
    assert!(!again.status.success());
}
