//! `POST /v1/submissions`, `GET /v1/submissions/{id}`, `GET /v1/publishers/{ns}/submissions`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{APPROVED, CHANGES_REQUESTED, REJECTED, Submission, Submitted};
use crate::auth::Principal;
use crate::clock::rfc3339;
use crate::db::Db;
use crate::error::{ApiError, Error, Result};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(get_submission))
        .routes(routes!(list_submissions))
}

/// One validation finding.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct FindingView {
    /// `error` or `warning`.
    severity: String,
    code: String,
    message: String,
}

/// A validation report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ReportView {
    findings: Vec<FindingView>,
}

impl From<&plinth_package::Report> for ReportView {
    fn from(report: &plinth_package::Report) -> ReportView {
        ReportView {
            findings: report
                .findings
                .iter()
                .map(|f| FindingView {
                    severity: f.severity.to_string(),
                    code: f.code.clone(),
                    message: f.message.clone(),
                })
                .collect(),
        }
    }
}

/// A submission, as its publisher and reviewers see it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubmissionView {
    id: String,
    /// The plugin id.
    plugin: String,
    version: String,
    /// The publisher's namespace.
    publisher: String,
    /// The package digest, `sha256:<hex>`.
    digest: String,
    /// `in_review`, `rejected_by_validation`, `approved`, `rejected` or `changes_requested`.
    status: String,
    report: ReportView,
    /// RFC 3339, UTC.
    submitted_at: String,
    /// 1-based place in the review queue (oldest first); null when not in review.
    queue_position: Option<i64>,
    /// Median seconds from submission to decision over the last 30 days; null if none.
    median_review_seconds: Option<i64>,
    /// `approve`, `reject` or `request_changes`; null until decided.
    decision: Option<String>,
    /// For a rejection: `malicious`, `permissions_unjustified`, `broken`, `policy` or `metadata`.
    reason_code: Option<String>,
    /// The reviewer's reason.
    reason: Option<String>,
    /// RFC 3339, UTC; null until decided.
    decided_at: Option<String>,
}

impl SubmissionView {
    /// The view of `submission`, with its queue position and the current median.
    pub(crate) async fn build(
        db: &Db,
        submission: Submission,
        median_review_seconds: Option<i64>,
    ) -> Result<SubmissionView> {
        let queue_position = super::queue_position(db, &submission).await?;
        let decision = match submission.status.as_str() {
            APPROVED => Some("approve"),
            REJECTED => Some("reject"),
            CHANGES_REQUESTED => Some("request_changes"),
            _ => None,
        };
        Ok(SubmissionView {
            report: ReportView::from(&submission.report),
            id: submission.id,
            plugin: submission.plugin_id,
            version: submission.version,
            publisher: submission.namespace,
            digest: submission.digest,
            status: submission.status,
            submitted_at: rfc3339(submission.created_at),
            queue_position,
            median_review_seconds,
            decision: decision.map(str::to_owned),
            reason_code: submission.reason_code,
            reason: submission.reason,
            decided_at: submission.decided_at.map(rfc3339),
        })
    }
}

/// A list of submissions.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubmissionList {
    /// Newest first.
    items: Vec<SubmissionView>,
}

/// Submits a package (the `.plinth` bytes) for review. Validation runs at once; the report is
/// in the answer. Submitting the same package again answers the existing submission (200).
/// A package that fails validation is answered with its report and not kept. A publisher has
/// at most the operator's limits of submissions in review and of stored package bytes (409
/// `review_limit_reached`, `storage_limit_reached`, with the limit in `details`).
#[utoipa::path(post, path = "/v1/submissions", tag = "submissions", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The .plinth package"),
    responses((status = 201, body = SubmissionView), (status = 200, body = SubmissionView, description = "The same package was submitted before"),
        (status = 400, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError), (status = 413, body = ApiError)))]
async fn submit(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<SubmissionView>)> {
    let limit = state.settings().max_package_bytes();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::PayloadTooLarge { limit });
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            Error::PayloadTooLarge { limit }
        } else {
            Error::bad_request("invalid_body", format!("the upload could not be read: {e}"))
        }
    })?;
    let submitted = super::submit_package(&state, &principal, bytes.to_vec()).await?;
    let median = super::median_review_seconds(state.db()).await?;
    let (status, submission) = match submitted {
        Submitted::Created(s) => (StatusCode::CREATED, s),
        Submitted::Existing(s) => (StatusCode::OK, s),
    };
    Ok((
        status,
        Json(SubmissionView::build(state.db(), submission, median).await?),
    ))
}

/// A submission: its status, report, queue position and decision.
#[utoipa::path(get, path = "/v1/submissions/{id}", tag = "submissions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Submission id")),
    responses((status = 200, body = SubmissionView), (status = 404, body = ApiError)))]
async fn get_submission(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<SubmissionView>> {
    let submission = super::visible(state.db(), &principal, &id).await?;
    let median = super::median_review_seconds(state.db()).await?;
    Ok(Json(
        SubmissionView::build(state.db(), submission, median).await?,
    ))
}

/// The publisher's submissions, newest first (members only).
#[utoipa::path(get, path = "/v1/publishers/{ns}/submissions", tag = "submissions", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")),
    responses((status = 200, body = SubmissionList), (status = 404, body = ApiError)))]
async fn list_submissions(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
) -> Result<Json<SubmissionList>> {
    let publisher = crate::publishers::access(state.db(), &principal, &ns).await?;
    let median = super::median_review_seconds(state.db()).await?;
    let mut items = Vec::new();
    for submission in super::list_for_publisher(state.db(), &publisher.id).await? {
        items.push(SubmissionView::build(state.db(), submission, median).await?);
    }
    Ok(Json(SubmissionList { items }))
}
