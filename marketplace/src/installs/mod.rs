//! Installs: a tenant's consent to one version's exact permission set, its configuration, and
//! the host that runs it. Every change is stored and applied to the host together. No plugin
//! code runs while a transaction is open: a lifecycle hook (`on-install`, `on-upgrade`,
//! `on-uninstall`) runs before the transaction that records its change, which checks again
//! that the install is as the hook saw it; the host change itself runs no plugin code and is
//! applied next to the transaction (undone if it does not commit, or made once it has).

pub mod change;
pub mod config;
mod deploy;
pub mod history;
pub mod manage;
mod routes;
pub mod sync;

pub use deploy::spec_for;
pub(crate) use deploy::{host_error, load};
pub(crate) use routes::{InstallView, routes};
pub use sync::restore_all;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Db, Tx};
use crate::error::Result;

/// An install as stored.
#[derive(Debug, Clone)]
pub struct Install {
    /// The install's id (binds its sealed secrets).
    pub id: String,
    /// The tenant's id.
    pub tenant_id: String,
    /// The plugin's id.
    pub plugin_id: String,
    /// The version installed.
    pub version: String,
    /// The permission set the tenant consented to.
    pub permissions_digest: String,
    /// The configuration as stored (secrets sealed), a JSON object.
    pub config: String,
    /// Whether events reach it.
    pub enabled: bool,
    /// `manual`, `patch`, `minor` or `any`.
    pub update_policy: String,
    /// Never updated automatically while set.
    pub pinned: bool,
    /// Whether its runs keep their payload and output ([`crate::runs`]).
    pub capture_runs: bool,
    /// The version it ran before its last update: where a tenant rollback returns to.
    pub previous_version: Option<String>,
    /// The permission set consented to for [`Install::previous_version`].
    pub previous_permissions_digest: Option<String>,
    /// The configuration (secrets sealed) it had on [`Install::previous_version`].
    pub previous_config: Option<String>,
    /// When it was installed (Unix ms).
    pub created_at: i64,
    /// When it last changed (Unix ms).
    pub updated_at: i64,
}

pub(crate) const COLUMNS: &str = "id, tenant_id, plugin_id, version, permissions_digest, config, enabled, \
                       update_policy, pinned, capture_runs, previous_version, previous_permissions_digest, \
                       previous_config, created_at, updated_at";

pub(crate) fn from_row(row: &AnyRow) -> Result<Install> {
    Ok(Install {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        plugin_id: row.try_get("plugin_id")?,
        version: row.try_get("version")?,
        permissions_digest: row.try_get("permissions_digest")?,
        config: row.try_get("config")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        update_policy: row.try_get("update_policy")?,
        pinned: row.try_get::<i64, _>("pinned")? != 0,
        capture_runs: row.try_get::<i64, _>("capture_runs")? != 0,
        previous_version: row.try_get("previous_version")?,
        previous_permissions_digest: row.try_get("previous_permissions_digest")?,
        previous_config: row.try_get("previous_config")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The tenant's installs, by plugin id (read in the tenant's scope).
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn list(db: &Db, tenant_id: &str) -> Result<Vec<Install>> {
    let mut tx = db.begin_tenant_read(tenant_id).await?;
    let sql = format!("SELECT {COLUMNS} FROM installs WHERE tenant_id = $1 ORDER BY plugin_id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    rows.iter().map(from_row).collect()
}

/// The tenant's install of `plugin_id`, if any, read inside `tx`.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn find(tx: &mut Tx, tenant_id: &str, plugin_id: &str) -> Result<Option<Install>> {
    let sql = format!("SELECT {COLUMNS} FROM installs WHERE tenant_id = $1 AND plugin_id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(plugin_id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Records a change to the tenant's install of `plugin_id` in the audit log, in `tx`.
///
/// # Errors
///
/// As [`crate::audit::record`].
pub async fn audit(
    tx: &mut Tx,
    actor: impl Into<crate::audit::Actor>,
    action: &str,
    tenant_id: &str,
    plugin_id: &str,
    details: serde_json::Value,
) -> Result<()> {
    crate::audit::record(
        tx,
        crate::audit::Entry {
            actor: actor.into(),
            action,
            tenant_id: Some(tenant_id),
            subject: format!("install:{plugin_id}"),
            details,
        },
    )
    .await
}

/// Every install of a live tenant, with the tenant's plan: what the host runs.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn all_live(db: &Db) -> Result<Vec<(Install, String)>> {
    live_where(db, None, None).await
}

/// [`all_live`] narrowed to one tenant and/or one plugin.
///
/// # Errors
///
/// [`crate::error::Error::Database`].
pub async fn live_where(
    db: &Db,
    tenant_id: Option<&str>,
    plugin_id: Option<&str>,
) -> Result<Vec<(Install, String)>> {
    let sql = format!(
        "SELECT {}, t.plan AS plan FROM installs i JOIN tenants t ON t.id = i.tenant_id \
         WHERE t.deleted_at IS NULL AND ($1 IS NULL OR i.tenant_id = $1) \
         AND ($2 IS NULL OR i.plugin_id = $2) ORDER BY i.created_at",
        COLUMNS
            .split(", ")
            .map(|c| format!("i.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id.map(str::to_owned))
        .bind(plugin_id.map(str::to_owned))
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| Ok((from_row(row)?, row.try_get("plan")?)))
        .collect()
}
