//! Calendar months (`YYYY-MM`, UTC) as half-open ranges of Unix milliseconds.

use time::{Date, Month, OffsetDateTime};

use crate::error::{Error, Result};

/// A calendar month in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthRange {
    /// `YYYY-MM`.
    pub key: String,
    /// The first millisecond of the month.
    pub start_ms: i64,
    /// The first millisecond of the next month.
    pub end_ms: i64,
}

/// Parses `YYYY-MM` given as `field`.
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_query`) naming `field` if it is not a month.
pub fn parse(field: &str, text: &str) -> Result<MonthRange> {
    let bad = || {
        Error::bad_request(
            "invalid_query",
            format!("`{field}` must be a month as YYYY-MM (e.g. 2026-11), not {text:?}"),
        )
    };
    let (year, month) = text.split_once('-').ok_or_else(bad)?;
    if year.len() != 4 || month.len() != 2 {
        return Err(bad());
    }
    let year: i32 = year.parse().map_err(|_| bad())?;
    let month: u8 = month.parse().map_err(|_| bad())?;
    let month = Month::try_from(month).map_err(|_| bad())?;
    range(year, month).ok_or_else(bad)
}

/// The month `ms` (Unix milliseconds) falls in.
///
/// # Errors
///
/// [`Error::Internal`] if `ms` is out of the calendar's range.
pub fn of(ms: i64) -> Result<MonthRange> {
    let out_of_range = || Error::Internal(format!("time {ms} is out of range"));
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| out_of_range())?;
    range(at.year(), at.month()).ok_or_else(out_of_range)
}

/// `month` of `year` as a range; `None` out of the calendar's range.
fn range(year: i32, month: Month) -> Option<MonthRange> {
    let (next_year, next_month) = match month {
        Month::December => (year.checked_add(1)?, Month::January),
        other => (year, other.next()),
    };
    let first = |year: i32, month: Month| -> Option<i64> {
        let day = Date::from_calendar_date(year, month, 1).ok()?;
        i64::try_from(day.midnight().assume_utc().unix_timestamp_nanos() / 1_000_000).ok()
    };
    Some(MonthRange {
        key: format!("{year:04}-{:02}", u8::from(month)),
        start_ms: first(year, month)?,
        end_ms: first(next_year, next_month)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_half_open_utc_ranges() {
        let nov = parse("month", "2026-11").unwrap();
        assert_eq!(nov.start_ms, 1_793_491_200_000);
        let dec = parse("month", "2026-12").unwrap();
        assert_eq!(nov.end_ms, dec.start_ms);
        assert_eq!(
            parse("month", "2026-12").unwrap().end_ms,
            parse("m", "2027-01").unwrap().start_ms
        );
        for bad in [
            "2026-13", "2026-1", "26-11", "2026/11", "", "2026-00", "abcd-ef",
        ] {
            assert!(parse("month", bad).is_err(), "{bad}");
        }
        assert_eq!(of(1_795_000_000_123).unwrap().key, "2026-11");
    }
}
