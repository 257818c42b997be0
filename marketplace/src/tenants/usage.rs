//! A tenant's usage in the current billing period, against its plan's quotas.

use time::{Date, Month, OffsetDateTime};

use super::Tenant;
use crate::db::Db;
use crate::error::{Error, Result};

/// The billing period containing `now_ms`: the calendar month in UTC, as `[start, end)` in Unix
/// milliseconds.
///
/// # Errors
///
/// [`Error::Internal`] for a time outside the calendar's range.
pub fn month_of(now_ms: i64) -> Result<(i64, i64)> {
    let out_of_range = || Error::Internal(format!("time {now_ms} is out of range"));
    let now = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
        .map_err(|_| out_of_range())?;
    let (next_year, next_month) = match now.month() {
        Month::December => (now.year() + 1, Month::January),
        month => (now.year(), month.next()),
    };
    let first = |year: i32, month: Month| -> Result<i64> {
        let day = Date::from_calendar_date(year, month, 1).map_err(|_| out_of_range())?;
        let nanos = day.midnight().assume_utc().unix_timestamp_nanos();
        i64::try_from(nanos / 1_000_000).map_err(|_| out_of_range())
    };
    Ok((
        first(now.year(), now.month())?,
        first(next_year, next_month)?,
    ))
}

/// What a tenant has used in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounts {
    /// Plugins installed now.
    pub installs: i64,
    /// Plugin invocations in the period.
    pub invocations: i64,
    /// Bytes of key-value data stored now.
    pub kv_bytes: i64,
    /// Outbound HTTP requests in the period.
    pub outbound_requests: i64,
}

/// What `tenant` has used in `[start, end)`.
///
/// Installs and metering are recorded by other parts of the marketplace; until they are, the
/// counts are zero. This is the one place to add them.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn counts(db: &Db, tenant: &Tenant, start: i64, end: i64) -> Result<UsageCounts> {
    let _ = (db, &tenant.id, start, end);
    Ok(UsageCounts::default())
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
