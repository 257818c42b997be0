//! Where deployment-wide rates are counted: a [`RateLeases`] store shared by every process.
//!
//! The host does not know the database: the marketplace implements the trait over PostgreSQL
//! and hands it to the host it builds ([`crate::HostConfig::rate_leases`]). [`MemoryLeases`]
//! is the same rule in memory, for tests.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use super::window::grant;

/// Which of a tenant's rates a lease is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateKind {
    /// API requests (`api_requests_per_minute`).
    Api,
    /// Plugins' outbound HTTP requests (`outbound_requests_per_minute`).
    Outbound,
}

impl RateKind {
    /// `api` or `outbound`: how the store names it.
    pub fn as_str(self) -> &'static str {
        match self {
            RateKind::Api => "api",
            RateKind::Outbound => "outbound",
        }
    }
}

impl fmt::Display for RateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rate of one tenant in one window: what the store counts separately.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaseKey {
    /// The tenant's id.
    pub tenant: String,
    /// Which rate.
    pub kind: RateKind,
    /// The window's start, in ms since the epoch ([`super::window::window_of`]).
    pub window: i64,
}

/// The store could not be reached or refused the query.
#[derive(Debug, thiserror::Error)]
#[error("rate lease store: {message}")]
pub struct LeaseError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl LeaseError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        LeaseError {
            message: message.into(),
            source: None,
        }
    }

    /// An error with this message, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        LeaseError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// The future a [`RateLeases`] method returns (boxed, so the trait is usable as `dyn`).
pub type LeaseFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LeaseError>> + Send + 'a>>;

/// A store of leased requests that every process of a deployment shares.
///
/// Implementations must make [`lease`](RateLeases::lease) atomic: however many processes lease
/// the same key at once, the sum of what they are granted never passes the limit they pass
/// ([`super::window::grant`] is the rule).
pub trait RateLeases: Send + Sync + fmt::Debug + 'static {
    /// Leases up to `slice` requests of `key`'s window under `limit`; returns how many were
    /// granted (0 when the window's limit is leased out).
    ///
    /// # Errors
    ///
    /// [`LeaseError`] when the store cannot answer; nothing was leased then.
    fn lease<'a>(&'a self, key: &'a LeaseKey, slice: u64, limit: u64) -> LeaseFuture<'a, u64>;

    /// Gives `unused` requests of `key`'s window back, for other processes to lease.
    ///
    /// # Errors
    ///
    /// [`LeaseError`] when the store cannot answer; the requests stay leased then (the window
    /// ends anyway).
    fn give_back<'a>(&'a self, key: &'a LeaseKey, unused: u64) -> LeaseFuture<'a, ()>;
}

/// [`RateLeases`] in memory: the rule of the shared store for the processes of one test.
#[derive(Debug, Default)]
pub struct MemoryLeases {
    leased: Mutex<HashMap<LeaseKey, u64>>,
}

impl MemoryLeases {
    /// Nothing leased.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many requests of `key`'s window are leased out now.
    pub fn leased(&self, key: &LeaseKey) -> u64 {
        self.leased
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

impl RateLeases for MemoryLeases {
    fn lease<'a>(&'a self, key: &'a LeaseKey, slice: u64, limit: u64) -> LeaseFuture<'a, u64> {
        let mut leased = self.leased.lock().unwrap_or_else(PoisonError::into_inner);
        let count = leased.entry(key.clone()).or_insert(0);
        let granted = grant(*count, slice, limit);
        *count += granted;
        Box::pin(std::future::ready(Ok(granted)))
    }

    fn give_back<'a>(&'a self, key: &'a LeaseKey, unused: u64) -> LeaseFuture<'a, ()> {
        if let Some(count) = self
            .leased
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(key)
        {
            *count = count.saturating_sub(unused);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}
