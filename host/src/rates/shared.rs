//! [`SharedRates`]: one process's side of a deployment-wide rate.
//!
//! Per (tenant, kind) the process holds a slice of the current window's requests, leased from
//! the shared [`RateLeases`] store. While the slice has requests left it answers alone; when
//! it is empty it leases the next one (one round trip per slice, [`slice_size`] being a
//! twentieth of the limit), and once the store says the window is leased out it refuses
//! without asking again until the window ends.
//!
//! **The bound.** The store never grants more of a window than the limit, and a request only
//! spends a request leased for the window it is in (what is left of a slice when its window
//! ends is dropped). So across all processes, **at most `limit` requests are admitted per
//! (tenant, kind) per window**: never over, whatever the number of processes. Leases are
//! not spread evenly, so a process may sit on up to `slice − 1` unspent requests while
//! others are refused: with demand on every one of N processes, at least
//! `limit − N × (slice − 1)` are admitted per window. [`SharedRates::release`] gives unspent
//! requests back at shutdown.
//!
//! **When the store cannot answer** (an error, or no answer within [`LEASE_TIMEOUT`]) the
//! process fails open: it lets requests through for [`STORE_RETRY`] before asking again, so
//! a tenant is held only by the process's own bucket in that time (up to N times the rate
//! across N processes) and its requests do not each wait for a dead database. A warning is
//! logged. An outage of the rate store should not become an outage of every tenant's API.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::Mutex;

use super::leases::{LeaseKey, RateKind, RateLeases};
use super::window::{slice_size, until_window_end, window_of};

/// How long a lease may take before the process stops waiting and fails open.
pub const LEASE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long after a failed lease the process answers without the store.
pub const STORE_RETRY: Duration = Duration::from_secs(5);

/// What a process holds of one (tenant, kind).
#[derive(Debug, Default)]
struct Slice {
    /// The window the requests are of.
    window: i64,
    /// Leased requests not spent yet.
    left: u64,
    /// The store said this window is leased out under this limit: refuse without asking.
    used_up_at: Option<u64>,
}

/// This process's slices of every tenant's deployment-wide rates. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct SharedRates {
    leases: Arc<dyn RateLeases>,
    slices: DashMap<(String, RateKind), Arc<Mutex<Slice>>>,
    /// Until when (wall-clock ms) the store is not asked, after it failed.
    store_down_until: AtomicI64,
}

impl SharedRates {
    /// Slices leased from `leases`, the store every process of the deployment shares.
    pub fn new(leases: Arc<dyn RateLeases>) -> Self {
        SharedRates {
            leases,
            slices: DashMap::new(),
            store_down_until: AtomicI64::new(i64::MIN),
        }
    }

    /// Takes one request of `tenant`'s `kind` rate, `limit` per window, at `now_ms` (wall
    /// clock, [`super::window::wall_clock_ms`]). `Err` holds how long until the window ends
    /// when its limit is used up across the deployment.
    pub async fn take(
        &self,
        tenant: &str,
        kind: RateKind,
        limit: u64,
        now_ms: i64,
    ) -> Result<(), Duration> {
        let slot = Arc::clone(
            self.slices
                .entry((tenant.to_owned(), kind))
                .or_default()
                .value(),
        );
        // Held across the lease: the tenant's other requests here wait for it rather than
        // each leasing a slice of their own.
        let mut slice = slot.lock().await;
        let window = window_of(now_ms);
        if slice.window != window {
            *slice = Slice {
                window,
                ..Slice::default()
            };
        }
        if slice.left > 0 {
            slice.left -= 1;
            return Ok(());
        }
        let refused = Duration::from_millis(until_window_end(now_ms).unsigned_abs());
        if slice.used_up_at == Some(limit) {
            return Err(refused);
        }
        if now_ms < self.store_down_until.load(Ordering::Relaxed) {
            return Ok(());
        }
        let key = LeaseKey {
            tenant: tenant.to_owned(),
            kind,
            window,
        };
        let leased = tokio::time::timeout(
            LEASE_TIMEOUT,
            self.leases.lease(&key, slice_size(limit), limit),
        )
        .await;
        match leased {
            Ok(Ok(0)) => {
                slice.used_up_at = Some(limit);
                Err(refused)
            }
            Ok(Ok(granted)) => {
                slice.used_up_at = None;
                slice.left = granted - 1;
                Ok(())
            }
            failed => {
                let error = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => format!("no answer within {LEASE_TIMEOUT:?}"),
                };
                let retry_ms = i64::try_from(STORE_RETRY.as_millis()).unwrap_or(i64::MAX);
                self.store_down_until
                    .store(now_ms.saturating_add(retry_ms), Ordering::Relaxed);
                tracing::warn!(
                    %error,
                    %kind,
                    tenant,
                    "cannot lease rate from the shared store; each process holds tenants to \
                     its own rate until it answers"
                );
                Ok(())
            }
        }
    }

    /// Gives every unspent request of the window at `now_ms` back to the store (at shutdown,
    /// so the other processes can have them); returns how many went back.
    pub async fn release(&self, now_ms: i64) -> u64 {
        let window = window_of(now_ms);
        let slots: Vec<_> = self
            .slices
            .iter()
            .map(|entry| (entry.key().clone(), Arc::clone(entry.value())))
            .collect();
        let mut released = 0;
        for ((tenant, kind), slot) in slots {
            let mut slice = slot.lock().await;
            if slice.window != window || slice.left == 0 {
                continue;
            }
            let key = LeaseKey {
                tenant,
                kind,
                window,
            };
            match tokio::time::timeout(LEASE_TIMEOUT, self.leases.give_back(&key, slice.left)).await
            {
                Ok(Ok(())) => {
                    released += slice.left;
                    slice.left = 0;
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "cannot give unspent rate back; it lapses with its window");
                }
                Err(_) => {
                    tracing::warn!("giving unspent rate back timed out; it lapses with its window");
                }
            }
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::super::leases::{LeaseError, LeaseFuture, MemoryLeases};
    use super::*;

    const T0: i64 = 1_800_000_000_000; // a window's start

    fn processes(n: usize, leases: &Arc<MemoryLeases>) -> Vec<SharedRates> {
        (0..n)
            .map(|_| SharedRates::new(Arc::clone(leases) as Arc<dyn RateLeases>))
            .collect()
    }

    #[tokio::test]
    async fn three_processes_share_one_limit_per_window() {
        let leases = Arc::new(MemoryLeases::new());
        let procs = processes(3, &leases);
        let mut admitted = 0;
        for i in 0..600 {
            if procs[i % 3]
                .take("t", RateKind::Api, 100, T0 + 10)
                .await
                .is_ok()
            {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 100);
        // Another tenant and the other kind are counted apart.
        assert!(procs[0].take("u", RateKind::Api, 100, T0).await.is_ok());
        assert!(
            procs[0]
                .take("t", RateKind::Outbound, 100, T0)
                .await
                .is_ok()
        );
        // The next window starts afresh.
        assert!(
            procs[1]
                .take("t", RateKind::Api, 100, T0 + 60_000)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn refusals_say_when_the_window_ends_and_ask_the_store_once() {
        let leases = Arc::new(MemoryLeases::new());
        let procs = processes(1, &leases);
        assert!(procs[0].take("t", RateKind::Api, 1, T0).await.is_ok());
        let wait = procs[0].take("t", RateKind::Api, 1, T0 + 45_000).await;
        assert_eq!(wait, Err(Duration::from_secs(15)));
        // A raised limit is asked for again.
        assert!(
            procs[0]
                .take("t", RateKind::Api, 2, T0 + 45_000)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn unspent_requests_go_back_at_release() {
        let leases = Arc::new(MemoryLeases::new());
        let procs = processes(2, &leases);
        // 100 per window: slices of 5.
        assert!(procs[0].take("t", RateKind::Api, 100, T0).await.is_ok());
        let key = LeaseKey {
            tenant: "t".to_owned(),
            kind: RateKind::Api,
            window: T0,
        };
        assert_eq!(leases.leased(&key), 5);
        assert_eq!(procs[0].release(T0 + 1).await, 4);
        assert_eq!(leases.leased(&key), 1);
        // Nothing of an ended window goes back.
        assert!(procs[1].take("t", RateKind::Api, 100, T0).await.is_ok());
        assert_eq!(procs[1].release(T0 + 60_000).await, 0);
    }

    /// A store that fails at once, or never answers when `hung`.
    #[derive(Debug)]
    struct Down {
        hung: bool,
    }

    impl RateLeases for Down {
        fn lease<'a>(&'a self, _: &'a LeaseKey, _: u64, _: u64) -> LeaseFuture<'a, u64> {
            if self.hung {
                Box::pin(std::future::pending())
            } else {
                Box::pin(async { Err(LeaseError::new("connection refused")) })
            }
        }

        fn give_back<'a>(&'a self, _: &'a LeaseKey, _: u64) -> LeaseFuture<'a, ()> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test]
    async fn an_unreachable_store_fails_open_and_is_asked_again_later() {
        let rates = SharedRates::new(Arc::new(Down { hung: false }));
        for _ in 0..10 {
            assert!(rates.take("t", RateKind::Api, 1, T0).await.is_ok());
        }
        assert_eq!(rates.store_down_until.load(Ordering::Relaxed), T0 + 5_000);
        assert!(rates.take("t", RateKind::Api, 1, T0 + 6_000).await.is_ok());
        assert_eq!(rates.store_down_until.load(Ordering::Relaxed), T0 + 11_000);

        // A store that does not answer is given up on after the timeout.
        let rates = SharedRates::new(Arc::new(Down { hung: true }));
        let started = std::time::Instant::now();
        assert!(rates.take("t", RateKind::Api, 1, T0).await.is_ok());
        assert!(started.elapsed() >= LEASE_TIMEOUT);
        assert!(rates.take("t", RateKind::Api, 1, T0 + 1).await.is_ok());
        assert!(started.elapsed() < LEASE_TIMEOUT * 2);
    }
}
