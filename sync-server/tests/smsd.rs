//! The real smsd (Debian `smstools` 3.1.21) without a modem: smsd takes the spool files
//! `Spool::submit` writes and "sends" them (a simulation, 4–13 s per part), and the files it
//! writes for inbound SMS-DELIVER PDUs, dropped into its `pdu_from_file` directory, parse.
//!
//! smsd runs in the foreground (`smsd -t -c CONFIG`) in its own process group, with its
//! spool, log, pid and info files in a temporary directory with no dot in its path (smsd
//! ignores a `pdu_from_file` directory with one), and is stopped by its PID at the end, also
//! when the test fails. Skipped when smsd is not installed, unless DAIBAN_REQUIRE_SMSD is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Offset;
use sync_server::sms::smstools::{file_name, outgoing_file, Spool, SpoolState};
use sync_server::sms::{Handed, Incoming, Outgoing, Template};

const PHONE: &str = "13800138000";
const LONG: &str =
    "尊敬的村民您好：您在本村代办点申请的社会保险参保登记已经办结，请于本周五前携带本人身份证原件\
                    到村代办点领取办理结果。如有疑问请联系代办员或拨打乡镇便民服务中心电话。谢谢！";
const SHORT: &str = "已收到您的申请，谢谢！";
const ASCII: &str = "Daiban: ticket A-1234 ready @ 9:00 (100%)";
const INBOUND_UCS2: &str = "您好，我想查询A1234的办理进度👍";
const INBOUND_GSM: &str = "Hello from Daiban 42: ok?";

/// Where smsd is, if installed (`/usr/sbin` is not on every user's PATH).
fn smsd_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("smsd"))
        .find(|p| p.is_file())
}

/// A fresh directory whose whole path has no dot: `/tmp/daiban_smsd_<pid>_<n>`.
fn dotless_dir() -> PathBuf {
    let base = std::env::temp_dir();
    let base = if base.to_string_lossy().contains('.') {
        PathBuf::from("/tmp")
    } else {
        base
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = base.join(format!("daiban_smsd_{}_{nanos}", std::process::id()));
    assert!(
        !dir.to_string_lossy().contains('.'),
        "{} has a dot",
        dir.display()
    );
    fs::create_dir(&dir).unwrap();
    dir
}

/// The scratch directory and the smsd running in it: on drop smsd is stopped (TERM to its
/// process group, KILL after 5 s) and the directory removed, or kept when the test failed.
struct Scratch {
    dir: PathBuf,
    smsd: Option<Child>,
}

impl Scratch {
    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("smsd_log")).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| {
                ![
                    "receivesms",
                    "check_memory",
                    "Checking device",
                    "No SMS received",
                ]
                .iter()
                .any(|noise| l.contains(noise))
            })
            .collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// `kill -SIGNAL -- -PGID`: the whole group (smsd's modem handlers are its children).
fn signal_group(signal: &str, pgid: u32) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), "--".to_string(), format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(mut smsd) = self.smsd.take() {
            // smsd waits for its modem handlers before it exits; while it has not been
            // reaped its PID (= the group's id) cannot be reused, so KILL is safe here.
            signal_group("TERM", smsd.id());
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(smsd.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(smsd.try_wait(), Ok(None)) {
                signal_group("KILL", smsd.id());
                let _ = smsd.kill();
                let _ = smsd.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "smsd log (tail):\n{}\nkept {} for inspection",
                self.log_tail(),
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// One receiving device reading PDUs from files, three sending devices so the messages go out
/// in parallel; all with `modem_disabled` and a plain file as their device.
fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "# smsd for sync-server/tests/smsd.rs: no modem.\n\
         devices = GSM1, GSM2, GSM3, GSM4\n\
         outgoing = {d}/outgoing\n\
         checked = {d}/checked\n\
         incoming = {d}/incoming\n\
         sent = {d}/sent\n\
         failed = {d}/failed\n\
         saved = {d}/saved\n\
         logfile = {d}/smsd_log\n\
         loglevel = 7\n\
         infofile = {d}/smsd_working\n\
         pidfile = {d}/smsd_pid\n\
         autosplit = 3\n\
         delaytime = 1\n\
         delaytime_mainprocess = 1\n\
         \n\
         [GSM1]\n\
         device = {d}/modem1\n\
         modem_disabled = yes\n\
         pdu_from_file = {d}/pdu/\n\
         incoming = yes\n\
         outgoing = no\n\
         \n\
         [GSM2]\n\
         device = {d}/modem2\n\
         modem_disabled = yes\n\
         incoming = no\n\
         \n\
         [GSM3]\n\
         device = {d}/modem3\n\
         modem_disabled = yes\n\
         incoming = no\n\
         \n\
         [GSM4]\n\
         device = {d}/modem4\n\
         modem_disabled = yes\n\
         incoming = no\n"
    )
}

// ---- SMS-DELIVER PDUs (3GPP TS 23.040) ----

/// Digits as semi-octets, swapped per octet, `F`-padded.
fn semi_octets(digits: &str) -> String {
    let mut d: Vec<char> = digits.chars().collect();
    if d.len() % 2 == 1 {
        d.push('F');
    }
    d.chunks(2).map(|p| format!("{}{}", p[1], p[0])).collect()
}

/// An SMS-DELIVER from `from` (international, TOA 91) via SMSC +8613800200500, sent
/// 26-12-02 13:53:47 +08:00 (SCTS zone: 32 quarter hours), as smsd's `pdu_from_file` reads it.
fn deliver(from: &str, dcs: u8, udl: usize, ud: &[u8]) -> String {
    let smsc = semi_octets("8613800200500");
    let mut pdu = format!("{:02X}91{smsc}", smsc.len() / 2 + 1);
    pdu.push_str("04"); // SMS-DELIVER, no more messages, no UDH
    write!(pdu, "{:02X}91{}", from.len(), semi_octets(from)).unwrap();
    write!(pdu, "00{dcs:02X}{}23", semi_octets("261202135347")).unwrap(); // PID, DCS, SCTS
    write!(pdu, "{udl:02X}{}", hex::encode_upper(ud)).unwrap();
    pdu
}

fn deliver_ucs2(from: &str, text: &str) -> String {
    let ud: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert!(ud.len() <= 140, "one SMS");
    deliver(from, 0x08, ud.len(), &ud)
}

/// GSM-7, packed; `text` only of ASCII that is the same septet in the GSM default alphabet.
fn deliver_gsm7(from: &str, text: &str) -> String {
    assert!(text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " !\"#%&'()*+,-./:;<=>?".contains(c)));
    assert!(text.len() <= 160, "one SMS");
    let (mut ud, mut bits, mut n) = (Vec::new(), 0u32, 0);
    for c in text.bytes() {
        bits |= u32::from(c) << n;
        n += 7;
        while n >= 8 {
            ud.push(bits as u8);
            bits >>= 8;
            n -= 8;
        }
    }
    if n > 0 {
        ud.push(bits as u8);
    }
    deliver(from, 0x00, text.len(), &ud)
}

// ---- SMS-SUBMIT PDUs as smsd logs them ("PDU to …: AT+CMGS=n <pdu>") ----

/// One part smsd sent: recipient, concatenation (reference, total, sequence), UTF-16 units.
struct Part {
    to: String,
    concat: Option<(u16, u8, u8)>,
    units: Vec<u16>,
}

fn submit_part(pdu_hex: &str) -> Part {
    let b = hex::decode(pdu_hex).unwrap();
    let mut i = 1 + usize::from(b[0]); // SMSC
    let first = b[i];
    i += 2; // first octet, MR
    let digits = usize::from(b[i]);
    assert_eq!(b[i + 1], 0x91, "international recipient");
    let octets = &b[i + 2..i + 2 + digits.div_ceil(2)];
    let to: String = octets
        .iter()
        .flat_map(|o| [o & 0x0F, o >> 4])
        .take(digits)
        .map(|d| char::from(b'0' + d))
        .collect();
    i += 2 + digits.div_ceil(2);
    let dcs = b[i + 1];
    i += 2; // PID, DCS
    i += match (first >> 3) & 3 {
        2 => 1,
        1 | 3 => 7,
        _ => 0,
    };
    let udl = usize::from(b[i]);
    let ud = &b[i + 1..];
    match dcs {
        0x08 => {
            let (concat, text) = if first & 0x40 != 0 {
                let udh = &ud[1..1 + usize::from(ud[0])];
                let concat = match udh {
                    [0x00, 3, r, t, s, ..] => (u16::from(*r), *t, *s),
                    [0x08, 4, r1, r2, t, s, ..] => (u16::from_be_bytes([*r1, *r2]), *t, *s),
                    other => panic!("no concatenation header: {other:02X?}"),
                };
                (Some(concat), &ud[1 + udh.len()..udl])
            } else {
                (None, &ud[..udl])
            };
            let units = text
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            Part { to, concat, units }
        }
        0x00 => {
            assert_eq!(first & 0x40, 0, "a single GSM-7 part");
            let mut septets = Vec::new();
            for k in 0..udl {
                let bit = k * 7;
                let word =
                    u16::from(ud[bit / 8]) | ud.get(bit / 8 + 1).map_or(0, |&x| u16::from(x) << 8);
                septets.push(((word >> (bit % 8)) & 0x7F) as u8);
            }
            let text: String = septets
                .into_iter()
                .map(|s| match s {
                    0x00 => '@',
                    0x02 => '$',
                    0x11 => '_',
                    0x20..=0x7F => char::from(s),
                    other => panic!("GSM septet {other:#04X} in the test's texts"),
                })
                .collect();
            Part {
                to,
                concat: None,
                units: text.encode_utf16().collect(),
            }
        }
        other => panic!("DCS {other:#04X}"),
    }
}

/// The texts smsd sent (parts reassembled), with how many parts each took.
fn sent_texts(log: &str) -> Vec<(String, String, u8)> {
    let mut texts = Vec::new();
    let mut concatenated: BTreeMap<(String, u16), Vec<Part>> = BTreeMap::new();
    for line in log
        .lines()
        .filter(|l| l.contains(": PDU to ") && l.contains("AT+CMGS="))
    {
        let part = submit_part(line.rsplit(' ').next().unwrap());
        match part.concat {
            None => texts.push((part.to, String::from_utf16(&part.units).unwrap(), 1)),
            Some((reference, _, _)) => concatenated
                .entry((part.to.clone(), reference))
                .or_default()
                .push(part),
        }
    }
    for ((to, _), mut parts) in concatenated {
        parts.sort_by_key(|p| p.concat.map(|(_, _, seq)| seq));
        let total = parts[0].concat.map_or(0, |(_, total, _)| total);
        assert_eq!(usize::from(total), parts.len(), "every part sent");
        let units: Vec<u16> = parts.into_iter().flat_map(|p| p.units).collect();
        texts.push((to, String::from_utf16(&units).unwrap(), total));
    }
    texts.sort();
    texts
}

fn outgoing(id: i64, text: &str) -> Outgoing {
    Outgoing {
        id,
        phone: PHONE.to_string(),
        template: Template::Status,
        params: Vec::new(),
        text: text.to_string(),
    }
}

#[test]
fn smsd_sends_our_files_and_we_read_its_files() {
    let Some(smsd) = smsd_binary() else {
        assert!(
            std::env::var_os("DAIBAN_REQUIRE_SMSD").is_none(),
            "smsd is required (DAIBAN_REQUIRE_SMSD is set) but not installed: apt-get install smstools"
        );
        eprintln!("smsd not installed: skipped (CI sets DAIBAN_REQUIRE_SMSD)");
        return;
    };
    let started = Instant::now();
    let mut scratch = Scratch {
        dir: dotless_dir(),
        smsd: None,
    };
    let dir = scratch.dir.clone();
    for d in [
        "outgoing", "checked", "incoming", "sent", "failed", "saved", "pdu", "pdu_tmp",
    ] {
        fs::create_dir(dir.join(d)).unwrap();
    }
    for device in ["modem1", "modem2", "modem3", "modem4"] {
        File::create(dir.join(device)).unwrap();
    }
    fs::write(dir.join("smsd_conf"), config(&dir)).unwrap();
    // smsd writes `Received:` in its (this machine's) time zone.
    let local = chrono::Local::now().offset().fix();
    let spool = Spool::new(&dir).time_zone(local);

    scratch.smsd = Some(
        Command::new(&smsd)
            .arg("-t")
            .arg("-c")
            .arg(dir.join("smsd_conf"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("smsd_stdout")).unwrap())
            .stderr(File::create(dir.join("smsd_stderr")).unwrap())
            .process_group(0)
            .spawn()
            .unwrap(),
    );

    // Outgoing: an empty text smsd refuses at once (so it is out of the way), a Chinese text
    // of two parts, a short Chinese one, a plain ASCII one (the GSM alphabet).
    let messages = [(4, ""), (1, LONG), (2, SHORT), (3, ASCII)];
    assert!(LONG.chars().count() > 70, "{}", LONG.chars().count());
    for _ in 0..2 {
        for (id, text) in messages {
            assert_eq!(
                spool.submit(&outgoing(id, text)),
                Handed::Accepted {
                    reference: file_name(id)
                }
            );
        }
    }

    // Inbound: written aside, renamed into smsd's pdu_from_file directory.
    for (name, pdu) in [
        ("ucs2", deliver_ucs2("8613800138000", INBOUND_UCS2)),
        ("gsm", deliver_gsm7("8613800138000", INBOUND_GSM)),
    ] {
        fs::write(dir.join("pdu_tmp").join(name), format!("{pdu}\n")).unwrap();
        fs::rename(dir.join("pdu_tmp").join(name), dir.join("pdu").join(name)).unwrap();
    }

    let deadline = started + Duration::from_secs(90);
    let mut received: Vec<Incoming> = Vec::new();
    let (mut inbound_at, mut sent_at) = (None, None);
    loop {
        for (path, message) in spool.incoming() {
            spool.processed(&path).unwrap();
            received.push(message);
        }
        if received.len() >= 2 && inbound_at.is_none() {
            inbound_at = Some(started.elapsed());
        }
        let states: Vec<SpoolState> = [1, 2, 3, 4].map(|id| spool.state(id)).to_vec();
        if states[..3].iter().all(|s| *s == SpoolState::Sent) && sent_at.is_none() {
            sent_at = Some(started.elapsed());
        }
        if inbound_at.is_some() && sent_at.is_some() {
            assert_eq!(states[3], SpoolState::Failed("No text or data".to_string()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "smsd did not finish in 90 s: states {states:?}, received {received:?}\n{}",
            scratch.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "smsd: inbound parsed after {:.1} s, all sent after {:.1} s",
        inbound_at.unwrap().as_secs_f64(),
        sent_at.unwrap().as_secs_f64()
    );

    // (b) What smsd wrote, parsed.
    assert_eq!(received.len(), 2, "{received:?}");
    let mut texts: Vec<(&str, &str)> = received
        .iter()
        .map(|m| (m.from.as_str(), m.text.as_str()))
        .collect();
    texts.sort();
    let mut expected = vec![(PHONE, INBOUND_UCS2), (PHONE, INBOUND_GSM)];
    expected.sort();
    assert_eq!(texts, expected);
    let now = chrono::Utc::now();
    for m in &received {
        assert!(m.reference.starts_with("GSM1."), "{}", m.reference);
        assert!(
            (now - m.received.with_timezone(&chrono::Utc))
                .num_seconds()
                .abs()
                < 120,
            "{m:?}"
        );
        assert!(dir.join("processed").join(&m.reference).is_file());
    }
    assert!(fs::read_dir(dir.join("incoming")).unwrap().all(|e| {
        let name = e.unwrap().file_name();
        !name.to_string_lossy().starts_with("GSM1.")
    }));

    // (a) What we wrote, sent: the texts in the PDUs smsd built, the long one in two parts.
    let sent = sent_texts(&scratch.log());
    let mut want = vec![
        ("8613800138000".to_string(), LONG.to_string(), 2),
        ("8613800138000".to_string(), SHORT.to_string(), 1),
        ("8613800138000".to_string(), ASCII.to_string(), 1),
    ];
    want.sort();
    assert_eq!(sent, want);
    // smsd keeps our file (its headers added) in sent/.
    let kept = fs::read(dir.join("sent").join(file_name(1))).unwrap();
    let ours = outgoing_file(PHONE, LONG);
    let body_at = ours.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    assert!(
        kept.starts_with(b"To: 8613800138000\nAlphabet: UCS2\n")
            && kept.ends_with(&ours[body_at..])
    );

    // Submitting again after a "crash": nothing new for smsd.
    for (id, text) in messages {
        assert_eq!(
            spool.submit(&outgoing(id, text)),
            Handed::Accepted {
                reference: file_name(id)
            }
        );
    }
    assert_eq!(fs::read_dir(dir.join("outgoing")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(dir.join("checked")).unwrap().count(), 0);

    drop(scratch);
    assert!(!dir.exists(), "scratch directory removed");
    eprintln!("smsd test: {:.1} s in all", started.elapsed().as_secs_f64());
}
