//! What a call through an install leaves behind: its outcome fed to the install's circuit
//! breaker, failure log and rollout guard (rolling back a failing upgrade), the
//! [`HostEvent`]s that result, and the breaker's status as operators and tenants see it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::PoisonError;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::table::Install;
use crate::breaker::{BreakerState, CircuitBreaker, RolloutVerdict};
use crate::error::{Error, InvokeError};
use crate::invoke::Invocation;
use crate::runs::{RunEntry, RunLogging, RunRecord};
use crate::runtime::{Host, lock};

/// How many recent failures an install keeps for [`Host::breaker_status`].
pub const RECENT_FAILURES: usize = 5;

/// What the breaker's wall-clock view needs: recent failures and when and why it opened.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    /// The latest failures that count against the plugin, oldest first.
    pub(crate) recent: VecDeque<CallFailure>,
    /// When the breaker last opened, and why.
    pub(crate) opened: Option<(SystemTime, String)>,
}

/// A failed call of an install that counted against its circuit breaker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallFailure {
    /// The error's code ([`InvokeError::code`]), e.g. `trap`.
    pub code: String,
    /// The error's message.
    pub message: String,
    /// When the call ended.
    pub at: SystemTime,
}

/// An install's circuit breaker state, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerStateName {
    /// Calls run normally.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// The cool-down is over: the next call is a trial.
    HalfOpen,
}

impl BreakerStateName {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerStateName::Closed => "closed",
            BreakerStateName::Open => "open",
            BreakerStateName::HalfOpen => "half_open",
        }
    }
}

/// An install's circuit breaker as an operator or tenant admin sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerStatus {
    /// Closed, open or half-open now.
    pub state: BreakerStateName,
    /// Why it opened (while not closed).
    pub reason: Option<String>,
    /// The latest failures that counted against the plugin (at most [`RECENT_FAILURES`]),
    /// newest first; kept after the breaker closes again.
    pub last_errors: Vec<CallFailure>,
    /// When it last opened (while not closed).
    pub opened_at: Option<SystemTime>,
    /// While open: how long until a trial call is let through.
    pub retry_after: Option<Duration>,
}

/// A lifecycle event the host reports to whoever listens (the marketplace records and
/// notifies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HostEvent {
    /// A fresh upgrade failed too often and the install was returned to its previous version.
    AutoRolledBack {
        /// The tenant.
        tenant: String,
        /// The plugin id.
        plugin: String,
        /// The version that failed.
        from: String,
        /// The version now running.
        to: String,
        /// Failures seen during the rollout.
        failures: u32,
        /// Calls seen during the rollout.
        calls: u32,
    },
    /// An install's circuit breaker opened after repeated failures.
    CircuitOpened {
        /// The tenant.
        tenant: String,
        /// The plugin id.
        plugin: String,
        /// The version failing.
        version: String,
    },
}

impl Host {
    /// Feeds a call's outcome to the install's breaker, failure log and rollout guard; rolls
    /// back if the rollout verdict says so. A call that was refused before it ran (breaker,
    /// capacity, quota, budget) says nothing about the plugin and is not counted.
    pub(super) async fn account(
        &self,
        tenant: &str,
        plugin: &str,
        install: &Install,
        version: &str,
        invocation: &Invocation,
    ) {
        if invocation
            .result
            .as_ref()
            .is_err_and(InvokeError::is_refusal)
        {
            return;
        }
        // Only failures that are the plugin's fault count against it.
        let success = !matches!(
            invocation.result,
            Err(InvokeError::OutOfFuel { .. }
                | InvokeError::Timeout { .. }
                | InvokeError::MemoryLimit { .. }
                | InvokeError::Trap { .. }
                | InvokeError::OutputTooLarge { .. })
        );
        let now = Instant::now();
        if let (false, Err(error)) = (success, &invocation.result) {
            let mut log = lock(&install.failures);
            if log.recent.len() >= RECENT_FAILURES {
                log.recent.pop_front();
            }
            log.recent.push_back(CallFailure {
                code: error.code().to_string(),
                message: error.to_string(),
                at: SystemTime::now(),
            });
        }
        {
            let mut breaker = lock(&install.breaker);
            let was_open = matches!(breaker.state(now), BreakerState::Open { .. });
            breaker.record(now, success);
            if !was_open && matches!(breaker.state(now), BreakerState::Open { .. }) {
                let policy = breaker.policy();
                let reason = format!(
                    "{} failures within {} s{}",
                    policy.failure_threshold.max(1),
                    policy.window.as_secs(),
                    invocation
                        .result
                        .as_ref()
                        .err()
                        .map(|error| format!("; the last: {error}"))
                        .unwrap_or_default()
                );
                lock(&install.failures).opened = Some((SystemTime::now(), reason));
                let _ = self.events.send(HostEvent::CircuitOpened {
                    tenant: tenant.to_string(),
                    plugin: plugin.to_string(),
                    version: version.to_string(),
                });
            }
        }
        let verdict = {
            let mut rollout = lock(&install.rollout);
            match rollout.as_mut() {
                // Only calls on the version being rolled out count toward its verdict.
                Some(guard) if install.current.load().version() == version => {
                    let verdict = guard.record(now, success);
                    if !matches!(verdict, RolloutVerdict::Watching) {
                        *rollout = None;
                    }
                    verdict
                }
                _ => RolloutVerdict::Watching,
            }
        };
        if let RolloutVerdict::RollBack { failures, calls } = verdict {
            match self.roll_back_install(tenant, plugin, install).await {
                Ok(rolled) => {
                    tracing::warn!(tenant, plugin, from = %rolled.from, to = %rolled.to, failures, calls, "automatic rollback");
                    let _ = self.events.send(HostEvent::AutoRolledBack {
                        tenant: tenant.to_string(),
                        plugin: plugin.to_string(),
                        from: rolled.from,
                        to: rolled.to,
                        failures,
                        calls,
                    });
                }
                Err(error) => tracing::error!(tenant, plugin, %error, "automatic rollback failed"),
            }
        }
    }

    /// Hands the run that ended as `invocation` to the run recorder, if one is set (see
    /// [`crate::runs`]); the invocation's log lines move into the record. `input` is the
    /// call's payload or request body and `output` an HTTP response's body; they are copied
    /// only when `logging` captures. Without a recorder (or while it is not recording) nothing
    /// is built: not even the `entry`.
    pub(super) fn record_run(
        &self,
        key: (&str, &str, &str),
        entry: impl FnOnce() -> RunEntry,
        logging: &RunLogging,
        invocation: &mut Invocation,
        input: &[u8],
        output: Option<&[u8]>,
    ) {
        if let Some(recorder) = self.run_recorder.get()
            && recorder.recording()
        {
            recorder.record(RunRecord::of(
                key,
                entry(),
                logging,
                invocation,
                input,
                output,
            ));
        }
    }

    /// The circuit breaker of `tenant`'s install of `plugin`: its state, why and when it
    /// opened, and the latest failures that counted against the plugin. `None` if there is no
    /// such install.
    pub fn breaker_status(&self, tenant: &str, plugin: &str) -> Option<BreakerStatus> {
        let install = self.find(tenant, plugin).ok()?;
        let now = Instant::now();
        let state = lock(&install.breaker).state(now);
        let log = lock(&install.failures);
        let (name, retry_after) = match state {
            BreakerState::Closed => (BreakerStateName::Closed, None),
            BreakerState::Open { until } => (
                BreakerStateName::Open,
                Some(until.saturating_duration_since(now)),
            ),
            BreakerState::HalfOpen => (BreakerStateName::HalfOpen, None),
        };
        let opened = match name {
            BreakerStateName::Closed => None,
            _ => log.opened.clone(),
        };
        Some(BreakerStatus {
            state: name,
            reason: opened.as_ref().map(|(_, reason)| reason.clone()),
            last_errors: log.recent.iter().rev().cloned().collect(),
            opened_at: opened.map(|(at, _)| at),
            retry_after,
        })
    }

    /// How many installs of each plugin have their circuit breaker in each state now:
    /// `(plugin, state) → installs`, over every tenant.
    pub fn breaker_states(&self) -> BTreeMap<(String, BreakerStateName), u64> {
        let now = Instant::now();
        let mut states = BTreeMap::new();
        let table = self.installs.read().unwrap_or_else(PoisonError::into_inner);
        for (plugin, install) in table.values().flatten() {
            let state = match lock(&install.breaker).state(now) {
                BreakerState::Closed => BreakerStateName::Closed,
                BreakerState::Open { .. } => BreakerStateName::Open,
                BreakerState::HalfOpen => BreakerStateName::HalfOpen,
            };
            *states.entry((plugin.clone(), state)).or_insert(0) += 1;
        }
        states
    }

    /// Closes the circuit breaker of `tenant`'s install of `plugin` (an admin decided the
    /// cause is fixed): calls run again at once and the failure window starts empty. The
    /// recent failures are kept for [`Host::breaker_status`].
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`].
    pub fn reset_breaker(&self, tenant: &str, plugin: &str) -> Result<BreakerStatus, Error> {
        let install = self.find(tenant, plugin)?;
        *lock(&install.breaker) = CircuitBreaker::new(self.policies.breaker);
        lock(&install.failures).opened = None;
        tracing::info!(tenant, plugin, "circuit breaker reset");
        self.breaker_status(tenant, plugin)
            .ok_or_else(|| Error::NotInstalled {
                tenant: tenant.to_string(),
                plugin: plugin.to_string(),
            })
    }
}

/// The error of a call refused by an open breaker that lets a trial through in `retry_after`.
pub(crate) fn circuit_open(retry_after: std::time::Duration) -> InvokeError {
    InvokeError::CircuitOpen {
        retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
    }
}
