//! What a county admin does to a server's data directory, as functions the CLI (`main.rs`)
//! and the in-process demo share: create it, import the directory, catalog and calendar,
//! and serve it.

use std::future::Future;
use std::path::Path;

use agent_core::domain::calendar::Calendar;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::directory::DirectoryPart;
use agent_core::sync::shared::SharedName;

use crate::config::{Config, ServerRole};
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
    let part = DirectoryPart::from_json(json, township, &store.directory()?)
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let name = match township {
        Some(code) => SharedName::TownshipDirectory(code.to_owned()),
        None => SharedName::Directory,
    };
    Ok((store.publish(&name, json.as_bytes())?, part))
}

/// Publish the working-day calendar (CSV); district only.
pub fn import_calendar(data: &Path, csv: &str) -> Result<(u64, Calendar)> {
    let calendar = Calendar::parse_csv(csv).map_err(agent_core::Error::from)?;
    let version = district(data)?.publish(&SharedName::Calendar, csv.as_bytes())?;
    Ok((version, calendar))
}

/// Publish the catalog (JSON); district only.
pub fn import_catalog(data: &Path, json: &str) -> Result<(u64, Catalog)> {
    let catalog = Catalog::from_json(json).map_err(agent_core::Error::from)?;
    let version = district(data)?.publish(&SharedName::Catalog, json.as_bytes())?;
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
    let state = AppState::new(
        store,
        ServerInfo {
            role: config.role,
            server_id: config.server_id.clone(),
            township: config.township.clone(),
        },
    )
    .with_parent(config.parent.clone())
    .with_parent_ca(parent_ca);
    tracing::info!(role = ?config.role, name = %config.name, "serving");
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
