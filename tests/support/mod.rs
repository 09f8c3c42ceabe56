//! Real server processes for the multi-process tests: the `sync-server` binary cargo built
//! beside the test, on loopback port 0, with temporary data directories. Readiness is the
//! "listening on" line on the server's stdout; nothing sleeps. Shared by the root package's
//! tests and sync-server's (included with `#[path]`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod console;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

use agent_core::crypto::StoreKey;
use agent_core::demo;
use agent_core::domain::number::TicketNumber;
use agent_core::store::{system_clock, Store, StoreOptions};
use serde_json::{json, Value};

/// The demo townships' codes (agent_core::demo::district_directory): points 101–106 belong
/// to the first, 201–202 to the second.
pub const TOWNSHIP_A: &str = "431023101";
pub const TOWNSHIP_B: &str = "431023102";

/// The sync-server binary cargo built next to this test (target/<profile>/sync-server).
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join("sync-server");
    assert!(
        path.exists(),
        "{} not built: run `cargo test --workspace` (or `cargo build -p sync-server` first)",
        path.display()
    );
    path
}

/// Run a `sync-server` subcommand on a data directory.
fn run_cli(args: &[&str], data: &Path) -> std::process::Output {
    Command::new(server_binary())
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap()
}

/// Run a `sync-server` subcommand that must succeed; panics with its stderr otherwise.
pub fn cli(args: &[&str], data: &Path) -> String {
    let out = run_cli(args, data);
    assert!(
        out.status.success(),
        "sync-server {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a `sync-server` subcommand that must fail; returns its stderr (the message shown).
pub fn cli_refused(args: &[&str], data: &Path) -> String {
    let out = run_cli(args, data);
    assert!(
        !out.status.success(),
        "sync-server {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running server process.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: PathBuf,
    /// The server's stderr, when started with [`serve_with`] and `capture_stderr`.
    pub stderr: Option<BufReader<ChildStderr>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// SIGKILL the process and wait for it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Read stderr until a line containing `needle` (the server must have been started with
    /// stderr captured). Returns false when stderr ends first.
    pub fn wait_for_stderr(&mut self, needle: &str) -> bool {
        let err = self.stderr.as_mut().expect("stderr not captured");
        let mut line = String::new();
        loop {
            line.clear();
            match err.read_line(&mut line) {
                Ok(0) | Err(_) => return false,
                Ok(_) if line.contains(needle) => return true,
                Ok(_) => {}
            }
        }
    }
}

/// Start `serve` on an initialised data directory at `listen` (e.g. `127.0.0.1:0`), with
/// extra environment variables.
pub fn serve_with(data: &Path, listen: &str, env: &[(&str, &str)], capture_stderr: bool) -> Server {
    // The tests' own reqwest clients need rustls' provider (reqwest is built without one).
    agent_core::sync::tls::install_crypto_provider();
    let mut cmd = Command::new(server_binary());
    cmd.args(["serve", "--listen", listen, "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(if capture_stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from the server: {line:?}"))
        .to_owned();
    let stderr = child.stderr.take().map(BufReader::new);
    Server {
        child,
        url,
        data: data.to_owned(),
        stderr,
    }
}

pub fn serve(data: &Path) -> Server {
    serve_with(data, "127.0.0.1:0", &[], false)
}

impl Server {
    /// `host:port` this server listens on.
    pub fn addr(&self) -> &str {
        self.url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
    }
}

/// Initialise a district data directory with the demo directory.
pub fn init_district(data: &Path) {
    cli(
        &[
            "init",
            "--role",
            "district",
            "--name",
            "示范县",
            "--server-id",
            "srv-county",
        ],
        data,
    );
    let file = data.join("directory.json");
    std::fs::write(
        &file,
        serde_json::to_string(&demo::district_directory()).unwrap(),
    )
    .unwrap();
    cli(&["import-directory", file.to_str().unwrap()], data);
    add_staff_ok(data, staff_login("window"), "window_staff");
    add_staff_ok(data, staff_login("reader"), "auditor");
}

/// Initialise a township data directory under the district at `parent`. It syncs upward
/// only when asked ([`sync_upward`]), so tests decide when.
pub fn init_township(data: &Path, code: &str, parent: &str) {
    init_township_with(data, code, parent, &[]);
}

/// [`init_township`] with more `init` arguments (e.g. `--parent-ca`).
pub fn init_township_with(data: &Path, code: &str, parent: &str, more: &[&str]) {
    let server_id = format!("srv-{code}");
    let mut args = vec![
        "init",
        "--role",
        "township",
        "--name",
        if code == TOWNSHIP_A {
            "柏林镇"
        } else {
            "龙潭镇"
        },
        "--server-id",
        &server_id,
        "--township",
        code,
        "--parent",
        parent,
        "--sync-interval",
        "0",
    ];
    args.extend_from_slice(more);
    cli(&args, data);
    add_staff_ok(data, staff_login("township"), "township_staff");
    add_staff_ok(data, staff_login("reader"), "auditor");
}

/// The password of the staff accounts every test server is given: [`staff_login`]`("window")`
/// on a district, [`staff_login`]`("township")` on a township.
pub const STAFF_PASSWORD: &str = "test-staff-password";

/// The test account acting as `role` (`township` or `window`; `reader`: the auditor every
/// test server has).
pub fn staff_login(role: &str) -> &'static str {
    match role {
        "window" => "window",
        "reader" => "auditor",
        _ => "clerk",
    }
}

/// `sync-server add-staff`, the password on stdin; (success, stdout + stderr).
pub fn add_staff(data: &Path, login: &str, role: &str, password: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(server_binary())
        .args([
            "add-staff",
            "--login",
            login,
            "--name",
            "李文",
            "--role",
            role,
            "--data",
        ])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Open the test account `login` (password [`STAFF_PASSWORD`]) on a server's data directory.
pub fn add_staff_ok(data: &Path, login: &str, role: &str) {
    let (ok, out) = add_staff(data, login, role, STAFF_PASSWORD);
    assert!(ok, "add-staff {login}: {out}");
}

thread_local! {
    static TOKENS: std::cell::RefCell<std::collections::HashMap<(String, String), String>> =
        Default::default();
}

/// `Authorization` for the staff API as `login` at `url`, signed in once per server (through
/// `client`, e.g. one trusting an HTTPS server's CA).
pub fn bearer_with(client: &reqwest::blocking::Client, url: &str, login: &str) -> String {
    let key = (url.to_owned(), login.to_owned());
    if let Some(token) = TOKENS.with(|t| t.borrow().get(&key).cloned()) {
        return format!("Bearer {token}");
    }
    let resp = client
        .post(format!("{url}/api/login"))
        .json(&json!({ "login": login, "password": STAFF_PASSWORD }))
        .send()
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().unwrap();
    assert!(status.is_success(), "login {login}: {status} {body}");
    let token = body["token"].as_str().unwrap().to_owned();
    TOKENS.with(|t| t.borrow_mut().insert(key, token.clone()));
    format!("Bearer {token}")
}

/// Sign in again at the next call: for tests that move the servers' clock past a session.
pub fn forget_tokens() {
    TOKENS.with(|t| t.borrow_mut().clear());
}

/// [`bearer_with`] over plain HTTP, as the test account of `role`.
pub fn bearer(url: &str, role: &str) -> String {
    bearer_with(&reqwest::blocking::Client::new(), url, staff_login(role))
}

/// A district and one township (code [`TOWNSHIP_A`]) that has synced the directory down.
pub fn district_and_township(dir: &Path) -> (Server, Server) {
    let district_data = dir.join("district");
    init_district(&district_data);
    let district = serve(&district_data);
    let township = start_township(dir, TOWNSHIP_A, &district);
    (district, township)
}

/// Start a township under `district`, enrolled there, and sync it once so it holds the
/// directory.
pub fn start_township(dir: &Path, code: &str, district: &Server) -> Server {
    start_township_via(dir, code, district, &district.url)
}

/// [`start_township`] reaching its district at `parent` (e.g. a relay in front of it).
pub fn start_township_via(dir: &Path, code: &str, district: &Server, parent: &str) -> Server {
    let data = dir.join(format!("township-{code}"));
    init_township(&data, code, parent);
    enroll_township(district, &data, code);
    let server = serve(&data);
    sync_upward(&server);
    server
}

/// `sync-server make-cert --name 127.0.0.1 --out DIR`; returns what it printed.
pub fn make_cert(out: &Path) -> String {
    let o = Command::new(server_binary())
        .args(["make-cert", "--name", "127.0.0.1", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Append the `[tls]` table make-cert printed to the data directory's daiban.toml.
pub fn enable_tls(data: &Path, printed: &str) {
    let start = printed
        .find("[tls]")
        .expect("make-cert prints a [tls] table");
    let table: Vec<&str> = printed[start..].lines().take(3).collect();
    let path = data.join("daiban.toml");
    let mut toml = std::fs::read_to_string(&path).unwrap();
    toml.push('\n');
    toml.push_str(&table.join("\n"));
    toml.push('\n');
    std::fs::write(path, toml).unwrap();
}

/// Issue an enrollment code with `sync-server enroll-code ARGS` on a server's data directory.
pub fn enrollment_code(server_data: &Path, args: &[&str]) -> String {
    let out = cli(&[&["enroll-code"], args].concat(), server_data);
    out.lines()
        .find_map(|l| l.strip_prefix("enrollment code: "))
        .unwrap_or_else(|| panic!("no code in: {out}"))
        .to_owned()
}

/// Enroll the township server at `township_data` (code `code`) with the serving `district`.
pub fn enroll_township(district: &Server, township_data: &Path, code: &str) {
    let issued = enrollment_code(&district.data, &["--township", code]);
    cli(&["enroll", "--code", &issued], township_data);
}

/// Ask a township to sync with its district now; returns the report.
pub fn sync_upward(township: &Server) -> Value {
    sync_upward_with(&reqwest::blocking::Client::new(), &township.url)
}

/// [`sync_upward`] through `client` (e.g. one trusting an HTTPS township's CA).
pub fn sync_upward_with(client: &reqwest::blocking::Client, url: &str) -> Value {
    let resp = client
        .post(format!("{url}/api/upstream/sync"))
        .header(
            "authorization",
            bearer_with(client, url, staff_login("township")),
        )
        .send()
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().unwrap();
    assert!(status.is_success(), "upstream sync: {status} {body}");
    body
}

/// A tablet store of `point` and `device` with the system clock, not enrolled anywhere.
pub fn new_tablet(dir: &Path, point: u32, device: u32) -> Store {
    let mut o = StoreOptions::new(
        StoreKey::from_bytes(&[(point as u8) ^ (device as u8).wrapping_mul(31); 32]).unwrap(),
        point,
        device,
        format!("agent-{point}-{device}"),
    );
    o.clock = system_clock();
    Store::open(dir.join(format!("tablet-{point}-{device}.db")), o).unwrap()
}

/// A tablet store of `point` and `device`, enrolled with `township` (once: reopening an
/// enrolled tablet's file does not enroll it again).
pub fn tablet(dir: &Path, township: &Server, point: u32, device: u32) -> Store {
    let mut store = new_tablet(dir, point, device);
    enroll_tablet(&mut store, township, township.url.as_str());
    store
}

/// Enroll a tablet with the township serving `township` (at `endpoint`: its URL, or its URL
/// and CA): a code from `enroll-code` on the township's data directory, then agent-core's
/// enrollment. Does nothing for a tablet already enrolled.
pub fn enroll_tablet<'a>(
    store: &mut Store,
    township: &Server,
    endpoint: impl Into<agent_core::sync::client::Endpoint<'a>>,
) {
    if store.enrolled_township().unwrap().is_some() {
        return;
    }
    let (point, device) = (store.point().to_string(), store.device().to_string());
    let code = enrollment_code(&township.data, &["--point", &point, "--device", &device]);
    agent_core::sync::enroll::enroll(store, endpoint, &code).unwrap();
}

/// POST a staff event as the test account of `role` (`township` or `window`). Returns
/// (status, body).
pub fn staff_event(
    server: &Server,
    role: &str,
    number: &TicketNumber,
    kind: &str,
    payload: Value,
) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/api/tickets/{}/events", server.url, number))
        .header("authorization", bearer(&server.url, role))
        .json(&json!({ "kind": kind, "note": "", "payload": payload }))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// Like [`staff_event`], asserting success.
pub fn staff_ok(server: &Server, role: &str, number: &TicketNumber, kind: &str, payload: Value) {
    let (status, body) = staff_event(server, role, number, kind, payload);
    assert_eq!(status, 200, "{kind}: {body}");
}

/// The ticket's view on a server (GET /api/tickets/{n}, read by the server's auditor, who
/// sees every ticket it holds), or `None` when it is not there.
pub fn server_view(server: &Server, number: &TicketNumber) -> Option<Value> {
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/api/tickets/{}", server.url, number))
        .header("authorization", bearer(&server.url, "reader"))
        .send()
        .unwrap();
    (resp.status().as_u16() == 200).then(|| resp.json().unwrap())
}

/// The status on a server, "" when absent.
pub fn server_status(server: &Server, number: &TicketNumber) -> String {
    server_view(server, number)
        .and_then(|v| v["life"]["status"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A TCP relay in front of a server that drops links: while `drop_percent` is above 0, each
/// connection is cut, with that chance, when the server's response starts — after the server
/// did the work, before the client got the answer. Runs until the test ends.
pub struct FlakyProxy {
    pub url: String,
    pub drop_percent: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// Connections cut so far.
    pub dropped: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl FlakyProxy {
    pub fn start(target: &str, drop_percent: u32, seed: u64) -> FlakyProxy {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
        use std::sync::Arc;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let target = target.trim_start_matches("http://").to_owned();
        let percent = Arc::new(AtomicU32::new(drop_percent));
        let dropped = Arc::new(AtomicU32::new(0));
        let rng = Arc::new(AtomicU64::new(seed | 1));
        let (p, d) = (percent.clone(), dropped.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                // xorshift: one roll per connection.
                let mut x = rng.load(Ordering::Relaxed);
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                rng.store(x, Ordering::Relaxed);
                let cut = (x % 100) < u64::from(p.load(Ordering::Relaxed));
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(Shutdown::Write);
                });
                let d = d.clone();
                std::thread::spawn(move || {
                    let (mut s_read, mut c_write) = (server, client);
                    let mut buf = [0u8; 16 << 10];
                    loop {
                        let n = match s_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if cut {
                            d.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_write.shutdown(Shutdown::Both);
                    let _ = s_read.shutdown(Shutdown::Both);
                });
            }
        });
        FlakyProxy {
            url,
            drop_percent: percent,
            dropped,
        }
    }

    pub fn set_drop_percent(&self, percent: u32) {
        self.drop_percent
            .store(percent, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A tablet's next sync request, built by hand: its outbox as its device, unsigned (see
/// `agent_core::sync::wire::sign_request`), with the outgoing tickets.
pub fn device_request(
    store: &mut Store,
    counter: u64,
    cursor: u64,
) -> (
    agent_core::sync::wire::SyncRequest,
    Vec<agent_core::store::Outgoing>,
) {
    use agent_core::sync::wire::{DocChanges, Peer, SyncRequest, PAGE_BYTES, PROTOCOL_VERSION};
    let out = store.outbox(PAGE_BYTES).unwrap();
    let req = SyncRequest {
        v: PROTOCOL_VERSION,
        peer: Peer::Device {
            point: store.point(),
            device: store.device(),
        },
        counter,
        cursor,
        epoch: store.sync_epoch().unwrap(),
        changes: out
            .iter()
            .map(|o| DocChanges {
                ticket: o.number.to_string(),
                bytes: agent_core::sync::pack::pack(&o.bytes).unwrap(),
            })
            .collect(),
        shared: vec![],
        whole: vec![],
    };
    (req, out)
}

/// POST a body to `url`/v1/sync with these headers; returns (status, text, bytes).
pub fn post_sync_with(
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let mut req = reqwest::blocking::Client::new()
        .post(format!("{url}/v1/sync"))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().unwrap().to_vec();
    (status, String::from_utf8_lossy(&bytes).into_owned(), bytes)
}
