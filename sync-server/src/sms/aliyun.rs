//! Aliyun (阿里云短信服务, dysmsapi): SendSms, and the SMS-up (上行短信) push of villagers'
//! replies.
//!
//! - SendSms, API version 2017-05-25, signed with the V3 signature `ACS3-HMAC-SHA256`, the
//!   one the official SDK (`alibabacloud-dysmsapi20170525` on `alibabacloud-tea-openapi`)
//!   uses: its `call_api` takes the V3 path (`do_request`) unless the old RPC HMAC-SHA1
//!   signature is asked for (`signature_algorithm = 'v2'`). The request is the SDK's to the
//!   byte: `POST /?OutId=…&PhoneNumbers=…&SignName=…&TemplateCode=…&TemplateParam=…` with an
//!   empty body, the headers `host`, `x-acs-version`, `x-acs-action`, `user-agent`,
//!   `x-acs-date`, `x-acs-signature-nonce`, `accept`, `x-acs-content-sha256`,
//!   `x-acs-credentials-provider`, all of them signed (tests/sms_providers.rs runs the SDK
//!   against a local server and compares).
//! - [`build_send_sms`] is pure (time and nonce given) so tests can fix both; [`send`] uses the
//!   clock and a random nonce, and maps the answer to [`Handed`] ([`interpret`]).
//! - [`parse_sms_up`] reads the HTTP batch push of SMS-up reports; answer it with
//!   [`SMS_UP_ANSWER`].

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;

use super::sign::{
    self, hmac_sha256, percent_encode, random_nonce, sha256_hex, CallbackError, Endpoint, Secret,
    SignedRequest,
};
use super::{Handed, Incoming, Outgoing, Template};

pub const DEFAULT_ENDPOINT: &str = "https://dysmsapi.aliyuncs.com";
pub const API_VERSION: &str = "2017-05-25";
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";
/// Sent and signed as `user-agent`.
pub const USER_AGENT: &str = "daiban-sync-server";
/// What the official SDK sends as `x-acs-credentials-provider` with a plain AccessKey.
pub const CREDENTIALS_PROVIDER: &str = "static_ak";
/// The answer Aliyun expects to an SMS-up push (anything else and it pushes again).
pub const SMS_UP_ANSWER: &str = r#"{"code":0,"msg":"成功"}"#;

/// `[sms.aliyun]`. `Debug` never shows the AccessKey secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliyunConfig {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    /// `https://dysmsapi.aliyuncs.com` unless set.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The approved signature (签名), e.g. `某某镇便民服务`.
    pub sign_name: String,
    /// [`Template::as_str`] → the approved template code (`SMS_123456789`).
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_string()
}

impl AliyunConfig {
    /// The endpoint parses and every template name is one of [`Template::ALL`].
    pub fn check(&self) -> Result<(), String> {
        Endpoint::parse(&self.endpoint)?;
        if self.access_key_id.trim().is_empty() || self.access_key_secret.expose().is_empty() {
            return Err(
                "阿里云短信缺少 AccessKey / [sms.aliyun]: access_key_id and \
                        access_key_secret are required"
                    .into(),
            );
        }
        for name in self.templates.keys() {
            if Template::parse(name).is_none() {
                return Err(format!(
                    "阿里云短信模板名称未知 / [sms.aliyun.templates]: unknown template {name:?}"
                ));
            }
        }
        Ok(())
    }

    /// The template code for `t`, if configured (and not blank).
    pub fn template_code(&self, t: Template) -> Option<&str> {
        self.templates
            .get(t.as_str())
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }
}

/// `TemplateParam`: a JSON object of the named parameters in the template's order, compact,
/// UTF-8 (`{"item":"低保申请","date":"3月5日"}`).
pub fn template_param_json(params: &[(String, String)]) -> String {
    let fields: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}:{}",
                serde_json::Value::String(k.clone()),
                serde_json::Value::String(v.clone())
            )
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// The SendSms request for `msg`, signed at `at` with `nonce`. `Err`: no template code for
/// the message's template, or a bad endpoint (final: retrying cannot help).
pub fn build_send_sms(
    cfg: &AliyunConfig,
    msg: &Outgoing,
    at: DateTime<Utc>,
    nonce: &str,
) -> Result<SignedRequest, String> {
    let Some(code) = cfg.template_code(msg.template) else {
        return Err(format!(
            "阿里云短信未配置模板“{0}”的模板代码 / no Aliyun template code configured for \
             `{0}` in [sms.aliyun.templates]",
            msg.template.as_str()
        ));
    };
    let endpoint = Endpoint::parse(&cfg.endpoint)?;

    let mut query: Vec<(&str, String)> = vec![
        ("OutId", msg.id.to_string()),
        ("PhoneNumbers", msg.phone.trim().to_string()),
        ("SignName", cfg.sign_name.clone()),
        ("TemplateCode", code.to_string()),
    ];
    if !msg.params.is_empty() {
        query.push(("TemplateParam", template_param_json(&msg.params)));
    }
    query.sort_by(|a, b| a.0.cmp(b.0));
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");

    let payload_hash = sha256_hex(b"");
    let mut headers: Vec<(String, String)> = [
        ("host", endpoint.host.clone()),
        ("x-acs-version", API_VERSION.to_string()),
        ("x-acs-action", "SendSms".to_string()),
        ("user-agent", USER_AGENT.to_string()),
        ("x-acs-date", at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        ("x-acs-signature-nonce", nonce.to_string()),
        ("accept", "application/json".to_string()),
        ("x-acs-content-sha256", payload_hash.clone()),
        (
            "x-acs-credentials-provider",
            CREDENTIALS_PROVIDER.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    // Every header is signed: lowercase names sorted, values trimmed.
    let mut canonical: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    canonical.sort();
    let canonical_headers: String = canonical
        .iter()
        .map(|(k, v)| format!("{k}:{v}\n"))
        .collect();
    let signed_headers = canonical
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "POST\n/\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
    );
    let string_to_sign = format!("{ALGORITHM}\n{}", sha256_hex(canonical_request.as_bytes()));
    let signature = hex::encode(hmac_sha256(
        cfg.access_key_secret.expose().as_bytes(),
        string_to_sign.as_bytes(),
    ));
    headers.push((
        "Authorization".to_string(),
        format!(
            "{ALGORITHM} Credential={},SignedHeaders={signed_headers},Signature={signature}",
            cfg.access_key_id
        ),
    ));

    Ok(SignedRequest {
        method: "POST",
        url: format!("{}?{canonical_query}", endpoint.base_url()),
        headers,
        body: Vec::new(),
        canonical_request,
    })
}

/// Send `msg` now (the clock, a fresh nonce). Never panics; a network failure is
/// `Failed { retry: true }`.
pub async fn send(client: &reqwest::Client, cfg: &AliyunConfig, msg: &Outgoing) -> Handed {
    let built = build_send_sms(cfg, msg, Utc::now(), &random_nonce());
    sign::deliver(client, built, "Aliyun", interpret).await
}

#[derive(Deserialize)]
struct SendSmsResponse {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "BizId")]
    biz_id: Option<String>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
}

/// What a SendSms answer (HTTP status, body) means: `Code == "OK"` → accepted with its
/// `BizId`; throttling, flow control, Aliyun's own errors and 5xx → retry; anything else
/// (bad number, template or signature refused, account or key problems) → final.
pub fn interpret(status: u16, body: &[u8]) -> Handed {
    let Ok(r) = serde_json::from_slice::<SendSmsResponse>(body) else {
        return Handed::Failed {
            reason: format!(
                "阿里云短信应答无法识别 / unreadable answer from Aliyun (HTTP {status}): {}",
                sign::snippet(body)
            ),
            retry: true,
        };
    };
    let code = r.code.unwrap_or_default();
    let request_id = r.request_id.unwrap_or_default();
    if code == "OK" && (200..300).contains(&status) {
        if let Some(biz_id) = r.biz_id.filter(|b| !b.is_empty()) {
            return Handed::Accepted { reference: biz_id };
        }
    }
    let retry = retryable(&code, status);
    Handed::Failed {
        reason: format!(
            "阿里云短信 {}: {} (HTTP {status}, RequestId {request_id})",
            if code.is_empty() { "?" } else { &code },
            r.message.unwrap_or_default()
        ),
        retry,
    }
}

/// Codes worth another try later.
fn retryable(code: &str, status: u16) -> bool {
    const RETRY: [&str; 8] = [
        "isv.BUSINESS_LIMIT_CONTROL",
        "isv.DAY_LIMIT_CONTROL",
        "isv.SMS_OVER_LIMIT",
        "ServiceUnavailable",
        "InternalError",
        "SignatureNonceUsed",
        "InvalidTimeStamp.Expired",
        "RequestTimeout",
    ];
    if code.starts_with("Throttling") || code.starts_with("isp.") || RETRY.contains(&code) {
        return true;
    }
    // "OK" without a BizId, or no code at all: only a server error is worth retrying.
    status >= 500
}

/// One report in Aliyun's SMS-up push.
#[derive(Deserialize)]
struct SmsUp {
    phone_number: String,
    content: String,
    /// `2026-03-05 09:12:33`, Beijing time.
    send_time: Option<String>,
    #[allow(dead_code)]
    sign_name: Option<String>,
    #[allow(dead_code)]
    dest_code: Option<String>,
    /// Aliyun's id of the message (a number; a string tolerated).
    sequence_id: Option<serde_json::Value>,
}

/// Read Aliyun's SMS-up HTTP push: a JSON array of
/// `{phone_number, content, send_time, sign_name, dest_code, sequence_id}` (one object alone
/// is taken too). `now` stands in for a missing or unreadable `send_time`. `Err`: not JSON,
/// or a report without a number or text (the whole push is refused, nothing half-read).
pub fn parse_sms_up(
    body: &[u8],
    now: DateTime<FixedOffset>,
) -> Result<Vec<Incoming>, CallbackError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        CallbackError(format!(
            "阿里云上行短信不是有效的 JSON / the Aliyun SMS-up push is not valid JSON: {e}"
        ))
    })?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        object @ serde_json::Value::Object(_) => vec![object],
        _ => {
            return Err(CallbackError(
                "阿里云上行短信应为 JSON 数组 / the Aliyun SMS-up push must be a JSON array".into(),
            ))
        }
    };
    let china = agent_core::store::china_offset();
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let up: SmsUp = serde_json::from_value(item).map_err(|e| {
                CallbackError(format!(
                    "阿里云上行短信第 {} 条无法识别 / Aliyun SMS-up report {}: {e}",
                    i + 1,
                    i + 1
                ))
            })?;
            let received = up
                .send_time
                .as_deref()
                .and_then(|t| NaiveDateTime::parse_from_str(t.trim(), "%Y-%m-%d %H:%M:%S").ok())
                .and_then(|t| china.from_local_datetime(&t).single())
                .unwrap_or(now);
            let reference = match &up.sequence_id {
                Some(serde_json::Value::Number(n)) => n.to_string(),
                Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
                _ => {
                    // No id: the same report pushed twice still maps to one reference.
                    let key = format!(
                        "{}\n{}\n{}",
                        up.phone_number,
                        up.send_time.as_deref().unwrap_or(""),
                        up.content
                    );
                    format!("aliyun-{}", &sha256_hex(key.as_bytes())[..24])
                }
            };
            let from = sign::strip_china_prefix(&up.phone_number);
            if from.is_empty() {
                return Err(CallbackError(format!(
                    "阿里云上行短信第 {} 条没有号码 / Aliyun SMS-up report {}: no phone_number",
                    i + 1,
                    i + 1
                )));
            }
            Ok(Incoming {
                from,
                text: up.content,
                received,
                reference,
            })
        })
        .collect()
}
