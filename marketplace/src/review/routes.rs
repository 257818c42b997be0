//! `GET /v1/review/queue` and `POST /v1/submissions/{id}/decision`.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Decision;
use crate::auth::Principal;
use crate::body::JsonBody;
use crate::catalog::PermissionView;
use crate::clock::rfc3339;
use crate::error::{ApiError, Result};
use crate::state::AppState;
use crate::submissions::routes::{ReportView, SubmissionView};

/// The most submissions one queue listing shows.
const QUEUE_PAGE: i64 = 100;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue))
        .routes(routes!(decide))
}

/// Grants added and removed against the last approved version.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DiffView {
    added: Vec<PermissionView>,
    removed: Vec<PermissionView>,
}

/// A submission waiting for review.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueueItem {
    id: String,
    /// The plugin id.
    plugin: String,
    version: String,
    /// The publisher's namespace.
    publisher: String,
    /// RFC 3339, UTC.
    submitted_at: String,
    /// Against the last approved version; everything is added for a first version.
    permission_diff: DiffView,
    report: ReportView,
    /// Everything this version asks for.
    permissions: Vec<PermissionView>,
    /// The uploaded package's size.
    size_bytes: i64,
    /// The package's README.md, if any.
    readme: Option<String>,
    /// `plinth.toml` as submitted.
    manifest: String,
    /// Whether the caller is a member of the publisher (and so may not decide).
    own_publisher: bool,
    /// Set when the publisher changed control (new owner or signing key): this version needs a
    /// full review whatever its permissions, and automatic updates wait for it.
    full_review: Option<crate::versions::control::FullReview>,
}

/// The review queue.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Queue {
    /// Oldest first.
    items: Vec<QueueItem>,
}

/// The submissions in review, oldest first (reviewers and operators).
#[utoipa::path(get, path = "/v1/review/queue", tag = "review", security(("bearer" = [])),
    responses((status = 200, body = Queue), (status = 403, body = ApiError)))]
async fn queue(State(state): State<AppState>, principal: Principal) -> Result<Json<Queue>> {
    let reviewer = principal.reviewer()?;
    let db = state.db();
    let mut items = Vec::new();
    for submission in crate::submissions::in_review(db, QUEUE_PAGE).await? {
        let (diff, permissions) = super::permission_diff(db, &submission).await?;
        let package =
            crate::submissions::stored_package(db, state.settings(), submission.artifact()?)
                .await?;
        let size_bytes = crate::submissions::artifact_size(db, submission.artifact()?)
            .await?
            .unwrap_or_default();
        let own_publisher = !super::may_judge(db, &reviewer, &submission.publisher_id).await?;
        let full_review = crate::versions::control::full_review(db, &submission.plugin_id).await?;
        items.push(QueueItem {
            report: ReportView::from(&submission.report),
            id: submission.id,
            plugin: submission.plugin_id,
            version: submission.version,
            publisher: submission.namespace,
            submitted_at: rfc3339(submission.created_at),
            permission_diff: DiffView {
                added: diff.added.into_iter().map(PermissionView::from).collect(),
                removed: diff.removed.into_iter().map(PermissionView::from).collect(),
            },
            permissions: permissions
                .describe()
                .into_iter()
                .map(PermissionView::from)
                .collect(),
            size_bytes,
            readme: package.readme,
            manifest: submission.manifest,
            own_publisher,
            full_review,
        });
    }
    Ok(Json(Queue { items }))
}

/// `POST /v1/submissions/{id}/decision`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionBody {
    /// `approve`, `reject` or `request_changes`.
    decision: String,
    /// Why, for the publisher; required.
    reason: Option<String>,
    /// Required for `reject`: `malicious`, `permissions_unjustified`, `broken`, `policy` or
    /// `metadata`.
    reason_code: Option<String>,
}

/// Decides on a submission in review (reviewers and operators; not one's own publisher's).
/// Approval countersigns the package and publishes the version.
#[utoipa::path(post, path = "/v1/submissions/{id}/decision", tag = "review", security(("bearer" = [])),
    params(("id" = String, Path, description = "Submission id")), request_body = DecisionBody,
    responses((status = 200, body = SubmissionView), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn decide(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DecisionBody>,
) -> Result<Json<SubmissionView>> {
    let reviewer = principal.reviewer()?;
    let decision = Decision::parse(&body.decision)?;
    let submission = super::decide(
        &state,
        reviewer,
        &id,
        decision,
        body.reason.as_deref(),
        body.reason_code.as_deref(),
    )
    .await?;
    let median = crate::submissions::median_review_seconds(state.db()).await?;
    Ok(Json(
        SubmissionView::build(state.db(), submission, median).await?,
    ))
}
