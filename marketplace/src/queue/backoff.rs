//! Waits between attempts: exponential, capped, and (for queued events) with jitter, so events
//! that failed together do not all come back at the same instant.

use std::time::Duration;

/// The wait after the `attempts`-th failed attempt: `base · 2^(attempts-1)`, at most `max`.
pub fn exponential(base: Duration, max: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    base.saturating_mul(1 << doublings).min(max)
}

/// `wait` scaled by a random factor in [½, 1]: "equal jitter", which keeps at least half the
/// back-off and spreads the rest.
pub fn jittered(wait: Duration) -> Duration {
    let mut bytes = [0u8; 2];
    // Without randomness the full wait is kept: late, never early.
    if getrandom::fill(&mut bytes).is_err() {
        return wait;
    }
    let fraction = f64::from(u16::from_le_bytes(bytes)) / f64::from(u16::MAX);
    wait.mul_f64(0.5 + fraction / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        let waits: Vec<u64> = (1..=7)
            .map(|attempt| {
                exponential(Duration::from_secs(30), Duration::from_secs(300), attempt).as_secs()
            })
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 300, 300, 300]);
        let max = Duration::from_secs(300);
        assert_eq!(exponential(Duration::from_secs(30), max, u32::MAX), max);
    }

    #[test]
    fn jitter_keeps_between_half_and_all_of_the_wait() {
        let wait = Duration::from_secs(100);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(wait)).collect();
        assert!(waits.iter().all(|w| *w >= wait / 2 && *w <= wait));
        // 200 draws from a 16-bit range are not all the same.
        assert!(waits.iter().any(|w| *w != waits[0]));
    }
}
