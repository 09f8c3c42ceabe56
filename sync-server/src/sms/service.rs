//! The SMS gateway at work: `[sms]` in `daiban.toml` names the gateway; a loop on the server
//! queues notifications from the change log, answers inbound texts and hands the outbox to the
//! gateway, every `poll_secs` seconds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::aliyun::{self, AliyunConfig};
use super::smstools::{Spool, SpoolState};
use super::tencent::{self, TencentConfig};
use super::{inbound, notify, outbox, Handed, Incoming, Outgoing};
use crate::error::{Error, Result};
use crate::http::AppState;

/// Messages handed to the gateway per round.
const ROUND: usize = 50;

/// `[sms]`: which gateway, the sign name texts start with (【…】), and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    pub gateway: GatewayKind,
    /// The sign carriers require in front of every text, e.g. 示范县便民服务.
    pub sign_name: String,
    /// The number villagers text (the modem's SIM, or the provider's reply number), printed
    /// on receipts.
    #[serde(default)]
    pub query_number: Option<String>,
    /// Seconds between rounds (default 5).
    #[serde(default = "default_poll")]
    pub poll_secs: u64,
    #[serde(default)]
    pub smstools: Option<SmstoolsConfig>,
    #[serde(default)]
    pub aliyun: Option<AliyunConfig>,
    #[serde(default)]
    pub tencent: Option<TencentConfig>,
    /// A secret in the URL of the providers' inbound-reply callbacks
    /// (`/sms/inbound/{provider}/{token}`): only the provider, told the URL, can post there.
    #[serde(default)]
    pub callback_token: Option<String>,
}

fn default_poll() -> u64 {
    5
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayKind {
    /// A GSM modem through smstools3's spool.
    Smstools,
    Aliyun,
    Tencent,
}

/// `[sms.smstools]`: smsd's spool directory (with `outgoing/`, `incoming/`, `sent/`, `failed/`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmstoolsConfig {
    pub spool: PathBuf,
}

impl SmsConfig {
    /// The settings the chosen gateway needs are there and make sense.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.sign_name.trim().is_empty() {
            return Err("[sms] needs `sign_name`".into());
        }
        match self.gateway {
            GatewayKind::Smstools if self.smstools.is_none() => {
                Err("[sms] gateway = \"smstools\" needs [sms.smstools] spool".into())
            }
            GatewayKind::Aliyun => self
                .aliyun
                .as_ref()
                .ok_or("[sms] gateway = \"aliyun\" needs [sms.aliyun]")?
                .check(),
            GatewayKind::Tencent => self
                .tencent
                .as_ref()
                .ok_or("[sms] gateway = \"tencent\" needs [sms.tencent]")?
                .check(),
            GatewayKind::Smstools => Ok(()),
        }
    }
}

/// The gateway a server hands its messages to.
pub enum Gateway {
    Smstools(Arc<Spool>),
    Aliyun(AliyunConfig, reqwest::Client),
    Tencent(TencentConfig, reqwest::Client),
}

impl Gateway {
    /// `data`: the data directory a relative spool path is under.
    pub fn open(config: &SmsConfig, data: &std::path::Path) -> Result<Gateway> {
        config.check().map_err(Error::BadRequest)?;
        let client = || {
            super::sign::http_client(super::sign::TIMEOUT)
                .map_err(|e| Error::Internal(format!("HTTP client: {e}")))
        };
        Ok(match config.gateway {
            GatewayKind::Smstools => {
                let spool = config.smstools.as_ref().map(|s| s.spool.clone());
                let spool = crate::config::Config::resolve(data, &spool.unwrap_or_default());
                Gateway::Smstools(Arc::new(Spool::new(spool)))
            }
            GatewayKind::Aliyun => Gateway::Aliyun(
                config
                    .aliyun
                    .clone()
                    .ok_or(Error::BadRequest("[sms.aliyun]".into()))?,
                client()?,
            ),
            GatewayKind::Tencent => Gateway::Tencent(
                config
                    .tencent
                    .clone()
                    .ok_or(Error::BadRequest("[sms.tencent]".into()))?,
                client()?,
            ),
        })
    }

    async fn send(&self, msg: &Outgoing) -> Handed {
        match self {
            Gateway::Smstools(spool) => {
                let (spool, msg) = (Arc::clone(spool), msg.clone());
                tokio::task::spawn_blocking(move || spool.submit(&msg))
                    .await
                    .unwrap_or_else(|e| Handed::Failed {
                        reason: format!("spool: {e}"),
                        retry: true,
                    })
            }
            Gateway::Aliyun(cfg, client) => aliyun::send(client, cfg, msg).await,
            Gateway::Tencent(cfg, client) => tencent::send(client, cfg, msg).await,
        }
    }
}

/// Run the gateway until the server stops.
pub async fn run(state: AppState, config: SmsConfig, gateway: Gateway) {
    let pause = Duration::from_secs(config.poll_secs.max(1));
    tracing::info!(gateway = ?config.gateway, "SMS gateway running");
    loop {
        round(&state, &config, &gateway).await;
        tokio::time::sleep(pause).await;
    }
}

/// One round: notifications, inbound texts, then the outbox; a stage that fails is logged
/// and tried again next round, never holding up the others.
pub async fn round(state: &AppState, config: &SmsConfig, gateway: &Gateway) {
    let stages = [
        ("notifications", notifications(state, config).await),
        ("inbound", inbound(state, config, gateway).await),
        ("outbox", send_due(state, gateway).await),
    ];
    for (stage, result) in stages {
        if let Err(e) = result {
            tracing::error!(stage, error = %e, "SMS round stage failed; will retry");
        }
    }
}

/// Queue what the changes since the last round and the day's overdue tickets call for.
async fn notifications(state: &AppState, config: &SmsConfig) -> Result<()> {
    let now = crate::now();
    // A batch at a time, the store free for requests in between.
    loop {
        let sign = config.sign_name.clone();
        let read = state
            .with_store(move |store, _| notify::follow(store, &sign, now))
            .await?;
        if read == 0 {
            break;
        }
    }
    let sign = config.sign_name.clone();
    state
        .with_store(move |store, _| notify::overdue(store, &sign, now))
        .await?;
    Ok(())
}

/// Answer the texts waiting in the spool (cloud providers push theirs to `callback`).
async fn inbound(state: &AppState, config: &SmsConfig, gateway: &Gateway) -> Result<()> {
    if let Gateway::Smstools(spool) = gateway {
        let reading = Arc::clone(spool);
        let found = tokio::task::spawn_blocking(move || reading.incoming())
            .await
            .map_err(|e| Error::Internal(format!("spool: {e}")))?;
        for (file, mut msg) in found {
            // smsd reuses a file name once the old file has left incoming/: the reference
            // that makes a text handled once is the name with what the file says.
            msg.reference = format!(
                "{}:{}",
                msg.reference,
                super::sign::sha256_hex(
                    format!("{}\n{}\n{}", msg.from, msg.received.to_rfc3339(), msg.text).as_bytes()
                )
                .get(..16)
                .unwrap_or_default()
            );
            // Left in incoming/ when it fails (tried again next round); the others go on.
            if let Err(e) = receive(state, config, msg).await {
                tracing::error!(error = %e, file = %file.display(), "inbound SMS not handled");
                continue;
            }
            if let Err(e) = spool.processed(&file) {
                tracing::error!(error = %e, file = %file.display(), "inbound SMS file not moved");
            }
        }
        reconcile(state, spool).await?;
    }
    Ok(())
}

/// What smsd made of the messages handed to it in the last two days: one it moved to
/// `failed/` is failed, with smsd's reason, in the outbox too.
async fn reconcile(state: &AppState, spool: &Arc<Spool>) -> Result<()> {
    let since = crate::now() - chrono::Duration::days(2);
    let ids = state
        .with_store(move |store, _| outbox::sent_since(store.conn(), since, 500))
        .await?;
    let reading = Arc::clone(spool);
    let failed: Vec<(i64, String)> = tokio::task::spawn_blocking(move || {
        ids.into_iter()
            .filter_map(|id| match reading.state(id) {
                SpoolState::Failed(reason) => Some((id, reason)),
                _ => None,
            })
            .collect()
    })
    .await
    .map_err(|e| Error::Internal(format!("spool: {e}")))?;
    if failed.is_empty() {
        return Ok(());
    }
    state
        .with_store(move |store, _| {
            for (id, reason) in &failed {
                outbox::failed_after(store.conn(), *id, &format!("短信猫发送失败：{reason}"))?;
            }
            Ok(())
        })
        .await
}

/// Handle one inbound text (from the spool or a provider's callback).
pub async fn receive(state: &AppState, config: &SmsConfig, msg: Incoming) -> Result<()> {
    let sign = config.sign_name.clone();
    let now = crate::now();
    let asked = state
        .with_store(move |store, info| inbound::handle(store, info, &sign, &msg, now))
        .await?;
    tracing::info!(asked, "inbound SMS");
    Ok(())
}

/// Hand every message whose time has come to the gateway and record what it did.
async fn send_due(state: &AppState, gateway: &Gateway) -> Result<()> {
    let now = crate::now();
    let due = state
        .with_store(move |store, _| outbox::due(store.conn(), now, ROUND))
        .await?;
    for (msg, attempts) in due {
        crate::fault::point("sms_before_handing");
        let handed = gateway.send(&msg).await;
        crate::fault::point("sms_after_handing");
        if let Handed::Failed { reason, .. } = &handed {
            tracing::warn!(id = msg.id, %reason, "SMS not taken by the gateway");
        }
        let now = crate::now();
        state
            .with_store(move |store, _| {
                outbox::record(store.conn(), msg.id, attempts + 1, &handed, now)
            })
            .await?;
    }
    Ok(())
}
