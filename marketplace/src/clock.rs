//! Time as the marketplace stores it: Unix milliseconds, UTC; shown as RFC 3339. And
//! [`Clock`], the monotonic time that waits (log-in throttling) are measured on, which tests
//! move forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `ms` (Unix milliseconds) as RFC 3339 in UTC, e.g. `2026-11-23T10:00:00.123Z`.
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// The UTC day `ms` (Unix milliseconds) falls on, `YYYY-MM-DD`.
pub fn date(ms: i64) -> String {
    rfc3339(ms).chars().take(10).collect()
}

/// `text` (RFC 3339) as Unix milliseconds, if it is such a time.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// A monotonic clock: the time since it was made, plus whatever [`Clock::advance`] added.
/// Clones share one clock. The server never advances it; tests do, to pass a wait at once.
#[derive(Debug, Clone)]
pub struct Clock {
    start: Instant,
    /// Nanoseconds added by [`Clock::advance`].
    skipped: Arc<AtomicU64>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
            skipped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The time since the clock was made, including what was skipped.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed() + Duration::from_nanos(self.skipped.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.skipped.fetch_add(nanos, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_a_clock_moves_every_clone() {
        let clock = Clock::new();
        let clone = clock.clone();
        clock.advance(Duration::from_secs(3600));
        assert!(clone.elapsed() >= Duration::from_secs(3600));
        assert!(clone.elapsed() < Duration::from_secs(3700));
    }

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }
}
