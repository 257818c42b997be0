//! Spans of time a tenant spent on a plan, at the price it had then: what invoices prorate.
//!
//! Every plan change closes the tenant's open span and opens the next one at the same instant
//! ([`switch`]), in the transaction of the change; a tenant with no span is on its plan for
//! free (it never chose a paid one). A trial's span is priced but marked `trial`: nothing is
//! charged for it.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Db, Tx};
use crate::error::Result;
use crate::id::new_id;
use crate::tenants::Plan;

/// A span of time on one plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// The plan's name.
    pub plan: String,
    /// The plan's monthly price during the span, in minor units.
    pub price_monthly: i64,
    /// ISO 4217.
    pub currency: String,
    /// Whether the span is a trial (free).
    pub trial: bool,
    /// When it started (Unix ms).
    pub starts_at: i64,
    /// When it ended (Unix ms); `None` while it lasts.
    pub ends_at: Option<i64>,
}

fn from_row(row: &AnyRow) -> Result<Period> {
    Ok(Period {
        plan: row.try_get("plan")?,
        price_monthly: row.try_get("price_monthly")?,
        currency: row.try_get("currency")?,
        trial: row.try_get::<i64, _>("trial")? != 0,
        starts_at: row.try_get("starts_at")?,
        ends_at: row.try_get("ends_at")?,
    })
}

/// Ends the tenant's open span at `at` and opens one on `plan` (a trial if `trial`).
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn switch(tx: &mut Tx, tenant_id: &str, plan: &Plan, trial: bool, at: i64) -> Result<()> {
    sqlx::query("UPDATE plan_periods SET ends_at = $1 WHERE tenant_id = $2 AND ends_at IS NULL")
        .bind(at)
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    // A span that ended as it began says nothing: drop it.
    sqlx::query("DELETE FROM plan_periods WHERE tenant_id = $1 AND ends_at = starts_at")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO plan_periods (id, tenant_id, plan, price_monthly, currency, trial, \
         starts_at, ends_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
    )
    .bind(new_id())
    .bind(tenant_id)
    .bind(&plan.name)
    .bind(plan.price_monthly)
    .bind(&plan.currency)
    .bind(i64::from(trial))
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The tenant's open span, if it has one.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn current(tx: &mut Tx, tenant_id: &str) -> Result<Option<Period>> {
    let row = sqlx::query(
        "SELECT plan, price_monthly, currency, trial, starts_at, ends_at FROM plan_periods \
         WHERE tenant_id = $1 AND ends_at IS NULL",
    )
    .bind(tenant_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The tenant's spans that overlap `[start, end)`, oldest first.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn overlapping(db: &Db, tenant_id: &str, start: i64, end: i64) -> Result<Vec<Period>> {
    let rows = sqlx::query(
        "SELECT plan, price_monthly, currency, trial, starts_at, ends_at FROM plan_periods \
         WHERE tenant_id = $1 AND starts_at < $2 AND (ends_at IS NULL OR ends_at > $3) \
         ORDER BY starts_at",
    )
    .bind(tenant_id)
    .bind(end)
    .bind(start)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// The tenants with a priced span overlapping `[start, end)`.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn billable_tenants(db: &Db, start: i64, end: i64) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT tenant_id FROM plan_periods WHERE price_monthly > 0 AND trial = 0 \
         AND starts_at < $1 AND (ends_at IS NULL OR ends_at > $2) ORDER BY tenant_id",
    )
    .bind(end)
    .bind(start)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| row.try_get("tenant_id").map_err(Into::into))
        .collect()
}

/// `price` for the part of `[month_start, month_end)` that `[from, to)` covers, rounded down to
/// the minor unit (the ledger's rule).
pub fn prorate(price: i64, from: i64, to: i64, month_start: i64, month_end: i64) -> i64 {
    let start = from.max(month_start);
    let end = to.min(month_end);
    let month = month_end - month_start;
    if end <= start || month <= 0 || price <= 0 {
        return 0;
    }
    let share = i128::from(price) * i128::from(end - start) / i128::from(month);
    i64::try_from(share).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::prorate;

    #[test]
    fn proration_covers_the_overlap_and_rounds_down() {
        let (start, end) = (0, 30 * 86_400_000);
        assert_eq!(prorate(2900, start, end, start, end), 2900);
        // Ten days of thirty: 966.67 → 966.
        assert_eq!(prorate(2900, 20 * 86_400_000, end, start, end), 966);
        // Outside the month, or a free plan: nothing.
        assert_eq!(prorate(2900, end, end + 5, start, end), 0);
        assert_eq!(prorate(0, start, end, start, end), 0);
        // A span wider than the month is the month.
        assert_eq!(prorate(2900, -5, end + 5, start, end), 2900);
    }
}
