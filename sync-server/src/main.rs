//! `sync-server`: a Daiban township or district server.
//!
//! ```text
//! sync-server init --data DIR --role township --name NAME [--server-id ID] [--parent URL]
//! sync-server serve --data DIR [--listen ADDR]
//! sync-server import-calendar --data DIR FILE.csv
//! sync-server import-catalog --data DIR FILE.json
//! sync-server backup --data DIR --to FILE        (online, while serving)
//! sync-server restore --data DIR --from FILE     (stop the server first)
//! ```

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use agent_core::domain::calendar::Calendar;
use agent_core::domain::catalog::Catalog;
use sync_server::config::{Config, ServerRole, DEFAULT_LISTEN};
use sync_server::http::{app, AppState};
use sync_server::store::{self, ServerStore};
use sync_server::sync::ServerInfo;
use sync_server::{Error, Result};

#[derive(Parser)]
#[command(
    name = "sync-server",
    version,
    about = "Daiban township / district server"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a data directory: daiban.toml and an empty database. Refuses to overwrite.
    Init {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, value_enum)]
        role: ServerRole,
        /// Human name of the center, e.g. 柏林镇便民服务中心.
        #[arg(long)]
        name: String,
        /// Actor of the events this server appends (default: a random `srv-…`).
        #[arg(long)]
        server_id: Option<String>,
        /// Parent district's base URL (townships).
        #[arg(long)]
        parent: Option<String>,
    },
    /// Serve the sync and staff APIs. Prints `listening on http://ADDR` once bound.
    Serve {
        #[arg(long)]
        data: PathBuf,
        /// Overrides the config's `listen` (e.g. 127.0.0.1:0 for a free port).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Import the holiday / make-up-day calendar (CSV) used for deadlines.
    ImportCalendar {
        #[arg(long)]
        data: PathBuf,
        file: PathBuf,
    },
    /// Import the service catalog (JSON).
    ImportCatalog {
        #[arg(long)]
        data: PathBuf,
        file: PathBuf,
    },
    /// Online backup of the database to a new file (safe while the server runs).
    Backup {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        to: PathBuf,
    },
    /// Replace the database with a backup. Stop the server first; the current database is
    /// kept beside it as `server.db.before-restore-<time>`.
    Restore {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        from: PathBuf,
    },
}

fn main() -> ExitCode {
    init_logging();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sync-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout carries only the "listening on" line). Automerge logs an ERROR
/// for every incremental upload (agent-core's `apply_remote` probes the bytes standalone and
/// expects `MissingDeps`), so its target is silenced.
fn init_logging() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("automerge", LevelFilter::OFF);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Init {
            data,
            role,
            name,
            server_id,
            parent,
        } => {
            let server_id =
                server_id.unwrap_or_else(|| format!("srv-{}", sync_server::random_hex(8)));
            let config = Config {
                role,
                name,
                server_id,
                listen: DEFAULT_LISTEN.into(),
                parent,
            };
            config.create(&data)?;
            ServerStore::open(Config::db_path(&data))?;
            println!("initialised {}", data.display());
            Ok(())
        }
        Cmd::Serve { data, listen } => serve(&data, listen),
        Cmd::ImportCalendar { data, file } => {
            let text = read(&file)?;
            let calendar = Calendar::parse_csv(&text).map_err(agent_core::Error::from)?;
            open(&data)?.set_calendar(&calendar)?;
            println!("calendar imported: years {:?}", calendar.years());
            Ok(())
        }
        Cmd::ImportCatalog { data, file } => {
            let text = read(&file)?;
            let catalog = Catalog::from_json(&text).map_err(agent_core::Error::from)?;
            open(&data)?.set_catalog(&catalog)?;
            println!(
                "catalog version {} imported: {} items",
                catalog.version,
                catalog.items.len()
            );
            Ok(())
        }
        Cmd::Backup { data, to } => {
            open(&data)?.backup_to(&to)?;
            println!("backed up to {}", to.display());
            Ok(())
        }
        Cmd::Restore { data, from } => {
            Config::load(&data)?;
            let aside = store::restore(&Config::db_path(&data), &from)?;
            println!(
                "restored from {}; the previous database is kept at {}",
                from.display(),
                aside.display()
            );
            Ok(())
        }
    }
}

fn read(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).map_err(|source| Error::Io {
        path: file.to_owned(),
        source,
    })
}

/// Open an initialised data directory's store.
fn open(data: &Path) -> Result<ServerStore> {
    Config::load(data)?;
    ServerStore::open(Config::db_path(data))
}

fn serve(data: &Path, listen: Option<String>) -> Result<()> {
    let config = Config::load(data)?;
    let store = ServerStore::open(Config::db_path(data))?;
    let addr = listen.unwrap_or_else(|| config.listen.clone());
    let state = AppState::new(
        store,
        ServerInfo {
            role: config.role,
            server_id: config.server_id.clone(),
        },
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::Io {
                path: PathBuf::from(&addr),
                source: e,
            })?;
        let bound = listener.local_addr().map_err(|e| Error::Io {
            path: PathBuf::from(&addr),
            source: e,
        })?;
        tracing::info!(role = ?config.role, name = %config.name, %bound, "serving");
        // The one line on stdout: tests and scripts wait for it.
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{bound}")
            .and_then(|_| out.flush())
            .map_err(|e| Error::Internal(format!("stdout: {e}")))?;
        drop(out);
        axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| Error::Internal(format!("server: {e}")))
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
