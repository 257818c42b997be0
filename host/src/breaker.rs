//! Per-install failure policies: the [`CircuitBreaker`] that stops calling a plugin that keeps
//! failing, and the [`RolloutGuard`] that decides whether a fresh upgrade must be rolled back.
//!
//! Both are pure state machines: they never read the clock. The caller passes the current
//! [`Instant`] to every method, which keeps them deterministic and testable. Instants that go
//! backwards (e.g. taken on different threads just before the lock) never panic; durations
//! between them saturate at zero.
//!
//! # Circuit breaker
//!
//! ```text
//!            threshold failures within `window`
//!   Closed ───────────────────────────────────────▶ Open { until: now + cool_down }
//!     ▲                                               │ admit() at or after `until`
//!     │ trial succeeds                                ▼
//!     └────────────────────────────────────────── HalfOpen (one trial call in flight)
//!                        trial fails: Open again ◀────┘
//! ```
//!
//! ```
//! use std::time::{Duration, Instant};
//! use plinth_host::breaker::{Admission, BreakerPolicy, CircuitBreaker};
//!
//! let policy = BreakerPolicy { failure_threshold: 2, ..BreakerPolicy::default() };
//! let mut breaker = CircuitBreaker::new(policy);
//! let now = Instant::now();
//! assert_eq!(breaker.admit(now), Admission::Allowed);
//! breaker.record(now, false);
//! breaker.record(now, false);
//! assert!(matches!(breaker.admit(now), Admission::Refused { .. }));
//! ```
//!
//! # Rollout guard
//!
//! A [`RolloutGuard`] watches the calls of a fresh upgrade and answers
//! [`RolloutVerdict::RollBack`] when too many fail. See [`RolloutGuard`] for the exact rules.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// When a [`CircuitBreaker`] opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Failures within [`window`](Self::window) that open the breaker. `0` is taken as `1`.
    pub failure_threshold: u32,
    /// How far back failures count. The failure being recorded always counts; an earlier one
    /// counts while less than `window` has passed since it.
    pub window: Duration,
    /// How long the breaker stays open before it lets a trial call through. It is also how long
    /// a trial may go without reporting before it is presumed lost and another trial is
    /// allowed.
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    /// 5 failures within 30 s open the breaker for 30 s.
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: 5,
            window: Duration::from_secs(30),
            cool_down: Duration::from_secs(30),
        }
    }
}

/// The state of a [`CircuitBreaker`] as seen at a given instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls run normally; failures are counted.
    Closed,
    /// Calls are refused until `until`.
    Open {
        /// When the breaker will let a trial call through.
        until: Instant,
    },
    /// The cool-down is over: the next admitted call is a trial (or one is already in flight)
    /// and its outcome closes or reopens the breaker.
    HalfOpen,
}

/// Whether a call may run, from [`CircuitBreaker::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The breaker is closed: run the call.
    Allowed,
    /// The breaker is half-open and this call is its one trial: run it and report its outcome
    /// with [`CircuitBreaker::record`]; other calls are refused until then.
    Trial,
    /// Do not run the call.
    Refused {
        /// When to ask again: the rest of the cool-down, or, while a trial is in flight, the
        /// longest it may still take before another trial is allowed.
        retry_after: Duration,
    },
}

impl Admission {
    /// Whether the call may run ([`Allowed`](Self::Allowed) or [`Trial`](Self::Trial)).
    pub fn is_admitted(&self) -> bool {
        !matches!(self, Admission::Refused { .. })
    }
}

/// The breaker's internal state; `HalfOpen` only exists with a trial in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inner {
    Closed,
    Open { until: Instant },
    HalfOpen { trial_started: Instant },
}

/// A per-install circuit breaker: after [`BreakerPolicy::failure_threshold`] failures within
/// [`BreakerPolicy::window`] it refuses calls for [`BreakerPolicy::cool_down`], then lets one
/// trial call through, whose outcome closes it or opens it again.
///
/// Rules at the edges:
/// - Successes do not erase failures in the window while closed: the breaker counts failures,
///   not a failure streak.
/// - Outcomes recorded while open come from calls admitted before it opened; they are
///   ignored (a success does not close it, a failure does not extend the cool-down).
/// - While half-open, any recorded outcome is taken as the trial's.
/// - A trial that has not reported after [`BreakerPolicy::cool_down`] is presumed lost (its
///   caller was cancelled) and the next [`admit`](Self::admit) starts another trial, so a lost
///   report cannot wedge the breaker.
/// - The failure window starts empty whenever the breaker closes again.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    policy: BreakerPolicy,
    inner: Inner,
    /// Times of the recent failures while closed, oldest first; never more than the threshold.
    failures: VecDeque<Instant>,
}

impl CircuitBreaker {
    /// A closed breaker with this policy.
    pub fn new(policy: BreakerPolicy) -> Self {
        CircuitBreaker {
            policy,
            inner: Inner::Closed,
            failures: VecDeque::new(),
        }
    }

    /// The breaker's policy.
    pub fn policy(&self) -> &BreakerPolicy {
        &self.policy
    }

    /// Whether a call may run at `now`. Closed: [`Admission::Allowed`]. Open: refused until
    /// the cool-down ends; the first call at or after it is the [`Admission::Trial`], and
    /// further calls are refused until the trial reports through [`record`](Self::record).
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.inner {
            Inner::Closed => Admission::Allowed,
            Inner::Open { until } if now < until => Admission::Refused {
                retry_after: until.saturating_duration_since(now),
            },
            Inner::Open { .. } => {
                self.inner = Inner::HalfOpen { trial_started: now };
                Admission::Trial
            }
            Inner::HalfOpen { trial_started } => {
                let lost_at = saturating_add(trial_started, self.policy.cool_down);
                if now >= lost_at {
                    self.inner = Inner::HalfOpen { trial_started: now };
                    Admission::Trial
                } else {
                    Admission::Refused {
                        retry_after: lost_at.saturating_duration_since(now),
                    }
                }
            }
        }
    }

    /// Reports how an admitted call ended at `now`. Closed: a failure joins the window and
    /// opens the breaker at the threshold. Half-open: a success closes it, a failure opens it
    /// for another cool-down. Open: ignored.
    pub fn record(&mut self, now: Instant, success: bool) {
        match self.inner {
            Inner::Closed => {
                if success {
                    return;
                }
                self.forget_failures_before(now);
                self.failures.push_back(now);
                if self.failures.len() >= self.threshold() {
                    self.open(now);
                }
            }
            Inner::Open { .. } => {}
            Inner::HalfOpen { .. } => {
                if success {
                    self.inner = Inner::Closed;
                    self.failures.clear();
                } else {
                    self.open(now);
                }
            }
        }
    }

    /// The state at `now`. An open breaker whose cool-down has ended reads as
    /// [`BreakerState::HalfOpen`]: the next [`admit`](Self::admit) grants the trial.
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.inner {
            Inner::Closed => BreakerState::Closed,
            Inner::Open { until } if now < until => BreakerState::Open { until },
            Inner::Open { .. } | Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Failures recorded while closed that still count at `now`.
    pub fn recent_failures(&self, now: Instant) -> u32 {
        let counted = self
            .failures
            .iter()
            .filter(|&&at| now.saturating_duration_since(at) < self.policy.window)
            .count();
        u32::try_from(counted).unwrap_or(u32::MAX)
    }

    /// The policy's threshold, with `0` taken as `1`.
    fn threshold(&self) -> usize {
        usize::try_from(self.policy.failure_threshold.max(1)).unwrap_or(usize::MAX)
    }

    fn open(&mut self, now: Instant) {
        self.inner = Inner::Open {
            until: saturating_add(now, self.policy.cool_down),
        };
        self.failures.clear();
    }

    /// Drops failures that no longer count at `now`, and keeps the queue below the threshold
    /// so the one about to be pushed makes it at most the threshold.
    fn forget_failures_before(&mut self, now: Instant) {
        while let Some(&oldest) = self.failures.front() {
            if now.saturating_duration_since(oldest) >= self.policy.window {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        while self.failures.len() >= self.threshold() {
            self.failures.pop_front();
        }
    }
}

/// How a fresh upgrade is judged by a [`RolloutGuard`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RolloutPolicy {
    /// How long after the upgrade its calls are watched.
    pub observe_for: Duration,
    /// Calls needed before a failure rate can roll the upgrade back.
    pub min_calls: u32,
    /// Largest acceptable share of failed calls, from `0.0` to `1.0`; values outside are
    /// clamped, and `NaN` never rolls back. A rate equal to it is acceptable.
    pub max_failure_rate: f64,
}

impl Default for RolloutPolicy {
    /// Watch for 5 minutes; with at least 10 calls, roll back above 50 % failures.
    fn default() -> Self {
        RolloutPolicy {
            observe_for: Duration::from_secs(5 * 60),
            min_calls: 10,
            max_failure_rate: 0.5,
        }
    }
}

/// What a [`RolloutGuard`] concluded so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutVerdict {
    /// No verdict yet: keep recording calls.
    Watching,
    /// The upgrade stays; stop watching.
    Passed,
    /// Too many calls failed: roll the upgrade back.
    RollBack {
        /// Failed calls seen.
        failures: u32,
        /// Calls seen, failures included.
        calls: u32,
    },
}

/// Watches a fresh upgrade and decides whether to keep it or roll it back.
///
/// Every call recorded before the verdict counts. After counting a call:
/// 1. with at least [`RolloutPolicy::min_calls`] calls and a failure rate above
///    [`RolloutPolicy::max_failure_rate`], the verdict is [`RolloutVerdict::RollBack`],
///    whether or not the observation period is over;
/// 2. otherwise, once [`RolloutPolicy::observe_for`] has passed since the upgrade (the end is
///    inclusive), the verdict is [`RolloutVerdict::Passed`] if the failure rate is acceptable
///    (no calls at all is a rate of 0);
/// 3. otherwise it is [`RolloutVerdict::Watching`].
///
/// Rolling back needs evidence and passing does not: when the period ends with a bad rate over
/// fewer than `min_calls` calls, the guard keeps watching past the period until either enough
/// good calls bring the rate down (Passed) or `min_calls` calls confirm it (RollBack).
///
/// A verdict other than `Watching` is final: later calls are not counted and every method
/// returns it again.
#[derive(Clone, Debug)]
pub struct RolloutGuard {
    policy: RolloutPolicy,
    deadline: Instant,
    calls: u32,
    failures: u32,
    verdict: RolloutVerdict,
}

impl RolloutGuard {
    /// Starts watching an upgrade that went live at `started`.
    pub fn new(policy: RolloutPolicy, started: Instant) -> Self {
        RolloutGuard {
            deadline: saturating_add(started, policy.observe_for),
            policy,
            calls: 0,
            failures: 0,
            verdict: RolloutVerdict::Watching,
        }
    }

    /// Counts a call of the new version that ended at `now` and returns the verdict.
    pub fn record(&mut self, now: Instant, success: bool) -> RolloutVerdict {
        if self.verdict != RolloutVerdict::Watching {
            return self.verdict;
        }
        self.calls = self.calls.saturating_add(1);
        if !success {
            self.failures = self.failures.saturating_add(1);
        }
        self.poll(now)
    }

    /// The verdict at `now` without a new call: lets the host end a watch when the period is
    /// over even if no call comes.
    pub fn poll(&mut self, now: Instant) -> RolloutVerdict {
        if self.verdict != RolloutVerdict::Watching {
            return self.verdict;
        }
        let too_many = self.rate_exceeded();
        self.verdict = if too_many && self.calls >= self.policy.min_calls {
            RolloutVerdict::RollBack {
                failures: self.failures,
                calls: self.calls,
            }
        } else if !too_many && now >= self.deadline {
            RolloutVerdict::Passed
        } else {
            RolloutVerdict::Watching
        };
        self.verdict
    }

    /// The verdict reached so far, without looking at the clock.
    pub fn verdict(&self) -> RolloutVerdict {
        self.verdict
    }

    /// Calls counted so far.
    pub fn calls(&self) -> u32 {
        self.calls
    }

    /// Failed calls counted so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether failures / calls is above the policy's rate (never with no calls or a `NaN`
    /// rate).
    fn rate_exceeded(&self) -> bool {
        let max = self.policy.max_failure_rate.clamp(0.0, 1.0);
        // failures / calls > max, without dividing; false when max is NaN.
        self.calls > 0 && f64::from(self.failures) > max * f64::from(self.calls)
    }
}

/// `at + d`, or the latest representable instant on the way if that overflows.
fn saturating_add(at: Instant, mut d: Duration) -> Instant {
    loop {
        if let Some(later) = at.checked_add(d) {
            return later;
        }
        d /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn policy(threshold: u32) -> BreakerPolicy {
        BreakerPolicy {
            failure_threshold: threshold,
            window: secs(30),
            cool_down: secs(10),
        }
    }

    #[test]
    fn default_policies() {
        let breaker = BreakerPolicy::default();
        assert_eq!(breaker.failure_threshold, 5);
        assert_eq!(breaker.window, secs(30));
        assert_eq!(breaker.cool_down, secs(30));
        let rollout = RolloutPolicy::default();
        assert_eq!(rollout.observe_for, secs(300));
        assert_eq!(rollout.min_calls, 10);
        assert_eq!(rollout.max_failure_rate, 0.5);
    }

    #[test]
    fn closed_admits_and_opens_at_threshold() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(policy(3));
        for i in 0..2 {
            assert_eq!(b.admit(t0 + secs(i)), Admission::Allowed);
            b.record(t0 + secs(i), false);
            assert_eq!(b.state(t0 + secs(i)), BreakerState::Closed);
        }
        assert_eq!(b.recent_failures(t0 + secs(1)), 2);
        b.record(t0 + secs(2), false);
        assert_eq!(
            b.state(t0 + secs(2)),
            BreakerState::Open {
                until: t0 + secs(12)
            }
        );
    }

    #[test]
    fn successes_do_not_reset_the_failure_count() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(policy(2));
        b.record(t0, false);
        b.record(t0 + secs(1), true);
        b.record(t0 + secs(2), false);
        assert!(matches!(b.state(t0 + secs(2)), BreakerState::Open { .. }));
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(policy(3));
        b.record(t0, false);
        b.record(t0 + secs(10), false);
        // t0's failure is exactly one window old: it no longer counts.
        b.record(t0 + secs(30), false);
        assert_eq!(b.state(t0 + secs(30)), BreakerState::Closed);
        assert_eq!(b.recent_failures(t0 + secs(30)), 2);
        // t0+10 and t0+30 still count, so a third failure within the window opens.
        b.record(t0 + secs(39), false);
        assert!(matches!(b.state(t0 + secs(39)), BreakerState::Open { .. }));
    }

    #[test]
    fn zero_threshold_opens_on_the_first_failure() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(policy(0));
        b.record(t0, true);
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.record(t0, false);
        assert!(matches!(b.state(t0), BreakerState::Open { .. }));
    }

    #[test]
    fn open_refuses_with_retry_after() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(policy(1));
        b.record(t0, false);
        assert_eq!(
            b.admit(t0),
            Admission::Refused {
                retry_after: secs(10)
            }
        );
        let refused = b.admit(t0 + secs(4));
        assert_eq!(
            refused,
            Admission::Refused {
                retry_after: secs(6)
            }
        );
        assert!(!refused.is_admitted());
        // Outcomes of calls admitted before it opened change nothing.
        b.record(t0 + secs(5), true);
        b.record(t0 + secs(5), false);
        assert_eq!(
            b.state(t0 + secs(5)),
            BreakerState::Open {
                until: t0 + secs(10)
            }
        );
    }

    #[test]
    fn half_open_admits_exactly_one_trial() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(policy(1));
        b.record(t0, false);
        assert_eq!(b.state(t0 + secs(10)), BreakerState::HalfOpen);
        let trial = b.admit(t0 + secs(10));
        assert_eq!(trial, Admission::Trial);
        assert!(trial.is_admitted());
        assert_eq!(b.state(t0 + secs(11)), BreakerState::HalfOpen);
        assert_eq!(
            b.admit(t0 + secs(11)),
            Admission::Refused {
                retry_after: secs(9)
            }
        );
        assert!(!b.admit(t0 + secs(19)).is_admitted());
    }

    #[test]
    fn trial_success_closes() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(policy(2));
        b.record(t0, false);
        b.record(t0, false);
        assert_eq!(b.admit(t0 + secs(10)), Admission::Trial);
        b.record(t0 + secs(11), true);
        assert_eq!(b.state(t0 + secs(11)), BreakerState::Closed);
        assert_eq!(b.admit(t0 + secs(11)), Admission::Allowed);
        // The window starts empty: one failure does not reopen a threshold-2 breaker.
        assert_eq!(b.recent_failures(t0 + secs(11)), 0);
        b.record(t0 + secs(12), false);
        assert_eq!(b.state(t0 + secs(12)), BreakerState::Closed);
    }

    #[test]
    fn trial_failure_reopens() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(policy(1));
        b.record(t0, false);
        assert_eq!(b.admit(t0 + secs(12)), Admission::Trial);
        b.record(t0 + secs(13), false);
        assert_eq!(
            b.state(t0 + secs(13)),
            BreakerState::Open {
                until: t0 + secs(23)
            }
        );
        assert_eq!(
            b.admit(t0 + secs(13)),
            Admission::Refused {
                retry_after: secs(10)
            }
        );
        assert_eq!(b.admit(t0 + secs(23)), Admission::Trial);
    }

    #[test]
    fn a_lost_trial_is_replaced_after_the_cool_down() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(policy(1));
        b.record(t0, false);
        assert_eq!(b.admit(t0 + secs(10)), Admission::Trial);
        // The trial never reports.
        assert!(!b.admit(t0 + secs(15)).is_admitted());
        assert_eq!(b.admit(t0 + secs(20)), Admission::Trial);
        assert!(!b.admit(t0 + secs(20)).is_admitted());
    }

    #[test]
    fn instants_going_backwards_do_not_panic() {
        let t0 = Instant::now();
        let later = t0 + secs(100);
        let mut b = CircuitBreaker::new(policy(2));
        b.record(later, false);
        b.record(t0, false);
        assert!(matches!(b.state(t0), BreakerState::Open { .. }));
        let _ = b.admit(t0);
        let _ = b.recent_failures(t0);
    }

    #[test]
    fn huge_cool_down_does_not_overflow() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(BreakerPolicy {
            failure_threshold: 1,
            window: Duration::MAX,
            cool_down: Duration::MAX,
        });
        b.record(t0, false);
        assert!(matches!(b.state(t0), BreakerState::Open { .. }));
        assert!(!b.admit(t0 + secs(1_000_000)).is_admitted());
        let mut g = RolloutGuard::new(
            RolloutPolicy {
                observe_for: Duration::MAX,
                ..RolloutPolicy::default()
            },
            t0,
        );
        assert_eq!(g.record(t0, true), RolloutVerdict::Watching);
    }

    fn rollout() -> RolloutPolicy {
        RolloutPolicy {
            observe_for: secs(300),
            min_calls: 4,
            max_failure_rate: 0.5,
        }
    }

    #[test]
    fn rolls_back_above_the_rate_with_enough_calls() {
        let t0 = Instant::now();
        let mut g = RolloutGuard::new(rollout(), t0);
        assert_eq!(g.record(t0 + secs(1), true), RolloutVerdict::Watching);
        assert_eq!(g.record(t0 + secs(2), false), RolloutVerdict::Watching);
        assert_eq!(g.record(t0 + secs(3), false), RolloutVerdict::Watching);
        // 3 of 4 failed: 0.75 > 0.5.
        assert_eq!(
            g.record(t0 + secs(4), false),
            RolloutVerdict::RollBack {
                failures: 3,
                calls: 4
            }
        );
    }

    #[test]
    fn does_not_roll_back_before_min_calls() {
        let t0 = Instant::now();
        let mut g = RolloutGuard::new(rollout(), t0);
        for i in 1..=3 {
            assert_eq!(g.record(t0 + secs(i), false), RolloutVerdict::Watching);
        }
        assert_eq!((g.failures(), g.calls()), (3, 3));
        // The period ends with a bad rate but too few calls: still watching.
        assert_eq!(g.poll(t0 + secs(400)), RolloutVerdict::Watching);
        assert_eq!(
            g.record(t0 + secs(401), false),
            RolloutVerdict::RollBack {
                failures: 4,
                calls: 4
            }
        );
    }

    #[test]
    fn a_rate_equal_to_the_maximum_is_acceptable() {
        let t0 = Instant::now();
        let mut g = RolloutGuard::new(rollout(), t0);
        for success in [false, true, false, true] {
            assert_eq!(g.record(t0, success), RolloutVerdict::Watching);
        }
        assert_eq!(
            g.record(t0 + secs(300), false),
            RolloutVerdict::RollBack {
                failures: 3,
                calls: 5
            }
        );
    }

    #[test]
    fn passes_after_observe_for_with_a_good_rate() {
        let t0 = Instant::now();
        let mut g = RolloutGuard::new(rollout(), t0);
        for i in 0..6 {
            assert_eq!(g.record(t0 + secs(i), i % 3 != 0), RolloutVerdict::Watching);
        }
        assert_eq!(g.poll(t0 + secs(299)), RolloutVerdict::Watching);
        assert_eq!(g.record(t0 + secs(300), true), RolloutVerdict::Passed);
    }

    #[test]
    fn passes_on_time_with_few_or_no_calls() {
        let t0 = Instant::now();
        let mut idle = RolloutGuard::new(rollout(), t0);
        assert_eq!(idle.poll(t0 + secs(300)), RolloutVerdict::Passed);
        let mut quiet = RolloutGuard::new(rollout(), t0);
        quiet.record(t0 + secs(1), true);
        assert_eq!(quiet.record(t0 + secs(301), false), RolloutVerdict::Passed);
    }

    #[test]
    fn good_calls_after_the_period_can_pass_a_bad_start() {
        let t0 = Instant::now();
        let mut g = RolloutGuard::new(rollout(), t0);
        g.record(t0, false);
        g.record(t0, false);
        assert_eq!(g.record(t0 + secs(301), true), RolloutVerdict::Watching);
        // 2 of 4 failed: 0.5 is acceptable.
        assert_eq!(g.record(t0 + secs(302), true), RolloutVerdict::Passed);
    }

    #[test]
    fn verdict_is_sticky() {
        let t0 = Instant::now();
        let mut rolled_back = RolloutGuard::new(rollout(), t0);
        for _ in 0..4 {
            rolled_back.record(t0, false);
        }
        let verdict = RolloutVerdict::RollBack {
            failures: 4,
            calls: 4,
        };
        assert_eq!(rolled_back.verdict(), verdict);
        for _ in 0..10 {
            assert_eq!(rolled_back.record(t0 + secs(400), true), verdict);
        }
        assert_eq!(rolled_back.poll(t0 + secs(400)), verdict);
        assert_eq!(rolled_back.calls(), 4);

        let mut passed = RolloutGuard::new(rollout(), t0);
        assert_eq!(passed.poll(t0 + secs(300)), RolloutVerdict::Passed);
        for _ in 0..10 {
            assert_eq!(passed.record(t0 + secs(301), false), RolloutVerdict::Passed);
        }
        assert_eq!(passed.failures(), 0);
    }

    #[test]
    fn out_of_range_rates_are_clamped_and_nan_never_rolls_back() {
        let t0 = Instant::now();
        let with_rate = |max_failure_rate| {
            RolloutGuard::new(
                RolloutPolicy {
                    max_failure_rate,
                    min_calls: 1,
                    ..rollout()
                },
                t0,
            )
        };
        assert_eq!(with_rate(-1.0).record(t0, true), RolloutVerdict::Watching);
        assert!(matches!(
            with_rate(-1.0).record(t0, false),
            RolloutVerdict::RollBack { .. }
        ));
        assert_eq!(with_rate(2.0).record(t0, false), RolloutVerdict::Watching);
        let mut nan = with_rate(f64::NAN);
        assert_eq!(nan.record(t0, false), RolloutVerdict::Watching);
        assert_eq!(nan.poll(t0 + secs(300)), RolloutVerdict::Passed);
    }
}
