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

use super::moves::{self, Loader, Outcome, Previous, Staged};
use super::{find_version, lock_plugin, plugin_row, version_rows};
use crate::audit::Actor;
use crate::auth::{Principal, UserCaller};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::installs::{self, Install};
use crate::notifications::notify;
use crate::state::AppState;
use crate::tenants::Tenant;

fn nothing_to_roll_back(plugin_id: &str) -> Error {
    Error::conflict(
        "nothing_to_roll_back",
        format!("the install of {plugin_id} has no previous version to roll back to"),
    )
}

/// Returns the tenant's install of `plugin_id` to its previous version.
///
/// # Errors
///
/// 404 for an unknown install; 409 `nothing_to_roll_back` without a previous version, 409
/// `version_yanked` if it was yanked since; the host's refusal.
pub async fn tenant_rollback(
    state: &AppState,
    principal: &Principal,
    tenant: &Tenant,
    plugin_id: &str,
) -> Result<Install> {
    let runtime = state.runtime()?;
    let peek = {
        let mut tx = state.db().begin().await?;
        installs::find(&mut tx, &tenant.id, plugin_id).await?
    }
    .ok_or_else(|| Error::not_found(format!("install of {plugin_id}")))?;
    let previous = peek
        .previous_version
        .ok_or_else(|| nothing_to_roll_back(plugin_id))?;
    let mut loader = Loader::default();
    loader.get(state, plugin_id, &previous).await?;

    let mut tx = state.db().begin_write().await?;
    lock_plugin(&mut tx, plugin_id).await?;
    let install = installs::find(&mut tx, &tenant.id, plugin_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("install of {plugin_id}")))?;
    let previous = install
        .previous_version
        .clone()
        .ok_or_else(|| nothing_to_roll_back(plugin_id))?;
    let rows = version_rows(&mut tx, plugin_id).await?;
    let to = find_version(&rows, plugin_id, &previous)?;
    if to.yanked() {
        return Err(Error::conflict(
            "version_yanked",
            format!(
                "{plugin_id} {} was yanked; the install cannot return to it",
                to.version
            ),
        ));
    }
    let mut staged = vec![
        moves::stage_move(
            &mut tx,
            state,
            &mut loader,
            &install,
            to,
            Previous::Clear,
            None,
        )
        .await?,
    ];
    moves::apply(&mut tx, runtime, &mut staged, false).await?;
    let details = json!({"from": install.version, "to": to.version, "by": "tenant"});
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
        &format!(
            "{plugin_id} was rolled back from {} to {}.",
            install.version, to.version
        ),
        with_plugin(details, plugin_id),
    )
    .await?;
    moves::commit(tx, Some(runtime), &staged).await?;
    tracing::info!(tenant = %tenant.slug, plugin = plugin_id, from = %install.version, to = %to.version, "rolled back");
    let Some(step) = staged.pop() else {
        return Err(Error::Internal("no staged rollback".into()));
    };
    Ok(step.install)
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
    operator: &UserCaller,
    plugin_id: &str,
    to_version: &str,
    reason: Option<&str>,
) -> Result<OperatorRollback> {
    let reason = match reason {
        Some(reason) => super::check_text("reason", Some(reason))?,
        None => "no reason given".to_owned(),
    };
    let runtime = state.runtime()?;
    let mut tx = state.db().begin_write().await?;
    if !lock_plugin(&mut tx, plugin_id).await? {
        return Err(Error::not_found(format!("plugin {plugin_id:?}")));
    }
    let plugin = plugin_row(&mut tx, plugin_id).await?;
    let rows = version_rows(&mut tx, plugin_id).await?;
    let to = find_version(&rows, plugin_id, to_version)?;
    if to.yanked() {
        return Err(Error::conflict(
            "version_yanked",
            format!(
                "{plugin_id} {} is yanked; roll back to a good version",
                to.version
            ),
        ));
    }
    let mut loader = Loader::default();
    let mut staged: Vec<Staged> = Vec::new();
    for install in moves::installs_of(&mut tx, plugin_id, None).await? {
        let Ok(from) = find_version(&rows, plugin_id, &install.version) else {
            continue;
        };
        if from.semver <= to.semver {
            continue;
        }
        let step = if to
            .manifest
            .permissions
            .is_subset_of(&from.manifest.permissions)
        {
            match moves::stage_move(
                &mut tx,
                state,
                &mut loader,
                &install,
                to,
                Previous::Clear,
                None,
            )
            .await
            {
                Ok(step) => step,
                Err(error) => {
                    moves::stage_disable(
                        &mut tx,
                        &install,
                        format!("it cannot move to {}: {error}", to.version),
                    )
                    .await?
                }
            }
        } else {
            moves::stage_disable(
                &mut tx,
                &install,
                format!(
                    "{} asks for permissions the install was not granted",
                    to.version
                ),
            )
            .await?
        };
        staged.push(step);
    }
    moves::apply(&mut tx, runtime, &mut staged, true).await?;
    let actor = Actor::User(operator.id.clone());
    let mut summaries = Vec::new();
    for step in &staged {
        let mut details = step.summary();
        details["by"] = Value::String("operator".into());
        details["reason"] = Value::String(reason.clone());
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
            staged.len()
        ),
        with_plugin(details, plugin_id),
    )
    .await?;
    moves::commit(tx, Some(runtime), &staged).await?;
    tracing::info!(plugin = plugin_id, to = %to.version, installs = staged.len(), "operator rollback");
    Ok(OperatorRollback {
        to_version: to.version.clone(),
        installs: summaries,
    })
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
    let mut tx = state.db().begin_write().await?;
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
    Ok(())
}
