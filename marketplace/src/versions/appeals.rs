//! Appeals: a publisher's member contests a yank or a block, once per yank or block; a
//! reviewer or operator other than the one who yanked or blocked (and not a member of the
//! publisher) upholds or reverses it. Reversing unyanks the version or unblocks the plugin
//! (installs a security yank moved stay where they are).

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{check_text, find_version, lock_plugin, plugin_row, version_rows};
use crate::audit::Actor;
use crate::auth::{Principal, Reviewer};
use crate::clock::{now_ms, rfc3339};
use crate::error::{ConflictOnUnique, Error, Result};
use crate::id::new_id;
use crate::notifications::notify;
use crate::state::AppState;

/// An appeal.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Appeal {
    /// The appeal's id.
    pub id: String,
    /// The plugin id.
    pub plugin: String,
    /// `yank` or `block`.
    pub target: String,
    /// The yanked version (null for a block).
    pub version: Option<String>,
    /// The publisher's case.
    pub text: String,
    /// `pending`, `upheld` or `reversed`.
    pub status: String,
    /// The decider's reason, once decided.
    pub reason: Option<String>,
    /// When it was filed (RFC 3339).
    pub created_at: String,
    /// When it was decided (RFC 3339).
    pub decided_at: Option<String>,
}

const COLUMNS: &str = "id, plugin_id, publisher_id, target, version, action_at, actioned_by, \
                       text, decision, reason, created_at, decided_at";

struct Stored {
    appeal: Appeal,
    publisher_id: String,
    action_at: i64,
    actioned_by: Option<String>,
}

fn from_row(row: &AnyRow) -> Result<Stored> {
    let version: String = row.try_get("version")?;
    let decision: Option<String> = row.try_get("decision")?;
    let decided_at: Option<i64> = row.try_get("decided_at")?;
    Ok(Stored {
        appeal: Appeal {
            id: row.try_get("id")?,
            plugin: row.try_get("plugin_id")?,
            target: row.try_get("target")?,
            version: (!version.is_empty()).then_some(version),
            text: row.try_get("text")?,
            status: match decision.as_deref() {
                None => "pending".to_owned(),
                Some("uphold") => "upheld".to_owned(),
                Some(_) => "reversed".to_owned(),
            },
            reason: row.try_get("reason")?,
            created_at: rfc3339(row.try_get("created_at")?),
            decided_at: decided_at.map(rfc3339),
        },
        publisher_id: row.try_get("publisher_id")?,
        action_at: row.try_get("action_at")?,
        actioned_by: row.try_get("actioned_by")?,
    })
}

/// Files an appeal of the current yank of `version` (`target` `yank`) or block (`block`) of
/// `plugin_id`, by a member of its publisher.
///
/// # Errors
///
/// 400 `invalid_target`, `invalid_body` (a yank appeal without `version`), `reason_required`
/// (empty text); 404 for an unknown plugin or version, or a caller who is not a member of the
/// publisher; 409 `not_yanked` / `not_blocked`, `already_appealed`.
pub async fn file(
    state: &AppState,
    principal: &Principal,
    plugin_id: &str,
    target: &str,
    version: Option<&str>,
    text: Option<&str>,
) -> Result<Appeal> {
    let user = principal.user()?;
    if target != "yank" && target != "block" {
        return Err(Error::bad_request(
            "invalid_target",
            format!("field `target` must be \"yank\" or \"block\", not {target:?}"),
        ));
    }
    let text = check_text("text", text)?;
    let mut tx = state.db().begin().await?;
    let hidden = || Error::not_found(format!("plugin {plugin_id:?}"));
    if !lock_plugin(&mut tx, plugin_id).await? {
        return Err(hidden());
    }
    let plugin = plugin_row(&mut tx, plugin_id).await?;
    if crate::publishers::member_role_in(&mut tx, &plugin.publisher_id, &user.id)
        .await?
        .is_none()
    {
        return Err(hidden());
    }
    let (version, action_at, actioned_by) = if target == "yank" {
        let Some(version) = version else {
            return Err(Error::bad_request(
                "invalid_body",
                "field `version` is required to appeal a yank",
            ));
        };
        let rows = version_rows(&mut tx, plugin_id).await?;
        let row = find_version(&rows, plugin_id, version)?;
        let Some(yanked_at) = row.yanked_at else {
            return Err(Error::conflict(
                "not_yanked",
                format!("{plugin_id} {} is not yanked", row.version),
            ));
        };
        (row.version.clone(), yanked_at, row.yanked_by.clone())
    } else {
        let Some(blocked_at) = plugin.blocked_at else {
            return Err(Error::conflict(
                "not_blocked",
                format!("{plugin_id} is not blocked"),
            ));
        };
        (String::new(), blocked_at, plugin.blocked_by.clone())
    };
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO appeals (id, plugin_id, publisher_id, target, version, action_at, actioned_by, \
         text, filed_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(plugin_id)
    .bind(&plugin.publisher_id)
    .bind(target)
    .bind(&version)
    .bind(action_at)
    .bind(actioned_by.as_deref())
    .bind(&text)
    .bind(&user.id)
    .bind(now)
    .execute(&mut *tx)
    .await
    .conflict_on_unique("already_appealed", || {
        format!("this {target} of {plugin_id} was appealed already; an appeal is heard once")
    })?;
    let details = json!({"appeal": id, "target": target, "version": version, "text": text});
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor: Actor::from(principal),
            action: "appeal.filed",
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
        "appeal_filed",
        &format!("An appeal of the {target} of {plugin_id} was filed and awaits a decision."),
        details,
    )
    .await?;
    let sql = format!("SELECT {COLUMNS} FROM appeals WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
    let appeal = from_row(&row)?.appeal;
    tx.commit().await?;
    Ok(appeal)
}

/// Appeals, oldest first: pending ones only, or all.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn list(state: &AppState, pending_only: bool) -> Result<Vec<Appeal>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM appeals WHERE ($1 = 0 OR decided_at IS NULL) \
         ORDER BY created_at, id LIMIT 200"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(i64::from(pending_only))
        .fetch_all(state.db().pool())
        .await?;
    rows.iter().map(|row| Ok(from_row(row)?.appeal)).collect()
}

/// Decides appeal `id`: `uphold` leaves the yank or block; `reverse` lifts it.
///
/// # Errors
///
/// 400 `invalid_decision`, `reason_required`; 404 for an unknown appeal; 403 `same_decider`
/// for the one who yanked or blocked, `self_review` for a member of the publisher; 409
/// `already_decided`.
pub async fn decide(
    state: &AppState,
    decider: Reviewer<'_>,
    id: &str,
    decision: &str,
    reason: Option<&str>,
) -> Result<Appeal> {
    if decision != "uphold" && decision != "reverse" {
        return Err(Error::bad_request(
            "invalid_decision",
            format!("field `decision` must be \"uphold\" or \"reverse\", not {decision:?}"),
        ));
    }
    let reason = check_text("reason", reason)?;
    let mut tx = state.db().begin().await?;
    let sql = format!("SELECT {COLUMNS} FROM appeals WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found(format!("appeal {id:?}")))?;
    let stored = from_row(&row)?;
    let plugin_id = stored.appeal.plugin.clone();
    lock_plugin(&mut tx, &plugin_id).await?;
    if stored.appeal.status != "pending" {
        return Err(Error::conflict(
            "already_decided",
            format!("appeal {id} was decided already ({})", stored.appeal.status),
        ));
    }
    if stored.actioned_by.as_deref() == Some(decider.id.as_str()) {
        return Err(Error::forbidden(
            "same_decider",
            format!(
                "you made the {} under appeal; another reviewer or operator must decide it",
                stored.appeal.target
            ),
        ));
    }
    if !crate::review::may_judge_in(&mut tx, &decider, &stored.publisher_id).await? {
        return Err(Error::forbidden(
            "self_review",
            "you are a member of the appealing publisher; another reviewer must decide",
        ));
    }
    let now = now_ms();
    let updated = sqlx::query(
        "UPDATE appeals SET decision = $1, reason = $2, decided_by = $3, decided_at = $4 \
         WHERE id = $5 AND decided_at IS NULL",
    )
    .bind(decision)
    .bind(&reason)
    .bind(&decider.id)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(Error::conflict(
            "already_decided",
            format!("appeal {id} was decided already"),
        ));
    }
    let actor = Actor::User(decider.id.clone());
    let mut switched_on = Vec::new();
    let mut lifted = false;
    if decision == "reverse" {
        if stored.appeal.target == "yank" {
            let version = stored.appeal.version.clone().unwrap_or_default();
            lifted = super::yank::unyank(
                &mut tx,
                &actor,
                &plugin_id,
                &version,
                stored.action_at,
                &reason,
            )
            .await?;
        } else if let Some(installs) =
            super::block::unblock_in(&mut tx, &actor, &plugin_id, stored.action_at, &reason).await?
        {
            lifted = true;
            switched_on = installs;
        }
    }
    let details = json!({
        "appeal": id,
        "target": stored.appeal.target,
        "version": stored.appeal.version,
        "decision": decision,
        "reason": reason,
        "lifted": lifted,
    });
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor,
            action: "appeal.decided",
            tenant_id: None,
            subject: format!("plugin:{plugin_id}"),
            details: details.clone(),
        },
    )
    .await?;
    let what = match &stored.appeal.version {
        Some(version) => format!("yank of {plugin_id} {version}"),
        None => format!("block of {plugin_id}"),
    };
    let verdict = if decision == "uphold" {
        "upheld: it stands"
    } else {
        "reversed: it is lifted"
    };
    notify(
        &mut tx,
        "publisher",
        &stored.publisher_id,
        "appeal_decided",
        &format!("Your appeal of the {what} was {verdict}. {reason}"),
        details.clone(),
    )
    .await?;
    if lifted && stored.appeal.target == "yank" {
        let version = stored.appeal.version.clone().unwrap_or_default();
        for tenant_id in super::tenants_with_installs(&mut tx, &plugin_id, Some(&version)).await? {
            notify(
                &mut tx,
                "tenant",
                &tenant_id,
                "version_unyanked",
                &format!("The yank of {plugin_id} {version} was reversed on appeal: {reason}"),
                details.clone(),
            )
            .await?;
        }
    }
    let runtime = state.runtime().ok();
    if let Some(runtime) = runtime {
        super::block::switch_on(runtime, &switched_on, true);
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let appeal = from_row(&row)?.appeal;
    if let Err(e) = tx.commit().await {
        if let Some(runtime) = runtime {
            super::block::switch_on(runtime, &switched_on, false);
        }
        return Err(e.into());
    }
    tracing::info!(appeal = id, decision, lifted, "appeal decided");
    if lifted {
        super::block::after_unblock(state, &switched_on).await;
    }
    Ok(appeal)
}
