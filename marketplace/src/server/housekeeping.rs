//! Periodic work of a running server: purging tenants whose deletion grace has passed, and the
//! ledger's (last month's usage statement, releasing charges whose hold has ended).

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::clock::now_ms;
use crate::state::AppState;

/// How often the housekeeping runs (and once at start).
const EVERY: Duration = Duration::from_secs(60 * 60);

/// Starts the housekeeping loop; abort the handle to stop it.
pub(super) fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(EVERY);
        loop {
            interval.tick().await;
            match crate::tenants::purge_expired(state.db(), now_ms()).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged tenants past their deletion grace"),
                Err(e) => tracing::warn!(error = %e, "purging deleted tenants failed; will retry"),
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
