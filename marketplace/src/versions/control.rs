//! Change of control: when a publisher gains an owner or a signing key, whoever now controls
//! it could ship anything under a name tenants trust. So each of its plugins is flagged: the
//! next version needs a full review (the review queue says so), automatic updates of the
//! plugin pause (the version approved in that review is not applied automatically either; see
//! [`super::updates`]), and every tenant with an install is notified.
//!
//! A publisher without plugins yet has nothing to flag (its first key or co-owner changes
//! nothing anyone runs).

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use utoipa::ToSchema;

use crate::audit::Actor;
use crate::clock::{now_ms, rfc3339};
use crate::db::{Db, Tx};
use crate::error::Result;
use crate::notifications::notify;

/// Why a change of control happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A member was added as owner.
    NewOwner,
    /// A signing key was registered.
    NewSigningKey,
}

impl Change {
    /// The reason as stored and shown: `new_owner` or `new_signing_key`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::NewOwner => "new_owner",
            Change::NewSigningKey => "new_signing_key",
        }
    }

    fn sentence(self) -> &'static str {
        match self {
            Change::NewOwner => "gained a new owner",
            Change::NewSigningKey => "registered a new signing key",
        }
    }
}

/// Records a change of control of publisher `publisher_id` in `tx` (the transaction that adds
/// the owner or key): flags its plugins, audits, and notifies the publisher and every tenant
/// with an install of one of its plugins. Returns how many plugins were flagged.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn changed(
    tx: &mut Tx,
    actor: &Actor,
    publisher_id: &str,
    change: Change,
) -> Result<u64> {
    let now = now_ms();
    let flagged = sqlx::query(
        "UPDATE plugins SET full_review_reason = $1, full_review_since = $2 WHERE publisher_id = $3",
    )
    .bind(change.as_str())
    .bind(now)
    .bind(publisher_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if flagged == 0 {
        return Ok(0);
    }
    let plugins: Vec<String> =
        sqlx::query_scalar("SELECT id FROM plugins WHERE publisher_id = $1 ORDER BY id")
            .bind(publisher_id)
            .fetch_all(&mut **tx)
            .await?;
    let namespace: String = sqlx::query("SELECT namespace FROM publishers WHERE id = $1")
        .bind(publisher_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    let details = json!({"reason": change.as_str(), "plugins": plugins});
    crate::audit::record(
        tx,
        crate::audit::Entry {
            actor: actor.clone(),
            action: "publisher.control_changed",
            tenant_id: None,
            subject: format!("publisher:{namespace}"),
            details: details.clone(),
        },
    )
    .await?;
    notify(
        tx,
        "publisher",
        publisher_id,
        "control_changed",
        &format!(
            "Publisher {namespace} {}: the next version of each of its plugins gets a full review, \
             and automatic updates pause until then.",
            change.sentence()
        ),
        details.clone(),
    )
    .await?;
    let tenants: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT i.tenant_id FROM installs i JOIN plugins p ON p.id = i.plugin_id \
         JOIN tenants t ON t.id = i.tenant_id \
         WHERE p.publisher_id = $1 AND t.deleted_at IS NULL ORDER BY i.tenant_id",
    )
    .bind(publisher_id)
    .fetch_all(&mut **tx)
    .await?;
    for tenant_id in tenants {
        notify(
            tx,
            "tenant",
            &tenant_id,
            "control_changed",
            &format!(
                "The publisher of plugins you run ({namespace}) {}. Their next versions get a \
                 full review before they are published, and automatic updates pause until then.",
                change.sentence()
            ),
            details.clone(),
        )
        .await?;
    }
    tracing::warn!(publisher = %namespace, reason = change.as_str(), flagged, "change of control");
    Ok(flagged)
}

/// A version approved for `plugin_id` in `tx` passes the full review a change of control
/// asked for: clears the flag. Returns whether it was set.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn review_passed(tx: &mut Tx, plugin_id: &str) -> Result<bool> {
    let cleared = sqlx::query(
        "UPDATE plugins SET full_review_reason = NULL, full_review_since = NULL \
         WHERE id = $1 AND full_review_reason IS NOT NULL",
    )
    .bind(plugin_id)
    .execute(&mut **tx)
    .await?;
    Ok(cleared.rows_affected() == 1)
}

/// Why a plugin's next version needs a full review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FullReview {
    /// `new_owner` or `new_signing_key`.
    pub reason: String,
    /// When control changed (RFC 3339).
    pub since: String,
}

/// The full review `plugin_id`'s next version needs, if any.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn full_review(db: &Db, plugin_id: &str) -> Result<Option<FullReview>> {
    let row = sqlx::query(
        "SELECT full_review_reason, full_review_since FROM plugins WHERE id = $1 \
         AND full_review_reason IS NOT NULL",
    )
    .bind(plugin_id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(FullReview {
            reason: row.try_get(0)?,
            since: rfc3339(row.try_get::<Option<i64>, _>(1)?.unwrap_or_default()),
        })
    })
    .transpose()
}
