//! [`Schedule`]: a plugin run on its own, on a cron pattern or at a fixed interval, receiving
//! one topic. A schedule is a permission: it spends the tenant's invocations without anyone
//! sending an event, so the tenant consents to it like to any other grant.
//!
//! Ticks are instants in UTC every host computes alike: a cron pattern's occurrences, or the
//! multiples of an interval since the Unix epoch. Neither may come closer than
//! [`MIN_PERIOD_SECS`] apart, so a plugin cannot make itself a busy loop on the tenant's quota.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize};

use super::Topic;
use crate::error::InvalidValue;

/// The shortest time between two ticks of one schedule, in seconds.
pub const MIN_PERIOD_SECS: u64 = 60;

/// The longest interval accepted (a year), in seconds.
const MAX_INTERVAL_SECS: u64 = 366 * 24 * 60 * 60;

/// Consecutive occurrences of a cron pattern checked against [`MIN_PERIOD_SECS`].
const CRON_GAPS_CHECKED: usize = 120;

/// The longest cron pattern accepted.
const MAX_CRON_CHARS: usize = 128;

/// `[[permissions.schedules]]`: exactly one of `cron` and `every`, and the topic delivered.
///
/// ```
/// use plinth_package::Schedule;
/// let schedule: Schedule = toml::from_str(r#"every = "5m"
/// topic = "report.due""#)?;
/// // 12:07:30 → the tick of 12:05:00.
/// assert_eq!(schedule.latest_tick(43_650_000), Some(43_500_000));
/// # Ok::<(), toml::de::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// A cron pattern in UTC: 5 fields, or 6 with seconds first (`0 9 * * MON-FRI`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<CronPattern>,
    /// A fixed interval: a number and `s`, `m`, `h` or `d` (`15m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Interval>,
    /// The topic of the event each tick delivers to the plugin.
    pub topic: Topic,
}

impl Schedule {
    /// The latest tick at or before `now_ms` (Unix milliseconds), if the schedule has one.
    pub fn latest_tick(&self, now_ms: i64) -> Option<i64> {
        match (&self.cron, &self.every) {
            (Some(cron), _) => cron.latest_tick(now_ms),
            (None, Some(every)) => Some(every.latest_tick(now_ms)),
            (None, None) => None,
        }
    }

    /// The first tick after `after_ms`, if the schedule has one.
    pub fn next_tick(&self, after_ms: i64) -> Option<i64> {
        match (&self.cron, &self.every) {
            (Some(cron), _) => cron.next_tick(after_ms),
            (None, Some(every)) => Some(every.next_tick(after_ms)),
            (None, None) => None,
        }
    }

    /// When it ticks, as the consent screen says it: `every 15 minutes` or
    /// `on the cron schedule "0 9 * * MON-FRI" (UTC)`.
    pub fn cadence(&self) -> String {
        match (&self.cron, &self.every) {
            (Some(cron), _) => format!("on the cron schedule \"{cron}\" (UTC)"),
            (None, Some(every)) => format!("every {}", every.in_words()),
            (None, None) => "never".to_owned(),
        }
    }

    /// The machine form of [`Schedule::cadence`]: `cron <pattern>` or `every <interval>`.
    pub fn detail(&self) -> String {
        match (&self.cron, &self.every) {
            (Some(cron), _) => format!("cron {cron}"),
            (None, Some(every)) => format!("every {every}"),
            (None, None) => String::new(),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.detail(), self.topic)
    }
}

/// A checked cron pattern (UTC, seconds optional).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CronPattern(String);

impl CronPattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parsed(&self) -> Option<Cron> {
        parse_cron(&self.0).ok()
    }

    // Cron works in whole seconds: times go in without their milliseconds (which the
    // parser would otherwise carry into the tick) and ticks come out on the second.

    fn latest_tick(&self, now_ms: i64) -> Option<i64> {
        let now = DateTime::<Utc>::from_timestamp(now_ms.div_euclid(1000), 0)?;
        let tick = self.parsed()?.find_previous_occurrence(&now, true).ok()?;
        tick.timestamp().checked_mul(1000)
    }

    fn next_tick(&self, after_ms: i64) -> Option<i64> {
        let after = DateTime::<Utc>::from_timestamp(after_ms.div_euclid(1000), 0)?;
        let tick = self.parsed()?.find_next_occurrence(&after, false).ok()?;
        tick.timestamp().checked_mul(1000)
    }
}

fn parse_cron(pattern: &str) -> Result<Cron, croner::errors::CronError> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(pattern)
}

impl FromStr for CronPattern {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| InvalidValue::new("cron pattern", s, reason);
        if s.len() > MAX_CRON_CHARS || s.trim().is_empty() {
            return Err(invalid(format!("give 1 to {MAX_CRON_CHARS} characters")));
        }
        let cron = parse_cron(s).map_err(|e| invalid(e.to_string()))?;
        // The ticks of the next few days (from a fixed instant, so a pattern is accepted or
        // refused alike whenever it is checked) must keep the minimum period.
        let start = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        let mut previous: Option<DateTime<Utc>> = None;
        for tick in cron.iter_after(start).take(CRON_GAPS_CHECKED) {
            if let Some(previous) = previous {
                let gap = tick.signed_duration_since(previous).num_seconds();
                if gap < MIN_PERIOD_SECS as i64 {
                    return Err(invalid(format!(
                        "ticks {gap} s apart; a schedule ticks at most once every \
                         {MIN_PERIOD_SECS} s"
                    )));
                }
            }
            previous = Some(tick);
        }
        if previous.is_none() {
            return Err(invalid("the pattern never matches".to_owned()));
        }
        Ok(CronPattern(s.to_owned()))
    }
}

impl TryFrom<String> for CronPattern {
    type Error = InvalidValue;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<CronPattern> for String {
    fn from(pattern: CronPattern) -> String {
        pattern.0
    }
}

impl fmt::Display for CronPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fixed interval, at least [`MIN_PERIOD_SECS`] and at most a year; ticks fall on its
/// multiples since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Interval {
    secs: u64,
}

impl Interval {
    /// The interval in seconds.
    pub fn secs(self) -> u64 {
        self.secs
    }

    fn period_ms(self) -> i64 {
        i64::try_from(self.secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    fn latest_tick(self, now_ms: i64) -> i64 {
        now_ms.div_euclid(self.period_ms()) * self.period_ms()
    }

    fn next_tick(self, after_ms: i64) -> i64 {
        self.latest_tick(after_ms).saturating_add(self.period_ms())
    }

    /// `15 minutes`, `1 day`, `90 seconds`.
    fn in_words(self) -> String {
        let (count, unit) = self.largest_unit();
        let unit = match unit {
            'd' => "day",
            'h' => "hour",
            'm' => "minute",
            _ => "second",
        };
        if count == 1 {
            format!("1 {unit}")
        } else {
            format!("{count} {unit}s")
        }
    }

    /// The interval in the largest unit that divides it.
    fn largest_unit(self) -> (u64, char) {
        for (unit, secs) in [('d', 86_400), ('h', 3_600), ('m', 60)] {
            if self.secs.is_multiple_of(secs) {
                return (self.secs / secs, unit);
            }
        }
        (self.secs, 's')
    }
}

impl FromStr for Interval {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| InvalidValue::new("interval", s, reason);
        let unit_at = s
            .char_indices()
            .last()
            .map(|(at, _)| at)
            .ok_or_else(|| invalid("give a number and a unit, e.g. 15m".to_owned()))?;
        let (number, unit) = s.split_at(unit_at);
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => {
                return Err(invalid(
                    "end with a unit: s, m, h or d (e.g. 15m)".to_owned(),
                ));
            }
        };
        let count: u64 = number
            .parse()
            .map_err(|_| invalid("give a whole number before the unit, e.g. 15m".to_owned()))?;
        let secs = count.saturating_mul(scale);
        if !(MIN_PERIOD_SECS..=MAX_INTERVAL_SECS).contains(&secs) {
            return Err(invalid(format!(
                "an interval is {MIN_PERIOD_SECS} s to 366 days"
            )));
        }
        Ok(Interval { secs })
    }
}

impl TryFrom<String> for Interval {
    type Error = InvalidValue;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Interval> for String {
    fn from(interval: Interval) -> String {
        interval.to_string()
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (count, unit) = self.largest_unit();
        write!(f, "{count}{unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(text: &str) -> Schedule {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn intervals_tick_on_their_multiples_and_read_naturally() {
        let every: Interval = "90m".parse().unwrap();
        assert_eq!(every.to_string(), "90m");
        assert_eq!(every.in_words(), "90 minutes");
        assert_eq!("120s".parse::<Interval>().unwrap().to_string(), "2m");
        assert_eq!("1d".parse::<Interval>().unwrap().in_words(), "1 day");
        let s = schedule("every = \"1h\"\ntopic = \"t\"");
        assert_eq!(s.latest_tick(3_600_000 * 5 + 1), Some(3_600_000 * 5));
        assert_eq!(s.latest_tick(3_600_000 * 5), Some(3_600_000 * 5));
        assert_eq!(s.next_tick(3_600_000 * 5), Some(3_600_000 * 6));
        assert_eq!(s.cadence(), "every 1 hour");
        assert_eq!(s.detail(), "every 1h");
    }

    #[test]
    fn intervals_out_of_range_or_malformed_are_refused_with_a_reason() {
        for (text, reason) in [
            ("30s", "60 s to 366 days"),
            ("400d", "60 s to 366 days"),
            ("5", "unit"),
            ("m", "whole number"),
            ("1.5h", "whole number"),
            ("", "a number and a unit"),
            ("10w", "unit"),
        ] {
            let error = text.parse::<Interval>().unwrap_err();
            assert!(error.reason.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn cron_patterns_take_optional_seconds_and_keep_the_minimum_period() {
        let s = schedule("cron = \"30 0 9 * * *\"\ntopic = \"t\"");
        // 2026-01-01T10:00:00Z → 09:00:30 that day.
        let ten = 1_767_261_600_000;
        assert_eq!(s.latest_tick(ten), Some(ten - 3_600_000 + 30_000));
        assert_eq!(
            s.next_tick(ten),
            Some(ten - 3_600_000 + 30_000 + 86_400_000)
        );
        let five = schedule("cron = \"*/5 * * * *\"\ntopic = \"t\"");
        assert_eq!(five.latest_tick(ten + 299_999), Some(ten));
        assert_eq!(five.cadence(), "on the cron schedule \"*/5 * * * *\" (UTC)");
        let busy = "*/10 * * * * *".parse::<CronPattern>().unwrap_err();
        assert!(busy.reason.contains("10 s apart"), "{busy}");
        assert!("61 * * * *".parse::<CronPattern>().is_err());
        assert!("not a pattern".parse::<CronPattern>().is_err());
    }
}
