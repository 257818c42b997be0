//! Run ids: UUIDv7s whose timestamp is the run's start, in Unix milliseconds. A run is found by
//! its id through the batches whose time span holds the start read back from the id
//! ([`super::batch`]), so no index entry is written for every run.

use std::time::{SystemTime, UNIX_EPOCH};

use uuid::{NoContext, Timestamp, Uuid};

/// A new id for a run that started at `started`, and that start in Unix milliseconds (what
/// [`started_at_of`] reads back from the id's text).
pub(crate) fn of_start(started: SystemTime) -> (Uuid, i64) {
    let since_epoch = started.duration_since(UNIX_EPOCH).unwrap_or_default();
    let id = Uuid::new_v7(Timestamp::from_unix(
        NoContext,
        since_epoch.as_secs(),
        since_epoch.subsec_nanos(),
    ));
    // The id keeps whole milliseconds, as `as_millis` counts them.
    let started_ms = i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX);
    (id, started_ms)
}

/// The start (Unix milliseconds) a run id carries; `None` for anything but a UUIDv7.
pub(crate) fn started_at_of(id: &str) -> Option<i64> {
    let uuid = Uuid::try_parse(id).ok()?;
    if uuid.get_version_num() != 7 {
        return None;
    }
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    i64::try_from(secs)
        .ok()?
        .checked_mul(1000)?
        .checked_add(i64::from(nanos / 1_000_000))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_id_carries_its_start() {
        let started =
            UNIX_EPOCH + Duration::from_millis(1_795_000_000_123) + Duration::from_micros(456);
        let (id, ms) = of_start(started);
        assert_eq!(ms, 1_795_000_000_123);
        assert_eq!(started_at_of(&id.to_string()), Some(ms));
        let (other, _) = of_start(started);
        assert_ne!(id, other);
        assert_eq!(started_at_of("not-a-run"), None);
        assert_eq!(started_at_of(&Uuid::nil().to_string()), None);
    }
}
