//! Changing the version an install runs: upgrade (its `on-upgrade` hook, then an atomic swap
//! with the rollout watched), rollback (automatic or asked for), and reverting a swap whose
//! record was not committed. Each is a hook half and a swap half, so no plugin code runs while
//! a caller's transaction is open.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::table::{Deployment, Install, InstallInfo, InstallSpec, changed, info};
use crate::breaker::{CircuitBreaker, RolloutGuard};
use crate::error::Error;
use crate::invoke::Entry;
use crate::plugin::LoadedPlugin;
use crate::runtime::{Host, lock};

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
}
