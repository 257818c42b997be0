//! Bringing the host in line with storage: at start (every install of a live tenant), and when
//! another process changed installs ([`crate::changes`]). What storage says wins: an install
//! there is applied to the host without its hooks (whoever changed it ran them), one that is
//! not there any more is detached, and a blocked plugin's installs are disabled. A plan change
//! re-applies the limits of the installs it concerns at once ([`apply_plan`]).

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use plinth_host::{InstallSpec, LoadedPlugin};
use plinth_package::Package;

use super::config;
use super::deploy::{host_error, load, spec_for};
use super::{Install, live_where};
use crate::error::Result;
use crate::state::AppState;

/// Rebuilds the host's installs from storage (at start): every install of a live tenant is
/// loaded (from the compiled cache where it can be) and attached without its `on-install`
/// hook. An install that cannot be restored is logged and skipped, never fatal. Returns how
/// many were restored.
///
/// # Errors
///
/// [`crate::error::Error::Database`] if the installs cannot be read;
/// [`crate::error::Error::Unavailable`] without a host.
pub async fn restore_all(state: &AppState) -> Result<usize> {
    // The stored state statements first: the keys they name and what they revoke decide
    // which packages load.
    crate::statements::follow(state).await;
    sync_sparing(state, None, None, None).await
}

/// Makes the host's installs of `tenant_id` and/or `plugin_id` (`None`: all) what storage
/// says; returns how many installs were applied.
///
/// # Errors
///
/// As [`restore_all`].
pub async fn sync(
    state: &AppState,
    tenant_id: Option<&str>,
    plugin_id: Option<&str>,
) -> Result<usize> {
    sync_sparing(state, tenant_id, plugin_id, None).await
}

/// Makes every install of the host what storage says, except those this process changed
/// itself in the last `window` (see [`plinth_host::local_changes`]): a whole-host read can be
/// older than such a change, and applying it would undo the change (an uninstalled plugin
/// attached again, say). What another process changes meanwhile arrives as a notification,
/// and the next full synchronisation takes the spared installs too. Returns how many installs
/// were applied.
///
/// # Errors
///
/// As [`restore_all`].
pub async fn sync_all_sparing_local(state: &AppState, window: Duration) -> Result<usize> {
    sync_sparing(state, None, None, Some(window)).await
}

/// [`sync`], leaving alone the installs this process changed within `spare`, if given.
async fn sync_sparing(
    state: &AppState,
    tenant_id: Option<&str>,
    plugin_id: Option<&str>,
    spare: Option<Duration>,
) -> Result<usize> {
    let runtime = state.runtime()?;
    let spared = |tenant: &str, plugin: &str| {
        spare.is_some_and(|window| runtime.host.changed_here_within(tenant, plugin, window))
    };
    let stored = live_where(state.db(), tenant_id, plugin_id).await?;
    let wanted: BTreeSet<(String, String)> = stored
        .iter()
        .map(|(install, _)| (install.tenant_id.clone(), install.plugin_id.clone()))
        .collect();
    let mut versions = Versions::new();
    let mut applied = 0;
    for (install, plan_name) in &stored {
        if spared(&install.tenant_id, &install.plugin_id) {
            continue;
        }
        let applied_one = match versions.get(state, install).await {
            Ok((package, plugin)) => apply(state, install, plan_name, package, plugin).await,
            Err(e) => Err(e),
        };
        match applied_one {
            Ok(()) => applied += 1,
            Err(e) => tracing::error!(
                tenant = %install.tenant_id, plugin = %install.plugin_id, error = %e,
                "cannot apply the stored install to the host"
            ),
        }
    }
    let tenants = match tenant_id {
        Some(tenant) => vec![tenant.to_owned()],
        None => runtime.host.tenants(),
    };
    for tenant in tenants {
        for running in runtime.host.installs(&tenant) {
            let in_scope = plugin_id.is_none_or(|plugin| plugin == running.plugin);
            if in_scope
                && !wanted.contains(&(tenant.clone(), running.plugin.clone()))
                && !spared(&tenant, &running.plugin)
            {
                runtime.host.detach(&tenant, &running.plugin);
            }
        }
    }
    Ok(applied)
}

/// Whose installs [`apply_plan`] brings up to date with their plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanScope<'a> {
    /// The installs of the tenant with this id (it moved to another plan).
    Tenant(&'a str),
    /// The installs of every tenant on the plan with this name (its quotas changed).
    Plan(&'a str),
}

/// Re-applies the plan limits (memory, timeout, fuel, tenant-wide rates and quotas) of the
/// installs in `scope` that this host runs, from storage as it is now: the next call of each
/// runs under its plan as changed, without a restart. Called once a plan change committed, in
/// the process that made it and, through the change feed ([`crate::changes`]), in the others.
///
/// No hook runs ([`plinth_host::Host::reconfigure`]); version and enabled state stay as they
/// are. An install whose stored version is not the one the host runs is left alone: it is
/// moving, and its move applies the spec of the plan it reads. Failures are logged, never
/// returned: the plan change stands, and the next synchronisation applies it. Returns how many
/// installs were re-applied.
pub async fn apply_plan(state: &AppState, scope: PlanScope<'_>) -> usize {
    let Ok(runtime) = state.runtime() else {
        return 0;
    };
    let tenant_id = match scope {
        PlanScope::Tenant(tenant_id) => Some(tenant_id),
        PlanScope::Plan(_) => None,
    };
    let stored = match live_where(state.db(), tenant_id, None).await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::error!(?scope, %error, "cannot read the installs a plan change concerns");
            return 0;
        }
    };
    let mut versions = Versions::new();
    let mut applied = 0;
    for (install, plan_name) in &stored {
        if matches!(scope, PlanScope::Plan(plan) if plan != plan_name) {
            continue;
        }
        let runs_stored_version = runtime
            .host
            .installs(&install.tenant_id)
            .iter()
            .any(|running| {
                running.plugin == install.plugin_id && running.version == install.version
            });
        if !runs_stored_version {
            continue;
        }
        let reconfigured = async {
            let (package, _) = versions.get(state, install).await?;
            let spec = stored_spec(state, install, plan_name, package).await?;
            runtime
                .host
                .reconfigure(&install.tenant_id, &install.plugin_id, spec)
                .map_err(host_error)
        };
        match reconfigured.await {
            Ok(_) => applied += 1,
            Err(error) => tracing::error!(
                tenant = %install.tenant_id, plugin = %install.plugin_id, %error,
                "cannot apply the changed plan to the install"
            ),
        }
    }
    applied
}

/// A version read from storage and loaded into the host.
type Loaded = (Package, Arc<LoadedPlugin>);

/// The versions a pass over many installs loaded: many installs share a version, so each is
/// read, verified and loaded once.
struct Versions(HashMap<(String, String), Loaded>);

impl Versions {
    fn new() -> Self {
        Versions(HashMap::new())
    }

    /// The stored version `install` is on, loaded.
    async fn get(&mut self, state: &AppState, install: &Install) -> Result<&Loaded> {
        let key = (install.plugin_id.clone(), install.version.clone());
        match self.0.entry(key) {
            Entry::Occupied(known) => Ok(known.into_mut()),
            Entry::Vacant(slot) => {
                Ok(slot.insert(load(state, &install.plugin_id, &install.version).await?))
            }
        }
    }
}

/// The spec stored `install` of `package` runs with on plan `plan_name` as stored now.
async fn stored_spec(
    state: &AppState,
    install: &Install,
    plan_name: &str,
    package: &Package,
) -> Result<InstallSpec> {
    let runtime = state.runtime()?;
    let plan = crate::tenants::plan(state.db(), plan_name).await?;
    let values = config::open(&install.config, &runtime.secrets, &install.id)?;
    Ok(spec_for(
        &plan,
        &package.manifest,
        values,
        install.capture_runs,
    ))
}

/// Applies one stored install of the loaded `package` to the host: its version, configuration,
/// plan limits, and enabled unless it or its plugin is blocked.
async fn apply(
    state: &AppState,
    install: &Install,
    plan_name: &str,
    package: &Package,
    loaded: &Arc<LoadedPlugin>,
) -> Result<()> {
    let runtime = state.runtime()?;
    let spec = stored_spec(state, install, plan_name, package).await?;
    let blocked = crate::versions::plugin_blocked(state.db(), &install.plugin_id).await?;
    runtime
        .host
        .apply(
            &install.tenant_id,
            loaded,
            spec,
            install.enabled && !blocked,
        )
        .map_err(host_error)?;
    Ok(())
}
