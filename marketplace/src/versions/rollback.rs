//! Rollbacks: a tenant's to its install's previous version, an operator's of every install on
//! a newer version, and the host's automatic ones (recorded and notified here).
//!
//! A rollback returns to a version with the grant and configuration the install had there; it
//! leaves the install without a previous version (rolling back twice does not go forward
//! again). A yanked version is never rolled back to.
//!
//! An operator rollback to a version that asks for a permission an install was not granted
//! disables that install instead (it cannot run without the tenant's consent); so does a host
//! that refuses the move.

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use super::hooks::Hooks;
use super::installable::{self, Move};
use super::moves::{self, Choice, Loader, Outcome, Previous, Target};
use super::{VersionRow, find_version, lock_plugin, plugin_row, version_rows};
use crate::audit::Actor;
use crate::auth::{Operator, Principal};
use crate::clock::now_ms;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::installs::{self, Install};
use crate::notifications::notify;
use crate::state::AppState;
use crate::tenants::{self, Tenant, TenantRole};

fn nothing_to_roll_back(plugin_id: &str) -> Error {
    Error::conflict(
        "nothing_to_roll_back",
        format!("the install of {plugin_id} has no previous version to roll back to"),
    )
}

/// Returns the install of `plugin_id` of tenant `slug` to its previous version, as
/// `principal` (a tenant admin).
///
/// # Errors
///
/// As [`tenants::access`] (admin); 404 for an unknown install; 409 `nothing_to_roll_back` without a previous version, 409
/// `version_yanked` if it was yanked since; the host's refusal.
pub async fn tenant_rollback(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    plugin_id: &str,
) -> Result<Install> {
    let tenant = &tenants::access(state.db(), principal, slug, TenantRole::Admin).await?;
    let runtime = state.runtime()?;
    // The hook runs with no transaction open; the transaction checks everything again and
    // refuses with `install_changed` if the install changed meanwhile.
    let first = {
        let mut tx = state.db().begin_read().await?;
        rollback_choice(&mut tx, tenant, plugin_id).await?
    };
    let mut loader = Loader::default();
    let planned = moves::plan(state, &mut loader, first, None).await?;
    let mut hooks = Hooks::default();
    hooks
        .run(&runtime.host, std::slice::from_ref(&planned), false)
        .await?;

    let mut tx = state.db().begin().await?;
    lock_plugin(&mut tx, plugin_id).await?;
    let choice = rollback_choice(&mut tx, tenant, plugin_id).await?;
    moves::check_unchanged(
        std::slice::from_ref(&planned),
        std::slice::from_ref(&choice),
    )?;
    let moves = moves::stage(&mut tx, &runtime.host, vec![planned], &hooks).await?;
    let from = &choice.install.version;
    let to = match &choice.target {
        Target::Version { to, .. } => to.version.as_str(),
        Target::Disable(_) => return Err(Error::Internal("a rollback that disables".into())),
    };
    let details = json!({"from": from, "to": to, "by": "tenant"});
    installs::audit(
        &mut tx,
        principal,
        "install.rolled_back",
        &tenant.id,
        plugin_id,
        details.clone(),
    )
    .await?;
    notify(
        &mut tx,
        "tenant",
        &tenant.id,
        "install_rolled_back",
        &format!("{plugin_id} was rolled back from {from} to {to}."),
        with_plugin(details, plugin_id),
    )
    .await?;
    let mut staged = moves.commit(tx).await?;
    tracing::info!(tenant = %tenant.slug, plugin = plugin_id, from = %from, to = %to, "rolled back");
    let Some(step) = staged.pop() else {
        return Err(Error::Internal("no staged rollback".into()));
    };
    Ok(step.install)
}

/// The tenant's install of `plugin_id` and its return to its previous version, if `tx` reads
/// that it has one that is not yanked.
async fn rollback_choice(tx: &mut Tx, tenant: &Tenant, plugin_id: &str) -> Result<Choice> {
    let install = installs::find(tx, &tenant.id, plugin_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("install of {plugin_id}")))?;
    let previous = install
        .previous_version
        .clone()
        .ok_or_else(|| nothing_to_roll_back(plugin_id))?;
    let rows = version_rows(tx, plugin_id).await?;
    let to = find_version(&rows, plugin_id, &previous)?;
    installable::refuse_yanked(plugin_id, to, Move::Rollback)?;
    Ok(Choice::move_to(&install, to, Previous::Clear))
}

fn with_plugin(mut details: Value, plugin_id: &str) -> Value {
    details["plugin"] = Value::String(plugin_id.to_owned());
    details
}

/// What an operator rollback did.
#[derive(Debug, Clone)]
pub struct OperatorRollback {
    /// The version installs were moved to.
    pub to_version: String,
    /// Per install: `{tenant, from, to, status, reason?}`.
    pub installs: Vec<Value>,
}

/// Moves every install of `plugin_id` on a version newer than `to_version` to it (an
/// operator's call), in one transaction.
///
/// # Errors
///
/// 404 for an unknown plugin or version; 409 `version_yanked` for a yanked target; 400 for an
/// empty or overlong reason.
pub async fn operator_rollback(
    state: &AppState,
    operator: Operator<'_>,
    plugin_id: &str,
    to_version: &str,
    reason: Option<&str>,
) -> Result<OperatorRollback> {
    let reason = match reason {
        Some(reason) => super::check_text("reason", Some(reason))?,
        None => "no reason given".to_owned(),
    };
    let mut loader = Loader::default();
    let mut hooks = Hooks::default();
    let mut attempt = 1;
    loop {
        let rollback = OperatorRollbackOnce {
            state,
            operator,
            plugin_id,
            to_version,
            reason: &reason,
        };
        match rollback.run(&mut loader, &mut hooks).await {
            Err(error) if moves::retry(&error, attempt) => attempt += 1,
            done => return done,
        }
    }
}

/// One attempt at an operator rollback: hooks first, then one transaction.
struct OperatorRollbackOnce<'a> {
    state: &'a AppState,
    operator: Operator<'a>,
    plugin_id: &'a str,
    to_version: &'a str,
    reason: &'a str,
}

impl OperatorRollbackOnce<'_> {
    async fn run(&self, loader: &mut Loader, hooks: &mut Hooks) -> Result<OperatorRollback> {
        let (state, plugin_id, reason) = (self.state, self.plugin_id, self.reason);
        let runtime = state.runtime()?;
        let first = {
            let mut tx = state.db().begin_read().await?;
            plugin_row(&mut tx, plugin_id).await?;
            self.choices(&mut tx).await?.1
        };
        let mut planned = Vec::with_capacity(first.len());
        for choice in first {
            planned.push(moves::plan_forced(state, loader, choice).await);
        }
        hooks.run(&runtime.host, &planned, true).await?;

        let mut tx = state.db().begin().await?;
        if !lock_plugin(&mut tx, plugin_id).await? {
            return Err(Error::not_found(format!("plugin {plugin_id:?}")));
        }
        let plugin = plugin_row(&mut tx, plugin_id).await?;
        let (to, choices) = self.choices(&mut tx).await?;
        moves::check_unchanged(&planned, &choices)?;
        let moves = moves::stage(&mut tx, &runtime.host, planned, hooks).await?;
        let actor = Actor::User(self.operator.id.clone());
        let mut summaries = Vec::new();
        for step in moves.steps() {
            let mut details = step.summary();
            details["by"] = Value::String("operator".into());
            details["reason"] = Value::String(reason.to_owned());
            installs::audit(
                &mut tx,
                &actor,
                step.audit_action(),
                &step.install.tenant_id,
                plugin_id,
                details.clone(),
            )
            .await?;
            notify(
                &mut tx,
                "tenant",
                &step.install.tenant_id,
                "install_rolled_back",
                &match &step.outcome {
                    Outcome::Moved => format!(
                        "An operator rolled {plugin_id} back from {} to {}: {reason}",
                        step.from, step.install.version
                    ),
                    Outcome::Disabled(why) => format!(
                        "An operator rolled {plugin_id} back to {}; your install was disabled because {why}. Reason: {reason}",
                        to.version
                    ),
                },
                with_plugin(details, plugin_id),
            )
            .await?;
            let mut summary = step.summary();
            summary["tenant"] = Value::String(tenant_slug(&mut tx, &step.install.tenant_id).await?);
            summaries.push(summary);
        }
        let details = json!({"to": to.version, "reason": reason, "installs": summaries});
        crate::audit::record(
            &mut tx,
            crate::audit::Entry {
                actor: actor.clone(),
                action: "plugin.rolled_back",
                tenant_id: None,
                subject: format!("plugin:{plugin_id}"),
                details: details.clone(),
            },
        )
        .await?;
        notify(
            &mut tx,
            "publisher",
            &plugin.publisher_id,
            "plugin_rolled_back",
            &format!(
                "An operator rolled {plugin_id} back to {} for {} install(s): {reason}",
                to.version,
                moves.steps().len()
            ),
            with_plugin(details, plugin_id),
        )
        .await?;
        let staged = moves.commit(tx).await?;
        tracing::info!(plugin = plugin_id, to = %to.version, installs = staged.len(), "operator rollback");
        Ok(OperatorRollback {
            to_version: to.version.clone(),
            installs: summaries,
        })
    }

    /// The version rolled back to and, for every install on a newer one, the move there (or
    /// its disabling when the version asks for permissions it was not granted), as `tx`
    /// reads them.
    async fn choices(&self, tx: &mut Tx) -> Result<(VersionRow, Vec<Choice>)> {
        let plugin_id = self.plugin_id;
        let rows = version_rows(tx, plugin_id).await?;
        let to = find_version(&rows, plugin_id, self.to_version)?.clone();
        installable::refuse_yanked(plugin_id, &to, Move::Rollback)?;
        let mut choices = Vec::new();
        for install in moves::installs_of(tx, plugin_id, None).await? {
            let Ok(from) = find_version(&rows, plugin_id, &install.version) else {
                continue;
            };
            if from.semver <= to.semver {
                continue;
            }
            choices.push(
                if to
                    .manifest
                    .permissions
                    .is_subset_of(&from.manifest.permissions)
                {
                    Choice::move_to(&install, &to, Previous::Clear)
                } else {
                    Choice::disable(
                        &install,
                        format!(
                            "{} asks for permissions the install was not granted",
                            to.version
                        ),
                    )
                },
            );
        }
        Ok((to, choices))
    }
}

/// The slug of tenant `id`.
pub(crate) async fn tenant_slug(tx: &mut crate::db::Tx, id: &str) -> Result<String> {
    Ok(sqlx::query_scalar("SELECT slug FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await?)
}

/// Records the host's automatic rollbacks as they happen: the install's version goes back in
/// storage (with the grant and configuration it had there), the rollback is audited as the
/// system's, and tenant and publisher are notified. Returns `None` without a host; abort the
/// handle to stop.
pub fn spawn_auto_rollback_recorder(state: AppState) -> Option<JoinHandle<()>> {
    let mut events = state.runtime().ok()?.host.subscribe();
    Some(tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(plinth_host::HostEvent::AutoRolledBack {
                    tenant,
                    plugin,
                    from,
                    to,
                    failures,
                    calls,
                }) => {
                    let rollback = AutoRollback {
                        tenant_id: &tenant,
                        plugin_id: &plugin,
                        from: &from,
                        to: &to,
                        failures,
                        calls,
                    };
                    if let Err(error) = record_auto_rollback(&state, &rollback).await {
                        tracing::error!(%tenant, %plugin, %error, "cannot record an automatic rollback");
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::error!(
                        missed,
                        "host events were missed; automatic rollbacks may be unrecorded"
                    );
                }
                Err(RecvError::Closed) => break,
            }
        }
    }))
}

/// An automatic rollback the host reported.
#[derive(Debug, Clone, Copy)]
pub struct AutoRollback<'a> {
    /// The tenant's id.
    pub tenant_id: &'a str,
    /// The plugin id.
    pub plugin_id: &'a str,
    /// The version that failed.
    pub from: &'a str,
    /// The version running now.
    pub to: &'a str,
    /// Failures seen during the rollout.
    pub failures: u32,
    /// Calls seen during the rollout.
    pub calls: u32,
}

/// Records one automatic rollback (see [`spawn_auto_rollback_recorder`]).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn record_auto_rollback(state: &AppState, rollback: &AutoRollback<'_>) -> Result<()> {
    let AutoRollback {
        tenant_id,
        plugin_id,
        from,
        to,
        failures,
        calls,
    } = *rollback;
    let mut tx = state.db().begin().await?;
    lock_plugin(&mut tx, plugin_id).await?;
    let Some(install) = installs::find(&mut tx, tenant_id, plugin_id).await? else {
        return Ok(());
    };
    if install.version == from && install.previous_version.as_deref() == Some(to) {
        sqlx::query(
            "UPDATE installs SET version = previous_version, \
             permissions_digest = previous_permissions_digest, config = previous_config, \
             previous_version = NULL, previous_permissions_digest = NULL, previous_config = NULL, \
             updated_at = $1 WHERE id = $2 AND version = $3",
        )
        .bind(now_ms())
        .bind(&install.id)
        .bind(from)
        .execute(&mut *tx)
        .await?;
    } else {
        tracing::warn!(
            tenant = tenant_id, plugin = plugin_id, from, to, stored = %install.version,
            "the host rolled back an install whose stored versions differ; storage left as is"
        );
    }
    let plugin = plugin_row(&mut tx, plugin_id).await?;
    let details = json!({
        "from": from, "to": to, "automatic": true, "failures": failures, "calls": calls,
    });
    installs::audit(
        &mut tx,
        Actor::System,
        "install.rolled_back",
        tenant_id,
        plugin_id,
        details.clone(),
    )
    .await?;
    let message = format!(
        "{plugin_id} {from} failed {failures} of {calls} calls after the update and was rolled back to {to} automatically."
    );
    let payload = with_plugin(details, plugin_id);
    notify(
        &mut tx,
        "tenant",
        tenant_id,
        "install_rolled_back",
        &message,
        payload.clone(),
    )
    .await?;
    notify(
        &mut tx,
        "publisher",
        &plugin.publisher_id,
        "install_rolled_back",
        &message,
        payload,
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(
        tenant = tenant_id,
        plugin = plugin_id,
        from,
        to,
        "automatic rollback recorded"
    );
    // The breaker's verdict on one updated install pauses a staged rollout of that version.
    let why = format!(
        "an updated install was rolled back by its breaker ({failures} of {calls} calls failed after the update)"
    );
    super::rollout::pause_after_rollback(state.db(), plugin_id, from, &why).await?;
    Ok(())
}
