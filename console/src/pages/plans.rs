//! `/tenants/{slug}/plans`: the plans side by side with their prices, trials and quotas; for
//! the tenant's admins a form per plan to choose it (with a coupon) or start its trial; for
//! operators the moves that bypass billing; and the pricing calculator. What a choice does —
//! at once, next month, or refused with reasons — is the billing service's answer.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::billing::account::Status;
use plinth_marketplace::billing::estimate::{self, Calculation, Estimate, Overview};
use plinth_marketplace::billing::subscription::{self, ChangeKind};
use plinth_marketplace::tenants::{self, Plan, TenantRole};
use serde::Deserialize;

use super::billing::{Refusal, estimate_table, monthly};
use super::tenant::plan_table;
use crate::error::ConsoleError;
use crate::form::Posted;
use crate::layout::{csrf_field, page, see_other};
use crate::session::Viewer;

/// The pricing calculator's question: the `GET` form of the same page.
#[derive(Debug, Default, Deserialize)]
pub struct Calculator {
    calc_plan: Option<String>,
    /// Plugin ids, separated by commas.
    calc_plugins: Option<String>,
    calc_invocations: Option<String>,
}

impl Calculator {
    /// The calculation asked for, if the form was sent; a field the service cannot be asked
    /// with is said in words.
    fn calculation(&self) -> Option<Result<Calculation, String>> {
        let plan = self.calc_plan.as_deref().filter(|p| !p.is_empty())?;
        let plugins = self
            .calc_plugins
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let invocations = match self.calc_invocations.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(text) => match text.replace([',', '_', ' '], "").parse::<i64>() {
                Ok(n) => n,
                Err(_) => {
                    return Some(Err(format!(
                        "field `calc_invocations` must be a whole number, not {text:?}"
                    )));
                }
            },
        };
        Some(Ok(Calculation {
            plan: plan.to_owned(),
            plugins,
            invocations,
        }))
    }
}

/// What a plan's form posts (the trial's too, without a coupon).
#[derive(Debug, Default, Deserialize)]
pub struct PlanForm {
    plan: String,
    coupon: Option<String>,
}

impl PlanForm {
    /// The coupon typed, if any.
    fn coupon(&self) -> Option<&str> {
        self.coupon
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
    }
}

/// The button a plan's card offers, as (label, id suffix): upgrade to a dearer plan, switch to
/// another, subscribe to the trialled plan now, keep the current plan over a scheduled move.
/// Only words: the service decides what the choice does.
fn choice(
    plan: &Plan,
    current: &Plan,
    overview: &Overview,
) -> Option<(&'static str, &'static str)> {
    let trialling = overview.status == Status::Trialing;
    match subscription::change_kind(current, plan, trialling) {
        ChangeKind::Upgrade if plan.name == current.name => Some(("Subscribe now", "upgrade")),
        ChangeKind::Upgrade => Some(("Upgrade", "upgrade")),
        ChangeKind::Downgrade => Some(("Switch", "switch")),
        ChangeKind::Same if overview.pending_plan.is_some() => Some(("Keep this plan", "keep")),
        ChangeKind::Same => None,
    }
}

/// The plans page: with a refused choice (and what was typed) shown, or the calculator's answer.
async fn render(
    state: &AppState,
    viewer: &Viewer,
    slug: &str,
    calculator: &Calculator,
    refused: Option<(&Refusal, &PlanForm)>,
) -> Result<(StatusCode, Markup), ConsoleError> {
    let principal = viewer.require()?;
    let access = tenants::authorize(state.db(), principal, slug, TenantRole::Readonly).await?;
    let tenant = access.tenant;
    let admin = access.acting.allows(TenantRole::Admin);
    let plans = tenants::plans(state.db()).await?;
    let overview = estimate::overview(state, principal, slug).await?;
    let current = tenants::plan(state.db(), &tenant.plan).await?;
    let result: Option<Result<Estimate, String>> = match calculator.calculation() {
        None => None,
        Some(Err(message)) => Some(Err(message)),
        Some(Ok(calculation)) => match estimate::calculate(state, &calculation).await {
            Ok(estimate) => Some(Ok(estimate)),
            Err(error) if error.status() == StatusCode::BAD_REQUEST => Some(Err(error.to_string())),
            Err(error) => return Err(error.into()),
        },
    };
    let status = match (refused, &result) {
        (Some((refusal, _)), _) => refusal.status(),
        (None, Some(Err(_))) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let base = format!("/tenants/{}", tenant.slug);
    let typed = |plan: &str| {
        refused
            .filter(|(_, form)| form.plan == plan)
            .and_then(|(_, form)| form.coupon())
            .unwrap_or_default()
            .to_owned()
    };
    let markup = page(
        viewer,
        "Plans",
        html! {
            h1 { "Plans for " (tenant.name) }
            @if let Some((refusal, _)) = refused { (refusal.show()) }
            p #plans-current {
                "The tenant is on the " strong { (tenant.plan) } " plan (" (overview.status.as_str().replace('_', " ")) ")."
                @if let Some(pending) = &overview.pending_plan { " It moves to the " (pending) " plan at the start of next month." }
                " " a href=(format!("{base}/billing")) { "Subscription and invoices" }
            }
            (plan_table(&plans, Some(&tenant.plan)))
            @if admin {
                section.panel aria-labelledby="choose-title" {
                    h2 #choose-title { "Change plan" }
                    ul.cards #plan-choices {
                        @for plan in &plans {
                            li.card #(format!("plan-card-{}", plan.name)) {
                                h3 { (plan.name) @if plan.name == tenant.plan { " (current)" } }
                                p.meta {
                                    span { (monthly(plan)) }
                                    @if plan.trial_days > 0 { span { (plan.trial_days) "-day trial" } }
                                }
                                @if let Some((label, suffix)) = choice(plan, &current, &overview) {
                                    @let coupon_id = format!("plan-{}-coupon", plan.name);
                                    form method="post" action=(format!("{base}/billing/plan")) {
                                        (csrf_field(viewer))
                                        input type="hidden" name="plan" value=(plan.name);
                                        label for=(coupon_id) { "Coupon code (optional)" }
                                        input #(coupon_id) type="text" name="coupon" autocomplete="off" value=(typed(&plan.name));
                                        button #(format!("plan-{}-{suffix}", plan.name)) type="submit" { (label) }
                                    }
                                }
                                @if overview.trial_available && plan.trial_days > 0 {
                                    form method="post" action=(format!("{base}/billing/trial")) {
                                        (csrf_field(viewer))
                                        input type="hidden" name="plan" value=(plan.name);
                                        button.secondary #(format!("plan-{}-trial", plan.name)) type="submit" {
                                            "Start " (plan.trial_days) "-day trial"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.panel aria-labelledby="calculator-title" {
                h2 #calculator-title { "Pricing calculator" }
                form #calculator method="get" action=(format!("{base}/plans")) {
                    label for="calc_plan" { "Plan" }
                    select #calc_plan name="calc_plan" {
                        @for plan in &plans {
                            option value=(plan.name)
                                selected[calculator.calc_plan.as_deref().unwrap_or(&tenant.plan) == plan.name] { (plan.name) }
                        }
                    }
                    label for="calc_plugins" { "Paid plugins (ids, separated by commas)" }
                    input #calc_plugins type="text" name="calc_plugins" placeholder="examples.paid-hello"
                        value=(calculator.calc_plugins.as_deref().unwrap_or_default());
                    label for="calc_invocations" { "Invocations a month" }
                    input #calc_invocations type="number" min="0" name="calc_invocations"
                        value=(calculator.calc_invocations.as_deref().unwrap_or_default());
                    button type="submit" { "Estimate" }
                }
                @match &result {
                    Some(Ok(estimate)) => (estimate_table("calculator-result", estimate)),
                    Some(Err(message)) => p.error #calculator-error role="alert" { (message) },
                    None => {}
                }
            }
            @if tenants::may_change_plan(principal) {
                section.panel aria-labelledby="operator-moves-title" {
                    h2 #operator-moves-title { "Operator: move the tenant" }
                    p.hint { "Moves the tenant without a payment method, a coupon or a trial." }
                    div.moves {
                        @for plan in plans.iter().filter(|p| p.name != tenant.plan) {
                            form.inline method="post" action=(format!("/operator/tenants/{}/plan", tenant.slug)) {
                                (csrf_field(viewer))
                                input type="hidden" name="plan" value=(plan.name);
                                input type="hidden" name="back" value="plans";
                                button.secondary type="submit" { "Move to " (plan.name) }
                            } " "
                        }
                    }
                }
            }
        },
    );
    Ok((status, markup))
}

/// `GET /tenants/{slug}/plans` (with the calculator's answer when it was asked).
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Query(calculator): Query<Calculator>,
) -> Result<Response, ConsoleError> {
    Ok(render(&state, &viewer, &slug, &calculator, None)
        .await?
        .into_response())
}

/// After a plan's form: to the subscription page saying what happened, or this page again
/// with the service's refusal.
async fn answered(
    state: &AppState,
    viewer: &Viewer,
    slug: &str,
    form: &PlanForm,
    outcome: Result<subscription::PlanChanged, plinth_marketplace::Error>,
) -> Result<Response, ConsoleError> {
    match outcome {
        Ok(changed) => {
            tracing::info!(tenant = %slug, plan = %form.plan, outcome = %changed.outcome, "plan chosen from the console");
            Ok(see_other(&format!(
                "/tenants/{slug}/billing?done={}",
                changed.outcome
            )))
        }
        Err(error) => {
            let refusal = Refusal::of(error)?;
            Ok(render(
                state,
                viewer,
                slug,
                &Calculator::default(),
                Some((&refusal, form)),
            )
            .await?
            .into_response())
        }
    }
}

/// `POST /tenants/{slug}/billing/plan`: moves the tenant to `plan`, redeeming `coupon`.
pub async fn change_plan(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Posted(form): Posted<PlanForm>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let outcome =
        subscription::change_plan(&state, principal, &slug, &form.plan, form.coupon()).await;
    answered(&state, &viewer, &slug, &form, outcome).await
}

/// `POST /tenants/{slug}/billing/trial`: starts the trial of `plan`.
pub async fn start_trial(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Posted(form): Posted<PlanForm>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let outcome =
        subscription::start_trial(&state, principal, &slug, &form.plan, form.coupon()).await;
    answered(&state, &viewer, &slug, &form, outcome).await
}
