//! Moving installs between versions: staged in storage inside the caller's transaction, then
//! applied to the host before the commit, and undone in the host if the commit fails.

use std::collections::HashMap;
use std::sync::Arc;

use plinth_host::{InstallSpec, LoadedPlugin};
use serde_json::{Map, Value};

use super::VersionRow;
use crate::clock::now_ms;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::installs::{self, Install, config};
use crate::state::{AppState, Runtime};

/// Loaded plugin versions, each loaded once per operation.
#[derive(Default)]
pub(crate) struct Loader {
    loaded: HashMap<String, Arc<LoadedPlugin>>,
}

impl Loader {
    /// `plugin_id` `version`, loaded into the host (or from what this loader loaded before).
    pub(crate) async fn get(
        &mut self,
        state: &AppState,
        plugin_id: &str,
        version: &str,
    ) -> Result<Arc<LoadedPlugin>> {
        if let Some(loaded) = self.loaded.get(version) {
            return Ok(Arc::clone(loaded));
        }
        let (_, loaded) = installs::load(state, plugin_id, version).await?;
        self.loaded.insert(version.to_owned(), Arc::clone(&loaded));
        Ok(loaded)
    }
}

/// What becomes of the version an install leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Previous {
    /// It becomes the install's previous version (an update: a rollback may return to it).
    Keep,
    /// The install has no previous version afterwards (a rollback, or leaving a yanked
    /// version: nothing to return to).
    Clear,
}

/// What happened to an install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It runs another version now.
    Moved,
    /// It was disabled, for this reason.
    Disabled(String),
}

enum HostStep {
    Upgrade {
        loaded: Arc<LoadedPlugin>,
        spec: Box<InstallSpec>,
    },
    Disable,
}

/// What the host did, to undo it if the commit fails.
enum Applied {
    Nothing,
    Upgraded,
    RolledBack,
    Disabled { was_enabled: bool },
}

/// A move written to storage, to apply to the host.
pub(crate) struct Staged {
    /// The install as it is stored now.
    pub(crate) install: Install,
    /// The version it left (or is disabled on).
    pub(crate) from: String,
    /// What happened to it.
    pub(crate) outcome: Outcome,
    /// The install as it was before.
    before: Install,
    host: HostStep,
    applied: Applied,
}

impl Staged {
    /// The version the install runs now (`None` when disabled).
    pub(crate) fn to(&self) -> Option<&str> {
        match self.outcome {
            Outcome::Moved => Some(&self.install.version),
            Outcome::Disabled(_) => None,
        }
    }

    /// The audit action of a forced move: `install.rolled_back` or `install.disabled`.
    pub(crate) fn audit_action(&self) -> &'static str {
        match self.outcome {
            Outcome::Moved => "install.rolled_back",
            Outcome::Disabled(_) => "install.disabled",
        }
    }

    /// `{from, to, status, reason?}` for audit details and API answers.
    pub(crate) fn summary(&self) -> Value {
        match &self.outcome {
            Outcome::Moved => serde_json::json!({
                "from": self.from, "to": self.install.version, "status": "moved",
            }),
            Outcome::Disabled(reason) => serde_json::json!({
                "from": self.from, "to": null, "status": "disabled", "reason": reason,
            }),
        }
    }
}

/// The install with id `id`, read in `tx`.
pub(crate) async fn find_by_id(tx: &mut Tx, id: &str) -> Result<Option<Install>> {
    let sql = format!("SELECT {} FROM installs WHERE id = $1", installs::COLUMNS);
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(installs::from_row).transpose()
}

/// Every install of `plugin_id` (on `version` if given) of a live tenant, read in `tx`.
pub(crate) async fn installs_of(
    tx: &mut Tx,
    plugin_id: &str,
    version: Option<&str>,
) -> Result<Vec<Install>> {
    let columns = installs::COLUMNS
        .split(", ")
        .map(|c| format!("i.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {columns} FROM installs i JOIN tenants t ON t.id = i.tenant_id \
         WHERE i.plugin_id = $1 AND ($2 IS NULL OR i.version = $2) AND t.deleted_at IS NULL \
         ORDER BY i.tenant_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(plugin_id)
        .bind(version)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(installs::from_row).collect()
}

/// Moves `install` to `to` in storage: its grant becomes `to`'s permission set, its
/// configuration is carried over (the stored previous one when returning to the previous
/// version; otherwise the current values of keys `to` declares, with `to`'s defaults), merged
/// with `config_input` if given.
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_config`) if the configuration does not fit `to`;
/// [`Error::Conflict`] (`install_changed`) if the install changed meanwhile; loading errors.
pub(crate) async fn stage_move(
    tx: &mut Tx,
    state: &AppState,
    loader: &mut Loader,
    install: &Install,
    to: &VersionRow,
    previous: Previous,
    config_input: Option<&Map<String, Value>>,
) -> Result<Staged> {
    let runtime = state.runtime()?;
    let returning = install.previous_version.as_deref() == Some(to.version.as_str());
    let (stored, values) = match (&install.previous_config, returning, config_input) {
        (Some(previous_config), true, None) => {
            let values = config::open(previous_config, &runtime.secrets, &install.id)?;
            (previous_config.clone(), values)
        }
        _ => {
            let mut current = config::open(&install.config, &runtime.secrets, &install.id)?;
            current.retain(|key, _| to.manifest.config.contains_key(key));
            let values =
                config::check(&to.manifest, config_input.unwrap_or(&Map::new()), &current)?;
            let stored = config::seal(&to.manifest, &values, &runtime.secrets, &install.id)?;
            (stored, values)
        }
    };
    let plan_name: String = sqlx::query_scalar("SELECT plan FROM tenants WHERE id = $1")
        .bind(&install.tenant_id)
        .fetch_one(&mut **tx)
        .await?;
    let plan = crate::tenants::plan(state.db(), &plan_name).await?;
    let loaded = loader.get(state, &install.plugin_id, &to.version).await?;
    let spec = installs::spec_for(&plan, loaded.manifest(), values);

    let (previous_version, previous_digest, previous_config) = match previous {
        Previous::Keep => (
            Some(install.version.clone()),
            Some(install.permissions_digest.clone()),
            Some(install.config.clone()),
        ),
        Previous::Clear => (None, None, None),
    };
    let now = now_ms();
    let updated = sqlx::query(
        "UPDATE installs SET version = $1, permissions_digest = $2, config = $3, \
         previous_version = $4, previous_permissions_digest = $5, previous_config = $6, \
         updated_at = $7 WHERE id = $8 AND version = $9",
    )
    .bind(&to.version)
    .bind(&to.permissions_digest)
    .bind(&stored)
    .bind(previous_version.as_deref())
    .bind(previous_digest.as_deref())
    .bind(previous_config.as_deref())
    .bind(now)
    .bind(&install.id)
    .bind(&install.version)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(install_changed(install));
    }
    let moved = Install {
        version: to.version.clone(),
        permissions_digest: to.permissions_digest.clone(),
        config: stored,
        previous_version,
        previous_permissions_digest: previous_digest,
        previous_config,
        updated_at: now,
        ..install.clone()
    };
    Ok(Staged {
        install: moved,
        from: install.version.clone(),
        outcome: Outcome::Moved,
        before: install.clone(),
        host: HostStep::Upgrade {
            loaded,
            spec: Box::new(spec),
        },
        applied: Applied::Nothing,
    })
}

/// Disables `install` in storage (it stays on its version, which it must not run); it has no
/// previous version afterwards.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Conflict`] (`install_changed`) if it changed meanwhile.
pub(crate) async fn stage_disable(
    tx: &mut Tx,
    install: &Install,
    reason: String,
) -> Result<Staged> {
    let now = now_ms();
    let updated = sqlx::query(
        "UPDATE installs SET enabled = 0, previous_version = NULL, \
         previous_permissions_digest = NULL, previous_config = NULL, updated_at = $1 \
         WHERE id = $2 AND version = $3",
    )
    .bind(now)
    .bind(&install.id)
    .bind(&install.version)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(install_changed(install));
    }
    Ok(Staged {
        install: Install {
            enabled: false,
            previous_version: None,
            previous_permissions_digest: None,
            previous_config: None,
            updated_at: now,
            ..install.clone()
        },
        from: install.version.clone(),
        outcome: Outcome::Disabled(reason),
        before: install.clone(),
        host: HostStep::Disable,
        applied: Applied::Nothing,
    })
}

fn install_changed(install: &Install) -> Error {
    Error::conflict(
        "install_changed",
        format!(
            "the install of {} changed while this ran; try again",
            install.plugin_id
        ),
    )
}

/// Applies staged moves to the host. A move whose host upgrade fails: when `forced` (a
/// security yank or an operator rollback: the install must leave its version), the install
/// returns to its host-side previous version if that is the target, or else is disabled in
/// the host and in storage; otherwise the error is returned (the caller's transaction is then
/// dropped, and moves applied so far are undone by the caller with [`undo`]).
///
/// An install the host does not run (its restore failed at start) is only changed in storage.
///
/// # Errors
///
/// The host's refusal of a move when not `forced`; [`Error::Database`].
pub(crate) async fn apply(
    tx: &mut Tx,
    runtime: &Runtime,
    staged: &mut [Staged],
    forced: bool,
) -> Result<()> {
    for step in staged.iter_mut() {
        let tenant = step.install.tenant_id.clone();
        let plugin = step.install.plugin_id.clone();
        match &step.host {
            HostStep::Disable => match runtime.host.set_enabled(&tenant, &plugin, false) {
                Ok(()) => {
                    step.applied = Applied::Disabled {
                        was_enabled: step.before.enabled,
                    }
                }
                Err(plinth_host::Error::NotInstalled { .. }) => {}
                Err(e) => return Err(installs::host_error(e)),
            },
            HostStep::Upgrade { loaded, spec } => {
                match runtime
                    .host
                    .upgrade(&tenant, loaded, (**spec).clone())
                    .await
                {
                    Ok(_) => step.applied = Applied::Upgraded,
                    Err(plinth_host::Error::NotInstalled { .. }) => {}
                    Err(error) if forced => {
                        tracing::warn!(%tenant, %plugin, %error, "the host refused a forced move");
                        let host_previous = runtime
                            .host
                            .installs(&tenant)
                            .into_iter()
                            .find(|info| info.plugin == plugin)
                            .and_then(|info| info.previous_version);
                        if host_previous.as_deref() == Some(step.install.version.as_str())
                            && runtime.host.rollback(&tenant, &plugin).await.is_ok()
                        {
                            step.applied = Applied::RolledBack;
                            continue;
                        }
                        // The host still holds the version the install was on: storage says so
                        // too, disabled.
                        let reason = format!("the host refused the move: {error}");
                        if let Err(e) = runtime.host.set_enabled(&tenant, &plugin, false) {
                            tracing::error!(%tenant, %plugin, error = %e, "cannot disable an install");
                        }
                        sqlx::query(
                            "UPDATE installs SET enabled = 0, version = $1, permissions_digest = $2, \
                             config = $3, previous_version = NULL, \
                             previous_permissions_digest = NULL, previous_config = NULL \
                             WHERE id = $4",
                        )
                        .bind(&step.before.version)
                        .bind(&step.before.permissions_digest)
                        .bind(&step.before.config)
                        .bind(&step.install.id)
                        .execute(&mut **tx)
                        .await?;
                        step.install = Install {
                            enabled: false,
                            previous_version: None,
                            previous_permissions_digest: None,
                            previous_config: None,
                            ..step.before.clone()
                        };
                        step.outcome = Outcome::Disabled(reason);
                        step.applied = Applied::Disabled {
                            was_enabled: step.before.enabled,
                        };
                    }
                    Err(error) => return Err(installs::host_error(error)),
                }
            }
        }
    }
    Ok(())
}

/// Undoes in the host what [`apply`] did, after the transaction failed to commit (best
/// effort: what cannot be undone is logged; the next start restores from storage).
pub(crate) async fn undo(runtime: &Runtime, staged: &[Staged]) {
    for step in staged {
        let tenant = &step.install.tenant_id;
        let plugin = &step.install.plugin_id;
        let result = match step.applied {
            Applied::Nothing => Ok(()),
            Applied::Upgraded => runtime.host.rollback(tenant, plugin).await.map(|_| ()),
            Applied::Disabled { was_enabled } => {
                runtime.host.set_enabled(tenant, plugin, was_enabled)
            }
            Applied::RolledBack => {
                tracing::error!(%tenant, %plugin, "cannot undo a host rollback after a failed commit");
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::error!(%tenant, %plugin, %error, "cannot undo a host change after a failed commit");
        }
    }
}

/// Commits `tx`; if that fails, undoes `staged` in the host.
pub(crate) async fn commit(tx: Tx, runtime: Option<&Runtime>, staged: &[Staged]) -> Result<()> {
    if let Err(e) = tx.commit().await {
        if let Some(runtime) = runtime {
            undo(runtime, staged).await;
        }
        return Err(e.into());
    }
    Ok(())
}
