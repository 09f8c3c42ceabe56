//! `daiban.toml` in the server's data directory, written by `sync-server init`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The configuration file's name inside the data directory.
pub const CONFIG_FILE: &str = "daiban.toml";
/// The SQLite database's name inside the data directory.
pub const DB_FILE: &str = "server.db";
/// Default listen address (loopback; set `[tls]` before listening on a public address).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8700";

/// Which level of the county this server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ServerRole {
    /// 乡镇中心: serves its points' tablets, stamps `received` / `arrived`.
    Township,
    /// 区县中心: serves its townships' upward syncs and its windows.
    District,
}

impl ServerRole {
    /// The role of the staff who work on this server: township staff, or district windows.
    pub fn staff_role(self) -> agent_core::domain::event::Role {
        use agent_core::domain::event::Role;
        match self {
            ServerRole::Township => Role::Township,
            ServerRole::District => Role::Window,
        }
    }
}

/// One server's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub role: ServerRole,
    /// Human name, e.g. 柏林镇便民服务中心.
    pub name: String,
    /// The `actor` of events this server appends (stamps), unique in the county.
    pub server_id: String,
    pub listen: String,
    /// A township server's township code, as in the district's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub township: Option<String>,
    /// The parent district's base URL (townships only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Seconds between scheduled syncs with the district; it also syncs soon after changes.
    /// 0: only when asked (`POST /api/upstream/sync`), for tests and metered links.
    #[serde(default = "default_interval")]
    pub sync_interval_secs: u64,
    /// Working days the township has to answer a 不满意 or worse rating (回访); the board
    /// tracks each until answered. Set the county's one figure on every server.
    #[serde(default = "default_followup_days")]
    pub followup_days: u32,
    /// The CA certificate (PEM) the district's certificate must chain to, when `parent` is
    /// `https://` (townships); relative to the data directory or absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_ca: Option<PathBuf>,
    /// `[sms]`: the SMS gateway this server runs, if any (written by hand, never by `init`).
    #[serde(default, skip_serializing)]
    pub sms: Option<crate::sms::service::SmsConfig>,
    /// Serve HTTPS with this certificate and key (`sync-server make-cert`); plain HTTP
    /// without. Last: a TOML table follows the plain keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
}

/// `[tls]`: PEM files, relative to the data directory or absolute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The server's certificate (chain), e.g. `cert.pem` from `make-cert`.
    pub cert: PathBuf,
    /// Its private key, e.g. `key.pem` (mode 0600).
    pub key: PathBuf,
}

/// The default `followup_days`.
pub const DEFAULT_FOLLOWUP_DAYS: u32 = 5;

fn default_followup_days() -> u32 {
    DEFAULT_FOLLOWUP_DAYS
}

/// The default `sync_interval_secs`.
pub const DEFAULT_INTERVAL: u64 = 300;

fn default_interval() -> u64 {
    DEFAULT_INTERVAL
}

impl Config {
    pub fn path(data: &Path) -> PathBuf {
        data.join(CONFIG_FILE)
    }

    pub fn db_path(data: &Path) -> PathBuf {
        data.join(DB_FILE)
    }

    /// A path from the config: relative ones are inside the data directory.
    pub fn resolve(data: &Path, path: &Path) -> PathBuf {
        data.join(path)
    }

    /// Read the data directory's configuration.
    pub fn load(data: &Path) -> Result<Config> {
        let path = Self::path(data);
        let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
        let config: Config = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.clone(),
            message: e.message().to_owned(),
        })?;
        config
            .check()
            .map_err(|message| Error::Config { path, message })?;
        Ok(config)
    }

    /// A township names its township; only a township has a parent; a parent CA goes with
    /// an `https://` parent and an `https://` parent needs one.
    pub fn check(&self) -> std::result::Result<(), String> {
        let https = self
            .parent
            .as_deref()
            .is_some_and(|p| p.to_ascii_lowercase().starts_with("https://"));
        match (https, &self.parent_ca) {
            (true, None) => {
                return Err(
                    "an https:// parent needs `parent_ca` (the district's CA certificate, PEM)"
                        .into(),
                )
            }
            (false, Some(_)) => {
                return Err("`parent_ca` is set but `parent` is not an https:// URL".into())
            }
            _ => {}
        }
        if let Some(sms) = &self.sms {
            sms.check()?;
        }
        if self.followup_days == 0 {
            return Err("`followup_days` must be at least 1 working day".into());
        }
        match (self.role, &self.township, &self.parent) {
            (ServerRole::Township, None, _) => {
                Err("a township server needs `township` (its code in the directory)".into())
            }
            (ServerRole::District, Some(_), _) | (ServerRole::District, _, Some(_)) => {
                Err("a district server has no `township` or `parent`".into())
            }
            _ => Ok(()),
        }
    }

    /// Write the configuration of a new server; refuses a directory that already has one.
    pub fn create(&self, data: &Path) -> Result<()> {
        let path = Self::path(data);
        self.check().map_err(|message| Error::Config {
            path: path.clone(),
            message,
        })?;
        if path.exists() || Self::db_path(data).exists() {
            return Err(Error::AlreadyInitialised(data.to_owned()));
        }
        std::fs::create_dir_all(data).map_err(Error::io(data))?;
        let text = toml::to_string(self).map_err(|e| Error::Config {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // create_new: two `init`s racing on one directory cannot both win.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::AlreadyInitialised(data.to_owned()),
                _ => Error::Io {
                    path: path.clone(),
                    source: e,
                },
            })?;
        file.write_all(text.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(Error::io(&path))
    }
}
