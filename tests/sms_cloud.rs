//! The cloud SMS gateways (Aliyun, Tencent Cloud) end to end across real processes, with no
//! internet: a township whose `[sms]` names a provider whose endpoint is a fake provider this
//! test runs on 127.0.0.1. The fake records every request and answers from a script (accepted,
//! retryable error, final error), so the test sees what the server put on the wire:
//!
//! - Aliyun: a supplement requested at the township → a SendSms signed `ACS3-HMAC-SHA256`
//!   (checked here from the bytes received) with the phone, the template code, the missing
//!   material and the ticket number, `OutId` = the outbox row; an SMS-up push with a status
//!   query → Aliyun's expected answer and a status reply; the same push again → no second
//!   reply; a wrong token or provider → 404, nothing recorded.
//! - Retries: a throttled message stays queued with its error and is sent again after the
//!   backoff (30 s); a number the provider refuses is failed for good, never retried, and the
//!   console's outbox shows 发送失败 with the phone masked.
//! - Tencent Cloud: the same wiring with `TC3-HMAC-SHA256`, `PhoneNumberSet` in E.164 and
//!   `TemplateParamSet`; a reply callback → `{"result":0,"errmsg":"OK"}` and a reply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_core::domain::catalog::{Catalog, HandlingLevel};
use agent_core::domain::number::TicketNumber;
use agent_core::domain::ticket::NewTicket;
use agent_core::store::Store;
use agent_core::sync::client::sync_now;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use support::console;
use support::*;
use sync_server::sms::sign::{hmac_sha256, sha256_hex};
use sync_server::sms::Template;

const PHONE: &str = "13912345678";
/// A number the provider refuses (in the retry test).
const REFUSED: &str = "13700001111";
const SIGN: &str = "示范县代办";
const TOKEN: &str = "cb-5f0e2a9c7d4b";

const ALIYUN_KEY_ID: &str = "LTAI5tFakeKeyForTests";
const ALIYUN_SECRET: &str = "fake-aliyun-secret-0123456789";
const TENCENT_SECRET_ID: &str = "AKIDfakeSecretIdForTests";
const TENCENT_SECRET_KEY: &str = "fake-tencent-key-0123456789";
const TENCENT_APP_ID: &str = "1400000042";

/// Every template name with its Aliyun template code and Tencent TemplateId.
const TEMPLATES: [(&str, &str, &str); 11] = [
    ("status", "SMS_460000101", "2000101"),
    ("check_number", "SMS_460000102", "2000102"),
    ("unknown", "SMS_460000103", "2000103"),
    ("help", "SMS_460000111", "2000111"),
    ("supplement", "SMS_460000104", "2000104"),
    ("result_ready", "SMS_460000105", "2000105"),
    ("overdue", "SMS_460000106", "2000106"),
    ("rate_invite", "SMS_460000107", "2000107"),
    ("rated", "SMS_460000108", "2000108"),
    ("which_ticket", "SMS_460000109", "2000109"),
    ("unsubscribed", "SMS_460000110", "2000110"),
];

fn aliyun_code(name: &str) -> &'static str {
    TEMPLATES.iter().find(|t| t.0 == name).unwrap().1
}

fn tencent_id(name: &str) -> &'static str {
    TEMPLATES.iter().find(|t| t.0 == name).unwrap().2
}

// ---------------------------------------------------------------------------------------------
// The fake provider.

/// One request as the fake received it.
#[derive(Debug, Clone)]
struct Recorded {
    at: DateTime<Utc>,
    method: String,
    path: String,
    /// The query as on the wire (percent-encoded).
    raw_query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    /// Every value of header `name` (case-insensitive), in order.
    fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).first().copied()
    }

    /// A query parameter, decoded.
    fn param(&self, name: &str) -> Option<String> {
        query_pairs(&self.raw_query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The 11-digit number the message goes to (Aliyun's `PhoneNumbers`, Tencent's first
    /// `PhoneNumberSet` entry without `+86`).
    fn phone(&self) -> Option<String> {
        if let Some(p) = self.param("PhoneNumbers") {
            return Some(p);
        }
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        let first = body["PhoneNumberSet"][0].as_str()?;
        Some(first.strip_prefix("+86").unwrap_or(first).to_owned())
    }
}

/// Status and JSON body.
type Answer = (u16, Value);

struct Fake {
    url: String,
    /// `127.0.0.1:PORT`: the `Host` a client must send.
    host: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// (phone, answer): the next request to that phone gets the answer, once.
    script: Arc<Mutex<Vec<(String, Answer)>>>,
}

impl Fake {
    /// A provider answering `accepted(request)` unless the script says otherwise. Runs until
    /// the test process ends.
    fn start(accepted: fn(&Recorded) -> Answer) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Mutex<Vec<(String, Answer)>>> = Arc::new(Mutex::new(Vec::new()));
        let (recorded, scripted) = (Arc::clone(&requests), Arc::clone(&script));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let Some(req) = read_request(&mut stream) else {
                    continue;
                };
                let (status, body) = {
                    let mut script = scripted.lock().unwrap();
                    let phone = req.phone();
                    match script.iter().position(|(p, _)| Some(p) == phone.as_ref()) {
                        Some(i) => script.remove(i).1,
                        None => accepted(&req),
                    }
                };
                recorded.lock().unwrap().push(req);
                let body = body.to_string();
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json;charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body.as_bytes());
                let _ = stream.flush();
            }
        });
        Fake {
            url: format!("http://{host}"),
            host,
            requests,
            script,
        }
    }

    /// The next request to `phone` gets `answer`.
    fn script(&self, phone: &str, answer: Answer) {
        self.script.lock().unwrap().push((phone.to_owned(), answer));
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests so far to `phone`, in order.
    fn to(&self, phone: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.phone().as_deref() == Some(phone))
            .collect()
    }

    /// Wait (at most `limit`) until `n` requests to `phone` came; all of them so far.
    fn wait_for(&self, phone: &str, n: usize, limit: Duration) -> Vec<Recorded> {
        wait_until(
            limit,
            || format!("{n} request(s) to {phone}; got: {:#?}", self.requests()),
            || Some(self.to(phone)).filter(|r| r.len() >= n),
        )
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, raw_query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target, String::new()),
    };
    Some(Recorded {
        at: Utc::now(),
        method,
        path,
        raw_query,
        headers,
        body,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], escaped) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// RFC 3986 percent-encoding (Aliyun's canonical form).
fn rfc3986(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Name=value` parts of an `Authorization` header after the algorithm.
fn auth_parts(authorization: &str, algorithm: &str) -> Vec<(String, String)> {
    let rest = authorization
        .strip_prefix(&format!("{algorithm} "))
        .unwrap_or_else(|| panic!("not {algorithm}: {authorization}"));
    rest.split(',')
        .map(|p| {
            let (k, v) = p.trim().split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn part<'a>(parts: &'a [(String, String)], name: &str) -> &'a str {
    parts
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {parts:?}"))
}

/// Verify Aliyun's V3 signature over the request as received: the canonical request rebuilt
/// from the wire (query re-encoded and sorted, the signed headers as sent, each once), HMAC
/// with the configured secret.
fn check_aliyun_signature(r: &Recorded) {
    let parts = auth_parts(r.header("authorization").unwrap(), "ACS3-HMAC-SHA256");
    assert_eq!(part(&parts, "Credential"), ALIYUN_KEY_ID);
    let signed: Vec<&str> = part(&parts, "SignedHeaders").split(';').collect();
    let mut sorted = signed.clone();
    sorted.sort_unstable();
    assert_eq!(signed, sorted, "signed headers sorted");
    for required in [
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
    ] {
        assert!(
            signed.contains(&required),
            "{required} not signed: {signed:?}"
        );
    }
    let payload = sha256_hex(&r.body);
    assert_eq!(r.header("x-acs-content-sha256"), Some(payload.as_str()));
    let mut query: Vec<(String, String)> = query_pairs(&r.raw_query)
        .iter()
        .map(|(k, v)| (rfc3986(k), rfc3986(v)))
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let headers: String = signed
        .iter()
        .map(|name| {
            let values = r.headers_named(name);
            assert_eq!(values.len(), 1, "{name} sent once: {:?}", r.headers);
            format!("{name}:{}\n", values[0].trim())
        })
        .collect();
    let canonical = format!(
        "{}\n{}\n{canonical_query}\n{headers}\n{}\n{payload}",
        r.method,
        r.path,
        signed.join(";")
    );
    let to_sign = format!("ACS3-HMAC-SHA256\n{}", sha256_hex(canonical.as_bytes()));
    let expected = hex(&hmac_sha256(ALIYUN_SECRET.as_bytes(), to_sign.as_bytes()));
    assert_eq!(
        part(&parts, "Signature"),
        expected,
        "canonical request:\n{canonical}"
    );
    // Signed now (Aliyun refuses a request more than 15 minutes off).
    let date = DateTime::parse_from_rfc3339(r.header("x-acs-date").unwrap()).unwrap();
    assert!(
        (r.at - date.with_timezone(&Utc)).num_seconds().abs() < 60,
        "{date}"
    );
}

/// Verify Tencent Cloud's TC3 signature over the request as received.
fn check_tencent_signature(r: &Recorded) {
    let parts = auth_parts(r.header("authorization").unwrap(), "TC3-HMAC-SHA256");
    let credential: Vec<&str> = part(&parts, "Credential").split('/').collect();
    let [id, date, service, term] = credential[..] else {
        panic!("credential {credential:?}");
    };
    assert_eq!(
        (id, service, term),
        (TENCENT_SECRET_ID, "sms", "tc3_request")
    );
    let timestamp: i64 = r.header("x-tc-timestamp").unwrap().parse().unwrap();
    assert!(
        (r.at.timestamp() - timestamp).abs() < 60,
        "X-TC-Timestamp {timestamp}"
    );
    let day = Utc
        .timestamp_opt(timestamp, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(date, day, "the credential's date is the timestamp's (UTC)");
    let signed: Vec<&str> = part(&parts, "SignedHeaders").split(';').collect();
    assert_eq!(signed, ["content-type", "host"]);
    let headers: String = signed
        .iter()
        .map(|name| {
            let values = r.headers_named(name);
            assert_eq!(values.len(), 1, "{name} sent once: {:?}", r.headers);
            format!("{name}:{}\n", values[0].trim().to_ascii_lowercase())
        })
        .collect();
    let canonical = format!(
        "{}\n{}\n{}\n{headers}\n{}\n{}",
        r.method,
        r.path,
        r.raw_query,
        signed.join(";"),
        sha256_hex(&r.body)
    );
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{date}/sms/tc3_request\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k_date = hmac_sha256(
        format!("TC3{TENCENT_SECRET_KEY}").as_bytes(),
        date.as_bytes(),
    );
    let k_service = hmac_sha256(&k_date, b"sms");
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    let expected = hex(&hmac_sha256(&k_signing, to_sign.as_bytes()));
    assert_eq!(
        part(&parts, "Signature"),
        expected,
        "canonical request:\n{canonical}"
    );
}

/// Aliyun accepts: `BizId` derived from `OutId`, so the outbox's reference can be checked.
fn aliyun_accepted(r: &Recorded) -> Answer {
    let out_id = r.param("OutId").unwrap_or_default();
    (
        200,
        json!({"Code": "OK", "Message": "OK", "BizId": format!("biz-{out_id}"),
               "RequestId": "F655A8D5-B967-440B-8683-DAD6FF8DE990"}),
    )
}

fn aliyun_error(code: &str, message: &str) -> Answer {
    (
        200,
        json!({"Code": code, "Message": message,
               "RequestId": "A2B1E9F0-0C3D-4E5F-8A7B-6C5D4E3F2A1B"}),
    )
}

fn tencent_accepted(r: &Recorded) -> Answer {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let context = body["SessionContext"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (
        200,
        json!({"Response": {"SendStatusSet": [{
            "SerialNo": format!("serial-{context}"),
            "PhoneNumber": body["PhoneNumberSet"][0], "Fee": 1, "SessionContext": context,
            "Code": "Ok", "Message": "send success", "IsoCode": "CN"}],
            "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}}),
    )
}

// ---------------------------------------------------------------------------------------------
// The township and its database.

/// Poll `found` every 50 ms until it gives a value; panics with `what()` after `limit`.
fn wait_until<T>(
    limit: Duration,
    what: impl Fn() -> String,
    mut found: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = found() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sms_head(gateway: &str) -> String {
    format!(
        "\n[sms]\ngateway = \"{gateway}\"\nsign_name = \"{SIGN}\"\npoll_secs = 1\n\
         callback_token = \"{TOKEN}\"\n"
    )
}

fn aliyun_section(endpoint: &str) -> String {
    let mut s = sms_head("aliyun");
    s.push_str(&format!(
        "\n[sms.aliyun]\naccess_key_id = \"{ALIYUN_KEY_ID}\"\naccess_key_secret = \
         \"{ALIYUN_SECRET}\"\nendpoint = \"{endpoint}\"\nsign_name = \"{SIGN}\"\n\n\
         [sms.aliyun.templates]\n"
    ));
    for (name, code, _) in TEMPLATES {
        s.push_str(&format!("{name} = \"{code}\"\n"));
    }
    s
}

fn tencent_section(endpoint: &str) -> String {
    let mut s = sms_head("tencent");
    s.push_str(&format!(
        "\n[sms.tencent]\nsecret_id = \"{TENCENT_SECRET_ID}\"\nsecret_key = \
         \"{TENCENT_SECRET_KEY}\"\nendpoint = \"{endpoint}\"\nregion = \"ap-guangzhou\"\n\
         sdk_app_id = \"{TENCENT_APP_ID}\"\nsign_name = \"{SIGN}\"\n\n[sms.tencent.templates]\n"
    ));
    for (name, _, id) in TEMPLATES {
        s.push_str(&format!("{name} = \"{id}\"\n"));
    }
    s
}

/// A district, and a township under it whose daiban.toml ends with `sms`, serving and holding
/// the directory.
fn district_and_sms_township(dir: &Path, sms: &str) -> (Server, Server) {
    let district_data = dir.join("district");
    init_district(&district_data);
    let district = serve(&district_data);
    let data = dir.join("township");
    init_township(&data, TOWNSHIP_A, &district.url);
    enroll_township(&district, &data, TOWNSHIP_A);
    let mut config = std::fs::read_to_string(data.join("daiban.toml")).unwrap();
    config.push_str(sms);
    std::fs::write(data.join("daiban.toml"), config).unwrap();
    let township = serve(&data);
    sync_upward(&township);
    (district, township)
}

/// Demo forms for items the township handles itself (with materials), one per phone.
fn forms(phones: &[&str]) -> Vec<NewTicket> {
    let catalog = Catalog::demo();
    let forms: Vec<NewTicket> = agent_core::demo::forms(11, 300, &catalog)
        .into_iter()
        .filter(|f| {
            catalog
                .item(&f.item_code)
                .is_some_and(|i| i.level == HandlingLevel::Township && !i.materials.is_empty())
        })
        .zip(phones)
        .map(|(mut f, phone)| {
            f.phone = Some((*phone).to_owned());
            f
        })
        .collect();
    assert_eq!(forms.len(), phones.len());
    forms
}

/// Register `form` at the tablet, sync, and have the township ask for the item's first
/// material: (number, item name, material).
fn register_and_request_supplement(
    tablet: &mut Store,
    township: &Server,
    form: &NewTicket,
) -> (TicketNumber, String, String) {
    let item = Catalog::demo().item(&form.item_code).unwrap().clone();
    let number = tablet.register(form).unwrap().view.ticket.number;
    sync_now(tablet, township.url.as_str()).unwrap();
    let material = item.materials[0].name.clone();
    staff_ok(
        township,
        "township",
        &number,
        "supplement_requested",
        json!({ "missing": [material] }),
    );
    (number, item.name, material)
}

#[derive(Debug, Clone)]
struct OutRow {
    id: i64,
    reason: String,
    phone: String,
    template: String,
    state: String,
    attempts: i64,
    next_try: String,
    reference: Option<String>,
    error: Option<String>,
}

fn db(data: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(data.join("server.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

fn outbox(data: &Path) -> Vec<OutRow> {
    let conn = db(data);
    let mut stmt = conn
        .prepare(
            "SELECT id, reason, phone, template, state, attempts, next_try, reference, error
             FROM sms_outbox ORDER BY id",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok(OutRow {
                id: r.get(0)?,
                reason: r.get(1)?,
                phone: r.get(2)?,
                template: r.get(3)?,
                state: r.get(4)?,
                attempts: r.get(5)?,
                next_try: r.get(6)?,
                reference: r.get(7)?,
                error: r.get(8)?,
            })
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    rows
}

/// Wait until the outbox holds a row for which `f` holds.
fn wait_for_row(data: &Path, what: &str, f: impl Fn(&OutRow) -> bool) -> OutRow {
    wait_until(
        Duration::from_secs(20),
        || format!("{what}; outbox: {:#?}", outbox(data)),
        || outbox(data).into_iter().find(|r| f(r)),
    )
}

/// The inbox: (reference, phone, asked, ticket).
fn inbox(data: &Path) -> Vec<(String, String, String, Option<String>)> {
    let conn = db(data);
    let mut stmt = conn
        .prepare("SELECT reference, phone, asked, ticket FROM sms_inbox ORDER BY reference")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    rows
}

/// POST a provider's push to the township: (status, body).
fn push(township: &Server, path: &str, body: &Value) -> (u16, String) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}{path}", township.url))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().unwrap())
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

// ---------------------------------------------------------------------------------------------
// Aliyun.

#[test]
fn aliyun_supplement_notice_and_status_query_across_real_processes() {
    // The config below names every template there is.
    assert_eq!(
        TEMPLATES.map(|t| t.0),
        Template::ALL.map(Template::as_str),
        "every template has a code"
    );
    let fake = Fake::start(aliyun_accepted);
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_sms_township(dir.path(), &aliyun_section(&fake.url));
    let data = township.data.clone();
    let mut tablet = tablet(dir.path(), &township, 101, 1);
    let form = forms(&[PHONE]).remove(0);
    let (number, item, material) = register_and_request_supplement(&mut tablet, &township, &form);

    // The supplement notice: SendSms to the applicant, signed, with the template's values.
    let sent = fake.wait_for(PHONE, 1, Duration::from_secs(20)).remove(0);
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/"),
        "{sent:?}"
    );
    assert!(sent.body.is_empty(), "{sent:?}");
    assert_eq!(sent.header("x-acs-action"), Some("SendSms"));
    assert_eq!(sent.header("x-acs-version"), Some("2017-05-25"));
    assert_eq!(sent.headers_named("host"), [fake.host.as_str()]);
    assert_eq!(sent.param("PhoneNumbers").as_deref(), Some(PHONE));
    assert_eq!(sent.param("SignName").as_deref(), Some(SIGN));
    assert_eq!(
        sent.param("TemplateCode").as_deref(),
        Some(aliyun_code("supplement"))
    );
    let values = json_of(&sent.param("TemplateParam").unwrap());
    assert_eq!(values["missing"], material.as_str(), "{values}");
    assert_eq!(values["number"], number.as_str(), "{values}");
    assert_eq!(values["item"], item.as_str(), "{values}");
    check_aliyun_signature(&sent);
    // OutId is the outbox row, which records the provider's BizId.
    let row = wait_for_row(&data, "the supplement notice sent", |r| {
        r.reason.starts_with("supplement:") && r.state == "sent"
    });
    assert_eq!(sent.param("OutId"), Some(row.id.to_string()));
    assert_eq!(row.reference, Some(format!("biz-{}", row.id)));
    assert_eq!(
        (row.phone.as_str(), row.template.as_str(), row.attempts),
        (PHONE, "supplement", 1)
    );
    assert_eq!(row.error, None);

    // The applicant asks by SMS: Aliyun pushes the SMS-up report.
    let up = json!([{
        "phone_number": PHONE,
        "content": format!("查询 {number}"),
        "send_time": "2026-06-01 10:00:05",
        "sign_name": SIGN,
        "dest_code": "1234",
        "sequence_id": 1_234_567_890_u64,
    }]);
    let callback = format!("/sms/inbound/aliyun/{TOKEN}");
    let (status, answer) = push(&township, &callback, &up);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json_of(&answer), json!({"code": 0, "msg": "成功"}));
    let reply = fake.wait_for(PHONE, 2, Duration::from_secs(20)).remove(1);
    assert_eq!(
        reply.param("TemplateCode").as_deref(),
        Some(aliyun_code("status"))
    );
    let values = json_of(&reply.param("TemplateParam").unwrap());
    assert_eq!(values["number"], number.as_str(), "{values}");
    assert_eq!(values["stage"], "待补正", "{values}");
    assert!(
        values["next"].as_str().unwrap().contains(&material),
        "{values}"
    );
    check_aliyun_signature(&reply);
    assert_ne!(
        reply.header("x-acs-signature-nonce"),
        sent.header("x-acs-signature-nonce"),
        "a fresh nonce per request"
    );
    let replied = wait_for_row(&data, "the reply sent", |r| {
        r.reason == "reply:1234567890" && r.state == "sent"
    });
    assert_eq!(reply.param("OutId"), Some(replied.id.to_string()));
    assert_eq!(
        inbox(&data),
        [(
            "1234567890".to_owned(),
            PHONE.to_owned(),
            "query".to_owned(),
            Some(number.to_string())
        )]
    );

    // Aliyun pushes the same report again (it got no answer in time): answered, not handled
    // twice.
    let (status, answer) = push(&township, &callback, &up);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json_of(&answer), json!({"code": 0, "msg": "成功"}));
    assert_eq!(inbox(&data).len(), 1);
    assert_eq!(outbox(&data).len(), 2, "{:#?}", outbox(&data));

    // A wrong token, or another provider's path: a page that does not exist, nothing recorded.
    let mut near = TOKEN.to_owned();
    near.pop();
    near.push('x');
    let other = json!([{
        "phone_number": PHONE,
        "content": format!("查询 {number}"),
        "send_time": "2026-06-01 10:01:00",
        "sign_name": SIGN,
        "dest_code": "1234",
        "sequence_id": 1_234_567_891_u64,
    }]);
    for path in [
        format!("/sms/inbound/aliyun/{near}"),
        format!("/sms/inbound/aliyun/{TOKEN}0"),
        "/sms/inbound/aliyun/wrong".to_owned(),
        format!("/sms/inbound/tencent/{TOKEN}"),
        format!("/sms/inbound/smstools/{TOKEN}"),
    ] {
        let (status, body) = push(&township, &path, &other);
        assert_eq!(status, 404, "{path}: {body}");
    }
    assert_eq!(inbox(&data).len(), 1, "{:?}", inbox(&data));
    assert_eq!(outbox(&data).len(), 2, "{:#?}", outbox(&data));
    // Nothing more went out.
    assert!(outbox(&data).iter().all(|r| r.state == "sent"));
    assert_eq!(fake.requests().len(), 2, "{:#?}", fake.requests());
}

#[test]
fn aliyun_retries_a_throttled_message_and_gives_up_on_a_refused_number() {
    let fake = Fake::start(aliyun_accepted);
    fake.script(
        PHONE,
        aliyun_error("isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控Permits:10"),
    );
    fake.script(
        REFUSED,
        aliyun_error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"),
    );
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_sms_township(dir.path(), &aliyun_section(&fake.url));
    let data = township.data.clone();
    let mut tablet = tablet(dir.path(), &township, 101, 1);
    let both = forms(&[PHONE, REFUSED]);
    let (throttled_number, _, _) =
        register_and_request_supplement(&mut tablet, &township, &both[0]);
    let (refused_number, _, _) = register_and_request_supplement(&mut tablet, &township, &both[1]);

    // Throttled: still queued, one attempt, the provider's error, tried again in 30 s.
    let first = fake.wait_for(PHONE, 1, Duration::from_secs(20)).remove(0);
    let throttled = wait_for_row(&data, "the throttled attempt recorded", |r| {
        r.phone == PHONE && r.attempts == 1
    });
    assert_eq!(throttled.state, "queued", "{throttled:?}");
    assert!(
        throttled
            .error
            .as_deref()
            .is_some_and(|e| e.contains("isv.BUSINESS_LIMIT_CONTROL")),
        "{throttled:?}"
    );
    let next_try = DateTime::parse_from_rfc3339(&throttled.next_try).unwrap();
    let wait = next_try.with_timezone(&Utc) - first.at;
    assert!(
        (25..=35).contains(&wait.num_seconds()),
        "next try {wait} after the attempt"
    );
    assert!(next_try.with_timezone(&Utc) > Utc::now(), "{throttled:?}");

    // Refused: failed for good with the provider's reason.
    fake.wait_for(REFUSED, 1, Duration::from_secs(20));
    let refused = wait_for_row(&data, "the refusal recorded", |r| {
        r.phone == REFUSED && r.attempts == 1
    });
    assert_eq!(refused.state, "failed", "{refused:?}");
    assert!(
        refused
            .error
            .as_deref()
            .is_some_and(|e| e.contains("isv.MOBILE_NUMBER_ILLEGAL") && e.contains("非法手机号")),
        "{refused:?}"
    );

    // The township clerk's outbox page: each message's state and reason, phones masked.
    let cookie = console::session(&township, staff_login("township"), STAFF_PASSWORD);
    let (status, html) = console::get(&township, "/console/sms", &cookie);
    assert_eq!(status, 200, "{html}");
    assert!(
        !html.contains(PHONE) && !html.contains(REFUSED),
        "a phone in full: {html}"
    );
    let rows: Vec<&str> = html.split("<tr data-state=").skip(1).collect();
    let row_of = |masked: &str| {
        let found: Vec<&&str> = rows.iter().filter(|r| r.contains(masked)).collect();
        assert_eq!(found.len(), 1, "one row for {masked}: {html}");
        found[0].to_string()
    };
    let failed_row = row_of("137****1111");
    assert!(failed_row.starts_with("\"failed\""), "{failed_row}");
    assert!(
        failed_row.contains("发送失败")
            && failed_row.contains("isv.MOBILE_NUMBER_ILLEGAL")
            && failed_row.contains("补正通知")
            && failed_row.contains(refused_number.as_str()),
        "{failed_row}"
    );
    let queued_row = row_of("139****5678");
    assert!(queued_row.starts_with("\"queued\""), "{queued_row}");
    assert!(
        queued_row.contains("待发送")
            && !queued_row.contains("发送失败")
            && queued_row.contains("isv.BUSINESS_LIMIT_CONTROL")
            && queued_row.contains(throttled_number.as_str()),
        "{queued_row}"
    );

    // Once its wait is over, the throttled message goes out again (same OutId, new nonce).
    let again = fake.wait_for(PHONE, 2, Duration::from_secs(45)).remove(1);
    assert!(
        again.at >= next_try.with_timezone(&Utc),
        "retried at {} before its time {next_try}",
        again.at
    );
    assert_eq!(again.param("OutId"), first.param("OutId"));
    assert_eq!(again.param("TemplateParam"), first.param("TemplateParam"));
    assert_ne!(
        again.header("x-acs-signature-nonce"),
        first.header("x-acs-signature-nonce")
    );
    check_aliyun_signature(&again);
    let sent = wait_for_row(&data, "the retry recorded", |r| {
        r.phone == PHONE && r.state == "sent"
    });
    assert_eq!(sent.attempts, 2, "{sent:?}");
    assert_eq!(sent.error, None, "{sent:?}");
    assert_eq!(sent.reference, Some(format!("biz-{}", sent.id)));

    // The refused number was never tried again.
    assert_eq!(fake.to(REFUSED).len(), 1, "{:#?}", fake.to(REFUSED));
    let refused_now = outbox(&data)
        .into_iter()
        .find(|r| r.phone == REFUSED)
        .unwrap();
    assert_eq!(
        (refused_now.state.as_str(), refused_now.attempts),
        ("failed", 1)
    );
}

// ---------------------------------------------------------------------------------------------
// Tencent Cloud.

#[test]
fn tencent_supplement_notice_and_reply_callback_across_real_processes() {
    let fake = Fake::start(tencent_accepted);
    let dir = tempfile::tempdir().unwrap();
    let (_district, township) = district_and_sms_township(dir.path(), &tencent_section(&fake.url));
    let data = township.data.clone();
    let mut tablet = tablet(dir.path(), &township, 101, 1);
    let form = forms(&[PHONE]).remove(0);
    let (number, item, material) = register_and_request_supplement(&mut tablet, &township, &form);

    let sent = fake.wait_for(PHONE, 1, Duration::from_secs(20)).remove(0);
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/"),
        "{sent:?}"
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("x-tc-action"), Some("SendSms"));
    assert_eq!(sent.header("x-tc-version"), Some("2021-01-11"));
    assert_eq!(sent.header("x-tc-region"), Some("ap-guangzhou"));
    assert_eq!(sent.headers_named("host"), [fake.host.as_str()]);
    // The body as the SDK writes it: ASCII only, Chinese as \uXXXX.
    assert!(
        sent.body.is_ascii(),
        "{}",
        String::from_utf8_lossy(&sent.body)
    );
    let body = sent.body_json();
    assert_eq!(
        body["PhoneNumberSet"],
        json!([format!("+86{PHONE}")]),
        "{body}"
    );
    assert_eq!(body["TemplateId"], tencent_id("supplement"), "{body}");
    assert_eq!(body["SmsSdkAppId"], TENCENT_APP_ID, "{body}");
    assert_eq!(body["SignName"], SIGN, "{body}");
    assert_eq!(
        body["TemplateParamSet"],
        json!([number.as_str(), item, material, body["TemplateParamSet"][3]]),
        "{body}"
    );
    assert!(
        body["TemplateParamSet"][3]
            .as_str()
            .is_some_and(|p| !p.is_empty()),
        "{body}"
    );
    check_tencent_signature(&sent);
    let row = wait_for_row(&data, "the supplement notice sent", |r| {
        r.reason.starts_with("supplement:") && r.state == "sent"
    });
    assert_eq!(body["SessionContext"], row.id.to_string(), "{body}");
    assert_eq!(row.reference, Some(format!("serial-{}", row.id)));

    // The applicant's reply, as Tencent's reply callback posts it.
    let callback = json!({
        "extend": "",
        "mobile": PHONE,
        "nationcode": "86",
        "sign": SIGN,
        "text": format!("查询{number}"),
        "time": Utc::now().timestamp(),
    });
    let path = format!("/sms/inbound/tencent/{TOKEN}");
    let (status, answer) = push(&township, &path, &callback);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json_of(&answer), json!({"result": 0, "errmsg": "OK"}));
    let reply = fake.wait_for(PHONE, 2, Duration::from_secs(20)).remove(1);
    let body = reply.body_json();
    assert_eq!(
        body["PhoneNumberSet"],
        json!([format!("+86{PHONE}")]),
        "{body}"
    );
    assert_eq!(body["TemplateId"], tencent_id("status"), "{body}");
    let values = body["TemplateParamSet"].as_array().unwrap();
    assert_eq!(values[0], number.as_str(), "{body}");
    assert_eq!(values[2], "待补正", "{body}");
    check_tencent_signature(&reply);
    let inbox_now = inbox(&data);
    assert_eq!(inbox_now.len(), 1, "{inbox_now:?}");
    assert_eq!(
        (inbox_now[0].1.as_str(), inbox_now[0].2.as_str()),
        (PHONE, "query")
    );

    // The same callback again: answered, not handled twice. Aliyun's path: 404.
    let (status, answer) = push(&township, &path, &callback);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json_of(&answer), json!({"result": 0, "errmsg": "OK"}));
    let (status, answer) = push(
        &township,
        &format!("/sms/inbound/aliyun/{TOKEN}"),
        &callback,
    );
    assert_eq!(status, 404, "{answer}");
    assert_eq!(inbox(&data).len(), 1);
    let rows = wait_until(
        Duration::from_secs(20),
        || format!("both messages sent: {:#?}", outbox(&data)),
        || Some(outbox(&data)).filter(|rows| rows.iter().all(|r| r.state == "sent")),
    );
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(fake.requests().len(), 2, "{:#?}", fake.requests());
}

// ---------------------------------------------------------------------------------------------
// The checks above can fail.

/// A request as the product built it, as if received.
fn as_received(req: &sync_server::sms::sign::SignedRequest) -> Recorded {
    let rest = req.url.split_once("://").unwrap().1;
    let target = &rest[rest.find('/').unwrap()..];
    let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    Recorded {
        at: Utc::now(),
        method: req.method.to_owned(),
        path: path.to_owned(),
        raw_query: raw_query.to_owned(),
        headers: req.headers.clone(),
        body: req.body.clone(),
    }
}

fn fails(what: &str, check: fn(&Recorded), r: &Recorded) {
    let r = r.clone();
    let outcome = std::panic::catch_unwind(move || check(&r));
    assert!(outcome.is_err(), "{what}: the check passed");
}

#[test]
fn the_signature_checks_catch_a_tampered_request() {
    use sync_server::sms::aliyun::{self, AliyunConfig};
    use sync_server::sms::sign::Secret;
    use sync_server::sms::tencent::{self, TencentConfig};
    use sync_server::sms::Outgoing;

    let msg = Outgoing {
        id: 7,
        phone: PHONE.to_owned(),
        template: Template::Supplement,
        params: vec![
            ("number".to_owned(), "010101000123".to_owned()),
            ("missing".to_owned(), "户口簿、结婚证".to_owned()),
        ],
        text: String::new(),
    };
    let endpoint = "http://127.0.0.1:9".to_owned();
    let aliyun = AliyunConfig {
        access_key_id: ALIYUN_KEY_ID.to_owned(),
        access_key_secret: Secret::new(ALIYUN_SECRET),
        endpoint: endpoint.clone(),
        sign_name: SIGN.to_owned(),
        templates: TEMPLATES
            .iter()
            .map(|t| (t.0.to_owned(), t.1.to_owned()))
            .collect(),
    };
    let good = as_received(&aliyun::build_send_sms(&aliyun, &msg, Utc::now(), "abc123").unwrap());
    check_aliyun_signature(&good);
    let mut other_phone = good.clone();
    other_phone.raw_query = other_phone.raw_query.replace(PHONE, REFUSED);
    fails(
        "Aliyun, another phone",
        check_aliyun_signature,
        &other_phone,
    );
    let mut other_host = good.clone();
    for (name, value) in &mut other_host.headers {
        if name == "host" {
            *value = "dysmsapi.aliyuncs.com".to_owned();
        }
    }
    fails("Aliyun, another host", check_aliyun_signature, &other_host);
    let mut two_hosts = good.clone();
    two_hosts
        .headers
        .push(("Host".to_owned(), "127.0.0.1:9".to_owned()));
    fails("Aliyun, host twice", check_aliyun_signature, &two_hosts);
    let mut with_body = good.clone();
    with_body.body = b"x".to_vec();
    fails("Aliyun, a body", check_aliyun_signature, &with_body);

    let tencent = TencentConfig {
        secret_id: TENCENT_SECRET_ID.to_owned(),
        secret_key: Secret::new(TENCENT_SECRET_KEY),
        endpoint,
        region: "ap-guangzhou".to_owned(),
        sdk_app_id: TENCENT_APP_ID.to_owned(),
        sign_name: SIGN.to_owned(),
        templates: TEMPLATES
            .iter()
            .map(|t| (t.0.to_owned(), t.2.to_owned()))
            .collect(),
    };
    let good = as_received(&tencent::build_send_sms(&tencent, &msg, Utc::now()).unwrap());
    check_tencent_signature(&good);
    let mut other_body = good.clone();
    other_body.body = String::from_utf8(other_body.body)
        .unwrap()
        .replace(PHONE, REFUSED)
        .into_bytes();
    fails(
        "Tencent, another phone",
        check_tencent_signature,
        &other_body,
    );
    let mut other_time = good.clone();
    for (name, value) in &mut other_time.headers {
        if name == "X-TC-Timestamp" {
            *value = (value.parse::<i64>().unwrap() - 1).to_string();
        }
    }
    fails(
        "Tencent, another timestamp",
        check_tencent_signature,
        &other_time,
    );
}
