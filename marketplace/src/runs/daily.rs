//! Usage over time: an install's calls per UTC day, by outcome, with their duration
//! percentiles, from `run_daily` (which keeps [`DAYS_KEPT`] days whatever the run log's
//! retention).
//!
//! Durations are counted in power-of-two buckets: bucket `b` holds calls that took
//! `[2^(b-1), 2^b)` microseconds (bucket 0: under one). A percentile is the upper bound of the
//! bucket it falls in, so it is at most twice the true value and never below it.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row as _;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::clock::DAY_MS;
use crate::db::Db;
use crate::error::{Error, Result};

/// Days of daily counts kept (and the most a chart shows).
pub const DAYS_KEPT: i64 = 30;

/// The UTC day `ms` (Unix milliseconds) falls in, as `YYYY-MM-DD`.
pub fn day_of(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|at| at.date())
        .map_or_else(
            |_| "1970-01-01".to_owned(),
            |date| {
                format!(
                    "{:04}-{:02}-{:02}",
                    date.year(),
                    u8::from(date.month()),
                    date.day()
                )
            },
        )
}

/// The duration bucket of `micros`.
pub fn bucket_of(micros: u64) -> i64 {
    i64::from(u64::BITS - micros.leading_zeros())
}

/// The upper bound of bucket `bucket`, in microseconds.
fn bucket_bound(bucket: i64) -> u64 {
    u32::try_from(bucket).map_or(u64::MAX, |b| 1u64.checked_shl(b).unwrap_or(u64::MAX))
}

/// One day of an install's calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct DayStats {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Calls, failed ones included.
    pub invocations: i64,
    /// Failed calls by error code.
    pub failures: BTreeMap<String, i64>,
    /// Median duration (upper bound of its power-of-two bucket), in microseconds; 0 without
    /// calls.
    pub p50_us: u64,
    /// 95th percentile duration, likewise.
    pub p95_us: u64,
}

impl DayStats {
    /// Failed calls, all codes together.
    pub fn failures_total(&self) -> i64 {
        self.failures.values().sum()
    }
}

/// One day's failures by code and calls by duration bucket.
type DayCounts = (BTreeMap<String, i64>, BTreeMap<i64, i64>);

/// The last `days` UTC days up to and including the day of `now_ms`, oldest first, for
/// `tenant_id`'s install of `plugin_id`: a day without calls is there with zeros.
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_query`) for `days` outside 1 to [`DAYS_KEPT`];
/// [`Error::Database`].
pub async fn daily(
    db: &Db,
    tenant_id: &str,
    plugin_id: &str,
    days: i64,
    now_ms: i64,
) -> Result<Vec<DayStats>> {
    if !(1..=DAYS_KEPT).contains(&days) {
        return Err(Error::bad_request(
            "invalid_query",
            format!("days must be between 1 and {DAYS_KEPT}, not {days}"),
        ));
    }
    let first = day_of(now_ms - (days - 1) * DAY_MS);
    let rows = sqlx::query(
        "SELECT day, outcome, bucket, calls FROM run_daily \
         WHERE tenant_id = $1 AND plugin_id = $2 AND day >= $3",
    )
    .bind(tenant_id)
    .bind(plugin_id)
    .bind(&first)
    .fetch_all(db.pool())
    .await?;
    let mut by_day: BTreeMap<String, DayCounts> = (0..days)
        .map(|back| (day_of(now_ms - back * DAY_MS), Default::default()))
        .collect();
    for row in rows {
        let day: String = row.try_get("day")?;
        let outcome: String = row.try_get("outcome")?;
        let bucket: i64 = row.try_get("bucket")?;
        let calls: i64 = row.try_get("calls")?;
        let Some((failures, buckets)) = by_day.get_mut(&day) else {
            continue;
        };
        if outcome != "ok" {
            *failures.entry(outcome).or_default() += calls;
        }
        *buckets.entry(bucket).or_default() += calls;
    }
    Ok(by_day
        .into_iter()
        .map(|(day, (failures, buckets))| {
            let invocations = buckets.values().sum();
            DayStats {
                day,
                invocations,
                failures,
                p50_us: percentile(&buckets, invocations, 50),
                p95_us: percentile(&buckets, invocations, 95),
            }
        })
        .collect())
}

/// The last `days` days of tenant `slug`'s install of `plugin_id` (any member of the tenant).
///
/// # Errors
///
/// 404 for a tenant the caller may not see; 400 for `days` out of range.
pub async fn for_install(
    state: &crate::state::AppState,
    principal: &crate::auth::Principal,
    slug: &str,
    plugin_id: &str,
    days: i64,
) -> Result<Vec<DayStats>> {
    let tenant = crate::tenants::access(
        state.db(),
        principal,
        slug,
        crate::tenants::TenantRole::Readonly,
    )
    .await?;
    super::query::settle(state).await;
    daily(
        state.db(),
        &tenant.id,
        plugin_id,
        days,
        crate::clock::now_ms(),
    )
    .await
}

/// The upper bound of the bucket holding the `pct`th percentile of `total` calls.
fn percentile(buckets: &BTreeMap<i64, i64>, total: i64, pct: i64) -> u64 {
    if total <= 0 {
        return 0;
    }
    // The rank of the percentile's call, 1-based, rounded up.
    let rank = (total * pct + 99) / 100;
    let mut seen = 0;
    for (&bucket, &calls) in buckets {
        seen += calls;
        if seen >= rank {
            return bucket_bound(bucket);
        }
    }
    buckets.keys().last().map_or(0, |&b| bucket_bound(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_days() {
        // 2026-11-18T11:06:40.123Z
        assert_eq!(day_of(1_795_000_000_123), "2026-11-18");
        assert_eq!(day_of(0), "1970-01-01");
    }

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 1);
        assert_eq!(bucket_of(1023), 10);
        assert_eq!(bucket_of(1024), 11);
        for micros in [1, 5, 1000, 123_456] {
            let bound = bucket_bound(bucket_of(micros));
            assert!(bound > micros && bound <= micros * 2, "{micros} → {bound}");
        }
    }

    #[test]
    fn percentiles_come_from_the_buckets() {
        // 90 calls under 1 ms, 10 calls around 100 ms.
        let buckets = BTreeMap::from([(bucket_of(700), 90), (bucket_of(100_000), 10)]);
        assert_eq!(percentile(&buckets, 100, 50), 1024);
        assert_eq!(percentile(&buckets, 100, 95), 131_072);
        assert_eq!(percentile(&BTreeMap::new(), 0, 95), 0);
    }
}
