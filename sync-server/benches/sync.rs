//! Sync benchmark (issue 5) on the standard workload (../shared/bench).
//!
//! `cargo bench -p sync-server --bench sync` (release). For 1,000 and 10,000 tickets (or
//! `DAIBAN_BENCH_TICKETS`): a district server holding the directory and a township server
//! under it (both in-process: the library's router on a tokio runtime; the township syncs the
//! directory down once at start and not again), `../shared/bench/proxy.py` in front of the
//! township, and one tablet store per workload tablet (point 100 + its number, device 1):
//!
//! - (0) first contact: every tablet syncs once before registering anything (the directory
//!   comes down); not a goal, printed so that (a) counts ticket traffic only;
//! - (a) upload: the tickets are registered offline on their tablets, then every tablet syncs;
//! - (b) download: the township and window events are appended through the staff JSON API
//!   (township events at the township, window events at the district; the township syncs
//!   with the district between, as each builds on the other's), then every tablet syncs;
//! - (c) incremental: the updates file is applied where each event's role works, then every
//!   tablet syncs;
//! - (d) no-op: every tablet syncs again.
//!
//! Then the TLS overhead per sync ([`tls_overhead`]): an upload and a no-op over plain HTTP
//! and over HTTPS, with a full handshake each sync and with the session resumed.
//!
//! Each phase prints wall time, bytes on the wire (proxy.py's counts, HTTP included), round
//! trips, connections and bytes per ticket, next to what Automerge's own per-document sync
//! protocol (`automerge::sync`, one document per ticket) needs for the same changes, and the
//! goals. A ticket's history goes where each event's role works, so an agent event that
//! follows a staff event (a delivery after the return, say) waits for the sync that brings the
//! staff event down: such tickets take more than one wave of "apply, then sync"; each wave is
//! printed, and a phase's figures are the sum of its waves. `received` events of the workload
//! are not replayed: the township stamps them itself when a ticket first arrives.
//!
//! Env:
//! - `DAIBAN_BENCH_TICKETS`: one ticket count (default: 1000, then 10000).
//! - `DAIBAN_BENCH_SHARED`: where gen_workload.py and proxy.py are (default ../shared/bench).
//! - `DAIBAN_BENCH_MODE=serve`: only run the servers (district and township, points 101 to
//!   100 + `DAIBAN_BENCH_TABLETS`, default 20), the township on `DAIBAN_BENCH_LISTEN` and the
//!   district on `DAIBAN_BENCH_DISTRICT_LISTEN` (both default 127.0.0.1:0); print
//!   `district on http://ADDR` and `listening on http://ADDR` (the township) and serve until
//!   killed (bench/gprs.sh).
//! - `DAIBAN_BENCH_SERVER_URL`: sync with this township instead (no in-process servers, no
//!   proxy counts, no Automerge comparison); `DAIBAN_BENCH_STAFF_URL`: where its staff API is
//!   (default: the same URL); `DAIBAN_BENCH_DISTRICT_URL`: the district's staff API (window
//!   events). The servers must be fresh.
//! - `DAIBAN_BENCH_BEFORE_TIMED`, `DAIBAN_BENCH_AFTER_TIMED`: shell commands run just before
//!   and after every sync sweep of phase (c) (bench/gprs.sh shapes the link with them).
//! - `DAIBAN_BENCH_CONCURRENT=1`: in phase (c) the tablets sync at the same time, one thread
//!   each (default: one after the other).
//! - `DAIBAN_BENCH_MODE=tls`: only the TLS overhead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../agent-core/benches/support/workload.rs"]
mod workload;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use workload::{form, s};

use agent_core::crypto::StoreKey;
use agent_core::doc::TicketDoc;
use agent_core::domain::directory::{DirectoryPart, Point, ServerIdentity, Township};
use agent_core::domain::event::{EventDraft, EventKind};
use agent_core::domain::number::TicketNumber;
use agent_core::store::{Store, StoreOptions};
use agent_core::sync::client::{sync_now, SyncReport};
use agent_core::sync::pack::pack;
use agent_core::sync::shared::SharedName;
use agent_core::sync::wire::{encode, DocChanges, Sender, SyncResponse, PROTOCOL_VERSION};
use automerge::sync::{Message, State, SyncDoc};
use automerge::{ActorId, AutoCommit};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::IntoResponse;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use sync_server::accounts::StaffRole;
use sync_server::config::ServerRole;
use sync_server::enroll::{issue_code, CodeFor};
use sync_server::http::{app, serve, AppState};
use sync_server::store::ServerStore;
use sync_server::sync::ServerInfo;

/// The allocator the `sync-server` binary runs on (see its main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

// The goals of issue 5.
const GOAL_NOOP_ROUNDS: u32 = 1;
const GOAL_NOOP_BYTES_PER_TABLET: f64 = 300.0;
const GOAL_INCR_ROUNDS: u32 = 2;
const GOAL_INCR_BYTES_PER_TICKET: f64 = 120.0;
const GOAL_BULK_BYTES_PER_TICKET: f64 = 200.0;
const GOAL_INGEST_EVENTS_PER_S: f64 = 10_000.0;
const GOAL_GPRS_SECONDS: f64 = 10.0;

fn main() -> Res<()> {
    // reqwest is built without a TLS provider of its own (the staff API client needs one).
    agent_core::sync::tls::install_crypto_provider();
    if std::env::var("DAIBAN_BENCH_MODE").as_deref() == Ok("serve") {
        return serve_only();
    }
    if std::env::var("DAIBAN_BENCH_MODE").as_deref() == Ok("tls") {
        return tls_overhead();
    }
    let counts: Vec<usize> = match std::env::var("DAIBAN_BENCH_TICKETS") {
        Ok(v) => vec![v.trim().parse()?],
        Err(_) => vec![1_000, 10_000],
    };
    let opts = Opts::from_env();
    let mut summaries = Vec::new();
    for n in counts {
        summaries.push(run(n, &opts)?);
    }
    println!();
    println!("==== goals ====");
    for s in &summaries {
        s.print_goals();
    }
    if opts.external.is_none() {
        tls_overhead()?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Options and the outside world: workload, server, proxy.

struct Opts {
    /// Sync URL of an external server (no in-process server, no proxy).
    external: Option<String>,
    staff_url: Option<String>,
    district_url: Option<String>,
    before_timed: Option<String>,
    after_timed: Option<String>,
    concurrent: bool,
}

impl Opts {
    fn from_env() -> Opts {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Opts {
            external: var("DAIBAN_BENCH_SERVER_URL"),
            staff_url: var("DAIBAN_BENCH_STAFF_URL"),
            district_url: var("DAIBAN_BENCH_DISTRICT_URL"),
            before_timed: var("DAIBAN_BENCH_BEFORE_TIMED"),
            after_timed: var("DAIBAN_BENCH_AFTER_TIMED"),
            concurrent: var("DAIBAN_BENCH_CONCURRENT").is_some_and(|v| v != "0"),
        }
    }
}

/// `../shared/bench` (the only place outside the workspace the benchmark reads).
fn shared_bench() -> PathBuf {
    std::env::var_os("DAIBAN_BENCH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench"))
}

/// tickets.jsonl and updates.jsonl of the standard workload, seed 1.
fn generate(dir: &Path, n: usize) -> Res<(PathBuf, PathBuf)> {
    let gen = shared_bench().join("gen_workload.py");
    let tickets = dir.join("tickets.jsonl");
    let updates = dir.join("updates.jsonl");
    let runs: [Vec<String>; 2] = [
        vec![
            "--tickets".into(),
            n.to_string(),
            "--seed".into(),
            "1".into(),
            "-o".into(),
            tickets.display().to_string(),
        ],
        vec![
            "--updates".into(),
            tickets.display().to_string(),
            "--fraction".into(),
            "0.1".into(),
            "--seed".into(),
            "1".into(),
            "-o".into(),
            updates.display().to_string(),
        ],
    ];
    for args in runs {
        let status = Command::new("python3").arg(&gen).args(&args).status()?;
        if !status.success() {
            return Err(format!("{} {args:?} failed", gen.display()).into());
        }
    }
    Ok((tickets, updates))
}

fn read_jsonl(path: &Path) -> Res<Vec<Value>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}

/// A township server in this process: the library's router on its own tokio runtime, with a
/// layer that adds up the time spent answering `/v1/sync` once its body has arrived (the
/// server side of ingest).
struct LocalServer {
    url: String,
    sync_nanos: Arc<AtomicU64>,
    stop: Option<mpsc::Sender<()>>,
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        // Graceful shutdown; the runtime's thread ends on its own (not joined: a client that
        // kept a connection open must not hang the benchmark).
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The benchmark's township code (the demo township's).
const TOWNSHIP: &str = "431023101";

/// The district's directory part: the township (its server enrolled) and one point per
/// tablet.
fn directory_json(points: &[u32], township: ServerIdentity) -> Res<String> {
    let part = DirectoryPart {
        townships: vec![Township {
            code: TOWNSHIP.into(),
            name: "柏林镇".into(),
            server: Some(township),
            phone: None,
        }],
        points: points
            .iter()
            .map(|&number| Point {
                number,
                name: format!("{number}号代办点"),
                township: TOWNSHIP.into(),
                distance_km: 20.0,
                fare_fen: 1_000,
                agent_phone: None,
            })
            .collect(),
        ..DirectoryPart::default()
    };
    Ok(serde_json::to_string(&part)?)
}

/// A district (holding the directory) and a township under it that has synced the directory
/// down, as in the field; the tablets talk to the township only.
struct Servers {
    district: LocalServer,
    township: LocalServer,
}

fn start_servers(dir: &Path, listen: &str, district_listen: &str, points: &[u32]) -> Res<Servers> {
    let store = ServerStore::open(dir.join("township.db"))?;
    let (district, store) = start_district(dir, district_listen, points, store)?;
    let township = start_server(store, township_info(), listen, Some(district.url.clone()))?;
    Ok(Servers { district, township })
}

fn township_info() -> ServerInfo {
    ServerInfo {
        role: ServerRole::Township,
        server_id: "srv-bench".into(),
        township: Some(TOWNSHIP.into()),
        followup_days: sync_server::config::DEFAULT_FOLLOWUP_DAYS,
    }
}

/// A district on `listen` whose directory lists the benchmark's township, its server
/// (`township`'s identity, as enrollment would record it) and `points`.
fn start_district(
    dir: &Path,
    listen: &str,
    points: &[u32],
    mut township: ServerStore,
) -> Res<(LocalServer, ServerStore)> {
    let identity = ServerIdentity {
        actor: township.actor().to_hex_string(),
        key: township.signing_key()?.public_hex(),
    };
    let mut store = ServerStore::open(dir.join("district.db"))?;
    store.publish(
        &SharedName::Directory,
        directory_json(points, identity)?.as_bytes(),
    )?;
    start_server(
        store,
        ServerInfo {
            role: ServerRole::District,
            server_id: "srv-district".into(),
            township: None,
            followup_days: sync_server::config::DEFAULT_FOLLOWUP_DAYS,
        },
        listen,
        None,
    )
    .map(|district| (district, township))
}

/// Enroll a tablet with the benchmark's township the way an installer does: a one-time code
/// issued on the township's store (`township_db`), then the enrollment over HTTP at `url`
/// (the township itself, not through the proxy: enrollment is not part of any figure).
fn enroll_tablet(township_db: &Path, url: &str, tablet: &mut Store) -> Res<()> {
    let mut township = ServerStore::open(township_db)?;
    let target = CodeFor::Device {
        point: tablet.point(),
        device: Some(tablet.device()),
    };
    let issued = issue_code(
        &mut township,
        &township_info(),
        &target,
        1,
        sync_server::now(),
    )?;
    agent_core::sync::enroll::enroll(tablet, url, &issued.code)?;
    Ok(())
}

/// Serve `store` on `listen`; with a `parent`, sync with it once before answering (the
/// directory comes down) and not again (no background upward sync during the benchmark).
fn start_server(
    store: ServerStore,
    info: ServerInfo,
    listen: &str,
    parent: Option<String>,
) -> Res<LocalServer> {
    let first_sync = parent.is_some();
    let mut store = store;
    let login = staff_login(info.role);
    let role = match info.role {
        ServerRole::Township => StaffRole::TownshipStaff,
        ServerRole::District => StaffRole::WindowStaff,
    };
    sync_server::accounts::add(
        &mut store,
        &info,
        &sync_server::accounts::NewAccount {
            login,
            name: login,
            role,
            window: None,
        },
        STAFF_PASSWORD,
        "(bench)",
        sync_server::now(),
    )?;
    let state = AppState::new(store, info).with_parent(parent);
    let sync_nanos = Arc::new(AtomicU64::new(0));
    let timer = Arc::clone(&sync_nanos);
    let router = app(state.clone()).layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let timer = Arc::clone(&timer);
            async move {
                let is_sync = req.uri().path() == "/v1/sync";
                // The clock starts once the body is in: its transfer through the relay is the
                // link's time, not the server's.
                let (parts, body) = req.into_parts();
                let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
                    return axum::http::StatusCode::BAD_REQUEST.into_response();
                };
                let req = Request::from_parts(parts, axum::body::Body::from(body));
                let start = Instant::now();
                let response = next.run(req).await;
                if is_sync {
                    let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    timer.fetch_add(nanos, Ordering::Relaxed);
                }
                response
            }
        },
    ));
    let (addr_tx, addr_rx) = mpsc::channel::<Result<String, String>>();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let listen = listen.to_owned();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = addr_tx.send(Err(e.to_string()));
                return;
            }
        };
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::bind(&listen).await {
                Ok(l) => l,
                Err(e) => {
                    let _ = addr_tx.send(Err(format!("bind {listen}: {e}")));
                    return;
                }
            };
            if first_sync {
                if let Err(e) = state.sync_upward().await {
                    let _ = addr_tx.send(Err(format!("first sync with the district: {e}")));
                    return;
                }
            }
            let bound = listener
                .local_addr()
                .map(|a| a.to_string())
                .map_err(|e| e.to_string());
            let _ = addr_tx.send(bound);
            let shutdown = async move {
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
            };
            serve(listener, router, shutdown).await;
        });
    });
    let addr = addr_rx.recv()??;
    Ok(LocalServer {
        url: format!("http://{addr}"),
        sync_nanos,
        stop: Some(stop_tx),
    })
}

/// `DAIBAN_BENCH_MODE=serve`: a fresh township server (under its district) and nothing else.
fn serve_only() -> Res<()> {
    let listen = std::env::var("DAIBAN_BENCH_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
    let tmp = tempfile::tempdir()?;
    let data = std::env::var_os("DAIBAN_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&data)?;
    let tablets: u32 = std::env::var("DAIBAN_BENCH_TABLETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let points: Vec<u32> = (1..=tablets).map(|t| 100 + t).collect();
    let district_listen =
        std::env::var("DAIBAN_BENCH_DISTRICT_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
    let servers = start_servers(&data, &listen, &district_listen, &points)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "district on {}", servers.district.url)?;
    writeln!(out, "listening on {}", servers.township.url)?;
    out.flush()?;
    drop(out);
    loop {
        std::thread::park();
    }
}

/// Counters of proxy.py since its last reset.
#[derive(Debug, Default, Clone, Copy)]
struct Wire {
    up: u64,
    down: u64,
    connections: u64,
    exchanges: u64,
}

impl Wire {
    fn add(&mut self, o: &Wire) {
        self.up += o.up;
        self.down += o.down;
        self.connections += o.connections;
        self.exchanges += o.exchanges;
    }

    fn total(&self) -> u64 {
        self.up + self.down
    }
}

/// proxy.py in front of the server, driven on its stdin.
struct Proxy {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    url: String,
}

impl Proxy {
    fn start(target: &str) -> Res<Proxy> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let target = target.trim_start_matches("http://");
        let mut child = Command::new("python3")
            .arg(shared_bench().join("proxy.py"))
            .args(["--listen", &listen, "--target", target])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("proxy stdin")?;
        let mut out = BufReader::new(child.stdout.take().ok_or("proxy stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        let hello: Value = serde_json::from_str(line.trim())?;
        if hello.get("listening").is_none() {
            return Err(format!("proxy.py did not start: {line}").into());
        }
        Ok(Proxy {
            child,
            stdin,
            out,
            url: format!("http://{listen}"),
        })
    }

    fn command(&mut self, cmd: &str) -> Res<Value> {
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        Ok(serde_json::from_str(line.trim())?)
    }

    fn reset(&mut self) -> Res<()> {
        self.command("reset").map(|_| ())
    }

    fn stats(&mut self) -> Res<Wire> {
        let v = self.command("stats")?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        Ok(Wire {
            up: n("bytes_up"),
            down: n("bytes_down"),
            connections: n("connections"),
            exchanges: n("exchanges"),
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_hook(hook: &Option<String>) -> Res<()> {
    if let Some(cmd) = hook {
        let status = Command::new("sh").args(["-c", cmd]).status()?;
        if !status.success() {
            return Err(format!("hook failed ({status}): {cmd}").into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The workload mapped onto the product (the approach of agent-core/benches/store.rs).

/// The point of the workload's `i`th tablet: 100 + its number (tab-007: 107), device 1.
fn point_of(names: &[String], i: usize) -> u32 {
    let number: u32 = names
        .get(i)
        .and_then(|n| n.rsplit('-').next())
        .and_then(|d| d.parse().ok())
        .unwrap_or(i as u32 + 1);
    100 + number
}

/// The payload the product needs for a workload event (the workload carries only a note).
fn payload(kind: EventKind, e: &Value) -> Value {
    let note = s(e, &["note"]);
    match kind {
        EventKind::SupplementRequested => json!({ "missing": ["户口本"] }),
        EventKind::Completed => {
            let outcome = if note.starts_with("不予") {
                "denied"
            } else {
                "approved"
            };
            json!({ "outcome": outcome })
        }
        EventKind::Evaluated => {
            let score = match note {
                "非常满意" => 5,
                "满意" => 4,
                _ => 3,
            };
            json!({ "score": score })
        }
        _ => json!({}),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Agent events: appended on the tablet's store.
    Tablet,
    /// Township and window events: the staff JSON API.
    Staff,
}

/// One workload ticket and how far its history has been applied.
struct WTicket {
    json: Value,
    tablet: usize,
    events: Vec<Value>,
    next: usize,
    number: Option<TicketNumber>,
}

impl WTicket {
    /// Skip `received`: the township server stamps it itself when the ticket first arrives.
    fn skip_stamps(&mut self, skipped: &mut usize) {
        while self.next < self.events.len() && s(&self.events[self.next], &["type"]) == "received" {
            self.next += 1;
            *skipped += 1;
        }
    }

    fn side_at(&self, i: usize) -> Side {
        if s(&self.events[i], &["role"]) == "agent" {
            Side::Tablet
        } else {
            Side::Staff
        }
    }

    /// The side of the next run of events, if any remain.
    fn peek(&mut self, skipped: &mut usize) -> Option<Side> {
        self.skip_stamps(skipped);
        (self.next < self.events.len()).then(|| self.side_at(self.next))
    }

    /// The next run of events appended on one side (received stamps skipped).
    fn take_run(&mut self, skipped: &mut usize) -> Option<(Side, Vec<Value>)> {
        let side = self.peek(skipped)?;
        let mut run = Vec::new();
        while self.next < self.events.len() && self.side_at(self.next) == side {
            if s(&self.events[self.next], &["type"]) != "received" {
                run.push(self.events[self.next].clone());
            } else {
                *skipped += 1;
            }
            self.next += 1;
        }
        Some((side, run))
    }

    fn remaining(&self) -> bool {
        self.next < self.events.len()
    }
}

struct Tablet {
    name: String,
    store: Store,
}

/// The staff accounts the benchmark's servers get, and their password.
fn staff_login(level: ServerRole) -> &'static str {
    match level {
        ServerRole::Township => "bench-township",
        ServerRole::District => "bench-window",
    }
}
const STAFF_PASSWORD: &str = "bench-staff-password";

/// The staff JSON API (straight to the server, not through the proxy: not sync traffic).
struct StaffApi {
    client: reqwest::blocking::Client,
    /// The township server (township staff; the tablets' server), and its `Authorization`.
    township: String,
    township_auth: String,
    /// The district server (window staff), and its `Authorization`.
    district: Option<(String, String)>,
}

/// Whose staff API takes a workload event: window staff work at the district.
fn at_district(e: &Value) -> bool {
    s(e, &["role"]) == "window"
}

impl StaffApi {
    /// Sign in to both servers as the benchmark's staff accounts.
    fn sign_in(
        client: reqwest::blocking::Client,
        township: String,
        district: Option<String>,
    ) -> Res<Self> {
        let auth = |url: &str, level| -> Res<String> {
            let resp = client
                .post(format!("{url}/api/login"))
                .json(&json!({ "login": staff_login(level), "password": STAFF_PASSWORD }))
                .send()?;
            let body: Value = resp.json()?;
            let token = body["token"]
                .as_str()
                .ok_or(format!("login at {url}: {body}"))?;
            Ok(format!("Bearer {token}"))
        };
        let township_auth = auth(&township, ServerRole::Township)?;
        let district = match district {
            Some(url) => {
                let a = auth(&url, ServerRole::District)?;
                Some((url, a))
            }
            None => None,
        };
        Ok(Self {
            client,
            township,
            township_auth,
            district,
        })
    }

    fn append(&self, number: &TicketNumber, e: &Value) -> Res<()> {
        let kind = EventKind::parse(s(e, &["type"])).ok_or("unknown event type")?;
        let (base, auth) = if at_district(e) {
            let (url, auth) = self
                .district
                .as_ref()
                .ok_or("a window event, and no district staff URL")?;
            (url.as_str(), auth.as_str())
        } else {
            (self.township.as_str(), self.township_auth.as_str())
        };
        let resp = self
            .client
            .post(format!("{base}/api/tickets/{number}/events"))
            .header("authorization", auth)
            .json(&json!({ "kind": kind.as_str(), "note": s(e, &["note"]), "payload": payload(kind, e) }))
            .send()?;
        let status = resp.status();
        let body = resp.text()?;
        if !status.is_success() {
            return Err(format!("{status}: {}", body.chars().take(200).collect::<String>()).into());
        }
        Ok(())
    }

    /// The township syncs with its district now (as township staff may ask it to).
    fn sync_upward(&self) -> Res<()> {
        let resp = self
            .client
            .post(format!("{}/api/upstream/sync", self.township))
            .header("authorization", &self.township_auth)
            .send()?;
        let status = resp.status();
        let body = resp.text()?;
        if !status.is_success() {
            return Err(format!(
                "upward sync: {status}: {}",
                body.chars().take(200).collect::<String>()
            )
            .into());
        }
        Ok(())
    }
}

fn agent_append(store: &mut Store, number: &TicketNumber, e: &Value) -> Res<()> {
    let kind = EventKind::parse(s(e, &["type"])).ok_or("unknown event type")?;
    let draft = EventDraft {
        kind,
        note: s(e, &["note"]).to_owned(),
        payload: payload(kind, e),
    };
    store.append(number, &draft)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Measurements.

/// One sweep: every tablet syncs once.
#[derive(Default)]
struct Sweep {
    wall: Duration,
    wire: Option<Wire>,
    /// Per tablet: its report and its own time.
    reports: Vec<(SyncReport, Duration)>,
    server: Duration,
    errors: Vec<String>,
}

/// Automerge's own sync protocol on the same changes.
#[derive(Debug, Default, Clone, Copy)]
struct AmTotals {
    docs: usize,
    up: u64,
    down: u64,
    messages: u64,
    max_round_trips: u32,
    round_trips: u64,
    unconverged: usize,
}

impl AmTotals {
    fn add(&mut self, o: &AmTotals) {
        self.docs += o.docs;
        self.up += o.up;
        self.down += o.down;
        self.messages += o.messages;
        self.max_round_trips = self.max_round_trips.max(o.max_round_trips);
        self.round_trips += o.round_trips;
        self.unconverged += o.unconverged;
    }

    fn total(&self) -> u64 {
        self.up + self.down
    }
}

/// What the changes themselves weigh (for "where the bytes go").
#[derive(Debug, Default, Clone, Copy)]
struct Content {
    tickets: usize,
    changes: u64,
    /// Raw Automerge change chunks (what our wire carries before packing and compression).
    raw: u64,
    /// Those chunks packed per ticket and compressed as one message the way the wire does:
    /// what our wire makes of all of them at once.
    raw_wire: u64,
    /// Dependency hashes (32 B each) and actor ids (16 B each) inside the chunks.
    hashes: u64,
    actors: u64,
    /// The new events as JSON text, deflated as one stream: a floor for any encoding.
    events_json: u64,
    events_json_deflated: u64,
    events: u64,
}

impl Content {
    fn add(&mut self, o: &Content) {
        self.tickets += o.tickets;
        self.changes += o.changes;
        self.raw += o.raw;
        self.raw_wire += o.raw_wire;
        self.hashes += o.hashes;
        self.actors += o.actors;
        self.events_json += o.events_json;
        self.events_json_deflated += o.events_json_deflated;
        self.events += o.events;
    }
}

/// A phase: one or more waves of "apply, then every tablet syncs".
#[derive(Default)]
struct Phase {
    name: String,
    waves: usize,
    wall: Duration,
    wire: Option<Wire>,
    body_up: u64,
    body_down: u64,
    syncs: usize,
    /// Most round trips one tablet made in one sync, and over the whole phase.
    max_rounds_per_sync: u32,
    max_rounds_per_tablet: u32,
    rounds: u64,
    uploaded: usize,
    downloaded: usize,
    refused: usize,
    failed: usize,
    /// Shared documents (directory, catalog, calendar) received.
    shared: usize,
    server: Duration,
    /// Tickets changed in the phase (had an event applied; counted once per wave, and once),
    /// events applied on each side.
    changed: usize,
    changed_set: HashSet<usize>,
    tablet_events: usize,
    staff_events: usize,
    staff_time: Duration,
    /// Township ↔ district syncs made while applying staff events.
    upward: usize,
    upward_time: Duration,
    apply_errors: Vec<String>,
    slowest_tablet: Duration,
    /// Per tablet: its sync time over the phase's waves.
    tablet_totals: Vec<Duration>,
    /// Per wave: wall time, slowest and median tablet sync.
    wave_times: Vec<(Duration, Duration, Duration)>,
    am: AmTotals,
    content: Content,
}

impl Phase {
    fn new(name: &str) -> Phase {
        Phase {
            name: name.into(),
            ..Phase::default()
        }
    }

    fn add_sweep(&mut self, sweep: &Sweep, per_tablet: &mut [u32]) {
        self.waves += 1;
        self.wall += sweep.wall;
        if let Some(w) = &sweep.wire {
            self.wire.get_or_insert_with(Wire::default).add(w);
        }
        self.server += sweep.server;
        for (i, (r, t)) in sweep.reports.iter().enumerate() {
            self.syncs += 1;
            self.body_up += r.bytes_up as u64;
            self.body_down += r.bytes_down as u64;
            self.rounds += u64::from(r.rounds);
            self.max_rounds_per_sync = self.max_rounds_per_sync.max(r.rounds);
            if let Some(p) = per_tablet.get_mut(i) {
                *p += r.rounds;
            }
            self.uploaded += r.uploaded;
            self.downloaded += r.downloaded;
            self.refused += r.refused;
            self.failed += r.failed;
            self.shared += r.shared;
            self.slowest_tablet = self.slowest_tablet.max(*t);
        }
        self.max_rounds_per_tablet = per_tablet.iter().copied().max().unwrap_or(0);
        self.apply_errors.extend(sweep.errors.iter().cloned());
        if self.tablet_totals.len() < sweep.reports.len() {
            self.tablet_totals
                .resize(sweep.reports.len(), Duration::ZERO);
        }
        for (total, (_, t)) in self.tablet_totals.iter_mut().zip(&sweep.reports) {
            *total += *t;
        }
        let mut times: Vec<Duration> = sweep.reports.iter().map(|(_, t)| *t).collect();
        times.sort();
        let median = times.get(times.len() / 2).copied().unwrap_or_default();
        let slowest = times.last().copied().unwrap_or_default();
        self.wave_times.push((sweep.wall, slowest, median));
    }

    fn wire_total(&self) -> Option<u64> {
        self.wire.as_ref().map(Wire::total)
    }

    /// Bytes on the wire (HTTP included) when counted, else HTTP bodies.
    fn bytes(&self) -> (u64, &'static str) {
        match self.wire_total() {
            Some(b) => (b, "on the wire"),
            None => (self.body_up + self.body_down, "HTTP bodies only"),
        }
    }

    fn print(&self, per: usize, per_label: &str) {
        let (bytes, what) = self.bytes();
        println!("  {}", self.name);
        println!(
            "    applied: {} tickets changed ({} agent events on tablets, {} staff events via the API in {:.2} s){}",
            self.changed_set.len(),
            self.tablet_events,
            self.staff_events,
            self.staff_time.as_secs_f64(),
            if self.waves > 1 {
                format!("; {} waves of apply-then-sync", self.waves)
            } else {
                String::new()
            }
        );
        if self.upward > 0 {
            println!(
                "    the township synced with the district {} times while staff events were applied ({:.2} s; window events are appended at the district)",
                self.upward,
                self.upward_time.as_secs_f64()
            );
        }
        println!(
            "    sync: wall {:.3} s ({} tablet syncs, slowest {:.3} s), server time in /v1/sync {:.3} s",
            self.wall.as_secs_f64(),
            self.syncs,
            self.slowest_tablet.as_secs_f64(),
            self.server.as_secs_f64()
        );
        if self.wave_times.len() > 1 {
            let waves: Vec<String> = self
                .wave_times
                .iter()
                .map(|(w, s, m)| {
                    format!(
                        "{:.3} s (slowest tablet {:.3} s, median {:.3} s)",
                        w.as_secs_f64(),
                        s.as_secs_f64(),
                        m.as_secs_f64()
                    )
                })
                .collect();
            println!("    waves: {}", waves.join("; "));
        }
        match &self.wire {
            Some(w) => println!(
                "    wire (proxy.py, HTTP included): up {} B, down {} B, total {} B; {} round trips (exchanges), {} connections",
                w.up,
                w.down,
                w.total(),
                w.exchanges,
                w.connections
            ),
            None => println!("    wire: not counted (external server, no proxy here)"),
        }
        println!(
            "    HTTP bodies (SyncReport): up {} B, down {} B; {} rounds; most per sync {}, per tablet over the phase {}",
            self.body_up, self.body_down, self.rounds, self.max_rounds_per_sync, self.max_rounds_per_tablet
        );
        if let Some(w) = &self.wire {
            if w.exchanges > 0 {
                println!(
                    "    HTTP framing: {:.0} B per round trip ({} B wire - {} B bodies)",
                    (w.total() as f64 - (self.body_up + self.body_down) as f64)
                        / w.exchanges as f64,
                    w.total(),
                    self.body_up + self.body_down
                );
            }
        }
        println!(
            "    tickets: {} uploaded, {} downloads applied, {} refused, {} failed to apply; {} shared documents received",
            self.uploaded, self.downloaded, self.refused, self.failed, self.shared
        );
        if per > 0 {
            println!(
                "    ours: {:.1} B per {per_label} ({what}; {per} {per_label}s)",
                bytes as f64 / per as f64
            );
        }
        if self.am.docs > 0 {
            println!(
                "    Automerge sync (one doc per ticket, fresh sync state per session, message bytes only): up {} B, down {} B, total {} B = {:.1} B per {per_label}; {} messages, ≤{} round trips per doc{}",
                self.am.up,
                self.am.down,
                self.am.total(),
                self.am.total() as f64 / per.max(1) as f64,
                self.am.messages,
                self.am.max_round_trips,
                if self.am.unconverged > 0 {
                    format!(", {} docs DID NOT CONVERGE", self.am.unconverged)
                } else {
                    String::new()
                }
            );
        }
        if !self.apply_errors.is_empty() {
            println!(
                "    {} errors, first: {}",
                self.apply_errors.len(),
                self.apply_errors
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
    }
}

/// Per-doc Automerge sync between a tablet replica and a server replica until both are quiet.
/// `t0`: the doc both held before (None: the server had nothing); `t1`: the tablet's doc with
/// its new changes; `t2`: the converged doc after our sync (its changes beyond `t1` are the
/// server's, applied to the server replica; Automerge queues any whose dependencies only the
/// tablet has until they arrive, as a server stamping on receipt would).
fn am_session(t0: Option<&[u8]>, t1: &[u8], t2: &[u8]) -> Res<AmTotals> {
    let mut tablet = AutoCommit::load(t1)?;
    let mut server = match t0 {
        Some(b) => AutoCommit::load(b)?,
        None => AutoCommit::new(),
    };
    let mut full = AutoCommit::load(t2)?;
    let server_changes = full.get_changes(&tablet.get_heads());
    server.apply_changes(server_changes)?;
    let (mut st, mut ss) = (State::new(), State::new());
    let mut out = AmTotals {
        docs: 1,
        ..AmTotals::default()
    };
    let mut trips = 0u32;
    loop {
        let mut sent = false;
        if let Some(m) = tablet.sync().generate_sync_message(&mut st) {
            let bytes = m.encode();
            out.up += bytes.len() as u64;
            out.messages += 1;
            server
                .sync()
                .receive_sync_message(&mut ss, Message::decode(&bytes)?)?;
            sent = true;
        }
        if let Some(m) = server.sync().generate_sync_message(&mut ss) {
            let bytes = m.encode();
            out.down += bytes.len() as u64;
            out.messages += 1;
            tablet
                .sync()
                .receive_sync_message(&mut st, Message::decode(&bytes)?)?;
            sent = true;
        }
        if !sent {
            break;
        }
        trips += 1;
        if trips > 100 {
            break;
        }
    }
    let mut a = tablet.get_heads();
    let mut b = server.get_heads();
    let mut c = full.get_heads();
    a.sort();
    b.sort();
    c.sort();
    if a != b || a != c {
        out.unconverged = 1;
    }
    out.max_round_trips = trips;
    out.round_trips = u64::from(trips);
    Ok(out)
}

/// The document work the server does for each new upload, timed apart on the same documents
/// on one core: load the uploaded changes (measured against the caps first, as the server
/// does), read the ticket, append and commit the `received`
/// stamp and take its changes. (The upload itself is logged and stored as it came.)
fn ingest_profile(uploads: &[Vec<u8>]) -> Res<()> {
    if uploads.is_empty() {
        return Ok(());
    }
    let actor = ActorId::random();
    let mut raw = Vec::with_capacity(uploads.len());
    for u in uploads {
        raw.push(TicketDoc::load(u, &actor)?.changes_since(&[]));
    }
    let mut t = [Duration::ZERO; 3];
    let now = sync_server::now();
    for (k, bytes) in raw.iter().enumerate() {
        let s0 = Instant::now();
        let mut doc = TicketDoc::load(bytes, &actor)?;
        let s1 = Instant::now();
        let ticket = doc.read()?;
        let s2 = Instant::now();
        let before = doc.heads();
        doc.append(&agent_core::domain::event::Event {
            id: format!("{k:016x}"),
            kind: EventKind::Received,
            at: now,
            actor: "srv-bench".into(),
            role: agent_core::domain::event::Role::Server,
            note: String::new(),
            payload: json!({}),
        })?;
        doc.commit();
        let stamp = doc.changes_since(&before);
        let s3 = Instant::now();
        for (slot, d) in t.iter_mut().zip([s1 - s0, s2 - s1, s3 - s2]) {
            *slot += d;
        }
        std::hint::black_box((ticket, stamp));
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / raw.len() as f64;
    let total: Duration = t.iter().sum();
    println!(
        "    the server's document work per uploaded ticket, timed apart on one core: {:.0} µs = load {:.0} + read {:.0} + stamp {:.0}; upload {:.0} B raw",
        per(total),
        per(t[0]),
        per(t[1]),
        per(t[2]),
        raw.iter().map(Vec::len).sum::<usize>() as f64 / raw.len() as f64
    );
    Ok(())
}

fn deflate(bytes: &[u8]) -> u64 {
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
    let _ = enc.write_all(bytes);
    enc.finish().map(|v| v.len() as u64).unwrap_or(0)
}

/// One ticket's document before and after a wave (None: the ticket is new).
struct Change<'a> {
    ticket: String,
    before: Option<&'a [u8]>,
    after: &'a [u8],
}

/// What the phase's changes of these tickets weigh: raw chunks, the same as our wire carries
/// them, and the new events as JSON.
fn content(tickets: &[Change]) -> Res<Content> {
    let mut c = Content::default();
    let mut message = SyncResponse {
        v: PROTOCOL_VERSION,
        cursor: 0,
        epoch: 0,
        reset: false,
        more: false,
        results: Vec::new(),
        changes: Vec::new(),
        shared: Vec::new(),
    };
    let mut json_all = Vec::new();
    let actor = ActorId::random();
    for Change {
        ticket,
        before,
        after,
    } in tickets
    {
        c.tickets += 1;
        let mut doc = AutoCommit::load(after)?;
        let heads = match before {
            Some(b) => AutoCommit::load(b)?.get_heads(),
            None => Vec::new(),
        };
        let mut raw = Vec::new();
        for ch in doc.get_changes(&heads) {
            c.changes += 1;
            c.raw += ch.raw_bytes().len() as u64;
            c.hashes += 32 * ch.deps().len() as u64;
            c.actors += 16 * (1 + ch.other_actor_ids().len() as u64);
            raw.extend_from_slice(ch.raw_bytes());
        }
        message.changes.push(DocChanges {
            ticket: ticket.clone(),
            bytes: pack(&raw)?,
        });
        let known: HashSet<String> = match before {
            Some(b) => TicketDoc::load(b, &actor)?
                .read()?
                .events
                .into_iter()
                .map(|e| e.id)
                .collect(),
            None => HashSet::new(),
        };
        for e in TicketDoc::load(after, &actor)?.read()?.events {
            if !known.contains(&e.id) {
                c.events += 1;
                let text = serde_json::to_vec(&e)?;
                c.events_json += text.len() as u64;
                json_all.extend_from_slice(&text);
                json_all.push(b'\n');
            }
        }
    }
    c.raw_wire = encode(&message, Sender::Server)?.len() as u64;
    c.events_json_deflated = deflate(&json_all);
    Ok(c)
}

// ---------------------------------------------------------------------------------------------
// One run.

struct Bench<'a> {
    opts: &'a Opts,
    sync_url: String,
    proxy: Option<Proxy>,
    servers: Option<Servers>,
    staff: StaffApi,
    tablets: Vec<Tablet>,
    tickets: Vec<WTicket>,
    /// The last exported document of each ticket (after its last sync), for the comparison.
    latest: HashMap<usize, Vec<u8>>,
    analyse: bool,
    skipped_received: usize,
    /// Keep the tablet documents uploaded in the next wave (for the ingest profile).
    keep_uploads: bool,
    uploads: Vec<Vec<u8>>,
}

impl Bench<'_> {
    /// Every tablet syncs once (one after the other, or all at once).
    fn sweep(&mut self, concurrent: bool) -> Res<Sweep> {
        if let Some(p) = &mut self.proxy {
            p.reset()?;
        }
        let server_before = self
            .servers
            .as_ref()
            .map(|s| s.township.sync_nanos.load(Ordering::Relaxed))
            .unwrap_or(0);
        let url = self.sync_url.clone();
        let start = Instant::now();
        let results: Vec<(Result<SyncReport, String>, Duration)> = if concurrent {
            std::thread::scope(|scope| {
                let handles: Vec<_> = self
                    .tablets
                    .iter_mut()
                    .map(|t| {
                        let url = url.clone();
                        scope.spawn(move || {
                            let t0 = Instant::now();
                            let r = sync_now(&mut t.store, &url).map_err(|e| e.to_string());
                            (r, t0.elapsed())
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            (Err("sync thread panicked".into()), Duration::ZERO)
                        })
                    })
                    .collect()
            })
        } else {
            self.tablets
                .iter_mut()
                .map(|t| {
                    let t0 = Instant::now();
                    let r = sync_now(&mut t.store, &url).map_err(|e| e.to_string());
                    (r, t0.elapsed())
                })
                .collect()
        };
        let wall = start.elapsed();
        let wire = match &mut self.proxy {
            Some(p) => Some(p.stats()?),
            None => None,
        };
        let server_after = self
            .servers
            .as_ref()
            .map(|s| s.township.sync_nanos.load(Ordering::Relaxed))
            .unwrap_or(0);
        let mut sweep = Sweep {
            wall,
            wire,
            server: Duration::from_nanos(server_after.saturating_sub(server_before)),
            ..Sweep::default()
        };
        for ((r, t), tablet) in results.into_iter().zip(&self.tablets) {
            match r {
                Ok(r) => sweep.reports.push((r, t)),
                Err(e) => {
                    sweep
                        .errors
                        .push(format!("{}: sync failed: {e}", tablet.name));
                    sweep.reports.push((SyncReport::default(), t));
                }
            }
        }
        Ok(sweep)
    }

    fn export(&mut self, i: usize) -> Res<Vec<u8>> {
        let t = &self.tickets[i];
        let number = t.number.clone().ok_or("ticket not registered")?;
        Ok(self.tablets[t.tablet].store.export(&number)?)
    }

    /// One wave: apply the next run of events of each selected ticket where its role works
    /// (only staff runs when `staff_only`), then every tablet syncs once.
    fn wave(
        &mut self,
        phase: &mut Phase,
        selected: &[usize],
        staff_only: bool,
        timed: bool,
        per_tablet: &mut [u32],
    ) -> Res<usize> {
        let mut tablet_side = Vec::new();
        let mut touched = HashSet::new();
        // Staff runs, cut where the server changes (township ↔ district window).
        let mut staff_runs: Vec<(usize, Vec<Vec<Value>>)> = Vec::new();
        for &i in selected {
            let mut skipped = 0;
            let side = self.tickets[i].peek(&mut skipped);
            self.skipped_received += skipped;
            let Some(side) = side else { continue };
            if staff_only && side != Side::Staff {
                continue;
            }
            let Some((side, run)) = self.tickets[i].take_run(&mut self.skipped_received) else {
                continue;
            };
            if side == Side::Staff {
                let mut segments: Vec<Vec<Value>> = Vec::new();
                for e in run {
                    match segments.last_mut() {
                        Some(seg) if seg.first().map(at_district) == Some(at_district(&e)) => {
                            seg.push(e)
                        }
                        _ => segments.push(vec![e]),
                    }
                }
                staff_runs.push((i, segments));
                continue;
            }
            if self.apply_run(i, side, &run, phase) > 0 {
                touched.insert(i);
                tablet_side.push(i);
            }
        }
        // Staff events in stages: the k-th segment of every run, then the township syncs with
        // the district, so that each server has what the next stage builds on (the district's
        // window works on tickets the township forwarded; its events come back down).
        let stages = staff_runs.iter().map(|(_, s)| s.len()).max().unwrap_or(0);
        for k in 0..stages {
            let district_now = staff_runs.iter().any(|(_, s)| {
                s.get(k)
                    .and_then(|seg| seg.first())
                    .is_some_and(at_district)
            });
            if k > 0 || district_now {
                self.upward(phase)?;
            }
            for (i, segments) in &staff_runs {
                if let Some(seg) = segments.get(k) {
                    if self.apply_run(*i, Side::Staff, seg, phase) > 0 {
                        touched.insert(*i);
                    }
                }
            }
        }
        if stages > 0 && self.staff.district.is_some() {
            self.upward(phase)?;
        }
        let mut touched: Vec<usize> = touched.into_iter().collect();
        touched.sort_unstable();
        if touched.is_empty() {
            return Ok(0);
        }
        phase.changed += touched.len();
        phase.changed_set.extend(touched.iter().copied());
        // The tablet's documents with their new changes, before the sync.
        let mut t1: HashMap<usize, Vec<u8>> = HashMap::new();
        if self.analyse {
            for &i in &tablet_side {
                let bytes = self.export(i)?;
                t1.insert(i, bytes);
            }
            if self.keep_uploads {
                self.uploads = t1.values().cloned().collect();
            }
        }
        if timed {
            run_hook(&self.opts.before_timed)?;
        }
        let sweep = self.sweep(timed && self.opts.concurrent);
        if timed {
            run_hook(&self.opts.after_timed)?;
        }
        let sweep = sweep?;
        phase.add_sweep(&sweep, per_tablet);
        if self.analyse {
            let mut am = AmTotals::default();
            let mut after: HashMap<usize, Vec<u8>> = HashMap::new();
            for &i in &touched {
                let t2 = self.export(i)?;
                let t0 = self.latest.get(&i).map(Vec::as_slice);
                let t1 = t1.get(&i).map(Vec::as_slice).or(t0).ok_or("no document")?;
                am.add(&am_session(t0, t1, &t2)?);
                after.insert(i, t2);
            }
            let changes: Vec<Change> = touched
                .iter()
                .map(|i| {
                    Ok(Change {
                        ticket: self.tickets[*i]
                            .number
                            .as_ref()
                            .ok_or("ticket not registered")?
                            .to_string(),
                        before: self.latest.get(i).map(Vec::as_slice),
                        after: after[i].as_slice(),
                    })
                })
                .collect::<Res<_>>()?;
            phase.content.add(&content(&changes)?);
            phase.am.add(&am);
            self.latest.extend(after);
        }
        Ok(touched.len())
    }

    /// Apply a run of one ticket's events on one side; returns how many were applied (the
    /// others are recorded as errors).
    fn apply_run(&mut self, i: usize, side: Side, run: &[Value], phase: &mut Phase) -> usize {
        let mut applied = 0;
        for e in run {
            match self.apply_one(i, side, e, phase) {
                Ok(()) => applied += 1,
                Err(err) => phase
                    .apply_errors
                    .push(format!("{}: {err}", s(&self.tickets[i].json, &["id"]))),
            }
        }
        applied
    }

    /// The township syncs with the district (not tablet traffic: not through the proxy).
    fn upward(&mut self, phase: &mut Phase) -> Res<()> {
        let start = Instant::now();
        self.staff.sync_upward()?;
        phase.upward += 1;
        phase.upward_time += start.elapsed();
        Ok(())
    }

    fn apply_one(&mut self, i: usize, side: Side, e: &Value, phase: &mut Phase) -> Res<()> {
        let t = &mut self.tickets[i];
        match side {
            Side::Tablet if s(e, &["type"]) == "registered" => {
                let store = &mut self.tablets[t.tablet].store;
                let reg = store.register(&form(&t.json))?;
                t.number = Some(reg.view.ticket.number);
                phase.tablet_events += 1;
            }
            Side::Tablet => {
                let number = t.number.clone().ok_or("ticket not registered")?;
                agent_append(&mut self.tablets[t.tablet].store, &number, e)?;
                phase.tablet_events += 1;
            }
            Side::Staff => {
                let number = t.number.clone().ok_or("ticket not registered")?;
                let start = Instant::now();
                let r = self.staff.append(&number, e);
                phase.staff_time += start.elapsed();
                r?;
                phase.staff_events += 1;
            }
        }
        Ok(())
    }

    /// Waves until the selected tickets have nothing left to apply.
    fn waves_until_done(&mut self, phase: &mut Phase, timed: bool) -> Res<()> {
        let mut per_tablet = vec![0u32; self.tablets.len()];
        loop {
            let pending: Vec<usize> = (0..self.tickets.len())
                .filter(|&i| self.tickets[i].remaining())
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            if self.wave(phase, &pending, false, timed, &mut per_tablet)? == 0 {
                return Ok(());
            }
        }
    }
}

/// The figures one run keeps for the goal table.
struct Summary {
    n: usize,
    upload_per_ticket: f64,
    download_per_ticket: f64,
    download_per_changed: f64,
    incr_per_changed: f64,
    incr_rounds_per_sync: u32,
    incr_rounds_per_tablet: u32,
    incr_waves: usize,
    incr_wall: f64,
    noop_rounds: u32,
    noop_per_tablet: f64,
    ingest_server: f64,
    ingest_wall: f64,
    what: &'static str,
    external: bool,
    concurrent: bool,
    incr_slowest: f64,
    incr_slowest_tablet_total: f64,
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

impl Summary {
    fn print_goals(&self) {
        println!("{} tickets ({}):", self.n, self.what);
        println!(
            "  upload        {:>8.1} B/ticket            goal ≤ {GOAL_BULK_BYTES_PER_TICKET} B   {}",
            self.upload_per_ticket,
            verdict(self.upload_per_ticket <= GOAL_BULK_BYTES_PER_TICKET)
        );
        println!(
            "  download      {:>8.1} B/ticket            goal ≤ {GOAL_BULK_BYTES_PER_TICKET} B   {}  ({:.1} B per ticket that changed)",
            self.download_per_ticket,
            verdict(self.download_per_ticket <= GOAL_BULK_BYTES_PER_TICKET),
            self.download_per_changed
        );
        println!(
            "  incremental   {:>8.1} B/changed ticket    goal ≤ {GOAL_INCR_BYTES_PER_TICKET} B   {}",
            self.incr_per_changed,
            verdict(self.incr_per_changed <= GOAL_INCR_BYTES_PER_TICKET)
        );
        println!(
            "  incremental   {:>8} round trips/sync    goal ≤ {GOAL_INCR_ROUNDS}       {}  ({} waves; ≤{} round trips per tablet over all waves)",
            self.incr_rounds_per_sync,
            verdict(self.incr_rounds_per_sync <= GOAL_INCR_ROUNDS),
            self.incr_waves,
            self.incr_rounds_per_tablet
        );
        println!(
            "  no-op         {:>8} round trips/tablet  goal = {GOAL_NOOP_ROUNDS}       {}",
            self.noop_rounds,
            verdict(self.noop_rounds <= GOAL_NOOP_ROUNDS)
        );
        println!(
            "  no-op         {:>8.1} B/tablet            goal ≤ {GOAL_NOOP_BYTES_PER_TABLET} B   {}",
            self.noop_per_tablet,
            verdict(self.noop_per_tablet <= GOAL_NOOP_BYTES_PER_TABLET)
        );
        if !self.external {
            println!(
                "  ingest        {:>8.0} events/s (server time)  goal ≥ {GOAL_INGEST_EVENTS_PER_S}   {}  ({:.0} events/s of upload wall time)",
                self.ingest_server,
                verdict(self.ingest_server >= GOAL_INGEST_EVENTS_PER_S),
                self.ingest_wall
            );
        } else {
            println!(
                "  incremental sync over this link, all {} waves, {}: {:.2} s   goal < {GOAL_GPRS_SECONDS} s   {}",
                self.incr_waves,
                if self.concurrent {
                    "the tablets at the same time"
                } else {
                    "the tablets one after the other"
                },
                self.incr_wall,
                verdict(self.incr_wall < GOAL_GPRS_SECONDS)
            );
            println!(
                "  slowest single tablet sync in it: {:.2} s; slowest tablet over all waves: {:.2} s   goal < {GOAL_GPRS_SECONDS} s   {}",
                self.incr_slowest,
                self.incr_slowest_tablet_total,
                verdict(self.incr_slowest_tablet_total < GOAL_GPRS_SECONDS)
            );
        }
    }
}

fn run(n: usize, opts: &Opts) -> Res<Summary> {
    let dir = tempfile::tempdir()?;
    let (tickets_path, updates_path) = generate(dir.path(), n)?;
    let lines = read_jsonl(&tickets_path)?;
    let updates = read_jsonl(&updates_path)?;
    println!();
    println!(
        "==== {} tickets ({} tablets in the workload), {} updates ====",
        lines.len(),
        lines
            .iter()
            .map(|t| s(t, &["tablet"]))
            .collect::<HashSet<_>>()
            .len(),
        updates.len()
    );

    // The workload's tablets, in order.
    let mut names: Vec<String> = lines
        .iter()
        .map(|t| s(t, &["tablet"]).to_owned())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    names.sort();

    // Servers and proxy, or an external server (whose township store file is at
    // DAIBAN_BENCH_TOWNSHIP_DB, for the tablets' enrollment codes).
    let township_db = match &opts.external {
        Some(_) => std::env::var_os("DAIBAN_BENCH_TOWNSHIP_DB")
            .map(PathBuf::from)
            .ok_or("an external server needs DAIBAN_BENCH_TOWNSHIP_DB (its township.db)")?,
        None => dir.path().join("township.db"),
    };
    let (servers, proxy, sync_url, staff_base, district_base) = match &opts.external {
        Some(url) => {
            let staff = opts.staff_url.clone().unwrap_or_else(|| url.clone());
            (None, None, url.clone(), staff, opts.district_url.clone())
        }
        None => {
            let points: Vec<u32> = (0..names.len()).map(|i| point_of(&names, i)).collect();
            let servers = start_servers(dir.path(), "127.0.0.1:0", "127.0.0.1:0", &points)?;
            let proxy = Proxy::start(&servers.township.url)?;
            let sync_url = proxy.url.clone();
            let staff = servers.township.url.clone();
            let district = Some(servers.district.url.clone());
            (Some(servers), Some(proxy), sync_url, staff, district)
        }
    };
    println!(
        "server {}, tablets sync through {}{}",
        staff_base,
        sync_url,
        if proxy.is_some() {
            " (proxy.py, no delay)"
        } else {
            ""
        }
    );

    // One store per workload tablet: point 100 + its number, device 1.
    let mut tablets = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        let point = point_of(&names, i);
        let agent = lines
            .iter()
            .find(|t| s(t, &["tablet"]) == name)
            .map(|t| s(t, &["agent"]).to_owned())
            .unwrap_or_else(|| format!("agent-{name}"));
        let key = StoreKey::from_bytes(&[point as u8; 32])?;
        let store = Store::open(
            dir.path().join(format!("{name}.db")),
            StoreOptions::new(key, point, 1, agent),
        )?;
        let mut store = store;
        enroll_tablet(&township_db, &staff_base, &mut store)?;
        index.insert(name.clone(), i);
        tablets.push(Tablet {
            name: name.clone(),
            store,
        });
    }
    let tickets: Vec<WTicket> = lines
        .into_iter()
        .map(|t| WTicket {
            tablet: index[s(&t, &["tablet"])],
            events: t["events"].as_array().cloned().unwrap_or_default(),
            json: t,
            next: 0,
            number: None,
        })
        .collect();
    let external = opts.external.is_some();
    let mut b = Bench {
        opts,
        sync_url,
        proxy,
        servers,
        staff: StaffApi::sign_in(
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?,
            staff_base,
            district_base,
        )?,
        tablets,
        tickets,
        latest: HashMap::new(),
        analyse: !external,
        skipped_received: 0,
        keep_uploads: true,
        uploads: Vec::new(),
    };
    let all: Vec<usize> = (0..b.tickets.len()).collect();

    // (0) first contact: each tablet syncs once before it registers anything; the shared
    // documents (the directory) come down. Not part of any goal; printed for completeness.
    let mut first = Phase::new("(0) first contact: every tablet syncs before registering anything (the directory comes down)");
    let sweep = b.sweep(false)?;
    let mut per_tablet = vec![0u32; b.tablets.len()];
    first.add_sweep(&sweep, &mut per_tablet);
    println!();
    first.print(b.tablets.len(), "tablet");

    // (a) upload: registration (the agent's first run) offline, then every tablet syncs.
    let mut a = Phase::new(
        "(a) upload: tickets registered offline on the tablets, then every tablet syncs",
    );
    let t0 = Instant::now();
    let mut per_tablet = vec![0u32; b.tablets.len()];
    b.wave(&mut a, &all, false, false, &mut per_tablet)?;
    b.keep_uploads = false;
    let a_total = t0.elapsed();
    println!();
    a.print(n, "ticket");
    let uploaded_events = a.tablet_events;
    let ingest_server = uploaded_events as f64 / a.server.as_secs_f64().max(1e-9);
    let ingest_wall = uploaded_events as f64 / a.wall.as_secs_f64().max(1e-9);
    println!(
        "    (registering on the tablets plus the sync took {:.2} s in all)",
        a_total.as_secs_f64()
    );
    if !external {
        println!(
            "    server ingest: {uploaded_events} ticket events uploaded (+ {} `received` stamps the server appended) in {:.3} s of server time answering /v1/sync = {ingest_server:.0} events/s; over the upload's wall time (tablet side, proxy without delay and server together) {ingest_wall:.0} events/s",
            a.uploaded,
            a.server.as_secs_f64()
        );
        println!(
            "    the rest of the upload's wall time, {:.3} s, is the tablets' side (outbox, one transaction per acknowledged ticket and per applied stamp) and the loopback transport",
            a.wall.saturating_sub(a.server).as_secs_f64()
        );
        ingest_profile(&b.uploads)?;
    }

    // (b) download: the staff runs that follow the first upload, then every tablet syncs.
    let mut bp = Phase::new("(b) download: township and window events appended through the staff API, then every tablet syncs");
    let mut per_tablet = vec![0u32; b.tablets.len()];
    b.wave(&mut bp, &all, true, false, &mut per_tablet)?;
    println!();
    bp.print(n, "ticket");
    if !bp.changed_set.is_empty() {
        println!(
            "    per ticket that changed: ours {:.1} B, Automerge {:.1} B",
            bp.bytes().0 as f64 / bp.changed_set.len() as f64,
            bp.am.total() as f64 / bp.changed_set.len() as f64
        );
    }

    // (b') the rest of the initial histories (agent events after staff events and so on).
    let mut rest = Phase::new("(b') rest of the initial histories (waves until every ticket's events are applied; not a goal)");
    b.waves_until_done(&mut rest, false)?;
    println!();
    rest.print(rest.changed_set.len(), "changed ticket");

    // (c) incremental: the updates, applied where each event's role works.
    let by_id: HashMap<String, usize> = b
        .tickets
        .iter()
        .enumerate()
        .map(|(i, t)| (s(&t.json, &["id"]).to_owned(), i))
        .collect();
    let mut updated = HashSet::new();
    for u in &updates {
        let Some(&i) = by_id.get(s(u, &["id"])) else {
            continue;
        };
        updated.insert(i);
        if let Some(evs) = u["events"].as_array() {
            b.tickets[i].events.extend(evs.iter().cloned());
        }
    }
    let skipped_before = b.skipped_received;
    let mut c = Phase::new(
        "(c) incremental: the updates applied where each role works, then every tablet syncs",
    );
    b.waves_until_done(&mut c, true)?;
    // A ticket whose only new event is `received` was stamped by the server at its first
    // upload already: it does not change here.
    let c_changed = c.changed_set.len().max(1);
    println!();
    c.print(c_changed, "changed ticket");
    println!(
        "    {} tickets in the updates file, {} changed here ({} `received` events skipped: the server stamps them itself)",
        updated.len(),
        c.changed_set.len(),
        b.skipped_received - skipped_before
    );
    let (c_bytes, c_what) = c.bytes();
    let incr_per_changed = c_bytes as f64 / c_changed as f64;
    println!(
        "    ours: {incr_per_changed:.1} B per changed ticket ({c_what}); round trips per tablet sync ≤ {}, per tablet over the {} waves ≤ {}",
        c.max_rounds_per_sync, c.waves, c.max_rounds_per_tablet
    );
    if external {
        println!(
            "    incremental sync wall time (all waves{}): {:.2} s; slowest tablet in one sync {:.2} s (goal < {GOAL_GPRS_SECONDS} s)",
            if opts.concurrent {
                ", tablets syncing at the same time"
            } else {
                ", tablets one after the other"
            },
            c.wall.as_secs_f64(),
            c.slowest_tablet.as_secs_f64()
        );
    }

    // (d) no-op: every tablet syncs again.
    let mut d = Phase::new("(d) no-op: every tablet syncs again");
    let sweep = b.sweep(false)?;
    let mut per_tablet = vec![0u32; b.tablets.len()];
    d.add_sweep(&sweep, &mut per_tablet);
    let held = b.latest.len();
    if b.analyse {
        let mut am = AmTotals::default();
        for bytes in b.latest.values() {
            am.add(&am_session(Some(bytes), bytes, bytes)?);
        }
        d.am = am;
    }
    println!();
    d.print(b.tablets.len(), "tablet");
    if d.am.docs > 0 {
        println!(
            "    Automerge: {:.1} B per ticket held ({held} docs) to confirm nothing changed, {:.1} B per tablet",
            d.am.total() as f64 / held.max(1) as f64,
            d.am.total() as f64 / b.tablets.len() as f64
        );
    }

    // Where the bytes go (after all phases: (c)'s fixed cost is priced with (d)'s bytes).
    if b.analyse {
        // A no-op round trip carries nothing: HTTP framing, request and response bodies.
        let noop_trip = d
            .wire
            .filter(|w| w.exchanges > 0)
            .map(|w| w.total() as f64 / w.exchanges as f64);
        println!();
        println!("  where the bytes go");
        for (p, per) in [(&a, n), (&bp, bp.changed_set.len().max(1)), (&c, c_changed)] {
            let k = &p.content;
            if k.tickets == 0 {
                continue;
            }
            let per = per as f64;
            let (bytes, _) = p.bytes();
            let framing = p
                .wire
                .map(|w| w.total().saturating_sub(p.body_up + p.body_down))
                .unwrap_or(0);
            println!(
                "    {}: per ticket {:.1} B on the wire = HTTP framing {:.1} + bodies {:.1} (up {:.1}, down {:.1})",
                p.name.split(':').next().unwrap_or(""),
                bytes as f64 / per,
                framing as f64 / per,
                (p.body_up + p.body_down) as f64 / per,
                p.body_up as f64 / per,
                p.body_down as f64 / per
            );
            println!(
                "      the Automerge changes carried: {:.2} changes/ticket, {:.1} B raw ({:.1} B of it dependency hashes, {:.1} B actor ids), {:.1} B packed and compressed as one message by our wire",
                k.changes as f64 / per,
                k.raw as f64 / per,
                k.hashes as f64 / per,
                k.actors as f64 / per,
                k.raw_wire as f64 / per
            );
            println!(
                "      the new events alone as JSON: {:.2} events/ticket, {:.1} B, {:.1} B deflated together",
                k.events as f64 / per,
                k.events_json as f64 / per,
                k.events_json_deflated as f64 / per
            );
            if let (true, Some(trip)) = (std::ptr::eq(p, &c), noop_trip) {
                let trips = p.wire.map_or(p.rounds, |w| w.exchanges);
                let fixed = trip * trips as f64;
                println!(
                    "      fixed cost of a round trip (a no-op's bytes: {trip:.1} B) × {trips} round trips = {fixed:.0} B, i.e. {:.1} B per changed ticket before any change is carried",
                    fixed / per
                );
            }
        }
        if let Some(w) = &d.wire {
            let t = b.tablets.len() as f64;
            println!(
                "    (d): per tablet {:.1} B on the wire = HTTP framing {:.1} + request body {:.1} + response body {:.1}",
                w.total() as f64 / t,
                (w.total() - d.body_up - d.body_down) as f64 / t,
                d.body_up as f64 / t,
                d.body_down as f64 / t
            );
        }
    }

    // Stop the proxy before the server; the temp dir goes last.
    drop(b);
    Ok(Summary {
        n,
        upload_per_ticket: a.bytes().0 as f64 / n.max(1) as f64,
        download_per_ticket: bp.bytes().0 as f64 / n.max(1) as f64,
        download_per_changed: bp.bytes().0 as f64 / bp.changed_set.len().max(1) as f64,
        incr_per_changed,
        incr_rounds_per_sync: c.max_rounds_per_sync,
        incr_rounds_per_tablet: c.max_rounds_per_tablet,
        incr_waves: c.waves,
        incr_wall: c.wall.as_secs_f64(),
        noop_rounds: d.max_rounds_per_sync,
        noop_per_tablet: d.bytes().0 as f64 / d.syncs.max(1) as f64,
        ingest_server,
        ingest_wall,
        what: if external {
            "HTTP bodies only, external server"
        } else {
            "on the wire, HTTP included"
        },
        external,
        concurrent: opts.concurrent,
        incr_slowest: c.slowest_tablet.as_secs_f64(),
        incr_slowest_tablet_total: c
            .tablet_totals
            .iter()
            .copied()
            .max()
            .unwrap_or_default()
            .as_secs_f64(),
    })
}

// ---------------------------------------------------------------------------------------------
// TLS overhead.

/// Bytes per sync over HTTPS beside plain HTTP: one township (under a district holding the
/// directory) serving the same router on a plain and a TLS listener (rustls on ring, TLS 1.3,
/// ECDSA P-256 certificate from `make-cert`'s code), each behind its own proxy.py, so TLS
/// records and handshakes are counted; 20 tablets. Each tablet uploads 5 new tickets, then
/// syncs once more with nothing to do, over each: plain HTTP; HTTPS with a full handshake every
/// sync (the client's TLS sessions forgotten first); HTTPS resuming the previous sync's
/// session (the sync client keeps sessions per pinned CA for the process).
fn tls_overhead() -> Res<()> {
    use agent_core::sync::client::Endpoint;
    use agent_core::sync::tls::forget_sessions;
    use rustls::pki_types::pem::PemObject;
    const TABLETS: u32 = 20;
    const TICKETS: usize = 5;
    let dir = tempfile::tempdir()?;
    let points: Vec<u32> = (1..=TABLETS).map(|t| 100 + t).collect();
    let township_db = dir.path().join("township.db");
    let (district, township) = start_district(
        dir.path(),
        "127.0.0.1:0",
        &points,
        ServerStore::open(&township_db)?,
    )?;
    let pair = sync_server::tls::make_cert(&["127.0.0.1".to_owned()])?;
    let tls = sync_server::tls::server_config(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes())?;
    let state = AppState::new(township, township_info()).with_parent(Some(district.url.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (plain_addr, tls_addr) = runtime.block_on(async {
        state.sync_upward().await.map_err(|e| e.to_string())?;
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let secure = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addrs = (plain.local_addr()?, secure.local_addr()?);
        let router = app(state);
        tokio::spawn(serve(plain, router.clone(), std::future::pending()));
        tokio::spawn(sync_server::http::serve_tls(
            secure,
            router,
            Arc::new(tls),
            std::future::pending(),
        ));
        Ok::<_, BoxError>(addrs)
    })?;
    let mut plain = Proxy::start(&plain_addr.to_string())?;
    let mut secure = Proxy::start(&tls_addr.to_string())?;
    let plain_url = plain.url.clone();
    let tls_url = secure.url.replacen("http://", "https://", 1);
    let ca = pair.ca_pem.into_bytes();

    let mut tablets = Vec::new();
    for &point in &points {
        let key = StoreKey::from_bytes(&[point as u8; 32])?;
        let options = StoreOptions::new(key, point, 1, format!("agent-{point}"));
        tablets.push(Store::open(
            dir.path().join(format!("t{point}.db")),
            options,
        )?);
    }
    // Enrollment, then first contact (the directory with every enrolled tablet comes down),
    // not counted.
    let township_url = format!("http://{plain_addr}");
    for t in &mut tablets {
        enroll_tablet(&township_db, &township_url, t)?;
    }
    for t in &mut tablets {
        sync_now(t, &plain_url)?;
    }
    let catalog = agent_core::domain::catalog::Catalog::demo();
    let mut seed = 0;
    // One sweep: every tablet registers `tickets` new tickets, then syncs once; the proxy's
    // counts and the round trips made.
    let mut sweep = |tablets: &mut [Store],
                     proxy: &mut Proxy,
                     url: &str,
                     tls: Option<bool>,
                     tickets: usize|
     -> Res<(Wire, u32)> {
        for t in tablets.iter_mut() {
            seed += 1;
            for form in agent_core::demo::forms(seed, tickets, &catalog) {
                t.register(&form)?;
            }
        }
        proxy.reset()?;
        let mut rounds = 0;
        for t in tablets.iter_mut() {
            let report = match tls {
                None => sync_now(t, url)?,
                Some(resume) => {
                    if !resume {
                        forget_sessions();
                    }
                    sync_now(t, Endpoint::pinned(url, &ca))?
                }
            };
            rounds += report.rounds;
        }
        Ok((proxy.stats()?, rounds))
    };
    let mut rows = Vec::new();
    for (what, tickets) in [
        (format!("(a) upload of {TICKETS} tickets"), TICKETS),
        ("(d) no-op".to_owned(), 0),
    ] {
        let http = sweep(&mut tablets, &mut plain, &plain_url, None, tickets)?;
        let full = sweep(&mut tablets, &mut secure, &tls_url, Some(false), tickets)?;
        // The session of the full handshakes' last sync is resumed by the first here, and each
        // resumed handshake brings the ticket for the next.
        let resumed = sweep(&mut tablets, &mut secure, &tls_url, Some(true), tickets)?;
        rows.push((what, http, full, resumed));
    }
    drop((plain, secure));
    let per = |w: &Wire| w.total() as f64 / f64::from(TABLETS);
    println!();
    println!(
        "==== TLS overhead per sync ({TABLETS} tablets, one township; rustls on ring, TLS 1.3, ECDSA P-256 certificate; bytes on the wire by proxy.py, TCP payload both ways) ===="
    );
    for (what, (http, h_rounds), (full, f_rounds), (resumed, r_rounds)) in &rows {
        println!("  {what}, per sync:");
        println!(
            "    HTTP                     {:>7.1} B  ({} round trips, {} exchanges, {} connections)",
            per(http), h_rounds, http.exchanges, http.connections
        );
        for (name, w, rounds) in [
            ("HTTPS, full handshake", full, f_rounds),
            ("HTTPS, resumed session", resumed, r_rounds),
        ] {
            println!(
                "    {name:<24} {:>7.1} B  ({} round trips, {} exchanges, {} connections): TLS adds {:.1} B per sync (up {:.1}, down {:.1})",
                per(w),
                rounds,
                w.exchanges,
                w.connections,
                per(w) - per(http),
                (w.up as f64 - http.up as f64) / f64::from(TABLETS),
                (w.down as f64 - http.down as f64) / f64::from(TABLETS)
            );
        }
    }
    println!(
        "    (certificate chain sent in a full handshake: the server's certificate only, {} B DER; tablets hold the CA)",
        rustls::pki_types::CertificateDer::from_pem_slice(pair.cert_pem.as_bytes())
            .map(|c| c.len())
            .unwrap_or(0)
    );
    drop(runtime);
    drop(district);
    Ok(())
}
