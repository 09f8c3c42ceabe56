//! A scripted day at a village point, fully offline, then one link to the township.
//!
//! `cargo run --example village_day [DIR]` — keeps the store in DIR (default: a temporary
//! directory). What it shows:
//! 1. the agent registers tickets offline (one with materials missing, one refused form);
//! 2. the link comes up: the township server stamps `received`, accepts, asks for the
//!    complete list of missing materials (一次性告知) — here a township replica of each
//!    document, merged back into the tablet exactly as sync will do it;
//! 3. the agent records the supplement provided;
//! 4. days pass (the 国庆 holiday): what is due or overdue, with lights;
//! 5. a ticket summary (承办单回执) printed in Chinese.

use std::sync::{Arc, Mutex};

use agent_core::crypto::StoreKey;
use agent_core::demo;
use agent_core::doc::TicketDoc;
use agent_core::domain::event::{Event, EventDraft, EventKind, Role};
use agent_core::domain::number::TicketNumber;
use agent_core::domain::receipt::{light_label, receipt_text};
use agent_core::store::{china_offset, Store, StoreOptions};
use automerge::ActorId;
use chrono::{DateTime, FixedOffset, TimeZone};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn at(y: i32, m: u32, d: u32, h: u32) -> Res<DateTime<FixedOffset>> {
    china_offset()
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .ok_or_else(|| "bad date".into())
}

fn main() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("village-101.db");

    // The tablet's clock, moved by the script; the host's key comes from its keystore.
    let now = Arc::new(Mutex::new(at(2026, 9, 28, 9)?));
    let clock_cell = now.clone();
    let mut opts = StoreOptions::new(StoreKey::from_bytes(&[7u8; 32])?, 101, 1, "李秀英");
    opts.clock = Arc::new(move || *clock_cell.lock().unwrap_or_else(|e| e.into_inner()));
    let mut store = Store::open(&path, opts)?;
    let set_now = |t: DateTime<FixedOffset>| *now.lock().unwrap_or_else(|e| e.into_inner()) = t;

    println!("== 2026-09-28 上午 东坪村代办点（离线）==");
    // Four requests: 失业证 (5 working days), 独生子女证补办 (materials missing),
    // 身份证代发 (3 days) and 白酒零售许可证 (a district window's item).
    let mut rng = demo::Rng::new(2026);
    let mut forms = Vec::new();
    for (i, code) in ["SB001", "WJ017", "GA004", "SW005"].into_iter().enumerate() {
        let item = store
            .catalog()
            .item(code)
            .ok_or("demo catalog lacks an item")?;
        forms.push(demo::form(&mut rng, item, i, i != 1));
    }
    let mut numbers: Vec<TicketNumber> = Vec::new();
    for form in &forms {
        let reg = store.register(form)?;
        let t = &reg.view.ticket;
        println!(
            "登记 {}  {}  申请人 {}  {}",
            t.number,
            t.item.name,
            agent_core::domain::mask::mask_name(&t.applicant.name),
            reg.view.life.status.label()
        );
        for w in &reg.warnings {
            println!("    提示：{}", w.message());
        }
        numbers.push(t.number.clone());
    }
    // A typo in the ID number's check character: refused with a reason, nothing stored.
    let mut bad = forms[0].clone();
    let wrong = if bad.id_number.ends_with('0') {
        "1"
    } else {
        "0"
    };
    bad.id_number.replace_range(17.., wrong);
    match store.register(&bad) {
        Ok(_) => println!("（意外：错误的身份证号被接受）"),
        Err(e) => println!("拒绝登记：{e}"),
    }

    println!();
    println!("== 2026-09-29 网络恢复，乡镇中心处理 ==");
    let township = ActorId::random();
    for (i, number) in numbers.iter().enumerate() {
        let mut doc = TicketDoc::load(&store.export(number)?, &township)?;
        let ticket = doc.read()?;
        let mut stamp = |kind: EventKind,
                         role: Role,
                         note: &str,
                         payload: serde_json::Value,
                         t: DateTime<FixedOffset>|
         -> Res<()> {
            doc.append(&Event {
                id: format!("tw-{i}-{}", kind.as_str()),
                kind,
                at: t,
                actor: if role == Role::Server {
                    "server-柏林镇".into()
                } else {
                    "clerk-王芳".into()
                },
                role,
                note: note.into(),
                payload,
            })?;
            Ok(())
        };
        stamp(
            EventKind::Received,
            Role::Server,
            "",
            serde_json::json!({}),
            at(2026, 9, 29, 8)?,
        )?;
        if i == 1 {
            let missing: Vec<String> = ticket
                .materials
                .iter()
                .filter(|m| m.state == agent_core::domain::ticket::MaterialState::Missing)
                .map(|m| m.name.clone())
                .collect();
            stamp(
                EventKind::SupplementRequested,
                Role::Township,
                "请一次性补齐以下材料",
                serde_json::json!({ "missing": missing }),
                at(2026, 9, 29, 10)?,
            )?;
        } else {
            stamp(
                EventKind::Accepted,
                Role::Township,
                "材料齐全予以受理",
                serde_json::json!({}),
                at(2026, 9, 29, 10)?,
            )?;
        }
        if i == 3 {
            stamp(
                EventKind::Forwarded,
                Role::Township,
                "已转县政务中心窗口",
                serde_json::json!({}),
                at(2026, 9, 29, 15)?,
            )?;
        }
        doc.commit();
        store.merge_remote(&doc.save(true))?;
        let v = store.get(number)?;
        let extra = if v.life.missing.is_empty() {
            String::new()
        } else {
            format!("，缺：{}", v.life.missing.join("、"))
        };
        println!("{}  {}{}", number, v.life.status.label(), extra);
    }

    println!();
    println!("== 2026-09-30 申请人送来补正材料 ==");
    set_now(at(2026, 9, 30, 11)?);
    let v = store.append(
        &numbers[1],
        &EventDraft::new(EventKind::SupplementProvided, "申请人已补齐材料"),
    )?;
    println!("{}  补正材料已提交，{}", numbers[1], v.life.status.label());

    for (y, m, d) in [(2026, 10, 9), (2026, 10, 14)] {
        set_now(at(y, m, d, 9)?);
        println!();
        println!("== {y}-{m:02}-{d:02} 待办与超期 ==");
        let due = store.due(0)?;
        if due.items.is_empty() {
            println!("（没有临近期限或超期的办件）");
        }
        for row in &due.items {
            let left = match row.remaining.unwrap_or_default() {
                n if n < 0 => format!("已超期{}个工作日", -n),
                n => format!("剩余{n}个工作日"),
            };
            println!(
                "{}  {}  {}  期限 {}  {}  {}",
                row.number,
                row.item_name,
                row.applicant,
                row.due_on.map(|d| d.to_string()).unwrap_or_default(),
                left,
                row.light.map(light_label).unwrap_or("")
            );
        }
    }

    println!();
    let v = store.get(&numbers[0])?;
    print!("{}", receipt_text(&v));
    println!();
    println!("数据保存在 {}（已加密）", path.display());
    Ok(())
}
