//! Staged rollouts in the console: the table publishers see in the developer portal and
//! operators on their dashboard, and its pause / resume / halt forms. The rules are the
//! rollout service's (`versions::rollout`); this page only translates.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::versions::rollout::{self, RolloutView};
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::form::Posted;
use crate::layout::{csrf_field, see_other};
use crate::session::Viewer;

/// Where a rollout form returns to: the page it was posted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Back {
    /// The developer portal.
    Developer,
    /// The operator dashboard.
    Operator,
}

impl Back {
    fn path(self) -> &'static str {
        match self {
            Back::Developer => "/developer",
            Back::Operator => "/operator",
        }
    }

    fn parse(text: &str) -> Back {
        if text == "operator" {
            Back::Operator
        } else {
            Back::Developer
        }
    }

    fn name(self) -> &'static str {
        match self {
            Back::Developer => "developer",
            Back::Operator => "operator",
        }
    }
}

/// The table of `rollouts` with their forms, returning to `back`.
pub fn panel(viewer: &Viewer, rollouts: &[RolloutView], back: Back) -> Markup {
    html! {
        h3 { "Staged rollouts" }
        @if rollouts.is_empty() {
            p { "No rollout. Schedule one for a version before its approval (PUT /v1/plugins/{id}/versions/{v}/rollout)." }
        } @else {
            div.table-wrap {
                table.stack.rollouts {
                    thead { tr {
                        th scope="col" { "Plugin" } th scope="col" { "Version" } th scope="col" { "State" }
                        th scope="col" { "Reached" } th scope="col" { "Next stage" } th scope="col" { "Updated" }
                        th scope="col" { "Act" }
                    } }
                    tbody {
                        @for rollout in rollouts {
                            (row(viewer, rollout, back))
                        }
                    }
                }
            }
        }
    }
}

fn row(viewer: &Viewer, rollout: &RolloutView, back: Back) -> Markup {
    let action = |verb: &str| format!("/rollouts/{}/{}/{verb}", rollout.plugin, rollout.version);
    let label = format!("{} {}", rollout.plugin, rollout.version);
    html! {
        tr data-rollout=(label) {
            td data-label="Plugin" { (rollout.plugin) }
            td data-label="Version" { (rollout.version) }
            td data-label="State" {
                span.tag { (rollout.state) }
                @if let Some(reason) = &rollout.reason { p.hint { (reason) } }
            }
            td data-label="Reached" { (rollout.percent) "% (stage " (rollout.stage) " of " (rollout.stages.len()) ")" }
            td data-label="Next stage" { (rollout.next_stage_at.as_deref().unwrap_or("—")) }
            td data-label="Updated" { (rollout.updated_installs) " installs" }
            td data-label="Act" {
                @if rollout.state == "active" {
                    form.inline method="post" action=(action("pause")) {
                        (csrf_field(viewer))
                        input type="hidden" name="back" value=(back.name());
                        label.visually-hidden for=(format!("pause-{label}")) { "Why pause " (label) }
                        input id=(format!("pause-{label}")) type="text" name="reason" required placeholder="Why pause";
                        button.secondary type="submit" { "Pause" }
                    }
                }
                @if rollout.state == "paused" {
                    form.inline method="post" action=(action("resume")) {
                        (csrf_field(viewer))
                        input type="hidden" name="back" value=(back.name());
                        button.secondary type="submit" aria-label=(format!("Resume {label}")) { "Resume" }
                    }
                }
                @if rollout.state != "halted" {
                    form.inline method="post" action=(action("halt"))
                        data-confirm="Halt this rollout for good and roll back every install it updated?" {
                        (csrf_field(viewer))
                        input type="hidden" name="back" value=(back.name());
                        label.visually-hidden for=(format!("halt-{label}")) { "Why halt " (label) }
                        input id=(format!("halt-{label}")) type="text" name="reason" required placeholder="Why halt";
                        button.danger type="submit" { "Halt and roll back" }
                    }
                }
            }
        }
    }
}

/// What a rollout form posts.
#[derive(Debug, Deserialize)]
pub struct RolloutForm {
    /// `developer` or `operator`: the page to return to.
    back: String,
    /// Why (pause and halt).
    reason: Option<String>,
}

/// `POST /rollouts/{plugin}/{version}/{action}`: pause, resume or halt, through the same
/// services as the API.
pub async fn act(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((plugin, version, action)): Path<(String, String, String)>,
    Posted(form): Posted<RolloutForm>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let reason = form.reason.as_deref();
    match action.as_str() {
        "pause" => {
            rollout::pause(state.db(), principal, &plugin, &version, reason).await?;
        }
        "resume" => {
            rollout::resume(state.db(), principal, &plugin, &version).await?;
        }
        "halt" => {
            rollout::halt(&state, principal, &plugin, &version, reason).await?;
        }
        other => {
            return Err(plinth_marketplace::Error::bad_request(
                "invalid_action",
                format!("unknown rollout action {other:?}; pause, resume or halt"),
            )
            .into());
        }
    }
    let back = Back::parse(&form.back);
    Ok(see_other(&format!("{}?done=rollout", back.path())))
}
