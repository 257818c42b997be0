//! Running the `on-upgrade` hooks of planned moves in the host, before the transaction that
//! records them opens (see [`super::moves`]): plugin code never runs while a transaction or
//! lock is held, so a slow hook delays nobody else's writes.

use std::collections::HashMap;

use plinth_host::{Host, RollbackReady, UpgradeReady};

use super::moves::Planned;
use crate::error::Result;
use crate::installs::{self, Install};

/// What the host is ready to do for one planned move, its hook having run.
pub(crate) enum HostStep {
    /// The host does not run the install: the move is made in storage only.
    NotRunning,
    /// Swap the new version in.
    Upgrade(UpgradeReady),
    /// The host refused the move (forced moves only) and the target is the host's previous
    /// version: return to it.
    RollBack(RollbackReady),
    /// The host refused the move (forced moves only) and cannot return to the target: the
    /// install is disabled, for this reason.
    Refused(String),
}

impl HostStep {
    /// Whether what the host got ready still applies to the install as it runs now.
    fn still_ready(&self) -> bool {
        match self {
            HostStep::Upgrade(ready) => ready.is_current(),
            HostStep::RollBack(ready) => ready.is_current(),
            HostStep::NotRunning | HostStep::Refused(_) => false,
        }
    }
}

/// The hooks run for an operation's moves, by install id. Kept across the attempts of one
/// operation, so that a retry after an unrelated install changed does not run the hooks of
/// the unchanged moves again.
#[derive(Default)]
pub(crate) struct Hooks {
    ran: HashMap<String, (String, HostStep)>,
}

impl Hooks {
    /// Runs the `on-upgrade` hook of each planned move in the host (no transaction may be
    /// open). A hook that fails refuses the move, unless `forced` (a security yank or an
    /// operator rollback: the install must leave its version): then the install returns to
    /// its host-side previous version if that is the target (that version's hook failing is
    /// only logged), or else will be disabled.
    ///
    /// # Errors
    ///
    /// When not `forced`, the host's refusal of a move (a failing hook: 409
    /// `lifecycle_failed`).
    pub(crate) async fn run(
        &mut self,
        host: &Host,
        planned: &[Planned],
        forced: bool,
    ) -> Result<()> {
        for planned in planned {
            let Some((to, loaded, spec)) = planned.upgrade() else {
                continue;
            };
            let install = &planned.choice.install;
            let key = format!("{}@{}->{to}", install.version, install.updated_at);
            if self
                .ran
                .get(&install.id)
                .is_some_and(|(known, step)| *known == key && step.still_ready())
            {
                continue;
            }
            let step = match host
                .run_upgrade_hook(&install.tenant_id, loaded, spec.clone())
                .await
            {
                Ok(ready) => HostStep::Upgrade(ready),
                Err(plinth_host::Error::NotInstalled { .. }) => HostStep::NotRunning,
                Err(error) if forced => fallback(host, install, to, &error).await,
                Err(error) => return Err(installs::host_error(error)),
            };
            self.ran.insert(install.id.clone(), (key, step));
        }
        Ok(())
    }

    /// What the host got ready for the move of install `id`.
    pub(crate) fn step(&self, id: &str) -> Option<&HostStep> {
        self.ran.get(id).map(|(_, step)| step)
    }
}

/// What a forced move does when the host refuses it: returns to the host's previous version
/// if that is `to`, or else disables the install.
async fn fallback(
    host: &Host,
    install: &Install,
    to: &str,
    error: &plinth_host::Error,
) -> HostStep {
    let (tenant, plugin) = (&install.tenant_id, &install.plugin_id);
    tracing::warn!(%tenant, %plugin, %error, "the host refused a forced move");
    let host_previous = host
        .installs(tenant)
        .into_iter()
        .find(|info| info.plugin == *plugin)
        .and_then(|info| info.previous_version);
    if host_previous.as_deref() == Some(to) {
        match host.run_rollback_hook(tenant, plugin).await {
            Ok(ready) => return HostStep::RollBack(ready),
            Err(error) => {
                tracing::warn!(%tenant, %plugin, %error, "the host cannot return to its previous version");
            }
        }
    }
    HostStep::Refused(format!("the host refused the move: {error}"))
}
