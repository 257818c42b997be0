//! Metering that lasts: the host's usage counters persisted per tenant, plugin, version and
//! UTC calendar month (table `usage_counters`), read back for the usage route and the monthly
//! invocation quota.
//!
//! [`Store`] is the host's [`UsageSink`]: `plinth serve` hands it to the meter's flusher, which
//! adds a batch every few seconds. What the meter holds and has not flushed yet is added on
//! read ([`month_usage`]), so counts are current.

use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use plinth_host::QuotaGrant;
use plinth_host::metering::{Meter, SinkError, UsageRecord, UsageSink};
use sqlx::Row;

use crate::db::Db;
use crate::db::cache::{MonthInvocations, Topic};
use crate::error::{Error, Result};
use crate::tenants::{Plan, Tenant};

/// The month `ms` (Unix milliseconds) falls in, in UTC, as `YYYY-MM`.
///
/// # Errors
///
/// [`Error::Internal`] for a time outside the calendar's range.
pub fn month_key(ms: i64) -> Result<String> {
    Ok(crate::month::of(ms)?.key)
}

/// Unix milliseconds of a [`SystemTime`] (0 before the epoch, saturating far after it).
fn system_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A counter as the database stores it (BIGINT), saturating.
pub(crate) fn db_count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The host's usage sink over the marketplace database.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    /// A sink writing to `db`.
    pub fn new(db: Db) -> Store {
        Store { db }
    }

    /// Adds `batch` to the counters, all of it or (on error) none of it. Each record counts in
    /// the month its period ended in.
    ///
    /// # Errors
    ///
    /// [`Error::Database`]; nothing of the batch is stored then.
    pub async fn add(&self, batch: &[UsageRecord]) -> Result<()> {
        let mut tx = self.db.begin().await?;
        for record in batch {
            let month = month_key(system_ms(record.period_end))?;
            let c = &record.counters;
            sqlx::query(
                "INSERT INTO usage_counters (tenant_id, plugin_id, version, month, invocations, \
                 failures, wall_time_us, fuel, kv_bytes_written, outbound_requests) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (tenant_id, plugin_id, version, month) DO UPDATE SET \
                 invocations = usage_counters.invocations + excluded.invocations, \
                 failures = usage_counters.failures + excluded.failures, \
                 wall_time_us = usage_counters.wall_time_us + excluded.wall_time_us, \
                 fuel = usage_counters.fuel + excluded.fuel, \
                 kv_bytes_written = usage_counters.kv_bytes_written + excluded.kv_bytes_written, \
                 outbound_requests = usage_counters.outbound_requests + excluded.outbound_requests",
            )
            .bind(record.key.tenant.clone())
            .bind(record.key.plugin.clone())
            .bind(record.key.version.clone())
            .bind(month)
            .bind(db_count(c.invocations))
            .bind(db_count(c.failures_total()))
            .bind(db_count(c.wall_time_us))
            .bind(db_count(c.fuel))
            .bind(db_count(c.kv_bytes_written))
            .bind(db_count(c.outbound_requests))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.db.changed(Topic::Usage);
        Ok(())
    }
}

impl UsageSink for Store {
    fn flush(
        &self,
        batch: Vec<UsageRecord>,
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + '_>> {
        Box::pin(async move {
            self.add(&batch)
                .await
                .map_err(|e| SinkError::with_source("adding usage counters", e))
        })
    }
}

/// One plugin's usage in a month (all its versions together).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginUsage {
    /// The plugin's id.
    pub plugin: String,
    /// Calls, failed ones included.
    pub invocations: i64,
    /// Failed calls.
    pub failures: i64,
    /// Wall-clock time of the calls, in microseconds.
    pub wall_time_us: i64,
    /// Fuel burnt.
    pub fuel: i64,
    /// Bytes of keys and values written to kv.
    pub kv_bytes_written: i64,
    /// Outbound HTTP requests sent.
    pub outbound_requests: i64,
}

impl PluginUsage {
    fn add(&mut self, other: &PluginUsage) {
        self.invocations = self.invocations.saturating_add(other.invocations);
        self.failures = self.failures.saturating_add(other.failures);
        self.wall_time_us = self.wall_time_us.saturating_add(other.wall_time_us);
        self.fuel = self.fuel.saturating_add(other.fuel);
        self.kv_bytes_written = self.kv_bytes_written.saturating_add(other.kv_bytes_written);
        self.outbound_requests = self
            .outbound_requests
            .saturating_add(other.outbound_requests);
    }
}

/// A tenant's usage in one month: per plugin (sorted by id) and in total (`plugin` empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthUsage {
    /// Per plugin, sorted by plugin id.
    pub plugins: Vec<PluginUsage>,
    /// Everything together.
    pub total: PluginUsage,
}

/// `tenant_id`'s usage in `month` (`YYYY-MM`): what is persisted plus, when `meter` is given,
/// what it holds unflushed (counted in the current month, so pass `meter` only for it).
///
/// The stored rows are read before the meter, so a flush committing in between is missed by
/// this one read (never counted twice); the next read sees it.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn month_usage(
    db: &Db,
    meter: Option<&Meter>,
    tenant_id: &str,
    month: &str,
) -> Result<MonthUsage> {
    let rows = sqlx::query(
        "SELECT plugin_id, CAST(SUM(invocations) AS BIGINT) AS invocations, \
         CAST(SUM(failures) AS BIGINT) AS failures, \
         CAST(SUM(wall_time_us) AS BIGINT) AS wall_time_us, CAST(SUM(fuel) AS BIGINT) AS fuel, \
         CAST(SUM(kv_bytes_written) AS BIGINT) AS kv_bytes_written, \
         CAST(SUM(outbound_requests) AS BIGINT) AS outbound_requests \
         FROM usage_counters WHERE tenant_id = $1 AND month = $2 GROUP BY plugin_id",
    )
    .bind(tenant_id.to_owned())
    .bind(month.to_owned())
    .fetch_all(db.pool())
    .await?;
    let mut plugins = std::collections::BTreeMap::<String, PluginUsage>::new();
    for row in rows {
        let plugin: String = row.try_get("plugin_id")?;
        let stored = PluginUsage {
            plugin: plugin.clone(),
            invocations: row.try_get("invocations")?,
            failures: row.try_get("failures")?,
            wall_time_us: row.try_get("wall_time_us")?,
            fuel: row.try_get("fuel")?,
            kv_bytes_written: row.try_get("kv_bytes_written")?,
            outbound_requests: row.try_get("outbound_requests")?,
        };
        plugins.entry(plugin).or_default().add(&stored);
    }
    if let Some(meter) = meter {
        for record in meter.snapshot_tenant(tenant_id) {
            let c = &record.counters;
            let pending = PluginUsage {
                plugin: record.key.plugin.clone(),
                invocations: db_count(c.invocations),
                failures: db_count(c.failures_total()),
                wall_time_us: db_count(c.wall_time_us),
                fuel: db_count(c.fuel),
                kv_bytes_written: db_count(c.kv_bytes_written),
                outbound_requests: db_count(c.outbound_requests),
            };
            plugins
                .entry(record.key.plugin.clone())
                .or_default()
                .add(&pending);
        }
    }
    let mut usage = MonthUsage::default();
    for (plugin, mut counts) in plugins {
        counts.plugin = plugin;
        usage.total.add(&counts);
        usage.plugins.push(counts);
    }
    Ok(usage)
}

/// The invocations of `tenant_id` stored for `month`, from the read cache while no flush has
/// committed since ([`crate::db::cache`]).
async fn stored_invocations(db: &Db, tenant_id: &str, month: &str) -> Result<i64> {
    let generation = db.cache().generation(Topic::Usage);
    if let Some(cached) = db
        .cache()
        .invocations
        .get(&tenant_id.to_owned(), generation)
        && cached.month == month
    {
        return Ok(cached.invocations);
    }
    let invocations: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(invocations), 0) AS BIGINT) FROM usage_counters \
         WHERE tenant_id = $1 AND month = $2",
    )
    .bind(tenant_id.to_owned())
    .bind(month.to_owned())
    .fetch_one(db.pool())
    .await?;
    let cached = MonthInvocations {
        month: month.to_owned(),
        invocations,
    };
    db.cache()
        .invocations
        .put(tenant_id.to_owned(), cached, generation);
    Ok(invocations)
}

/// The tenant's monthly invocation quota as it stands now, for the admission gate: refused at
/// once when it is used up; otherwise the grant the host checks every call against as it
/// starts ([`plinth_host::metering::Meter::try_begin`]).
///
/// The meter is read before storage, so a flush committing in between is counted (at worst
/// twice, for an instant), never missed.
///
/// # Errors
///
/// [`Error::QuotaExceeded`] with the seconds until the next month (UTC) when this month's
/// invocations (stored, and counted here but not yet stored) have reached
/// `plan.invocations_per_month`; [`Error::Database`].
pub async fn quota_grant(
    db: &Db,
    meter: &Meter,
    tenant: &Tenant,
    plan: &Plan,
    now_ms: i64,
) -> Result<QuotaGrant> {
    let month = month_key(now_ms)?;
    let flushed_mark = meter.flushed_invocations(&tenant.id);
    let unflushed = meter.unflushed_invocations(&tenant.id);
    let stored = stored_invocations(db, &tenant.id, &month).await?;
    let used = stored.saturating_add(db_count(unflushed));
    if used < plan.invocations_per_month {
        return Ok(QuotaGrant {
            limit: u64::try_from(plan.invocations_per_month).unwrap_or(0),
            stored: u64::try_from(stored).unwrap_or(0),
            flushed_mark,
        });
    }
    tracing::info!(tenant = %tenant.id, used, limit = plan.invocations_per_month, "invocation quota reached");
    Err(Error::QuotaExceeded {
        message: format!(
            "tenant {:?} has used {used} of the {} invocations per month of plan {:?}; the quota \
             resets at the start of next month (UTC)",
            tenant.slug, plan.invocations_per_month, plan.name
        ),
        retry_after_secs: secs_to_next_month(now_ms),
    })
}

/// Seconds from `now_ms` until the next month begins (UTC), at least 1: when a monthly quota
/// resets.
pub fn secs_to_next_month(now_ms: i64) -> u64 {
    let next_month = crate::tenants::usage::month_of(now_ms).map_or(now_ms, |(_, end)| end);
    u64::try_from(next_month.saturating_sub(now_ms))
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_utc_calendar_months() {
        // 2026-11-18T11:06:40.123Z
        assert_eq!(month_key(1_795_000_000_123).unwrap(), "2026-11");
        // 2026-12-01T00:00:00Z is December; one millisecond before is November.
        let december = 1_796_083_200_000;
        assert_eq!(month_key(december).unwrap(), "2026-12");
        assert_eq!(month_key(december - 1).unwrap(), "2026-11");
    }
}
