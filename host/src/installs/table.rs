//! The install table: which plugin version runs, with which spec, for which tenant
//! ([`Install`], [`Deployment`], [`InstallSpec`]), and finding, adding and removing installs.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use plinth_package::Permissions;
use serde::Serialize;

use super::accounting::FailureLog;
use crate::breaker::{CircuitBreaker, RolloutGuard};
use crate::engine::Metering;
use crate::error::Error;
use crate::invoke::{CallSpec, Entry, Metered};
use crate::limits::Limits;
use crate::plugin::PreparedPlugin;
use crate::runs::RunLogging;
use crate::runtime::{Host, lock};

/// What a tenant granted an install and how it runs.
#[derive(Clone, Debug)]
pub struct InstallSpec {
    /// The permissions the tenant granted (a subset of what the manifest asks for).
    pub grants: Permissions,
    /// The install's configuration values.
    pub config: Arc<BTreeMap<String, String>>,
    /// The tenant's plan limits.
    pub limits: Limits,
    /// Whether calls count fuel.
    pub metering: Metering,
    /// How the install's runs are recorded (capture, secrets to redact).
    pub runs: RunLogging,
}

/// A version deployed for an install: the prepared plugin and the spec it runs with.
#[derive(Debug)]
pub(crate) struct Deployment {
    pub(crate) prepared: Arc<PreparedPlugin>,
    pub(crate) spec: InstallSpec,
}

impl Deployment {
    /// A call of this deployment for `tenant`, with its config and limits.
    pub(crate) fn call(
        &self,
        tenant: &str,
        depth: u32,
        entry: Entry,
        metered: Option<Metered>,
    ) -> CallSpec {
        CallSpec {
            prepared: Arc::clone(&self.prepared),
            tenant: tenant.to_string(),
            config: Arc::clone(&self.spec.config),
            limits: self.spec.limits.clone(),
            depth,
            entry,
            metered,
        }
    }

    pub(crate) fn version(&self) -> String {
        self.prepared.plugin.manifest.plugin.version.to_string()
    }
}

/// One tenant's install of one plugin.
#[derive(Debug)]
pub(crate) struct Install {
    pub(crate) current: ArcSwap<Deployment>,
    pub(crate) previous: Mutex<Option<Arc<Deployment>>>,
    pub(crate) enabled: AtomicBool,
    pub(crate) breaker: Mutex<CircuitBreaker>,
    pub(crate) failures: Mutex<FailureLog>,
    pub(crate) rollout: Mutex<Option<RolloutGuard>>,
}

/// Installs by tenant, then plugin id.
pub(crate) type InstallTable = RwLock<HashMap<String, HashMap<String, Arc<Install>>>>;

/// An install as the host sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstallInfo {
    /// The plugin id.
    pub plugin: String,
    /// The version calls use now.
    pub version: String,
    /// The version a rollback would return to.
    pub previous_version: Option<String>,
    /// Whether events reach it.
    pub enabled: bool,
}

/// The error of a change prepared for an install that has changed since.
pub(super) fn changed(tenant: &str, plugin: &str) -> Error {
    Error::InstallChanged {
        tenant: tenant.to_string(),
        plugin: plugin.to_string(),
    }
}

impl Host {
    /// `tenant`'s install of `plugin`.
    pub(crate) fn find(&self, tenant: &str, plugin: &str) -> Result<Arc<Install>, Error> {
        self.installs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .and_then(|installs| installs.get(plugin))
            .cloned()
            .ok_or_else(|| Error::NotInstalled {
                tenant: tenant.to_string(),
                plugin: plugin.to_string(),
            })
    }

    /// Adds `deployment` as the install of `plugin` for `tenant`.
    pub(super) fn attach(
        &self,
        tenant: &str,
        plugin: &str,
        deployment: Deployment,
        enabled: bool,
    ) -> Result<InstallInfo, Error> {
        let install = Arc::new(Install {
            current: ArcSwap::from_pointee(deployment),
            previous: Mutex::new(None),
            enabled: AtomicBool::new(enabled),
            breaker: Mutex::new(CircuitBreaker::new(self.policies.breaker)),
            failures: Mutex::new(FailureLog::default()),
            rollout: Mutex::new(None),
        });
        let mut table = self
            .installs
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let installs = table.entry(tenant.to_string()).or_default();
        if installs.contains_key(plugin) {
            return Err(Error::AlreadyInstalled {
                tenant: tenant.to_string(),
                plugin: plugin.to_string(),
            });
        }
        installs.insert(plugin.to_string(), Arc::clone(&install));
        drop(table);
        Ok(info(&install))
    }

    /// Takes the install out of the table; whether there was one.
    pub(super) fn remove(&self, tenant: &str, plugin: &str) -> bool {
        let mut table = self
            .installs
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(installs) = table.get_mut(tenant) else {
            return false;
        };
        let removed = installs.remove(plugin).is_some();
        if installs.is_empty() {
            table.remove(tenant);
        }
        removed
    }

    /// `tenant`'s install of `plugin`, if it is still `expected` (not removed, nor removed and
    /// installed again).
    pub(super) fn same_install(
        &self,
        tenant: &str,
        plugin: &str,
        expected: &Arc<Install>,
    ) -> Result<Arc<Install>, Error> {
        let install = self.find(tenant, plugin)?;
        if Arc::ptr_eq(&install, expected) {
            Ok(install)
        } else {
            Err(changed(tenant, plugin))
        }
    }

    /// The tenant's installs, sorted by plugin id.
    pub fn installs(&self, tenant: &str) -> Vec<InstallInfo> {
        let table = self.installs.read().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<InstallInfo> = table
            .get(tenant)
            .map(|installs| installs.values().map(|install| info(install)).collect())
            .unwrap_or_default();
        list.sort_by(|a, b| a.plugin.cmp(&b.plugin));
        list
    }

    /// The tenants with at least one install on this host.
    pub fn tenants(&self) -> Vec<String> {
        self.installs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, installs)| !installs.is_empty())
            .map(|(tenant, _)| tenant.clone())
            .collect()
    }

    /// Every enabled install whose grant includes schedules: `(tenant, plugin, schedules)`,
    /// sorted. What the marketplace's schedule ticker queues ticks for.
    pub fn scheduled(&self) -> Vec<(String, String, Vec<plinth_package::Schedule>)> {
        let table = self.installs.read().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<_> = table
            .iter()
            .flat_map(|(tenant, installs)| {
                installs.iter().filter_map(move |(plugin, install)| {
                    if !install.enabled.load(Ordering::SeqCst) {
                        return None;
                    }
                    let schedules = install.current.load().spec.grants.schedules.clone();
                    (!schedules.is_empty()).then(|| (tenant.clone(), plugin.clone(), schedules))
                })
            })
            .collect();
        list.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        list
    }

    /// Whether this process itself changed `tenant`'s install of `plugin` (installed,
    /// upgraded, rolled back, reconfigured, enabled or disabled, uninstalled) in the last
    /// `window`; [`Host::apply`] and [`Host::detach`] do not count.
    pub fn changed_here_within(&self, tenant: &str, plugin: &str, window: Duration) -> bool {
        self.local_changes.within(tenant, plugin, window)
    }
}

/// What the host tells of `install`: its plugin, versions and whether it is enabled.
pub(super) fn info(install: &Install) -> InstallInfo {
    let current = install.current.load();
    InstallInfo {
        plugin: current.prepared.plugin.manifest.plugin.id.to_string(),
        version: current.version(),
        previous_version: lock(&install.previous)
            .as_ref()
            .map(|previous| previous.version()),
        enabled: install.enabled.load(Ordering::SeqCst),
    }
}
