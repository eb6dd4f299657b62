//! Slowing down token guessing: failed authentications are counted per client address in
//! fixed one-minute windows; once an address has failed `limit` times in its window, every
//! request from it that needs a token answers 429 until the window ends, whether its token is
//! right or not (so a guess that happens to be right is not told apart either).
//!
//! At most [`MAX_TRACKED`] addresses are tracked at once, so the table's memory is bounded;
//! windows that have ended are dropped when it fills.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at once (about 3 MiB at most).
pub const MAX_TRACKED: usize = 65_536;

const WINDOW: Duration = Duration::from_secs(60);

pub struct FailureLimiter {
    limit: u32,
    // A std Mutex: held for a map lookup only, never across an await.
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    /// `limit` failures a minute per address; 0 disables the limit.
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// When `client` has used up its failures: how long until its window ends.
    pub fn blocked(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = windows.get(&client)?;
        let end = *start + WINDOW;
        (*count >= self.limit && now < end).then(|| end - now)
    }

    /// Counts one failed authentication from `client`.
    pub fn record(&self, client: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&client) {
            windows.retain(|_, (start, _)| now < *start + WINDOW);
            if windows.len() >= MAX_TRACKED {
                tracing::warn!("too many addresses failing authentication to track them all");
                return;
            }
        }
        let window = windows.entry(client).or_insert((now, 0));
        if now >= window.0 + WINDOW {
            *window = (now, 0);
        }
        window.1 = window.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_limit_until_the_minute_ends() {
        let limiter = FailureLimiter::new(3);
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..2 {
            limiter.record(client, t0);
        }
        assert_eq!(limiter.blocked(client, t0), None);
        limiter.record(client, t0);
        assert_eq!(
            limiter.blocked(client, t0 + Duration::from_secs(20)),
            Some(Duration::from_secs(40))
        );
        assert_eq!(limiter.blocked(other, t0), None);
        let later = t0 + WINDOW;
        assert_eq!(limiter.blocked(client, later), None);
        limiter.record(client, later);
        assert_eq!(
            limiter.blocked(client, later),
            None,
            "a new window starts at 1"
        );
    }

    #[test]
    fn zero_disables_it() {
        let limiter = FailureLimiter::new(0);
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..100 {
            limiter.record(client, now);
        }
        assert_eq!(limiter.blocked(client, now), None);
    }
}
