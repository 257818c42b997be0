//! An install's lifecycle: install (running `on-install`), restore, apply, reconfigure,
//! enable or disable, detach, and uninstall (running `on-uninstall`, deleting its kv data).

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use super::table::{Deployment, InstallInfo, InstallSpec, info};
use crate::error::Error;
use crate::invoke::Entry;
use crate::kv::Namespace;
use crate::plugin::LoadedPlugin;
use crate::runs::RunEntry;
use crate::runtime::Host;

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

    /// Enables or disables an install; a disabled install receives no events.
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`]; [`Error::Trust`] for enabling a version the newest state
    /// statement revokes.
    pub fn set_enabled(&self, tenant: &str, plugin: &str, enabled: bool) -> Result<(), Error> {
        let install = self.find(tenant, plugin)?;
        if enabled {
            let version = install.current.load().version();
            if let Some(sequence) = self.statements.revokes(plugin, &version) {
                return Err(Error::Trust(crate::trust::TrustError::Revoked {
                    plugin: plugin.to_owned(),
                    version,
                    sequence,
                }));
            }
        }
        install.enabled.store(enabled, Ordering::SeqCst);
        self.local_changes.touch(tenant, plugin);
        tracing::info!(tenant, plugin, enabled, "install enabled state changed");
        Ok(())
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

    /// Runs a lifecycle hook of `deployment`, turning its failure into [`Error::Lifecycle`].
    pub(super) async fn lifecycle(
        &self,
        tenant: &str,
        deployment: &Deployment,
        entry: Entry,
        hook: &'static str,
    ) -> Result<(), Error> {
        let mut ran = self.run(deployment.call(tenant, 0, entry, None)).await;
        let plugin = deployment.prepared.plugin.manifest.plugin.id.to_string();
        self.record_run(
            (tenant, &plugin, &deployment.version()),
            || RunEntry::Hook { name: hook },
            &deployment.spec.runs,
            &mut ran.invocation,
            &[],
            None,
        );
        ran.invocation
            .result
            .map(|_| ())
            .map_err(|error| Error::Lifecycle {
                plugin: deployment.prepared.plugin.label(),
                hook,
                error,
            })
    }
}
