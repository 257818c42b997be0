//! The arithmetic of deployment-wide rates: fixed windows and the slices leased from them.
//!
//! Time is cut into fixed windows of [`WINDOW_MS`] (one minute) aligned to the Unix epoch, so
//! every process names the same window for the same wall-clock minute without talking to the
//! others. For each (tenant, kind, window) the shared store counts the requests it leased out;
//! a process leases a slice of [`slice_size`] at a time and [`grant`] never lets the count pass
//! the limit. These functions are the rule; the stores ([`super::leases`]) apply it, the
//! PostgreSQL one in a single SQL statement.

/// The length of a window, in milliseconds: a plan's rates are per minute.
pub const WINDOW_MS: i64 = 60_000;

/// How many slices a window's limit is cut into: a busy tenant costs a process at most this
/// many round trips to the store per window (plus one that finds the window used up), and a
/// process holds at most 1/`SLICES` of the limit that others cannot have.
pub const SLICES: u64 = 20;

/// Now on the wall clock, in ms since the Unix epoch: what windows are named by. Processes'
/// clocks agree to within NTP's error, which only shifts when a process moves to the next
/// window, never how much a window grants.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The start (ms since the epoch) of the window holding `now_ms`.
pub fn window_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(WINDOW_MS) * WINDOW_MS
}

/// Milliseconds from `now_ms` to the end of its window (1 to [`WINDOW_MS`]).
pub fn until_window_end(now_ms: i64) -> i64 {
    window_of(now_ms) + WINDOW_MS - now_ms
}

/// How many requests a process leases at a time under `limit` per window: a twentieth of the
/// limit rounded up (so a window is used up in at most [`SLICES`] leases), at least one.
pub fn slice_size(limit: u64) -> u64 {
    limit.div_ceil(SLICES).max(1)
}

/// What a lease of `slice` is granted when `leased` of the window's `limit` are leased out
/// already: the slice, or what is left of the limit if that is less (0 once it is used up).
/// `leased + grant(leased, slice, limit) <= limit` whenever `leased <= limit`.
pub fn grant(leased: u64, slice: u64, limit: u64) -> u64 {
    slice.min(limit.saturating_sub(leased))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_minutes() {
        assert_eq!(window_of(0), 0);
        assert_eq!(window_of(59_999), 0);
        assert_eq!(window_of(60_000), 60_000);
        assert_eq!(window_of(125_000), 120_000);
        assert_eq!(window_of(-1), -60_000);
        assert_eq!(until_window_end(125_000), 55_000);
        assert_eq!(until_window_end(120_000), 60_000);
        assert_eq!(until_window_end(179_999), 1);
    }

    #[test]
    fn a_slice_is_a_twentieth_of_the_limit_and_at_least_one() {
        assert_eq!(slice_size(0), 1);
        assert_eq!(slice_size(1), 1);
        assert_eq!(slice_size(19), 1);
        assert_eq!(slice_size(20), 1);
        assert_eq!(slice_size(21), 2);
        assert_eq!(slice_size(60), 3);
        assert_eq!(slice_size(300), 15);
        assert_eq!(slice_size(1_000_000), 50_000);
    }

    #[test]
    fn grants_never_pass_the_limit() {
        assert_eq!(grant(0, 15, 300), 15);
        assert_eq!(grant(290, 15, 300), 10);
        assert_eq!(grant(300, 15, 300), 0);
        assert_eq!(grant(350, 15, 300), 0);
        assert_eq!(grant(0, 1, 0), 0);
        // Leasing slice after slice from any number of processes stops at the limit exactly.
        for limit in [0, 1, 7, 21, 39, 60, 299, 300, 1_001] {
            let slice = slice_size(limit);
            let mut leased = 0;
            let mut leases = 0;
            loop {
                let granted = grant(leased, slice, limit);
                if granted == 0 {
                    break;
                }
                leased += granted;
                leases += 1;
            }
            assert_eq!(leased, limit);
            assert!(leases <= SLICES, "{limit}: {leases} leases");
        }
    }
}
