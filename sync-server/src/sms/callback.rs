//! The cloud providers' inbound-reply callbacks: `POST /sms/inbound/aliyun/{token}` (Aliyun's
//! SMS-up HTTP push) and `POST /sms/inbound/tencent/{token}` (Tencent Cloud's reply
//! callback). The providers do not sign these pushes, so the URL carries a secret
//! (`callback_token` in `[sms]`), told only to the provider's console; anything else is
//! answered as a page that does not exist.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::service::{self, GatewayKind};
use super::{aliyun, tencent};
use crate::http::AppState;

/// Largest callback body: a push holds a few hundred texts at most.
const MAX_BODY: usize = 1 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sms/inbound/{provider}/{token}", post(inbound))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

/// Equal without telling, by its timing, how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A refusal in the JSON shape of every API error.
fn refused(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": text }))).into_response()
}

async fn inbound(
    State(state): State<AppState>,
    Path((provider, token)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let absent = || refused(StatusCode::NOT_FOUND, "not found");
    let Some(config) = state.sms.clone() else {
        return absent();
    };
    let expected = match (config.gateway, provider.as_str()) {
        (GatewayKind::Aliyun, "aliyun") | (GatewayKind::Tencent, "tencent") => {
            config.callback_token.as_deref()
        }
        _ => None,
    };
    if !expected.is_some_and(|t| !t.is_empty() && same(t, &token)) {
        return absent();
    }
    let now = crate::now();
    let (parsed, answer) = if config.gateway == GatewayKind::Aliyun {
        (aliyun::parse_sms_up(&body, now), aliyun::SMS_UP_ANSWER)
    } else {
        (tencent::parse_reply(&body, now), tencent::REPLY_ANSWER)
    };
    let texts = match parsed {
        Ok(texts) => texts,
        Err(e) => {
            // The reason may quote a value from the body (a phone): not logged.
            tracing::warn!(%provider, "inbound SMS callback does not parse; refused");
            return refused(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    for msg in texts {
        if let Err(e) = service::receive(&state, &config, msg).await {
            // Not acknowledged: the provider pushes again, and a text already handled is
            // recognised by its reference.
            tracing::error!(error = %e, "inbound SMS not handled");
            return refused(StatusCode::SERVICE_UNAVAILABLE, "短信暂时无法处理，请重试");
        }
    }
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        answer,
    )
        .into_response()
}
