//! Suspension: a tenant whose plugins do not run until it pays (`payment`) or an operator lifts
//! it (`operator`). While suspended, every entrance that runs plugin code answers 402
//! `payment_required` ([`crate::admission`]); installs, their configuration and their data are
//! kept, and the console says why and how to pay.

use crate::audit::{self, Actor, Entry};
use crate::auth::Principal;
use crate::clock::now_ms;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tenants::{self, Tenant};

/// The 402 a suspended tenant's plugin calls get.
pub fn refusal(tenant: &Tenant) -> Option<Error> {
    tenant.suspended_at?;
    let message = match tenant.suspended_reason.as_deref() {
        Some("payment") => format!(
            "tenant {:?} is suspended for an unpaid invoice; its plugins run again as soon as it \
             is paid (update the payment method on the subscription page)",
            tenant.slug
        ),
        _ => format!(
            "tenant {:?} is suspended by an operator; its plugins do not run until they lift it",
            tenant.slug
        ),
    };
    Some(Error::PaymentRequired { message })
}

/// Suspends the tenant for `reason` in `tx` unless it is suspended already; `true` if it was not.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn suspend_in(tx: &mut Tx, tenant_id: &str, reason: &str, now: i64) -> Result<bool> {
    let set = sqlx::query(
        "UPDATE tenants SET suspended_at = $1, suspended_reason = $2 WHERE id = $3 AND suspended_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(tenant_id)
    .execute(&mut **tx)
    .await?;
    Ok(set.rows_affected() > 0)
}

/// Lifts the tenant's suspension for `reason` in `tx`; `true` if it was suspended so.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn lift_in(tx: &mut Tx, tenant_id: &str, reason: &str) -> Result<bool> {
    let lifted = sqlx::query(
        "UPDATE tenants SET suspended_at = NULL, suspended_reason = NULL \
         WHERE id = $1 AND suspended_reason = $2",
    )
    .bind(tenant_id)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(lifted.rows_affected() > 0)
}

/// An operator suspends tenant `slug` (audited, the tenant told why).
///
/// # Errors
///
/// 403; 404; 409 `already_suspended`; 400 `invalid_reason`.
pub async fn suspend(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    reason: &str,
) -> Result<Tenant> {
    principal.operator()?;
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Err(Error::bad_request(
            "invalid_reason",
            "field `reason` must be 1 to 500 bytes",
        ));
    }
    let tenant = tenants::access(state.db(), principal, slug, tenants::TenantRole::Owner).await?;
    let mut tx = state.db().begin_tenant(&tenant.id).await?;
    if !suspend_in(&mut tx, &tenant.id, "operator", now_ms()).await? {
        return Err(Error::conflict(
            "already_suspended",
            format!("tenant {slug:?} is suspended already"),
        ));
    }
    audit::record(
        &mut tx,
        Entry {
            actor: Actor::from(principal),
            action: "tenant.suspended",
            tenant_id: Some(&tenant.id),
            subject: format!("tenant:{slug}"),
            details: serde_json::json!({"reason": reason}),
        },
    )
    .await?;
    crate::notifications::notify(&mut tx, "tenant", &tenant.id, "suspended",
        &format!("An operator suspended this tenant: {reason}. Its plugins do not run until it is lifted."),
        serde_json::json!({"reason": reason, "by": "operator"})).await?;
    tx.commit().await?;
    state.db().changed(crate::db::cache::Topic::Access);
    tenants::by_id(state.db(), &tenant.id)
        .await?
        .ok_or_else(|| Error::not_found(format!("tenant {slug:?}")))
}

/// An operator lifts tenant `slug`'s suspension, whatever its reason (audited). Lifting a
/// suspension for payment while the invoice is still unpaid starts the grace period again.
///
/// # Errors
///
/// 403; 404; 409 `not_suspended`.
pub async fn unsuspend(state: &AppState, principal: &Principal, slug: &str) -> Result<Tenant> {
    principal.operator()?;
    let tenant = tenants::access(state.db(), principal, slug, tenants::TenantRole::Owner).await?;
    let Some(reason) = tenant.suspended_reason.clone() else {
        return Err(Error::conflict(
            "not_suspended",
            format!("tenant {slug:?} is not suspended"),
        ));
    };
    let mut tx = state.db().begin_tenant(&tenant.id).await?;
    lift_in(&mut tx, &tenant.id, &reason).await?;
    if reason == "payment" {
        // Lifted while still unpaid: the grace period starts again, or the next billing run
        // would suspend it at once.
        sqlx::query(
            "UPDATE billing_accounts SET past_due_since = $1 WHERE tenant_id = $2 AND status = 'past_due'",
        )
        .bind(now_ms())
        .bind(&tenant.id)
        .execute(&mut *tx)
        .await?;
    }
    audit::record(
        &mut tx,
        Entry {
            actor: Actor::from(principal),
            action: "tenant.unsuspended",
            tenant_id: Some(&tenant.id),
            subject: format!("tenant:{slug}"),
            details: serde_json::json!({"was": reason}),
        },
    )
    .await?;
    crate::notifications::notify(
        &mut tx,
        "tenant",
        &tenant.id,
        "unsuspended",
        "An operator lifted this tenant's suspension; its plugins run again.",
        serde_json::json!({"was": reason}),
    )
    .await?;
    tx.commit().await?;
    state.db().changed(crate::db::cache::Topic::Access);
    tenants::by_id(state.db(), &tenant.id)
        .await?
        .ok_or_else(|| Error::not_found(format!("tenant {slug:?}")))
}
