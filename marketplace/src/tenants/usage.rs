//! A tenant's usage in the current billing period, against its plan's quotas.

use super::Tenant;
use crate::db::Db;
use crate::error::Result;

/// The billing period containing `now_ms`: the calendar month in UTC, as `[start, end)` in Unix
/// milliseconds.
///
/// # Errors
///
/// [`crate::Error::Internal`] for a time outside the calendar's range.
pub fn month_of(now_ms: i64) -> Result<(i64, i64)> {
    let month = crate::month::of(now_ms)?;
    Ok((month.start_ms, month.end_ms))
}

/// What a tenant has used in a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageCounts {
    /// Plugins installed now.
    pub installs: i64,
    /// Plugin invocations in the period.
    pub invocations: i64,
    /// Failed invocations in the period.
    pub failures: i64,
    /// Bytes of key-value data written in the period. The host's kv store is not reachable
    /// from the marketplace to sum what a tenant stores now, so this is what was written.
    pub kv_bytes_written: i64,
    /// Outbound HTTP requests in the period.
    pub outbound_requests: i64,
    /// The same per plugin, sorted by plugin id.
    pub plugins: Vec<crate::usage::PluginUsage>,
}

/// What `tenant` has used in the month starting at `start` (Unix ms, from [`month_of`]):
/// installs now, and the metered usage stored in `usage_counters` plus, when `meter` is given,
/// what it holds unflushed (pass it only for the current month).
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn counts(
    db: &Db,
    meter: Option<&plinth_host::metering::Meter>,
    tenant: &Tenant,
    start: i64,
) -> Result<UsageCounts> {
    let installs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM installs WHERE tenant_id = $1")
        .bind(tenant.id.clone())
        .fetch_one(db.pool())
        .await?;
    let month = crate::usage::month_key(start)?;
    let usage = crate::usage::month_usage(db, meter, &tenant.id, &month).await?;
    Ok(UsageCounts {
        installs,
        invocations: usage.total.invocations,
        failures: usage.total.failures,
        kv_bytes_written: usage.total.kv_bytes_written,
        outbound_requests: usage.total.outbound_requests,
        plugins: usage.plugins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_the_calendar_month_in_utc() {
        // 2026-11-18T11:06:40.123Z
        let (start, end) = month_of(1_795_000_000_123).unwrap();
        assert_eq!(crate::clock::rfc3339(start), "2026-11-01T00:00:00Z");
        assert_eq!(crate::clock::rfc3339(end), "2026-12-01T00:00:00Z");
        // December rolls into the next year.
        let (start, end) = month_of(1_797_000_000_000).unwrap();
        assert_eq!(crate::clock::rfc3339(start), "2026-12-01T00:00:00Z");
        assert_eq!(crate::clock::rfc3339(end), "2027-01-01T00:00:00Z");
        // The first millisecond of a month belongs to it.
        let (again, _) = month_of(start).unwrap();
        assert_eq!(again, start);
    }
}
