//! What a county admin does to a server's data directory, as functions the CLI (`main.rs`)
//! and the in-process demo share: create it, import the directory, catalog and calendar,
//! and serve it.

use std::future::Future;
use std::path::Path;

use agent_core::domain::calendar::Calendar;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::directory::DirectoryPart;
use agent_core::sync::shared::SharedName;

use agent_core::sync::client::Endpoint;
use agent_core::sync::enroll::{enroll_with, EnrollRequest, Enrolled};
use agent_core::sync::wire::{Peer, PROTOCOL_VERSION};

use crate::config::{Config, ServerRole};
use crate::enroll::{CodeFor, Issued};
use crate::error::{Error, Result};
use crate::http::{app, AppState};
use crate::store::ServerStore;
use crate::sync::ServerInfo;

/// Create a data directory: its config and an empty store. Refuses an existing one.
pub fn init(data: &Path, config: &Config) -> Result<()> {
    config.create(data)?;
    ServerStore::open(Config::db_path(data))?;
    Ok(())
}

/// Open an initialised data directory's store.
pub fn open(data: &Path) -> Result<(Config, ServerStore)> {
    let config = Config::load(data)?;
    let store = ServerStore::open(Config::db_path(data))?;
    Ok((config, store))
}

/// Publish the directory part this server owns: at the district its townships and points,
/// at a township its devices (checked against the district's part it holds). Returns the
/// new version and the part.
pub fn import_directory(data: &Path, json: &str) -> Result<(u64, DirectoryPart)> {
    let (config, mut store) = open(data)?;
    let township = config.township.as_deref();
    let mut part = DirectoryPart::from_json(json, township, &store.directory()?)
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let name = SharedName::directory_part(township);
    if let Some(held) = store.shared(&name)? {
        let held: DirectoryPart = serde_json::from_slice(&held.body)
            .map_err(|e| Error::Internal(format!("stored directory: {e}")))?;
        crate::enroll::keep_enrolled(&mut part, &held);
    }
    let body = serde_json::to_vec(&part).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((store.publish(&name, &body)?, part))
}

/// Publish the working-day calendar (CSV); district only.
pub fn import_calendar(data: &Path, csv: &str) -> Result<(u64, Calendar)> {
    let calendar = Calendar::parse_csv(csv).map_err(agent_core::Error::from)?;
    let version = district(data)?.publish(&SharedName::Calendar, csv.as_bytes())?;
    Ok((version, calendar))
}

/// Publish the catalog (JSON) and record its items' versions; district only.
pub fn import_catalog(data: &Path, json: &str) -> Result<(u64, Catalog)> {
    let catalog = Catalog::from_json(json).map_err(agent_core::Error::from)?;
    let mut store = district(data)?;
    let tx = store.begin()?;
    let version = crate::store::publish(&tx, &SharedName::Catalog, json.as_bytes())?;
    // History starts at the import: each item's definition as published.
    crate::catalog::record_versions(&tx, &catalog, crate::catalog::BY_IMPORT, crate::now())?;
    tx.commit()?;
    Ok((version, catalog))
}

/// A district's store: catalog and calendar are edited only there.
fn district(data: &Path) -> Result<ServerStore> {
    let (config, store) = open(data)?;
    if config.role != ServerRole::District {
        return Err(Error::BadRequest(
            "目录和日历由区县维护：请在区县服务器上导入，乡镇在下次同步时收到".into(),
        ));
    }
    Ok(store)
}

/// Who this server is, from its config.
pub fn info(config: &Config) -> ServerInfo {
    ServerInfo {
        role: config.role,
        server_id: config.server_id.clone(),
        township: config.township.clone(),
        followup_days: config.followup_days,
    }
}

/// Issue a one-time enrollment code: at a township for a device of one of its points, at
/// the district for a township server.
pub fn issue_code(data: &Path, target: &CodeFor, hours: u32) -> Result<Issued> {
    let (config, mut store) = open(data)?;
    crate::enroll::issue_code(&mut store, &info(&config), target, hours, crate::now())
}

/// Revoke a device; returns the new version of this server's directory part.
pub fn revoke(data: &Path, point: u32, device: u32, reason: &str) -> Result<u64> {
    let (config, mut store) = open(data)?;
    crate::enroll::revoke(&mut store, &info(&config), point, device, reason)
}

/// Open a staff account on this server.
pub fn add_staff(
    data: &Path,
    new: &crate::accounts::NewAccount<'_>,
    password: &str,
) -> Result<crate::accounts::Account> {
    let (config, mut store) = open(data)?;
    crate::accounts::add(
        &mut store,
        &info(&config),
        new,
        password,
        "(命令行)",
        crate::now(),
    )
}

/// Enroll this township server with its district (its parent), with the code the district
/// admin issued for this township. Blocking (HTTP).
pub fn enroll_with_parent(data: &Path, code: &str) -> Result<Enrolled> {
    let (config, mut store) = open(data)?;
    let (Some(parent), Some(township)) = (&config.parent, &config.township) else {
        return Err(Error::BadRequest(
            "只有配置了上级（区县）服务器的乡镇服务器需要注册".into(),
        ));
    };
    let ca = crate::tls::parent_ca(data, &config)?;
    let key = store.signing_key()?;
    let request = EnrollRequest {
        v: PROTOCOL_VERSION,
        code: code.to_owned(),
        peer: Peer::Township {
            code: township.clone(),
        },
        actor: store.actor().to_hex_string(),
        key: key.public_hex(),
    };
    let endpoint = Endpoint {
        url: parent,
        ca_pem: ca.as_deref(),
    };
    Ok(enroll_with(endpoint, &request)?)
}

/// Serve a data directory on `listener` until `shutdown` resolves, over HTTPS when the config
/// has `[tls]`; a township with a parent also syncs with its district on schedule.
pub async fn serve(
    data: &Path,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (config, store) = open(data)?;
    let tls = crate::tls::load(data, &config)?;
    let parent_ca = crate::tls::parent_ca(data, &config)?;
    let state = AppState::new(store, info(&config))
        .with_parent(config.parent.clone())
        .with_parent_ca(parent_ca)
        .with_https(tls.is_some())
        .with_sms(config.sms.clone());
    tracing::info!(role = ?config.role, name = %config.name, "serving");
    tokio::spawn(state.clone().index_forever());
    if let Some(sms) = &config.sms {
        let gateway = crate::sms::service::Gateway::open(sms, data)?;
        tokio::spawn(crate::sms::service::run(
            state.clone(),
            sms.clone(),
            gateway,
        ));
    }
    match (&config.parent, config.sync_interval_secs) {
        (Some(parent), 0) => tracing::info!(%parent, "syncing with the district when asked"),
        (Some(parent), secs) => {
            tracing::info!(%parent, secs, "syncing with the district");
            let every = std::time::Duration::from_secs(secs.max(5));
            tokio::spawn(state.clone().sync_upward_forever(every));
        }
        (None, _) => {}
    }
    match tls {
        Some(tls) => crate::http::serve_tls(listener, app(state), tls, shutdown).await,
        None => crate::http::serve(listener, app(state), shutdown).await,
    }
    Ok(())
}
