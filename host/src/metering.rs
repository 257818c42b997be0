//! Usage metering: per (tenant, plugin, version) counters, aggregated in memory by a [`Meter`]
//! and flushed in batches to a [`UsageSink`] (the marketplace persists them for quotas, usage
//! pricing and dashboards).
//!
//! Recording is the hot path: one short lock and, once a key has been seen, no allocation.
//! Flushing drains the counters and hands them to the sink; if the sink fails (or the flush is
//! cancelled before the sink answers) the drained counters are merged back, so usage is never
//! lost. A sink must therefore store a batch all or nothing for every call to be counted once.
//!
//! # Periods
//!
//! The meter has one current period, which starts when it is created and at every drain. Every
//! [`UsageRecord`] of a drain carries that period: `period_start` is the previous drain (or the
//! meter's creation) and `period_end` the drain itself, so successive drains cover contiguous,
//! non-overlapping periods. Records merged back after a failed flush move the start of the
//! current period back to theirs, so the next drain covers both.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use plinth_host::metering::{CallRecord, Meter};
//!
//! let meter = Meter::new();
//! let ok = CallRecord { wall: Duration::from_millis(3), ..CallRecord::default() };
//! let failed = CallRecord { error_code: Some("timeout"), ..ok };
//! meter.record(("acme", "greeter", "1.0.0"), &ok);
//! meter.record(("acme", "greeter", "1.0.0"), &failed);
//!
//! let records = meter.drain();
//! assert_eq!(records.len(), 1);
//! assert_eq!(records[0].counters.invocations, 2);
//! assert_eq!(records[0].counters.failures["timeout"], 1);
//! assert_eq!(records[0].counters.wall_time_us, 6_000);
//! assert!(meter.drain().is_empty());
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use dashmap::mapref::one::RefMut;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::budget::QuotaGrant;

/// Whose usage a counter holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MeterKey {
    /// The tenant the calls ran for.
    pub tenant: String,
    /// The plugin's id.
    pub plugin: String,
    /// The plugin version that ran.
    pub version: String,
}

impl MeterKey {
    /// A key from its parts.
    pub fn new(
        tenant: impl Into<String>,
        plugin: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        MeterKey {
            tenant: tenant.into(),
            plugin: plugin.into(),
            version: version.into(),
        }
    }
}

/// Usage summed over calls. Every counter saturates instead of overflowing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCounters {
    /// Calls, failed ones included.
    pub invocations: u64,
    /// Failed calls by error code (e.g. [`InvokeError::code`](crate::InvokeError::code)).
    pub failures: BTreeMap<String, u64>,
    /// Wall-clock time of the calls, in microseconds.
    pub wall_time_us: u64,
    /// Fuel consumed by the calls that ran with fuel metering.
    pub fuel: u64,
    /// Bytes of keys and values written to kv.
    pub kv_bytes_written: u64,
    /// Outbound HTTP requests sent.
    pub outbound_requests: u64,
}

impl UsageCounters {
    /// Failed calls, all codes together.
    pub fn failures_total(&self) -> u64 {
        self.failures
            .values()
            .fold(0, |total, &count| total.saturating_add(count))
    }

    /// Whether nothing has been counted.
    pub fn is_empty(&self) -> bool {
        *self == UsageCounters::default()
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &UsageCounters) {
        self.invocations = self.invocations.saturating_add(other.invocations);
        for (code, &count) in &other.failures {
            add_failures(&mut self.failures, code, count);
        }
        self.wall_time_us = self.wall_time_us.saturating_add(other.wall_time_us);
        self.fuel = self.fuel.saturating_add(other.fuel);
        self.kv_bytes_written = self.kv_bytes_written.saturating_add(other.kv_bytes_written);
        self.outbound_requests = self
            .outbound_requests
            .saturating_add(other.outbound_requests);
    }

    /// Adds what one started call used (its invocation was counted when it began).
    fn add_usage(&mut self, call: &CallRecord<'_>) {
        if let Some(code) = call.error_code {
            add_failures(&mut self.failures, code, 1);
        }
        let wall_us = u64::try_from(call.wall.as_micros()).unwrap_or(u64::MAX);
        self.wall_time_us = self.wall_time_us.saturating_add(wall_us);
        if let Some(fuel) = call.fuel {
            self.fuel = self.fuel.saturating_add(fuel);
        }
        self.kv_bytes_written = self.kv_bytes_written.saturating_add(call.kv_bytes_written);
        self.outbound_requests = self
            .outbound_requests
            .saturating_add(u64::from(call.outbound_requests));
    }
}

/// Adds `count` failures under `code`, allocating the code only the first time it is seen.
fn add_failures(failures: &mut BTreeMap<String, u64>, code: &str, count: u64) {
    if let Some(total) = failures.get_mut(code) {
        *total = total.saturating_add(count);
    } else {
        failures.insert(code.to_owned(), count);
    }
}

/// What one call used, as the host measured it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallRecord<'a> {
    /// Wall-clock time of the whole call.
    pub wall: Duration,
    /// Fuel consumed, when fuel metering was on.
    pub fuel: Option<u64>,
    /// Bytes of keys and values written to kv.
    pub kv_bytes_written: u64,
    /// Outbound HTTP requests sent.
    pub outbound_requests: u32,
    /// The error code when the call failed (e.g. [`InvokeError::code`](crate::InvokeError::code));
    /// `None` for a success.
    pub error_code: Option<&'a str>,
}

/// One key's usage over one period: what a [`Meter`] hands to its [`UsageSink`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// Whose usage it is.
    pub key: MeterKey,
    /// The usage.
    pub counters: UsageCounters,
    /// When the period began: the previous drain, or when the meter was created.
    pub period_start: SystemTime,
    /// When the period ended: the drain (or snapshot) that produced this record. Never before
    /// `period_start`, even if the system clock went back.
    pub period_end: SystemTime,
}

/// Why a [`UsageSink`] could not store a batch. The sink stored none of it.
#[derive(Debug, thiserror::Error)]
#[error("usage sink: {message}")]
pub struct SinkError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl SinkError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
            source: None,
        }
    }

    /// An error with this message, caused by `source` (e.g. the database's error).
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        SinkError {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Where a [`Meter`] flushes its records; the marketplace implements it over its database.
///
/// Implementations return a boxed future so the trait stays usable as `dyn UsageSink`:
///
/// ```
/// use std::{future::Future, pin::Pin};
/// use plinth_host::metering::{SinkError, UsageRecord, UsageSink};
///
/// struct Stdout;
///
/// impl UsageSink for Stdout {
///     fn flush(
///         &self,
///         batch: Vec<UsageRecord>,
///     ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + '_>> {
///         Box::pin(async move {
///             for record in batch {
///                 println!("{:?}: {} calls", record.key, record.counters.invocations);
///             }
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait UsageSink: Send + Sync + 'static {
    /// Stores a batch: all of it (`Ok`) or none of it (`Err`). A batch holds at most one record
    /// per key, but several batches may hold the same key for the same period when an earlier
    /// flush failed; add them up.
    ///
    /// # Errors
    ///
    /// Any [`SinkError`]; the meter then keeps the batch's usage for its next flush.
    fn flush(
        &self,
        batch: Vec<UsageRecord>,
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + '_>>;
}

/// plugin → version → counters: nested so that a lookup by `&str` needs no allocation.
type UsageMap = HashMap<String, HashMap<String, UsageCounters>>;

/// The meter's state. Every call touches only its tenant's entry, in a sharded map: calls of
/// different tenants rarely wait for each other, however many cores run them. Draining and
/// snapshots hold `period_start` while they walk the tenants, shard by shard.
#[derive(Debug)]
struct MeterState {
    period_start: Mutex<SystemTime>,
    tenants: DashMap<String, TenantUsage>,
}

/// One tenant's counters and invocations.
#[derive(Debug, Default)]
struct TenantUsage {
    usage: UsageMap,
    invocations: TenantInvocations,
}

/// A tenant's invocations as this meter knows them.
#[derive(Clone, Copy, Debug, Default)]
struct TenantInvocations {
    /// Counted and not yet stored by a confirmed flush (pending, being flushed, or merged
    /// back after a failed flush).
    unflushed: u64,
    /// Stored by confirmed flushes since the meter started (only ever grows).
    flushed: u64,
}

/// A call the tenant's monthly quota does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the tenant has used {used} of its {limit} invocations this month")]
pub struct QuotaRefused {
    /// Invocations counted this month (at least; see [`QuotaGrant`]).
    pub used: u64,
    /// The monthly limit.
    pub limit: u64,
}

/// Usage counters for every (tenant, plugin, version), shared by clones of this handle.
///
/// Keys that saw calls in the last period keep their slot across a drain (with zeroed
/// counters) so recording them again does not allocate; a key idle for a whole period is
/// forgotten at the next drain.
#[derive(Clone, Debug)]
pub struct Meter {
    state: Arc<MeterState>,
    observer: Arc<OnceLock<Arc<dyn CallObserver>>>,
}

/// Sees every call a [`Meter`] records, as it is recorded (e.g. to export metrics). It runs
/// on the call's path, so it must be quick and must not block.
pub trait CallObserver: Send + Sync + fmt::Debug {
    /// One call of `(tenant, plugin, version)`.
    fn observe(&self, key: (&str, &str, &str), call: &CallRecord<'_>);
}

impl Default for Meter {
    fn default() -> Self {
        Meter::new()
    }
}

impl Meter {
    /// An empty meter whose first period starts now.
    pub fn new() -> Self {
        Meter {
            state: Arc::new(MeterState {
                period_start: Mutex::new(SystemTime::now()),
                tenants: DashMap::new(),
            }),
            observer: Arc::new(OnceLock::new()),
        }
    }

    /// Shows every call recorded from now on to `observer` as well. A meter has at most one
    /// observer: returns `false` (and keeps the first) if one was set already.
    pub fn set_observer(&self, observer: Arc<dyn CallObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Counts one whole call of `(tenant, plugin, version)`: [`Meter::begin`] and
    /// [`Meter::finish`] at once.
    pub fn record(&self, key: (&str, &str, &str), call: &CallRecord<'_>) {
        self.begin(key);
        self.finish(key, call);
    }

    /// Counts the invocation of a call that starts now (before it runs, so quota checks see
    /// the calls in flight). Finish it with [`Meter::finish`].
    pub fn begin(&self, (tenant, plugin, version): (&str, &str, &str)) {
        count_invocation(&mut self.tenant(tenant), plugin, version);
    }

    /// [`Meter::begin`], only if `tenant`'s invocations this month stay within `quota`: the
    /// check and the count are one step, so concurrent calls never pass the limit together.
    ///
    /// # Errors
    ///
    /// [`QuotaRefused`] when the tenant has used its invocations; nothing is counted.
    pub fn try_begin(
        &self,
        (tenant, plugin, version): (&str, &str, &str),
        quota: &QuotaGrant,
    ) -> Result<(), QuotaRefused> {
        let mut entry = self.tenant(tenant);
        let known = entry.invocations;
        let used = quota
            .stored
            .saturating_add(known.flushed.saturating_sub(quota.flushed_mark))
            .saturating_add(known.unflushed);
        if used >= quota.limit {
            return Err(QuotaRefused {
                used,
                limit: quota.limit,
            });
        }
        count_invocation(&mut entry, plugin, version);
        Ok(())
    }

    /// Adds what a call started with [`Meter::begin`] used: its time, fuel, kv bytes, outbound
    /// requests and failure.
    pub fn finish(&self, (tenant, plugin, version): (&str, &str, &str), call: &CallRecord<'_>) {
        counters_mut(
            &mut self.tenant(tenant).usage,
            plugin,
            version,
            |counters| {
                counters.add_usage(call);
            },
        );
        if let Some(observer) = self.observer.get() {
            observer.observe((tenant, plugin, version), call);
        }
    }

    /// `tenant`'s invocations counted here that no confirmed flush has stored yet (in flight,
    /// pending or being flushed). Read it, and [`Meter::flushed_invocations`], *before* reading
    /// what is stored: a flush then never falls between the two reads unseen.
    pub fn unflushed_invocations(&self, tenant: &str) -> u64 {
        self.state
            .tenants
            .get(tenant)
            .map_or(0, |t| t.invocations.unflushed)
    }

    /// `tenant`'s invocations stored by confirmed flushes since this meter started.
    pub fn flushed_invocations(&self, tenant: &str) -> u64 {
        self.state
            .tenants
            .get(tenant)
            .map_or(0, |t| t.invocations.flushed)
    }

    /// The usage counted since the last drain, without draining it; `period_end` is now.
    /// Records are sorted by key.
    pub fn snapshot(&self) -> Vec<UsageRecord> {
        self.snapshot_where(None)
    }

    /// [`Meter::snapshot`] of one tenant's keys only: a lookup, not a walk over every tenant.
    pub fn snapshot_tenant(&self, tenant: &str) -> Vec<UsageRecord> {
        self.snapshot_where(Some(tenant))
    }

    fn snapshot_where(&self, only: Option<&str>) -> Vec<UsageRecord> {
        let now = SystemTime::now();
        // Held while the tenants are read, as a drain holds it while it takes them.
        let period = self.period_start();
        let period_start = *period;
        let period_end = now.max(period_start);
        let mut records = Vec::new();
        let mut add = |tenant: &str, usage: &UsageMap| {
            for (plugin, versions) in usage {
                for (version, counters) in versions {
                    if !counters.is_empty() {
                        records.push(UsageRecord {
                            key: MeterKey::new(tenant, plugin, version),
                            counters: counters.clone(),
                            period_start,
                            period_end,
                        });
                    }
                }
            }
        };
        match only {
            Some(tenant) => {
                if let Some(entry) = self.state.tenants.get(tenant) {
                    add(tenant, &entry.usage);
                }
            }
            None => {
                for entry in &self.state.tenants {
                    add(entry.key(), &entry.usage);
                }
            }
        }
        drop(period);
        records.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        records
    }

    /// Takes the usage counted since the last drain and starts a new period. Records are
    /// sorted by key; keys without calls are left out. A call counted while the drain walks
    /// the tenants lands in exactly one period: this one if its tenant was not drained yet.
    pub fn drain(&self) -> Vec<UsageRecord> {
        let now = SystemTime::now();
        let mut period = self.period_start();
        let period_start = *period;
        let period_end = now.max(period_start);
        *period = period_end;
        let mut records = Vec::new();
        for mut entry in self.state.tenants.iter_mut() {
            let (tenant, usage) = entry.pair_mut();
            usage.usage.retain(|plugin, versions| {
                versions.retain(|version, counters| {
                    if counters.is_empty() {
                        return false;
                    }
                    records.push(UsageRecord {
                        key: MeterKey::new(tenant, plugin, version),
                        counters: std::mem::take(counters),
                        period_start,
                        period_end,
                    });
                    true
                });
                !versions.is_empty()
            });
        }
        drop(period);
        records.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        records
    }

    /// Drains the meter and hands the records to `sink` in one batch; returns how many records
    /// it stored. An empty meter does not call the sink and returns `Ok(0)`.
    ///
    /// If the sink fails, or this future is dropped before the sink answers, the drained usage
    /// is merged back into the meter and goes out with a later flush.
    ///
    /// # Errors
    ///
    /// The sink's error.
    pub async fn flush_to(&self, sink: &dyn UsageSink) -> Result<usize, SinkError> {
        let batch = self.drain();
        if batch.is_empty() {
            return Ok(0);
        }
        let count = batch.len();
        let mut unconfirmed = Unconfirmed {
            meter: self,
            records: batch.clone(),
        };
        sink.flush(batch).await?;
        self.confirm(&unconfirmed.records);
        unconfirmed.records.clear();
        tracing::debug!(records = count, "usage flushed");
        Ok(count)
    }

    /// Flushes to `sink` every `every` (at least 1 ms) on a tokio task, until
    /// [`FlusherHandle::shutdown`], which flushes one last time. A failed flush is logged and
    /// its usage kept for the next one. Dropping the handle instead stops the task after a
    /// last flush of its own, whose failure is only logged.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like [`tokio::spawn`].
    pub fn spawn_flusher(&self, sink: Arc<dyn UsageSink>, every: Duration) -> FlusherHandle {
        let every = every.max(Duration::from_millis(1));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let meter = self.clone();
        let task_sink = Arc::clone(&sink);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    signal = &mut stopped => {
                        // Err: the handle was dropped without `shutdown`, which would have
                        // done the last flush itself.
                        if signal.is_err()
                            && let Err(error) = meter.flush_to(&*task_sink).await
                        {
                            tracing::warn!(%error, "last usage flush failed; usage not stored");
                        }
                        return;
                    }
                    () = tokio::time::sleep(every) => {
                        if let Err(error) = meter.flush_to(&*task_sink).await {
                            tracing::warn!(%error, "usage flush failed; kept for the next one");
                        }
                    }
                }
            }
        });
        FlusherHandle {
            meter: self.clone(),
            sink,
            stop,
            task,
        }
    }

    /// Moves the invocations of a batch the sink stored from unflushed to flushed.
    fn confirm(&self, records: &[UsageRecord]) {
        for record in records {
            let mut entry = self.tenant(&record.key.tenant);
            let tenant = &mut entry.invocations;
            let invocations = record.counters.invocations;
            tenant.unflushed = tenant.unflushed.saturating_sub(invocations);
            tenant.flushed = tenant.flushed.saturating_add(invocations);
        }
    }

    /// Adds records back after a flush that did not go through; the current period then
    /// starts no later than theirs.
    fn merge_back(&self, records: &[UsageRecord]) {
        let mut period = self.period_start();
        for record in records {
            let key = &record.key;
            counters_mut(
                &mut self.tenant(&key.tenant).usage,
                &key.plugin,
                &key.version,
                |counters| counters.add(&record.counters),
            );
            *period = (*period).min(record.period_start);
        }
    }

    /// `tenant`'s entry, created if new, locked (its shard only). Allocates only for a new
    /// tenant.
    fn tenant(&self, tenant: &str) -> RefMut<'_, String, TenantUsage> {
        match self.state.tenants.get_mut(tenant) {
            Some(entry) => entry,
            None => self.state.tenants.entry(tenant.to_owned()).or_default(),
        }
    }

    /// The start of the current period, locked: taken before any tenant's entry by whoever
    /// needs both. It is a plain time, so a panic elsewhere while holding it leaves it usable.
    fn period_start(&self) -> MutexGuard<'_, SystemTime> {
        self.state
            .period_start
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts one invocation of the key, and of its tenant.
fn count_invocation(tenant: &mut TenantUsage, plugin: &str, version: &str) {
    counters_mut(&mut tenant.usage, plugin, version, |counters| {
        counters.invocations = counters.invocations.saturating_add(1);
    });
    tenant.invocations.unflushed = tenant.invocations.unflushed.saturating_add(1);
}

/// Applies `update` to the key's counters, creating them (and allocating the key) only when
/// the key is new.
fn counters_mut(
    usage: &mut UsageMap,
    plugin: &str,
    version: &str,
    update: impl FnOnce(&mut UsageCounters),
) {
    if let Some(counters) = usage
        .get_mut(plugin)
        .and_then(|versions| versions.get_mut(version))
    {
        update(counters);
        return;
    }
    let versions = match usage.get_mut(plugin) {
        Some(versions) => versions,
        None => usage.entry(plugin.to_owned()).or_default(),
    };
    update(versions.entry(version.to_owned()).or_default());
}

/// A drained batch the sink has not confirmed: merged back into the meter when dropped
/// non-empty (the sink failed, or the flush was cancelled).
struct Unconfirmed<'m> {
    meter: &'m Meter,
    records: Vec<UsageRecord>,
}

impl Drop for Unconfirmed<'_> {
    fn drop(&mut self) {
        if !self.records.is_empty() {
            tracing::debug!(
                records = self.records.len(),
                "usage not flushed; merged back"
            );
            self.meter.merge_back(&self.records);
        }
    }
}

/// The task started by [`Meter::spawn_flusher`].
pub struct FlusherHandle {
    meter: Meter,
    sink: Arc<dyn UsageSink>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl fmt::Debug for FlusherHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlusherHandle")
            .field("meter", &self.meter)
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
}

impl FlusherHandle {
    /// Stops the periodic flushes (waiting for one in progress to finish) and flushes what is
    /// left; returns how many records that last flush stored.
    ///
    /// # Errors
    ///
    /// The sink's error on the last flush; the usage then stays in the meter.
    pub async fn shutdown(self) -> Result<usize, SinkError> {
        let FlusherHandle {
            meter,
            sink,
            stop,
            task,
        } = self;
        // Err only if the task is already gone (it panicked); the last flush below still runs.
        let _ = stop.send(());
        if let Err(error) = task.await {
            tracing::warn!(%error, "usage flusher task failed");
        }
        meter.flush_to(&*sink).await
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "tests")]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use tokio::sync::Notify;

    use super::*;

    const KEY: (&str, &str, &str) = ("acme", "greeter", "1.0.0");

    /// Stores batches in memory; fails the flushes chosen by `fail`.
    #[derive(Default)]
    struct MemorySink {
        batches: Mutex<Vec<Vec<UsageRecord>>>,
        /// Flush attempts so far.
        attempts: AtomicU32,
        /// Fail this many flushes first.
        fail_first: AtomicU32,
        /// Fail every attempt whose number (from 1) is a multiple of this, when non-zero.
        fail_every: u32,
        delivered: Notify,
    }

    impl MemorySink {
        fn failing_first(n: u32) -> Self {
            MemorySink {
                fail_first: AtomicU32::new(n),
                ..MemorySink::default()
            }
        }

        fn batches(&self) -> Vec<Vec<UsageRecord>> {
            self.batches.lock().expect("sink lock").clone()
        }

        /// Everything stored, summed per key.
        fn totals(&self) -> BTreeMap<MeterKey, UsageCounters> {
            let mut totals = BTreeMap::<MeterKey, UsageCounters>::new();
            for record in self.batches().into_iter().flatten() {
                totals.entry(record.key).or_default().add(&record.counters);
            }
            totals
        }
    }

    impl UsageSink for MemorySink {
        fn flush(
            &self,
            batch: Vec<UsageRecord>,
        ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + '_>> {
            Box::pin(async move {
                let attempt = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
                let fail_first = self
                    .fail_first
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if fail_first || (self.fail_every != 0 && attempt.is_multiple_of(self.fail_every)) {
                    return Err(SinkError::new("storage unavailable"));
                }
                self.batches.lock().expect("sink lock").push(batch);
                self.delivered.notify_one();
                Ok(())
            })
        }
    }

    /// Never answers.
    struct StuckSink;

    impl UsageSink for StuckSink {
        fn flush(
            &self,
            _batch: Vec<UsageRecord>,
        ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + '_>> {
            Box::pin(std::future::pending())
        }
    }

    fn call(wall_us: u64, error_code: Option<&str>) -> CallRecord<'_> {
        CallRecord {
            wall: Duration::from_micros(wall_us),
            fuel: Some(100),
            kv_bytes_written: 10,
            outbound_requests: 2,
            error_code,
        }
    }

    fn key((tenant, plugin, version): (&str, &str, &str)) -> MeterKey {
        MeterKey::new(tenant, plugin, version)
    }

    #[test]
    fn a_tenant_snapshot_holds_that_tenant_only() {
        let meter = Meter::new();
        meter.record(("acme", "p", "1.0.0"), &call(1, None));
        meter.record(("acme", "q", "1.0.0"), &call(1, None));
        meter.record(("other", "p", "1.0.0"), &call(1, None));
        let all = meter.snapshot();
        let acme = meter.snapshot_tenant("acme");
        assert_eq!(acme.len(), 2);
        let expected: Vec<&MeterKey> = all
            .iter()
            .map(|r| &r.key)
            .filter(|k| k.tenant == "acme")
            .collect();
        assert_eq!(acme.iter().map(|r| &r.key).collect::<Vec<_>>(), expected);
        assert!(meter.snapshot_tenant("nobody").is_empty());
    }

    #[test]
    fn records_aggregate_per_key() {
        let meter = Meter::new();
        meter.record(KEY, &call(5, None));
        meter.record(KEY, &call(7, Some("timeout")));
        meter.record(
            KEY,
            &CallRecord {
                fuel: None,
                ..call(1, Some("trap"))
            },
        );
        meter.record(KEY, &call(1, Some("timeout")));

        let records = meter.snapshot();
        assert_eq!(records.len(), 1);
        let record = &records[0];
        assert_eq!(record.key, key(KEY));
        assert!(record.period_start <= record.period_end);
        let counters = &record.counters;
        assert_eq!(counters.invocations, 4);
        assert_eq!(counters.wall_time_us, 14);
        assert_eq!(counters.fuel, 300);
        assert_eq!(counters.kv_bytes_written, 40);
        assert_eq!(counters.outbound_requests, 8);
        assert_eq!(
            counters.failures,
            BTreeMap::from([("timeout".to_owned(), 2), ("trap".to_owned(), 1)])
        );
        assert_eq!(counters.failures_total(), 3);
    }

    #[test]
    fn separate_keys_stay_separate_and_sorted() {
        let meter = Meter::new();
        let keys = [
            ("globex", "greeter", "1.0.0"),
            ("acme", "greeter", "2.0.0"),
            ("acme", "greeter", "1.0.0"),
            ("acme", "audit", "1.0.0"),
        ];
        for (i, k) in keys.into_iter().enumerate() {
            for _ in 0..=i {
                meter.record(k, &call(1, None));
            }
        }
        let records = meter.snapshot();
        let got: Vec<(MeterKey, u64)> = records
            .into_iter()
            .map(|r| (r.key, r.counters.invocations))
            .collect();
        assert_eq!(
            got,
            vec![
                (key(("acme", "audit", "1.0.0")), 4),
                (key(("acme", "greeter", "1.0.0")), 3),
                (key(("acme", "greeter", "2.0.0")), 2),
                (key(("globex", "greeter", "1.0.0")), 1),
            ]
        );
    }

    #[test]
    fn snapshot_does_not_drain_and_drain_resets() {
        let meter = Meter::new();
        meter.record(KEY, &call(5, Some("trap")));
        let counts = |records: Vec<UsageRecord>| -> Vec<(MeterKey, UsageCounters)> {
            records.into_iter().map(|r| (r.key, r.counters)).collect()
        };
        assert_eq!(counts(meter.snapshot()), counts(meter.snapshot()));

        let first = meter.drain();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].counters.invocations, 1);
        assert!(meter.snapshot().is_empty());
        assert!(meter.drain().is_empty());

        meter.record(KEY, &call(3, None));
        let second = meter.drain();
        assert_eq!(second.len(), 1);
        let counters = &second[0].counters;
        assert_eq!((counters.invocations, counters.wall_time_us), (1, 3));
        assert!(counters.failures.is_empty());
        // Periods are contiguous.
        assert!(second[0].period_start >= first[0].period_end);
    }

    #[test]
    fn counters_saturate() {
        let meter = Meter::new();
        let huge = CallRecord {
            wall: Duration::MAX,
            fuel: Some(u64::MAX),
            kv_bytes_written: u64::MAX,
            outbound_requests: u32::MAX,
            error_code: None,
        };
        meter.record(KEY, &huge);
        meter.record(KEY, &huge);
        let counters = &meter.drain()[0].counters;
        assert_eq!(counters.wall_time_us, u64::MAX);
        assert_eq!(counters.fuel, u64::MAX);
        assert_eq!(counters.kv_bytes_written, u64::MAX);
        assert_eq!(counters.outbound_requests, 2 * u64::from(u32::MAX));
    }

    #[tokio::test]
    async fn empty_meter_does_not_call_the_sink() {
        let sink = MemorySink::default();
        assert_eq!(Meter::new().flush_to(&sink).await.ok(), Some(0));
        assert_eq!(sink.attempts.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_failing_sink_loses_nothing() {
        let meter = Meter::new();
        let sink = MemorySink::failing_first(2);
        meter.record(KEY, &call(5, Some("timeout")));
        meter.record(("acme", "other", "1.0.0"), &call(1, None));
        let expected = meter.snapshot();

        assert!(meter.flush_to(&sink).await.is_err());
        // Merged back: the meter holds what it held before.
        let after_failure = meter.snapshot();
        assert_eq!(after_failure.len(), 2);
        for (got, want) in after_failure.iter().zip(&expected) {
            assert_eq!((&got.key, &got.counters), (&want.key, &want.counters));
            assert_eq!(got.period_start, want.period_start);
        }

        // More calls arrive, a second flush fails too, then one succeeds.
        meter.record(KEY, &call(2, Some("timeout")));
        assert!(meter.flush_to(&sink).await.is_err());
        assert_eq!(meter.flush_to(&sink).await.ok(), Some(2));
        assert!(meter.snapshot().is_empty());
        assert_eq!(meter.flush_to(&sink).await.ok(), Some(0));

        let batches = sink.batches();
        assert_eq!(batches.len(), 1, "delivered exactly once");
        let totals = sink.totals();
        let main = &totals[&key(KEY)];
        assert_eq!((main.invocations, main.wall_time_us), (2, 7));
        assert_eq!(main.failures["timeout"], 2);
        assert_eq!(totals[&key(("acme", "other", "1.0.0"))].invocations, 1);
        assert_eq!(batches[0][0].period_start, expected[0].period_start);
    }

    #[tokio::test]
    async fn a_cancelled_flush_loses_nothing() {
        let meter = Meter::new();
        meter.record(KEY, &call(5, None));
        let before = meter.snapshot();
        tokio::select! {
            biased;
            _ = meter.flush_to(&StuckSink) => unreachable!("the sink never answers"),
            () = std::future::ready(()) => {}
        }
        let after = meter.snapshot();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].counters, before[0].counters);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_recording_is_delivered_exactly() {
        const TASKS: u64 = 6;
        const CALLS: u64 = 2_000;
        let meter = Meter::new();
        // Every third flush fails, exercising merge-back while others record.
        let sink = Arc::new(MemorySink {
            fail_every: 3,
            ..MemorySink::default()
        });
        let done = Arc::new(AtomicBool::new(false));

        let flusher = {
            let (meter, sink, done) = (meter.clone(), Arc::clone(&sink), Arc::clone(&done));
            tokio::spawn(async move {
                while !done.load(Ordering::SeqCst) {
                    let _ = meter.flush_to(&*sink).await;
                    tokio::task::yield_now().await;
                }
            })
        };
        let recorders: Vec<_> = (0..TASKS)
            .map(|task| {
                let meter = meter.clone();
                tokio::spawn(async move {
                    let tenant = if task % 2 == 0 { "acme" } else { "globex" };
                    for i in 0..CALLS {
                        let code = (i % 4 == 0).then_some("trap");
                        meter.record((tenant, "greeter", "1.0.0"), &call(i % 7, code));
                        if i % 64 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for recorder in recorders {
            recorder.await.expect("recorder");
        }
        done.store(true, Ordering::SeqCst);
        flusher.await.expect("flusher");
        // Drain what is left through a sink that works now.
        while !meter.snapshot().is_empty() {
            let _ = meter.flush_to(&*sink).await;
        }

        let per_tenant = TASKS / 2 * CALLS;
        let wall_per_task: u64 = (0..CALLS).map(|i| i % 7).sum();
        let traps_per_task = CALLS.div_ceil(4);
        let totals = sink.totals();
        assert_eq!(totals.len(), 2);
        for tenant in ["acme", "globex"] {
            let c = &totals[&key((tenant, "greeter", "1.0.0"))];
            assert_eq!(c.invocations, per_tenant);
            assert_eq!(c.wall_time_us, TASKS / 2 * wall_per_task);
            assert_eq!(c.fuel, per_tenant * 100);
            assert_eq!(c.kv_bytes_written, per_tenant * 10);
            assert_eq!(c.outbound_requests, per_tenant * 2);
            assert_eq!(c.failures_total(), TASKS / 2 * traps_per_task);
        }
        for batch in sink.batches() {
            let mut keys: Vec<_> = batch.iter().map(|r| &r.key).collect();
            keys.dedup();
            assert_eq!(keys.len(), batch.len(), "one record per key in a batch");
        }
    }

    #[tokio::test]
    async fn flusher_delivers_on_shutdown() {
        let meter = Meter::new();
        let sink = Arc::new(MemorySink::default());
        // Never ticks: only shutdown flushes (and a huge period must not overflow).
        let handle = meter.spawn_flusher(sink.clone(), Duration::MAX);
        meter.record(KEY, &call(5, None));
        meter.record(KEY, &call(5, Some("timeout")));
        assert_eq!(handle.shutdown().await.ok(), Some(1));
        let batches = sink.batches();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0][0].counters.invocations, 2);
        assert!(meter.snapshot().is_empty());
    }

    #[tokio::test]
    async fn flusher_flushes_periodically_and_retries() {
        let meter = Meter::new();
        let sink = Arc::new(MemorySink::failing_first(1));
        let handle = meter.spawn_flusher(sink.clone(), Duration::from_millis(1));
        meter.record(KEY, &call(5, None));
        // The first periodic flush fails; a later one delivers without shutdown's help.
        // (The timeout only keeps a broken flusher from hanging the test.)
        let delivered = tokio::time::timeout(Duration::from_secs(30), sink.delivered.notified());
        assert!(delivered.await.is_ok(), "a periodic flush delivered");
        meter.record(KEY, &call(5, None));
        assert!(handle.shutdown().await.is_ok());
        assert_eq!(sink.totals()[&key(KEY)].invocations, 2);
        assert!(sink.attempts.load(Ordering::SeqCst) >= 2);
    }

    #[tokio::test]
    async fn shutdown_reports_a_failed_last_flush_and_keeps_the_usage() {
        let meter = Meter::new();
        let sink = Arc::new(MemorySink::failing_first(u32::MAX));
        let handle = meter.spawn_flusher(sink, Duration::from_secs(3600));
        meter.record(KEY, &call(5, None));
        assert!(handle.shutdown().await.is_err());
        assert_eq!(meter.snapshot()[0].counters.invocations, 1);
    }

    #[tokio::test]
    async fn dropping_the_handle_flushes_in_the_background() {
        let meter = Meter::new();
        let sink = Arc::new(MemorySink::default());
        let handle = meter.spawn_flusher(sink.clone(), Duration::from_secs(3600));
        meter.record(KEY, &call(5, None));
        let delivered = sink.delivered.notified();
        drop(handle);
        let delivered = tokio::time::timeout(Duration::from_secs(30), delivered);
        assert!(delivered.await.is_ok(), "the dropped flusher flushed");
        assert_eq!(sink.totals()[&key(KEY)].invocations, 1);
    }

    #[test]
    fn sink_error_keeps_its_source() {
        let io = std::io::Error::other("disk full");
        let error = SinkError::with_source("insert usage", io);
        assert_eq!(error.message(), "insert usage");
        assert_eq!(error.to_string(), "usage sink: insert usage");
        assert!(std::error::Error::source(&error).is_some());
    }
}
