//! Periodic work of a running server: purging tenants whose deletion grace has passed, webhook
//! deliveries and billing e-mail older than [`DELIVERIES_KEPT_MS`] that are settled, runs past their tenant's
//! retention and volume, queued events finished longer ago than the queue keeps them, shared
//! rate windows that ended ([`crate::rate_leases`]), and the ledger's (last month's usage
//! statement, releasing charges whose hold has ended).

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::clock::now_ms;
use crate::state::AppState;

/// How often the housekeeping runs (and once at start).
const EVERY: Duration = Duration::from_secs(60 * 60);

/// How long delivered and failed webhook deliveries stay visible.
const DELIVERIES_KEPT_MS: i64 = 30 * crate::clock::DAY_MS;

/// How long the leases of a rate window are kept after it started.
const RATE_WINDOWS_KEPT_MS: i64 = 10 * 60 * 1000;

/// Starts the housekeeping loop; abort the handle to stop it.
pub(super) fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(EVERY);
        loop {
            interval.tick().await;
            match crate::tenants::purge_expired_everywhere(&state, now_ms()).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged tenants past their deletion grace"),
                Err(e) => tracing::warn!(error = %e, "purging deleted tenants failed; will retry"),
            }
            let before = now_ms().saturating_sub(DELIVERIES_KEPT_MS);
            match crate::billing::outbox::prune(state.db(), before).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "pruned settled billing e-mail"),
                Err(e) => tracing::warn!(error = %e, "pruning billing e-mail failed; will retry"),
            }
            match crate::notifications::webhooks::prune(state.db(), before).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "pruned settled webhook deliveries"),
                Err(e) => {
                    tracing::warn!(error = %e, "pruning webhook deliveries failed; will retry")
                }
            }
            match crate::runs::retention::prune(state.db(), now_ms()).await {
                Ok(pruned) if pruned == Default::default() => {}
                Ok(pruned) => tracing::info!(?pruned, "pruned the run log"),
                Err(e) => tracing::warn!(error = %e, "pruning the run log failed; will retry"),
            }
            let kept =
                i64::try_from(state.settings().queue.keep_finished.as_millis()).unwrap_or(i64::MAX);
            match crate::queue::store::prune(state.db(), now_ms().saturating_sub(kept)).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "pruned finished queued events"),
                Err(e) => tracing::warn!(error = %e, "pruning queued events failed; will retry"),
            }
            // Windows end after a minute; a few more minutes spare clocks a little behind.
            let ended = now_ms().saturating_sub(RATE_WINDOWS_KEPT_MS);
            match crate::rate_leases::prune(state.db(), ended).await {
                Ok(0) => {}
                Ok(pruned) => tracing::debug!(pruned, "pruned ended rate windows"),
                Err(e) => tracing::warn!(error = %e, "pruning rate windows failed; will retry"),
            }
            let ledger = &state.settings().ledger;
            if let Err(e) =
                crate::ledger::usage_charges::housekeeping(state.db(), ledger, now_ms()).await
            {
                tracing::warn!(error = %e, "the ledger's housekeeping failed; will retry");
            }
        }
    })
}
