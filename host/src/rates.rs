//! Rates a tenant's calls share: today, outbound HTTP requests per minute.
//!
//! A per-call budget ([`crate::Limits::max_outbound_requests`]) bounds one call; a tenant's
//! plan also bounds how many requests all its calls together send per minute, whichever plugin
//! sends them. [`TenantRates`] keeps one token bucket per tenant: it holds at most a minute's
//! worth of requests and refills continuously at the per-minute rate, so a tenant may burst up
//! to its rate and then goes on at the rate. Arithmetic is in whole micro-tokens, so no
//! rounding lets a request through that the rate does not allow.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One request, in micro-tokens.
const TOKEN: u128 = 1_000_000;

/// Microseconds in the rate's period (a minute).
const PERIOD_US: u128 = 60_000_000;

/// A tenant's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Micro-tokens available at `at`.
    micro_tokens: u128,
    /// When `micro_tokens` was last brought up to date.
    at: Instant,
}

/// Token buckets of every tenant that has sent a request. Shared by all calls of a host.
#[derive(Debug, Default)]
pub struct TenantRates {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl TenantRates {
    /// No tenant has sent anything yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one request from `tenant`'s bucket at `per_minute`, at time `now`. `Err` carries
    /// how long until the next request would be allowed; nothing is taken then. A rate of 0
    /// allows nothing (the wait is a full minute).
    pub fn try_take(&self, tenant: &str, per_minute: u32, now: Instant) -> Result<(), Duration> {
        let rate = u128::from(per_minute);
        if rate == 0 {
            return Err(Duration::from_secs(60));
        }
        let capacity = rate * TOKEN;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(tenant.to_owned()).or_insert(Bucket {
            micro_tokens: capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_micros();
        // `rate` tokens per PERIOD_US microseconds, in micro-tokens.
        let refill = elapsed.saturating_mul(rate) * TOKEN / PERIOD_US;
        bucket.micro_tokens = bucket.micro_tokens.saturating_add(refill).min(capacity);
        bucket.at = now.max(bucket.at);
        if bucket.micro_tokens >= TOKEN {
            bucket.micro_tokens -= TOKEN;
            Ok(())
        } else {
            let missing = TOKEN - bucket.micro_tokens;
            // Round up: waiting this long is always enough.
            let wait_us = (missing * PERIOD_US).div_ceil(rate * TOKEN);
            Err(Duration::from_micros(
                u64::try_from(wait_us).unwrap_or(u64::MAX),
            ))
        }
    }

    /// Forgets `tenant`'s bucket (it starts full again).
    pub fn forget(&self, tenant: &str) {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_allows_a_minute_of_requests_then_waits() {
        let rates = TenantRates::new();
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(rates.try_take("a", 3, start), Ok(()));
        }
        let wait = rates.try_take("a", 3, start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20));
        // A third of a minute later, exactly one more.
        let later = start + Duration::from_secs(20);
        assert_eq!(rates.try_take("a", 3, later), Ok(()));
        assert!(rates.try_take("a", 3, later).is_err());
    }

    #[test]
    fn tenants_have_their_own_buckets() {
        let rates = TenantRates::new();
        let now = Instant::now();
        assert_eq!(rates.try_take("a", 1, now), Ok(()));
        assert!(rates.try_take("a", 1, now).is_err());
        assert_eq!(rates.try_take("b", 1, now), Ok(()));
    }

    #[test]
    fn refill_never_passes_the_capacity() {
        let rates = TenantRates::new();
        let start = Instant::now();
        assert_eq!(rates.try_take("a", 2, start), Ok(()));
        let much_later = start + Duration::from_secs(3600);
        assert_eq!(rates.try_take("a", 2, much_later), Ok(()));
        assert_eq!(rates.try_take("a", 2, much_later), Ok(()));
        assert!(rates.try_take("a", 2, much_later).is_err());
    }

    #[test]
    fn partial_refill_gives_the_remaining_wait() {
        let rates = TenantRates::new();
        let start = Instant::now();
        assert_eq!(rates.try_take("a", 60, start), Ok(()));
        for _ in 0..59 {
            assert_eq!(rates.try_take("a", 60, start), Ok(()));
        }
        let wait = rates
            .try_take("a", 60, start + Duration::from_millis(400))
            .unwrap_err();
        assert_eq!(wait, Duration::from_millis(600));
    }

    #[test]
    fn a_zero_rate_allows_nothing_and_forget_refills() {
        let rates = TenantRates::new();
        let now = Instant::now();
        assert!(rates.try_take("a", 0, now).is_err());
        assert_eq!(rates.try_take("a", 1, now), Ok(()));
        assert!(rates.try_take("a", 1, now).is_err());
        rates.forget("a");
        assert_eq!(rates.try_take("a", 1, now), Ok(()));
    }
}
