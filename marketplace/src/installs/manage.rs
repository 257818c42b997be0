//! Installing and uninstalling, as services the API and the web console both call: the same
//! consent, plan and quota rules whichever way a tenant admin acts.

use serde_json::{Map, Value, json};

use super::deploy::{host_error, load, spec_for};
use super::{Install, config};
use crate::auth::Principal;
use crate::catalog::{VersionInfo, Visibility};
use crate::clock::now_ms;
use crate::db::Db;
use crate::error::{ConflictOnUnique, Error, Result};
use crate::id::new_id;
use crate::state::AppState;
use crate::tenants::{self, TenantRole};
use crate::versions::deprecation::{self, Deprecation};
use crate::versions::installable::{self, Move};
use crate::versions::policy::UpdatePolicy;

/// What a tenant admin asks to install.
#[derive(Debug, Clone, Default)]
pub struct NewInstall {
    /// The plugin id.
    pub plugin: String,
    /// The version; default the newest approved, non-yanked one.
    pub version: Option<String>,
    /// The digest of the permission set the admin was shown: installing is consenting to
    /// exactly it.
    pub permissions_digest: String,
    /// Configuration values by key (secrets are sealed and never shown again).
    pub config: Map<String, Value>,
    /// `manual` (default), `patch`, `minor` or `any`.
    pub update_policy: Option<String>,
}

/// The versions of a plugin a new install may be put on, and the one it would get.
#[derive(Debug, Clone)]
pub struct VersionChoice {
    /// Every version that may be installed, newest first.
    pub installable: Vec<String>,
    /// The version named, or else the default (the newest that may be installed).
    pub chosen: VersionInfo,
    /// The plugin's deprecation if it covers the chosen version: the install form's banner
    /// and the install's answer carry it.
    pub deprecation: Option<Deprecation>,
}

/// What installing `plugin_id` (at `version` if named, else the default) for tenant
/// `tenant_id` would put the install on, as the install form and [`install`] both see it.
///
/// # Errors
///
/// 404 for an unknown plugin or version, or one the tenant may not see (blocked, or private
/// to others); 409 `version_yanked` for a named yanked version, `no_installable_version` when
/// every version is yanked, `plugin_deprecated` when a deprecation closes the version to new
/// installs.
pub async fn choose_version(
    db: &Db,
    tenant_id: &str,
    plugin_id: &str,
    version: Option<&str>,
) -> Result<VersionChoice> {
    let versions = crate::catalog::versions(db, plugin_id, &Visibility::tenant(tenant_id)).await?;
    let installable = installable::installable(&versions)
        .map(|v| v.version.clone())
        .collect();
    let chosen = match version.filter(|v| !v.is_empty()) {
        Some(version) => {
            let chosen = crate::catalog::version_among(versions, plugin_id, version)?;
            installable::refuse_yanked(plugin_id, &chosen, Move::Install)?;
            chosen
        }
        None => installable::default_version(plugin_id, versions)?,
    };
    let deprecation = deprecation::covering(db, plugin_id, &chosen.version).await?;
    deprecation::refuse_blocked(deprecation.as_ref())?;
    Ok(VersionChoice {
        installable,
        chosen,
        deprecation,
    })
}

/// Installs a plugin version for tenant `slug` as `principal` (a tenant admin), consenting to
/// its permission set; the host runs it once this returns.
///
/// # Errors
///
/// 404 for a tenant the caller may not see or an unknown plugin or version; 403 below admin or
/// for a paid plugin on a plan without them; 409 `permissions_changed` (with the current
/// permissions in its details), `version_yanked`, `no_installable_version`, `install_limit`,
/// `already_installed`; 400 for a bad update policy or configuration.
pub async fn install(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    request: NewInstall,
) -> Result<Install> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Admin).await?;
    let runtime = state.runtime()?;
    let update_policy = request.update_policy.unwrap_or_else(|| "manual".to_owned());
    UpdatePolicy::parse(&update_policy)?;
    let version = choose_version(
        state.db(),
        &tenant.id,
        &request.plugin,
        request.version.as_deref(),
    )
    .await?
    .chosen;
    installable::refuse_without_consent(&request.plugin, &version, &request.permissions_digest)?;
    let plan = tenants::plan(state.db(), &tenant.plan).await?;
    let (package, loaded) = load(state, &request.plugin, &version.version).await?;
    let manifest = &package.manifest;
    if manifest.pricing.is_paid() && !plan.paid_plugins {
        return Err(Error::forbidden(
            "plan_required",
            format!(
                "{} is a paid plugin; the {} plan does not allow paid plugins",
                request.plugin, plan.name
            ),
        ));
    }
    let values = config::check(manifest, &request.config, &config::Values::new())?;
    let install_id = new_id();
    let stored_config = config::seal(
        manifest,
        &values,
        &runtime.secrets,
        &install_id,
        &Default::default(),
    )?;
    let now = now_ms();
    // The host runs the plugin's `on-install` hook (up to the plan's timeout) before the
    // transaction, so no database lock is held meanwhile; the checks are made once before it
    // and again under the tenant's lock, and the host install is undone if the record fails.
    {
        let mut tx = state.db().begin_read().await?;
        check_installable(&mut tx, &tenant, &plan, &request.plugin).await?;
    }
    runtime
        .host
        .install(
            &tenant.id,
            &loaded,
            spec_for(&plan, manifest, values, false),
        )
        .await
        .map_err(host_error)?;
    let recorded = async {
        let mut tx = state.db().begin_tenant(&tenant.id).await?;
        tenants::lock_tenant(&mut tx, &tenant).await?;
        check_installable(&mut tx, &tenant, &plan, &request.plugin).await?;
        sqlx::query(
            "INSERT INTO installs (id, tenant_id, plugin_id, version, permissions_digest, config, enabled, \
             update_policy, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $9)",
        )
        .bind(&install_id)
        .bind(&tenant.id)
        .bind(&request.plugin)
        .bind(&version.version)
        .bind(&version.permissions_digest)
        .bind(&stored_config)
        .bind(&update_policy)
        .bind(principal.user().ok().map(|u| u.id.clone()))
        .bind(now)
        .execute(&mut *tx)
        .await
        .conflict_on_unique("already_installed", || format!("{} is installed already; update or uninstall it", request.plugin))?;
        crate::ledger::subscriptions::start(&mut tx, &tenant.id, &request.plugin, &manifest.pricing)
            .await?;
        sqlx::query("UPDATE plugins SET installs = installs + 1 WHERE id = $1")
            .bind(&request.plugin)
            .execute(&mut *tx)
            .await?;
        super::history::opened(&mut tx, &tenant.id, &request.plugin, now).await?;
        super::audit(
            &mut tx,
            principal,
            "install.created",
            &tenant.id,
            &request.plugin,
            json!({
                "version": version.version,
                "permissions_digest": version.permissions_digest,
                "permissions": version.permissions,
                "update_policy": update_policy,
                "config": config::public_view(&stored_config),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = recorded {
        if let Err(undo) = runtime.host.uninstall(&tenant.id, &request.plugin).await {
            tracing::error!(error = %undo, "cannot undo a host install after its record failed");
        }
        return Err(e);
    }
    tracing::info!(tenant = %tenant.slug, plugin = %request.plugin, version = %version.version, "installed");
    let install = Install {
        id: install_id,
        tenant_id: tenant.id,
        plugin_id: request.plugin,
        version: version.version,
        permissions_digest: version.permissions_digest,
        config: stored_config,
        enabled: true,
        update_policy,
        pinned: false,
        capture_runs: false,
        previous_version: None,
        previous_permissions_digest: None,
        previous_config: None,
        created_at: now,
        updated_at: now,
    };
    Ok(install)
}

/// Uninstalls `plugin` from tenant `slug` as `principal` (a tenant admin): the install and its
/// kv data are removed.
///
/// The plugin's `on-uninstall` hook runs first, with no transaction open (its failure is
/// logged, not fatal); the removal is then recorded in one transaction, which refuses with
/// `install_changed` if the install changed while the hook ran; once it is committed the host
/// drops the install and deletes its kv data, running no plugin code. If the removal is not
/// recorded, what the hook did itself (kv writes, outbound requests) stays done.
///
/// # Errors
///
/// 404 for a tenant the caller may not see or a plugin it has not installed; 403 below admin;
/// 409 `install_changed`; 500 if the install is removed but its kv data could not be deleted.
pub async fn uninstall(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    plugin: &str,
) -> Result<()> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Admin).await?;
    let runtime = state.runtime()?;
    let seen = {
        let mut tx = state.db().begin_read().await?;
        super::find(&mut tx, &tenant.id, plugin).await?
    }
    .ok_or_else(|| Error::not_found(format!("install of {plugin}")))?;
    match runtime.host.run_uninstall_hook(&tenant.id, plugin).await {
        Ok(()) | Err(plinth_host::Error::NotInstalled { .. }) => {}
        Err(error) => {
            tracing::warn!(tenant = %tenant.slug, plugin, %error, "on-uninstall failed");
        }
    }

    let mut tx = state.db().begin_tenant(&tenant.id).await?;
    let install = super::find(&mut tx, &tenant.id, plugin)
        .await?
        .ok_or_else(|| Error::not_found(format!("install of {plugin}")))?;
    let deleted = sqlx::query(
        "DELETE FROM installs WHERE id = $1 AND version = $2 AND config = $3 AND updated_at = $4",
    )
    .bind(&seen.id)
    .bind(&seen.version)
    .bind(&seen.config)
    .bind(seen.updated_at)
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() != 1 {
        return Err(Error::conflict(
            "install_changed",
            format!("the install of {plugin} changed while its uninstall hook ran; try again"),
        ));
    }
    crate::ledger::subscriptions::end(&mut tx, &tenant.id, plugin).await?;
    sqlx::query("UPDATE plugins SET installs = installs - 1 WHERE id = $1 AND installs > 0")
        .bind(plugin)
        .execute(&mut *tx)
        .await?;
    super::history::closed(&mut tx, &tenant.id, plugin, now_ms()).await?;
    super::audit(
        &mut tx,
        principal,
        "install.removed",
        &tenant.id,
        plugin,
        json!({"version": install.version}),
    )
    .await?;
    tx.commit().await?;
    if let Err(error) = runtime.host.remove_install(&tenant.id, plugin).await {
        tracing::error!(tenant = %tenant.slug, plugin, %error, "an uninstalled plugin's kv data could not be deleted");
        return Err(Error::Internal(format!(
            "{plugin} is uninstalled, but its kv data could not be deleted: {error}"
        )));
    }
    tracing::info!(tenant = %tenant.slug, plugin, "uninstalled");
    Ok(())
}

/// Refuses an install of `plugin` the tenant has already, or one over its plan's
/// `max_installs`.
async fn check_installable(
    tx: &mut crate::db::Tx,
    tenant: &tenants::Tenant,
    plan: &tenants::Plan,
    plugin: &str,
) -> Result<()> {
    let installed: Vec<String> =
        sqlx::query_scalar("SELECT plugin_id FROM installs WHERE tenant_id = $1")
            .bind(&tenant.id)
            .fetch_all(&mut **tx)
            .await?;
    if installed.iter().any(|id| id == plugin) {
        return Err(Error::conflict(
            "already_installed",
            format!("{plugin} is installed already; update or uninstall it"),
        ));
    }
    if i64::try_from(installed.len()).unwrap_or(i64::MAX) >= plan.max_installs {
        return Err(Error::conflict(
            "install_limit",
            format!(
                "the {} plan allows {} installs and the tenant has {}",
                plan.name,
                plan.max_installs,
                installed.len()
            ),
        ));
    }
    Ok(())
}
