//! README's main job: the three levels of the county on loopback, in one process.
//!
//! `cargo run --example demo [DIR] [--exit]` starts a district server (示范县) and a township
//! server (柏林镇) on the embedded SQLite default, with the demo directory; a village tablet
//! at 东坪村 registers tickets offline and syncs; the township handles one ticket itself and
//! forwards one to a district window, which completes it; results come back down and are
//! delivered. The township runs the SMS gateway on an smstools spool in DIR (no modem: the
//! texts it would send are printed, and an applicant's status query is answered). It prints
//! what happened at each level and where the servers listen, then keeps serving until Ctrl-C
//! (`--exit`: stop after the story). DIR (default: a temporary directory) must be new or
//! empty.

use std::path::{Path, PathBuf};

use agent_core::crypto::StoreKey;
use agent_core::demo;
use agent_core::domain::event::{EventDraft, EventKind};
use agent_core::domain::lifecycle::Status;
use agent_core::domain::mask::{mask_name, mask_phone};
use agent_core::domain::number::TicketNumber;
use agent_core::domain::receipt::receipt_text;
use agent_core::store::{system_clock, Store, StoreOptions};
use agent_core::sync::client::{sync_now, SyncReport};
use agent_core::sync::enroll::enroll;
use serde_json::{json, Value};
use sync_server::accounts::{NewAccount, StaffRole};
use sync_server::admin;
use sync_server::config::{Config, ServerRole, DEFAULT_LISTEN};
use sync_server::enroll::CodeFor;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const TOWNSHIP: &str = "431023101";
/// The township's smsd spool, in its data directory.
const SPOOL: &str = "sms-spool";

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let exit = args.iter().any(|a| a == "--exit");
    let tmp = tempfile::tempdir()?;
    let dir = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    if std::fs::read_dir(&dir)?.next().is_some() {
        return Err(format!("{} 不是空目录：请换一个新目录", dir.display()).into());
    }

    // Both servers in this process, each on its own loopback port.
    let runtime = tokio::runtime::Runtime::new()?;
    let district_listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let township_listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let district = format!("http://{}", district_listener.local_addr()?);
    let township = format!("http://{}", township_listener.local_addr()?);
    let district_data = dir.join("district");
    let township_data = dir.join("township");
    setup(&district_data, &township_data, &district)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    for (data, listener) in [
        (district_data, district_listener),
        (township_data, township_listener),
    ] {
        let mut stopped = stopped.clone();
        runtime.spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = admin::serve(&data, listener, shutdown).await {
                eprintln!("server {}: {e}", data.display());
            }
        });
    }
    println!("== 启动服务器 ==");
    println!("区县服务器（示范县）  {district}");
    println!("乡镇服务器（柏林镇）  {township}");

    story(&dir, &district, &township)?;

    println!();
    println!("== 管理平台 ==");
    println!("乡镇：{township}/console  登录名 bailin  密码 {DEMO_PASSWORD}");
    println!(
        "区县：{district}/console  登录名 window1（窗口）或 jiancha（监察）  密码 {DEMO_PASSWORD}"
    );
    println!();
    println!("数据目录：{}", dir.display());
    if !exit {
        println!("服务器仍在运行（同步接口 /v1/sync，办件接口 /api/tickets）。按 Ctrl-C 结束。");
        runtime.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    }
    let _ = stop.send(true);
    Ok(())
}

/// A district with the demo directory, and 柏林镇 under it.
fn setup(district_data: &Path, township_data: &Path, district_url: &str) -> Res<()> {
    // The township's SMS gateway: smstools3's spool, here without smsd or a modem.
    let spool = township_data.join(SPOOL);
    for sub in ["outgoing", "incoming", "checked", "sent", "failed"] {
        std::fs::create_dir_all(spool.join(sub))?;
    }
    let config = |role, name: &str, township: Option<&str>, parent: Option<&str>| Config {
        role,
        name: name.into(),
        server_id: format!("srv-{}", township.unwrap_or("county")),
        listen: DEFAULT_LISTEN.into(),
        township: township.map(str::to_owned),
        parent: parent.map(str::to_owned),
        sync_interval_secs: 0,
        followup_days: sync_server::config::DEFAULT_FOLLOWUP_DAYS,
        sms: None,
        parent_ca: None,
        tls: None,
    };
    admin::init(
        district_data,
        &config(ServerRole::District, "示范县政务服务中心", None, None),
    )?;
    admin::import_directory(
        district_data,
        &serde_json::to_string(&demo::district_directory())?,
    )?;
    admin::init(
        township_data,
        &config(
            ServerRole::Township,
            "柏林镇便民服务中心",
            Some(TOWNSHIP),
            Some(district_url),
        ),
    )?;
    // `init` writes no [sms]: a county adds it by hand, as here.
    let mut toml = std::fs::read_to_string(Config::path(township_data))?;
    toml.push_str(&format!(
        "\n[sms]\ngateway = \"smstools\"\nsign_name = \"柏林镇便民服务\"\n\
         query_number = \"13800731999\"\npoll_secs = 1\n\n[sms.smstools]\nspool = \"{SPOOL}\"\n"
    ));
    std::fs::write(Config::path(township_data), toml)?;
    // Console accounts to look around with (a demo password; a county sets its own).
    admin::add_staff(
        township_data,
        &NewAccount {
            login: "bailin",
            name: "柏林镇办事员",
            role: StaffRole::TownshipStaff,
            window: None,
        },
        DEMO_PASSWORD,
    )?;
    admin::add_staff(
        district_data,
        &NewAccount {
            login: "window1",
            name: "区县综合窗口",
            role: StaffRole::WindowStaff,
            window: None,
        },
        DEMO_PASSWORD,
    )?;
    admin::add_staff(
        district_data,
        &NewAccount {
            login: "jiancha",
            name: "县监察室",
            role: StaffRole::Auditor,
            window: None,
        },
        DEMO_PASSWORD,
    )?;
    Ok(())
}

/// The demo console accounts' password.
const DEMO_PASSWORD: &str = "daiban-demo";

fn story(dir: &Path, district: &str, township: &str) -> Res<()> {
    let staff = Staff::new();
    println!();
    println!("== 注册 ==");
    // The district admin issues a one-time code for 柏林镇's server, which enrolls its key.
    let code = admin::issue_code(
        &dir.join("district"),
        &CodeFor::Township(TOWNSHIP.into()),
        24,
    )?;
    admin::enroll_with_parent(&dir.join("township"), &code.code)?;
    println!("柏林镇服务器用区县签发的注册码 {} 注册", code.code);
    // The township fetches the directory, so it knows its village points.
    staff.sync_upward(township)?;

    println!();
    println!("== 东坪村代办点（离线）登记 ==");
    let mut opts = StoreOptions::new(StoreKey::from_bytes(&[7u8; 32])?, 101, 1, "李秀英");
    opts.clock = system_clock();
    let mut tablet = Store::open(dir.join("village-101.db"), opts)?;
    // The township admin issues a code for the point's tablet; the agent types it in once.
    let target = CodeFor::Device {
        point: 101,
        device: Some(1),
    };
    let code = admin::issue_code(&dir.join("township"), &target, 24)?;
    enroll(&mut tablet, township, &code.code)?;
    println!(
        "平板（代办点101 设备01）用乡镇签发的注册码 {} 注册",
        code.code
    );
    let mut rng = demo::Rng::new(2026);
    let mut numbers: Vec<TicketNumber> = Vec::new();
    // 失业证 (handled at the township), 独生子女证补办 (materials missing),
    // 白酒零售许可证 (a district window's item).
    for (i, code) in ["SB001", "WJ017", "SW005"].into_iter().enumerate() {
        let item = tablet
            .catalog()
            .item(code)
            .ok_or("demo catalog lacks an item")?;
        let form = demo::form(&mut rng, item, i, i != 1);
        let reg = tablet.register(&form)?;
        let t = &reg.view.ticket;
        println!(
            "登记 {}  {}  申请人 {}  {}",
            t.number,
            t.item.name,
            mask_name(&t.applicant.name),
            reg.view.life.status.label()
        );
        numbers.push(t.number.clone());
    }
    let (handled, supplement, forwarded) = (&numbers[0], &numbers[1], &numbers[2]);

    println!();
    println!("== 网络恢复：平板同步 ==");
    report("平板 → 乡镇", &sync_now(&mut tablet, township)?);
    for n in &numbers {
        println!(
            "{n}  {}（乡镇服务器时间为准）",
            tablet.get(n)?.life.status.label()
        );
    }

    println!();
    println!("== 柏林镇便民服务中心办理 ==");
    staff.act(township, "township", handled, "accepted", json!({}))?;
    staff.act(township, "township", handled, "handled", json!({}))?;
    staff.act(
        township,
        "township",
        handled,
        "completed",
        json!({ "outcome": "approved", "certificate_no": "SY2026-0101" }),
    )?;
    staff.act(township, "township", handled, "returned", json!({}))?;
    let missing: Vec<String> = tablet
        .get(supplement)?
        .ticket
        .materials
        .iter()
        .filter(|m| m.state == agent_core::domain::ticket::MaterialState::Missing)
        .map(|m| m.name.clone())
        .collect();
    staff.act(
        township,
        "township",
        supplement,
        "supplement_requested",
        json!({ "missing": missing }),
    )?;
    staff.act(township, "township", forwarded, "accepted", json!({}))?;
    staff.act(
        township,
        "township",
        forwarded,
        "forwarded",
        json!({ "window": "县市场监管局窗口" }),
    )?;
    report("乡镇 → 区县", &staff.sync_upward(township)?);

    println!();
    println!("== 区县政务服务中心窗口办结转办件 ==");
    staff.act(
        district,
        "window",
        forwarded,
        "completed",
        json!({ "outcome": "approved", "certificate_no": "JY2026-0088" }),
    )?;
    report("乡镇 ↔ 区县", &staff.sync_upward(township)?);
    staff.act(township, "township", forwarded, "returned", json!({}))?;

    println!();
    println!("== 结果回到村里 ==");
    report("平板 ↔ 乡镇", &sync_now(&mut tablet, township)?);
    for n in [handled, forwarded] {
        tablet.append(n, &EventDraft::new(EventKind::Delivered, "申请人本人签收"))?;
    }
    tablet.append(
        supplement,
        &EventDraft::new(EventKind::SupplementProvided, "申请人已补齐材料"),
    )?;
    report("平板 → 乡镇", &sync_now(&mut tablet, township)?);
    report("乡镇 → 区县", &staff.sync_upward(township)?);

    println!();
    println!("== 三级状态一致 ==");
    println!("办件编号      平板 / 乡镇 / 区县          办理期限");
    for n in &numbers {
        let v = tablet.get(n)?;
        let t = v.life.status.label();
        let w = staff.status(township, "township", n)?;
        let d = staff.status(district, "reader", n)?;
        let same = if t == w && w == d {
            "一致"
        } else {
            "不一致！"
        };
        let due = v
            .deadline
            .due
            .map(|d| d.to_string())
            .unwrap_or_else(|| "—".into());
        println!("{n}  {t} / {w} / {d}  {same}  {due}");
    }
    let noop = sync_now(&mut tablet, township)?;
    println!(
        "无变化时再同步：{} 次往返，共 {} 字节",
        noop.rounds,
        noop.bytes_up + noop.bytes_down
    );

    println!();
    print!("{}", receipt_text(&tablet.get(forwarded)?));

    println!();
    println!("== 短信（柏林镇短信网关，smstools 目录：{SPOOL}/outgoing）==");
    let spool = dir.join("township").join(SPOOL);
    // What the gateway's rounds caught in passing (a notice goes out only while its state
    // still holds: the story moves faster than a village), then at least the invitations.
    let texts = wait_for_texts(&spool, 2)?;
    // The applicant of the forwarded ticket asks how it stands.
    let asking = tablet
        .get(forwarded)?
        .ticket
        .applicant
        .phone
        .ok_or("demo applicant without a phone")?;
    println!("申请人 {} 发短信：查询{forwarded}", mask_phone(&asking));
    sms_in(&spool, &asking, &format!("查询{forwarded}"))?;
    for (to, text) in wait_for_texts(&spool, texts.len() + 1)? {
        println!("→ {}  {text}", mask_phone(&to));
    }
    Ok(())
}

/// The texts in the spool's `outgoing/` (to whom, what), once there are at least `n` and no
/// more came for two of the gateway's rounds.
fn wait_for_texts(spool: &Path, n: usize) -> Res<Vec<(String, String)>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = (0, std::time::Instant::now());
    loop {
        let mut names: Vec<PathBuf> = std::fs::read_dir(spool.join("outgoing"))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        // daiban-<id>: in the order they were stored.
        names.sort_by_key(|p| {
            p.file_name()
                .and_then(|f| f.to_str()?.strip_prefix("daiban-")?.parse::<i64>().ok())
        });
        if names.len() != seen.0 {
            seen = (names.len(), std::time::Instant::now());
        }
        let quiet = seen.1.elapsed() > std::time::Duration::from_secs(2);
        if (names.len() >= n && quiet) || std::time::Instant::now() > deadline {
            return names.iter().map(|p| read_text(p)).collect();
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// An outgoing spool file as smsd reads it: `To:` and the UTF-16BE body.
fn read_text(path: &Path) -> Res<(String, String)> {
    let bytes = std::fs::read(path)?;
    let split = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or("spool file without a blank line")?;
    let head = String::from_utf8_lossy(&bytes[..split]);
    let to = head
        .lines()
        .find_map(|l| l.strip_prefix("To: 86"))
        .unwrap_or_default()
        .to_owned();
    let units: Vec<u16> = bytes[split + 2..]
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    Ok((to, String::from_utf16_lossy(&units)))
}

/// An inbound text in `incoming/`, as smsd writes one.
fn sms_in(spool: &Path, from: &str, text: &str) -> Res<()> {
    let received = sync_server::now().format("%y-%m-%d %H:%M:%S");
    let mut file = format!("From: 86{from}\nReceived: {received}\nAlphabet: UCS2\n\n").into_bytes();
    for unit in text.encode_utf16() {
        file.extend_from_slice(&unit.to_be_bytes());
    }
    let tmp = spool.join("query.tmp");
    std::fs::write(&tmp, file)?;
    std::fs::rename(tmp, spool.join("incoming").join("GSM1.demo01"))?;
    Ok(())
}

/// The Chinese status label of a ticket view from the API.
fn label(view: &Value) -> Res<&'static str> {
    let status: Status = serde_json::from_value(view["life"]["status"].clone())?;
    Ok(status.label())
}

fn report(link: &str, r: &SyncReport) {
    println!(
        "同步 {link}：上传 {} 件，收到 {} 件更新，{} 次往返，上行 {} 字节，下行 {} 字节",
        r.uploaded, r.downloaded, r.rounds, r.bytes_up, r.bytes_down
    );
}

/// Staff at the counters, through the servers' JSON API, signed in as the demo accounts
/// (once per server).
struct Staff(
    reqwest::blocking::Client,
    std::cell::RefCell<std::collections::HashMap<String, String>>,
);

impl Staff {
    fn new() -> Self {
        // reqwest has no TLS provider of its own here: ring, as the sync client uses.
        agent_core::sync::tls::install_crypto_provider();
        Staff(reqwest::blocking::Client::new(), Default::default())
    }

    /// Send `builder` to `server` as the demo account of `role` (signing in first).
    fn request(
        &self,
        server: &str,
        builder: reqwest::blocking::RequestBuilder,
        role: &str,
    ) -> Res<Value> {
        let login = match role {
            "window" => "window1",
            "reader" => "jiancha",
            _ => "bailin",
        };
        let key = format!("{server} {login}");
        let cached = self.1.borrow().get(&key).cloned();
        let token = match cached {
            Some(token) => token,
            None => {
                let signed_in: Value = self
                    .0
                    .post(format!("{server}/api/login"))
                    .json(&json!({ "login": login, "password": DEMO_PASSWORD }))
                    .send()?
                    .json()?;
                let token = signed_in["token"]
                    .as_str()
                    .ok_or(format!("sign-in refused: {}", signed_in["error"]))?
                    .to_owned();
                self.1.borrow_mut().insert(key, token.clone());
                token
            }
        };
        let resp = builder.bearer_auth(token).send()?;
        let status = resp.status();
        let body: Value = resp.json()?;
        if !status.is_success() {
            return Err(format!("{status}: {}", body["error"]).into());
        }
        Ok(body)
    }

    fn act(
        &self,
        server: &str,
        role: &str,
        n: &TicketNumber,
        kind: &str,
        payload: Value,
    ) -> Res<()> {
        let url = format!("{server}/api/tickets/{n}/events");
        let body = json!({ "kind": kind, "note": "", "payload": payload });
        let view = self.request(server, self.0.post(url).json(&body), role)?;
        println!(
            "{n}  {}  → {}",
            if role == "window" { "窗口" } else { "乡镇" },
            label(&view)?
        );
        Ok(())
    }

    fn status(&self, server: &str, role: &str, n: &TicketNumber) -> Res<&'static str> {
        label(&self.request(
            server,
            self.0.get(format!("{server}/api/tickets/{n}")),
            role,
        )?)
    }

    fn sync_upward(&self, township: &str) -> Res<SyncReport> {
        let body = self.request(
            township,
            self.0.post(format!("{township}/api/upstream/sync")),
            "township",
        )?;
        Ok(serde_json::from_value(body)?)
    }
}
