//! The spool a township server shares with smstools3's `smsd` (Debian package `smstools`
//! 3.1.21), which drives the GSM modem.
//!
//! Outgoing: one file per message, `daiban-<outbox id>`, written in `tmp/` and renamed into
//! `outgoing/` so smsd never reads half a file. smsd moves it to `checked/` while it sends,
//! then to `sent/`, or to `failed/` with a `Fail_reason:` header. Chinese goes as
//! `Alphabet: UCS2` with a UTF-16BE body; smsd's `autosplit` splits long texts.
//!
//! Incoming: smsd writes one file per message into `incoming/` (`GSM1.AbC123`): headers read
//! by name, a blank line, the body (UTF-16BE with `Alphabet: UCS2`; decoded here, never by
//! smsd's `decode_unicode_text`). Handled files move to our `processed/`.
//!
//! What the smsd configuration must say for this to hold:
//! - `checked`, `sent` and `failed` set (to [`SpoolDirs`]' directories): without `sent` smsd
//!   deletes a sent file, and a server resubmitting after a crash could then send it twice;
//! - `keep_filename` left at its default (yes), so a file keeps its name through the spool;
//! - `decode_unicode_text` and `incoming_utf8` left at their defaults (no);
//! - `tmp/` on the same file system as `outgoing/` (a rename, never a copy);
//! - preferably `saved` and `report` set elsewhere, so smsd's store of concatenation parts and
//!   delivery reports stay out of `incoming/` (both are skipped or set aside here anyway).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};

use super::{Handed, Incoming, Outgoing};

/// The most of a spool file that is read; a larger file is not smsd's and is set aside.
/// (The longest concatenated SMS, 255 parts, is about 35 KB of text.)
pub const MAX_FILE_BYTES: usize = 64 * 1024;

/// How long an inbound file must have been left alone before it is read: smsd writes it in
/// place (create, then write), so a younger file may still be empty or half written.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(2);

/// China Standard Time, the time zone smsd's clock runs in on our servers.
pub const CHINA: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("+08:00 is a valid offset"),
};

/// The spool file name of outbox message `id`.
pub fn file_name(id: i64) -> String {
    format!("daiban-{id}")
}

/// The spool's directories. smsd's are set in its `smsd.conf` (`outgoing`, `checked`,
/// `incoming`, `sent`, `failed`); `tmp` and `processed` are ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolDirs {
    /// smsd reads new messages here.
    pub outgoing: PathBuf,
    /// smsd moves a message here while it sends it.
    pub checked: PathBuf,
    /// smsd writes inbound messages here.
    pub incoming: PathBuf,
    /// smsd moves sent messages here.
    pub sent: PathBuf,
    /// smsd moves messages it gave up on here, with a `Fail_reason:` header.
    pub failed: PathBuf,
    /// Where a message is written before it is renamed into `outgoing` (same file system).
    pub tmp: PathBuf,
    /// Inbound files that were handled, and those that did not parse (`.bad`).
    pub processed: PathBuf,
}

impl SpoolDirs {
    /// All seven as subdirectories of `root`, named as the fields are.
    pub fn under(root: impl Into<PathBuf>) -> SpoolDirs {
        let root = root.into();
        SpoolDirs {
            outgoing: root.join("outgoing"),
            checked: root.join("checked"),
            incoming: root.join("incoming"),
            sent: root.join("sent"),
            failed: root.join("failed"),
            tmp: root.join("tmp"),
            processed: root.join("processed"),
        }
    }
}

/// Where an outgoing message is in smsd's spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpoolState {
    /// In `outgoing/` or `checked/`: smsd has not finished with it.
    Waiting,
    /// In `sent/`: the modem took it.
    Sent,
    /// In `failed/`, with smsd's `Fail_reason:`.
    Failed(String),
    /// Nowhere (never submitted, or moved away by someone else).
    Absent,
}

/// The smsd spool a server shares with smstools3: `outgoing/` (smsd reads), `incoming/`
/// (smsd writes), `checked/`, `sent/`, `failed/` (smsd moves files there), plus our own
/// `tmp/` (written, then renamed into `outgoing/`) and `processed/` (inbound files we handled).
pub struct Spool {
    dirs: SpoolDirs,
    settle: Duration,
    local: FixedOffset,
    /// One submission at a time: the "already there?" check and the rename go together.
    submitting: Mutex<()>,
    /// Bad inbound files that could not be moved aside: not read again by this process.
    stuck: Mutex<HashSet<PathBuf>>,
}

impl Spool {
    /// The spool with all its directories under `root` ([`SpoolDirs::under`]).
    pub fn new(root: impl Into<PathBuf>) -> Spool {
        Spool::with_dirs(SpoolDirs::under(root))
    }

    /// The spool with its directories where smsd.conf puts them. Creates `tmp` and
    /// `processed` when missing (a failure is logged, and shows again on use); smsd's own
    /// directories are left to smsd's installation.
    pub fn with_dirs(dirs: SpoolDirs) -> Spool {
        for dir in [&dirs.tmp, &dirs.processed] {
            if let Err(e) = fs::create_dir_all(dir) {
                tracing::error!(dir = %dir.display(), error = %e, "cannot create an SMS spool directory");
            }
        }
        Spool {
            dirs,
            settle: DEFAULT_SETTLE,
            local: CHINA,
            submitting: Mutex::new(()),
            stuck: Mutex::new(HashSet::new()),
        }
    }

    /// How long an inbound file must be unmodified before it is read ([`DEFAULT_SETTLE`]).
    pub fn settle(mut self, settle: Duration) -> Spool {
        self.settle = settle;
        self
    }

    /// The time zone of smsd's clock, for `Received:` / `Sent:` ([`CHINA`]).
    pub fn time_zone(mut self, local: FixedOffset) -> Spool {
        self.local = local;
        self
    }

    pub fn dirs(&self) -> &SpoolDirs {
        &self.dirs
    }

    /// Hand message `msg` to smsd: its file ([`file_name`]) is written in `tmp/` then renamed
    /// into `outgoing/`. Idempotent: when a file of that id already is in `outgoing/`,
    /// `checked/`, `sent/` or `failed/`, nothing is written and it reports `Accepted` again,
    /// so a server that crashed after the rename and before recording it never sends a
    /// message twice. The reference is the file name.
    pub fn submit(&self, msg: &Outgoing) -> Handed {
        let name = file_name(msg.id);
        if !is_mobile(&msg.phone) {
            return Handed::Failed {
                reason: "不是11位手机号码 / not an 11-digit mobile number".into(),
                retry: false,
            };
        }
        let _one_at_a_time = self.submitting.lock().unwrap_or_else(|p| p.into_inner());
        match self.find(&name) {
            Ok(Some(_)) => return Handed::Accepted { reference: name },
            Ok(None) => {}
            Err(e) => {
                return Handed::Failed {
                    reason: format!("cannot look into the SMS spool: {e}"),
                    retry: true,
                }
            }
        }
        match self.write_then_rename(&name, &outgoing_file(&msg.phone, &msg.text)) {
            Ok(()) => Handed::Accepted { reference: name },
            Err(e) => {
                tracing::warn!(id = msg.id, error = %e, "cannot hand an SMS to smsd");
                Handed::Failed {
                    reason: format!("cannot write into the SMS spool: {e}"),
                    retry: true,
                }
            }
        }
    }

    /// Where message `id` is.
    pub fn state(&self, id: i64) -> SpoolState {
        let name = file_name(id);
        match self.find(&name) {
            Ok(Some(Place::Waiting)) => SpoolState::Waiting,
            Ok(Some(Place::Sent)) => SpoolState::Sent,
            Ok(Some(Place::Failed)) => {
                SpoolState::Failed(fail_reason(&self.dirs.failed.join(&name)))
            }
            Ok(None) => SpoolState::Absent,
            Err(e) => {
                tracing::warn!(id, error = %e, "cannot look into the SMS spool");
                SpoolState::Absent
            }
        }
    }

    /// The inbound messages in `incoming/`, oldest first, each parsed. A file that does not
    /// parse is moved to `processed/` with a `.bad` suffix and logged. Files smsd is still
    /// writing (younger than the settle time, or with a `.LOCK` beside them) and smsd's own
    /// files (hidden, `*.LOCK`, `LOCKED*`, `smsd_script.*`, `*-concatenated`) are left alone.
    pub fn incoming(&self) -> Vec<(PathBuf, Incoming)> {
        let entries = match fs::read_dir(&self.dirs.incoming) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(dir = %self.dirs.incoming.display(), error = %e, "cannot read smsd's incoming directory");
                return Vec::new();
            }
        };
        let now = SystemTime::now();
        let mut files = Vec::new();
        {
            let stuck = self.stuck.lock().unwrap_or_else(|p| p.into_inner());
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if not_a_message(&name) {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let path = entry.path();
                if stuck.contains(&path) {
                    continue;
                }
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                if now
                    .duration_since(modified)
                    .is_ok_and(|age| age < self.settle)
                {
                    continue;
                }
                if path.with_file_name(format!("{name}.LOCK")).exists() {
                    continue;
                }
                files.push((modified, name, path));
            }
        }
        files.sort();

        let mut messages = Vec::new();
        for (_, name, path) in files {
            let problem = match read_capped(&path) {
                Ok(bytes) => match parse_incoming(&bytes, &name, self.local) {
                    Ok(message) => {
                        messages.push((path, message));
                        continue;
                    }
                    Err(problem) => problem,
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => format!("cannot read it: {e}"),
            };
            self.set_aside(&path, &name, &problem);
        }
        messages
    }

    /// Move a handled inbound file to `processed/` (under a free name: `.1`, `.2`… appended
    /// if smsd ever reused a name).
    pub fn processed(&self, file: &Path) -> io::Result<()> {
        let name = file
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
        let target = free_name(&self.dirs.processed, &name.to_string_lossy())?;
        fs::rename(file, target)
    }

    fn set_aside(&self, path: &Path, name: &str, problem: &str) {
        let moved = free_name(&self.dirs.processed, &format!("{name}.bad"))
            .and_then(|target| fs::rename(path, &target).map(|()| target));
        match moved {
            Ok(target) => tracing::warn!(
                file = %path.display(), to = %target.display(), problem,
                "inbound SMS file does not parse: set aside"
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !path.exists() => {}
            Err(e) => {
                tracing::error!(
                    file = %path.display(), problem, error = %e,
                    "inbound SMS file does not parse and cannot be moved aside: ignored from now on"
                );
                self.stuck
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(path.to_path_buf());
            }
        }
    }

    /// Where spool file `name` is: looked for in the order smsd moves it, so a file moving
    /// on meanwhile is still found.
    fn find(&self, name: &str) -> io::Result<Option<Place>> {
        let places = [
            (&self.dirs.outgoing, Place::Waiting),
            (&self.dirs.checked, Place::Waiting),
            (&self.dirs.sent, Place::Sent),
            (&self.dirs.failed, Place::Failed),
        ];
        for (dir, place) in places {
            match fs::symlink_metadata(dir.join(name)) {
                Ok(_) => return Ok(Some(place)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn write_then_rename(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.dirs.tmp.join(name);
        let written = write_synced(&tmp, bytes)
            .and_then(|()| fs::rename(&tmp, self.dirs.outgoing.join(name)));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        // The rename itself survives a power cut only once the directory is synced.
        if let Ok(dir) = File::open(&self.dirs.outgoing) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Waiting,
    Sent,
    Failed,
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    // smsd (often another user in the same group) moves the file on: group-writable spares
    // it copying the file to fix its permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o664))?;
    }
    file.sync_all()
}

fn is_mobile(phone: &str) -> bool {
    phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit())
}

/// smsd's working files, and names it never gives a message.
fn not_a_message(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".LOCK")
        || name.starts_with("LOCKED")
        || name.starts_with("smsd_script.")
        || name.ends_with("-concatenated")
}

/// `dir/name`, or `dir/name.1`, `dir/name.2`… whichever does not exist yet.
fn free_name(dir: &Path, name: &str) -> io::Result<PathBuf> {
    for n in 0..10_000u32 {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{name}.{n}"))
        };
        match fs::symlink_metadata(&candidate) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(candidate),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free name for {name}"),
    ))
}

/// The file's first [`MAX_FILE_BYTES`] + 1 bytes (one more tells a file that is too large).
fn read_capped(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn fail_reason(path: &Path) -> String {
    let reason = read_capped(path).ok().and_then(|bytes| {
        let (headers, _) = split_headers(&bytes).ok()?;
        headers
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("Fail_reason"))
            .map(|(_, value)| value)
    });
    match reason {
        Some(reason) if !reason.is_empty() => reason,
        _ => "unknown (no Fail_reason)".to_string(),
    }
}

/// The spool file for a text to `phone` (11 digits, no country code; anything else than
/// digits is dropped): `To: 86<phone>`; a text that is not all GSM-7 default-alphabet ASCII
/// gets `Alphabet: UCS2` and goes as UTF-16BE; a blank line; the text, with no newline added.
/// A long text is one file: smsd's `autosplit` splits it.
pub fn outgoing_file(phone: &str, text: &str) -> Vec<u8> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let mut file = format!("To: 86{digits}\n").into_bytes();
    if text.chars().all(is_plain_gsm) {
        file.push(b'\n');
        file.extend_from_slice(text.as_bytes());
    } else {
        file.extend_from_slice(b"Alphabet: UCS2\n\n");
        for unit in text.encode_utf16() {
            file.extend_from_slice(&unit.to_be_bytes());
        }
    }
    file
}

/// ASCII that is one septet of the GSM-7 default alphabet standing for itself (so not
/// `` ` ``, nor `[ ] { } \ ^ ~ |`, which need the extension table).
fn is_plain_gsm(c: char) -> bool {
    c.is_ascii() && c != '\u{1b}' && GSM7_BASIC.contains(&c)
}

/// Parse one inbound file smsd wrote: headers by name (unknown ones ignored), a blank line,
/// the body. `From:` loses its `86` / `+86` country code; `Received:` (else `Sent:`, else
/// now) is `yy-mm-dd HH:MM:SS` in `local`; an `Alphabet: UCS2` body is UTF-16BE, `ISO` is
/// ISO-8859-15, `GSM` the GSM-7 default alphabet, `UTF-8` (or none) UTF-8. `reference` is
/// the file name. Never panics; what cannot be a villager's text (binary, a PDU smsd could
/// not decode, a delivery report, no sender) is an error.
pub fn parse_incoming(
    bytes: &[u8],
    reference: &str,
    local: FixedOffset,
) -> Result<Incoming, String> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    let (headers, body) = split_headers(bytes)?;
    let header = |wanted: &str| {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.as_str())
    };
    if let Some(error) = header("Error") {
        return Err(format!("smsd could not decode it: {error}"));
    }
    let from = header("From").ok_or("no From: header")?;
    let from = national(from, header("From_TOA"));
    if from.is_empty() {
        return Err("an empty From: header".to_string());
    }
    let alphabet = header("Alphabet");
    let text = match alphabet.map(str::to_ascii_uppercase).as_deref() {
        Some("UCS2") | Some("UCS-2") | Some("UTF-16BE") => utf16be(body),
        Some("ISO") | Some("ISO-8859-15") | Some("ISO-8859-1") => iso_8859_15(body),
        Some("GSM") => gsm7(body),
        Some("UTF-8") | Some("UTF8") => String::from_utf8_lossy(body).into_owned(),
        None => match std::str::from_utf8(body) {
            Ok(text) => text.to_string(),
            Err(_) => iso_8859_15(body),
        },
        Some(_) => {
            return Err(format!(
                "not a text message (Alphabet: {})",
                alphabet.unwrap_or_default()
            ))
        }
    };
    if text.starts_with("SMS STATUS REPORT") {
        return Err("a delivery report, not a message".to_string());
    }
    let received = header("Received")
        .and_then(|v| spool_time(v, local))
        .or_else(|| header("Sent").and_then(|v| spool_time(v, local)))
        .unwrap_or_else(|| Utc::now().with_timezone(&local));
    Ok(Incoming {
        from,
        text,
        received,
        reference: reference.to_string(),
    })
}

/// A spool file's header lines: name, value.
type Headers = Vec<(String, String)>;

/// The header lines (name, trimmed value; values read as ISO-8859-15) and the body after the
/// first blank line. Lines end in `\n` or `\r\n`.
fn split_headers(bytes: &[u8]) -> Result<(Headers, &[u8]), String> {
    let mut headers = Vec::new();
    let mut rest = bytes;
    loop {
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(if bytes.is_empty() {
                "an empty file".to_string()
            } else {
                "no blank line after the headers".to_string()
            });
        };
        let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
        rest = &rest[end + 1..];
        if line.is_empty() {
            return Ok((headers, rest));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(format!("not a header line: {:?}", shortened(line)));
        };
        let name = iso_8859_15(&line[..colon]).trim().to_string();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("not a header line: {:?}", shortened(line)));
        }
        headers.push((name, iso_8859_15(&line[colon + 1..]).trim().to_string()));
    }
}

fn shortened(line: &[u8]) -> String {
    iso_8859_15(&line[..line.len().min(60)])
}

/// The sender without China's country code: `+86…` always, `86…` when the number is in
/// international format (`From_TOA: 91 …`, or no From_TOA). Other senders are kept as given.
fn national(from: &str, toa: Option<&str>) -> String {
    if let Some(rest) = from.strip_prefix("+86") {
        return rest.to_string();
    }
    let international = toa.is_none_or(|toa| toa.trim_start().starts_with("91"));
    match from.strip_prefix("86") {
        Some(rest) if international && !rest.is_empty() => rest.to_string(),
        _ => from.to_string(),
    }
}

/// `yy-mm-dd HH:MM:SS` (two-digit year: 20yy) or `yyyy-mm-dd HH:MM:SS`, in `local`.
fn spool_time(value: &str, local: FixedOffset) -> Option<DateTime<FixedOffset>> {
    let (date, time) = value.trim().split_once(' ')?;
    let mut d = date.split('-');
    let (year, month, day) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() {
        return None;
    }
    let year: i32 = match year.len() {
        2 => 2000 + year.parse::<i32>().ok()?,
        4 => year.parse().ok()?,
        _ => return None,
    };
    let mut t = time.trim().split(':');
    let (h, m, s) = (t.next()?, t.next()?, t.next()?);
    if t.next().is_some() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year, month.parse().ok()?, day.parse().ok()?)?;
    let time = NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, s.parse().ok()?)?;
    local.from_local_datetime(&date.and_time(time)).single()
}

/// UTF-16BE; a lone surrogate or a dangling odd byte becomes U+FFFD.
fn utf16be(body: &[u8]) -> String {
    let units: Vec<u16> = body
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .collect();
    let mut text = String::from_utf16_lossy(&units);
    if body.len() % 2 == 1 {
        text.push(char::REPLACEMENT_CHARACTER);
    }
    text
}

/// ISO-8859-15: Latin-1 but for eight code points (€, Š, š, Ž, ž, Œ, œ, Ÿ).
fn iso_8859_15(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0xA4 => '€',
            0xA6 => 'Š',
            0xA8 => 'š',
            0xB4 => 'Ž',
            0xB8 => 'ž',
            0xBC => 'Œ',
            0xBD => 'œ',
            0xBE => 'Ÿ',
            _ => char::from(b),
        })
        .collect()
}

/// The GSM 03.38 default alphabet, by septet.
const GSM7_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table (after the 0x1B escape).
fn gsm7_extension(septet: u8) -> Option<char> {
    Some(match septet {
        0x0A => '\u{c}',
        0x14 => '^',
        0x28 => '{',
        0x29 => '}',
        0x2F => '\\',
        0x3C => '[',
        0x3D => '~',
        0x3E => ']',
        0x40 => '|',
        0x65 => '€',
        _ => return None,
    })
}

/// An unpacked GSM-7 body, one septet per byte (smsd with `cs_convert = no`).
fn gsm7(body: &[u8]) -> String {
    let basic = |b: u8| {
        GSM7_BASIC
            .get(usize::from(b))
            .copied()
            .unwrap_or(char::REPLACEMENT_CHARACTER)
    };
    let mut text = String::new();
    let mut septets = body.iter().copied();
    while let Some(b) = septets.next() {
        if b == 0x1B {
            match septets.next() {
                // An unknown extension shows as its default-alphabet character (03.38).
                Some(e) => text.push(gsm7_extension(e).unwrap_or_else(|| basic(e))),
                None => text.push(' '),
            }
        } else {
            text.push(basic(b));
        }
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sms::Template;

    fn china(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<FixedOffset> {
        CHINA.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap()
    }

    fn ucs2(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_be_bytes).collect()
    }

    /// An inbound file as smsd 3.1.21 writes it (header order and spelling as observed).
    fn smsd_file(from: &str, alphabet: &str, body: &[u8]) -> Vec<u8> {
        let mut file = format!(
            "From: {from}\nFrom_TOA: 91 international, ISDN/telephone\nFrom_SMSC: 8613800200500\n\
             Sent: 26-12-02 13:53:47\nReceived: 26-12-02 13:55:54\nSubject: GSM1\nModem: GSM1\n\
             IMSI: \nIMEI: \nReport: no\nAlphabet: {alphabet}\nLength: {}\n\n",
            body.len()
        )
        .into_bytes();
        file.extend_from_slice(body);
        file
    }

    fn message(id: i64, text: &str) -> Outgoing {
        Outgoing {
            id,
            phone: "13800138000".to_string(),
            template: Template::Status,
            params: Vec::new(),
            text: text.to_string(),
        }
    }

    fn spool() -> (tempfile::TempDir, Spool) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path()).settle(Duration::ZERO);
        for d in ["outgoing", "checked", "incoming", "sent", "failed"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        (dir, spool)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    // ---- outgoing files ----

    #[test]
    fn chinese_goes_as_ucs2_utf16be() {
        let file = outgoing_file("13800138000", "您好，办结了");
        let mut expected = b"To: 8613800138000\nAlphabet: UCS2\n\n".to_vec();
        expected.extend_from_slice(&[
            0x60, 0xA8, 0x59, 0x7D, 0xFF, 0x0C, 0x52, 0x9E, 0x7E, 0xD3, 0x4E, 0x86,
        ]);
        assert_eq!(file, expected);
    }

    #[test]
    fn ascii_goes_as_is() {
        assert_eq!(
            outgoing_file("13800138000", "Ticket A-1234 ready @ 9:00 (100%)"),
            b"To: 8613800138000\n\nTicket A-1234 ready @ 9:00 (100%)".to_vec()
        );
    }

    #[test]
    fn anything_beyond_plain_gsm_ascii_goes_as_ucs2() {
        for text in ["a[1]", "x`y", "{}", "a~b", "café", "５", "tab\there", "👍"] {
            let file = outgoing_file("13800138000", text);
            let mut expected = b"To: 8613800138000\nAlphabet: UCS2\n\n".to_vec();
            expected.extend(ucs2(text));
            assert_eq!(file, expected, "{text}");
        }
        // An emoji is a surrogate pair.
        assert!(outgoing_file("13800138000", "👍").ends_with(&[0xD8, 0x3D, 0xDC, 0x4D]));
    }

    #[test]
    fn a_long_text_is_one_file_and_the_number_only_digits() {
        let text = "长".repeat(300);
        let file = outgoing_file("138-0013 8000\n", &text);
        let header = b"To: 8613800138000\nAlphabet: UCS2\n\n";
        assert_eq!(&file[..header.len()], header);
        assert_eq!(file.len(), header.len() + 600);
        assert_eq!(
            file.iter().filter(|&&b| b == b'\n').count(),
            3,
            "no newline in a UCS2 body of 长"
        );
    }

    // ---- parsing inbound files ----

    #[test]
    fn parses_smsd_ucs2_file_with_emoji() {
        let text = "您好，查询A1234进度👍\n谢谢";
        let file = smsd_file("8613800138000", "UCS2", &ucs2(text));
        let m = parse_incoming(&file, "GSM1.W9VuhA", CHINA).unwrap();
        assert_eq!(m.from, "13800138000");
        assert_eq!(m.text, text);
        assert_eq!(m.received, china(2026, 12, 2, 13, 55, 54));
        assert_eq!(m.reference, "GSM1.W9VuhA");
    }

    #[test]
    fn parses_iso_and_utf8_bodies() {
        let file = smsd_file("8613800138000", "ISO", b"Price 5\xA4, caf\xE9");
        assert_eq!(
            parse_incoming(&file, "r", CHINA).unwrap().text,
            "Price 5€, café"
        );
        let file = smsd_file("8613800138000", "UTF-8", "查询 A1234".as_bytes());
        assert_eq!(
            parse_incoming(&file, "r", CHINA).unwrap().text,
            "查询 A1234"
        );
        // No Alphabet header: UTF-8 when it is, else ISO-8859-15.
        let file = b"From: 8613800138000\n\n\xE6\x9F\xA5\xE8\xAF\xA2 1";
        assert_eq!(parse_incoming(file, "r", CHINA).unwrap().text, "查询 1");
        let file = b"From: 8613800138000\n\ncaf\xE9";
        assert_eq!(parse_incoming(file, "r", CHINA).unwrap().text, "café");
        // GSM (cs_convert = no): one septet per byte, with the escape table.
        let file = smsd_file(
            "8613800138000",
            "GSM",
            b"\x00 \x1B\x65 \x11x\x1B\x3Ca\x1B\x3E\x02",
        );
        assert_eq!(
            parse_incoming(&file, "r", CHINA).unwrap().text,
            "@ € _x[a]$"
        );
    }

    #[test]
    fn headers_by_name_unknown_ignored_any_order_crlf() {
        let file = b"X-Future: 1\r\nLength: 2\r\nAlphabet: UCS2\r\nReceived: 26-01-05 08:00:09\r\nfrom: 8613912345678\r\nPos: ...^~here(3)\r\n\r\n\x4F\x60";
        let m = parse_incoming(file, "GSM1.x", CHINA).unwrap();
        assert_eq!((m.from.as_str(), m.text.as_str()), ("13912345678", "你"));
        assert_eq!(m.received, china(2026, 1, 5, 8, 0, 9));
    }

    #[test]
    fn country_code_removed() {
        let from = |f: &str, toa: Option<&str>| {
            let mut file = format!("From: {f}\n");
            if let Some(toa) = toa {
                file.push_str(&format!("From_TOA: {toa}\n"));
            }
            file.push_str("\nx");
            parse_incoming(file.as_bytes(), "r", CHINA).unwrap().from
        };
        assert_eq!(from("8613800138000", None), "13800138000");
        assert_eq!(from("+8613800138000", None), "13800138000");
        assert_eq!(
            from("8613800138000", Some("91 international, ISDN/telephone")),
            "13800138000"
        );
        assert_eq!(from("+8613800138000", Some("81 national")), "13800138000");
        assert_eq!(
            from("8610086", Some("91 international, ISDN/telephone")),
            "10086"
        );
        // Not China's code, or a national number: as given.
        assert_eq!(from("85291234567", None), "85291234567");
        assert_eq!(
            from("868001", Some("A1 national, ISDN/telephone")),
            "868001"
        );
        assert_eq!(from("10086", None), "10086");
        assert_eq!(from("ChinaMobile", Some("D0 alphanumeric")), "ChinaMobile");
        assert_eq!(from("86", None), "86");
    }

    #[test]
    fn times_two_digit_years_in_local_zone() {
        let at = |headers: &str| {
            parse_incoming(
                format!("From: 8613800138000\n{headers}\nx").as_bytes(),
                "r",
                CHINA,
            )
            .unwrap()
            .received
        };
        assert_eq!(
            at("Received: 99-12-31 23:59:59\n"),
            china(2099, 12, 31, 23, 59, 59)
        );
        assert_eq!(
            at("Received: 00-01-01 00:00:00\n"),
            china(2000, 1, 1, 0, 0, 0)
        );
        assert_eq!(
            at("Received: 2026-03-04 05:06:07\n"),
            china(2026, 3, 4, 5, 6, 7)
        );
        // Received preferred; Sent when Received is missing or garbled.
        assert_eq!(
            at("Sent: 26-01-01 10:00:00\nReceived: 26-01-01 10:00:05\n"),
            china(2026, 1, 1, 10, 0, 5)
        );
        assert_eq!(
            at("Sent: 26-01-01 10:00:00\nReceived: 26-13-01 10:00:05\n"),
            china(2026, 1, 1, 10, 0, 0)
        );
        // Neither: now.
        let before = Utc::now();
        let now = at("Received: yesterday\n");
        assert!(now >= before && now <= Utc::now() + chrono::Duration::seconds(1));
        assert_eq!(now.offset(), &CHINA);
        // Another zone for the daemon's clock.
        let utc = FixedOffset::east_opt(0).unwrap();
        let m = parse_incoming(
            b"From: 8613800138000\nReceived: 26-12-02 13:55:54\n\nx",
            "r",
            utc,
        )
        .unwrap();
        assert_eq!(m.received, china(2026, 12, 2, 21, 55, 54));
    }

    #[test]
    fn odd_and_truncated_utf16_never_panics() {
        let mut body = ucs2("好👍");
        body.pop(); // half of the low surrogate
        let m = parse_incoming(&smsd_file("8613800138000", "UCS2", &body), "r", CHINA).unwrap();
        assert_eq!(m.text, "好\u{FFFD}\u{FFFD}");
        let mut body = ucs2("好");
        body.extend([0xD8, 0x3D]); // a lone high surrogate
        let m = parse_incoming(&smsd_file("8613800138000", "UCS2", &body), "r", CHINA).unwrap();
        assert_eq!(m.text, "好\u{FFFD}");
        let m = parse_incoming(&smsd_file("8613800138000", "UCS2", b""), "r", CHINA).unwrap();
        assert_eq!(m.text, "");
    }

    #[test]
    fn malformed_files_are_errors() {
        let bad: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"From: 8613800138000\nAlphabet: UCS2", "blank line"),
            (b"From: 8613800138000\nAlphabet: UCS2\n", "blank line"),
            (b"Alphabet: UCS2\n\nx", "From"),
            (b"From: \n\nx", "empty From"),
            (b"From: 8613800138000\nthis is no header\n\nx", "header line"),
            (b": 1\nFrom: 8613800138000\n\nx", "header line"),
            (b"From: 8613800138000\nAlphabet: binary\n\n\x00\x01", "binary"),
            (b"From: 8613800138000\nAlphabet: unknown\n\nx", "unknown"),
            (b"Error: Cannot decode PDU, see text part for details.\nFrom: 8613800138000\n\nPosition 3", "decode"),
            (b"From: 8613800138000\nAlphabet: ISO\n\nSMS STATUS REPORT\nMessage_id: 1\nStatus: 0,Ok", "report"),
        ];
        for (file, why) in bad {
            let e = parse_incoming(file, "r", CHINA).unwrap_err();
            assert!(e.contains(why), "{e:?} should say {why:?}");
        }
        let mut huge = b"From: 8613800138000\n\n".to_vec();
        huge.resize(MAX_FILE_BYTES + 1, b'x');
        assert!(parse_incoming(&huge, "r", CHINA)
            .unwrap_err()
            .contains("larger"));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let prefixes: [&[u8]; 4] = [
            b"",
            b"From: 86138\n",
            b"From: 86138\nAlphabet: UCS2\n\n",
            b"From: 86\nAlphabet: GSM\n\n",
        ];
        for round in 0..3000 {
            let mut file = prefixes[round % 4].to_vec();
            let len = (next() % 300) as usize;
            file.extend((0..len).map(|_| match next() % 5 {
                0 => b'\n',
                1 => b':',
                2 => 0x1B,
                _ => next() as u8,
            }));
            let _ = parse_incoming(&file, "r", CHINA);
        }
    }

    // ---- the spool ----

    #[test]
    fn submit_writes_the_file_through_tmp() {
        let (dir, spool) = spool();
        assert_eq!(
            spool.submit(&message(7, "您好")),
            Handed::Accepted {
                reference: "daiban-7".into()
            }
        );
        assert_eq!(
            fs::read(dir.path().join("outgoing/daiban-7")).unwrap(),
            outgoing_file("13800138000", "您好")
        );
        assert!(
            names(&dir.path().join("tmp")).is_empty(),
            "nothing left in tmp/"
        );
        assert_eq!(spool.state(7), SpoolState::Waiting);
        assert_eq!(spool.state(8), SpoolState::Absent);
    }

    #[test]
    fn submit_is_idempotent_wherever_smsd_moved_the_file() {
        for place in ["outgoing", "checked", "sent", "failed"] {
            let (dir, spool) = spool();
            let earlier = dir.path().join(place).join("daiban-42");
            fs::write(&earlier, b"To: 8613800138000\n\nearlier").unwrap();
            for _ in 0..2 {
                assert_eq!(
                    spool.submit(&message(42, "另一条")),
                    Handed::Accepted {
                        reference: "daiban-42".into()
                    },
                    "{place}"
                );
            }
            assert_eq!(
                fs::read(&earlier).unwrap(),
                b"To: 8613800138000\n\nearlier",
                "{place}: untouched"
            );
            for other in ["outgoing", "checked", "sent", "failed", "tmp"] {
                if other != place {
                    assert!(
                        names(&dir.path().join(other)).is_empty(),
                        "{place}: nothing written to {other}"
                    );
                }
            }
        }
    }

    #[test]
    fn submit_overwrites_a_leftover_tmp_file_and_refuses_bad_numbers() {
        let (dir, spool) = spool();
        fs::write(dir.path().join("tmp/daiban-5"), b"To: 86138").unwrap(); // crashed mid-write
        assert!(matches!(
            spool.submit(&message(5, "好")),
            Handed::Accepted { .. }
        ));
        assert_eq!(
            fs::read(dir.path().join("outgoing/daiban-5")).unwrap(),
            outgoing_file("13800138000", "好")
        );
        for phone in [
            "8613800138000",
            "+8613800138000",
            "1380013800",
            "23800138000",
            "13800138000\nTo: 1",
        ] {
            let msg = Outgoing {
                phone: phone.to_string(),
                ..message(6, "好")
            };
            assert!(
                matches!(spool.submit(&msg), Handed::Failed { retry: false, .. }),
                "{phone:?}"
            );
        }
        assert_eq!(names(&dir.path().join("outgoing")), ["daiban-5"]);
        // No outgoing/ (smsd not installed yet): worth retrying, nothing left behind.
        fs::remove_dir_all(dir.path().join("outgoing")).unwrap();
        assert!(matches!(
            spool.submit(&message(9, "好")),
            Handed::Failed { retry: true, .. }
        ));
        assert!(names(&dir.path().join("tmp")).is_empty());
    }

    #[test]
    fn no_partial_file_is_ever_in_outgoing() {
        let (dir, spool) = spool();
        let outgoing = dir.path().join("outgoing");
        let text = "村".repeat(4000); // 8 KB bodies: many write calls if written in place
        let expected = outgoing_file("13800138000", &text);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let mut seen = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    for entry in fs::read_dir(&outgoing).unwrap() {
                        let path = entry.unwrap().path();
                        if let Ok(bytes) = fs::read(&path) {
                            assert!(bytes == expected, "{} was partial", path.display());
                            seen += 1;
                        }
                    }
                }
                seen
            });
            for id in 0..100 {
                assert!(matches!(
                    spool.submit(&message(id, &text)),
                    Handed::Accepted { .. }
                ));
                // Like smsd: take it away again.
                if id % 2 == 0 {
                    fs::rename(
                        outgoing.join(file_name(id)),
                        dir.path().join("sent").join(file_name(id)),
                    )
                    .unwrap();
                }
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(watcher.join().unwrap() > 0);
        });
        assert_eq!(names(&outgoing).len(), 50);
    }

    #[test]
    fn state_follows_the_file() {
        let (dir, spool) = spool();
        let file = |place: &str, id: i64| dir.path().join(place).join(file_name(id));
        fs::write(file("checked", 1), b"To: 8613800138000\n\nx").unwrap();
        fs::write(
            file("sent", 2),
            b"To: 8613800138000\nModem: GSM1\nSent: 26-12-02 13:54:07\n\nx",
        )
        .unwrap();
        fs::write(
            file("failed", 3),
            b"To: 8613800138000\nAlphabet: UCS2\nFail_reason: No text or data\nFailed: 26-12-02 13:56:35\n\n",
        )
        .unwrap();
        fs::write(file("failed", 4), b"To: 8613800138000\n\nx").unwrap();
        fs::write(file("failed", 5), b"garbage").unwrap();
        assert_eq!(spool.state(1), SpoolState::Waiting);
        assert_eq!(spool.state(2), SpoolState::Sent);
        assert_eq!(spool.state(3), SpoolState::Failed("No text or data".into()));
        assert!(matches!(spool.state(4), SpoolState::Failed(r) if r.contains("unknown")));
        assert!(matches!(spool.state(5), SpoolState::Failed(r) if r.contains("unknown")));
        assert_eq!(spool.state(6), SpoolState::Absent);
    }

    #[test]
    fn incoming_oldest_first_bad_files_set_aside_once() {
        let (dir, spool) = spool();
        let incoming = dir.path().join("incoming");
        let put = |name: &str, bytes: &[u8], secs_ago: u64| {
            let path = incoming.join(name);
            fs::write(&path, bytes).unwrap();
            let file = File::options().write(true).open(&path).unwrap();
            file.set_modified(SystemTime::now() - Duration::from_secs(secs_ago))
                .unwrap();
        };
        put(
            "GSM1.newer",
            &smsd_file("8613800000002", "UCS2", &ucs2("二")),
            10,
        );
        put(
            "GSM1.older",
            &smsd_file("8613800000001", "UCS2", &ucs2("一")),
            20,
        );
        put("GSM1.broken", b"From: 8613800000003\nno blank line", 15);
        put("GSM1.huge", &vec![b'x'; MAX_FILE_BYTES * 3], 15);
        // smsd's own files and files being written: left alone.
        put("smsd_script.AbCdEf", b"#!/bin/sh\nexit 0\n", 30);
        put("GSM1-concatenated", b"1 2 3 0791...\n", 30);
        put(".hidden", b"x", 30);
        put("GSM1.locked.LOCK", b"", 30);
        put("LOCKEDGSM1.x", b"x", 30);
        put(
            "GSM1.locked",
            &smsd_file("8613800000004", "UCS2", &ucs2("四")),
            30,
        );
        fs::create_dir(incoming.join("subdir")).unwrap();

        let got = spool.incoming();
        let texts: Vec<(&str, &str)> = got
            .iter()
            .map(|(_, m)| (m.from.as_str(), m.text.as_str()))
            .collect();
        assert_eq!(texts, [("13800000001", "一"), ("13800000002", "二")]);
        assert_eq!(got[0].0, incoming.join("GSM1.older"));
        assert_eq!(got[0].1.reference, "GSM1.older");
        assert_eq!(
            names(&dir.path().join("processed")),
            ["GSM1.broken.bad", "GSM1.huge.bad"]
        );

        // Handled: moved to processed/; a name smsd reused gets a suffix.
        fs::write(
            dir.path().join("processed/GSM1.older"),
            b"an earlier message",
        )
        .unwrap();
        for (path, _) in &got {
            spool.processed(path).unwrap();
        }
        assert!(
            spool.incoming().is_empty(),
            "nothing again, bad files not looked at twice"
        );
        assert_eq!(
            names(&dir.path().join("processed")),
            [
                "GSM1.broken.bad",
                "GSM1.huge.bad",
                "GSM1.newer",
                "GSM1.older",
                "GSM1.older.1"
            ]
        );
        assert!(spool.processed(&incoming.join("GSM1.gone")).is_err());
        // The lock gone: the file is read.
        fs::remove_file(incoming.join("GSM1.locked.LOCK")).unwrap();
        assert_eq!(spool.incoming().len(), 1);
    }

    #[test]
    fn young_inbound_files_wait_for_smsd_to_finish() {
        let (dir, spool) = spool();
        let spool = spool.settle(Duration::from_secs(60));
        fs::write(dir.path().join("incoming/GSM1.fresh"), b"").unwrap(); // smsd has just created it
        assert!(spool.incoming().is_empty());
        assert!(
            dir.path().join("incoming/GSM1.fresh").exists(),
            "not set aside as bad"
        );
    }

    #[test]
    fn a_missing_incoming_dir_is_no_messages() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("none"));
        assert!(spool.incoming().is_empty());
        assert!(dir.path().join("none/tmp").is_dir() && dir.path().join("none/processed").is_dir());
    }
}
