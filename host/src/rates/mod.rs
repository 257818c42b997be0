//! Rates a tenant's calls share: today, outbound HTTP requests per minute.
//!
//! A per-call budget ([`crate::Limits::max_outbound_requests`]) bounds one call; a tenant's
//! plan also bounds how many requests all its calls together send per minute, whichever plugin
//! sends them. [`TenantRates`] keeps one token bucket per tenant: it holds at most a minute's
//! worth of requests and refills continuously at the per-minute rate, so a tenant may burst up
//! to its rate and then goes on at the rate. Arithmetic is in whole micro-tokens, so no
//! rounding lets a request through that the rate does not allow.
//!
//! A bucket is per process. When several processes serve a deployment, the rate must hold for
//! all of them together: [`TenantRates::with_shared`] adds a [`SharedRates`] that leases slices
//! of each window's requests from a store every process shares ([`leases`], [`window`],
//! [`shared`]); a request then needs both a token of the bucket and a leased request.

pub mod leases;
pub mod shared;
pub mod window;

pub use leases::{LeaseError, LeaseFuture, LeaseKey, MemoryLeases, RateKind, RateLeases};
pub use shared::SharedRates;

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
    /// The deployment-wide part, when several processes share the rates.
    shared: Option<SharedRates>,
}

impl TenantRates {
    /// No tenant has sent anything yet; the rates are this process's alone.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rates that also hold across every process sharing `shared`'s store: see
    /// [`TenantRates::take_shared`].
    pub fn with_shared(shared: SharedRates) -> Self {
        TenantRates {
            shared: Some(shared),
            ..Self::default()
        }
    }

    /// Takes one request of `tenant`'s deployment-wide outbound rate (`per_minute` per
    /// window), after [`TenantRates::try_take`] let it through; always `Ok` without a shared
    /// store. `Err` carries how long until the window ends; give the bucket's token back with
    /// [`TenantRates::put_back`] then.
    pub async fn take_shared(&self, tenant: &str, per_minute: u32) -> Result<(), Duration> {
        match &self.shared {
            None => Ok(()),
            Some(shared) => {
                shared
                    .take(
                        tenant,
                        RateKind::Outbound,
                        u64::from(per_minute),
                        window::wall_clock_ms(),
                    )
                    .await
            }
        }
    }

    /// Gives back the token [`TenantRates::try_take`] took for a request that was refused
    /// after all (by the shared rate), up to the bucket's size at `per_minute`.
    pub fn put_back(&self, tenant: &str, per_minute: u32) {
        let capacity = u128::from(per_minute) * TOKEN;
        if let Some(bucket) = self
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(tenant)
        {
            bucket.micro_tokens = bucket.micro_tokens.saturating_add(TOKEN).min(capacity);
        }
    }

    /// Gives the shared store back what this process leased and did not spend (at shutdown);
    /// returns how many requests went back.
    pub async fn release(&self) -> u64 {
        match &self.shared {
            None => 0,
            Some(shared) => shared.release(window::wall_clock_ms()).await,
        }
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
    fn a_token_put_back_is_there_again_up_to_the_size() {
        let rates = TenantRates::new();
        let now = Instant::now();
        assert_eq!(rates.try_take("a", 2, now), Ok(()));
        assert_eq!(rates.try_take("a", 2, now), Ok(()));
        rates.put_back("a", 2);
        assert_eq!(rates.try_take("a", 2, now), Ok(()));
        assert!(rates.try_take("a", 2, now).is_err());
        rates.put_back("a", 2);
        rates.put_back("a", 2);
        rates.put_back("a", 2);
        assert_eq!(rates.try_take("a", 2, now), Ok(()));
        assert_eq!(rates.try_take("a", 2, now), Ok(()));
        assert!(rates.try_take("a", 2, now).is_err());
    }

    #[tokio::test]
    async fn a_shared_rate_holds_across_processes() {
        let leases = std::sync::Arc::new(MemoryLeases::new());
        let hosts: Vec<_> = (0..3)
            .map(|_| TenantRates::with_shared(SharedRates::new(leases.clone())))
            .collect();
        let mut sent = 0;
        for i in 0..90 {
            let host = &hosts[i % 3];
            if host.try_take("a", 30, Instant::now()).is_ok() {
                if host.take_shared("a", 30).await.is_ok() {
                    sent += 1;
                } else {
                    host.put_back("a", 30);
                }
            }
        }
        // Within one window (a window boundary in the loop could let up to 60 through).
        assert!((30..=60).contains(&sent), "{sent}");
        assert_eq!(TenantRates::new().take_shared("a", 0).await, Ok(()));
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
