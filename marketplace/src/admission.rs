//! The one gate every entrance that runs plugin code passes: events
//! (`POST /v1/tenants/{tenant}/events`) and plugin HTTP (`ANY /p/{tenant}/{plugin}/…`), and
//! whatever entrance comes later.
//!
//! In order: the caller is authenticated (the [`Principal`] extractor), may act for the tenant
//! (a member or the tenant's API key), the tenant is not suspended (402 `payment_required`,
//! [`crate::billing::suspension`]), is within the plan's API rate, and the tenant has
//! invocations left this month. The admitted request then carries what the host enforces per
//! call: the plan's [`EventBudget`] (invocations across all emit hops, each counted against the
//! monthly quota as it starts) and, in each install's limits, the tenant's share of the host's
//! capacity. A call the host refuses before it runs comes back as the same typed errors the
//! gate answers with: 429 `rate_limited` / `quota_exceeded` and 503 `capacity`, each with
//! `Retry-After` ([`refusal`]).

use std::sync::Arc;
use std::time::Instant;

use plinth_host::{EventBudget, InvokeError, QuotaGrant};

use crate::auth::Principal;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tenants::{self, Plan, Tenant, TenantRole};

/// A request the gate let in.
#[derive(Debug)]
pub struct Admitted {
    /// The tenant it acts for.
    pub tenant: Tenant,
    /// The tenant's plan now.
    pub plan: Plan,
    /// The tenant's monthly quota as it stood at the door.
    pub quota: QuotaGrant,
}

impl Admitted {
    /// The budget of one inbound event under the tenant's plan.
    pub fn event_budget(&self) -> Arc<EventBudget> {
        let invocations =
            u32::try_from(self.plan.max_invocations_per_event.max(1)).unwrap_or(u32::MAX);
        Arc::new(EventBudget::new(invocations).with_quota(self.quota))
    }
}

/// Lets a request that will run plugin code for tenant `slug` in, or says why not.
///
/// # Errors
///
/// 401/404 for a caller who may not act for the tenant (as every tenant route); 402
/// `payment_required` for a suspended tenant; 503 when this
/// server runs no host; 429 `rate_limited` past the plan's API rate; 429 `quota_exceeded` when
/// the month's invocations are used; [`Error::Database`].
pub async fn admit(state: &AppState, principal: &Principal, slug: &str) -> Result<Admitted> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Member).await?;
    if let Some(refusal) = crate::billing::suspension::refusal(&tenant) {
        return Err(refusal);
    }
    let runtime = state.runtime()?;
    let plan = tenants::plan(state.db(), &tenant.plan).await?;
    if !principal.is_operator() {
        let per_minute = u64::try_from(plan.api_requests_per_minute).unwrap_or(1);
        state
            .rate_limiter()
            .admit(&tenant.id, &tenant.slug, per_minute, Instant::now())
            .await?;
    }
    let quota =
        crate::usage::quota_grant(state.db(), runtime.host.meter(), &tenant, &plan, now_ms())
            .await?;
    Ok(Admitted {
        tenant,
        plan,
        quota,
    })
}

/// Whether `method` `path` is an entrance of this gate, which counts its requests against the API rate
/// itself (so the rate middleware of the other tenant routes leaves it alone).
pub fn is_gated(method: &axum::http::Method, path: &str) -> bool {
    path.starts_with("/p/")
        || (method == axum::http::Method::POST
            && path
                .strip_prefix("/v1/tenants/")
                .and_then(|rest| rest.split_once('/'))
                .is_some_and(|(slug, rest)| !slug.is_empty() && rest == "events"))
}

/// The answer to a call the host refused before it ran (or ran out of its tenant's rate), if
/// `error` is such a refusal: the same typed errors the gate answers with.
pub fn refusal(error: &InvokeError) -> Option<Error> {
    let retry_after_secs = |ms: u64| ms.div_ceil(1000).max(1);
    match error {
        InvokeError::RateLimited { retry_after_ms, .. } => Some(Error::RateLimited {
            message: error.to_string(),
            retry_after_secs: retry_after_secs(*retry_after_ms),
        }),
        InvokeError::QuotaExceeded { .. } => Some(Error::QuotaExceeded {
            message: error.to_string(),
            retry_after_secs: crate::usage::secs_to_next_month(now_ms()),
        }),
        InvokeError::Capacity { retry_after_ms, .. } => Some(Error::Capacity {
            message: error.to_string(),
            retry_after_secs: retry_after_ms.map(retry_after_secs),
        }),
        _ => None,
    }
}

/// When every delivery of an event was refused the same way, the request as a whole is: the
/// refusal's answer (the longest `Retry-After` among them). `None` when any call ran.
pub fn whole_event_refusal(errors: &[Option<&InvokeError>]) -> Option<Error> {
    let mut answer: Option<Error> = None;
    for error in errors {
        let refused = error.and_then(refusal)?;
        answer = match (answer, refused) {
            (None, refused) => Some(refused),
            (Some(kept), refused)
                if std::mem::discriminant(&kept) == std::mem::discriminant(&refused) =>
            {
                Some(if retry_after(&refused) > retry_after(&kept) {
                    refused
                } else {
                    kept
                })
            }
            _ => return None,
        };
    }
    answer
}

fn retry_after(error: &Error) -> u64 {
    match error {
        Error::RateLimited {
            retry_after_secs, ..
        }
        | Error::QuotaExceeded {
            retry_after_secs, ..
        } => *retry_after_secs,
        Error::Capacity {
            retry_after_secs, ..
        } => retry_after_secs.unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_knows_its_entrances() {
        let post = axum::http::Method::POST;
        assert!(is_gated(&post, "/v1/tenants/acme/events"));
        assert!(is_gated(&post, "/p/acme/examples.echo/x"));
        assert!(is_gated(
            &axum::http::Method::GET,
            "/p/acme/examples.echo/x"
        ));
        // Listing the tenant's queued events is an ordinary tenant route.
        assert!(!is_gated(
            &axum::http::Method::GET,
            "/v1/tenants/acme/events"
        ));
        assert!(!is_gated(&post, "/v1/tenants/acme/events/x/replay"));
        assert!(!is_gated(&post, "/v1/tenants/acme/installs"));
        assert!(!is_gated(&post, "/v1/tenants//events"));
        assert!(!is_gated(&post, "/v1/plugins"));
    }

    #[test]
    fn an_event_is_refused_as_a_whole_only_when_every_call_was_refused_alike() {
        let capacity = |ms| InvokeError::Capacity {
            message: "busy".into(),
            retry_after_ms: Some(ms),
        };
        let (short, long) = (capacity(1000), capacity(3000));
        let whole = whole_event_refusal(&[Some(&short), Some(&long)]);
        assert!(
            matches!(
                whole,
                Some(Error::Capacity {
                    retry_after_secs: Some(3),
                    ..
                })
            ),
            "{whole:?}"
        );
        let ran = InvokeError::Timeout { limit_ms: 5 };
        assert!(whole_event_refusal(&[Some(&short), Some(&ran)]).is_none());
        assert!(whole_event_refusal(&[Some(&short), None]).is_none());
        let quota = InvokeError::QuotaExceeded { used: 5, limit: 5 };
        assert!(whole_event_refusal(&[Some(&short), Some(&quota)]).is_none());
        assert!(whole_event_refusal(&[]).is_none());
    }
}
