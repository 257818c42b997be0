//! Review waivers: an operator may let a publisher's **private** plugins skip human review (an
//! organisation publishing its own plugins to its own tenants). Automated validation still
//! applies: a waived submission that passes it is approved at once, in the submission request.
//! Public plugins are always reviewed. Setting and lifting a waiver is audited.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::by_namespace;
use crate::audit::Actor;
use crate::auth::Operator;
use crate::clock::{now_ms, rfc3339};
use crate::db::Db;
use crate::error::{Error, Result};

/// A publisher's review waiver as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WaiverView {
    /// The publisher's namespace.
    pub publisher: String,
    /// Whether its private plugins skip human review.
    pub waived: bool,
    /// Since when (RFC 3339), while waived.
    pub waived_at: Option<String>,
}

/// The operator (user id) who waived review for publisher `publisher_id`, if it is waived.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn waived_by(db: &Db, publisher_id: &str) -> Result<Option<String>> {
    let waived: Option<Option<String>> = sqlx::query_scalar(
        "SELECT review_waived_by FROM publishers WHERE id = $1 AND review_waived_at IS NOT NULL",
    )
    .bind(publisher_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(waived.flatten())
}

/// Sets or lifts the review waiver of publisher `namespace` (an operator's call), with a
/// reason. Audited.
///
/// # Errors
///
/// 404 for an unknown publisher; 400 `reason_required` without a reason.
pub async fn set(
    db: &Db,
    operator: Operator<'_>,
    namespace: &str,
    waived: bool,
    reason: Option<&str>,
) -> Result<WaiverView> {
    let reason = crate::versions::check_text("reason", reason)?;
    let publisher = by_namespace(db, namespace)
        .await?
        .ok_or_else(|| Error::not_found(format!("publisher {namespace:?}")))?;
    let now = now_ms();
    let (at, by) = if waived {
        (Some(now), Some(operator.id.clone()))
    } else {
        (None, None)
    };
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE publishers SET review_waived_at = $1, review_waived_by = $2 WHERE id = $3")
        .bind(at)
        .bind(&by)
        .bind(&publisher.id)
        .execute(&mut *tx)
        .await?;
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor: Actor::User(operator.id.clone()),
            action: if waived {
                "publisher.review_waived"
            } else {
                "publisher.review_required"
            },
            tenant_id: None,
            subject: format!("publisher:{namespace}"),
            details: json!({"publisher": namespace, "reason": reason}),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(publisher = namespace, waived, "review waiver changed");
    Ok(WaiverView {
        publisher: namespace.to_owned(),
        waived,
        waived_at: at.map(rfc3339),
    })
}
