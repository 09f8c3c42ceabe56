//! Cloud SMS providers (sms::aliyun, sms::tencent), with no internet:
//!
//! - Signatures: the OFFICIAL Python SDKs (`alibabacloud-dysmsapi20170525`,
//!   `tencentcloud-sdk-python-sms`, from the venv named by `DAIBAN_SMS_SDK_PYTHON`; .ci/run
//!   makes it) send SendSms to a server this test runs on 127.0.0.1; our builder, given the
//!   same keys and parameters and the SDK's timestamp and nonce, must produce the same
//!   `Authorization` to the byte and the same signed content. Then our `send` goes to a local
//!   server and the SDK's own signer, run over the request as received, must agree (what is
//!   sent is what was signed). Without the venv these tests are skipped, unless
//!   `DAIBAN_REQUIRE_SMS_SDK` is set (CI), when they fail.
//! - `send` against local servers answering as the providers do: accepted, retryable, final;
//!   no answer at all (refused, silent).
//! - The inbound-reply callbacks on realistic payloads, Chinese text, malformed JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde_json::{json, Value};

use sync_server::sms::aliyun::{self, AliyunConfig};
use sync_server::sms::sign::{self, Secret, SignedRequest};
use sync_server::sms::tencent::{self, TencentConfig};
use sync_server::sms::{Handed, Incoming, Outgoing, Template};

// ---------------------------------------------------------------------------------------------
// A local HTTP server that records each request and answers from a script.

#[derive(Debug, Clone)]
struct Captured {
    method: String,
    /// Path and query, as on the request line.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Captured {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap()
    }

    /// The query decoded (`+` and `%20` alike), sorted.
    fn query(&self) -> Vec<(String, String)> {
        query_pairs(&self.target)
    }
}

fn query_pairs(url_or_target: &str) -> Vec<(String, String)> {
    let query = url_or_target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    pairs
}

#[derive(Clone)]
enum Answer {
    /// Status, content type, body.
    Http(u16, &'static str, Vec<u8>),
    /// Read the request, never answer (until the server stops).
    Silent,
}

fn json_answer(status: u16, body: Value) -> Answer {
    Answer::Http(
        status,
        "application/json;charset=utf-8",
        body.to_string().into_bytes(),
    )
}

struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Captured>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Answers the n-th request with `answers[n]` (the last one again once they run out).
    fn start(answers: Vec<Answer>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (req2, stop2) = (Arc::clone(&requests), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let mut held = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                let (mut stream, _) = match listener.accept() {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(e) => panic!("accept: {e}"),
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let Some(captured) = read_request(&mut stream) else {
                    continue;
                };
                let n = {
                    let mut r = req2.lock().unwrap();
                    r.push(captured);
                    r.len() - 1
                };
                let answer = answers
                    .get(n)
                    .or(answers.last())
                    .cloned()
                    .unwrap_or(Answer::Silent);
                match answer {
                    Answer::Http(status, content_type, body) => {
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes());
                        let _ = stream.write_all(&body);
                        let _ = stream.flush();
                        let _ = stream.shutdown(Shutdown::Write);
                    }
                    Answer::Silent => held.push(stream),
                }
            }
        });
        Server {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Captured> {
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
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap().split(' ');
    let method = request_line.next().unwrap().to_string();
    let target = request_line.next().unwrap().to_string();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Captured {
        method,
        target,
        headers,
        body,
    })
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// The official SDKs, in the venv .ci/run makes.

fn sdk_python() -> Option<PathBuf> {
    let required = std::env::var_os("DAIBAN_REQUIRE_SMS_SDK").is_some_and(|v| !v.is_empty());
    let python = std::env::var_os("DAIBAN_SMS_SDK_PYTHON").map(PathBuf::from);
    match python {
        Some(p) if p.exists() => Some(p),
        other => {
            let why = match other {
                Some(p) => format!("DAIBAN_SMS_SDK_PYTHON={} does not exist", p.display()),
                None => "DAIBAN_SMS_SDK_PYTHON is not set".to_string(),
            };
            assert!(
                !required,
                "DAIBAN_REQUIRE_SMS_SDK is set but {why} (.ci/run makes the venv with the \
                 official SDKs)"
            );
            eprintln!("SKIPPED: {why}: the official SMS SDKs are not available");
            None
        }
    }
}

fn run_sdk(python: &Path, script: &str, mode: &str, input: &Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sms_sdk")
        .join(script);
    let mut cmd = Command::new(python);
    // -B: no __pycache__ in the source tree; the SDKs go to 127.0.0.1 only, never a proxy.
    cmd.arg("-B").arg(&script).arg(mode);
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "*").env("no_proxy", "*");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} {mode} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{} {mode}: not JSON ({e}): {}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

fn outgoing(id: i64, template: Template, params: &[(&str, &str)]) -> Outgoing {
    Outgoing {
        id,
        phone: "13912345678".into(),
        template,
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        text: "（整条短信的中文全文）".into(),
    }
}

/// Messages whose parameters put the encodings to work: Chinese, spaces, `*`, `~`, `/`, `+`,
/// `&`, `=`, `%`, quotes, backslash, a newline, an emoji; and one with no parameters.
fn messages() -> Vec<Outgoing> {
    vec![
        outgoing(
            42,
            Template::Status,
            &[
                ("item", "城乡居民最低生活保障申请"),
                ("stage", "乡镇审核"),
                ("date", "3月5日"),
            ],
        ),
        outgoing(
            9_007_199_254_740_993,
            Template::Supplement,
            &[
                ("no", "BL-2026 0001*~/+&=%"),
                ("missing", "户口簿\"复印件\"\\身份证\n😀"),
            ],
        ),
        outgoing(7, Template::Unsubscribed, &[]),
    ]
}

fn aliyun_config(endpoint: &str) -> AliyunConfig {
    let templates = [
        ("status", "SMS_460000001"),
        ("supplement", "SMS_460000002"),
        ("unsubscribed", "SMS_460000003"),
    ];
    AliyunConfig {
        access_key_id: "LTAI5tDaibanTestKey01".into(),
        access_key_secret: Secret::new("aBcDeF0123456789+/~ 测试Secret"),
        endpoint: endpoint.into(),
        sign_name: "白林镇便民服务".into(),
        templates: templates
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn tencent_config(endpoint: &str) -> TencentConfig {
    let templates = [
        ("status", "2031001"),
        ("supplement", "2031002"),
        ("unsubscribed", "2031003"),
    ];
    TencentConfig {
        secret_id: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE".into(),
        secret_key: Secret::new("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"),
        endpoint: endpoint.into(),
        region: "ap-guangzhou".into(),
        sdk_app_id: "1400787878".into(),
        sign_name: "白林镇便民服务".into(),
        templates: templates
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn client() -> reqwest::Client {
    sign::http_client(Duration::from_secs(10)).unwrap()
}

fn aliyun_ok(biz_id: &str) -> Answer {
    json_answer(
        200,
        json!({"Code": "OK", "Message": "OK", "BizId": biz_id,
               "RequestId": "F655A8D5-B967-440B-8683-DAD6FF8DE990"}),
    )
}

fn tencent_ok(serial: &str) -> Answer {
    json_answer(
        200,
        json!({"Response": {"SendStatusSet": [{"SerialNo": serial, "PhoneNumber": "+8613912345678",
               "Fee": 1, "SessionContext": "42", "Code": "Ok", "Message": "send success",
               "IsoCode": "CN"}], "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}}),
    )
}

fn signed_header_names(authorization: &str, marker: &str) -> Vec<String> {
    let rest = authorization.split(marker).nth(1).unwrap();
    rest.split([',', ' '])
        .next()
        .unwrap()
        .split(';')
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Aliyun: signature parity with the official SDK.

#[test]
fn aliyun_signature_matches_the_official_sdk() {
    let Some(python) = sdk_python() else { return };
    let started = Instant::now();
    for msg in messages() {
        let server = Server::start(vec![aliyun_ok("900619746936498440^0")]);
        let cfg = aliyun_config(&format!("http://127.0.0.1:{}", server.port));
        let code = cfg.template_code(msg.template).unwrap();
        let template_param =
            (!msg.params.is_empty()).then(|| aliyun::template_param_json(&msg.params));
        let out = run_sdk(
            &python,
            "aliyun_sdk.py",
            "send",
            &json!({
                "endpoint": format!("127.0.0.1:{}", server.port),
                "access_key_id": cfg.access_key_id,
                "access_key_secret": cfg.access_key_secret.expose(),
                "user_agent": aliyun::USER_AGENT,
                "phone": msg.phone,
                "sign_name": cfg.sign_name,
                "template_code": code,
                "template_param": template_param,
                "out_id": msg.id.to_string(),
            }),
        );
        assert_eq!(out["ok"], json!(true), "SDK: {out}");
        assert_eq!(out["body"]["BizId"], json!("900619746936498440^0"));
        let sdk = server.requests().pop().expect("the SDK sent nothing");

        let date = sdk.header("x-acs-date").unwrap();
        let at = NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%SZ")
            .unwrap()
            .and_utc();
        let nonce = sdk.header("x-acs-signature-nonce").unwrap();
        let ours = aliyun::build_send_sms(&cfg, &msg, at, nonce).unwrap();

        let sdk_auth = sdk.header("authorization").unwrap();
        assert!(
            sdk_auth.starts_with("ACS3-HMAC-SHA256 "),
            "the SDK signed otherwise: {sdk_auth}"
        );
        assert_eq!(ours.header("authorization").unwrap(), sdk_auth);
        // The signed content, header by header, and the query, parameter by parameter.
        for name in signed_header_names(sdk_auth, "SignedHeaders=") {
            assert_eq!(
                ours.header(&name),
                sdk.header(&name),
                "signed header {name} differs"
            );
        }
        assert_eq!(ours.method, sdk.method);
        assert_eq!(sdk.path(), "/");
        assert!(ours
            .url
            .starts_with(&format!("http://127.0.0.1:{}/?", server.port)));
        assert_eq!(query_pairs(&ours.url), sdk.query());
        let mut expected = vec![
            ("OutId".to_string(), msg.id.to_string()),
            ("PhoneNumbers".to_string(), msg.phone.clone()),
            ("SignName".to_string(), cfg.sign_name.clone()),
            ("TemplateCode".to_string(), code.to_string()),
        ];
        if let Some(p) = &template_param {
            expected.push(("TemplateParam".to_string(), p.clone()));
            let parsed: serde_json::Map<String, Value> = serde_json::from_str(p).unwrap();
            let names: Vec<&String> = parsed.keys().collect();
            assert_eq!(names.len(), msg.params.len());
        }
        assert_eq!(sdk.query(), expected);
        assert!(sdk.body.is_empty() && ours.body.is_empty());
    }
    eprintln!(
        "aliyun SDK parity: {} messages in {:?}",
        messages().len(),
        started.elapsed()
    );
}

/// What our `send` puts on the wire (the clock, a random nonce) is what the SDK's own signer
/// signs, computed over the request as the server received it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliyun_sent_request_verifies_with_the_sdk_signer() {
    let Some(python) = sdk_python() else { return };
    for msg in messages() {
        let server = Server::start(vec![aliyun_ok("1234^5")]);
        let cfg = aliyun_config(&format!("http://127.0.0.1:{}", server.port));
        let handed = aliyun::send(&client(), &cfg, &msg).await;
        assert_eq!(
            handed,
            Handed::Accepted {
                reference: "1234^5".into()
            }
        );
        let got = server.requests().pop().unwrap();
        let auth = got.header("authorization").unwrap();
        let signed = signed_header_names(auth, "SignedHeaders=");
        let headers: serde_json::Map<String, Value> = signed
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    json!(got.header(n).expect("a signed header missing")),
                )
            })
            .collect();
        let query: serde_json::Map<String, Value> = got
            .query()
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
        let out = run_sdk(
            &python,
            "aliyun_sdk.py",
            "sign",
            &json!({
                "method": got.method,
                "pathname": got.path(),
                "query": query,
                "headers": headers,
                "payload_hash": got.header("x-acs-content-sha256").unwrap(),
                "access_key_id": cfg.access_key_id,
                "access_key_secret": cfg.access_key_secret.expose(),
            }),
        );
        assert_eq!(out["authorization"], json!(auth));
        assert_eq!(
            got.header("host").unwrap(),
            format!("127.0.0.1:{}", server.port)
        );
        assert_eq!(got.header("x-acs-signature-nonce").unwrap().len(), 32);
        let date = got.header("x-acs-date").unwrap();
        let at = NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%SZ")
            .unwrap()
            .and_utc();
        assert!(
            (Utc::now() - at).num_seconds().abs() < 60,
            "x-acs-date {date}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Tencent: signature parity with the official SDK.

#[test]
fn tencent_signature_matches_the_official_sdk() {
    let Some(python) = sdk_python() else { return };
    let started = Instant::now();
    for msg in messages() {
        let server = Server::start(vec![tencent_ok("5000:1045710669157053657849499619")]);
        let cfg = tencent_config(&format!("http://127.0.0.1:{}", server.port));
        let template_id = cfg.template_id(msg.template).unwrap();
        let values: Option<Vec<&str>> =
            (!msg.params.is_empty()).then(|| msg.params.iter().map(|(_, v)| v.as_str()).collect());
        let out = run_sdk(
            &python,
            "tencent_sdk.py",
            "send",
            &json!({
                "endpoint": format!("127.0.0.1:{}", server.port),
                "secret_id": cfg.secret_id,
                "secret_key": cfg.secret_key.expose(),
                "region": cfg.region,
                "phone_number_set": [format!("+86{}", msg.phone)],
                "sdk_app_id": cfg.sdk_app_id,
                "sign_name": cfg.sign_name,
                "template_id": template_id,
                "template_param_set": values,
                "session_context": msg.id.to_string(),
            }),
        );
        assert_eq!(out["ok"], json!(true), "SDK: {out}");
        assert_eq!(
            out["response"]["SendStatusSet"][0]["SerialNo"],
            json!("5000:1045710669157053657849499619")
        );
        let sdk = server.requests().pop().expect("the SDK sent nothing");

        let timestamp: i64 = sdk.header("x-tc-timestamp").unwrap().parse().unwrap();
        let at = Utc.timestamp_opt(timestamp, 0).unwrap();
        let ours = tencent::build_send_sms(&cfg, &msg, at).unwrap();

        let sdk_auth = sdk.header("authorization").unwrap();
        assert!(sdk_auth.starts_with("TC3-HMAC-SHA256 "), "{sdk_auth}");
        assert_eq!(ours.header("authorization").unwrap(), sdk_auth);
        assert_eq!(
            String::from_utf8(ours.body.clone()).unwrap(),
            String::from_utf8(sdk.body.clone()).unwrap(),
            "the JSON body differs"
        );
        for name in [
            "content-type",
            "host",
            "x-tc-action",
            "x-tc-timestamp",
            "x-tc-version",
            "x-tc-region",
        ] {
            assert_eq!(ours.header(name), sdk.header(name), "header {name} differs");
        }
        assert_eq!(ours.method, sdk.method);
        assert_eq!(sdk.target, "/");
        assert_eq!(ours.url, format!("http://127.0.0.1:{}/", server.port));
        // The body says what we meant.
        let body: Value = serde_json::from_slice(&ours.body).unwrap();
        assert_eq!(body["PhoneNumberSet"], json!(["+8613912345678"]));
        assert_eq!(body["SessionContext"], json!(msg.id.to_string()));
        assert_eq!(body["SmsSdkAppId"], json!("1400787878"));
        assert_eq!(body["TemplateId"], json!(template_id));
        assert_eq!(body["SignName"], json!("白林镇便民服务"));
        match &values {
            Some(v) => assert_eq!(body["TemplateParamSet"], json!(v)),
            None => assert!(body.get("TemplateParamSet").is_none()),
        }
    }
    eprintln!(
        "tencent SDK parity: {} messages in {:?}",
        messages().len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tencent_sent_request_verifies_with_the_sdk_signer() {
    let Some(python) = sdk_python() else { return };
    for msg in messages() {
        let server = Server::start(vec![tencent_ok("2433:3283423")]);
        let cfg = tencent_config(&format!("http://127.0.0.1:{}", server.port));
        let handed = tencent::send(&client(), &cfg, &msg).await;
        assert_eq!(
            handed,
            Handed::Accepted {
                reference: "2433:3283423".into()
            }
        );
        let got = server.requests().pop().unwrap();
        let timestamp: i64 = got.header("x-tc-timestamp").unwrap().parse().unwrap();
        assert!((Utc::now().timestamp() - timestamp).abs() < 60);
        let out = run_sdk(
            &python,
            "tencent_sdk.py",
            "sign",
            &json!({
                "endpoint": format!("127.0.0.1:{}", server.port),
                "secret_id": cfg.secret_id,
                "secret_key": cfg.secret_key.expose(),
                "region": cfg.region,
                "host": got.header("host").unwrap(),
                "content_type": got.header("content-type").unwrap(),
                "timestamp": timestamp,
                "body": String::from_utf8(got.body.clone()).unwrap(),
            }),
        );
        assert_eq!(
            out["authorization"],
            json!(got.header("authorization").unwrap())
        );
        assert_eq!(got.header("x-tc-action"), Some("SendSms"));
        assert_eq!(got.header("x-tc-version"), Some("2021-01-11"));
        assert_eq!(got.header("x-tc-region"), Some("ap-guangzhou"));
    }
}

// ---------------------------------------------------------------------------------------------
// Pure checks that need no SDK.

/// Known-answer values: fixed inputs, the signatures the official SDKs computed for them (so
/// a machine without the venv still checks the signers).
#[test]
fn signatures_for_fixed_inputs_stay_put() {
    let msg = outgoing(
        42,
        Template::Status,
        &[("item", "低保"), ("date", "3月5日")],
    );
    let at = Utc.with_ymd_and_hms(2026, 3, 5, 1, 2, 3).unwrap();

    let a = aliyun::build_send_sms(
        &aliyun_config("https://dysmsapi.aliyuncs.com"),
        &msg,
        at,
        "3e4f2b1c0d9a8b7c6d5e4f3a2b1c0d9e",
    )
    .unwrap();
    assert_eq!(
        a.url,
        "https://dysmsapi.aliyuncs.com/?OutId=42&PhoneNumbers=13912345678&SignName=%E7%99%BD%E6%9E%97%E9%95%87%E4%BE%BF%E6%B0%91%E6%9C%8D%E5%8A%A1&TemplateCode=SMS_460000001&TemplateParam=%7B%22item%22%3A%22%E4%BD%8E%E4%BF%9D%22%2C%22date%22%3A%223%E6%9C%885%E6%97%A5%22%7D"
    );
    assert_eq!(a.header("host"), Some("dysmsapi.aliyuncs.com"));
    assert_eq!(a.header("x-acs-date"), Some("2026-03-05T01:02:03Z"));
    assert_eq!(
        a.header("x-acs-content-sha256"),
        Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(a.header("authorization"), Some(ALIYUN_KNOWN_AUTHORIZATION));

    let t = tencent::build_send_sms(&tencent_config("https://sms.tencentcloudapi.com"), &msg, at)
        .unwrap();
    assert_eq!(
        String::from_utf8(t.body.clone()).unwrap(),
        r#"{"PhoneNumberSet": ["+8613912345678"], "SmsSdkAppId": "1400787878", "TemplateId": "2031001", "SignName": "\u767d\u6797\u9547\u4fbf\u6c11\u670d\u52a1", "TemplateParamSet": ["\u4f4e\u4fdd", "3\u67085\u65e5"], "SessionContext": "42"}"#
    );
    assert_eq!(t.header("x-tc-timestamp"), Some("1772672523"));
    assert_eq!(t.header("host"), Some("sms.tencentcloudapi.com"));
    assert_eq!(t.header("authorization"), Some(TENCENT_KNOWN_AUTHORIZATION));
}

/// Computed by the Aliyun SDK's `Utils.get_authorization` over these headers and this query.
const ALIYUN_KNOWN_AUTHORIZATION: &str = "ACS3-HMAC-SHA256 Credential=LTAI5tDaibanTestKey01,\
     SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;\
     x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,\
     Signature=cabbd288ac34bb9dab0f3ad37b62a45ec445a2040a7055949e8ac5bbdfa726b9";
/// Computed by the Tencent SDK's `_get_tc3_signature` over this body.
const TENCENT_KNOWN_AUTHORIZATION: &str = "TC3-HMAC-SHA256 \
     Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2026-03-05/sms/tc3_request, \
     SignedHeaders=content-type;host, \
     Signature=8823f5fe262a40e3b391fd78d5fdae2b5fa406add40f67742cb65b40b75b8e2d";

#[test]
fn encodings() {
    assert_eq!(
        sign::percent_encode("a b*c~d/e+f=g&h%i-j_k.l中"),
        "a%20b%2Ac~d%2Fe%2Bf%3Dg%26h%25i-j_k.l%E4%B8%AD"
    );
    assert_eq!(
        tencent::python_json_string("a\"b\\c\nd\te\u{7f}中😀\u{1}"),
        r#""a\"b\\c\nd\te\u007f\u4e2d\ud83d\ude00\u0001""#
    );
    assert_eq!(
        aliyun::template_param_json(&[("z".into(), "1".into()), ("a".into(), "\"中\"".into())]),
        r#"{"z":"1","a":"\"中\""}"#
    );
    assert_eq!(tencent::e164("13912345678"), "+8613912345678");
    assert_eq!(tencent::e164("+8613912345678"), "+8613912345678");
    assert_eq!(sign::strip_china_prefix("+86 139 1234 5678"), "13912345678");
    assert_eq!(sign::strip_china_prefix("8613912345678"), "13912345678");
    assert_eq!(
        sign::strip_china_prefix("0086139123456789"),
        "0086139123456789"
    );
    let e = sign::Endpoint::parse("HTTPS://dysmsapi.aliyuncs.com:443/").unwrap();
    assert_eq!(e.host, "dysmsapi.aliyuncs.com");
    assert_eq!(e.base_url(), "https://dysmsapi.aliyuncs.com/");
    assert_eq!(
        sign::Endpoint::parse("http://127.0.0.1:8080").unwrap().host,
        "127.0.0.1:8080"
    );
    for bad in [
        "dysmsapi.aliyuncs.com",
        "https://",
        "https://a/b",
        "ftp://x",
    ] {
        assert!(sign::Endpoint::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn configs_from_toml_keep_secrets_out_of_debug() {
    let a: AliyunConfig = toml::from_str(
        r#"
        access_key_id = "LTAI5tXXXX"
        access_key_secret = "very-secret-aliyun"
        sign_name = "白林镇便民服务"
        [templates]
        status = "SMS_1"
        rated = "SMS_2"
        "#,
    )
    .unwrap();
    assert_eq!(a.endpoint, aliyun::DEFAULT_ENDPOINT);
    assert_eq!(a.template_code(Template::Rated), Some("SMS_2"));
    assert_eq!(a.template_code(Template::Overdue), None);
    a.check().unwrap();
    let shown = format!("{a:?} {a:#?}");
    assert!(!shown.contains("very-secret-aliyun"), "{shown}");
    assert!(shown.contains("LTAI5tXXXX"));

    let t: TencentConfig = toml::from_str(
        r#"
        secret_id = "AKIDxxxx"
        secret_key = "very-secret-tencent"
        sdk_app_id = "1400000000"
        sign_name = "白林镇便民服务"
        templates = { status = "100001" }
        "#,
    )
    .unwrap();
    assert_eq!(t.endpoint, tencent::DEFAULT_ENDPOINT);
    assert_eq!(t.region, "ap-guangzhou");
    t.check().unwrap();
    assert!(!format!("{t:?}").contains("very-secret-tencent"));

    let unknown = toml::from_str::<AliyunConfig>(
        r#"
        access_key_id = "a"
        access_key_secret = "b"
        sign_name = "c"
        acces_key = "typo"
        "#,
    )
    .unwrap_err();
    assert!(unknown.to_string().contains("acces_key"), "{unknown}");
    assert!(toml::from_str::<TencentConfig>("secret_id = \"x\"\nsecret_key = \"y\"\nsdk_app_id = \"1\"\nsign_name = \"s\"\nregion_id = \"z\"").is_err());

    let mut bad = a.clone();
    bad.templates.insert("statuss".into(), "SMS_3".into());
    assert!(bad.check().unwrap_err().contains("statuss"));
    let mut bad = t.clone();
    bad.endpoint = "sms.tencentcloudapi.com".into();
    assert!(bad.check().is_err());
}

// ---------------------------------------------------------------------------------------------
// `send` against provider-shaped answers.

fn assert_failed(h: &Handed, retry: bool, contains: &str) {
    match h {
        Handed::Failed { reason, retry: r } => {
            assert_eq!(*r, retry, "retry for {reason}");
            assert!(reason.contains(contains), "{reason:?} lacks {contains:?}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliyun_send_maps_answers() {
    let err = |status: u16, code: &str, message: &str| {
        json_answer(
            status,
            json!({"Code": code, "Message": message, "RequestId": "8906582E-6722"}),
        )
    };
    let script: Vec<(Answer, Option<bool>, &str)> = vec![
        (
            aliyun_ok("900619746936498440^0"),
            None,
            "900619746936498440^0",
        ),
        (
            err(200, "isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5"),
            Some(true),
            "isv.BUSINESS_LIMIT_CONTROL",
        ),
        (
            err(
                400,
                "Throttling.User",
                "Request was denied due to user flow control.",
            ),
            Some(true),
            "Throttling.User",
        ),
        (
            err(200, "isp.SYSTEM_ERROR", "系统出现错误，请重新调用"),
            Some(true),
            "isp.SYSTEM_ERROR",
        ),
        (
            err(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"),
            Some(false),
            "非法手机号",
        ),
        (
            err(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板"),
            Some(false),
            "isv.SMS_TEMPLATE_ILLEGAL",
        ),
        (
            err(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名"),
            Some(false),
            "isv.SMS_SIGNATURE_ILLEGAL",
        ),
        (
            err(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            ),
            Some(false),
            "SignatureDoesNotMatch",
        ),
        (
            err(
                404,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            ),
            Some(false),
            "InvalidAccessKeyId.NotFound",
        ),
        (
            Answer::Http(
                503,
                "text/html",
                b"<html>503 Service Temporarily Unavailable</html>".to_vec(),
            ),
            Some(true),
            "503",
        ),
        (
            err(
                500,
                "InternalError",
                "The request processing has failed due to some unknown error.",
            ),
            Some(true),
            "InternalError",
        ),
    ];
    let server = Server::start(script.iter().map(|(a, _, _)| a.clone()).collect());
    let cfg = aliyun_config(&format!("http://127.0.0.1:{}", server.port));
    let c = client();
    let msg = outgoing(42, Template::Status, &[("item", "低保")]);
    for (_, expected, needle) in &script {
        let h = aliyun::send(&c, &cfg, &msg).await;
        match expected {
            None => assert_eq!(
                h,
                Handed::Accepted {
                    reference: needle.to_string()
                }
            ),
            Some(retry) => assert_failed(&h, *retry, needle),
        }
    }
    assert_eq!(server.requests().len(), script.len());

    // A template with no code: final, and nothing is sent.
    let h = aliyun::send(&c, &cfg, &outgoing(43, Template::Overdue, &[])).await;
    assert_failed(&h, false, "overdue");
    assert_eq!(server.requests().len(), script.len());

    // No answer: refused, or silent past the client's timeout.
    let refused = aliyun_config(&format!("http://127.0.0.1:{}", closed_port()));
    assert_failed(&aliyun::send(&c, &refused, &msg).await, true, "Aliyun");
    let silent = Server::start(vec![Answer::Silent]);
    let quick = sign::http_client(Duration::from_millis(700)).unwrap();
    let cfg = aliyun_config(&format!("http://127.0.0.1:{}", silent.port));
    let t = Instant::now();
    assert_failed(&aliyun::send(&quick, &cfg, &msg).await, true, "Aliyun");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tencent_send_maps_answers() {
    let status = |code: &str, message: &str| {
        json_answer(
            200,
            json!({"Response": {"SendStatusSet": [{"SerialNo": "", "PhoneNumber": "+8613912345678",
                   "Fee": 0, "SessionContext": "42", "Code": code, "Message": message,
                   "IsoCode": "CN"}], "RequestId": "b5b6e0d8-9c1f"}}),
        )
    };
    let error = |code: &str, message: &str| {
        json_answer(
            200,
            json!({"Response": {"Error": {"Code": code, "Message": message},
                   "RequestId": "c6b7e0d8-0000"}}),
        )
    };
    let script: Vec<(Answer, Option<bool>, &str)> = vec![
        (tencent_ok("5000:104571066915"), None, "5000:104571066915"),
        (
            status(
                "LimitExceeded.PhoneNumberDailyLimit",
                "单个手机号日下发短信条数超过设定的上限",
            ),
            Some(true),
            "LimitExceeded.PhoneNumberDailyLimit",
        ),
        (
            status("InternalError.Timeout", "请求下发短信超时"),
            Some(true),
            "InternalError.Timeout",
        ),
        (
            status(
                "InvalidParameterValue.IncorrectPhoneNumber",
                "手机号格式错误",
            ),
            Some(false),
            "手机号格式错误",
        ),
        (
            status(
                "FailedOperation.TemplateIncorrectOrUnapproved",
                "模板未审批或内容不匹配",
            ),
            Some(false),
            "FailedOperation.TemplateIncorrectOrUnapproved",
        ),
        (
            error(
                "FailedOperation.SignatureIncorrectOrUnapproved",
                "签名未审批或格式错误",
            ),
            Some(false),
            "FailedOperation.SignatureIncorrectOrUnapproved",
        ),
        (
            error(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated.",
            ),
            Some(false),
            "AuthFailure.SignatureFailure",
        ),
        (
            error("RequestLimitExceeded", "请求的次数超过了频率限制。"),
            Some(true),
            "RequestLimitExceeded",
        ),
        (
            error("InternalError.OtherError", "其他错误"),
            Some(true),
            "InternalError.OtherError",
        ),
        (
            Answer::Http(502, "text/html", b"<html>502 Bad Gateway</html>".to_vec()),
            Some(true),
            "502",
        ),
    ];
    let server = Server::start(script.iter().map(|(a, _, _)| a.clone()).collect());
    let cfg = tencent_config(&format!("http://127.0.0.1:{}", server.port));
    let c = client();
    let msg = outgoing(42, Template::Status, &[("item", "低保")]);
    for (_, expected, needle) in &script {
        let h = tencent::send(&c, &cfg, &msg).await;
        match expected {
            None => assert_eq!(
                h,
                Handed::Accepted {
                    reference: needle.to_string()
                }
            ),
            Some(retry) => assert_failed(&h, *retry, needle),
        }
    }
    assert_eq!(server.requests().len(), script.len());

    let h = tencent::send(&c, &cfg, &outgoing(43, Template::RateInvite, &[])).await;
    assert_failed(&h, false, "rate_invite");
    assert_eq!(server.requests().len(), script.len());

    let refused = tencent_config(&format!("http://127.0.0.1:{}", closed_port()));
    assert_failed(&tencent::send(&c, &refused, &msg).await, true, "Tencent");
    let silent = Server::start(vec![Answer::Silent]);
    let quick = sign::http_client(Duration::from_millis(700)).unwrap();
    let cfg = tencent_config(&format!("http://127.0.0.1:{}", silent.port));
    assert_failed(&tencent::send(&quick, &cfg, &msg).await, true, "Tencent");
}

/// HTTPS goes through rustls on ring with Mozilla's roots only: a server whose certificate
/// no public CA signed (one from `make-cert`) is refused, retryably, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_trusts_public_roots_only() {
    let pair = sync_server::tls::make_cert(&["127.0.0.1".to_string()]).unwrap();
    let config = Arc::new(
        sync_server::tls::server_config(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes()).unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut tls = rustls::ServerConnection::new(config).unwrap();
        // The client walks away mid-handshake.
        let handshake = tls.complete_io(&mut tcp);
        let mut plain = Vec::new();
        let read = rustls::Stream::new(&mut tls, &mut tcp).read_to_end(&mut plain);
        (handshake.is_err() || read.is_err(), plain.len())
    });
    let msg = outgoing(42, Template::Status, &[("item", "低保")]);
    let h = tencent::send(
        &client(),
        &tencent_config(&format!("https://127.0.0.1:{port}")),
        &msg,
    )
    .await;
    assert_failed(&h, true, "UnknownIssuer");
    let (refused, bytes) = server.join().unwrap();
    assert!(refused);
    assert_eq!(bytes, 0, "a request went over an unverified connection");
}

#[test]
fn interpret_never_panics_on_odd_answers() {
    for body in [
        &b""[..],
        b"null",
        b"[]",
        b"{}",
        b"{\"Code\":5}",
        b"{\"Response\":null}",
        b"{\"Response\":{}}",
        b"{\"Response\":{\"SendStatusSet\":[]}}",
        "\u{feff}中文".as_bytes(),
        &[0xff, 0xfe, 0x00],
    ] {
        for status in [200, 400, 500] {
            assert!(matches!(
                aliyun::interpret(status, body),
                Handed::Failed { .. }
            ));
            assert!(matches!(
                tencent::interpret(status, body),
                Handed::Failed { .. }
            ));
        }
    }
    // "OK" without a BizId is not an acceptance.
    assert!(matches!(
        aliyun::interpret(200, br#"{"Code":"OK","Message":"OK"}"#),
        Handed::Failed { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// Inbound replies.

fn now() -> DateTime<FixedOffset> {
    FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 3, 6, 12, 0, 0)
        .unwrap()
}

#[test]
fn aliyun_sms_up_push() {
    let body = r#"[
      {"phone_number":"13912345678","content":"查询 BL20260305-0001-7","send_time":"2026-03-05 09:12:33",
       "dest_code":"1234","sequence_id":1234567890123,"sign_name":"白林镇便民服务"},
      {"phone_number":"+8613800138000","content":"1 很满意，谢谢！","send_time":"2026-03-05 21:00:01",
       "dest_code":"1234","sequence_id":"1234567890124","sign_name":"白林镇便民服务","extra":"ignored"}
    ]"#;
    let got = aliyun::parse_sms_up(body.as_bytes(), now()).unwrap();
    assert_eq!(
        got,
        vec![
            Incoming {
                from: "13912345678".into(),
                text: "查询 BL20260305-0001-7".into(),
                received: DateTime::parse_from_rfc3339("2026-03-05T09:12:33+08:00").unwrap(),
                reference: "1234567890123".into(),
            },
            Incoming {
                from: "13800138000".into(),
                text: "1 很满意，谢谢！".into(),
                received: DateTime::parse_from_rfc3339("2026-03-05T21:00:01+08:00").unwrap(),
                reference: "1234567890124".into(),
            },
        ]
    );
    // One object alone; no send_time (the server's time) nor sequence_id (a stable hash).
    let one = r#"{"phone_number":"13912345678","content":"退订"}"#;
    let a = aliyun::parse_sms_up(one.as_bytes(), now()).unwrap();
    let b = aliyun::parse_sms_up(one.as_bytes(), now()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a[0].received, now());
    assert_eq!(a[0].text, "退订");
    assert!(a[0].reference.starts_with("aliyun-"));
    assert!(aliyun::parse_sms_up(b"[]", now()).unwrap().is_empty());

    for (bad, needle) in [
        (&b"[{\"phone_number\":\"139"[..], "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\"hello\"", "must be a JSON array"),
        (b"[{\"content\":\"1\"}]", "report 1"),
        (
            "[{\"phone_number\":\"13912345678\",\"content\":\"好\"},{\"phone_number\":5}]"
                .as_bytes(),
            "report 2",
        ),
        (&[0xff, 0xfe, 0x7b], "not valid JSON"),
    ] {
        let e = aliyun::parse_sms_up(bad, now()).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    }
    let answer: Value = serde_json::from_str(aliyun::SMS_UP_ANSWER).unwrap();
    assert_eq!(answer, json!({"code": 0, "msg": "成功"}));
}

#[test]
fn tencent_reply_callback() {
    let one = r#"{"extend":"","mobile":"13912345678","nationcode":"86","sign":"白林镇便民服务",
                  "text":"2 一般","time":1772672523}"#;
    let got = tencent::parse_reply(one.as_bytes(), now()).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "13912345678");
    assert_eq!(got[0].text, "2 一般");
    assert_eq!(
        got[0].received,
        DateTime::parse_from_rfc3339("2026-03-05T09:02:03+08:00").unwrap()
    );
    assert!(got[0]
        .reference
        .starts_with("tencent-13912345678-1772672523-"));
    // Delivered twice: one reference.
    assert_eq!(got, tencent::parse_reply(one.as_bytes(), now()).unwrap());

    let many = r#"[
      {"extend":"01","mobile":"13800138000","nationcode":"86","sign":"白林镇便民服务","text":"查询","time":"1772672524"},
      {"extend":"","mobile":"91234567","nationcode":"852","sign":"白林镇便民服务","text":"hello","time":1772672525},
      {"mobile":"13800138000","text":"TD"}
    ]"#;
    let got = tencent::parse_reply(many.as_bytes(), now()).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].from, "13800138000");
    assert_eq!(got[0].received.timestamp(), 1_772_672_524);
    assert_eq!(got[1].from, "+85291234567");
    assert_eq!(got[2].received, now());
    assert_ne!(got[0].reference, got[2].reference);

    for (bad, needle) in [
        (&b"{\"mobile\":"[..], "not valid JSON"),
        (b"", "not valid JSON"),
        (b"42", "object or array"),
        (b"{\"text\":\"1\"}", "reply 1"),
        (
            b"[{\"mobile\":\"13912345678\",\"text\":\"1\"},{\"mobile\":\"\",\"text\":\"2\"}]",
            "reply 2",
        ),
    ] {
        let e = tencent::parse_reply(bad, now()).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    }
    let answer: Value = serde_json::from_str(tencent::REPLY_ANSWER).unwrap();
    assert_eq!(answer, json!({"result": 0, "errmsg": "OK"}));
}

/// `SignedRequest` holds no secret: its Debug output is safe to log.
#[test]
fn signed_requests_hold_no_secret() {
    let msg = outgoing(1, Template::Status, &[("item", "x")]);
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let a: SignedRequest =
        aliyun::build_send_sms(&aliyun_config(aliyun::DEFAULT_ENDPOINT), &msg, at, "n").unwrap();
    let t = tencent::build_send_sms(&tencent_config(tencent::DEFAULT_ENDPOINT), &msg, at).unwrap();
    let shown = format!("{a:?}{t:?}");
    assert!(!shown.contains("aBcDeF0123456789"));
    assert!(!shown.contains("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"));
}
