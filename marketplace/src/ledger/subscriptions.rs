//! Subscriptions: a tenant's paid install of a plugin.
//!
//! Installing a plugin whose manifest prices it (`monthly` or `per-1000-invocations`) calls
//! [`start`] in the install's transaction; uninstalling calls [`end`] in its own. The
//! subscription's id is what the processor's invoices carry as `subscription`.
//!
//! The rule at uninstall: the subscription ends at once; nothing more is charged for the rest
//! of the period and nothing already paid is refunded (a refund is the processor's, reported by
//! `charge.refunded`). An invoice the processor reports paid for an ended subscription is still
//! recorded — the money was taken — and can be refunded. Usage-priced plugins are billed for
//! the invocations metered while installed, by [`super::usage_charges`], at the price recorded
//! when the subscription started.

use plinth_package::Pricing;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::clock::{now_ms, rfc3339};
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::id::new_id;

/// A subscription as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Subscription {
    /// The id the processor's invoices carry as `subscription`.
    pub id: String,
    /// The tenant's id.
    pub tenant_id: String,
    /// The plugin's id.
    pub plugin_id: String,
    /// The plugin's publisher id.
    pub publisher_id: String,
    /// `monthly` or `per-1000-invocations`.
    pub model: String,
    /// Price in minor units (per month, or per 1000 invocations).
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// `active` or `ended`.
    pub status: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, once ended.
    pub ended_at: Option<String>,
}

const COLUMNS: &str =
    "id, tenant_id, plugin_id, publisher_id, model, amount, currency, status, started_at, ended_at";

fn from_row(row: &AnyRow) -> Result<Subscription> {
    Ok(Subscription {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        plugin_id: row.try_get("plugin_id")?,
        publisher_id: row.try_get("publisher_id")?,
        model: row.try_get("model")?,
        amount: row.try_get("amount")?,
        currency: row.try_get("currency")?,
        status: row.try_get("status")?,
        started_at: rfc3339(row.try_get("started_at")?),
        ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(rfc3339),
    })
}

/// Starts the tenant's subscription to `plugin_id` if `pricing` is paid, in the install's
/// transaction; answers its id (`None` for a free plugin).
///
/// # Errors
///
/// [`Error::Internal`] if a paid pricing lacks an amount or currency (validation prevents it)
/// or the plugin is unknown; [`Error::Database`].
pub async fn start(
    tx: &mut Tx,
    tenant_id: &str,
    plugin_id: &str,
    pricing: &Pricing,
) -> Result<Option<String>> {
    if !pricing.is_paid() {
        return Ok(None);
    }
    let (Some(amount), Some(currency)) = (pricing.amount, pricing.currency.as_ref()) else {
        return Err(Error::Internal(format!(
            "{plugin_id} is priced {} without an amount and currency",
            pricing.model
        )));
    };
    let publisher_id: String = sqlx::query("SELECT publisher_id FROM plugins WHERE id = $1")
        .bind(plugin_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::Internal(format!("plugin {plugin_id} vanished")))?
        .try_get("publisher_id")?;
    let id = new_id();
    sqlx::query(
        "INSERT INTO ledger_subscriptions (id, tenant_id, plugin_id, publisher_id, model, amount, \
         currency, status, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(plugin_id)
    .bind(&publisher_id)
    .bind(pricing.model.as_str())
    .bind(amount)
    .bind(currency.as_str())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(Some(id))
}

/// Ends the tenant's active subscription to `plugin_id`, if any, in the uninstall's
/// transaction.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn end(tx: &mut Tx, tenant_id: &str, plugin_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE ledger_subscriptions SET status = 'ended', ended_at = $1 \
         WHERE tenant_id = $2 AND plugin_id = $3 AND status = 'active'",
    )
    .bind(now_ms())
    .bind(tenant_id)
    .bind(plugin_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The subscription `id`, active or ended.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn by_id(tx: &mut Tx, id: &str) -> Result<Option<Subscription>> {
    let sql = format!("SELECT {COLUMNS} FROM ledger_subscriptions WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The tenant's subscriptions, newest first.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn of_tenant(db: &Db, tenant_id: &str) -> Result<Vec<Subscription>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ledger_subscriptions WHERE tenant_id = $1 ORDER BY started_at DESC, id DESC"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// Usage-priced subscriptions that were active at some time in `[start_ms, end_ms)`.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn usage_priced_during(db: &Db, start_ms: i64, end_ms: i64) -> Result<Vec<Subscription>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ledger_subscriptions WHERE model = 'per-1000-invocations' \
         AND started_at < $1 AND (ended_at IS NULL OR ended_at >= $2) ORDER BY started_at, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(end_ms)
        .bind(start_ms)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}
