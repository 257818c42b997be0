//! Which plugin versions run for which tenant, and their lifecycle: install → active ⇄
//! disabled → uninstalled, atomic upgrade with automatic rollback, manual rollback, and
//! dispatch of a tenant's events to its subscribed installs.
//!
//! Each install holds the version calls use *now* behind an [`ArcSwap`]: a call takes its own
//! reference when it starts, so an upgrade or rollback swaps atomically and in-flight calls
//! finish on the version they started with. Repeated failures open the install's circuit
//! breaker; a fresh upgrade whose failure rate passes the rollout policy is rolled back
//! automatically and a [`HostEvent`] says why.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use plinth_package::Permissions;
use serde::Serialize;

use crate::breaker::{BreakerState, CircuitBreaker, RolloutGuard};
use crate::engine::Metering;
use crate::error::{Error, InvokeError};
use crate::invoke::{CallSpec, Entry, Invocation, Metered};
use crate::kv::Namespace;
use crate::limits::Limits;
use crate::plugin::{LoadedPlugin, PreparedPlugin};
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

/// How many recent failures an install keeps for [`Host::breaker_status`].
pub const RECENT_FAILURES: usize = 5;

/// What the breaker's wall-clock view needs: recent failures and when and why it opened.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    /// The latest failures that count against the plugin, oldest first.
    pub(crate) recent: VecDeque<CallFailure>,
    /// When the breaker last opened, and why.
    pub(crate) opened: Option<(SystemTime, String)>,
}

/// A failed call of an install that counted against its circuit breaker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallFailure {
    /// The error's code ([`InvokeError::code`]), e.g. `trap`.
    pub code: String,
    /// The error's message.
    pub message: String,
    /// When the call ended.
    pub at: SystemTime,
}

/// An install's circuit breaker state, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerStateName {
    /// Calls run normally.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// The cool-down is over: the next call is a trial.
    HalfOpen,
}

impl BreakerStateName {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerStateName::Closed => "closed",
            BreakerStateName::Open => "open",
            BreakerStateName::HalfOpen => "half_open",
        }
    }
}

/// An install's circuit breaker as an operator or tenant admin sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerStatus {
    /// Closed, open or half-open now.
    pub state: BreakerStateName,
    /// Why it opened (while not closed).
    pub reason: Option<String>,
    /// The latest failures that counted against the plugin (at most [`RECENT_FAILURES`]),
    /// newest first; kept after the breaker closes again.
    pub last_errors: Vec<CallFailure>,
    /// When it last opened (while not closed).
    pub opened_at: Option<SystemTime>,
    /// While open: how long until a trial call is let through.
    pub retry_after: Option<Duration>,
}

/// Installs by tenant, then plugin id.
pub(crate) type InstallTable = RwLock<HashMap<String, HashMap<String, Arc<Install>>>>;

/// A lifecycle event the host reports to whoever listens (the marketplace records and
/// notifies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HostEvent {
    /// A fresh upgrade failed too often and the install was returned to its previous version.
    AutoRolledBack {
        /// The tenant.
        tenant: String,
        /// The plugin id.
        plugin: String,
        /// The version that failed.
        from: String,
        /// The version now running.
        to: String,
        /// Failures seen during the rollout.
        failures: u32,
        /// Calls seen during the rollout.
        calls: u32,
    },
    /// An install's circuit breaker opened after repeated failures.
    CircuitOpened {
        /// The tenant.
        tenant: String,
        /// The plugin id.
        plugin: String,
        /// The version failing.
        version: String,
    },
}

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

/// One plugin's result for a dispatched event.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The plugin id.
    pub plugin: String,
    /// The version that handled it.
    pub version: String,
    /// The topic delivered (an emitted event's topic for onward deliveries).
    pub topic: String,
    /// 0 for the dispatched event, more for events plugins emitted onward.
    pub depth: u32,
    /// How the call ended.
    pub invocation: Invocation,
}

/// How a plugin served an HTTP request.
#[derive(Debug)]
pub struct HttpServed {
    /// The version that served it.
    pub version: String,
    /// The plugin's response, or why the call failed.
    pub response: Result<http::Response<Bytes>, InvokeError>,
    /// The call's logs and usage (its `result` carries no output for HTTP calls).
    pub invocation: Invocation,
}

/// A rollback that happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RolledBack {
    /// The version left.
    pub from: String,
    /// The version now running.
    pub to: String,
}

/// An upgrade whose `on-upgrade` hook has run ([`Host::run_upgrade_hook`]), ready to be
/// swapped in by [`Host::finish_upgrade`] as long as the install still runs the version the
/// hook was told it upgrades from. Cheap to clone.
#[derive(Clone, Debug)]
pub struct UpgradeReady {
    tenant: String,
    plugin: String,
    install: Arc<Install>,
    replaces: Arc<Deployment>,
    deployment: Arc<Deployment>,
}

impl UpgradeReady {
    /// The version the hook was told it upgrades from.
    pub fn from_version(&self) -> String {
        self.replaces.version()
    }

    /// The version it upgrades to.
    pub fn to_version(&self) -> String {
        self.deployment.version()
    }

    /// Whether the install still runs the version the hook was told it upgrades from (if not,
    /// [`Host::finish_upgrade`] refuses).
    pub fn is_current(&self) -> bool {
        Arc::ptr_eq(&self.install.current.load(), &self.replaces)
    }
}

/// A rollback whose hook has run ([`Host::run_rollback_hook`]), ready to be applied by
/// [`Host::finish_rollback`] as long as the install has not changed. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RollbackReady {
    tenant: String,
    plugin: String,
    install: Arc<Install>,
    leaves: Arc<Deployment>,
    returns_to: Arc<Deployment>,
}

impl RollbackReady {
    /// The version it returns to.
    pub fn to_version(&self) -> String {
        self.returns_to.version()
    }

    /// Whether the install still runs the version left, with the one returned to as its
    /// previous (if not, [`Host::finish_rollback`] refuses).
    pub fn is_current(&self) -> bool {
        Arc::ptr_eq(&self.install.current.load(), &self.leaves)
            && lock(&self.install.previous)
                .as_ref()
                .is_some_and(|previous| Arc::ptr_eq(previous, &self.returns_to))
    }
}

/// What [`Host::finish_upgrade`] or [`Host::finish_rollback`] replaced, so that
/// [`Host::revert`] can put it back when the change it belongs to is not committed.
#[derive(Debug)]
pub struct Swapped {
    tenant: String,
    plugin: String,
    install: Arc<Install>,
    before: Arc<Deployment>,
    before_previous: Option<Arc<Deployment>>,
    after: Arc<Deployment>,
    /// The install right after the swap.
    pub info: InstallInfo,
}

/// The error of a change prepared for an install that has changed since.
fn changed(tenant: &str, plugin: &str) -> Error {
    Error::InstallChanged {
        tenant: tenant.to_string(),
        plugin: plugin.to_string(),
    }
}

/// The version `install` runs and the one a rollback returns to.
fn rollback_pair(
    tenant: &str,
    plugin: &str,
    install: &Install,
) -> Result<(Arc<Deployment>, Arc<Deployment>), Error> {
    let previous = lock(&install.previous);
    let Some(returns_to) = previous.as_ref() else {
        return Err(Error::NothingToRollBack {
            tenant: tenant.to_string(),
            plugin: plugin.to_string(),
        });
    };
    Ok((install.current.load_full(), Arc::clone(returns_to)))
}

impl Host {
    /// Installs `plugin` for `tenant` with `spec`: prepares it for the grant, runs its
    /// `on-install` hook (if exported) and makes it active.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyInstalled`]; anything [`Host::prepare`] refuses; [`Error::Lifecycle`]
    /// if `on-install` fails (nothing is installed then).
    pub async fn install(
        &self,
        tenant: &str,
        plugin: &Arc<LoadedPlugin>,
        spec: InstallSpec,
    ) -> Result<InstallInfo, Error> {
        let id = plugin.manifest.plugin.id.to_string();
        if self.find(tenant, &id).is_ok() {
            return Err(Error::AlreadyInstalled {
                tenant: tenant.to_string(),
                plugin: id,
            });
        }
        let prepared = self.prepare(plugin, &spec.grants, spec.metering)?;
        let deployment = Deployment { prepared, spec };
        self.lifecycle(tenant, &deployment, Entry::Install, "on-install")
            .await?;
        let installed = self.attach(tenant, &id, deployment, true)?;
        self.local_changes.touch(tenant, &id);
        tracing::info!(tenant, plugin = %plugin.label(), "installed");
        Ok(installed)
    }

    /// Re-attaches an install made in an earlier run of this host, as the marketplace does
    /// when it rebuilds the host's state from storage at start: prepares it (from the compiled
    /// cache) and makes it active or disabled, without running `on-install` again.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyInstalled`]; anything [`Host::prepare`] refuses.
    pub fn restore(
        &self,
        tenant: &str,
        plugin: &Arc<LoadedPlugin>,
        spec: InstallSpec,
        enabled: bool,
    ) -> Result<InstallInfo, Error> {
        let id = plugin.manifest.plugin.id.to_string();
        let prepared = self.prepare(plugin, &spec.grants, spec.metering)?;
        self.attach(tenant, &id, Deployment { prepared, spec }, enabled)
    }

    /// Makes this host's install of `plugin` for `tenant` the given version, spec and enabled
    /// state without running any hook: what a host does when another process changed the
    /// install in storage. An existing install keeps its breaker; calls in flight finish on
    /// what they started with.
    ///
    /// # Errors
    ///
    /// Anything [`Host::prepare`] refuses; [`Error::AlreadyInstalled`] if the install was
    /// attached concurrently.
    pub fn apply(
        &self,
        tenant: &str,
        plugin: &Arc<LoadedPlugin>,
        spec: InstallSpec,
        enabled: bool,
    ) -> Result<InstallInfo, Error> {
        let id = plugin.manifest.plugin.id.to_string();
        let prepared = self.prepare(plugin, &spec.grants, spec.metering)?;
        let deployment = Deployment { prepared, spec };
        match self.find(tenant, &id) {
            Ok(install) => {
                install.current.store(Arc::new(deployment));
                install.enabled.store(enabled, Ordering::SeqCst);
                Ok(info(&install))
            }
            Err(_) => self.attach(tenant, &id, deployment, enabled),
        }
    }

    /// Drops `tenant`'s install of `plugin` from this host only: no hook runs and its kv data
    /// stays (storage says it is gone, and whoever removed it there ran the hook and deleted
    /// the data). Returns whether there was one.
    pub fn detach(&self, tenant: &str, plugin: &str) -> bool {
        let removed = self.remove(tenant, plugin);
        if removed {
            tracing::info!(tenant, plugin, "detached");
        }
        removed
    }

    /// Takes the install out of the table; whether there was one.
    fn remove(&self, tenant: &str, plugin: &str) -> bool {
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

    /// Whether this process itself changed `tenant`'s install of `plugin` (installed,
    /// upgraded, rolled back, reconfigured, enabled or disabled, uninstalled) in the last
    /// `window`; [`Host::apply`] and [`Host::detach`] do not count.
    pub fn changed_here_within(&self, tenant: &str, plugin: &str, window: Duration) -> bool {
        self.local_changes.within(tenant, plugin, window)
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

    /// Replaces the grants, configuration and limits of an install's current version (no
    /// lifecycle hook runs; in-flight calls finish with the old ones).
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`]; anything [`Host::prepare`] refuses.
    pub fn reconfigure(
        &self,
        tenant: &str,
        plugin: &str,
        spec: InstallSpec,
    ) -> Result<InstallInfo, Error> {
        let install = self.find(tenant, plugin)?;
        let loaded = Arc::clone(&install.current.load().prepared.plugin);
        let prepared = self.prepare(&loaded, &spec.grants, spec.metering)?;
        install
            .current
            .store(Arc::new(Deployment { prepared, spec }));
        self.local_changes.touch(tenant, plugin);
        tracing::info!(tenant, plugin, "reconfigured");
        Ok(info(&install))
    }

    /// Adds `deployment` as the install of `plugin` for `tenant`.
    fn attach(
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

    /// Enables or disables an install; a disabled install receives no events.
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`].
    pub fn set_enabled(&self, tenant: &str, plugin: &str, enabled: bool) -> Result<(), Error> {
        self.find(tenant, plugin)?
            .enabled
            .store(enabled, Ordering::SeqCst);
        self.local_changes.touch(tenant, plugin);
        tracing::info!(tenant, plugin, enabled, "install enabled state changed");
        Ok(())
    }

    /// Upgrades an install to `to`: prepares it for `spec`, runs its `on-upgrade(from)` hook,
    /// then swaps atomically (in-flight calls finish on the old version). The old version is
    /// kept for rollback, and the rollout is watched: too many failures roll it back.
    ///
    /// This is [`Host::run_upgrade_hook`] then [`Host::finish_upgrade`]; a caller that records
    /// the upgrade in a transaction calls them apart, so that no plugin code runs while the
    /// transaction is open.
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`]; anything [`Host::prepare`] refuses; [`Error::Lifecycle`] if
    /// `on-upgrade` fails (the install stays on its version); [`Error::InstallChanged`] if the
    /// install changed while the hook ran (e.g. it was rolled back automatically).
    pub async fn upgrade(
        &self,
        tenant: &str,
        to: &Arc<LoadedPlugin>,
        spec: InstallSpec,
    ) -> Result<InstallInfo, Error> {
        let ready = self.run_upgrade_hook(tenant, to, spec).await?;
        Ok(self.finish_upgrade(&ready)?.info)
    }

    /// The first half of [`Host::upgrade`]: prepares `to` for `spec` and runs its
    /// `on-upgrade(from)` hook, where `from` is the version the install runs now. Nothing about
    /// the install changes; [`Host::finish_upgrade`] swaps the version in, running no plugin
    /// code. What the hook did itself (kv writes, outbound requests) stays done whether or not
    /// the upgrade is finished.
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`]; anything [`Host::prepare`] refuses; [`Error::Lifecycle`] if
    /// `on-upgrade` fails.
    pub async fn run_upgrade_hook(
        &self,
        tenant: &str,
        to: &Arc<LoadedPlugin>,
        spec: InstallSpec,
    ) -> Result<UpgradeReady, Error> {
        let plugin = to.manifest.plugin.id.to_string();
        let install = self.find(tenant, &plugin)?;
        let prepared = self.prepare(to, &spec.grants, spec.metering)?;
        let deployment = Arc::new(Deployment { prepared, spec });
        let replaces = install.current.load_full();
        let from = replaces.version();
        self.lifecycle(
            tenant,
            &deployment,
            Entry::Upgrade(from.clone()),
            "on-upgrade",
        )
        .await?;
        Ok(UpgradeReady {
            tenant: tenant.to_string(),
            plugin,
            install,
            replaces,
            deployment,
        })
    }

    /// The second half of [`Host::upgrade`]: swaps the version whose hook ran in (no plugin
    /// code runs), keeps the old one for rollback and starts watching the rollout. Undo it
    /// with [`Host::revert`].
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`] if the install is gone; [`Error::InstallChanged`] if the
    /// install no longer runs the version the hook was told it upgrades from.
    pub fn finish_upgrade(&self, ready: &UpgradeReady) -> Result<Swapped, Error> {
        let install = self.same_install(&ready.tenant, &ready.plugin, &ready.install)?;
        let before_previous = {
            let mut previous = lock(&install.previous);
            let replaced = install
                .current
                .compare_and_swap(&ready.replaces, Arc::clone(&ready.deployment));
            if !Arc::ptr_eq(&replaced, &ready.replaces) {
                return Err(changed(&ready.tenant, &ready.plugin));
            }
            previous.replace(Arc::clone(&ready.replaces))
        };
        *lock(&install.rollout) = Some(RolloutGuard::new(self.policies.rollout, Instant::now()));
        *lock(&install.breaker) = CircuitBreaker::new(self.policies.breaker);
        self.local_changes.touch(&ready.tenant, &ready.plugin);
        tracing::info!(
            tenant = %ready.tenant, plugin = %ready.plugin,
            from = %ready.replaces.version(), to = %ready.deployment.version(), "upgraded"
        );
        Ok(Swapped {
            tenant: ready.tenant.clone(),
            plugin: ready.plugin.clone(),
            info: info(&install),
            install,
            before: Arc::clone(&ready.replaces),
            before_previous,
            after: Arc::clone(&ready.deployment),
        })
    }

    /// Returns an install to the version it ran before its last upgrade, with the grants and
    /// configuration it had then. The returned-to version's `on-upgrade` hook is told the
    /// version it comes from; its failure is logged and does not stop the rollback.
    ///
    /// This is [`Host::run_rollback_hook`] then [`Host::finish_rollback`].
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`]; [`Error::NothingToRollBack`] if there was no upgrade;
    /// [`Error::InstallChanged`] if the install changed while the hook ran.
    pub async fn rollback(&self, tenant: &str, plugin: &str) -> Result<RolledBack, Error> {
        let ready = self.run_rollback_hook(tenant, plugin).await?;
        let swapped = self.finish_rollback(&ready)?;
        Ok(RolledBack {
            from: swapped.before.version(),
            to: swapped.after.version(),
        })
    }

    /// The first half of [`Host::rollback`]: runs the `on-upgrade(from)` hook of the version
    /// the install would return to (a failure is logged: getting off a bad version matters
    /// more). Nothing about the install changes; [`Host::finish_rollback`] does, running no
    /// plugin code.
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`]; [`Error::NothingToRollBack`] if there was no upgrade.
    pub async fn run_rollback_hook(
        &self,
        tenant: &str,
        plugin: &str,
    ) -> Result<RollbackReady, Error> {
        let install = self.find(tenant, plugin)?;
        let (leaves, returns_to) = rollback_pair(tenant, plugin, &install)?;
        self.rollback_hook(tenant, plugin, &leaves, &returns_to)
            .await;
        Ok(RollbackReady {
            tenant: tenant.to_string(),
            plugin: plugin.to_string(),
            install,
            leaves,
            returns_to,
        })
    }

    /// The second half of [`Host::rollback`]: returns the install to its previous version (no
    /// plugin code runs); it has no previous version afterwards. Undo it with
    /// [`Host::revert`].
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`] if the install is gone; [`Error::InstallChanged`] if it no
    /// longer runs the version left, or no longer has the one returned to as its previous.
    pub fn finish_rollback(&self, ready: &RollbackReady) -> Result<Swapped, Error> {
        let install = self.same_install(&ready.tenant, &ready.plugin, &ready.install)?;
        self.swap_back(
            &ready.tenant,
            &ready.plugin,
            &install,
            &ready.leaves,
            &ready.returns_to,
        )?;
        Ok(Swapped {
            tenant: ready.tenant.clone(),
            plugin: ready.plugin.clone(),
            info: info(&install),
            install,
            before: Arc::clone(&ready.leaves),
            before_previous: Some(Arc::clone(&ready.returns_to)),
            after: Arc::clone(&ready.returns_to),
        })
    }

    /// Rolls `install` back in one go (hook, then swap): the automatic rollback of a failing
    /// rollout, which holds no lock of anyone else while the hook runs.
    pub(crate) async fn roll_back_install(
        &self,
        tenant: &str,
        plugin: &str,
        install: &Install,
    ) -> Result<RolledBack, Error> {
        let (leaves, returns_to) = rollback_pair(tenant, plugin, install)?;
        self.rollback_hook(tenant, plugin, &leaves, &returns_to)
            .await;
        self.swap_back(tenant, plugin, install, &leaves, &returns_to)?;
        Ok(RolledBack {
            from: leaves.version(),
            to: returns_to.version(),
        })
    }

    /// Runs `returns_to`'s `on-upgrade(from)` hook for a rollback off `leaves`; a failure is
    /// logged only.
    async fn rollback_hook(
        &self,
        tenant: &str,
        plugin: &str,
        leaves: &Deployment,
        returns_to: &Deployment,
    ) {
        let from = leaves.version();
        if let Err(error) = self
            .lifecycle(
                tenant,
                returns_to,
                Entry::Upgrade(from.clone()),
                "on-upgrade",
            )
            .await
        {
            tracing::warn!(tenant, plugin, %error, "on-upgrade failed during rollback");
        }
    }

    /// Makes `install` run `returns_to` instead of `leaves` if it still runs `leaves` with
    /// `returns_to` as its previous version; it has no previous version afterwards.
    fn swap_back(
        &self,
        tenant: &str,
        plugin: &str,
        install: &Install,
        leaves: &Arc<Deployment>,
        returns_to: &Arc<Deployment>,
    ) -> Result<(), Error> {
        {
            let mut previous = lock(&install.previous);
            if !previous
                .as_ref()
                .is_some_and(|previous| Arc::ptr_eq(previous, returns_to))
            {
                return Err(changed(tenant, plugin));
            }
            let replaced = install
                .current
                .compare_and_swap(leaves, Arc::clone(returns_to));
            if !Arc::ptr_eq(&replaced, leaves) {
                return Err(changed(tenant, plugin));
            }
            *previous = None;
        }
        *lock(&install.rollout) = None;
        *lock(&install.breaker) = CircuitBreaker::new(self.policies.breaker);
        self.local_changes.touch(tenant, plugin);
        tracing::info!(
            tenant, plugin, from = %leaves.version(), to = %returns_to.version(), "rolled back"
        );
        Ok(())
    }

    /// Puts back what a [`Host::finish_upgrade`] or [`Host::finish_rollback`] replaced (the
    /// version, and the previous version), without running any hook: for a change whose
    /// record was not committed. The breaker starts afresh and no rollout is watched.
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`] if the install is gone; [`Error::InstallChanged`] if it no
    /// longer runs what the swap put in (nothing is changed then).
    pub fn revert(&self, swapped: &Swapped) -> Result<InstallInfo, Error> {
        let install = self.same_install(&swapped.tenant, &swapped.plugin, &swapped.install)?;
        {
            let mut previous = lock(&install.previous);
            let replaced = install
                .current
                .compare_and_swap(&swapped.after, Arc::clone(&swapped.before));
            if !Arc::ptr_eq(&replaced, &swapped.after) {
                return Err(changed(&swapped.tenant, &swapped.plugin));
            }
            previous.clone_from(&swapped.before_previous);
        }
        *lock(&install.rollout) = None;
        *lock(&install.breaker) = CircuitBreaker::new(self.policies.breaker);
        self.local_changes.touch(&swapped.tenant, &swapped.plugin);
        tracing::info!(
            tenant = %swapped.tenant, plugin = %swapped.plugin,
            version = %swapped.before.version(), "version change reverted"
        );
        Ok(info(&install))
    }

    /// `tenant`'s install of `plugin`, if it is still `expected` (not removed, nor removed and
    /// installed again).
    fn same_install(
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

    /// Uninstalls: runs `on-uninstall` (a failure is logged, not fatal), removes the install
    /// and deletes its kv data.
    ///
    /// This is [`Host::run_uninstall_hook`] then [`Host::remove_install`].
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`]; [`Error::Kv`] if its data cannot be deleted (the install is
    /// removed already; deleting again is safe).
    pub async fn uninstall(&self, tenant: &str, plugin: &str) -> Result<(), Error> {
        match self.run_uninstall_hook(tenant, plugin).await {
            Ok(()) => {}
            Err(error @ Error::Lifecycle { .. }) => {
                tracing::warn!(tenant, plugin, %error, "on-uninstall failed");
            }
            Err(error) => return Err(error),
        }
        self.remove_install(tenant, plugin).await?;
        Ok(())
    }

    /// Runs the `on-uninstall` hook of `tenant`'s install of `plugin`, changing nothing else:
    /// [`Host::remove_install`] removes it afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`]; [`Error::Lifecycle`] if the hook fails.
    pub async fn run_uninstall_hook(&self, tenant: &str, plugin: &str) -> Result<(), Error> {
        let current = self.find(tenant, plugin)?.current.load_full();
        self.lifecycle(tenant, &current, Entry::Uninstall, "on-uninstall")
            .await
    }

    /// Removes `tenant`'s install of `plugin` without running any hook and deletes its kv
    /// data (also when this host did not run it). Returns whether this host ran it.
    ///
    /// # Errors
    ///
    /// [`Error::Kv`] if its data cannot be deleted (the install is removed already; deleting
    /// again is safe).
    pub async fn remove_install(&self, tenant: &str, plugin: &str) -> Result<bool, Error> {
        let removed = self.remove(tenant, plugin);
        self.local_changes.touch(tenant, plugin);
        if let Some(store) = &self.sandboxes.kv {
            store
                .delete_namespace(&Namespace::new(tenant, plugin))
                .await?;
        }
        tracing::info!(tenant, plugin, "uninstalled");
        Ok(removed)
    }

    /// Forgets a tenant that is gone for good: uninstalls what it still has (hooks run, as for
    /// any uninstall), deletes every kv entry it ever wrote, and drops its rate buckets.
    /// Returns how many kv entries were deleted.
    ///
    /// # Errors
    ///
    /// [`Error::Kv`] if its kv data cannot be deleted (purging again is safe).
    pub async fn purge_tenant(&self, tenant: &str) -> Result<u64, Error> {
        for install in self.installs(tenant) {
            match self.uninstall(tenant, &install.plugin).await {
                Ok(()) | Err(Error::NotInstalled { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        self.installs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(tenant);
        self.sandboxes.rates.forget(tenant);
        let deleted = match &self.sandboxes.kv {
            Some(store) => store.delete_tenant(tenant).await?,
            None => 0,
        };
        tracing::info!(tenant, kv_entries = deleted, "tenant purged from the host");
        Ok(deleted)
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

    /// Runs a lifecycle hook of `deployment`, turning its failure into [`Error::Lifecycle`].
    async fn lifecycle(
        &self,
        tenant: &str,
        deployment: &Deployment,
        entry: Entry,
        hook: &'static str,
    ) -> Result<(), Error> {
        let ran = self.run(deployment.call(tenant, 0, entry, None)).await;
        ran.invocation
            .result
            .map(|_| ())
            .map_err(|error| Error::Lifecycle {
                plugin: deployment.prepared.plugin.label(),
                hook,
                error,
            })
    }

    /// The circuit breaker of `tenant`'s install of `plugin`: its state, why and when it
    /// opened, and the latest failures that counted against the plugin. `None` if there is no
    /// such install.
    pub fn breaker_status(&self, tenant: &str, plugin: &str) -> Option<BreakerStatus> {
        let install = self.find(tenant, plugin).ok()?;
        let now = Instant::now();
        let state = lock(&install.breaker).state(now);
        let log = lock(&install.failures);
        let (name, retry_after) = match state {
            BreakerState::Closed => (BreakerStateName::Closed, None),
            BreakerState::Open { until } => (
                BreakerStateName::Open,
                Some(until.saturating_duration_since(now)),
            ),
            BreakerState::HalfOpen => (BreakerStateName::HalfOpen, None),
        };
        let opened = match name {
            BreakerStateName::Closed => None,
            _ => log.opened.clone(),
        };
        Some(BreakerStatus {
            state: name,
            reason: opened.as_ref().map(|(_, reason)| reason.clone()),
            last_errors: log.recent.iter().rev().cloned().collect(),
            opened_at: opened.map(|(at, _)| at),
            retry_after,
        })
    }

    /// How many installs of each plugin have their circuit breaker in each state now:
    /// `(plugin, state) → installs`, over every tenant.
    pub fn breaker_states(&self) -> BTreeMap<(String, BreakerStateName), u64> {
        let now = Instant::now();
        let mut states = BTreeMap::new();
        let table = self.installs.read().unwrap_or_else(PoisonError::into_inner);
        for (plugin, install) in table.values().flatten() {
            let state = match lock(&install.breaker).state(now) {
                BreakerState::Closed => BreakerStateName::Closed,
                BreakerState::Open { .. } => BreakerStateName::Open,
                BreakerState::HalfOpen => BreakerStateName::HalfOpen,
            };
            *states.entry((plugin.clone(), state)).or_insert(0) += 1;
        }
        states
    }

    /// Closes the circuit breaker of `tenant`'s install of `plugin` (an admin decided the
    /// cause is fixed): calls run again at once and the failure window starts empty. The
    /// recent failures are kept for [`Host::breaker_status`].
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`].
    pub fn reset_breaker(&self, tenant: &str, plugin: &str) -> Result<BreakerStatus, Error> {
        let install = self.find(tenant, plugin)?;
        *lock(&install.breaker) = CircuitBreaker::new(self.policies.breaker);
        lock(&install.failures).opened = None;
        tracing::info!(tenant, plugin, "circuit breaker reset");
        self.breaker_status(tenant, plugin)
            .ok_or_else(|| Error::NotInstalled {
                tenant: tenant.to_string(),
                plugin: plugin.to_string(),
            })
    }

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
}

fn info(install: &Install) -> InstallInfo {
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
