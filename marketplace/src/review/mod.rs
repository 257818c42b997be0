//! Review: the queue of submissions in review (oldest first) and reviewers' decisions.
//!
//! A decision is one transaction: the status change (only from `in_review`, so of two
//! concurrent decisions exactly one lands), for an approval the countersigned artifact and the
//! catalog rows, and the publisher's notification.

mod routes;

pub(crate) use routes::routes;

use plinth_package::{Manifest, PermissionDiff, PermissionDiffView, Permissions};

use crate::auth::{Reviewer, UserCaller};
use crate::clock::now_ms;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::publishers;
use crate::state::AppState;
use crate::submissions::{self, APPROVED, CHANGES_REQUESTED, IN_REVIEW, REJECTED, Submission};

/// The reason codes a rejection may carry.
pub const REASON_CODES: [&str; 5] = [
    "malicious",
    "permissions_unjustified",
    "broken",
    "policy",
    "metadata",
];

/// What a reviewer decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Countersign and publish.
    Approve,
    /// Refuse, with a reason code.
    Reject,
    /// Ask the publisher for a new version.
    RequestChanges,
}

impl Decision {
    /// The decision called `name` (`approve`, `reject`, `request_changes`).
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] (`invalid_decision`) naming the field.
    pub fn parse(name: &str) -> Result<Decision> {
        match name {
            "approve" => Ok(Decision::Approve),
            "reject" => Ok(Decision::Reject),
            "request_changes" => Ok(Decision::RequestChanges),
            other => Err(Error::bad_request(
                "invalid_decision",
                format!(
                    "field `decision` must be \"approve\", \"reject\" or \"request_changes\", not {other:?}"
                ),
            )),
        }
    }

    /// The decision's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
            Decision::RequestChanges => "request_changes",
        }
    }

    /// The status a submission gets.
    pub fn status(self) -> &'static str {
        match self {
            Decision::Approve => APPROVED,
            Decision::Reject => REJECTED,
            Decision::RequestChanges => CHANGES_REQUESTED,
        }
    }

    /// The decision's action in the audit log.
    pub fn audit_action(self) -> &'static str {
        match self {
            Decision::Approve => "submission.approved",
            Decision::Reject => "submission.rejected",
            Decision::RequestChanges => "submission.changes_requested",
        }
    }
}

/// Checks a decision's reason and reason code; returns them trimmed.
///
/// # Errors
///
/// [`Error::BadRequest`]: `reason_required` for an empty reason; `invalid_reason_code` for a
/// rejection without a code from [`REASON_CODES`], or any unknown code.
pub fn check_reason(
    decision: Decision,
    reason: Option<&str>,
    reason_code: Option<&str>,
) -> Result<(String, Option<String>)> {
    let reason = reason.map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(Error::bad_request(
            "reason_required",
            "field `reason` is required and must not be empty: say why, for the publisher",
        ));
    }
    if reason.chars().count() > 10_000 {
        return Err(Error::bad_request(
            "invalid_body",
            "field `reason` must be at most 10000 characters",
        ));
    }
    let list = REASON_CODES.join(", ");
    let code = match reason_code.map(str::trim) {
        Some(code) if REASON_CODES.contains(&code) => Some(code.to_owned()),
        Some(code) => {
            return Err(Error::bad_request(
                "invalid_reason_code",
                format!("field `reason_code` must be one of {list}, not {code:?}"),
            ));
        }
        None if decision == Decision::Reject => {
            return Err(Error::bad_request(
                "invalid_reason_code",
                format!("a rejection needs field `reason_code`, one of {list}"),
            ));
        }
        None => None,
    };
    Ok((reason.to_owned(), code))
}

/// The permission diff of `submission` against the last approved version (everything added
/// for a first version), and its own permissions.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] if the stored manifest does not parse.
pub async fn permission_diff(
    db: &Db,
    submission: &Submission,
) -> Result<(PermissionDiffView, Permissions)> {
    let manifest = Manifest::parse(&submission.manifest)
        .map_err(|e| Error::Internal(format!("stored manifest: {e}")))?;
    // Submissions in review are newer than every approved version (submission checks that),
    // so the newest approved version is the one before this.
    let previous = crate::catalog::latest_permissions(db.pool(), &submission.plugin_id)
        .await?
        .map(|(_, permissions)| permissions)
        .unwrap_or_default();
    let diff = PermissionDiff::between(&previous, &manifest.permissions).view();
    Ok((diff, manifest.permissions))
}

/// Whether `reviewer` may judge the work of publisher `publisher_id` (its submissions, its
/// appeals, its plugins' ratings): not if they are a member of it. The one home of "no
/// self-review": the queue shows it, and every such decision refuses with a 403 when it is
/// false.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn may_judge(db: &Db, reviewer: &UserCaller, publisher_id: &str) -> Result<bool> {
    Ok(judges(
        publishers::member_role(db, publisher_id, &reviewer.id).await?,
    ))
}

/// [`may_judge`] read in `tx`, for a decision made under a write transaction (which must not
/// wait for a second connection while it holds one).
///
/// # Errors
///
/// [`Error::Database`].
pub(crate) async fn may_judge_in(
    tx: &mut crate::db::Tx,
    reviewer: &UserCaller,
    publisher_id: &str,
) -> Result<bool> {
    Ok(judges(
        publishers::member_role_in(tx, publisher_id, &reviewer.id).await?,
    ))
}

/// The rule itself: whoever has a role in the publisher does not judge its work.
fn judges(role_in_publisher: Option<publishers::MemberRole>) -> bool {
    role_in_publisher.is_none()
}

/// Records `reviewer`'s decision on submission `id`.
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown submission; 403 `self_review` if the reviewer is a member
/// of the submission's publisher; 409 `not_in_review` if it is not (or no longer) in review;
/// 400 for a missing reason or reason code.
pub async fn decide(
    state: &AppState,
    reviewer: Reviewer<'_>,
    id: &str,
    decision: Decision,
    reason: Option<&str>,
    reason_code: Option<&str>,
) -> Result<Submission> {
    let db = state.db();
    let (reason, reason_code) = check_reason(decision, reason, reason_code)?;
    let submission = submissions::get(db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("submission {id:?}")))?;
    if !may_judge(db, &reviewer, &submission.publisher_id).await? {
        return Err(Error::forbidden(
            "self_review",
            format!(
                "you are a member of publisher {:?}; another reviewer must decide on its submissions",
                submission.namespace
            ),
        ));
    }
    let not_in_review = |status: &str| {
        Error::conflict(
            "not_in_review",
            format!("submission {id} is {status}, not in review; it cannot be decided again"),
        )
    };
    if submission.status != IN_REVIEW {
        return Err(not_in_review(&submission.status));
    }
    record(
        state,
        &Decider::Reviewer(reviewer.id.clone()),
        submission,
        decision,
        reason,
        reason_code,
    )
    .await
}

/// Who decided on a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decider {
    /// A reviewer, by user id.
    Reviewer(String),
    /// No one: the operator (by user id) who waived review of the publisher's private plugins.
    Waiver(String),
}

/// Approves `submission`, a private plugin's version from a publisher whose review an operator
/// waived (see [`crate::publishers::waiver`]), as soon as it passed validation. Audited as the
/// system's approval under that operator's waiver.
///
/// # Errors
///
/// 409 `not_in_review`; [`Error::Database`].
pub async fn approve_waived(
    state: &AppState,
    submission: Submission,
    waived_by: String,
) -> Result<Submission> {
    if submission.status != IN_REVIEW {
        return Err(Error::conflict(
            "not_in_review",
            format!(
                "submission {} is {}, not in review",
                submission.id, submission.status
            ),
        ));
    }
    record(
        state,
        &Decider::Waiver(waived_by),
        submission,
        Decision::Approve,
        "Review waived by an operator for this publisher's private plugins.".to_owned(),
        None,
    )
    .await
}

/// Compiles an approved package into the host's cache in the background, so that the first
/// install of it loads a compiled component instead of compiling inside the install request
/// (seconds for a component built by a language runtime). The submission's compile check has
/// usually left it there already: then nothing is done. Without a host, nothing.
fn warm_compiled_cache(state: &AppState, package: plinth_package::Package) {
    let Ok(runtime) = state.runtime() else { return };
    let host = std::sync::Arc::clone(&runtime.host);
    tokio::task::spawn_blocking(move || {
        if host.is_compiled(&package.wasm) {
            return;
        }
        let plugin = format!(
            "{}@{}",
            package.manifest.plugin.id, package.manifest.plugin.version
        );
        if let Err(error) = host.check_compiles(&package) {
            tracing::warn!(%plugin, %error, "the approved component does not compile here");
        }
    });
}

/// Records `decider`'s decision on `submission` (in review): one transaction.
async fn record(
    state: &AppState,
    decider: &Decider,
    submission: Submission,
    decision: Decision,
    reason: String,
    reason_code: Option<String>,
) -> Result<Submission> {
    let db = state.db();
    let id = submission.id.as_str();
    let (decided_by, actor) = match decider {
        Decider::Reviewer(user_id) => (user_id.clone(), crate::audit::Actor::User(user_id.clone())),
        Decider::Waiver(operator_id) => (operator_id.clone(), crate::audit::Actor::System),
    };
    let not_in_review = |status: &str| {
        Error::conflict(
            "not_in_review",
            format!("submission {id} is {status}, not in review; it cannot be decided again"),
        )
    };
    let now = now_ms();
    // For an approval, countersign and write the package before the transaction (CPU work).
    let approved = if decision == Decision::Approve {
        let mut package =
            submissions::stored_package(db, state.settings(), submission.artifact()?).await?;
        package.countersign(state.signing_key(), now / 1000);
        let (package, bytes) = tokio::task::spawn_blocking(move || {
            let bytes = package.to_bytes();
            (package, bytes)
        })
        .await
        .map_err(|e| Error::Internal(format!("countersigning: {e}")))?;
        let bytes = bytes.map_err(|e| Error::Internal(format!("writing the package: {e}")))?;
        Some((package, bytes))
    } else {
        None
    };

    let mut tx = db.begin().await?;
    let updated = sqlx::query(
        "UPDATE submissions SET status = $1, decided_at = $2, decided_by = $3, \
             reason_code = $4, reason = $5 \
         WHERE id = $6 AND status = 'in_review'",
    )
    .bind(decision.status())
    .bind(now)
    .bind(&decided_by)
    .bind(reason_code.clone())
    .bind(&reason)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        tx.rollback().await?;
        let status = submissions::get(db, id)
            .await?
            .map_or_else(|| "gone".to_owned(), |s| s.status);
        return Err(not_in_review(&status));
    }
    let mut payload = serde_json::json!({
        "submission": id,
        "plugin": submission.plugin_id,
        "version": submission.version,
        "decision": decision.as_str(),
        "reason_code": reason_code,
        "reason": reason,
    });
    if let Decider::Waiver(operator_id) = decider {
        payload["review_waived_by"] = serde_json::Value::String(operator_id.clone());
    }
    if let Some((package, bytes)) = &approved {
        let artifact = submissions::store_artifact(&mut tx, bytes, now).await?;
        crate::catalog::publish_version(
            &mut tx,
            package,
            &submission.publisher_id,
            id,
            &artifact,
            now,
        )
        .await?;
        payload["artifact_sha256"] = serde_json::Value::String(artifact);
        if crate::versions::control::review_passed(&mut tx, &submission.plugin_id).await? {
            payload["full_review_passed"] = serde_json::Value::Bool(true);
        }
    }
    let held = payload["full_review_passed"] == serde_json::Value::Bool(true);
    let message = match decision {
        Decision::Approve => format!(
            "{} {} was approved and is published: {reason}",
            submission.plugin_id, submission.version
        ),
        Decision::Reject => format!(
            "{} {} was rejected ({}): {reason}",
            submission.plugin_id,
            submission.version,
            reason_code.as_deref().unwrap_or("no code")
        ),
        Decision::RequestChanges => format!(
            "{} {}: the reviewer asks for changes: {reason}",
            submission.plugin_id, submission.version
        ),
    };
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor,
            action: decision.audit_action(),
            tenant_id: None,
            subject: format!("plugin:{}@{}", submission.plugin_id, submission.version),
            details: payload.clone(),
        },
    )
    .await?;
    crate::notifications::notify(
        &mut tx,
        "publisher",
        &submission.publisher_id,
        "review_decided",
        &message,
        payload,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(submission = %id, decided_by = %decided_by, waived = matches!(decider, Decider::Waiver(_)), decision = decision.as_str(), "review decided");
    if let Some((package, _)) = approved {
        warm_compiled_cache(state, package);
    }
    if decision == Decision::Approve {
        // Each install's update is its own transaction, after the approval committed.
        crate::versions::updates::after_approval(
            state,
            &submission.plugin_id,
            &submission.version,
            held,
        )
        .await;
    }
    submissions::get(db, id)
        .await?
        .ok_or_else(|| Error::Internal("submission vanished".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_checked() {
        assert_eq!(
            check_reason(Decision::Approve, Some("  "), None)
                .unwrap_err()
                .code(),
            "reason_required"
        );
        assert_eq!(
            check_reason(Decision::Reject, Some("bad"), None)
                .unwrap_err()
                .code(),
            "invalid_reason_code"
        );
        assert_eq!(
            check_reason(Decision::Reject, Some("bad"), Some("ugly"))
                .unwrap_err()
                .code(),
            "invalid_reason_code"
        );
        let (reason, code) = check_reason(Decision::Reject, Some(" bad "), Some("broken")).unwrap();
        assert_eq!((reason.as_str(), code.as_deref()), ("bad", Some("broken")));
        assert!(check_reason(Decision::RequestChanges, Some("fix it"), None).is_ok());
    }
}
