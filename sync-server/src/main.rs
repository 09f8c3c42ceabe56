//! `sync-server`: a Daiban township or district server.
//!
//! ```text
//! sync-server init --data DIR --role district --name NAME [--server-id ID]
//! sync-server init --data DIR --role township --name NAME --township CODE --parent URL
//!                   [--parent-ca FILE]             (the district's ca.pem, for https://)
//! sync-server make-cert --name DNS-OR-IP [--name ...] [--out DIR]   (test install's TLS)
//! sync-server serve --data DIR [--listen ADDR]    (HTTPS when daiban.toml has [tls])
//! sync-server import-directory --data DIR FILE.json  (district: townships and points;
//!                                                      township: its devices)
//! sync-server import-calendar --data DIR FILE.csv    (district)
//! sync-server import-catalog --data DIR FILE.json    (district)
//! sync-server enroll-code --data DIR --point N [--device N] [--hours H]  (township: a tablet)
//! sync-server enroll-code --data DIR --township CODE [--hours H]       (district: a township)
//! sync-server enroll --data DIR --code CODE       (township: enroll with its district)
//! sync-server revoke --data DIR --point N --device N [--reason TEXT]
//! sync-server add-staff --data DIR --login L --name NAME --role ROLE   (password on stdin)
//! sync-server backup --data DIR --to FILE        (online, while serving)
//! sync-server restore --data DIR --from FILE     (stop the server first)
//! ```

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use agent_core::sync::wire::Peer;
use sync_server::accounts::NewAccount;
use sync_server::admin;
use sync_server::config::{Config, ServerRole, DEFAULT_INTERVAL, DEFAULT_LISTEN};
use sync_server::enroll::CodeFor;
use sync_server::store;
use sync_server::{Error, Result};

/// mimalloc: Automerge's document work (loading, reading and stamping every uploaded ticket)
/// is allocation-heavy, and spends about a sixth less time under mimalloc than under glibc's
/// allocator (README, "Sync"). The sync bench sets the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// The township's code in the district's directory (townships).
        #[arg(long)]
        township: Option<String>,
        /// Parent district's base URL (townships).
        #[arg(long)]
        parent: Option<String>,
        /// The district's CA certificate (PEM) when the parent is https:// (townships);
        /// relative to the data directory or absolute.
        #[arg(long)]
        parent_ca: Option<PathBuf>,
        /// Seconds between scheduled syncs with the district (0: only when asked).
        #[arg(long, default_value_t = DEFAULT_INTERVAL)]
        sync_interval: u64,
    },
    /// Make a self-signed CA and a server certificate it signs (a test install's TLS): writes
    /// ca.pem (tablets pin it), cert.pem and key.pem (mode 0600). Refuses to overwrite.
    MakeCert {
        /// DNS name or IP address the clients use to reach this server (repeatable).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// Directory to write into (created if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Serve the sync and staff APIs. Prints `listening on http://ADDR` (`https://` with
    /// `[tls]`) once bound.
    Serve {
        #[arg(long)]
        data: PathBuf,
        /// Overrides the config's `listen` (e.g. 127.0.0.1:0 for a free port).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Import the directory part this server owns (JSON): at the district the townships and
    /// points, at a township its devices. It flows to the other servers and the tablets.
    ImportDirectory {
        #[arg(long)]
        data: PathBuf,
        file: PathBuf,
    },
    /// Import the holiday / make-up-day calendar (CSV) used for deadlines (district).
    ImportCalendar {
        #[arg(long)]
        data: PathBuf,
        file: PathBuf,
    },
    /// Import the service catalog (JSON) (district).
    ImportCatalog {
        #[arg(long)]
        data: PathBuf,
        file: PathBuf,
    },
    /// Issue a one-time enrollment code (prints it): at a township for a tablet of one of its
    /// points (the next free device number unless --device), at the district for a township
    /// server. Safe while the server runs.
    EnrollCode {
        #[arg(long)]
        data: PathBuf,
        /// The point the tablet serves (township server).
        #[arg(long, conflicts_with = "township")]
        point: Option<u32>,
        /// The tablet's device number within the point (default: the next never used).
        #[arg(long, requires = "point")]
        device: Option<u32>,
        /// The township whose server enrolls (district server).
        #[arg(long)]
        township: Option<String>,
        /// Hours the code stays valid (1–720).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=i64::from(sync_server::enroll::MAX_CODE_HOURS)))]
        hours: u32,
    },
    /// Enroll this township server with its district, with the code the district issued.
    Enroll {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        code: String,
    },
    /// Revoke a tablet (lost, stolen, replaced): refused at its next sync and told to wipe.
    Revoke {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        point: u32,
        #[arg(long)]
        device: u32,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Open a staff account on this server; the password is read from standard input (one
    /// line). Roles: township_staff, township_admin (township); window_staff, district_admin
    /// (district); auditor (either).
    AddStaff {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        login: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        /// For window staff: the window (as the catalog names it) whose forwarded tickets
        /// the account sees; without it, a general window that sees every forwarded ticket.
        #[arg(long)]
        window: Option<String>,
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
    // RUST_LOG as one level (error, warn, info, debug, trace, off); info otherwise.
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = Targets::new()
        .with_default(level)
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
            township,
            parent,
            parent_ca,
            sync_interval,
        } => {
            let server_id =
                server_id.unwrap_or_else(|| format!("srv-{}", sync_server::random_hex(8)));
            let config = Config {
                role,
                name,
                server_id,
                listen: DEFAULT_LISTEN.into(),
                township,
                parent,
                sync_interval_secs: sync_interval,
                followup_days: sync_server::config::DEFAULT_FOLLOWUP_DAYS,
                sms: None,
                parent_ca,
                tls: None,
            };
            admin::init(&data, &config)?;
            println!("initialised {}", data.display());
            Ok(())
        }
        Cmd::MakeCert { names, out } => make_cert(&names, &out),
        Cmd::Serve { data, listen } => serve(&data, listen),
        Cmd::ImportDirectory { data, file } => {
            let (version, part) = admin::import_directory(&data, &read(&file)?)?;
            println!(
                "directory imported (version {version}): {} townships, {} points, {} devices, {} revoked",
                part.townships.len(),
                part.points.len(),
                part.devices.len(),
                part.revoked.len()
            );
            Ok(())
        }
        Cmd::ImportCalendar { data, file } => {
            let (version, calendar) = admin::import_calendar(&data, &read(&file)?)?;
            println!(
                "calendar imported (version {version}): years {:?}",
                calendar.years()
            );
            Ok(())
        }
        Cmd::ImportCatalog { data, file } => {
            let (version, catalog) = admin::import_catalog(&data, &read(&file)?)?;
            println!(
                "catalog {} imported (version {version}): {} items",
                catalog.version,
                catalog.items.len()
            );
            Ok(())
        }
        Cmd::EnrollCode {
            data,
            point,
            device,
            township,
            hours,
        } => {
            let target = match (point, township) {
                (Some(point), None) => CodeFor::Device { point, device },
                (None, Some(code)) => CodeFor::Township(code),
                _ => {
                    return Err(Error::BadRequest(
                        "give --point (a tablet, at a township) or --township (a township server, at the district)".into(),
                    ))
                }
            };
            let issued = admin::issue_code(&data, &target, hours)?;
            let whom = match &issued.peer {
                Peer::Device { point, device } => format!("代办点{point} 设备{device:02}"),
                Peer::Township { code } => format!("乡镇{code}的服务器"),
            };
            println!("enrollment code: {}", issued.code);
            println!(
                "注册码 {}：{whom}，只能使用一次，{} 前有效",
                issued.code,
                issued.expires.format("%Y-%m-%d %H:%M")
            );
            Ok(())
        }
        Cmd::Enroll { data, code } => {
            let enrolled = admin::enroll_with_parent(&data, &code)?;
            println!(
                "enrolled with the district as township {}",
                enrolled.township
            );
            Ok(())
        }
        Cmd::Revoke {
            data,
            point,
            device,
            reason,
        } => {
            let version = admin::revoke(&data, point, device, &reason)?;
            println!(
                "revoked point {point} device {device} (directory version {version}); it is refused and wiped at its next sync"
            );
            Ok(())
        }
        Cmd::AddStaff {
            data,
            login,
            name,
            role,
            window,
        } => {
            let role = sync_server::accounts::StaffRole::parse(&role).ok_or_else(|| {
                Error::BadRequest(format!(
                    "unknown role {role}: township_staff, township_admin, window_staff, district_admin or auditor"
                ))
            })?;
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| Error::Internal(format!("reading the password: {e}")))?;
            let account = admin::add_staff(
                &data,
                &NewAccount {
                    login: &login,
                    name: &name,
                    role,
                    window: window.as_deref(),
                },
                password.trim_end_matches(['\r', '\n']),
            )?;
            println!(
                "staff account {} ({}, {}) opened",
                account.login,
                account.name,
                account.role.label()
            );
            Ok(())
        }
        Cmd::Backup { data, to } => {
            admin::open(&data)?.1.backup_to(&to)?;
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

fn make_cert(names: &[String], out: &Path) -> Result<()> {
    let [ca, cert, key] = sync_server::tls::write_cert(out, names)?;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    println!(
        "wrote {}, {}, {} (for {})",
        ca.display(),
        cert.display(),
        key.display(),
        names.join(", ")
    );
    println!();
    println!("in this server's daiban.toml (at the end):");
    println!("[tls]");
    println!("cert = \"{}\"", abs(&cert).display());
    println!("key = \"{}\"", abs(&key).display());
    println!();
    println!(
        "clients pin {}: each tablet of this server (the sync client's CA), and, when this is a \
         district, each township (`parent_ca` in its daiban.toml, or `init --parent-ca`); they \
         reach it at https://{}:PORT",
        abs(&ca).display(),
        names[0]
    );
    Ok(())
}

fn serve(data: &Path, listen: Option<String>) -> Result<()> {
    let config = Config::load(data)?;
    // Certificate, key and the district's CA are checked before the server says it listens.
    let scheme = match sync_server::tls::load(data, &config)? {
        Some(_) => "https",
        None => "http",
    };
    sync_server::tls::parent_ca(data, &config)?;
    let addr = listen.unwrap_or(config.listen);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
    runtime.block_on(async move {
        let io = |e| Error::Io {
            path: PathBuf::from(&addr),
            source: e,
        };
        let listener = tokio::net::TcpListener::bind(&addr).await.map_err(io)?;
        let bound = listener.local_addr().map_err(io)?;
        // The one line on stdout: tests and scripts wait for it.
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {scheme}://{bound}")
            .and_then(|_| out.flush())
            .map_err(|e| Error::Internal(format!("stdout: {e}")))?;
        drop(out);
        admin::serve(data, listener, shutdown()).await
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
