//! What one inbound event may spend across all its emit hops.
//!
//! An event dispatched to a tenant's installs can fan out: every plugin may emit events that
//! reach other plugins, depth after depth. An [`EventBudget`] bounds the whole cascade: the
//! invocations it may start (the plan's `max_invocations_per_event`), the bytes of outputs,
//! errors and emitted payloads it may collect, and (through a [`QuotaGrant`]) the tenant's
//! monthly invocations, each counted by the meter as the call starts. When any of them runs out
//! the cascade ends: deliveries not made are reported once with a typed error, never run.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// The tenant's monthly invocation quota as the gate saw it when it admitted the event. The
/// meter checks each call against it as the call starts
/// ([`Meter::try_begin`](crate::metering::Meter::try_begin)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaGrant {
    /// Invocations the tenant may make this month.
    pub limit: u64,
    /// Invocations already stored for this month when the gate read them.
    pub stored: u64,
    /// The meter's count of the tenant's confirmed flushes, read *before* `stored`
    /// ([`Meter::flushed_invocations`](crate::metering::Meter::flushed_invocations)): flushes
    /// confirmed later are added, so nothing is missed (at worst a flush is counted twice for an
    /// instant, which can only refuse early).
    pub flushed_mark: u64,
}

/// Bytes of results one event may collect unless its budget says otherwise.
pub const DEFAULT_EVENT_BYTES: u64 = 8 << 20;

/// The budget of one inbound event. Shared by every delivery of the cascade.
#[derive(Debug)]
pub struct EventBudget {
    max_invocations: u32,
    invocations: AtomicU32,
    max_bytes: u64,
    bytes: AtomicU64,
    quota: Option<QuotaGrant>,
    exhausted: AtomicBool,
}

/// Why a delivery of the cascade was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spent {
    /// The event started its most invocations.
    Invocations(u32),
    /// The event collected its most bytes of results.
    Bytes(u64),
}

impl EventBudget {
    /// A budget of `max_invocations` calls and [`DEFAULT_EVENT_BYTES`] of results, with no
    /// monthly quota.
    pub fn new(max_invocations: u32) -> Self {
        EventBudget {
            max_invocations,
            invocations: AtomicU32::new(0),
            max_bytes: DEFAULT_EVENT_BYTES,
            bytes: AtomicU64::new(0),
            quota: None,
            exhausted: AtomicBool::new(false),
        }
    }

    /// Bounds the bytes of outputs, error messages and emitted payloads collected.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Counts every call against the tenant's monthly quota as it starts.
    pub fn with_quota(mut self, quota: QuotaGrant) -> Self {
        self.quota = Some(quota);
        self
    }

    /// The monthly quota, if any.
    pub fn quota(&self) -> Option<&QuotaGrant> {
        self.quota.as_ref()
    }

    /// The most invocations the event may start.
    pub fn max_invocations(&self) -> u32 {
        self.max_invocations
    }

    /// Invocations started so far.
    pub fn invocations(&self) -> u32 {
        self.invocations.load(Ordering::SeqCst)
    }

    /// Bytes of results collected so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// Whether the cascade ended early because a bound was reached.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted.load(Ordering::SeqCst)
    }

    /// Takes one invocation.
    ///
    /// # Errors
    ///
    /// [`Spent::Invocations`] when the event has started its most (the budget is then
    /// exhausted).
    pub(crate) fn take_invocation(&self) -> Result<(), Spent> {
        let taken = self
            .invocations
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                (used < self.max_invocations).then_some(used + 1)
            });
        taken.map(|_| ()).map_err(|_| {
            self.exhausted.store(true, Ordering::SeqCst);
            Spent::Invocations(self.max_invocations)
        })
    }

    /// Gives back an invocation taken for a call that did not run.
    pub(crate) fn return_invocation(&self) {
        let _ = self
            .invocations
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_sub(1)
            });
    }

    /// Charges `bytes` of collected results.
    ///
    /// # Errors
    ///
    /// [`Spent::Bytes`] when they would pass the bound (nothing is charged; the budget is then
    /// exhausted).
    pub(crate) fn charge_bytes(&self, bytes: u64) -> Result<(), Spent> {
        let charged = self
            .bytes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes)
                    .filter(|total| *total <= self.max_bytes)
            });
        charged.map(|_| ()).map_err(|_| {
            self.exhausted.store(true, Ordering::SeqCst);
            Spent::Bytes(self.max_bytes)
        })
    }

    /// Ends the cascade: no further delivery is made.
    pub(crate) fn exhaust(&self) {
        self.exhausted.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn invocations_run_out_and_can_be_given_back() {
        let budget = EventBudget::new(2);
        budget.take_invocation().unwrap();
        budget.take_invocation().unwrap();
        assert_eq!(budget.take_invocation(), Err(Spent::Invocations(2)));
        assert!(budget.is_exhausted());
        budget.return_invocation();
        assert_eq!(budget.invocations(), 1);
    }

    #[test]
    fn bytes_are_charged_until_the_bound_and_never_past_it() {
        let budget = EventBudget::new(10).with_max_bytes(100);
        budget.charge_bytes(60).unwrap();
        assert_eq!(budget.charge_bytes(41), Err(Spent::Bytes(100)));
        assert_eq!(budget.bytes(), 60);
        budget.charge_bytes(40).unwrap();
        assert_eq!(budget.bytes(), 100);
    }
}
