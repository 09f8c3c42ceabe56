//! Tencent Cloud (腾讯云短信): SendSms, and the reply callback (回复短信回调) with villagers'
//! replies.
//!
//! - SendSms, API version 2021-01-11, signed with `TC3-HMAC-SHA256` as the official SDK
//!   (`tencentcloud-sdk-python-sms` on `tencentcloud-sdk-python-common`) signs it: `POST /`,
//!   `Content-Type: application/json`, the signed headers `content-type;host`, the body as
//!   Python's `json.dumps` writes it (`", "` and `": "` separators, non-ASCII as `\uXXXX`), so
//!   the body and the signature are the SDK's to the byte (tests/sms_providers.rs runs the SDK
//!   against a local server and compares).
//! - [`build_send_sms`] is pure (time given); [`send`] uses the clock and maps the answer to
//!   [`Handed`] ([`interpret`]).
//! - [`parse_reply`] reads the reply callback; answer it with [`REPLY_ANSWER`].

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde::Deserialize;

use super::sign::{self, hmac_sha256, sha256_hex, CallbackError, Endpoint, Secret, SignedRequest};
use super::{Handed, Incoming, Outgoing, Template};

pub const DEFAULT_ENDPOINT: &str = "https://sms.tencentcloudapi.com";
pub const DEFAULT_REGION: &str = "ap-guangzhou";
pub const API_VERSION: &str = "2021-01-11";
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The service name in the credential scope.
pub const SERVICE: &str = "sms";
/// Sent as `X-TC-RequestClient` (not signed).
pub const REQUEST_CLIENT: &str = "daiban-sync-server";
/// The answer Tencent expects to a reply callback.
pub const REPLY_ANSWER: &str = r#"{"result":0,"errmsg":"OK"}"#;

/// `[sms.tencent]`. `Debug` never shows the SecretKey.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TencentConfig {
    pub secret_id: String,
    pub secret_key: Secret,
    /// `https://sms.tencentcloudapi.com` unless set.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// `ap-guangzhou` unless set (SMS also serves `ap-beijing`, `ap-nanjing`).
    #[serde(default = "default_region")]
    pub region: String,
    /// The SMS application's SdkAppId (`1400…`).
    pub sdk_app_id: String,
    /// The approved signature (签名内容).
    pub sign_name: String,
    /// [`Template::as_str`] → the approved TemplateId.
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_string()
}

fn default_region() -> String {
    DEFAULT_REGION.to_string()
}

impl TencentConfig {
    /// The endpoint parses, the keys are there and every template name is one of
    /// [`Template::ALL`].
    pub fn check(&self) -> Result<(), String> {
        Endpoint::parse(&self.endpoint)?;
        if self.secret_id.trim().is_empty() || self.secret_key.expose().is_empty() {
            return Err(
                "腾讯云短信缺少密钥 / [sms.tencent]: secret_id and secret_key are \
                        required"
                    .into(),
            );
        }
        if self.sdk_app_id.trim().is_empty() {
            return Err("腾讯云短信缺少 SdkAppId / [sms.tencent]: sdk_app_id is required".into());
        }
        for name in self.templates.keys() {
            if Template::parse(name).is_none() {
                return Err(format!(
                    "腾讯云短信模板名称未知 / [sms.tencent.templates]: unknown template {name:?}"
                ));
            }
        }
        Ok(())
    }

    /// The TemplateId for `t`, if configured (and not blank).
    pub fn template_id(&self, t: Template) -> Option<&str> {
        self.templates
            .get(t.as_str())
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }
}

/// A JSON string as Python's `json.dumps` writes it by default (`ensure_ascii`): `\"`, `\\`,
/// `\n` `\r` `\t` `\b` `\f`, other characters outside space..`~` as `\uXXXX` (lowercase hex,
/// UTF-16 surrogate pairs above U+FFFF).
pub fn python_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// The phone number as Tencent wants it: E.164, `+86` for a mainland number.
pub fn e164(phone: &str) -> String {
    let p = phone.trim();
    if p.starts_with('+') {
        p.to_string()
    } else {
        format!("+86{}", sign::strip_china_prefix(p))
    }
}

/// The SendSms body, as the SDK's `json.dumps(request._serialize())` writes it.
pub fn send_sms_body(cfg: &TencentConfig, template_id: &str, msg: &Outgoing) -> String {
    let mut fields = vec![
        (
            "PhoneNumberSet",
            format!("[{}]", python_json_string(&e164(&msg.phone))),
        ),
        ("SmsSdkAppId", python_json_string(cfg.sdk_app_id.trim())),
        ("TemplateId", python_json_string(template_id)),
        ("SignName", python_json_string(&cfg.sign_name)),
    ];
    if !msg.params.is_empty() {
        let values: Vec<String> = msg
            .params
            .iter()
            .map(|(_, v)| python_json_string(v))
            .collect();
        fields.push(("TemplateParamSet", format!("[{}]", values.join(", "))));
    }
    fields.push(("SessionContext", python_json_string(&msg.id.to_string())));
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// The SendSms request for `msg`, signed at `at`. `Err`: no TemplateId for the message's
/// template, or a bad endpoint (final: retrying cannot help).
pub fn build_send_sms(
    cfg: &TencentConfig,
    msg: &Outgoing,
    at: DateTime<Utc>,
) -> Result<SignedRequest, String> {
    let Some(template_id) = cfg.template_id(msg.template) else {
        return Err(format!(
            "腾讯云短信未配置模板“{0}”的模板 ID / no Tencent Cloud TemplateId configured for \
             `{0}` in [sms.tencent.templates]",
            msg.template.as_str()
        ));
    };
    let endpoint = Endpoint::parse(&cfg.endpoint)?;
    let body = send_sms_body(cfg, template_id, msg);
    let content_type = "application/json";
    let timestamp = at.timestamp();
    let date = at.format("%Y-%m-%d").to_string();

    let signed_headers = "content-type;host";
    let canonical_request = format!(
        "POST\n/\n\ncontent-type:{content_type}\nhost:{}\n\n{signed_headers}\n{}",
        endpoint.host,
        sha256_hex(body.as_bytes())
    );
    let scope = format!("{date}/{SERVICE}/tc3_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let secret_date = hmac_sha256(
        format!("TC3{}", cfg.secret_key.expose()).as_bytes(),
        date.as_bytes(),
    );
    let secret_service = hmac_sha256(&secret_date, SERVICE.as_bytes());
    let secret_signing = hmac_sha256(&secret_service, b"tc3_request");
    let signature = hex::encode(hmac_sha256(&secret_signing, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        cfg.secret_id
    );

    let headers = [
        ("Content-Type", content_type.to_string()),
        ("Host", endpoint.host.clone()),
        ("X-TC-Action", "SendSms".to_string()),
        ("X-TC-RequestClient", REQUEST_CLIENT.to_string()),
        ("X-TC-Timestamp", timestamp.to_string()),
        ("X-TC-Version", API_VERSION.to_string()),
        ("X-TC-Region", cfg.region.trim().to_string()),
        ("X-TC-Language", "zh-CN".to_string()),
        ("Authorization", authorization),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    Ok(SignedRequest {
        method: "POST",
        url: endpoint.base_url(),
        headers,
        body: body.into_bytes(),
        canonical_request,
    })
}

/// Send `msg` now. Never panics; a network failure is `Failed { retry: true }`.
pub async fn send(client: &reqwest::Client, cfg: &TencentConfig, msg: &Outgoing) -> Handed {
    sign::deliver(
        client,
        build_send_sms(cfg, msg, Utc::now()),
        "Tencent Cloud",
        interpret,
    )
    .await
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: ResponseBody,
}

#[derive(Deserialize)]
struct ResponseBody {
    #[serde(rename = "Error")]
    error: Option<ApiError>,
    #[serde(rename = "SendStatusSet")]
    send_status_set: Option<Vec<SendStatus>>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
}

#[derive(Deserialize)]
struct SendStatus {
    #[serde(rename = "SerialNo")]
    serial_no: Option<String>,
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
}

/// What a SendSms answer (HTTP status, body) means: `SendStatusSet[0].Code == "Ok"` →
/// accepted with its `SerialNo`; `LimitExceeded.*`, `InternalError.*`, request throttling and
/// 5xx → retry; anything else (`InvalidParameterValue.*`, `FailedOperation.*`: bad number,
/// template or signature refused, balance; `AuthFailure.*`) → final. `Response.Error` is read
/// the same way.
pub fn interpret(status: u16, body: &[u8]) -> Handed {
    let Ok(Envelope { response: r }) = serde_json::from_slice::<Envelope>(body) else {
        return Handed::Failed {
            reason: format!(
                "腾讯云短信应答无法识别 / unreadable answer from Tencent Cloud (HTTP {status}): {}",
                sign::snippet(body)
            ),
            retry: true,
        };
    };
    let request_id = r.request_id.unwrap_or_default();
    let (code, message) = if let Some(e) = r.error {
        (e.code.unwrap_or_default(), e.message.unwrap_or_default())
    } else if let Some(first) = r.send_status_set.and_then(|s| s.into_iter().next()) {
        let code = first.code.unwrap_or_default();
        if code == "Ok" && (200..300).contains(&status) {
            if let Some(serial) = first.serial_no.filter(|s| !s.is_empty()) {
                return Handed::Accepted { reference: serial };
            }
        }
        (code, first.message.unwrap_or_default())
    } else {
        (String::new(), "no SendStatusSet".to_string())
    };
    Handed::Failed {
        reason: format!(
            "腾讯云短信 {}: {message} (HTTP {status}, RequestId {request_id})",
            if code.is_empty() { "?" } else { &code }
        ),
        retry: retryable(&code, status),
    }
}

/// Codes worth another try later.
fn retryable(code: &str, status: u16) -> bool {
    const RETRY_PREFIXES: [&str; 5] = [
        "LimitExceeded",
        "InternalError",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ResourceUnavailable.ServiceUnavailable",
    ];
    if RETRY_PREFIXES.iter().any(|p| code.starts_with(p))
        // The clock was off by more than five minutes: worth retrying once it is right.
        || code == "AuthFailure.SignatureExpire"
    {
        return true;
    }
    status >= 500
}

/// One reply in Tencent's callback.
#[derive(Deserialize)]
struct Reply {
    #[allow(dead_code)]
    extend: Option<String>,
    mobile: String,
    nationcode: Option<String>,
    #[allow(dead_code)]
    sign: Option<String>,
    text: String,
    /// Unix seconds (a number; a numeric string tolerated).
    time: Option<serde_json::Value>,
}

/// Read Tencent's reply callback: one
/// `{"extend","mobile","nationcode","sign","text","time"}` object or an array of them. `now`
/// stands in for a missing `time`. Tencent gives no message id: the reference is the number,
/// the time and a hash of the text, so the same callback delivered twice maps to one
/// reference. `Err`: not JSON, or a reply without a number or text (nothing half-read).
pub fn parse_reply(
    body: &[u8],
    now: DateTime<FixedOffset>,
) -> Result<Vec<Incoming>, CallbackError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        CallbackError(format!(
            "腾讯云回复短信回调不是有效的 JSON / the Tencent Cloud reply callback is not valid \
             JSON: {e}"
        ))
    })?;
    let items =
        match value {
            serde_json::Value::Array(items) => items,
            object @ serde_json::Value::Object(_) => vec![object],
            _ => return Err(CallbackError(
                "腾讯云回复短信回调应为 JSON 对象或数组 / the Tencent Cloud reply callback must \
                 be a JSON object or array"
                    .into(),
            )),
        };
    let china = agent_core::store::china_offset();
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let bad = |why: String| {
                CallbackError(format!(
                    "腾讯云回复短信第 {} 条无法识别 / Tencent Cloud reply {}: {why}",
                    i + 1,
                    i + 1
                ))
            };
            let reply: Reply = serde_json::from_value(item).map_err(|e| bad(e.to_string()))?;
            let mobile = reply.mobile.trim();
            if mobile.is_empty() {
                return Err(bad("no mobile".into()));
            }
            let nation = reply
                .nationcode
                .as_deref()
                .map(|n| n.trim().trim_start_matches('+'))
                .filter(|n| !n.is_empty())
                .unwrap_or("86");
            let from = if nation == "86" {
                sign::strip_china_prefix(mobile)
            } else {
                format!("+{nation}{mobile}")
            };
            let seconds = match &reply.time {
                Some(serde_json::Value::Number(n)) => n.as_i64(),
                Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            let received = seconds
                .and_then(|s| china.timestamp_opt(s, 0).single())
                .unwrap_or(now);
            let stamp = seconds.map(|s| s.to_string()).unwrap_or_default();
            let digest = sha256_hex(format!("{from}\n{stamp}\n{}", reply.text).as_bytes());
            Ok(Incoming {
                reference: format!("tencent-{from}-{stamp}-{}", &digest[..16]),
                from,
                text: reply.text,
                received,
            })
        })
        .collect()
}
