//! Staged rollouts in the console: the table publishers see in the developer portal and
//! operators on their dashboard, and its pause / resume / halt forms. The rules are the
//! rollout service's (`versions::rollout`); this page only translates.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::versions::rollout::{self, RolloutView, Stage};
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

/// The table of `rollouts` with their forms, returning to `back`, and a form to schedule one
/// for any of `plugins` (none: no form).
pub fn panel(viewer: &Viewer, rollouts: &[RolloutView], back: Back, plugins: &[String]) -> Markup {
    html! {
        h3 { "Staged rollouts" }
        @if !plugins.is_empty() {
            form.schedule-rollout method="post" action="/rollouts" {
                (csrf_field(viewer))
                input type="hidden" name="back" value=(back.name());
                label for="rollout-plugin" { "Plugin" }
                select #rollout-plugin name="plugin" required {
                    @for plugin in plugins { option value=(plugin) { (plugin) } }
                }
                label for="rollout-version" { "Version (not yet approved)" }
                input #rollout-version type="text" name="version" required placeholder="1.3.0";
                label for="rollout-stages" { "Stages: percent:soak minutes, rising to 100" }
                input #rollout-stages type="text" name="stages" required value="5:60, 25:1440, 100";
                button.secondary type="submit" { "Schedule rollout" }
            }
        }
        @if rollouts.is_empty() {
            p { "No rollout yet." }
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

/// What the schedule form posts.
#[derive(Debug, Deserialize)]
pub struct ScheduleForm {
    /// `developer` or `operator`.
    back: String,
    plugin: String,
    version: String,
    /// `percent[:soak minutes]`, comma-separated.
    stages: String,
}

/// The stages written as `5:60, 25:1440, 100` (`percent[:soak minutes]`).
///
/// # Errors
///
/// 400 `invalid_rollout` naming the part that is not a stage. Whether the stages make a
/// schedule is the rollout service's to say.
fn parse_stages(text: &str) -> Result<Vec<Stage>, plinth_marketplace::Error> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (percent, soak) = part.split_once(':').unwrap_or((part, "0"));
            match (percent.trim().parse::<u8>(), soak.trim().parse::<i64>()) {
                (Ok(percent), Ok(soak_minutes)) => Ok(Stage {
                    percent,
                    soak_minutes,
                }),
                _ => Err(plinth_marketplace::Error::bad_request(
                    "invalid_rollout",
                    format!("field `stages`: {part:?} is not percent:minutes (e.g. 25:1440)"),
                )),
            }
        })
        .collect()
}

/// `POST /rollouts`: schedules a rollout through the same service as the API.
pub async fn schedule(
    State(state): State<AppState>,
    viewer: Viewer,
    Posted(form): Posted<ScheduleForm>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let stages = parse_stages(&form.stages)?;
    rollout::schedule(
        state.db(),
        principal,
        form.plugin.trim(),
        form.version.trim(),
        stages,
    )
    .await?;
    let back = Back::parse(&form.back);
    Ok(see_other(&format!("{}?done=rollout", back.path())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_read_as_percent_and_minutes() {
        let stages = parse_stages("5:60, 25:1440,100").ok();
        assert_eq!(
            stages,
            Some(vec![
                Stage {
                    percent: 5,
                    soak_minutes: 60
                },
                Stage {
                    percent: 25,
                    soak_minutes: 1440
                },
                Stage {
                    percent: 100,
                    soak_minutes: 0
                },
            ])
        );
        assert!(parse_stages("5:an hour, 100").is_err());
        assert!(parse_stages("500").is_err());
    }
}
