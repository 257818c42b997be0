//! The state every handler shares: database, settings, the marketplace's signing key, metrics.

use std::sync::{Arc, OnceLock};

use plinth_host::Host;
use plinth_package::{PublicKey, SecretKey};

use crate::auth::throttle::Throttle;
use crate::clock::Clock;
use crate::db::Db;
use crate::rate_limit::RateLimiter;
use crate::runs::Recorder;
use crate::secrets::SecretsKey;
use crate::server::metrics::Metrics;
use crate::settings::Settings;

/// Shared state of the marketplace. Cloning is cheap.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    db: Db,
    settings: Settings,
    signing_key: SecretKey,
    metrics: Metrics,
    rate_limiter: RateLimiter,
    throttle: Throttle,
    clock: Clock,
    runtime: Option<Runtime>,
    run_recorder: OnceLock<Arc<Recorder>>,
    queue_wake: Arc<tokio::sync::Notify>,
}

/// The data plane a marketplace drives: the host that runs installs, and the key that seals
/// their secrets.
#[derive(Debug)]
pub struct Runtime {
    /// The host.
    pub host: Arc<Host>,
    /// Seals and opens configuration secrets.
    pub secrets: SecretsKey,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.0.db)
            .field("settings", &self.0.settings)
            .field("signing_key", &self.0.signing_key.public_key())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `db`, countersigning approvals with `signing_key`.
    /// Without a host, install and event routes answer 503.
    pub fn new(db: Db, settings: Settings, signing_key: SecretKey) -> AppState {
        AppState::build(db, settings, signing_key, None)
    }

    /// State that also drives `runtime`'s host: installs run there.
    pub fn with_runtime(
        db: Db,
        settings: Settings,
        signing_key: SecretKey,
        runtime: Runtime,
    ) -> AppState {
        AppState::build(db, settings, signing_key, Some(runtime))
    }

    fn build(
        db: Db,
        settings: Settings,
        signing_key: SecretKey,
        runtime: Option<Runtime>,
    ) -> AppState {
        let clock = Clock::new();
        let metrics = Metrics::with_tenant_labels(settings.metrics_per_tenant);
        let rate_limiter = RateLimiter::for_db(&db);
        AppState(Arc::new(Inner {
            throttle: Throttle::new(&settings.throttle, clock.clone()),
            clock,
            db,
            settings,
            signing_key,
            metrics,
            rate_limiter,
            runtime,
            run_recorder: OnceLock::new(),
            queue_wake: Arc::default(),
        }))
    }

    /// The host and secrets key.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Unavailable`] when this marketplace runs without a host.
    pub fn runtime(&self) -> crate::error::Result<&Runtime> {
        self.0
            .runtime
            .as_ref()
            .ok_or(crate::error::Error::Unavailable(
                "this server runs no host; installs and events need `plinth serve` with a host",
            ))
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.0.db
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// The key approvals are countersigned with.
    pub fn signing_key(&self) -> &SecretKey {
        &self.0.signing_key
    }

    /// The public half of [`AppState::signing_key`]: what hosts trust.
    pub fn public_key(&self) -> PublicKey {
        self.0.signing_key.public_key()
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The log-in and sign-up throttle (this process's).
    pub fn throttle(&self) -> &Throttle {
        &self.0.throttle
    }

    /// The monotonic clock waits are measured on; tests advance it instead of sleeping.
    pub fn clock(&self) -> &Clock {
        &self.0.clock
    }

    /// Where this process's host records runs, once the server has started it.
    pub fn run_recorder(&self) -> Option<&Arc<Recorder>> {
        self.0.run_recorder.get()
    }

    /// Sets the run recorder; `false` (and the first kept) if one was set already.
    pub(crate) fn set_run_recorder(&self, recorder: Arc<Recorder>) -> bool {
        self.0.run_recorder.set(recorder).is_ok()
    }

    /// Wakes this process's queue worker ([`crate::queue::worker`]).
    pub fn queue_wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.0.queue_wake
    }

    /// The tenants' API rates: this process's buckets, and on PostgreSQL the deployment-wide
    /// rates leased from the database.
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.0.rate_limiter
    }
}
