//! Changing an install in place: its configuration, whether it runs, how it follows new
//! versions, and its pin. A service the API calls (`PATCH …/installs/{plugin}`), so the rules
//! live here and the handler only translates.

use serde_json::{Map, Value};

use super::deploy::{host_error, load, spec_for};
use super::{Install, config};
use crate::auth::Principal;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tenants::{self, TenantRole};
use crate::versions::policy::UpdatePolicy;

/// What to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct InstallChange {
    /// Enable or disable the install.
    pub enabled: Option<bool>,
    /// Values to set (`null` clears one); keys not given keep their value.
    pub config: Option<Map<String, Value>>,
    /// `manual`, `patch`, `minor` or `any`.
    pub update_policy: Option<String>,
    /// Pin the install to its version: no automatic updates while pinned.
    pub pinned: Option<bool>,
    /// Keep each run's payload and output in the run log ([`crate::runs`]).
    pub capture_runs: Option<bool>,
}

/// Changes the install of `plugin` of tenant `slug` as `principal` (a tenant admin); returns
/// the tenant's id and the install as it now is. The host follows at once: a new
/// configuration reaches the next call, and a blocked plugin stays off whatever the tenant
/// chooses.
///
/// # Errors
///
/// 404 for a tenant the caller may not see or a plugin it has not installed; 403 below admin;
/// 400 for a bad update policy or configuration; 409 `install_changed` if the install moved
/// while its new configuration was checked; the host's refusal.
pub async fn change(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    plugin: &str,
    change: InstallChange,
) -> Result<(String, Install)> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Admin).await?;
    let runtime = state.runtime()?;
    if let Some(policy) = &change.update_policy {
        UpdatePolicy::parse(policy)?;
    }
    let not_installed = || Error::not_found(format!("install of {plugin}"));
    // A new configuration is worked out (the plugin loaded, perhaps compiled) before the write
    // transaction opens, which then refuses with `install_changed` if the install moved to
    // another version or configuration meanwhile.
    let seen = {
        let mut tx = state.db().begin_read().await?;
        super::find(&mut tx, &tenant.id, plugin).await?
    }
    .ok_or_else(not_installed)?;
    let mut new_config = None;
    let mut new_spec = None;
    if change.config.is_some() || change.capture_runs.is_some() {
        let (package, _) = load(state, plugin, &seen.version).await?;
        let previous = config::open(&seen.config, &runtime.secrets, &seen.id)?;
        let values = match &change.config {
            Some(input) => {
                let values = config::check(&package.manifest, input, &previous)?;
                new_config = Some(config::seal(
                    &package.manifest,
                    &values,
                    &runtime.secrets,
                    &seen.id,
                    &config::sealed_keys(&seen.config),
                )?);
                values
            }
            None => previous,
        };
        let plan = tenants::plan(state.db(), &tenant.plan).await?;
        let capture = change.capture_runs.unwrap_or(seen.capture_runs);
        new_spec = Some(spec_for(&plan, &package.manifest, values, capture));
    }

    let mut tx = state.db().begin_tenant(&tenant.id).await?;
    let mut install = super::find(&mut tx, &tenant.id, plugin)
        .await?
        .ok_or_else(not_installed)?;
    // The new spec was worked out from what was seen: the install must not have moved since.
    if new_spec.is_some()
        && (install.id != seen.id
            || install.version != seen.version
            || install.config != seen.config)
    {
        return Err(Error::conflict(
            "install_changed",
            format!(
                "the install of {plugin} changed while its new configuration was checked; try again"
            ),
        ));
    }
    if let Some(config) = new_config {
        install.config = config;
    }
    if let Some(enabled) = change.enabled {
        install.enabled = enabled;
    }
    if let Some(policy) = &change.update_policy {
        install.update_policy.clone_from(policy);
    }
    if let Some(pinned) = change.pinned {
        install.pinned = pinned;
    }
    if let Some(capture) = change.capture_runs {
        install.capture_runs = capture;
    }
    install.updated_at = now_ms();
    sqlx::query(
        "UPDATE installs SET config = $1, enabled = $2, update_policy = $3, pinned = $4, \
         capture_runs = $5, updated_at = $6 WHERE id = $7",
    )
    .bind(&install.config)
    .bind(i64::from(install.enabled))
    .bind(&install.update_policy)
    .bind(i64::from(install.pinned))
    .bind(i64::from(install.capture_runs))
    .bind(install.updated_at)
    .bind(&install.id)
    .execute(&mut *tx)
    .await?;
    let mut changed = Map::new();
    if change.config.is_some() {
        changed.insert("config".into(), config::public_view(&install.config));
    }
    if change.enabled.is_some() {
        changed.insert("enabled".into(), install.enabled.into());
    }
    if change.update_policy.is_some() {
        changed.insert("update_policy".into(), install.update_policy.clone().into());
    }
    if change.pinned.is_some() {
        changed.insert("pinned".into(), install.pinned.into());
    }
    if change.capture_runs.is_some() {
        changed.insert("capture_runs".into(), install.capture_runs.into());
    }
    super::audit(
        &mut tx,
        principal,
        "install.changed",
        &tenant.id,
        plugin,
        Value::Object(changed),
    )
    .await?;
    if let Some(spec) = new_spec {
        runtime
            .host
            .reconfigure(&tenant.id, plugin, spec)
            .map_err(host_error)?;
    }
    // A blocked plugin stays off in the host whatever the tenant chooses.
    let blocked = crate::versions::is_blocked(&mut tx, plugin).await?;
    runtime
        .host
        .set_enabled(&tenant.id, plugin, install.enabled && !blocked)
        .map_err(host_error)?;
    tx.commit().await?;
    Ok((tenant.id, install))
}
