//! Updates: automatic ones when a version is approved, within the permissions granted, and
//! manual ones that consent to a new permission set.
//!
//! [`after_approval`] runs after the approval's transaction commits: each install whose policy
//! accepts the new version is updated in its own transaction, its `on-upgrade` hook run just
//! before it (one failing install does not undo the approval or the others; its failure is
//! audited and the tenant notified). An update
//! that needs a permission the tenant did not grant, or that no longer marks secret a
//! configuration key the installed version marks secret, is not applied: the tenant gets an
//! `update_needs_consent` notification with the permission diff (and `secrets_made_plain`),
//! and [`update`] with the new permissions digest applies it. Either way, values stored sealed
//! stay sealed (see [`crate::installs::config`]). Automatic updates skip pinned installs and blocked plugins.
//!
//! After a change of control ([`super::control`]) automatic updates of the plugin pause: the
//! version approved in the full review is not applied automatically either (a new owner's
//! first release reaches no tenant unasked); the tenants whose policy would have taken it are
//! told (`update_held`) and update by hand. Later versions follow the policies again.

use plinth_package::PermissionDiff;
use serde_json::{Map, Value, json};
use sqlx::Row;

use super::hooks::Hooks;
use super::installable::{self, Move};
use super::moves::{self, Choice, Loader, Planned, Previous, Target};
use super::policy::UpdatePolicy;
use super::rollout::Gate;
use super::{VersionRow, find_version, lock_plugin, plugin_row, version_rows};
use crate::audit::Actor;
use crate::auth::Principal;
use crate::catalog::Visibility;
use crate::clock::now_ms;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::installs::{self, Install};
use crate::notifications::notify;
use crate::state::AppState;
use crate::tenants::{self, Plan, Tenant, TenantRole};

/// What an automatic update did to one install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoUpdate {
    /// Updated to the new version.
    Updated,
    /// The new version needs permissions not granted, or makes a secret configuration key
    /// plain; the tenant was asked to consent.
    NeedsConsent,
    /// Not applied because its publisher changed control; the tenant was told.
    Held,
    /// Not applied: policy, pin, yank or block.
    Skipped,
}

/// Applies the approval of `plugin_id` `version` to every install whose update policy accepts
/// it; `held` (the approval was the full review after a change of control) tells those
/// tenants instead. Never fails: what goes wrong is logged, audited and notified per install.
///
/// A version with a staged rollout reaches only the installs of its first stage here; the
/// rollout's [`tick`](super::rollout::tick) applies the next stages.
pub async fn after_approval(state: &AppState, plugin_id: &str, version: &str, held: bool) {
    if state.runtime().is_err() {
        return;
    }
    let gate = match super::rollout::begin(state.db(), plugin_id, version, held, now_ms()).await {
        Ok(gate) => gate,
        Err(error) => {
            // Updating everyone would skip the publisher's schedule: update no one, loudly.
            tracing::error!(plugin = plugin_id, version, %error, "cannot start the rollout; no install was updated");
            return;
        }
    };
    apply(state, plugin_id, version, held, gate).await;
}

/// Applies `version` of `plugin_id` to every install `gate` reaches whose update policy
/// accepts it (see [`after_approval`]). Never fails: what goes wrong is logged, audited and
/// notified per install.
pub(crate) async fn apply(
    state: &AppState,
    plugin_id: &str,
    version: &str,
    held: bool,
    gate: Gate,
) {
    if state.runtime().is_err() || gate == Gate::Nobody {
        return;
    }
    let rows = match sqlx::query(
        "SELECT i.id, i.tenant_id FROM installs i JOIN tenants t ON t.id = i.tenant_id \
         WHERE i.plugin_id = $1 AND i.pinned = 0 AND i.update_policy <> 'manual' \
         AND t.deleted_at IS NULL ORDER BY i.created_at",
    )
    .bind(plugin_id)
    .fetch_all(state.db().pool())
    .await
    {
        Ok(rows) => rows,
        Err(error) => {
            tracing::error!(plugin = plugin_id, %error, "cannot list installs to update");
            return;
        }
    };
    let mut candidates = Vec::with_capacity(rows.len());
    for row in rows {
        match (row.try_get::<String, _>(0), row.try_get::<String, _>(1)) {
            (Ok(install_id), Ok(tenant_id)) if gate.reaches(&tenant_id, plugin_id) => {
                candidates.push(install_id);
            }
            (Ok(_), Ok(_)) => {}
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(plugin = plugin_id, %error, "cannot read an install to update");
            }
        }
    }
    if candidates.is_empty() {
        return;
    }
    let staged = matches!(gate, Gate::Stage(_));
    let mut loader = Loader::default();
    let mut hooks = Hooks::default();
    for install_id in candidates {
        let mut attempt = 1;
        let updated = loop {
            match update_one(
                state,
                &mut loader,
                &mut hooks,
                &install_id,
                plugin_id,
                version,
                held,
                staged,
            )
            .await
            {
                Err(error) if moves::retry(&error, attempt) => attempt += 1,
                updated => break updated,
            }
        };
        match updated {
            Ok(outcome) => {
                tracing::info!(install = %install_id, plugin = plugin_id, version, ?outcome, "automatic update");
            }
            Err(error) => {
                tracing::warn!(install = %install_id, plugin = plugin_id, version, %error, "automatic update failed");
                if let Err(e) = record_failure(state, &install_id, version, &error).await {
                    tracing::error!(install = %install_id, error = %e, "cannot record a failed update");
                }
            }
        }
    }
}

/// What an automatic update of one install would do, read in a transaction.
enum Decision {
    /// Nothing: policy, pin, yank, block, or the install or plugin is gone.
    Skip,
    /// Tell the tenant the update is held after a change of control.
    Held {
        install: Install,
        from: VersionRow,
        to: VersionRow,
    },
    /// Ask the tenant to consent to the new permissions.
    NeedsConsent {
        install: Install,
        from: VersionRow,
        to: VersionRow,
    },
    /// Move the install.
    Update { choice: Choice, from: VersionRow },
}

/// Decides what the update of install `install_id` to `version` does, from what `tx` reads.
async fn decide(
    tx: &mut Tx,
    install_id: &str,
    plugin_id: &str,
    version: &str,
    held: bool,
) -> Result<Decision> {
    let Some(plugin) = plugin_row(tx, plugin_id)
        .await
        .map(Some)
        .or_else(|error| match error {
            Error::NotFound(_) => Ok(None),
            other => Err(other),
        })?
    else {
        return Ok(Decision::Skip);
    };
    if plugin.blocked_at.is_some() || plugin.full_review_reason.is_some() {
        return Ok(Decision::Skip);
    }
    let Some(install) = moves::find_by_id(tx, install_id).await? else {
        return Ok(Decision::Skip);
    };
    let policy = UpdatePolicy::parse(&install.update_policy)?;
    let rows = version_rows(tx, plugin_id).await?;
    let to = find_version(&rows, plugin_id, version)?.clone();
    let from = find_version(&rows, plugin_id, &install.version)?.clone();
    if install.pinned || !installable::may_move_to(&to) || !policy.allows(&from.semver, &to.semver)
    {
        return Ok(Decision::Skip);
    }
    if held {
        return Ok(Decision::Held { install, from, to });
    }
    if !to
        .manifest
        .permissions
        .is_subset_of(&from.manifest.permissions)
        || !from.manifest.secrets_made_plain(&to.manifest).is_empty()
    {
        return Ok(Decision::NeedsConsent { install, from, to });
    }
    let choice = Choice::move_to(&install, &to, Previous::Keep);
    Ok(Decision::Update { choice, from })
}

/// Updates one install to `version` if its policy, pin and grant allow: its hook runs first,
/// then the update is recorded in one transaction that decides again (`staged`: and recorded
/// as the rollout's, for its kill switch).
#[allow(clippy::too_many_arguments, reason = "one update, spelled out")]
async fn update_one(
    state: &AppState,
    loader: &mut Loader,
    hooks: &mut Hooks,
    install_id: &str,
    plugin_id: &str,
    version: &str,
    held: bool,
    staged: bool,
) -> Result<AutoUpdate> {
    let runtime = state.runtime()?;
    let first = {
        let mut tx = state.db().begin_read().await?;
        decide(&mut tx, install_id, plugin_id, version, held).await?
    };
    let planned = match first {
        Decision::Update { choice, .. } => {
            let planned = moves::plan(state, loader, choice, None).await?;
            hooks
                .run(&runtime.host, std::slice::from_ref(&planned), false)
                .await?;
            Some(planned)
        }
        _ => None,
    };

    let mut tx = state.db().begin().await?;
    if !lock_plugin(&mut tx, plugin_id).await? {
        return Ok(AutoUpdate::Skipped);
    }
    match decide(&mut tx, install_id, plugin_id, version, held).await? {
        Decision::Skip => Ok(AutoUpdate::Skipped),
        Decision::Held { install, from, to } => {
            let details = json!({
                "from": from.version,
                "to": to.version,
                "permissions_digest": to.permissions_digest,
                "reason": "change_of_control",
            });
            tell_tenant(
                &mut tx,
                &install.tenant_id,
                plugin_id,
                "install.update_held",
                "update_held",
                &format!(
                    "{plugin_id} {} is the first version since its publisher changed control; it \
                     was not applied automatically. Review it and update by hand (permissions \
                     digest {}).",
                    to.version, to.permissions_digest
                ),
                details,
            )
            .await?;
            tx.commit().await?;
            Ok(AutoUpdate::Held)
        }
        Decision::NeedsConsent { install, from, to } => {
            let diff =
                PermissionDiff::between(&from.manifest.permissions, &to.manifest.permissions);
            let view = diff.view();
            let added: Vec<String> = view.added.iter().map(|g| g.sentence.clone()).collect();
            let made_plain = from.manifest.secrets_made_plain(&to.manifest);
            let mut reasons = Vec::new();
            if !added.is_empty() {
                reasons.push(format!(
                    "it asks for more than you granted to {} ({})",
                    from.version,
                    added.join("; ")
                ));
            }
            if !made_plain.is_empty() {
                reasons.push(format!(
                    "it no longer marks the configuration keys {} secret (their values stay \
                     sealed and hidden)",
                    made_plain.join(", ")
                ));
            }
            let details = json!({
                "from": from.version,
                "to": to.version,
                "permissions_digest": to.permissions_digest,
                "permission_diff": view,
                "secrets_made_plain": made_plain,
            });
            tell_tenant(
                &mut tx,
                &install.tenant_id,
                plugin_id,
                "install.update_needs_consent",
                "update_needs_consent",
                &format!(
                    "{plugin_id} {} needs your consent: {}. Update with its permissions digest \
                     {} to apply it.",
                    to.version,
                    reasons.join("; and "),
                    to.permissions_digest
                ),
                details,
            )
            .await?;
            tx.commit().await?;
            Ok(AutoUpdate::NeedsConsent)
        }
        Decision::Update { choice, from } => {
            let planned: Vec<Planned> = planned.into_iter().collect();
            moves::check_unchanged(&planned, std::slice::from_ref(&choice))?;
            let moves = moves::stage(&mut tx, &runtime.host, planned, hooks).await?;
            let install = &choice.install;
            let to = match &choice.target {
                Target::Version { to, .. } => to,
                Target::Disable(_) => {
                    return Err(Error::Internal("an update that disables".into()));
                }
            };
            let details = json!({
                "from": from.version,
                "to": to.version,
                "permissions_digest": to.permissions_digest,
                "automatic": true,
                "update_policy": install.update_policy,
            });
            tell_tenant(
                &mut tx,
                &install.tenant_id,
                plugin_id,
                "install.updated",
                "install_updated",
                &format!(
                    "{plugin_id} was updated from {} to {} ({} policy).",
                    from.version, to.version, install.update_policy
                ),
                details,
            )
            .await?;
            if staged {
                super::rollout::record_update(&mut tx, plugin_id, version, &install.id).await?;
            }
            moves.commit(tx).await?;
            Ok(AutoUpdate::Updated)
        }
    }
}

/// Audits a failed automatic update and tells the tenant.
async fn record_failure(
    state: &AppState,
    install_id: &str,
    version: &str,
    error: &Error,
) -> Result<()> {
    let mut tx = state.db().begin().await?;
    let Some(install) = moves::find_by_id(&mut tx, install_id).await? else {
        return Ok(());
    };
    let details = json!({
        "from": install.version,
        "to": version,
        "automatic": true,
        "error": {"code": error.code(), "message": error.to_string()},
    });
    tell_tenant(
        &mut tx,
        &install.tenant_id,
        &install.plugin_id,
        "install.update_failed",
        "update_failed",
        &format!(
            "{} could not be updated from {} to {version}: {error}. It stays on {}.",
            install.plugin_id, install.version, install.version
        ),
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A manual update of tenant `slug`'s install of `plugin_id`: `principal`, a tenant admin,
/// consents to `version`'s permission set (its digest) and the install moves there, keeping
/// its configuration (merged with `config` if given).
///
/// # Errors
///
/// As [`tenants::access`] (admin); 404 for an unknown install, plugin or version (a blocked plugin is unknown); 409
/// `version_yanked`, `permissions_changed` (with the current permissions in `details`),
/// `not_an_update` (not newer than the installed version); 403 `plan_required` for a paid
/// plugin on a plan without them; 400 `invalid_config`; the host's refusal.
pub async fn update(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    plugin_id: &str,
    version: &str,
    permissions_digest: &str,
    config: Option<&Map<String, Value>>,
) -> Result<Install> {
    let tenant = &tenants::access(state.db(), principal, slug, TenantRole::Admin).await?;
    let runtime = state.runtime()?;
    let shown = crate::catalog::version(
        state.db(),
        plugin_id,
        version,
        &Visibility::tenant(&tenant.id),
    )
    .await?;
    installable::refuse_yanked(plugin_id, &shown, Move::Update)?;
    installable::refuse_without_consent(plugin_id, &shown, permissions_digest)?;
    let mut loader = Loader::default();
    loader.get(state, plugin_id, &shown.version).await?;
    let plan = crate::tenants::plan(state.db(), &tenant.plan).await?;
    let wanted = ManualUpdate {
        tenant,
        plugin_id,
        version: &shown.version,
        permissions_digest,
        plan: &plan,
    };

    // The hook runs with no transaction open; the transaction checks everything again and
    // refuses with `install_changed` if the install changed meanwhile.
    let (first, _) = {
        let mut tx = state.db().begin_read().await?;
        wanted.check(&mut tx).await?
    };
    let planned = moves::plan(state, &mut loader, first, config).await?;
    let mut hooks = Hooks::default();
    hooks
        .run(&runtime.host, std::slice::from_ref(&planned), false)
        .await?;

    let mut tx = state.db().begin().await?;
    lock_plugin(&mut tx, plugin_id).await?;
    let (choice, from) = wanted.check(&mut tx).await?;
    moves::check_unchanged(
        std::slice::from_ref(&planned),
        std::slice::from_ref(&choice),
    )?;
    let Target::Version { to, .. } = &choice.target else {
        return Err(Error::Internal("an update that disables".into()));
    };
    let moves = moves::stage(&mut tx, &runtime.host, vec![planned], &hooks).await?;
    let granted_more = !to
        .manifest
        .permissions
        .is_subset_of(&from.manifest.permissions);
    let stored_config = moves
        .steps()
        .first()
        .map(|step| installs::config::public_view(&step.install.config));
    installs::audit(
        &mut tx,
        principal,
        "install.updated",
        &tenant.id,
        plugin_id,
        json!({
            "from": from.version,
            "to": to.version,
            "permissions_digest": to.permissions_digest,
            "permissions": shown.permissions,
            "new_grants": granted_more,
            "secrets_made_plain": from.manifest.secrets_made_plain(&to.manifest),
            "automatic": false,
            "config": config.and(stored_config),
        }),
    )
    .await?;
    let mut staged = moves.commit(tx).await?;
    tracing::info!(tenant = %tenant.slug, plugin = plugin_id, from = %from.version, to = %to.version, "updated");
    let Some(step) = staged.pop() else {
        return Err(Error::Internal("no staged update".into()));
    };
    Ok(step.install)
}

/// A manual update as asked: what is checked before its hook runs and again in its
/// transaction.
struct ManualUpdate<'a> {
    tenant: &'a Tenant,
    plugin_id: &'a str,
    version: &'a str,
    permissions_digest: &'a str,
    plan: &'a Plan,
}

impl ManualUpdate<'_> {
    /// The tenant's install and the move asked of it, with the version it leaves, if the
    /// update is allowed by what `tx` reads.
    async fn check(&self, tx: &mut Tx) -> Result<(Choice, VersionRow)> {
        let plugin_id = self.plugin_id;
        let install = installs::find(tx, &self.tenant.id, plugin_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("install of {plugin_id}")))?;
        let rows = version_rows(tx, plugin_id).await?;
        let to = find_version(&rows, plugin_id, self.version)?;
        let from = find_version(&rows, plugin_id, &install.version)?;
        installable::refuse_yanked(plugin_id, to, Move::Update)?;
        installable::refuse_without_consent(plugin_id, to, self.permissions_digest)?;
        if to.semver <= from.semver {
            return Err(Error::conflict(
                "not_an_update",
                format!(
                    "{plugin_id} {} is not newer than the installed {}; roll back instead",
                    to.version, from.version
                ),
            ));
        }
        if to.manifest.pricing.is_paid() && !self.plan.paid_plugins {
            return Err(Error::forbidden(
                "plan_required",
                format!(
                    "{plugin_id} {} is paid; the {} plan does not allow paid plugins",
                    to.version, self.plan.name
                ),
            ));
        }
        Ok((Choice::move_to(&install, to, Previous::Keep), from.clone()))
    }
}

/// Tells the tenant what happened to its install of `plugin_id` on its own: an audit entry by
/// the system (`action`, `details`) and a notification (`kind`, `message`) whose payload is the
/// same details with the plugin id.
async fn tell_tenant(
    tx: &mut Tx,
    tenant_id: &str,
    plugin_id: &str,
    action: &str,
    kind: &str,
    message: &str,
    details: Value,
) -> Result<()> {
    installs::audit(
        tx,
        Actor::System,
        action,
        tenant_id,
        plugin_id,
        details.clone(),
    )
    .await?;
    let mut payload = details;
    payload["plugin"] = Value::String(plugin_id.to_owned());
    notify(tx, "tenant", tenant_id, kind, message, payload).await
}
