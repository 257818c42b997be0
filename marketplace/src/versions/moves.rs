//! Moving installs between versions, in three steps so that no plugin code runs while a
//! transaction is open:
//!
//! 1. an operation reads which installs go where ([`Choice`]s) and works each move out
//!    ([`plan`]: configuration, grant, loaded version) with no transaction held;
//! 2. the moves' `on-upgrade` hooks run in the host ([`Hooks::run`](super::hooks::Hooks::run)),
//!    still with no transaction held;
//! 3. in one write transaction the operation reads its choices again, refuses with
//!    `install_changed` if they are not what it planned from ([`check_unchanged`]), writes
//!    them to storage behind guards on the install's version, configuration and last change
//!    ([`stage`]), then applies them to the host without running plugin code, and commits
//!    ([`Moves::commit`]). Host changes are undone if the transaction does not commit.
//!
//! A hook that ran for a move that is then refused or not committed is not undone: what it
//! did itself (kv writes, outbound requests) stays done.

use std::collections::HashMap;
use std::sync::Arc;

use plinth_host::{Host, InstallSpec, LoadedPlugin, Swapped};
use serde_json::{Map, Value};

use super::VersionRow;
use super::hooks::{Hooks, HostStep};
use crate::clock::now_ms;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::installs::{self, Install, config};
use crate::state::AppState;

/// How many times an operation that must go through (a forced move, an automatic update) is
/// tried when installs change between its hooks and its transaction.
const ATTEMPTS: u32 = 5;

/// Whether `attempt` failed only because installs changed under it and another may be made.
pub(crate) fn retry(error: &Error, attempt: u32) -> bool {
    let retry = error.code() == "install_changed" && attempt < ATTEMPTS;
    if retry {
        tracing::info!(
            attempt,
            "installs changed while their hooks ran; trying again"
        );
    }
    retry
}

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

/// Where an operation sends an install.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// To version `to`; `previous` says what becomes of the version it leaves.
    Version {
        to: Box<VersionRow>,
        previous: Previous,
    },
    /// Disabled on its version (which it must not run), for this reason.
    Disable(String),
}

/// An install, as read, and where an operation sends it.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub(crate) install: Install,
    pub(crate) target: Target,
}

impl Choice {
    /// `install` goes to `to`.
    pub(crate) fn move_to(install: &Install, to: &VersionRow, previous: Previous) -> Choice {
        Choice {
            install: install.clone(),
            target: Target::Version {
                to: Box::new(to.clone()),
                previous,
            },
        }
    }

    /// `install` is disabled for `reason`.
    pub(crate) fn disable(install: &Install, reason: String) -> Choice {
        Choice {
            install: install.clone(),
            target: Target::Disable(reason),
        }
    }

    /// Whether `other` is the same choice about the same install in the same state.
    fn same_as(&self, other: &Choice) -> bool {
        let (a, b) = (&self.install, &other.install);
        let same_install = a.id == b.id
            && a.version == b.version
            && a.permissions_digest == b.permissions_digest
            && a.config == b.config
            && a.enabled == b.enabled
            && a.previous_version == b.previous_version
            && a.updated_at == b.updated_at;
        let same_target = match (&self.target, &other.target) {
            (
                Target::Version { to, previous },
                Target::Version {
                    to: other_to,
                    previous: other_previous,
                },
            ) => {
                to.version == other_to.version
                    && to.permissions_digest == other_to.permissions_digest
                    && previous == other_previous
            }
            (Target::Disable(reason), Target::Disable(other_reason)) => reason == other_reason,
            _ => false,
        };
        same_install && same_target
    }
}

/// A [`Choice`] worked out, before anything is written.
pub(crate) struct Planned {
    /// What was chosen, from what was read.
    pub(crate) choice: Choice,
    step: Step,
}

enum Step {
    /// Move: the configuration to store (secrets sealed), and what the host runs.
    Move {
        stored: String,
        loaded: Arc<LoadedPlugin>,
        spec: Box<InstallSpec>,
    },
    /// Disable, for this reason.
    Disable(String),
}

impl Planned {
    /// The version the install moves to and what the host runs it with, if it moves.
    pub(crate) fn upgrade(&self) -> Option<(&str, &Arc<LoadedPlugin>, &InstallSpec)> {
        match (&self.step, &self.choice.target) {
            (Step::Move { loaded, spec, .. }, Target::Version { to, .. }) => {
                Some((to.version.as_str(), loaded, spec))
            }
            _ => None,
        }
    }
}

/// Works `choice` out: a move's grant becomes `to`'s permission set and its configuration is
/// carried over (the stored previous one when returning to the previous version; otherwise
/// the current values of keys `to` declares, with `to`'s defaults), merged with
/// `config_input` if given. Nothing is written.
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_config`) if the configuration does not fit `to`; loading
/// errors; [`Error::Database`].
pub(crate) async fn plan(
    state: &AppState,
    loader: &mut Loader,
    choice: Choice,
    config_input: Option<&Map<String, Value>>,
) -> Result<Planned> {
    let install = &choice.install;
    let to = match &choice.target {
        Target::Version { to, .. } => to,
        Target::Disable(reason) => {
            let step = Step::Disable(reason.clone());
            return Ok(Planned { choice, step });
        }
    };
    let runtime = state.runtime()?;
    let returning = install.previous_version.as_deref() == Some(to.version.as_str());
    // What the install holds sealed now stays sealed, on whichever version it moves to.
    let mut sealed = config::sealed_keys(&install.config);
    let (stored, values) = match (&install.previous_config, returning, config_input) {
        (Some(previous_config), true, None) => {
            let values = config::open(previous_config, &runtime.secrets, &install.id)?;
            let kept = config::sealed_keys(previous_config);
            let stored = if sealed
                .iter()
                .all(|key| kept.contains(key) || !values.contains_key(key))
            {
                previous_config.clone()
            } else {
                sealed.extend(kept);
                config::seal(
                    &to.manifest,
                    &values,
                    &runtime.secrets,
                    &install.id,
                    &sealed,
                )?
            };
            (stored, values)
        }
        _ => {
            let mut current = config::open(&install.config, &runtime.secrets, &install.id)?;
            current.retain(|key, _| to.manifest.config.contains_key(key));
            let values =
                config::check(&to.manifest, config_input.unwrap_or(&Map::new()), &current)?;
            let stored = config::seal(
                &to.manifest,
                &values,
                &runtime.secrets,
                &install.id,
                &sealed,
            )?;
            (stored, values)
        }
    };
    let plan_name: String = sqlx::query_scalar("SELECT plan FROM tenants WHERE id = $1")
        .bind(&install.tenant_id)
        .fetch_one(state.db().pool())
        .await?;
    let plan = crate::tenants::plan(state.db(), &plan_name).await?;
    let loaded = loader.get(state, &install.plugin_id, &to.version).await?;
    let spec = installs::spec_for(&plan, loaded.manifest(), values, install.capture_runs);
    let step = Step::Move {
        stored,
        loaded,
        spec: Box::new(spec),
    };
    Ok(Planned { choice, step })
}

/// [`plan`] for a move the install cannot refuse (a security yank, an operator rollback): one
/// that cannot be worked out disables the install instead.
pub(crate) async fn plan_forced(state: &AppState, loader: &mut Loader, choice: Choice) -> Planned {
    let to = match &choice.target {
        Target::Version { to, .. } => to.version.clone(),
        Target::Disable(reason) => {
            let step = Step::Disable(reason.clone());
            return Planned { choice, step };
        }
    };
    match plan(state, loader, choice.clone(), None).await {
        Ok(planned) => planned,
        Err(error) => Planned {
            choice,
            step: Step::Disable(format!("it cannot move to {to}: {error}")),
        },
    }
}

/// Refuses with `install_changed` unless `now` (the choices read again inside the
/// transaction) are the choices `planned` was worked out from.
///
/// # Errors
///
/// [`Error::Conflict`] (`install_changed`).
pub(crate) fn check_unchanged(planned: &[Planned], now: &[Choice]) -> Result<()> {
    let by_id: HashMap<&str, &Choice> = now
        .iter()
        .map(|choice| (choice.install.id.as_str(), choice))
        .collect();
    let unchanged = planned.len() == now.len()
        && planned.iter().all(|planned| {
            by_id
                .get(planned.choice.install.id.as_str())
                .is_some_and(|choice| planned.choice.same_as(choice))
        });
    if unchanged {
        return Ok(());
    }
    let plugin = planned
        .first()
        .map(|planned| planned.choice.install.plugin_id.as_str())
        .or_else(|| now.first().map(|choice| choice.install.plugin_id.as_str()))
        .unwrap_or("the plugin");
    Err(Error::conflict(
        "install_changed",
        format!("the installs of {plugin} changed while this ran; try again"),
    ))
}

/// What the host did for a move, to undo it if the transaction does not commit.
enum Applied {
    Nothing,
    Swapped(Swapped),
    Disabled { was_enabled: bool },
}

/// A move written to storage and applied to the host.
pub(crate) struct Staged {
    /// The install as it is stored now.
    pub(crate) install: Install,
    /// The version it left (or is disabled on).
    pub(crate) from: String,
    /// What happened to it.
    pub(crate) outcome: Outcome,
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

/// Moves written in a transaction and applied to the host. Dropped without
/// [`Moves::commit`] (an error on the way, a failed commit), the host changes are undone
/// (no hook runs for that).
pub(crate) struct Moves {
    host: Option<Arc<Host>>,
    steps: Vec<Staged>,
    committed: bool,
}

impl Moves {
    /// No moves.
    pub(crate) fn none() -> Moves {
        Moves {
            host: None,
            steps: Vec::new(),
            committed: false,
        }
    }

    /// The moves, in the order staged.
    pub(crate) fn steps(&self) -> &[Staged] {
        &self.steps
    }

    /// Commits `tx`; returns the moves. If the commit fails, the host changes are undone.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub(crate) async fn commit(mut self, tx: Tx) -> Result<Vec<Staged>> {
        tx.commit().await?;
        self.committed = true;
        Ok(std::mem::take(&mut self.steps))
    }
}

impl Drop for Moves {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let Some(host) = &self.host else { return };
        for step in self.steps.iter().rev() {
            let tenant = &step.install.tenant_id;
            let plugin = &step.install.plugin_id;
            let undone = match &step.applied {
                Applied::Nothing => Ok(()),
                Applied::Swapped(swapped) => host.revert(swapped).map(|_| ()),
                Applied::Disabled { was_enabled } => host.set_enabled(tenant, plugin, *was_enabled),
            };
            if let Err(error) = undone {
                tracing::error!(%tenant, %plugin, %error, "cannot undo a host change of an uncommitted move");
            }
        }
    }
}

/// Writes `planned` to storage in `tx` and applies it to the host, running no plugin code:
/// each move's hook ran in `hooks`, which also says what the host got ready. A forced move
/// whose hook the host refused ([`HostStep::Refused`]) disables the install instead, in the
/// host and in storage, on the version it was on.
///
/// An install the host does not run (its restore failed at start) is only changed in storage.
///
/// # Errors
///
/// [`Error::Conflict`] (`install_changed`) if an install changed since it was read, in
/// storage or in the host; [`Error::Database`]. What was applied to the host so far is undone
/// then.
pub(crate) async fn stage(
    tx: &mut Tx,
    host: &Arc<Host>,
    planned: Vec<Planned>,
    hooks: &Hooks,
) -> Result<Moves> {
    let mut moves = Moves {
        host: Some(Arc::clone(host)),
        steps: Vec::with_capacity(planned.len()),
        committed: false,
    };
    for planned in planned {
        let step = stage_one(tx, host, planned, hooks).await?;
        moves.steps.push(step);
    }
    Ok(moves)
}

async fn stage_one(tx: &mut Tx, host: &Host, planned: Planned, hooks: &Hooks) -> Result<Staged> {
    let Planned { choice, step } = planned;
    let before = choice.install;
    let (stored, to, previous) = match (step, choice.target) {
        (Step::Disable(reason), _) => return disable(tx, host, before, reason).await,
        (Step::Move { stored, .. }, Target::Version { to, previous }) => (stored, to, previous),
        (Step::Move { .. }, Target::Disable(_)) => {
            return Err(Error::Internal("a planned move without a version".into()));
        }
    };
    let host_step = hooks.step(&before.id).ok_or_else(|| {
        Error::Internal(format!(
            "no hook ran for the move of {} to {}",
            before.plugin_id, to.version
        ))
    })?;
    if let HostStep::Refused(reason) = host_step {
        return disable(tx, host, before, reason.clone()).await;
    }
    let moved = write_move(tx, &before, &to, previous, stored).await?;
    let finished = match host_step {
        HostStep::Upgrade(ready) => host.finish_upgrade(ready).map(Applied::Swapped),
        HostStep::RollBack(ready) => host.finish_rollback(ready).map(Applied::Swapped),
        HostStep::NotRunning | HostStep::Refused(_) => Ok(Applied::Nothing),
    };
    let applied = match finished {
        Ok(applied) => applied,
        Err(plinth_host::Error::NotInstalled { .. }) => Applied::Nothing,
        // The host's install changed since the hook ran (an automatic rollback, say):
        // `install_changed`, which forced moves and automatic updates try again.
        Err(error) => return Err(installs::host_error(error)),
    };
    Ok(Staged {
        install: moved,
        from: before.version,
        outcome: Outcome::Moved,
        applied,
    })
}

/// Writes the move of `before` to `to` (guarded: nothing is written if the install changed
/// since it was read); returns the install as stored now.
async fn write_move(
    tx: &mut Tx,
    before: &Install,
    to: &VersionRow,
    previous: Previous,
    stored: String,
) -> Result<Install> {
    let (previous_version, previous_digest, previous_config) = match previous {
        Previous::Keep => (
            Some(before.version.clone()),
            Some(before.permissions_digest.clone()),
            Some(before.config.clone()),
        ),
        Previous::Clear => (None, None, None),
    };
    let now = now_ms();
    let updated = sqlx::query(
        "UPDATE installs SET version = $1, permissions_digest = $2, config = $3, \
         previous_version = $4, previous_permissions_digest = $5, previous_config = $6, \
         updated_at = $7 WHERE id = $8 AND version = $9 AND config = $10 AND updated_at = $11",
    )
    .bind(&to.version)
    .bind(&to.permissions_digest)
    .bind(&stored)
    .bind(previous_version.as_deref())
    .bind(previous_digest.as_deref())
    .bind(previous_config.as_deref())
    .bind(now)
    .bind(&before.id)
    .bind(&before.version)
    .bind(&before.config)
    .bind(before.updated_at)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(install_changed(before));
    }
    Ok(Install {
        version: to.version.clone(),
        permissions_digest: to.permissions_digest.clone(),
        config: stored,
        previous_version,
        previous_permissions_digest: previous_digest,
        previous_config,
        updated_at: now,
        ..before.clone()
    })
}

/// Disables `before` in storage (guarded like [`write_move`]; it stays on its version and has
/// no previous version afterwards) and in the host.
async fn disable(tx: &mut Tx, host: &Host, before: Install, reason: String) -> Result<Staged> {
    let now = now_ms();
    let updated = sqlx::query(
        "UPDATE installs SET enabled = 0, previous_version = NULL, \
         previous_permissions_digest = NULL, previous_config = NULL, updated_at = $1 \
         WHERE id = $2 AND version = $3 AND config = $4 AND updated_at = $5",
    )
    .bind(now)
    .bind(&before.id)
    .bind(&before.version)
    .bind(&before.config)
    .bind(before.updated_at)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(install_changed(&before));
    }
    disable_in_host(host, before, reason, now)
}

/// Disables `before` in the host (if it runs there); the staged result of a disabled install.
fn disable_in_host(host: &Host, before: Install, reason: String, now: i64) -> Result<Staged> {
    let applied = match host.set_enabled(&before.tenant_id, &before.plugin_id, false) {
        Ok(()) => Applied::Disabled {
            was_enabled: before.enabled,
        },
        Err(plinth_host::Error::NotInstalled { .. }) => Applied::Nothing,
        Err(error) => return Err(installs::host_error(error)),
    };
    Ok(Staged {
        from: before.version.clone(),
        install: Install {
            enabled: false,
            previous_version: None,
            previous_permissions_digest: None,
            previous_config: None,
            updated_at: now,
            ..before
        },
        outcome: Outcome::Disabled(reason),
        applied,
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
