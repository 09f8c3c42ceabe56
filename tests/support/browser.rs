//! Real headless Chromium for the console tests, driven through Debian's chromedriver with
//! WebDriver (fantoccini) behind a blocking API, so tests read like the rest of tests/support.
//! Each [`Browser`] owns its chromedriver process, its Chromium and a private current-thread
//! tokio runtime; do not use it from inside an async runtime.
//!
//! Included directly by the root package's browser tests (`#[path = "support/browser.rs"]
//! mod browser;`), not from support/mod.rs: sync-server's and ffi's tests include that file
//! too and do not depend on fantoccini.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{elements, Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Debian's packages (`chromium`, `chromium-driver`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long [`Browser::wait_for`] (and the helpers taking a selector) look for an element.
pub const WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

/// A WebDriver session in headless Chromium; Drop ends it and kills chromedriver.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Client,
    driver: Child,
}

/// An element found on the current page.
pub struct Element<'b> {
    browser: &'b Browser,
    el: elements::Element,
}

/// A cookie as the browser holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub http_only: bool,
    pub secure: bool,
    /// "Strict", "Lax" or "None"; empty when the browser reports none.
    pub same_site: String,
}

impl Browser {
    /// Start chromedriver and a headless Chromium session. `None` (the test skips) when
    /// Chromium or chromedriver is not installed, unless DAIBAN_REQUIRE_CHROMIUM is set, as CI
    /// does: then a missing browser fails the test.
    pub fn start() -> Option<Browser> {
        if !(Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()) {
            assert!(
                std::env::var_os("DAIBAN_REQUIRE_CHROMIUM").is_none(),
                "chromium and chromedriver are required (DAIBAN_REQUIRE_CHROMIUM is set) but not \
                 installed: apt-get install chromium chromium-driver fonts-noto-cjk"
            );
            eprintln!("SKIPPED: chromium or chromedriver is not installed");
            return None;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
        let (driver, port) = spawn_driver();
        // As root Chromium refuses to start without --no-sandbox; containers have a small
        // /dev/shm, hence --disable-dev-shm-usage.
        let caps = json!({
            "browserName": "chrome",
            "timeouts": { "pageLoad": 30_000 },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1366,768"],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let client = rt.block_on(async {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
        });
        match client {
            Ok(client) => Some(Browser { rt, client, driver }),
            Err(e) => {
                let mut driver = driver;
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver could not start Chromium: {e}");
            }
        }
    }

    /// Run one WebDriver command to completion; a failure panics naming `what`.
    fn run<T, E: std::fmt::Display>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> T {
        self.rt
            .block_on(fut)
            .unwrap_or_else(|e| panic!("browser: {what}: {e}"))
    }

    /// Navigate and wait for the page to load. Panics on Chromium's own error page (network
    /// error, or an error status with an empty body), where chromedriver still reports `url`
    /// as the current URL and a check for something absent would pass on the wrong page.
    pub fn goto(&self, url: &str) {
        self.run(&format!("goto {url}"), self.client.goto(url));
        let href = self.execute("return location.href");
        assert!(
            !href.as_str().unwrap_or("").starts_with("chrome-error:"),
            "browser: Chromium showed its error page for {url}"
        );
    }

    /// The HTTP status of the current document's response (after a redirect, the final
    /// one's; Chromium reports 200 for `data:` URLs).
    pub fn status(&self) -> u16 {
        let js = "return performance.getEntriesByType('navigation')[0]?.responseStatus ?? 0";
        let v = self.execute(js);
        v.as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or_else(|| panic!("browser: status {v}"))
    }

    pub fn title(&self) -> String {
        self.run("title", self.client.title())
    }

    pub fn page_source(&self) -> String {
        self.run("page source", self.client.source())
    }

    pub fn current_url(&self) -> String {
        self.run("current url", self.client.current_url())
            .to_string()
    }

    /// The element matching `css` now; panics when there is none.
    pub fn find(&self, css: &str) -> Element<'_> {
        let el = self.run(
            &format!("find {css:?}"),
            self.client.find(Locator::Css(css)),
        );
        Element { browser: self, el }
    }

    /// How many elements match `css` now (0 to check that something is absent).
    pub fn count(&self, css: &str) -> usize {
        self.run(
            &format!("find all {css:?}"),
            self.client.find_all(Locator::Css(css)),
        )
        .len()
    }

    /// The element matching `css`, polling for up to [`WAIT`] (pages that render with JS, or
    /// a form's response still loading); panics when it does not appear.
    pub fn wait_for(&self, css: &str) -> Element<'_> {
        let wait = self.client.wait().at_most(WAIT).every(POLL);
        let el = self.run(
            &format!("wait for {css:?} on {}", self.current_url()),
            wait.for_element(Locator::Css(css)),
        );
        Element { browser: self, el }
    }

    /// The visible text of the element matching `css` (waits for it).
    pub fn text(&self, css: &str) -> String {
        self.wait_for(css).text()
    }

    /// Replace the value of the input matching `css` (waits for it).
    pub fn fill(&self, css: &str, text: &str) {
        self.wait_for(css).fill(text);
    }

    /// Click the element matching `css` (waits for it); a submit button submits its form.
    pub fn click(&self, css: &str) {
        self.wait_for(css).click();
    }

    /// Run JavaScript in the page (`return …` to get a value back).
    pub fn execute(&self, script: &str) -> Value {
        self.run("execute", self.client.execute(script, vec![]))
    }

    /// Save a PNG of the viewport to `path` (parent directories created); returns its bytes.
    pub fn screenshot(&self, path: impl AsRef<Path>) -> Vec<u8> {
        let path = path.as_ref();
        let png = self.run("screenshot", self.client.screenshot());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        png
    }

    /// The cookies of the current page's origin, with the attributes the console relies on.
    pub fn cookies(&self) -> Vec<Cookie> {
        self.run("cookies", self.client.get_all_cookies())
            .into_iter()
            .map(|c| Cookie {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                http_only: c.http_only().unwrap_or(false),
                secure: c.secure().unwrap_or(false),
                same_site: c.same_site().map(|s| s.to_string()).unwrap_or_default(),
            })
            .collect()
    }

    /// Delete the current origin's cookies (log out without a logout page).
    pub fn delete_cookies(&self) {
        self.run("delete cookies", self.client.delete_all_cookies());
    }
}

impl Element<'_> {
    pub fn text(&self) -> String {
        self.browser.run("element text", self.el.text())
    }

    pub fn attr(&self, name: &str) -> Option<String> {
        self.browser.run("element attribute", self.el.attr(name))
    }

    /// Clear the input, then type `text` into it.
    pub fn fill(&self, text: &str) {
        self.browser.run("clear", self.el.clear());
        self.browser.run("type", self.el.send_keys(text));
    }

    pub fn click(&self) {
        self.browser.run("click", self.el.click());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit Chromium; killing chromedriver alone
        // would leave Chromium running.
        let _ = self.rt.block_on(self.client.clone().close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Start chromedriver on a free loopback port and wait until /status says ready. The port is
/// picked by binding port 0 and releasing it (chromedriver has no port 0), so another
/// process can take it first: then chromedriver exits and we try another.
fn spawn_driver() -> (Child, u16) {
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("free port: {e}"))
            .port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{CHROMEDRIVER}: {e}"));
        // At most 10 s: chromedriver is ready in well under a second.
        for _ in 0..200 {
            if driver.try_wait().ok().flatten().is_some() {
                break;
            }
            if driver_ready(port) {
                return (driver, port);
            }
            std::thread::sleep(POLL);
        }
        let _ = driver.kill();
        let _ = driver.wait();
    }
    panic!("chromedriver did not become ready");
}

/// GET /status by hand: `value.ready`. chromedriver keeps the connection open (and answers
/// HTTP/1.0 with nothing), so read until the body parses.
fn driver_ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let (mut reply, mut buf) = (Vec::new(), [0u8; 1024]);
    while let Ok(n @ 1..) = s.read(&mut buf) {
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if let Some((_, body)) = text.split_once("\r\n\r\n") {
            if let Ok(v) = serde_json::from_str::<Value>(body) {
                return v["value"]["ready"] == true;
            }
        }
    }
    false
}
