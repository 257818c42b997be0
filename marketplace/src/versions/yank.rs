//! Yanks: an operator pulls a version. It can no longer be installed, updated or rolled back
//! to; installs on it keep running — unless it is a **security** yank, which in the same
//! transaction moves every install on it to the newest good version (approved, not yanked)
//! whose permissions are within what the install was granted, or disables the install when
//! there is none (a newer version needing more permissions is not chosen: it needs the
//! tenant's consent). The moves' hooks run before that transaction; if the installs change
//! meanwhile, the yank is tried again. The plugin's `latest_version` becomes its newest
//! non-yanked version.

use serde_json::{Value, json};

use super::hooks::Hooks;
use super::installable;
use super::moves::{self, Choice, Loader, Moves, Outcome, Previous, Staged};
use super::rollback::tenant_slug;
use super::{VersionRow, check_reason, find_version, lock_plugin, plugin_row, version_rows};
use crate::audit::Actor;
use crate::auth::Operator;
use crate::clock::{now_ms, rfc3339};
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::installs;
use crate::notifications::notify;
use crate::state::AppState;

/// What a yank did.
#[derive(Debug, Clone)]
pub struct Yanked {
    /// The version yanked.
    pub version: String,
    /// When (RFC 3339).
    pub yanked_at: String,
    /// Per install moved or disabled (security yanks): `{tenant, from, to, status, reason?}`.
    pub installs: Vec<Value>,
}

/// Yanks `plugin_id` `version` (an operator's call).
///
/// # Errors
///
/// 400 `invalid_reason_code` / `reason_required`; 404 for an unknown plugin or version; 409
/// `already_yanked`.
pub async fn yank(
    state: &AppState,
    operator: Operator<'_>,
    plugin_id: &str,
    version: &str,
    reason_code: Option<&str>,
    reason: Option<&str>,
    security: bool,
) -> Result<Yanked> {
    let (reason_code, reason) = check_reason(reason_code, reason)?;
    let mut loader = Loader::default();
    let mut hooks = Hooks::default();
    let mut attempt = 1;
    loop {
        let yank = YankOnce {
            state,
            operator,
            plugin_id,
            version,
            reason_code: &reason_code,
            reason: &reason,
            security,
        };
        match yank.run(&mut loader, &mut hooks).await {
            Err(error) if moves::retry(&error, attempt) => attempt += 1,
            done => return done,
        }
    }
}

/// One attempt at a yank: the hooks of a security yank's moves first, then one transaction.
struct YankOnce<'a> {
    state: &'a AppState,
    operator: Operator<'a>,
    plugin_id: &'a str,
    version: &'a str,
    reason_code: &'a str,
    reason: &'a str,
    security: bool,
}

impl YankOnce<'_> {
    async fn run(&self, loader: &mut Loader, hooks: &mut Hooks) -> Result<Yanked> {
        let (state, plugin_id, reason_code, reason, security) = (
            self.state,
            self.plugin_id,
            self.reason_code,
            self.reason,
            self.security,
        );
        let mut planned = Vec::new();
        if security {
            let first = {
                let mut tx = state.db().begin_read().await?;
                plugin_row(&mut tx, plugin_id).await?;
                let rows = version_rows(&mut tx, plugin_id).await?;
                let target = self.target(&rows)?;
                let affected =
                    moves::installs_of(&mut tx, plugin_id, Some(&target.version)).await?;
                choices(&rows, target, &affected)
            };
            if !first.is_empty() {
                let runtime = state.runtime()?;
                for choice in first {
                    planned.push(moves::plan_forced(state, loader, choice).await);
                }
                hooks.run(&runtime.host, &planned, true).await?;
            }
        }

        let mut tx = state.db().begin().await?;
        if !lock_plugin(&mut tx, plugin_id).await? {
            return Err(Error::not_found(format!("plugin {plugin_id:?}")));
        }
        let plugin = plugin_row(&mut tx, plugin_id).await?;
        let rows = version_rows(&mut tx, plugin_id).await?;
        let target = self.target(&rows)?.clone();
        let now = now_ms();
        sqlx::query(
            "UPDATE versions SET yanked_at = $1, yank_reason = $2, yank_reason_code = $3, \
             yank_security = $4, yanked_by = $5 WHERE plugin_id = $6 AND version = $7",
        )
        .bind(now)
        .bind(reason)
        .bind(reason_code)
        .bind(i64::from(security))
        .bind(&self.operator.id)
        .bind(plugin_id)
        .bind(&target.version)
        .execute(&mut *tx)
        .await?;
        super::refresh_latest(&mut tx, plugin_id).await?;
        let affected = moves::installs_of(&mut tx, plugin_id, Some(&target.version)).await?;

        let moves = if security {
            let now = choices(&rows, &target, &affected);
            moves::check_unchanged(&planned, &now)?;
            match state.runtime() {
                Ok(runtime) if !planned.is_empty() => {
                    moves::stage(&mut tx, &runtime.host, planned, hooks).await?
                }
                _ => Moves::none(),
            }
        } else {
            Moves::none()
        };

        let actor = Actor::User(self.operator.id.clone());
        let mut summaries = Vec::new();
        for step in moves.steps() {
            let mut summary = step.summary();
            summary["tenant"] = Value::String(tenant_slug(&mut tx, &step.install.tenant_id).await?);
            summaries.push(summary);
        }
        let details = json!({
            "version": target.version,
            "reason_code": reason_code,
            "reason": reason,
            "security": security,
            "installs": summaries,
        });
        crate::audit::record(
            &mut tx,
            crate::audit::Entry {
                actor: actor.clone(),
                action: "version.yanked",
                tenant_id: None,
                subject: format!("plugin:{plugin_id}@{}", target.version),
                details: details.clone(),
            },
        )
        .await?;
        for step in moves.steps() {
            let mut details = step.summary();
            details["by"] = Value::String("security_yank".into());
            details["reason_code"] = Value::String(reason_code.to_owned());
            installs::audit(
                &mut tx,
                &actor,
                step.audit_action(),
                &step.install.tenant_id,
                plugin_id,
                details,
            )
            .await?;
        }
        notify_yank(
            &mut tx,
            plugin_id,
            &plugin.publisher_id,
            &target.version,
            reason_code,
            reason,
            security,
            &affected,
            moves.steps(),
        )
        .await?;
        moves.commit(tx).await?;
        tracing::warn!(plugin = plugin_id, version = %target.version, security, reason_code, "version yanked");
        if security {
            // Hosts learn at once that the version must not run anywhere.
            crate::statements::after_change(self.state).await;
        }
        Ok(Yanked {
            version: target.version,
            yanked_at: rfc3339(now),
            installs: summaries,
        })
    }

    /// The version to yank among `rows`, if it is not yanked already.
    fn target<'r>(&self, rows: &'r [VersionRow]) -> Result<&'r VersionRow> {
        let target = find_version(rows, self.plugin_id, self.version)?;
        if target.yanked() {
            return Err(Error::conflict(
                "already_yanked",
                format!("{} {} is yanked already", self.plugin_id, target.version),
            ));
        }
        Ok(target)
    }
}

/// Where a security yank of `target` sends each of the installs on it: the newest good
/// version (approved, not yanked) within the permissions granted, or else disabled.
fn choices(
    rows: &[VersionRow],
    target: &VersionRow,
    affected: &[installs::Install],
) -> Vec<Choice> {
    // The installs were granted the yanked version's permission set.
    let destination = installable::installable(rows).find(|row| {
        row.version != target.version
            && row
                .manifest
                .permissions
                .is_subset_of(&target.manifest.permissions)
    });
    affected
        .iter()
        .map(|install| match destination {
            Some(to) => Choice::move_to(install, to, Previous::Clear),
            None => Choice::disable(
                install,
                "no other good version is within the permissions granted".to_owned(),
            ),
        })
        .collect()
}

/// Tells the publisher, and every tenant with an install on the version what it means for
/// them.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename the same fields"
)]
async fn notify_yank(
    tx: &mut Tx,
    plugin_id: &str,
    publisher_id: &str,
    version: &str,
    reason_code: &str,
    reason: &str,
    security: bool,
    affected: &[installs::Install],
    staged: &[Staged],
) -> Result<()> {
    let kind = if security { "security yank" } else { "yank" };
    let payload = json!({
        "plugin": plugin_id,
        "version": version,
        "reason_code": reason_code,
        "reason": reason,
        "security": security,
    });
    notify(
        tx,
        "publisher",
        publisher_id,
        "version_yanked",
        &format!(
            "{plugin_id} {version} was yanked ({kind}, {reason_code}): {reason}. You may appeal once."
        ),
        payload.clone(),
    )
    .await?;
    for install in affected {
        let step = staged
            .iter()
            .find(|step| step.install.tenant_id == install.tenant_id);
        let (message, outcome) = match step {
            None => (
                format!(
                    "{plugin_id} {version}, which you run, was yanked ({reason_code}): {reason}. It keeps running; consider another version."
                ),
                Value::Null,
            ),
            Some(step) => (
                match (&step.outcome, step.to()) {
                    (Outcome::Moved, Some(to)) => format!(
                        "{plugin_id} {version} was yanked for security ({reason_code}): {reason}. Your install was moved to {to}."
                    ),
                    (Outcome::Disabled(_), _) | (Outcome::Moved, None) => format!(
                        "{plugin_id} {version} was yanked for security ({reason_code}): {reason}. Your install was disabled: {why}.",
                        why = match &step.outcome {
                            Outcome::Disabled(why) => why.as_str(),
                            Outcome::Moved => "no version to move to",
                        }
                    ),
                },
                step.summary(),
            ),
        };
        let mut payload = payload.clone();
        payload["install"] = outcome;
        notify(
            tx,
            "tenant",
            &install.tenant_id,
            "version_yanked",
            &message,
            payload,
        )
        .await?;
    }
    Ok(())
}

/// Reverses a yank of `plugin_id` `version` made at `yanked_at` (an upheld appeal), in `tx`.
/// Installs moved off it by a security yank stay where they are. Returns whether it was
/// still yanked.
///
/// # Errors
///
/// [`Error::Database`].
pub(crate) async fn unyank(
    tx: &mut Tx,
    actor: &Actor,
    plugin_id: &str,
    version: &str,
    yanked_at: i64,
    reason: &str,
) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE versions SET yanked_at = NULL, yank_reason = NULL, yank_reason_code = NULL, \
         yank_security = 0, yanked_by = NULL \
         WHERE plugin_id = $1 AND version = $2 AND yanked_at = $3",
    )
    .bind(plugin_id)
    .bind(version)
    .bind(yanked_at)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    super::refresh_latest(tx, plugin_id).await?;
    crate::audit::record(
        tx,
        crate::audit::Entry {
            actor: actor.clone(),
            action: "version.unyanked",
            tenant_id: None,
            subject: format!("plugin:{plugin_id}@{version}"),
            details: json!({"version": version, "reason": reason}),
        },
    )
    .await?;
    Ok(true)
}
