//! `/operator/tenants/{slug}/suspension`: whether a tenant is suspended and why, with a form to
//! suspend it (with a reason) or to lift its suspension. Operators only: the suspension service
//! checks the role and the reason; the page shows its answer.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::billing::suspension;
use plinth_marketplace::tenants::{self, TenantRole};
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::form::Posted;
use crate::layout::{csrf_field, form_error, notice, page};
use crate::session::Viewer;

/// The page for tenant `slug`, with `message` (a notice, or an error) at the top.
async fn render(
    state: &AppState,
    viewer: &Viewer,
    slug: &str,
    message: Option<Result<String, String>>,
) -> Result<Markup, ConsoleError> {
    let principal = viewer.require()?;
    // Operators only, as the operator page (the service checks again when acting).
    principal.operator()?;
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Owner).await?;
    let base = format!("/operator/tenants/{}/suspension", tenant.slug);
    Ok(page(
        viewer,
        &format!("Suspension of {}", tenant.name),
        html! {
            h1 { "Suspension of " (tenant.name) }
            p { a href="/operator" { "Back to the operator page" } " · " a href=(format!("/tenants/{}/billing", tenant.slug)) { "The tenant's subscription" } }
            @match &message {
                Some(Ok(text)) => (notice(text)),
                Some(Err(text)) => (form_error(text)),
                None => {}
            }
            section.panel aria-labelledby="suspension-title" {
                h2 #suspension-title { "Suspension" }
                @match suspension::refusal(&tenant) {
                    Some(refusal) => {
                        p #suspension-status.warning {
                            "Suspended"
                            @if let Some(reason) = &tenant.suspended_reason { " (" (reason) ")" }
                            ": " (refusal.to_string())
                        }
                        form #unsuspend method="post" action=(format!("{base}/lift"))
                            data-confirm=(format!("Lift the suspension of {}? Its plugins run again at once.", tenant.slug)) {
                            (csrf_field(viewer))
                            button type="submit" { "Lift the suspension" }
                        }
                    },
                    None => {
                        p #suspension-status.status-ok { "Not suspended: its plugins run." }
                        form #suspend method="post" action=(base)
                            data-confirm=(format!("Suspend {}? Its plugins stop running until you lift it.", tenant.slug)) {
                            (csrf_field(viewer))
                            label for="suspend-reason" { "Reason (the tenant is told)" }
                            textarea #suspend-reason name="reason" required maxlength="500" {}
                            button.danger type="submit" { "Suspend" }
                        }
                    },
                }
            }
        },
    ))
}

/// `GET /operator/tenants/{slug}/suspension`.
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Result<Markup, ConsoleError> {
    render(&state, &viewer, &slug, None).await
}

/// The page again with the outcome of an action: the service's refusals (400, 409) are shown
/// in it; anything else is the console's error page.
async fn outcome(
    state: &AppState,
    viewer: &Viewer,
    slug: &str,
    result: Result<String, plinth_marketplace::Error>,
) -> Result<Response, ConsoleError> {
    match result {
        Ok(text) => Ok(render(state, viewer, slug, Some(Ok(text)))
            .await?
            .into_response()),
        Err(error) => {
            let error = ConsoleError::from(error);
            let status = error.status();
            if !matches!(status, StatusCode::BAD_REQUEST | StatusCode::CONFLICT) {
                return Err(error);
            }
            let page = render(state, viewer, slug, Some(Err(error.message()))).await?;
            Ok((status, page).into_response())
        }
    }
}

/// What the suspend form posts.
#[derive(Debug, Deserialize)]
pub struct SuspendForm {
    #[serde(default)]
    reason: String,
}

/// `POST /operator/tenants/{slug}/suspension`: suspends the tenant.
pub async fn suspend(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Posted(form): Posted<SuspendForm>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let result = suspension::suspend(&state, principal, &slug, &form.reason)
        .await
        .map(|tenant| {
            tracing::info!(tenant = %tenant.slug, "tenant suspended from the console");
            format!(
                "{} is suspended; its plugins do not run until you lift it.",
                tenant.slug
            )
        });
    outcome(&state, &viewer, &slug, result).await
}

/// `POST /operator/tenants/{slug}/suspension/lift`: lifts the tenant's suspension.
pub async fn unsuspend(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let result = suspension::unsuspend(&state, principal, &slug)
        .await
        .map(|tenant| {
            tracing::info!(tenant = %tenant.slug, "tenant suspension lifted from the console");
            format!(
                "{}'s suspension is lifted; its plugins run again.",
                tenant.slug
            )
        });
    outcome(&state, &viewer, &slug, result).await
}
