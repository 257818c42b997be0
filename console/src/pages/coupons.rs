//! `/operator/coupons`: every coupon (what it gives, how often it was redeemed, until when,
//! for which plans, whether it is offered) with a form to create one and a button to
//! deactivate each. Operators only, as in the API: the coupon service checks the role and
//! every field; the page shows its answer.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::billing::coupons::{self, NewCoupon};
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::form::Posted;
use crate::layout::{csrf_field, form_error, notice, page};
use crate::session::Viewer;

/// Durations with their labels.
const DURATIONS: [(&str, &str); 3] = [
    ("once", "Once: the next invoice"),
    ("repeating", "Repeating: for some months"),
    ("forever", "Forever"),
];

/// What the create form posts: text as typed, read into a [`NewCoupon`] by [`CouponForm::read`].
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CouponForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    percent_off: String,
    #[serde(default)]
    amount_off: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    duration_months: String,
    #[serde(default)]
    expires_at: String,
    #[serde(default)]
    max_redemptions: String,
    /// Plan names, separated by commas.
    #[serde(default)]
    plans: String,
}

/// `text` trimmed, `None` when empty.
fn given(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Field `field` as a whole number, `None` when empty.
fn number(field: &str, text: &str) -> Result<Option<i64>, String> {
    given(text)
        .map(|t| {
            t.parse::<i64>()
                .map_err(|_| format!("field `{field}` must be a whole number, not {t:?}"))
        })
        .transpose()
}

impl CouponForm {
    /// The coupon to create, as the API would be sent it; a field that is not a number where
    /// one is needed is said in words (every other rule is the service's).
    fn read(&self) -> Result<NewCoupon, String> {
        Ok(NewCoupon {
            code: self.code.trim().to_owned(),
            percent_off: number("percent_off", &self.percent_off)?,
            amount_off: number("amount_off", &self.amount_off)?,
            currency: given(&self.currency),
            duration: self.duration.trim().to_owned(),
            duration_months: number("duration_months", &self.duration_months)?,
            expires_at: given(&self.expires_at),
            max_redemptions: number("max_redemptions", &self.max_redemptions)?,
            plans: self
                .plans
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// The coupons page, with `message` (a notice, or an error) at the top and the create form
/// filled with `typed`.
async fn render(
    state: &AppState,
    viewer: &Viewer,
    message: Option<Result<String, String>>,
    typed: &CouponForm,
) -> Result<Markup, ConsoleError> {
    let principal = viewer.require()?;
    let coupons = coupons::list(state, principal).await?;
    let plans = plinth_marketplace::tenants::plans(state.db()).await?;
    let duration = if typed.duration.is_empty() {
        "once"
    } else {
        typed.duration.as_str()
    };
    Ok(page(
        viewer,
        "Coupons",
        html! {
            h1 { "Coupons" }
            p { a href="/operator" { "Back to the operator page" } }
            @match &message {
                Some(Ok(text)) => (notice(text)),
                Some(Err(text)) => (form_error(text)),
                None => {}
            }
            section.panel aria-labelledby="coupons-title" {
                h2 #coupons-title { "Every coupon" }
                @if coupons.is_empty() { p { "No coupons yet." } }
                @else {
                    div.table-wrap {
                        table.stack #coupons {
                            thead { tr {
                                th scope="col" { "Code" } th scope="col" { "Gives" }
                                th scope="col" { "Redeemed" } th scope="col" { "Expires" }
                                th scope="col" { "Plans" } th scope="col" { "Offered" }
                            } }
                            tbody {
                                @for coupon in &coupons {
                                    tr #(format!("coupon-{}", coupon.code)) {
                                        td data-label="Code" { code { (coupon.code) } }
                                        td data-label="Gives" { (coupon.description) }
                                        td data-label="Redeemed" {
                                            (coupon.redemptions)
                                            @if let Some(max) = coupon.max_redemptions { " of " (max) }
                                        }
                                        td data-label="Expires" { (coupon.expires_at.as_deref().unwrap_or("never")) }
                                        td data-label="Plans" {
                                            @if coupon.plans.is_empty() { "every paid plan" } @else { (coupon.plans.join(", ")) }
                                        }
                                        td data-label="Offered" {
                                            @if coupon.active {
                                                "yes "
                                                form.inline method="post" action=(format!("/operator/coupons/{}/deactivate", coupon.code))
                                                    data-confirm=(format!("Stop offering {}? Tenants holding it keep it.", coupon.code)) {
                                                    (csrf_field(viewer))
                                                    button.danger type="submit" aria-label=(format!("Deactivate {}", coupon.code)) { "Deactivate" }
                                                }
                                            } @else { "no" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.panel aria-labelledby="new-coupon-title" {
                h2 #new-coupon-title { "New coupon" }
                form #new-coupon method="post" action="/operator/coupons" {
                    (csrf_field(viewer))
                    label for="coupon-code" { "Code (3 to 32 of A–Z, 0–9, - and _)" }
                    input #coupon-code type="text" name="code" required value=(typed.code);
                    label for="coupon-percent" { "Percent off the plan (or an amount below)" }
                    input #coupon-percent type="number" name="percent_off" min="1" max="100" value=(typed.percent_off);
                    label for="coupon-amount" { "Amount off the plan, in minor units (2500 = 25.00)" }
                    input #coupon-amount type="number" name="amount_off" min="1" value=(typed.amount_off);
                    label for="coupon-currency" { "Currency of the amount" }
                    input #coupon-currency type="text" name="currency" placeholder="USD" value=(typed.currency);
                    label for="coupon-duration" { "Duration" }
                    select #coupon-duration name="duration" {
                        @for (value, text) in DURATIONS { option value=(value) selected[value == duration] { (text) } }
                    }
                    label for="coupon-months" { "Months (repeating coupons)" }
                    input #coupon-months type="number" name="duration_months" min="1" max="120" value=(typed.duration_months);
                    label for="coupon-expires" { "Expires at (RFC 3339, e.g. 2030-01-01T00:00:00Z; empty: never)" }
                    input #coupon-expires type="text" name="expires_at" value=(typed.expires_at);
                    label for="coupon-max" { "Most redemptions (empty: no limit)" }
                    input #coupon-max type="number" name="max_redemptions" min="1" value=(typed.max_redemptions);
                    label for="coupon-plans" {
                        "Plans, separated by commas (empty: every paid plan; there are "
                        (plans.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")) ")"
                    }
                    input #coupon-plans type="text" name="plans" value=(typed.plans);
                    button type="submit" { "Create coupon" }
                }
            }
        },
    ))
}

/// `GET /operator/coupons`.
pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Markup, ConsoleError> {
    render(&state, &viewer, None, &CouponForm::default()).await
}

/// The page again with the outcome of an action: refusals of the service are shown in it
/// (with the form as typed), a missing role or an unknown coupon as the console's error page.
async fn outcome(
    state: &AppState,
    viewer: &Viewer,
    result: Result<String, plinth_marketplace::Error>,
    typed: &CouponForm,
) -> Result<Response, ConsoleError> {
    match result {
        Ok(text) => Ok(
            render(state, viewer, Some(Ok(text)), &CouponForm::default())
                .await?
                .into_response(),
        ),
        Err(error) => {
            let error = ConsoleError::from(error);
            let status = error.status();
            if !matches!(status, StatusCode::BAD_REQUEST | StatusCode::CONFLICT) {
                return Err(error);
            }
            let page = render(state, viewer, Some(Err(error.message())), typed).await?;
            Ok((status, page).into_response())
        }
    }
}

/// `POST /operator/coupons`: creates a coupon.
pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Posted(form): Posted<CouponForm>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let result = match form.read() {
        Ok(new) => coupons::create(&state, principal, &new)
            .await
            .map(|coupon| {
                tracing::info!(coupon = %coupon.code, "coupon created from the console");
                format!("Coupon {} is created: {}.", coupon.code, coupon.description)
            }),
        Err(message) => Err(plinth_marketplace::Error::bad_request(
            "invalid_coupon",
            message,
        )),
    };
    outcome(&state, &viewer, result, &form).await
}

/// `POST /operator/coupons/{code}/deactivate`.
pub async fn deactivate(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(code): Path<String>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let result = coupons::deactivate(&state, principal, &code)
        .await
        .map(|coupon| format!("Coupon {} is no longer offered.", coupon.code));
    outcome(&state, &viewer, result, &CouponForm::default()).await
}
