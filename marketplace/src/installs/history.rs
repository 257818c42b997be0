//! Install history: when each tenant had each plugin installed.
//!
//! An uninstall deletes the `installs` row, so the spans in `install_spans` are what remember
//! that a tenant used a plugin (ratings need it: a tenant that had a plugin for a day may rate
//! it after uninstalling). The install and uninstall handlers call [`opened`] and [`closed`]
//! in their transactions.

use crate::db::Tx;
use crate::error::Result;
use crate::id::new_id;

/// Records that the tenant installed `plugin_id` at `now`, in `tx`.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn opened(tx: &mut Tx, tenant_id: &str, plugin_id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO install_spans (id, tenant_id, plugin_id, installed_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(new_id())
    .bind(tenant_id)
    .bind(plugin_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that the tenant uninstalled `plugin_id` at `now`, in `tx`: closes its open span.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn closed(tx: &mut Tx, tenant_id: &str, plugin_id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE install_spans SET uninstalled_at = $1 \
         WHERE tenant_id = $2 AND plugin_id = $3 AND uninstalled_at IS NULL",
    )
    .bind(now)
    .bind(tenant_id)
    .bind(plugin_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether the tenant has `plugin_id` installed now, or had it installed for at least
/// `min_ms` in one span that has ended.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn has_used(tx: &mut Tx, tenant_id: &str, plugin_id: &str, min_ms: i64) -> Result<bool> {
    let used: Option<String> = sqlx::query_scalar(
        "SELECT plugin_id FROM installs WHERE tenant_id = $1 AND plugin_id = $2 \
         UNION ALL \
         SELECT plugin_id FROM install_spans WHERE tenant_id = $1 AND plugin_id = $2 \
             AND uninstalled_at IS NOT NULL AND uninstalled_at - installed_at >= $3 \
         LIMIT 1",
    )
    .bind(tenant_id)
    .bind(plugin_id)
    .bind(min_ms)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(used.is_some())
}
