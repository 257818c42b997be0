//! `/tenants/{slug}/billing…`: the tenant's subscription (plan, status, trial, pending
//! downgrade, payment method, coupon, suspension), this month's invoice so far, its invoices
//! with their PDFs; and the actions on them: the processor's hosted page for a payment method
//! and the return from it, and cancelling the paid plan. Every rule is the billing service's
//! (`plinth_marketplace::billing`); the page shows what it answers.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::billing::account::{self, Status};
use plinth_marketplace::billing::estimate::{self, Estimate, Overview};
use plinth_marketplace::billing::{invoices, subscription};
use plinth_marketplace::ledger::money;
use plinth_marketplace::tenants::{self, TenantRole};
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::form::Posted;
use crate::layout::{csrf_field, forward, notice, page, see_other};
use crate::session::Viewer;

/// A service's refusal as a form shows it: its status, its message and, for a blocked
/// downgrade, each reason.
#[derive(Debug, Clone)]
pub struct Refusal {
    status: StatusCode,
    message: String,
    reasons: Vec<String>,
}

impl Refusal {
    /// `error` shown on the page that asked, when the viewer can act on it (400, 402, 409,
    /// 502: a field, a payment, the tenant's state, the processor); any other error (403, 404,
    /// 500) is answered as the console answers errors.
    ///
    /// # Errors
    ///
    /// The [`ConsoleError`] of any other error.
    pub fn of(error: plinth_marketplace::Error) -> Result<Refusal, ConsoleError> {
        let reasons = match &error {
            plinth_marketplace::Error::Conflict {
                details: Some(details),
                ..
            } => details["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|reason| reason["message"].as_str())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let error = ConsoleError::from(error);
        let status = error.status();
        let shown = [
            StatusCode::BAD_REQUEST,
            StatusCode::PAYMENT_REQUIRED,
            StatusCode::CONFLICT,
            StatusCode::BAD_GATEWAY,
        ];
        if !shown.contains(&status) {
            return Err(error);
        }
        Ok(Refusal {
            status,
            message: error.message(),
            reasons,
        })
    }

    /// The HTTP status the page is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The refusal as an alert: the message, then each reason.
    pub fn show(&self) -> Markup {
        html! {
            div.error #billing-error role="alert" {
                p { (self.message) }
                @if !self.reasons.is_empty() {
                    ul #billing-error-reasons { @for reason in &self.reasons { li { (reason) } } }
                }
            }
        }
    }
}

/// `amount` minor units of `currency`, as the ledger writes money (`29.00 USD`).
pub fn price(amount: i64, currency: &str) -> String {
    money::format(amount, currency)
}

/// A plan's price as tenants read it: `29.00 USD a month`, or `free`.
pub fn monthly(plan: &tenants::Plan) -> String {
    if plan.price_monthly > 0 {
        format!("{} a month", price(plan.price_monthly, &plan.currency))
    } else {
        "free".to_owned()
    }
}

/// An estimate as a table with id `id`: its lines, then its total.
pub fn estimate_table(id: &str, estimate: &Estimate) -> Markup {
    html! {
        div.table-wrap {
            table #(id) {
                thead { tr { th scope="col" { "Item" } th scope="col" { "Amount" } } }
                tbody {
                    @if estimate.lines.is_empty() { tr { td colspan="2" { "Nothing so far." } } }
                    @for line in &estimate.lines {
                        tr { td { (line.description) } td.amount { (price(line.amount, &estimate.currency)) } }
                    }
                }
                tfoot {
                    tr { th scope="row" { "Total" } td.total { (price(estimate.total, &estimate.currency)) } }
                }
            }
        }
    }
}

/// Where a subscription stands, in words.
fn status_text(status: Status) -> String {
    status.as_str().replace('_', " ")
}

/// What the page says after an action went through (`?done=`: the payment method was saved,
/// or a plan change's outcome as the service names it).
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    done: Option<String>,
}

impl Done {
    fn text(&self, overview: &Overview) -> Option<String> {
        let plan = &overview.plan;
        Some(match self.done.as_deref()? {
            "payment_method" => "The payment method is saved.".to_owned(),
            "upgraded" | "downgraded" => format!("You are on the {plan} plan from now."),
            "trial_started" => format!("Your trial of the {plan} plan has started."),
            "pending_cleared" | "unchanged" => format!("You stay on the {plan} plan."),
            "downgrade_scheduled" => format!(
                "You move to the {} plan at the start of next month.",
                overview.pending_plan.as_deref()?
            ),
            _ => return None,
        })
    }
}

/// The subscription page of tenant `slug`, with what an action did or why it was refused.
async fn render(
    state: &AppState,
    viewer: &Viewer,
    slug: &str,
    done: &Done,
    refusal: Option<&Refusal>,
) -> Result<Markup, ConsoleError> {
    let principal = viewer.require()?;
    let access = tenants::authorize(state.db(), principal, slug, TenantRole::Readonly).await?;
    let tenant = access.tenant;
    let admin = access.acting.allows(TenantRole::Admin);
    let overview = estimate::overview(state, principal, slug).await?;
    let invoices = invoices::list(state, principal, slug).await?;
    let plan = tenants::plan(state.db(), &overview.plan).await?;
    let base = format!("/tenants/{}", tenant.slug);
    Ok(page(
        viewer,
        &format!("Subscription of {}", tenant.name),
        html! {
            h1 { "Subscription of " (tenant.name) }
            @if let Some(text) = done.text(&overview) { (notice(&text)) }
            @if let Some(refusal) = refusal { (refusal.show()) }
            @if let Some(why) = &overview.suspended {
                div.error #suspension role="alert" {
                    p { strong { "This tenant is suspended. " } (why) }
                    @if overview.billing_configured {
                        p { "To pay: " a href="#subscription-title" { "add or change the payment method" }
                            "; the unpaid invoices are listed " a href="#invoices-title" { "below" } "." }
                    }
                }
            }
            @if !overview.billing_configured {
                p.warning #billing-unconfigured {
                    "This server bills through no payment processor: nothing is invoiced, and paid plans cannot be paid for."
                }
            }
            section.panel aria-labelledby="subscription-title" {
                h2 #subscription-title { "Subscription" }
                dl.facts #subscription {
                    dt { "Plan" }
                    dd { span #billing-plan { (overview.plan) } " · " (monthly(&plan)) " · "
                        a href=(format!("{base}/plans")) { "compare plans" } }
                    dt { "Status" }
                    dd #billing-status { (status_text(overview.status)) }
                    @if let Some(ends) = &overview.trial_ends_at {
                        dt { "Trial ends" } dd #billing-trial-ends { (ends) }
                    }
                    @if let Some(pending) = &overview.pending_plan {
                        dt { "Next month" }
                        dd #billing-pending { "moves to the " (pending) " plan at the start of next month" }
                    }
                    dt { "Payment method" }
                    dd #billing-payment-method { (overview.payment_method.as_deref().unwrap_or("none")) }
                    dt { "Coupon" }
                    dd #billing-coupon { (overview.coupon.as_deref().unwrap_or("none")) }
                }
                @if admin {
                    div.moves {
                        @if overview.billing_configured {
                            form.inline #payment-method-form method="post" action=(format!("{base}/billing/payment-method")) {
                                (csrf_field(viewer))
                                button #add-payment-method type="submit" {
                                    @if overview.payment_method.is_some() { "Change payment method" } @else { "Add payment method" }
                                }
                            } " "
                        }
                        @if plan.price_monthly > 0 && overview.pending_plan.is_none() {
                            form.inline #cancel-form method="post" action=(format!("{base}/billing/cancel"))
                                data-confirm=(format!("Cancel the {} plan? The tenant returns to the free plan.", plan.name)) {
                                (csrf_field(viewer))
                                button.danger #cancel-subscription type="submit" { "Cancel subscription" }
                            }
                        }
                    }
                }
            }
            section.panel aria-labelledby="next-invoice-title" {
                h2 #next-invoice-title { "This month so far" }
                (estimate_table("next-invoice", &overview.next_invoice))
            }
            section.panel aria-labelledby="invoices-title" {
                h2 #invoices-title { "Invoices" }
                @if invoices.is_empty() { p #no-invoices { "No invoices yet." } }
                @else {
                    div.table-wrap {
                        table.stack #invoices {
                            thead { tr {
                                th scope="col" { "Number" } th scope="col" { "Period" }
                                th scope="col" { "Status" } th scope="col" { "Total" }
                                th scope="col" { "PDF" }
                            } }
                            tbody {
                                @for invoice in &invoices {
                                    tr {
                                        td data-label="Number" { (invoice.number) }
                                        td data-label="Period" { (invoice.period) }
                                        td.status data-label="Status" { (invoice.status)
                                            @if let Some(next) = &invoice.next_attempt_at { br; span.hint { "next attempt " (next) } } }
                                        td data-label="Total" { (price(invoice.total, &invoice.currency))
                                            @if invoice.credited > 0 { br; span.hint { (price(invoice.credited, &invoice.currency)) " credited" } } }
                                        td data-label="PDF" {
                                            a.invoice-pdf href=(format!("{base}/invoices/{}/pdf", invoice.number)) {
                                                "PDF" span.visually-hidden { " of " (invoice.number) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// The subscription page again, answered with `error`'s status and showing it (or the
/// console's error page for errors the viewer cannot act on).
async fn refused(
    state: &AppState,
    viewer: &Viewer,
    slug: &str,
    error: plinth_marketplace::Error,
) -> Result<Response, ConsoleError> {
    let refusal = Refusal::of(error)?;
    let markup = render(state, viewer, slug, &Done::default(), Some(&refusal)).await?;
    Ok((refusal.status(), markup).into_response())
}

/// `GET /tenants/{slug}/billing`.
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Query(done): Query<Done>,
) -> Result<Markup, ConsoleError> {
    render(&state, &viewer, &slug, &done, None).await
}

/// `POST /tenants/{slug}/billing/payment-method`: starts the processor's hosted page and sends
/// the browser there. Not a `303`: the console's Content-Security-Policy (`form-action 'self'`)
/// forbids a form's redirect to another site, so the answer is a page that moves on at once.
pub async fn add_payment_method(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    match account::setup_session(&state, principal, &slug).await {
        Ok(session) => {
            tracing::info!(tenant = %slug, session = %session.id, "payment method setup started from the console");
            Ok(forward(
                &viewer,
                "Payment method",
                &session.url,
                html! {
                    h1 { "To the payment processor" }
                    p { "You enter the payment method on the processor's page, which then brings you back here. " }
                    p { a #processor-link href=(session.url) { "Go to the payment processor" } }
                },
            )
            .into_response())
        }
        Err(error) => refused(&state, &viewer, &slug, error).await,
    }
}

/// What the processor's hosted page sends the browser back with.
#[derive(Debug, Deserialize)]
pub struct Returned {
    session_id: Option<String>,
    /// Set on the second visit of a browser that came without its session cookie.
    bounced: Option<String>,
}

/// `GET /tenants/{slug}/billing/payment-method?session_id=…`: where the processor sends the
/// browser back; the payment method the session collected becomes the tenant's.
///
/// The session cookie is `SameSite=Strict`, so a browser arriving from the processor's site
/// does not send it; the page then reloads itself once (a navigation from this site, which
/// does send it) before asking to log in.
pub async fn payment_method_return(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Query(returned): Query<Returned>,
) -> Result<Response, ConsoleError> {
    tenants::validate_slug(&slug)?;
    let Some(session_id) = returned.session_id.filter(|id| !id.is_empty()) else {
        return Ok(see_other(&format!("/tenants/{slug}/billing")));
    };
    if viewer.principal.is_none() && returned.bounced.is_none() {
        let query =
            serde_urlencoded::to_string([("session_id", session_id.as_str()), ("bounced", "1")])
                .map_err(|e| {
                    ConsoleError::BadForm(format!("the session id cannot be sent on: {e}"))
                })?;
        let again = format!("/tenants/{slug}/billing/payment-method?{query}");
        return Ok(forward(
            &viewer,
            "Payment method",
            &again,
            html! {
                h1 { "Back from the payment processor" }
                p { a href=(again) { "Continue" } }
            },
        )
        .into_response());
    }
    let principal = viewer.require()?;
    match account::complete_setup(&state, principal, &slug, &session_id).await {
        Ok(_) => {
            tracing::info!(tenant = %slug, "payment method saved from the console");
            Ok(see_other(&format!(
                "/tenants/{slug}/billing?done=payment_method"
            )))
        }
        Err(error) => refused(&state, &viewer, &slug, error).await,
    }
}

/// `POST /tenants/{slug}/billing/cancel`: cancels the paid plan (at the end of the month, as
/// the service decides), or shows why not.
pub async fn cancel(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    match subscription::cancel(&state, principal, &slug).await {
        Ok(changed) => Ok(see_other(&format!(
            "/tenants/{slug}/billing?done={}",
            changed.outcome
        ))),
        Err(error) => refused(&state, &viewer, &slug, error).await,
    }
}

/// `GET /tenants/{slug}/invoices/{number}/pdf`: the invoice as a PDF download (members).
pub async fn invoice_pdf(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((slug, number)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let (filename, bytes) = invoices::pdf(&state, principal, &slug, &number).await?;
    // The service names it after the invoice's number; only safe characters reach the header.
    let filename: String = filename
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    Ok((
        [
            (CONTENT_TYPE, "application/pdf".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
