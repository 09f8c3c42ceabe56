//! Fault points for the kill tests: when `DAIBAN_FAULT` names a point (comma-separated for
//! several), the server says so on stderr on reaching it and then stops there until it is
//! killed, so a test can SIGKILL it at a known place in a request. Unset (as in every
//! deployment), a fault point costs one comparison.

use std::sync::OnceLock;
use std::time::Duration;

/// The variable naming the points to stop at.
pub const FAULT_VAR: &str = "DAIBAN_FAULT";

/// Stop here if this point is named in `DAIBAN_FAULT`.
pub fn point(name: &str) {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        std::env::var(FAULT_VAR)
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default()
    });
    if names.iter().any(|n| n == name) {
        eprintln!("fault point reached: {name}");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}
