//! `/review`: the review queue, oldest first, with findings, the permission diff against the
//! last approved version, the manifest, and approve / reject / request changes with a reason.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use plinth_marketplace::clock::rfc3339;
use plinth_marketplace::review::{self, Decision, REASON_CODES};
use plinth_marketplace::{AppState, submissions};
use serde::Deserialize;

use super::developer::report_table;
use super::permission_item;
use crate::error::ConsoleError;
use crate::form::Posted;
use crate::layout::{csrf_field, notice, page, see_other};
use crate::session::Viewer;

/// How many submissions the queue shows at once.
const QUEUE_PAGE: i64 = 50;

/// `GET /review`.
pub async fn queue(State(state): State<AppState>, viewer: Viewer) -> Result<Markup, ConsoleError> {
    let principal = viewer.require()?;
    let reviewer = principal.reviewer()?;
    let db = state.db();
    let mut items = Vec::new();
    for submission in submissions::in_review(db, QUEUE_PAGE).await? {
        let (diff, permissions) = review::permission_diff(db, &submission).await?;
        let own = !review::may_judge(db, &reviewer, &submission.publisher_id).await?;
        let form_id = format!("decide-{}", submission.id);
        items.push(html! {
            article.panel.review-item aria-labelledby=(format!("{form_id}-title")) {
                h2 #(format!("{form_id}-title")) { (submission.plugin_id) " " (submission.version) }
                p.meta { span { "by " (submission.namespace) } span { "submitted " (rfc3339(submission.created_at)) } }
                h3 { "Permission changes since the last approved version" }
                @if diff.added.is_empty() && diff.removed.is_empty() { p { "No change." } }
                ul.permissions {
                    @for grant in &diff.added { li.added { strong { "Added: " } (permission_item(grant.risk, &grant.sentence)) } }
                    @for grant in &diff.removed { li.removed { strong { "Removed: " } (permission_item(grant.risk, &grant.sentence)) } }
                }
                h3 { "Everything it asks for" }
                ul.permissions {
                    @for grant in permissions.describe() { li { (permission_item(grant.risk, &grant.sentence)) } }
                }
                h3 { "Validation findings" }
                (report_table(&submission.report))
                details { summary { "Manifest" } pre { code { (submission.manifest) } } }
                @if own {
                    p.hint { "You are a member of this publisher: another reviewer must decide." }
                } @else {
                    form #(form_id) method="post" action=(format!("/review/{}", submission.id)) {
                        (csrf_field(&viewer))
                        fieldset {
                            legend { "Decision" }
                            label.check { input type="radio" name="decision" value="approve" required; span { "Approve and publish" } }
                            label.check { input type="radio" name="decision" value="request_changes"; span { "Request changes" } }
                            label.check { input type="radio" name="decision" value="reject"; span { "Reject" } }
                        }
                        label for=(format!("{form_id}-code")) { "Reason code (needed to reject)" }
                        select #(format!("{form_id}-code")) name="reason_code" {
                            option value="" { "None" }
                            @for code in REASON_CODES { option value=(code) { (code) } }
                        }
                        label for=(format!("{form_id}-reason")) { "Reason, for the publisher (required)" }
                        textarea #(format!("{form_id}-reason")) name="reason" required {}
                        button type="submit" { "Record decision" }
                    }
                }
            }
        });
    }
    Ok(page(
        &viewer,
        "Review queue",
        html! {
            h1 { "Review queue" }
            p.hint { "Oldest first." }
            @if items.is_empty() { (notice("The queue is empty.")) }
            @for item in items { (item) }
        },
    ))
}

/// What the decision form posts.
#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    decision: Option<String>,
    reason: Option<String>,
    reason_code: Option<String>,
}

/// `POST /review/{id}`: records the decision through the same service as the API.
pub async fn decide(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Posted(form): Posted<DecisionForm>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let reviewer = principal.reviewer()?;
    let decision = Decision::parse(form.decision.as_deref().unwrap_or_default())?;
    let reason_code = form.reason_code.as_deref().filter(|code| !code.is_empty());
    review::decide(
        &state,
        reviewer,
        &id,
        decision,
        form.reason.as_deref(),
        reason_code,
    )
    .await?;
    Ok(see_other("/review"))
}
