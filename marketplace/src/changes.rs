//! Learning of other processes' changes on a shared PostgreSQL: several `plinth serve`
//! processes (hosts and marketplaces) run on one database and keep only caches, so each
//! listens on channel `plinth_changes`, which triggers notify on every commit that changes an
//! install, a tenant's plan or deletion, a plan, a plugin's block or a token's revocation
//! (migration 0008), or issues a state statement (migration 0019: the host takes it in). A notification retires the read caches it concerns and brings the host's
//! affected installs in line with storage ([`crate::installs::sync`]).
//!
//! Notifications from this process's own connections are skipped (it applied its changes
//! already), as are those of other schemas sharing the database. They are not queued while
//! the listening connection is down, so after every (re)connection the whole host is
//! synchronised once; [`FULL_SYNC_EVERY`] bounds what any missed notification could cost.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgNotification};
use tokio::task::JoinHandle;

use crate::db::Backend;
use crate::db::cache::Topic;
use crate::error::Result;
use crate::installs::sync;
use crate::state::AppState;

/// The channel the triggers notify.
pub const CHANNEL: &str = "plinth_changes";

/// How often the whole host is synchronised even without notifications.
pub const FULL_SYNC_EVERY: Duration = Duration::from_secs(300);

/// A full synchronisation leaves alone the installs this process changed itself within this
/// long: its read of storage may be older than their change. Far longer than a transaction or
/// a full synchronisation takes; far shorter than [`FULL_SYNC_EVERY`].
pub const SPARE_LOCAL_CHANGES: Duration = Duration::from_secs(30);

/// How long to wait before connecting again after the listener failed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What a notification says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An install of a tenant was created, changed or removed.
    Install {
        /// The tenant's id.
        tenant_id: String,
        /// The plugin's id.
        plugin_id: String,
    },
    /// A tenant's plan changed, or it was deleted, restored or purged.
    Tenant {
        /// The tenant's id.
        tenant_id: String,
    },
    /// A plan's quotas changed.
    Plan {
        /// The plan's name.
        name: String,
    },
    /// A plugin was blocked or unblocked.
    Plugin {
        /// The plugin's id.
        plugin_id: String,
    },
    /// A token was revoked or restored.
    Access,
    /// A state statement was issued.
    Statement,
}

impl Change {
    /// Parses a payload `<schema>|<what>|<first>|<second>`; `None` for another schema's
    /// or a malformed one.
    pub fn parse(payload: &str, schema: &str) -> Option<Change> {
        let mut parts = payload.splitn(4, '|');
        let (from, what, first, second) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if from != schema {
            return None;
        }
        Some(match what {
            "install" => Change::Install {
                tenant_id: first.to_owned(),
                plugin_id: second.to_owned(),
            },
            "tenant" => Change::Tenant {
                tenant_id: first.to_owned(),
            },
            "plan" => Change::Plan {
                name: second.to_owned(),
            },
            "plugin" => Change::Plugin {
                plugin_id: second.to_owned(),
            },
            "access" => Change::Access,
            "statement" => Change::Statement,
            _ => return None,
        })
    }
}

/// Starts listening, on PostgreSQL only (one SQLite file has one process); `None` otherwise.
pub fn spawn(state: AppState) -> Option<JoinHandle<()>> {
    if state.db().backend() != Backend::Postgres {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut first = true;
        loop {
            let listened = listen(&state, first).await;
            first = false;
            if let Err(error) = listened {
                tracing::warn!(%error, "change listener failed; connecting again");
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }))
}

/// Listens until the connection is lost, applying every change. The `first` connection
/// follows the host's restore at start, so it only retires cached reads: a full sync then
/// would race the first requests (an install removed meanwhile could be put back from the
/// sync's older read).
async fn listen(state: &AppState, first: bool) -> Result<()> {
    let mut listener = PgListener::connect(state.db().url()).await?;
    listener.listen(CHANNEL).await?;
    let schema: String = sqlx::query_scalar("SELECT CAST(current_schema() AS TEXT)")
        .fetch_one(state.db().pool())
        .await?;
    // Anything missed while no one listened.
    if first {
        retire_cached_reads(state);
    } else {
        catch_up(state).await;
    }
    let mut full_sync = tokio::time::interval(FULL_SYNC_EVERY);
    full_sync.tick().await;
    loop {
        tokio::select! {
            received = listener.try_recv() => match received? {
                Some(notification) => handle(state, &schema, &notification).await,
                // The connection was lost; the next call reconnects, and what was missed
                // meanwhile is caught up then.
                None => return Ok(()),
            },
            _ = full_sync.tick() => catch_up(state).await,
        }
    }
}

/// Retires every cached read: what they were read from may have changed unseen.
fn retire_cached_reads(state: &AppState) {
    state.db().changed(Topic::Access);
    state.db().changed(Topic::Usage);
}

/// Retires every cached read and synchronises the whole host, sparing what this process
/// changed itself in the last [`SPARE_LOCAL_CHANGES`].
async fn catch_up(state: &AppState) {
    retire_cached_reads(state);
    crate::statements::follow(state).await;
    if state.runtime().is_ok()
        && let Err(error) = sync::sync_all_sparing_local(state, SPARE_LOCAL_CHANGES).await
    {
        tracing::error!(%error, "cannot synchronise the host with storage");
    }
}

async fn handle(state: &AppState, schema: &str, notification: &PgNotification) {
    if state.db().is_own_backend(notification.process_id()) {
        return;
    }
    let Some(change) = Change::parse(notification.payload(), schema) else {
        return;
    };
    tracing::debug!(?change, "change from another process");
    let (tenant, plugin) = match &change {
        Change::Install {
            tenant_id,
            plugin_id,
        } => (Some(tenant_id.as_str()), Some(plugin_id.as_str())),
        Change::Tenant { tenant_id } => {
            state.db().changed(Topic::Access);
            (Some(tenant_id.as_str()), None)
        }
        Change::Plan { name } => {
            state.db().changed(Topic::Access);
            // Only the limits of that plan's installs change: re-apply those, nothing else.
            sync::apply_plan(state, sync::PlanScope::Plan(name)).await;
            return;
        }
        Change::Plugin { plugin_id } => (None, Some(plugin_id.as_str())),
        Change::Access => {
            state.db().changed(Topic::Access);
            return;
        }
        Change::Statement => {
            crate::statements::follow(state).await;
            return;
        }
    };
    if state.runtime().is_err() {
        return;
    }
    if let Err(error) = sync::sync(state, tenant, plugin).await {
        tracing::error!(?change, %error, "cannot apply a change from another process");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_of_this_schema_parse_and_others_are_ignored() {
        assert_eq!(
            Change::parse("s1|install|t1|acme.hello", "s1"),
            Some(Change::Install {
                tenant_id: "t1".into(),
                plugin_id: "acme.hello".into()
            })
        );
        assert_eq!(
            Change::parse("s1|tenant|t1|", "s1"),
            Some(Change::Tenant {
                tenant_id: "t1".into()
            })
        );
        assert_eq!(
            Change::parse("s1|plan||pro", "s1"),
            Some(Change::Plan { name: "pro".into() })
        );
        assert_eq!(
            Change::parse("s1|plugin||acme.hello", "s1"),
            Some(Change::Plugin {
                plugin_id: "acme.hello".into()
            })
        );
        assert_eq!(Change::parse("s1|access||", "s1"), Some(Change::Access));
        assert_eq!(
            Change::parse("s1|statement||7", "s1"),
            Some(Change::Statement)
        );
        assert_eq!(Change::parse("s2|install|t1|acme.hello", "s1"), None);
        assert_eq!(Change::parse("s1|weird|t1|x", "s1"), None);
        assert_eq!(Change::parse("s1|install", "s1"), None);
    }
}
