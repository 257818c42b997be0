//! The monthly usage statement: metered invocations of usage-priced plugins become charges.
//!
//! For a month that has ended, every tenant with a `per-1000-invocations` subscription active
//! during it is billed `floor(invocations × price / 1000)` (rounded down, in the tenant's
//! favour) for the invocations metered that month (`usage_counters`, all versions together),
//! at the price recorded when the subscription started. The charge's reference is
//! `usage:<tenant id>:<plugin id>:<YYYY-MM>`, so running the statement again for the same
//! month bills nothing new. The charge is *billed* (tenant receivable) until the processor
//! reports its invoice paid (`invoice.paid` with `metadata.plinth_charge` = the charge id).

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::LedgerSettings;
use super::charges::{self, NewCharge};
use super::split::share;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::month::MonthRange;

/// One usage charge of a statement run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageCharge {
    /// The charge's id (what the processor's invoice carries as `metadata.plinth_charge`).
    pub charge_id: String,
    /// The tenant's id.
    pub tenant_id: String,
    /// The plugin.
    pub plugin_id: String,
    /// Invocations metered.
    pub invocations: i64,
    /// The charge, minor units.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// Whether this run billed it (false: billed by an earlier run).
    pub new: bool,
}

/// Bills `month`'s usage; `now` must be after the month.
///
/// # Errors
///
/// [`Error::BadRequest`] (`month_not_ended`) for the current or a future month;
/// [`Error::Database`].
pub async fn run(
    db: &Db,
    settings: &LedgerSettings,
    month: &MonthRange,
    now: i64,
) -> Result<Vec<UsageCharge>> {
    if now < month.end_ms {
        return Err(Error::bad_request(
            "month_not_ended",
            format!(
                "`month` {} has not ended; usage is billed after the month",
                month.key
            ),
        ));
    }
    let mut out: Vec<UsageCharge> = Vec::new();
    for subscription in
        super::subscriptions::usage_priced_during(db, month.start_ms, month.end_ms).await?
    {
        let invocations: i64 = sqlx::query(
            "SELECT COALESCE(CAST(SUM(invocations) AS BIGINT), 0) AS n FROM usage_counters \
             WHERE tenant_id = $1 AND plugin_id = $2 AND month = $3",
        )
        .bind(&subscription.tenant_id)
        .bind(&subscription.plugin_id)
        .bind(&month.key)
        .fetch_one(db.pool())
        .await?
        .try_get("n")?;
        let amount = share(invocations, subscription.amount, 1000);
        if amount <= 0 {
            continue;
        }
        let reference = format!(
            "usage:{}:{}:{}",
            subscription.tenant_id, subscription.plugin_id, month.key
        );
        if out
            .iter()
            .any(|c| c.tenant_id == subscription.tenant_id && c.plugin_id == subscription.plugin_id)
        {
            // Reinstalled within the month: one charge per tenant, plugin and month.
            continue;
        }
        let mut tx = super::lock::begin(db).await?;
        let (charge, new) = charges::record(
            &mut tx,
            settings,
            NewCharge {
                reference: &reference,
                processor_charge: None,
                processor_invoice: None,
                source: "usage",
                subscription_id: Some(&subscription.id),
                tenant_id: &subscription.tenant_id,
                plugin_id: &subscription.plugin_id,
                publisher_id: &subscription.publisher_id,
                currency: &subscription.currency,
                gross: amount,
                paid: false,
                period: Some(&month.key),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        out.push(UsageCharge {
            charge_id: charge.id,
            tenant_id: charge.tenant_id,
            plugin_id: charge.plugin_id,
            invocations,
            amount: charge.gross,
            currency: charge.currency,
            new,
        });
    }
    Ok(out)
}

/// The ledger's periodic work at `now`: bills last month's usage (idempotent, so running it
/// every hour bills each month once), releases charges whose hold has ended, and reconciles
/// processor events still waiting for what they concern
/// ([`super::processor_events::reconcile`]).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn housekeeping(db: &Db, settings: &LedgerSettings, now: i64) -> Result<()> {
    let this_month = crate::month::of(now)?;
    let last_month = crate::month::of(this_month.start_ms - 1)?;
    let billed = run(db, settings, &last_month, now).await?;
    let new = billed.iter().filter(|charge| charge.new).count();
    if new > 0 {
        tracing::info!(month = %last_month.key, charges = new, "usage billed");
    }
    charges::release_due(db, now).await?;
    let reconciled = super::processor_events::reconcile(db, settings, now).await?;
    if reconciled.applied > 0 || reconciled.reported > 0 {
        tracing::info!(
            applied = reconciled.applied,
            pending = reconciled.pending,
            reported = reconciled.reported,
            "processor events reconciled"
        );
    }
    Ok(())
}
