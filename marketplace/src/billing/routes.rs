//! The billing API: a tenant's subscription, payment method and invoices; coupons, credit
//! notes, suspensions and billing runs for operators; the pricing calculator for anyone. Each
//! handler only translates: the rules live in the modules it calls.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::coupons::{Coupon, NewCoupon};
use super::cycle::TickReport;
use super::estimate::{Calculation, Estimate, Overview};
use super::invoices::{CreditNote, Invoice};
use super::subscription::PlanChanged;
use crate::auth::Principal;
use crate::body::JsonBody;
use crate::clock::now_ms;
use crate::error::{ApiError, Result};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(overview))
        .routes(routes!(start_trial))
        .routes(routes!(change_plan, cancel_plan))
        .routes(routes!(set_payment_method))
        .routes(routes!(payment_session))
        .routes(routes!(complete_payment_session))
        .routes(routes!(list_invoices))
        .routes(routes!(show_invoice))
        .routes(routes!(invoice_pdf))
        .routes(routes!(credit_invoice))
        .routes(routes!(suspend, unsuspend))
        .routes(routes!(create_coupon, list_coupons))
        .routes(routes!(deactivate_coupon))
        .routes(routes!(check_coupon))
        .routes(routes!(calculate))
        .routes(routes!(run))
}

/// A tenant's subscription: plan, status, trial, payment method, coupon, suspension and this
/// month's invoice so far (members).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/billing", tag = "billing", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = Overview), (status = 404, body = ApiError)))]
async fn overview(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<Overview>> {
    Ok(Json(
        super::estimate::overview(&state, &principal, &slug).await?,
    ))
}

/// `{plan, coupon?}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanChoice {
    /// The plan's name.
    plan: String,
    /// A coupon code to redeem with it.
    coupon: Option<String>,
}

/// Starts the tenant's trial of a paid plan, once (admin).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/billing/trial", tag = "billing", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")), request_body = PlanChoice,
    responses((status = 200, body = PlanChanged), (status = 400, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn start_trial(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<PlanChoice>,
) -> Result<Json<PlanChanged>> {
    Ok(Json(
        super::subscription::start_trial(
            &state,
            &principal,
            &slug,
            &body.plan,
            body.coupon.as_deref(),
        )
        .await?,
    ))
}

/// Moves the tenant to another plan (admin): a dearer one at once (prorated), a cheaper one at
/// the start of next month (409 `downgrade_blocked` with `details.reasons` while it does not
/// fit); the current plan clears a scheduled downgrade.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/billing/plan", tag = "billing", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")), request_body = PlanChoice,
    responses((status = 200, body = PlanChanged), (status = 400, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn change_plan(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<PlanChoice>,
) -> Result<Json<PlanChanged>> {
    Ok(Json(
        super::subscription::change_plan(
            &state,
            &principal,
            &slug,
            &body.plan,
            body.coupon.as_deref(),
        )
        .await?,
    ))
}

/// Cancels the tenant's paid plan at the end of the month: it returns to the free plan (admin).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/billing/plan", tag = "billing", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = PlanChanged), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn cancel_plan(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<PlanChanged>> {
    Ok(Json(
        super::subscription::cancel(&state, &principal, &slug).await?,
    ))
}

/// `{payment_method}`: a processor's payment method id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaymentMethodChoice {
    payment_method: String,
}

/// Makes a payment method the tenant's default (admin); invoices left unpaid by a decline are
/// tried again with it at once.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/billing/payment-method", tag = "billing", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")), request_body = PaymentMethodChoice,
    responses((status = 200, body = Overview), (status = 400, body = ApiError),
        (status = 404, body = ApiError), (status = 502, body = ApiError)))]
async fn set_payment_method(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<PaymentMethodChoice>,
) -> Result<Json<Overview>> {
    super::account::set_payment_method(&state, &principal, &slug, &body.payment_method).await?;
    Ok(Json(
        super::estimate::overview(&state, &principal, &slug).await?,
    ))
}

/// Where the browser goes to enter a payment method.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionView {
    /// The processor's hosted page.
    url: String,
}

/// Starts the processor's hosted page for entering a payment method (admin); it returns to the
/// console's subscription page.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/billing/payment-method/session", tag = "billing",
    security(("bearer" = [])), params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = SessionView), (status = 404, body = ApiError), (status = 502, body = ApiError)))]
async fn payment_session(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<SessionView>> {
    let session = super::account::setup_session(&state, &principal, &slug).await?;
    Ok(Json(SessionView { url: session.url }))
}

/// `{session_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionDone {
    session_id: String,
}

/// Takes the payment method a completed hosted page collected (admin).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/billing/payment-method/complete", tag = "billing",
    security(("bearer" = [])), params(("tenant" = String, Path, description = "Tenant slug")), request_body = SessionDone,
    responses((status = 200, body = Overview), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn complete_payment_session(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<SessionDone>,
) -> Result<Json<Overview>> {
    super::account::complete_setup(&state, &principal, &slug, &body.session_id).await?;
    Ok(Json(
        super::estimate::overview(&state, &principal, &slug).await?,
    ))
}

/// A tenant's invoices.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvoiceList {
    items: Vec<Invoice>,
}

/// The tenant's invoices, newest first, without their lines (members).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/invoices", tag = "billing", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = InvoiceList), (status = 404, body = ApiError)))]
async fn list_invoices(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<InvoiceList>> {
    Ok(Json(InvoiceList {
        items: super::invoices::list(&state, &principal, &slug).await?,
    }))
}

/// One invoice with its lines, by id or number (members).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/invoices/{invoice}", tag = "billing", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("invoice" = String, Path, description = "Invoice id or number")),
    responses((status = 200, body = Invoice), (status = 404, body = ApiError)))]
async fn show_invoice(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, invoice)): Path<(String, String)>,
) -> Result<Json<Invoice>> {
    Ok(Json(
        super::invoices::show(&state, &principal, &slug, &invoice).await?,
    ))
}

/// One invoice as a PDF (members).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/invoices/{invoice}/pdf", tag = "billing", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("invoice" = String, Path, description = "Invoice id or number")),
    responses((status = 200, description = "The invoice as application/pdf"), (status = 404, body = ApiError)))]
async fn invoice_pdf(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, invoice)): Path<(String, String)>,
) -> Result<Response> {
    let (filename, bytes) = super::invoices::pdf(&state, &principal, &slug, &invoice).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `{amount, reason}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreditRequest {
    /// Minor units to give back.
    amount: i64,
    /// Why.
    reason: String,
}

/// Credits part of a paid invoice back to the tenant, refunded through the processor
/// (operator).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/invoices/{invoice}/credit-notes", tag = "billing", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("invoice" = String, Path, description = "Invoice id or number")),
    request_body = CreditRequest,
    responses((status = 201, body = CreditNote), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn credit_invoice(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, invoice)): Path<(String, String)>,
    JsonBody(body): JsonBody<CreditRequest>,
) -> Result<(StatusCode, Json<CreditNote>)> {
    let note = super::invoices::credit(
        &state,
        &principal,
        &slug,
        &invoice,
        body.amount,
        &body.reason,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// `{reason}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SuspendRequest {
    reason: String,
}

/// A tenant's suspension.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SuspensionView {
    /// Whether it is suspended.
    suspended: bool,
    /// `payment` or `operator`.
    reason: Option<String>,
}

/// Suspends a tenant: its plugins answer 402 until lifted (operator).
#[utoipa::path(put, path = "/v1/tenants/{tenant}/suspension", tag = "billing", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")), request_body = SuspendRequest,
    responses((status = 200, body = SuspensionView), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
async fn suspend(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<SuspendRequest>,
) -> Result<Json<SuspensionView>> {
    let tenant = super::suspension::suspend(&state, &principal, &slug, &body.reason).await?;
    Ok(Json(SuspensionView {
        suspended: tenant.suspended_at.is_some(),
        reason: tenant.suspended_reason,
    }))
}

/// Lifts a tenant's suspension, whatever its reason (operator).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/suspension", tag = "billing", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = SuspensionView), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
async fn unsuspend(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<SuspensionView>> {
    let tenant = super::suspension::unsuspend(&state, &principal, &slug).await?;
    Ok(Json(SuspensionView {
        suspended: tenant.suspended_at.is_some(),
        reason: tenant.suspended_reason,
    }))
}

/// Coupons.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CouponList {
    items: Vec<Coupon>,
}

/// Creates a coupon (operator).
#[utoipa::path(post, path = "/v1/billing/coupons", tag = "billing", security(("bearer" = [])), request_body = NewCoupon,
    responses((status = 201, body = Coupon), (status = 400, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
async fn create_coupon(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(body): JsonBody<NewCoupon>,
) -> Result<(StatusCode, Json<Coupon>)> {
    Ok((
        StatusCode::CREATED,
        Json(super::coupons::create(&state, &principal, &body).await?),
    ))
}

/// Every coupon, newest first (operator).
#[utoipa::path(get, path = "/v1/billing/coupons", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = CouponList), (status = 403, body = ApiError)))]
async fn list_coupons(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<CouponList>> {
    Ok(Json(CouponList {
        items: super::coupons::list(&state, &principal).await?,
    }))
}

/// Deactivates a coupon: refused from now on (operator).
#[utoipa::path(delete, path = "/v1/billing/coupons/{code}", tag = "billing", security(("bearer" = [])),
    params(("code" = String, Path, description = "Coupon code")),
    responses((status = 200, body = Coupon), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn deactivate_coupon(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<Json<Coupon>> {
    Ok(Json(
        super::coupons::deactivate(&state, &principal, &code).await?,
    ))
}

/// `?plan=`.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct CouponQuery {
    /// The plan it would be redeemed for.
    plan: String,
}

/// Whether a coupon may be redeemed for a plan, and what it gives (any signed-in caller).
#[utoipa::path(get, path = "/v1/coupons/{code}", tag = "billing", security(("bearer" = [])),
    params(("code" = String, Path, description = "Coupon code"), CouponQuery),
    responses((status = 200, body = Coupon), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn check_coupon(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
    Query(query): Query<CouponQuery>,
) -> Result<Json<Coupon>> {
    principal.user()?;
    let plan = super::subscription::known_plan(&state, &query.plan).await?;
    let mut coupon = super::coupons::check(state.db(), &code, &plan, now_ms()).await?;
    // Tenants see what a code gives, not how often it was used.
    coupon.redemptions = 0;
    coupon.max_redemptions = None;
    Ok(Json(coupon))
}

/// The pricing calculator: a month's estimate for a plan, paid plugins and expected
/// invocations (anyone).
#[utoipa::path(post, path = "/v1/billing/estimate", tag = "billing", request_body = Calculation,
    responses((status = 200, body = Estimate), (status = 400, body = ApiError)))]
async fn calculate(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Calculation>,
) -> Result<Json<Estimate>> {
    Ok(Json(super::estimate::calculate(&state, &body).await?))
}

/// Does now what time brings to billing — trials, month ends, invoices, retries, suspensions,
/// alerts, e-mail — as the server does periodically (operator).
#[utoipa::path(post, path = "/v1/billing/runs", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = TickReport), (status = 403, body = ApiError)))]
async fn run(State(state): State<AppState>, principal: Principal) -> Result<Json<TickReport>> {
    principal.operator()?;
    Ok(Json(super::cycle::tick(&state, now_ms()).await?))
}
