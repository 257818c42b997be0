//! `/operator…`: tenants and plans (with links to each tenant's suspension and to the coupons,
//! `super::suspension` and `super::coupons`), yank / security yank / block / rollback with
//! confirmation, payout runs, processor events waiting or unmatched, and the audit log with its
//! chain status. Operators only, as in the API; every action calls the API's own service.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::audit::{self, Actor, Filter, chain};
use plinth_marketplace::clock::now_ms;
use plinth_marketplace::ledger::{payouts, processor_events};
use plinth_marketplace::tenants;
use plinth_marketplace::versions::{self, block, rollback, yank};
use serde::Deserialize;

use super::tenant::plan_table;
use crate::error::ConsoleError;
use crate::form::Posted;
use crate::layout::{csrf_field, form_error, notice, page, see_other};
use crate::session::Viewer;

/// How many audit entries the page shows (the newest).
const AUDIT_SHOWN: i64 = 50;

/// How many unmatched processor events the page lists (the oldest).
const UNMATCHED_SHOWN: i64 = 20;

/// Actions on a plugin, with their labels.
const ACTIONS: [(&str, &str); 4] = [
    ("yank", "Yank the version (no new installs)"),
    (
        "security_yank",
        "Security yank (also rolls installs back to the newest good version)",
    ),
    ("block", "Block the plugin everywhere"),
    ("rollback", "Roll every tenant back to the version"),
];

/// The operator page, with `message` (a notice, or an error) at the top.
async fn render(
    state: &AppState,
    viewer: &Viewer,
    message: Option<Result<String, String>>,
) -> Result<Markup, ConsoleError> {
    let principal = viewer.require()?;
    let operator = principal.operator()?;
    let db = state.db();
    let tenants = tenants::list_all(db, &operator.id, false).await?;
    let plans = tenants::plans(db).await?;
    let rollouts = versions::rollout::under_way(db).await?;
    let chain = chain::verify(db).await?;
    let entries = match &chain {
        Ok(report) => report.entries,
        Err(violation) => violation.seq,
    };
    let (pending, unmatched_count) = processor_events::waiting_counts(db).await?;
    let unmatched = processor_events::list(
        db,
        Some(processor_events::Status::Unmatched),
        UNMATCHED_SHOWN,
    )
    .await?;
    let log = audit::list(
        db,
        &Filter {
            tenant_id: None,
            action: None,
            after: Some((entries - AUDIT_SHOWN).max(0)),
            limit: AUDIT_SHOWN,
        },
    )
    .await?;
    Ok(page(
        viewer,
        "Operator",
        html! {
            h1 { "Operator" }
            p #operator-links { a href="/operator/coupons" { "Coupons" } " · suspensions: in the tenants table below" }
            @match &message {
                Some(Ok(text)) => (notice(text)),
                Some(Err(text)) => (form_error(text)),
                None => {}
            }
            section.panel aria-labelledby="tenants-title" {
                h2 #tenants-title { "Tenants" }
                div.table-wrap {
                    table.stack #tenants {
                        thead { tr { th scope="col" { "Tenant" } th scope="col" { "Plan" } th scope="col" { "Change plan" } th scope="col" { "Suspension" } } }
                        tbody {
                            @for (tenant, _) in &tenants {
                                tr {
                                    td data-label="Tenant" { a href=(format!("/tenants/{}", tenant.slug)) { (tenant.name) } " (" (tenant.slug) ")" }
                                    td data-label="Plan" { (tenant.plan) }
                                    td data-label="Change plan" {
                                        form method="post" action=(format!("/operator/tenants/{}/plan", tenant.slug)) {
                                            (csrf_field(viewer))
                                            label.visually-hidden for=(format!("plan-{}", tenant.slug)) { "Plan of " (tenant.slug) }
                                            select #(format!("plan-{}", tenant.slug)) name="plan" {
                                                @for plan in &plans { option value=(plan.name) selected[plan.name == tenant.plan] { (plan.name) } }
                                            }
                                            button.secondary type="submit" { "Set plan" }
                                        }
                                    }
                                    td data-label="Suspension" {
                                        a href=(format!("/operator/tenants/{}/suspension", tenant.slug)) {
                                            @match &tenant.suspended_reason {
                                                Some(reason) => { "suspended (" (reason) ")" },
                                                None => { "not suspended" },
                                            }
                                            span.visually-hidden { ": suspend or lift " (tenant.slug) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                h3 { "Plans" }
                (plan_table(&plans, None))
            }
            section.panel aria-labelledby="versions-title" {
                h2 #versions-title { "Versions and plugins" }
                form #plugin-action method="post" action="/operator/plugins"
                    data-confirm="This changes what every tenant of the plugin runs. Go ahead?" {
                    (csrf_field(viewer))
                    label for="plugin" { "Plugin id" }
                    input #plugin type="text" name="plugin" required placeholder="acme.slack-notify";
                    label for="version" { "Version (for yanks and rollbacks)" }
                    input #version type="text" name="version" placeholder="1.2.0";
                    label for="action" { "Action" }
                    select #action name="action" required {
                        @for (value, text) in ACTIONS { option value=(value) { (text) } }
                    }
                    label for="reason_code" { "Reason code (yanks and blocks)" }
                    select #reason_code name="reason_code" {
                        option value="" { "None" }
                        @for code in versions::REASON_CODES { option value=(code) { (code) } }
                    }
                    label for="reason" { "Reason (required)" }
                    textarea #reason name="reason" required {}
                    label.check for="confirm" {
                        input #confirm type="checkbox" name="confirm" value="yes" required;
                        span { "I understand this affects every tenant that installed the plugin." }
                    }
                    button.danger type="submit" { "Apply" }
                }
                (super::rollouts::panel(viewer, &rollouts, super::rollouts::Back::Operator, &[]))
            }
            section.panel aria-labelledby="payouts-title" {
                h2 #payouts-title { "Payout run" }
                form method="post" action="/operator/payouts"
                    data-confirm="Pay every publisher whose available balance reaches the threshold?" {
                    (csrf_field(viewer))
                    label for="run_id" { "Run id (repeating one pays nobody twice)" }
                    input #run_id type="text" name="run_id" required pattern="[A-Za-z0-9_-]{1,64}";
                    button type="submit" { "Run payouts" }
                }
            }
            section.panel aria-labelledby="billing-events-title" {
                h2 #billing-events-title { "Processor events" }
                p #billing-events-status {
                    (pending) " waiting for what they concern, " (unmatched_count) " unmatched. "
                    "Waiting events are applied when their charge arrives and retried every hour; "
                    "those still waiting after the deadline are reported unmatched."
                }
                @if !unmatched.is_empty() {
                    div.table-wrap {
                        table.stack #unmatched-events {
                            thead { tr { th scope="col" { "Event" } th scope="col" { "Type" } th scope="col" { "Received" } th scope="col" { "Why" } } }
                            tbody {
                                @for event in &unmatched {
                                    tr {
                                        td data-label="Event" { code { (event.id) } }
                                        td data-label="Type" { (event.kind) }
                                        td data-label="Received" { (event.received_at) }
                                        td data-label="Why" { (event.note) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.panel aria-labelledby="audit-title" {
                h2 #audit-title { "Audit log" }
                @match &chain {
                    Ok(report) => p #chain-status.status-ok { "Chain sound: " (report.entries) " entries, head " code { (report.head_hash.chars().take(16).collect::<String>()) } },
                    Err(violation) => p #chain-status.error role="alert" { "Chain broken: " (violation.to_string()) },
                }
                div.table-wrap {
                    table.stack #audit {
                        thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Action" } th scope="col" { "Subject" } th scope="col" { "Actor" } } }
                        tbody {
                            @for entry in log.iter().rev() {
                                tr {
                                    td data-label="#" { (entry.seq) }
                                    td data-label="When" { (entry.at) }
                                    td data-label="Action" { code { (entry.action) } }
                                    td data-label="Subject" { (entry.subject) }
                                    td data-label="Actor" { (entry.actor_kind) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `GET /operator`.
pub async fn dashboard(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Markup, ConsoleError> {
    render(&state, &viewer, None).await
}

/// The page again with the outcome of an action: refusals of the service are shown in it.
async fn outcome(
    state: &AppState,
    viewer: &Viewer,
    result: Result<String, plinth_marketplace::Error>,
) -> Result<Response, ConsoleError> {
    match result {
        Ok(text) => Ok(render(state, viewer, Some(Ok(text))).await?.into_response()),
        Err(error) => {
            let error = ConsoleError::from(error);
            let status = error.status();
            if status.is_server_error() || status == StatusCode::FORBIDDEN {
                return Err(error);
            }
            let page = render(state, viewer, Some(Err(error.message()))).await?;
            Ok((status, page).into_response())
        }
    }
}

/// What the plan form posts.
#[derive(Debug, Deserialize)]
pub struct PlanForm {
    plan: String,
    /// `plans` to go back to the tenant's plan comparison rather than the operator page.
    back: Option<String>,
}

/// `POST /operator/tenants/{slug}/plan`.
pub async fn set_plan(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Posted(form): Posted<PlanForm>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let change = tenants::TenantChange {
        name: None,
        plan: Some(&form.plan),
    };
    tenants::update(&state, principal, &slug, change).await?;
    tracing::info!(tenant = %slug, plan = %form.plan, "plan set from the console");
    Ok(if form.back.as_deref() == Some("plans") {
        see_other(&format!("/tenants/{slug}/plans"))
    } else {
        see_other("/operator")
    })
}

/// What the plugin action form posts.
#[derive(Debug, Deserialize)]
pub struct PluginAction {
    plugin: String,
    version: Option<String>,
    action: String,
    reason_code: Option<String>,
    reason: Option<String>,
    confirm: Option<String>,
}

/// `POST /operator/plugins`: yank, security yank, block or roll back, once confirmed.
pub async fn plugin_action(
    State(state): State<AppState>,
    viewer: Viewer,
    Posted(form): Posted<PluginAction>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let operator = principal.operator()?;
    if form.confirm.as_deref() != Some("yes") {
        return outcome(
            &state,
            &viewer,
            Err(plinth_marketplace::Error::bad_request(
                "confirmation_required",
                "tick the confirmation box: this affects every tenant of the plugin",
            )),
        )
        .await;
    }
    let version = form.version.as_deref().unwrap_or_default().trim();
    let code = form.reason_code.as_deref().filter(|c| !c.is_empty());
    let reason = form.reason.as_deref();
    let plugin = form.plugin.trim();
    let result = match form.action.as_str() {
        "yank" | "security_yank" => {
            let security = form.action == "security_yank";
            yank::yank(&state, operator, plugin, version, code, reason, security)
                .await
                .map(|done| {
                    format!(
                        "{plugin} {} is yanked; {} installs moved",
                        done.version,
                        done.installs.len()
                    )
                })
        }
        "block" => block::block(&state, &Actor::from(principal), plugin, code, reason)
            .await
            .map(|done| {
                format!(
                    "{plugin} is blocked; {} installs switched off",
                    done.installs
                )
            }),
        "rollback" => rollback::operator_rollback(&state, operator, plugin, version, reason)
            .await
            .map(|done| {
                format!(
                    "{plugin} is rolled back to {}; {} installs moved",
                    done.to_version,
                    done.installs.len()
                )
            }),
        other => Err(plinth_marketplace::Error::bad_request(
            "invalid_action",
            format!("unknown action {other:?}"),
        )),
    };
    outcome(&state, &viewer, result).await
}

/// What the payout form posts.
#[derive(Debug, Deserialize)]
pub struct PayoutForm {
    run_id: String,
}

/// `POST /operator/payouts`.
pub async fn payout_run(
    State(state): State<AppState>,
    viewer: Viewer,
    Posted(form): Posted<PayoutForm>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    principal.operator()?;
    let result = payouts::run(
        state.db(),
        &state.settings().ledger,
        form.run_id.trim(),
        &Actor::from(principal),
        now_ms(),
    )
    .await
    .map(|report| {
        let count = report.payouts.len();
        let noun = if count == 1 { "payout" } else { "payouts" };
        format!("Payout run {}: {count} {noun}", report.run_id)
    });
    outcome(&state, &viewer, result).await
}
