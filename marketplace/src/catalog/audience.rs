//! Private plugins: a publisher names the tenants that may see and install one of its plugins
//! (an organisation's own plugins). Anyone else gets a 404 on every catalog and install route,
//! as for a plugin that does not exist ([`Visibility`](super::Visibility) decides). Review
//! still applies, unless an operator waived it for the publisher
//! ([`crate::publishers::waiver`]).
//!
//! A plugin is made private before its first version is approved (a plugin already public
//! stays public: tenants outside the audience may have installed it), and may be opened to
//! everyone at any time. A tenant with an install cannot be taken out of the audience.

use std::collections::BTreeSet;

use plinth_package::PluginId;
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use utoipa::ToSchema;

use crate::audit::Actor;
use crate::auth::Principal;
use crate::clock::now_ms;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::notifications::notify;

/// Most tenants in a private plugin's audience.
pub const MAX_AUDIENCE: usize = 1_000;

/// A plugin's audience as its publisher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AudienceView {
    /// The plugin id.
    pub plugin: String,
    /// Whether only the audience sees it.
    pub private: bool,
    /// The tenants (slugs, sorted) that see and may install it; empty when public.
    pub tenants: Vec<String>,
}

/// The publisher id of `plugin_id`'s namespace, if the caller is one of its members (or an
/// operator); 404 otherwise, also for an id that is not a plugin id.
async fn owner(db: &Db, principal: &Principal, plugin_id: &str) -> Result<String> {
    let unknown = || Error::not_found(format!("plugin {plugin_id:?}"));
    let id: PluginId = plugin_id.parse().map_err(|_| unknown())?;
    let publisher = if principal.is_operator() {
        crate::publishers::by_namespace(db, id.publisher())
            .await?
            .ok_or_else(unknown)?
    } else {
        crate::publishers::access(db, principal, id.publisher())
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => unknown(),
                other => other,
            })?
    };
    Ok(publisher.id)
}

/// Brings `plugins.private` (what searches filter on) in line with `private_plugins` for
/// `plugin_id`, in `tx`: after a change of audience, and when a plugin's first version is
/// published.
///
/// # Errors
///
/// [`Error::Database`].
pub(crate) async fn mark(tx: &mut Tx, plugin_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE plugins SET private = \
         (SELECT COUNT(*) FROM private_plugins WHERE plugin_id = $1) WHERE id = $1",
    )
    .bind(plugin_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether `plugin_id` is private. Takes any executor: `db.pool()` or `&mut *tx`.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn private<'e, E>(executor: E, plugin_id: &str) -> Result<bool>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let found: Option<String> =
        sqlx::query_scalar("SELECT plugin_id FROM private_plugins WHERE plugin_id = $1")
            .bind(plugin_id)
            .fetch_optional(executor)
            .await?;
    Ok(found.is_some())
}

/// The (tenant id, slug) pairs of `plugin_id`'s audience, by slug.
async fn members(tx: &mut Tx, plugin_id: &str) -> Result<Vec<(String, String)>> {
    sqlx::query(
        "SELECT t.id, t.slug FROM plugin_audience a JOIN tenants t ON t.id = a.tenant_id \
         WHERE a.plugin_id = $1 ORDER BY t.slug",
    )
    .bind(plugin_id)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
    .collect()
}

async fn view(tx: &mut Tx, plugin_id: &str) -> Result<AudienceView> {
    let private = private(&mut **tx, plugin_id).await?;
    Ok(AudienceView {
        plugin: plugin_id.to_owned(),
        private,
        tenants: members(tx, plugin_id)
            .await?
            .into_iter()
            .map(|(_, slug)| slug)
            .collect(),
    })
}

/// The audience of `plugin_id` (members of its publisher, operators).
///
/// # Errors
///
/// 404 for anyone else.
pub async fn get(db: &Db, principal: &Principal, plugin_id: &str) -> Result<AudienceView> {
    owner(db, principal, plugin_id).await?;
    let mut tx = db.begin_read().await?;
    view(&mut tx, plugin_id).await
}

/// Makes `plugin_id` private to the tenants `slugs` (replacing its audience), as a member of
/// its publisher. The tenants added are notified. Audited.
///
/// # Errors
///
/// 404 for a caller outside the publisher; 400 `invalid_body` for no or too many tenants,
/// `unknown_tenant` naming slugs that are not tenants; 409 `plugin_public` for a plugin
/// already published to everyone, `audience_installed` for a tenant taken out that has it
/// installed.
pub async fn set(
    db: &Db,
    principal: &Principal,
    plugin_id: &str,
    slugs: &[String],
) -> Result<AudienceView> {
    let publisher_id = owner(db, principal, plugin_id).await?;
    let wanted: BTreeSet<&str> = slugs.iter().map(|slug| slug.trim()).collect();
    if wanted.is_empty() || wanted.contains("") {
        return Err(Error::bad_request(
            "invalid_body",
            "field `tenants` must list at least one tenant slug, none of them empty",
        ));
    }
    if wanted.len() > MAX_AUDIENCE {
        return Err(Error::bad_request(
            "invalid_body",
            format!("field `tenants` may list at most {MAX_AUDIENCE} tenants"),
        ));
    }
    let now = now_ms();
    let mut tx = db.begin().await?;
    // One query for every slug named (at most MAX_AUDIENCE placeholders).
    let placeholders: Vec<String> = (1..=wanted.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT id, slug FROM tenants WHERE deleted_at IS NULL AND slug IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for slug in &wanted {
        query = query.bind(*slug);
    }
    let tenants: Vec<(String, String)> = query
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_>>()?;
    let mut unknown: Vec<String> = wanted
        .iter()
        .filter(|slug| !tenants.iter().any(|(_, known)| known == *slug))
        .map(|slug| format!("{slug:?}"))
        .collect();
    if !unknown.is_empty() {
        unknown.truncate(10);
        return Err(Error::bad_request(
            "unknown_tenant",
            format!("field `tenants`: no tenant {}", unknown.join(", ")),
        ));
    }
    let published: Option<String> = sqlx::query_scalar("SELECT id FROM plugins WHERE id = $1")
        .bind(plugin_id)
        .fetch_optional(&mut *tx)
        .await?;
    let was_private = private(&mut *tx, plugin_id).await?;
    if published.is_some() && !was_private {
        return Err(Error::conflict(
            "plugin_public",
            format!("{plugin_id} is published to everyone; a public plugin cannot be made private"),
        ));
    }
    if was_private {
        crate::versions::lock_plugin(&mut tx, plugin_id).await?;
    } else {
        sqlx::query(
            "INSERT INTO private_plugins (plugin_id, publisher_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(plugin_id)
        .bind(&publisher_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let before = members(&mut tx, plugin_id).await?;
    let removed: Vec<&(String, String)> = before
        .iter()
        .filter(|(id, _)| !tenants.iter().any(|(kept, _)| kept == id))
        .collect();
    for (tenant_id, slug) in &removed {
        let installed: Option<String> =
            sqlx::query_scalar("SELECT id FROM installs WHERE tenant_id = $1 AND plugin_id = $2")
                .bind(tenant_id)
                .bind(plugin_id)
                .fetch_optional(&mut *tx)
                .await?;
        if installed.is_some() {
            return Err(Error::conflict(
                "audience_installed",
                format!(
                    "tenant {slug:?} has {plugin_id} installed; it stays in the audience until it uninstalls"
                ),
            ));
        }
        sqlx::query("DELETE FROM plugin_audience WHERE plugin_id = $1 AND tenant_id = $2")
            .bind(plugin_id)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
    }
    let added: Vec<&(String, String)> = tenants
        .iter()
        .filter(|(id, _)| !before.iter().any(|(kept, _)| kept == id))
        .collect();
    for (tenant_id, _) in &added {
        sqlx::query(
            "INSERT INTO plugin_audience (plugin_id, tenant_id, added_at) VALUES ($1, $2, $3)",
        )
        .bind(plugin_id)
        .bind(tenant_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if published.is_some() {
            notify(
                &mut tx,
                "tenant",
                tenant_id,
                "private_plugin_shared",
                &format!("{plugin_id} is a private plugin you may now install."),
                json!({"plugin": plugin_id}),
            )
            .await?;
        }
    }
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor: Actor::from(principal),
            action: "plugin.audience_set",
            tenant_id: None,
            subject: format!("plugin:{plugin_id}"),
            details: json!({
                "added": added.iter().map(|(_, slug)| slug).collect::<Vec<_>>(),
                "removed": removed.iter().map(|(_, slug)| slug).collect::<Vec<_>>(),
                "tenants": tenants.len(),
            }),
        },
    )
    .await?;
    mark(&mut tx, plugin_id).await?;
    let shown = view(&mut tx, plugin_id).await?;
    tx.commit().await?;
    tracing::info!(
        plugin = plugin_id,
        tenants = shown.tenants.len(),
        "private audience set"
    );
    Ok(shown)
}

/// Opens `plugin_id` to everyone, as a member of its publisher. Audited.
///
/// # Errors
///
/// 404 for a caller outside the publisher; 409 `not_private`.
pub async fn make_public(db: &Db, principal: &Principal, plugin_id: &str) -> Result<AudienceView> {
    owner(db, principal, plugin_id).await?;
    let mut tx = db.begin().await?;
    let removed = sqlx::query("DELETE FROM private_plugins WHERE plugin_id = $1")
        .bind(plugin_id)
        .execute(&mut *tx)
        .await?;
    if removed.rows_affected() == 0 {
        return Err(Error::conflict(
            "not_private",
            format!("{plugin_id} is not private"),
        ));
    }
    // The audience goes with it (ON DELETE CASCADE).
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor: Actor::from(principal),
            action: "plugin.made_public",
            tenant_id: None,
            subject: format!("plugin:{plugin_id}"),
            details: json!({"plugin": plugin_id}),
        },
    )
    .await?;
    mark(&mut tx, plugin_id).await?;
    let shown = view(&mut tx, plugin_id).await?;
    tx.commit().await?;
    tracing::info!(plugin = plugin_id, "private plugin opened to everyone");
    Ok(shown)
}
