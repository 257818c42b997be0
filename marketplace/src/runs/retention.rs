//! How long runs are kept: each tenant's plan names the days (`run_retention_days`); daily
//! counts are kept [`DAYS_KEPT`] days (and one more, for time zones
//! ahead of UTC) whatever the plan. The volume (`max_runs`) is enforced as runs are written
//! ([`super::recorder`]) and again here.

use sqlx::Row as _;

use super::daily::{DAYS_KEPT, day_of};
use super::store::{enforce_volume, trim};
use crate::clock::DAY_MS;
use crate::db::Db;
use crate::error::Result;

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Runs older than their tenant's retention.
    pub expired: u64,
    /// Runs beyond their tenant's volume.
    pub over_volume: u64,
    /// Daily counts older than [`DAYS_KEPT`].
    pub days: u64,
}

/// Removes, as of `now` (Unix ms), every run older than its tenant's plan keeps them (and the
/// runs of tenants that no longer exist), every tenant's runs beyond its plan's volume, and the
/// daily counts past [`DAYS_KEPT`].
///
/// # Errors
///
/// [`crate::Error::Database`]; what was removed before the error stays removed.
pub async fn prune(db: &Db, now: i64) -> Result<Pruned> {
    /// The first start a tenant's plan still keeps, for the row `run_batches` or `shared_runs`.
    fn cutoff(table: &str) -> String {
        format!(
            "$1 - $2 * COALESCE((SELECT p.run_retention_days FROM tenants t \
             JOIN plans p ON p.name = t.plan WHERE t.id = {table}.tenant_id), 0)"
        )
    }
    let mut pruned = Pruned::default();
    let mut tx = db.begin().await?;
    let batches = cutoff("run_batches");
    let expired: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(COALESCE(SUM(runs), 0) AS BIGINT) FROM run_batches WHERE last_at < {batches}"
    )))
    .bind(now)
    .bind(DAY_MS)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM run_batches WHERE last_at < {batches}"
    )))
    .bind(now)
    .bind(DAY_MS)
    .execute(&mut *tx)
    .await?;
    pruned.expired = u64::try_from(expired).unwrap_or(0);
    // Batches that straddle a cutoff keep their runs after it.
    let straddling = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT tenant_id, last_at, id, {batches} AS cutoff FROM run_batches \
         WHERE first_at < {batches}"
    )))
    .bind(now)
    .bind(DAY_MS)
    .fetch_all(&mut *tx)
    .await?;
    for row in &straddling {
        let tenant_id: String = row.try_get("tenant_id")?;
        let key = (row.try_get("last_at")?, row.try_get("id")?);
        let cutoff: i64 = row.try_get("cutoff")?;
        let removed = trim(&mut tx, &tenant_id, &key, |runs| {
            runs.iter()
                .filter(|run| run.started_at >= cutoff)
                .cloned()
                .collect()
        })
        .await?;
        pruned.expired += u64::try_from(removed).unwrap_or(0);
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM shared_runs WHERE started_at < {}",
        cutoff("shared_runs")
    )))
    .bind(now)
    .bind(DAY_MS)
    .execute(&mut *tx)
    .await?;
    pruned.days = sqlx::query("DELETE FROM run_daily WHERE day < $1")
        .bind(day_of(now - (DAYS_KEPT + 1) * DAY_MS))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    let over: Vec<String> = sqlx::query(
        "SELECT r.tenant_id FROM run_batches r GROUP BY r.tenant_id HAVING SUM(r.runs) > \
         COALESCE((SELECT p.max_runs FROM tenants t JOIN plans p ON p.name = t.plan \
         WHERE t.id = r.tenant_id), 0)",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| row.try_get("tenant_id"))
    .collect::<std::result::Result<_, _>>()?;
    for tenant in over {
        pruned.over_volume += enforce_volume(db, &tenant).await?.dropped;
    }
    Ok(pruned)
}
