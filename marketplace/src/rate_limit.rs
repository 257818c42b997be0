//! Per-tenant API rate limits: a token bucket per tenant, sized from its plan's
//! `api_requests_per_minute`, in front of every `/v1/tenants/{tenant}…` route; the entrances
//! that run plugin code are counted by their admission gate instead ([`crate::admission`]),
//! against the same buckets.
//!
//! Only requests that authenticate and may see the tenant are counted, so nobody can spend a
//! tenant's requests by calling its routes with bad or foreign credentials; operators are not
//! limited. Buckets live in memory (per server process); tenants and plans come from the
//! database's short read cache ([`crate::db::cache`]).
//!
//! On PostgreSQL, where several processes may serve one deployment, a request also needs a
//! request of the tenant's deployment-wide rate: each process leases slices of every minute
//! window from the database ([`crate::rate_leases`]), so all processes together admit at most
//! the plan's rate per window ([`plinth_host::rates::shared`] states the bound and what
//! happens when the database cannot answer). On SQLite, one process being the whole
//! deployment, the bucket alone decides, as it always has.

use std::sync::Arc;
use std::time::{Duration, Instant};

use plinth_host::rates::window::wall_clock_ms;
use plinth_host::rates::{RateKind, RateLeases, SharedRates};

use dashmap::DashMap;

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::Principal;
use crate::db::{Backend, Db};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tenants::{self, TenantRole};

/// A token bucket: holds up to `capacity` tokens, refilled continuously at `capacity` per
/// minute; each request takes one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `per_minute` tokens (at least 1) at `now`.
    pub fn new(per_minute: u64, now: Instant) -> TokenBucket {
        let capacity = per_minute.max(1) as f64;
        TokenBucket {
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes one token at `now`, refilling first; `Err` holds how long until one is there.
    /// `per_minute` resizes the bucket when the plan changed (tokens are capped to it).
    ///
    /// # Errors
    ///
    /// The wait until the next token when the bucket is empty.
    pub fn try_take(&mut self, per_minute: u64, now: Instant) -> Result<(), Duration> {
        self.capacity = per_minute.max(1) as f64;
        let rate_per_sec = self.capacity / 60.0;
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate_per_sec).min(self.capacity);
        self.last = now.max(self.last);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate_per_sec))
        }
    }

    /// Gives back a token taken for a request that was refused after all, up to the size.
    pub fn put_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.capacity);
    }
}

/// Every tenant's bucket, and its deployment-wide rate when processes share one.
#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Tenant id → bucket, sharded: tenants' requests rarely wait for each other.
    buckets: DashMap<String, TokenBucket>,
    /// The deployment-wide rates, leased from the store all processes share.
    shared: Option<SharedRates>,
}

impl RateLimiter {
    /// An empty limiter of this process alone.
    pub fn new() -> RateLimiter {
        RateLimiter::default()
    }

    /// An empty limiter whose rates also hold across every process leasing from `leases`.
    pub fn shared(leases: Arc<dyn RateLeases>) -> RateLimiter {
        RateLimiter {
            shared: Some(SharedRates::new(leases)),
            ..RateLimiter::default()
        }
    }

    /// The limiter for a server on `db`: shared through it on PostgreSQL, which several
    /// processes may serve; this process's alone on SQLite.
    pub fn for_db(db: &Db) -> RateLimiter {
        match db.backend() {
            Backend::Postgres => {
                RateLimiter::shared(Arc::new(crate::rate_leases::DbLeases::new(db.clone())))
            }
            Backend::Sqlite => RateLimiter::new(),
        }
    }

    /// Admits one request of `tenant_id` at `per_minute`: a token of its bucket
    /// ([`RateLimiter::check`]) and, when rates are shared, a request of this minute's window
    /// across the deployment.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] naming the limit, with the seconds until a request is allowed
    /// (the end of the window when the deployment used it up).
    pub async fn admit(
        &self,
        tenant_id: &str,
        slug: &str,
        per_minute: u64,
        now: Instant,
    ) -> Result<()> {
        self.check(tenant_id, slug, per_minute, now)?;
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let taken = shared
            .take(tenant_id, RateKind::Api, per_minute, wall_clock_ms())
            .await;
        taken.map_err(|wait| {
            if let Some(mut bucket) = self.buckets.get_mut(tenant_id) {
                bucket.put_back();
            }
            limited(slug, per_minute, wait)
        })
    }

    /// Gives the shared store back the requests this process leased and did not spend (at
    /// shutdown); returns how many went back.
    pub async fn release(&self) -> u64 {
        match &self.shared {
            Some(shared) => shared.release(wall_clock_ms()).await,
            None => 0,
        }
    }

    /// Takes one request from `tenant_id`'s bucket, sized `per_minute`.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] naming the limit, with the seconds until a request is allowed.
    pub fn check(&self, tenant_id: &str, slug: &str, per_minute: u64, now: Instant) -> Result<()> {
        let taken = self
            .buckets
            .entry(tenant_id.to_owned())
            .or_insert_with(|| TokenBucket::new(per_minute, now))
            .try_take(per_minute, now);
        taken.map_err(|wait| limited(slug, per_minute, wait))
    }
}

/// The refusal of a request of `slug`'s over `per_minute`, allowed again after `wait`.
fn limited(slug: &str, per_minute: u64, wait: Duration) -> Error {
    Error::RateLimited {
        message: format!(
            "tenant {slug:?} is over its plan's limit of {per_minute} API requests per minute"
        ),
        retry_after_secs: wait.as_secs().saturating_add(1),
    }
}

/// The tenant slug of a `/v1/tenants/{slug}…` path.
fn tenant_slug(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v1/tenants/")?;
    let slug = rest.split('/').next().unwrap_or_default();
    (!slug.is_empty()).then_some(slug)
}

/// Middleware: counts each authenticated request to a tenant's routes against its bucket;
/// answers 429 `rate_limited` with `Retry-After` when it is empty. Anything the handler would
/// refuse (no credentials, unknown tenant, someone else's tenant) passes through uncounted so
/// the handler answers it as usual.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if crate::admission::is_gated(request.method(), path) {
        return next.run(request).await;
    }
    let Some(slug) = tenant_slug(path).map(str::to_owned) else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    let principal =
        <Principal as FromRequestParts<AppState>>::from_request_parts(&mut parts, &state).await;
    let Ok(principal) = principal else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    // The handler's `Principal` extractor takes it from here instead of authenticating again.
    parts.extensions.insert(principal.clone());
    let request = Request::from_parts(parts, body);
    if principal.is_operator() {
        return next.run(request).await;
    }
    let Ok(tenant) = tenants::access(state.db(), &principal, &slug, TenantRole::Readonly).await
    else {
        return next.run(request).await;
    };
    let limit = match tenants::plan(state.db(), &tenant.plan).await {
        Ok(plan) => u64::try_from(plan.api_requests_per_minute).unwrap_or(1),
        Err(e) => return e.into_response(),
    };
    match state
        .rate_limiter()
        .admit(&tenant.id, &tenant.slug, limit, Instant::now())
        .await
    {
        Ok(()) => next.run(request).await,
        Err(e) => {
            tracing::info!(tenant = %tenant.id, limit, "API rate limit reached");
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_size_then_refills_over_the_minute() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(5, start);
        for _ in 0..5 {
            assert!(bucket.try_take(5, start).is_ok());
        }
        let wait = bucket.try_take(5, start).unwrap_err();
        // One token every 12 s at 5 per minute.
        assert_eq!(wait.as_secs(), 12);
        assert!(bucket.try_take(5, start + Duration::from_secs(11)).is_err());
        assert!(bucket.try_take(5, start + Duration::from_secs(12)).is_ok());
        assert!(bucket.try_take(5, start + Duration::from_secs(12)).is_err());
        // A long pause refills to the size, not beyond.
        let later = start + Duration::from_secs(3600);
        for _ in 0..5 {
            assert!(bucket.try_take(5, later).is_ok());
        }
        assert!(bucket.try_take(5, later).is_err());
    }

    #[test]
    fn a_smaller_plan_caps_the_tokens() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100, start);
        assert!(bucket.try_take(2, start).is_ok());
        assert!(bucket.try_take(2, start).is_ok());
        assert!(bucket.try_take(2, start).is_err());
    }

    #[test]
    fn tenants_have_their_own_buckets() {
        let limiter = RateLimiter::new();
        let now = Instant::now();
        assert!(limiter.check("a", "a", 1, now).is_ok());
        let refused = limiter.check("a", "a", 1, now).unwrap_err();
        assert_eq!(refused.code(), "rate_limited");
        assert!(
            matches!(refused, Error::RateLimited { retry_after_secs, .. } if retry_after_secs >= 1)
        );
        assert!(limiter.check("b", "b", 1, now).is_ok());
    }

    #[tokio::test]
    async fn shared_limiters_hold_the_rate_between_them_per_window() {
        let leases: Arc<dyn RateLeases> = Arc::new(plinth_host::rates::MemoryLeases::new());
        let processes: Vec<_> = (0..3)
            .map(|_| RateLimiter::shared(Arc::clone(&leases)))
            .collect();
        let now = Instant::now();
        let mut admitted = 0;
        let mut refused = None;
        for i in 0..60 {
            match processes[i % 3].admit("a", "a", 20, now).await {
                Ok(()) => admitted += 1,
                Err(e) => refused = Some(e),
            }
        }
        // 20 per window; a window's end during the loop could let up to 20 more through.
        assert!((20..=40).contains(&admitted), "{admitted}");
        let refused = refused.unwrap();
        assert_eq!(refused.code(), "rate_limited");
        assert!(refused.to_string().contains("20 API requests per minute"));
        // Refused by the window, the bucket keeps its token: each process took at most 20.
        assert!(processes[0].check("a", "a", 20, now).is_ok());
    }

    #[test]
    fn only_tenant_paths_have_a_slug() {
        assert_eq!(tenant_slug("/v1/tenants/acme/usage"), Some("acme"));
        assert_eq!(tenant_slug("/v1/tenants/acme"), Some("acme"));
        assert_eq!(tenant_slug("/v1/tenants"), None);
        assert_eq!(tenant_slug("/v1/tenants/"), None);
        assert_eq!(tenant_slug("/v1/plans"), None);
    }
}
