//! Log-in throttling: how many attempts an account and a client address may make.
//!
//! Two keyed GCRA limiters (the `governor` crate): one per account (the sha256 of the
//! lowercased email, whether or not such an account exists, so a refusal tells nothing about
//! existence), one per client address (an IPv6 address counts by its /64, the block one
//! subscriber is usually given). An attempt is counted against the address first, then the
//! account; when either is spent the attempt is refused with 429 `too_many_attempts` and a
//! `Retry-After`, before any password is checked, so a guess made while throttled can never
//! succeed. Sign-ups count against the address only.
//!
//! Buckets live in memory (per server process) and are measured on the state's [`Clock`],
//! which tests move forward instead of sleeping. At most `max_tracked` keys are kept per
//! limiter: when full, keys whose bucket is full again are dropped; if none are, new keys are
//! refused (429) until some are, so memory stays bounded under any flood of addresses or emails.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::error::{Error, Result};

/// How many log-in attempts are allowed; part of [`crate::Settings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Attempts one account may have in a burst.
    pub account_burst: u32,
    /// After a burst, one more attempt per account each this long.
    pub account_every: Duration,
    /// Attempts (log-ins and sign-ups) one client address may make in a burst.
    pub address_burst: u32,
    /// After a burst, one more attempt per address each this long.
    pub address_every: Duration,
    /// The most accounts, and the most addresses, tracked at once.
    pub max_tracked: usize,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            account_burst: 5,
            account_every: Duration::from_secs(60),
            address_burst: 30,
            address_every: Duration::from_secs(2),
            max_tracked: 100_000,
        }
    }
}

impl governor::clock::Clock for Clock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.elapsed())
    }
}

/// A limiter keyed by `K`, on the state's clock.
type Keyed<K> = RateLimiter<K, HashMapStateStore<K>, Clock, NoOpMiddleware<Nanos>>;

/// The key of a client address: an IPv4 address, or the /64 of an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AddressKey(IpAddr);

impl AddressKey {
    fn of(address: IpAddr) -> AddressKey {
        match address.to_canonical() {
            IpAddr::V4(v4) => AddressKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                AddressKey(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        }
    }
}

/// The log-in and sign-up limiters of one server process.
#[derive(Debug)]
pub struct Throttle {
    accounts: Keyed<[u8; 32]>,
    addresses: Keyed<AddressKey>,
    clock: Clock,
    max_tracked: usize,
}

/// The quota of `burst` attempts, one more each `every`.
fn quota(burst: u32, every: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Throttle {
    /// Limiters sized by `settings`, measured on `clock`.
    pub fn new(settings: &ThrottleSettings, clock: Clock) -> Throttle {
        Throttle {
            accounts: RateLimiter::hashmap_with_clock(
                quota(settings.account_burst, settings.account_every),
                clock.clone(),
            ),
            addresses: RateLimiter::hashmap_with_clock(
                quota(settings.address_burst, settings.address_every),
                clock.clone(),
            ),
            clock,
            max_tracked: settings.max_tracked.max(1),
        }
    }

    /// Counts a log-in attempt on the account of `email` from `client` (when known).
    ///
    /// # Errors
    ///
    /// [`Error::TooManyAttempts`] naming which limit (address or account) with the wait.
    pub fn log_in(&self, client: Option<IpAddr>, email: &str) -> Result<()> {
        self.from_address(client)?;
        let account: [u8; 32] = Sha256::digest(email.trim().to_lowercase().as_bytes()).into();
        self.take(&self.accounts, &account, "for this account")
    }

    /// Counts a sign-up (or any other unauthenticated attempt) from `client` (when known).
    ///
    /// # Errors
    ///
    /// [`Error::TooManyAttempts`] with the wait.
    pub fn from_address(&self, client: Option<IpAddr>) -> Result<()> {
        match client {
            Some(address) => self.take(
                &self.addresses,
                &AddressKey::of(address),
                "from your address",
            ),
            None => Ok(()),
        }
    }

    /// Takes one attempt for `key` from `limiter`, keeping the limiter within `max_tracked`.
    fn take<K>(&self, limiter: &Keyed<K>, key: &K, whose: &str) -> Result<()>
    where
        K: std::hash::Hash + Eq + Clone,
    {
        if limiter.len() >= self.max_tracked {
            limiter.retain_recent();
            if limiter.len() >= self.max_tracked {
                tracing::warn!(
                    max_tracked = self.max_tracked,
                    "log-in throttle full; refusing attempts from new clients"
                );
                return Err(too_many(whose, Duration::from_secs(60)));
            }
        }
        limiter
            .check_key(key)
            .map_err(|not_until| too_many(whose, not_until.wait_time_from(self.clock.now())))
    }
}

/// The 429 for attempts `whose`, to retry after `wait` (rounded up to whole seconds).
fn too_many(whose: &str, wait: Duration) -> Error {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let retry_after_secs = secs.max(1);
    Error::TooManyAttempts {
        message: format!("too many attempts {whose}; try again in {retry_after_secs} seconds"),
        retry_after_secs,
    }
}

/// The address a request came from, when the server knows it (it serves with connection
/// info; a router driven without a socket does not).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            account_burst: 3,
            account_every: Duration::from_secs(60),
            address_burst: 5,
            address_every: Duration::from_secs(10),
            max_tracked: 4,
        }
    }

    fn wait_of(error: &Error) -> u64 {
        match error {
            Error::TooManyAttempts {
                retry_after_secs, ..
            } => *retry_after_secs,
            other => panic!("not too_many_attempts: {other:?}"),
        }
    }

    #[test]
    fn an_account_gets_its_burst_then_one_attempt_per_period() {
        let clock = Clock::new();
        let throttle = Throttle::new(&settings(), clock.clone());
        for _ in 0..3 {
            throttle.log_in(None, "Ada@Example.com").unwrap();
        }
        // Case and spaces do not make another account.
        let refused = throttle.log_in(None, " ada@example.com").unwrap_err();
        assert_eq!(refused.code(), "too_many_attempts");
        assert!((59..=60).contains(&wait_of(&refused)), "{refused:?}");
        assert!(throttle.log_in(None, "bob@example.com").is_ok());
        clock.advance(Duration::from_secs(60));
        assert!(throttle.log_in(None, "ada@example.com").is_ok());
        assert!(throttle.log_in(None, "ada@example.com").is_err());
    }

    #[test]
    fn an_address_is_limited_across_accounts_and_ipv6_counts_by_its_64() {
        let throttle = Throttle::new(&settings(), Clock::new());
        let v6 = |last: u16| {
            Some(IpAddr::V6(Ipv6Addr::new(
                0x2001, 0xdb8, 0, 1, 0, 0, 0, last,
            )))
        };
        for n in 0..5 {
            throttle.from_address(v6(n)).unwrap();
        }
        let refused = throttle.log_in(v6(99), "new@example.com").unwrap_err();
        assert!(
            refused.to_string().contains("from your address"),
            "{refused}"
        );
        let other_block = Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1)));
        assert!(throttle.from_address(other_block).is_ok());
    }

    #[test]
    fn the_tracked_keys_stay_bounded() {
        let clock = Clock::new();
        let throttle = Throttle::new(&settings(), clock.clone());
        for n in 0..4 {
            throttle
                .log_in(None, &format!("user{n}@example.com"))
                .unwrap();
        }
        // Four accounts are being throttled: a fifth is refused rather than tracked.
        assert!(throttle.log_in(None, "user4@example.com").is_err());
        assert_eq!(throttle.accounts.len(), 4);
        // Once their buckets are full again they are forgotten and room is made.
        clock.advance(Duration::from_secs(3600));
        assert!(throttle.log_in(None, "user4@example.com").is_ok());
        assert_eq!(throttle.accounts.len(), 1);
    }
}
