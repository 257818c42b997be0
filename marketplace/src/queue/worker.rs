//! The worker of a host process: claims due events, delivers them through the host, records
//! what happened. [`work_due`] is one round at a given time (what tests drive); the server's
//! worker runs rounds in the background, woken by [`wake`] when this process queues an event and
//! otherwise every [`QueueSettings::poll_every`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use plinth_host::{Delivery, InvokeError};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use super::backoff::{exponential, jittered};
use super::store::{self, Claimed, Next, Outcome, OutcomeKind};
use super::{DEAD, QueueSettings};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::id::new_id;
use crate::state::AppState;
use crate::tenants;

/// How long a suspended tenant's queued event waits before it is tried again.
const SUSPENDED_RETRY: Duration = Duration::from_secs(60 * 60);
/// Wakes this process's worker (an event was queued here).
pub fn wake(state: &AppState) {
    state.queue_wake().notify_one();
}

/// Starts the worker of `state`'s host; `None` in a process without a host (or with
/// [`QueueSettings::background`] off). Abort the handle
/// to stop it: attempts in flight stop with it and are delivered again after their lease.
pub(crate) fn spawn(state: AppState) -> Option<JoinHandle<()>> {
    state.runtime().ok()?;
    if !state.settings().queue.background {
        return None;
    }
    Some(tokio::spawn(async move {
        let settings = state.settings().queue.clone();
        let wake: Arc<Notify> = Arc::clone(state.queue_wake());
        let mut in_flight: JoinSet<String> = JoinSet::new();
        let mut per_tenant: HashMap<String, usize> = HashMap::new();
        loop {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(settings.poll_every) => {}
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    finished(&mut per_tenant, done);
                }
            }
            while let Some(done) = in_flight.try_join_next() {
                finished(&mut per_tenant, done);
            }
            let free = settings.concurrency.saturating_sub(in_flight.len());
            let busy: Vec<String> = per_tenant
                .iter()
                .filter(|(_, n)| **n >= settings.per_tenant)
                .map(|(tenant, _)| tenant.clone())
                .collect();
            let most = (free, settings.per_tenant);
            let claimed = match claim(&state, &settings, now_ms(), most, &busy).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "cannot claim queued events; will retry");
                    continue;
                }
            };
            for event in claimed {
                *per_tenant.entry(event.tenant_id.clone()).or_default() += 1;
                let state = state.clone();
                in_flight.spawn(async move {
                    let tenant = event.tenant_id.clone();
                    if let Err(error) = attempt(&state, &event, now_ms).await {
                        tracing::warn!(%error, event = %event.id, "a queued event's attempt failed; it is retried after its lease");
                    }
                    tenant
                });
            }
        }
    }))
}

fn finished(per_tenant: &mut HashMap<String, usize>, done: Result<String, tokio::task::JoinError>) {
    match done {
        Ok(tenant) => {
            if let Some(count) = per_tenant.get_mut(&tenant) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    per_tenant.remove(&tenant);
                }
            }
        }
        // An attempt task only ends abnormally if it panicked; its lease runs out and the
        // event is delivered again. Its tenant's count is lost with it: recount from zero.
        Err(error) => {
            tracing::error!(%error, "a queued event's attempt panicked");
            per_tenant.clear();
        }
    }
}

async fn claim(
    state: &AppState,
    settings: &QueueSettings,
    now: i64,
    (most, per_tenant): (usize, usize),
    busy: &[String],
) -> Result<Vec<Claimed>> {
    let lease = i64::try_from(settings.lease.as_millis()).unwrap_or(i64::MAX);
    store::claim(
        state.db(),
        &new_id(),
        now,
        now.saturating_add(lease),
        most,
        per_tenant,
        busy,
    )
    .await
}

/// One round at `now`: claims what is due (up to the worker's concurrency, of one tenant as
/// many as of all) and runs each attempt to its end, with `now` as the time of every record.
/// Returns how many events it attempted.
///
/// # Errors
///
/// [`Error::Database`] when claiming fails; an attempt's own failure is logged.
pub async fn work_due(state: &AppState, now: i64) -> Result<usize> {
    let settings = state.settings().queue.clone();
    let most = (settings.concurrency, settings.concurrency);
    let claimed = claim(state, &settings, now, most, &[]).await?;
    let count = claimed.len();
    let mut attempts = JoinSet::new();
    for event in claimed {
        let state = state.clone();
        attempts.spawn(async move {
            if let Err(error) = attempt(&state, &event, move || now).await {
                tracing::warn!(%error, event = %event.id, "a queued event's attempt failed");
            }
        });
    }
    while attempts.join_next().await.is_some() {}
    Ok(count)
}

/// One attempt of a claimed event: fan out (first attempt), deliver, record; the lease is
/// renewed while the plugins run.
async fn attempt(state: &AppState, event: &Claimed, clock: impl Fn() -> i64) -> Result<()> {
    let runtime = state.runtime()?;
    let host = &runtime.host;
    let plugins = match &event.pending {
        Some(pending) => pending.clone(),
        None => {
            let targets = match &event.target_plugin {
                Some(plugin) => vec![plugin.clone()],
                None => host.subscribers(&event.tenant_id, &event.topic),
            };
            match store::fan_out(state.db(), event, &targets, clock()).await? {
                Some(allowed) => allowed,
                None => return Ok(()), // another worker holds it now
            }
        }
    };
    let outcomes = match tenants::by_id(state.db(), &event.tenant_id).await? {
        Some(tenant) if tenant.suspended_at.is_some() => {
            // Not run while suspended: tried again in an hour, as long as the plan's attempts
            // last (a tenant that pays in time loses nothing; after that, a dead letter it may
            // replay).
            let refusal = crate::billing::suspension::refusal(&tenant)
                .map(|e| e.to_string())
                .unwrap_or_default();
            plugins
                .iter()
                .map(|plugin| Outcome {
                    plugin: plugin.clone(),
                    version: String::new(),
                    kind: OutcomeKind::Retry,
                    output: None,
                    error: Some(("payment_required".to_owned(), refusal.clone())),
                    emitted: Vec::new(),
                    retry_after: Some(SUSPENDED_RETRY),
                })
                .collect()
        }
        Some(tenant) if tenant.deleted_at.is_none() => {
            deliver(state, event, &tenant, &plugins).await?
        }
        _ => plugins
            .iter()
            .map(|plugin| failed_for_good(plugin, "tenant_deleted", "the tenant is deleted"))
            .collect(),
    };
    let now = clock();
    let next = next_attempt(state, event, &outcomes, now);
    let metrics = state.metrics();
    match store::record(state.db(), event, &outcomes, &next, now).await? {
        None => {
            metrics.count_lost_lease();
            tracing::info!(event = %event.id, "lost the lease of a queued event; another host records it");
        }
        Some(status) => {
            metrics.count_queued_attempt(outcomes.iter().map(|o| o.kind.as_str()), status == DEAD);
            if outcomes.iter().any(|o| !o.emitted.is_empty()) {
                wake(state);
            }
        }
    }
    Ok(())
}

/// Delivers the event to `plugins` under the tenant's quota, renewing the lease meanwhile.
async fn deliver(
    state: &AppState,
    event: &Claimed,
    tenant: &tenants::Tenant,
    plugins: &[String],
) -> Result<Vec<Outcome>> {
    let runtime = state.runtime()?;
    let plan = tenants::plan(state.db(), &tenant.plan).await?;
    let quota =
        match crate::usage::quota_grant(state.db(), runtime.host.meter(), tenant, &plan, now_ms())
            .await
        {
            Ok(quota) => quota,
            Err(Error::QuotaExceeded { message, .. }) => {
                return Ok(plugins
                    .iter()
                    .map(|plugin| failed_for_good(plugin, "quota_exceeded", &message))
                    .collect());
            }
            Err(error) => return Err(error),
        };
    let call = plinth_host::Event {
        id: event.id.clone(),
        topic: event.topic.clone(),
        payload: event.payload.clone(),
        depth: event.depth,
    };
    let deliveries = {
        let delivering = runtime
            .host
            .deliver_hop(&event.tenant_id, &call, plugins, Some(quota));
        let mut delivering = std::pin::pin!(delivering);
        let lease = state.settings().queue.lease;
        let mut renew = tokio::time::interval(lease / 3);
        renew.tick().await;
        loop {
            tokio::select! {
                deliveries = &mut delivering => break deliveries,
                _ = renew.tick() => {
                    let until = now_ms().saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
                    if let Ok(false) = store::renew(state.db(), event, until).await {
                        tracing::warn!(event = %event.id, "lost the lease of a queued event while delivering it");
                    }
                }
            }
        }
    };
    let mut outcomes: Vec<Outcome> = deliveries
        .into_iter()
        .map(|delivery| outcome(event, delivery))
        .collect();
    for plugin in plugins {
        if !outcomes.iter().any(|o| &o.plugin == plugin) {
            outcomes.push(Outcome {
                plugin: plugin.clone(),
                version: String::new(),
                kind: OutcomeKind::Skipped,
                output: None,
                error: Some((
                    "not_installed".to_owned(),
                    "the tenant has no enabled install of the plugin any more".to_owned(),
                )),
                emitted: Vec::new(),
                retry_after: None,
            });
        }
    }
    Ok(outcomes)
}

fn failed_for_good(plugin: &str, code: &str, message: &str) -> Outcome {
    Outcome {
        plugin: plugin.to_owned(),
        version: String::new(),
        kind: OutcomeKind::Failed,
        output: None,
        error: Some((code.to_owned(), message.to_owned())),
        emitted: Vec::new(),
        retry_after: None,
    }
}

/// One delivery's outcome: ok, or a failure tried again while attempts are left and trying
/// again can help.
fn outcome(event: &Claimed, delivery: Delivery) -> Outcome {
    let Delivery {
        plugin,
        version,
        invocation,
        ..
    } = delivery;
    match invocation.result {
        Ok(output) => Outcome {
            plugin,
            version,
            kind: OutcomeKind::Ok,
            output,
            error: None,
            retry_after: None,
            emitted: invocation
                .emitted
                .into_iter()
                .map(|emitted| (emitted.topic, emitted.payload, emitted.depth))
                .collect(),
        },
        Err(error) => {
            let kind = if retryable(&error) && event.attempt < event.max_attempts {
                OutcomeKind::Retry
            } else {
                OutcomeKind::Failed
            };
            Outcome {
                plugin,
                version,
                kind,
                output: None,
                error: Some((error.code().to_owned(), error.to_string())),
                emitted: Vec::new(),
                retry_after: refusal_wait(&error),
            }
        }
    }
}

/// Whether trying a failed call again can help: not when the plugin is over a limit of its
/// own making or lacks a permission (it will again), nor when the month's quota or the
/// event's budget is spent.
fn retryable(error: &InvokeError) -> bool {
    !matches!(
        error,
        InvokeError::OutOfFuel { .. }
            | InvokeError::MemoryLimit { .. }
            | InvokeError::OutputTooLarge { .. }
            | InvokeError::PermissionDenied { .. }
            | InvokeError::NotSubscribed { .. }
            | InvokeError::QuotaExceeded { .. }
            | InvokeError::EventBudgetExhausted { .. }
    )
}

/// When the plugins to retry are tried again: the back-off after this attempt, or later when
/// a refusal said so.
fn next_attempt(state: &AppState, event: &Claimed, outcomes: &[Outcome], now: i64) -> Next {
    if !outcomes.iter().any(|o| o.kind == OutcomeKind::Retry) {
        return Next::Finished;
    }
    let settings = &state.settings().queue;
    let backoff = jittered(exponential(
        settings.retry_base,
        settings.max_backoff,
        event.attempt,
    ));
    let asked = outcomes
        .iter()
        .filter_map(|o| o.retry_after)
        .max()
        .unwrap_or_default();
    let wait = i64::try_from(backoff.max(asked).as_millis()).unwrap_or(i64::MAX);
    Next::RetryAt(now.saturating_add(wait.max(1)))
}

/// How long to wait before retrying a refused call, if the refusal said.
fn refusal_wait(error: &InvokeError) -> Option<Duration> {
    match error {
        InvokeError::RateLimited { retry_after_ms, .. }
        | InvokeError::CircuitOpen { retry_after_ms } => {
            Some(Duration::from_millis(*retry_after_ms))
        }
        InvokeError::Capacity { retry_after_ms, .. } => retry_after_ms.map(Duration::from_millis),
        _ => None,
    }
}
