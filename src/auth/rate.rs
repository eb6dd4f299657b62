//! Request budgets (`governor`'s GCRA): one for writes and one for reads, each kept per token,
//! or per client address in open mode. A request beyond its budget answers 429 with
//! `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Whose budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    Token(usize),
    Client(IpAddr),
}

/// Which budget a route spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Read,
    Write,
}

/// Keys kept before stale ones are swept (a sweep is linear, so it runs only past this).
const SWEEP_ABOVE: usize = 65_536;

/// A budget: `per_second` requests a second sustained, bursts of `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

pub struct RateLimits {
    read: Option<DefaultKeyedRateLimiter<RateKey>>,
    write: Option<DefaultKeyedRateLimiter<RateKey>>,
    clock: DefaultClock,
}

fn limiter(rate: Option<Rate>) -> Option<DefaultKeyedRateLimiter<RateKey>> {
    let rate = rate?;
    let per_second = NonZeroU32::new(rate.per_second)?;
    let burst = NonZeroU32::new(rate.burst.max(1))?;
    Some(RateLimiter::keyed(
        Quota::per_second(per_second).allow_burst(burst),
    ))
}

impl RateLimits {
    /// `None` (or a rate of 0 a second) leaves that budget unlimited.
    pub fn new(read: Option<Rate>, write: Option<Rate>) -> Self {
        Self {
            read: limiter(read),
            write: limiter(write),
            clock: DefaultClock::default(),
        }
    }

    /// Spends one request of `budget` for `key`; `Err(wait)` when it is used up.
    pub fn check(&self, budget: Budget, key: RateKey) -> Result<(), Duration> {
        let limiter = match budget {
            Budget::Read => &self.read,
            Budget::Write => &self.write,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if limiter.len() > SWEEP_ABOVE {
            limiter.retain_recent();
        }
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_429_with_a_wait_per_key_and_budget() {
        let limits = RateLimits::new(
            Some(Rate {
                per_second: 1,
                burst: 3,
            }),
            None,
        );
        let key = RateKey::Token(0);
        for _ in 0..3 {
            assert_eq!(limits.check(Budget::Read, key), Ok(()));
        }
        let wait = limits.check(Budget::Read, key).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(limits.check(Budget::Read, RateKey::Token(1)), Ok(()));
        for _ in 0..100 {
            assert_eq!(limits.check(Budget::Write, key), Ok(()), "writes unlimited");
        }
    }

    #[test]
    fn zero_means_unlimited() {
        let limits = RateLimits::new(
            Some(Rate {
                per_second: 0,
                burst: 0,
            }),
            None,
        );
        let key = RateKey::Client("192.0.2.1".parse().unwrap());
        for _ in 0..1000 {
            assert_eq!(limits.check(Budget::Read, key), Ok(()));
        }
    }
}
