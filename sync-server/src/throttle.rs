//! Sign-in throttling by address: account lockout stops guessing one account's password;
//! this stops one machine from trying many accounts (password spraying).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed sign-ins one address may make per window before it must wait.
pub const MAX_FAILURES: u32 = 20;
/// The window failures are counted over.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered at most; older windows are dropped first when full.
const MAX_ADDRESSES: usize = 10_000;

/// Failed sign-ins per address in the current window.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Throttle {
    /// Whether `ip` may try to sign in now.
    pub fn allows(&self, ip: IpAddr, now: Instant) -> bool {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip)
            .is_none_or(|(start, n)| now.duration_since(*start) >= WINDOW || *n < MAX_FAILURES)
    }

    /// Count a failed sign-in from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
            map.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if map.len() >= MAX_ADDRESSES {
                // Under a flood from many addresses, forget the oldest window.
                if let Some(oldest) = map.iter().min_by_key(|(_, (s, _))| *s).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_after_its_failures_and_may_try_again_after_the_window() {
        let t = Throttle::default();
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(t.allows(a, start));
            t.failed(a, start);
        }
        assert!(!t.allows(a, start + Duration::from_secs(60)));
        assert!(t.allows(b, start), "another address is not held up");
        let later = start + WINDOW;
        assert!(t.allows(a, later));
        t.failed(a, later);
        assert!(t.allows(a, later), "a new window counts from one");
    }
}
