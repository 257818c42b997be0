//! The ledger's HTTP routes: the processor's webhook and its stored events, usage statements,
//! payouts, statements, the revenue report, verification and a tenant's subscriptions.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::payouts::{Payout, RunReport, Settlement};
use super::processor_events::{self, Outcome, ReconcileReport, StoredEvent};
use super::statements::{RevenueReport, Statement};
use super::subscriptions::Subscription;
use super::usage_charges::UsageCharge;
use super::verify::{Report, Violation};
use super::webhook::MAX_EVENT_BYTES;
use crate::audit::Actor;
use crate::auth::Principal;
use crate::body::JsonBody;
use crate::clock::now_ms;
use crate::error::{ApiError, Error, Result};
use crate::state::AppState;
use crate::tenants::{self, TenantRole};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(webhook))
        .routes(routes!(billing_events))
        .routes(routes!(reconcile))
        .routes(routes!(usage_statement))
        .routes(routes!(payout_run))
        .routes(routes!(payout_paid))
        .routes(routes!(payout_failed))
        .routes(routes!(publisher_statement))
        .routes(routes!(revenue_report))
        .routes(routes!(verify_ledger))
        .routes(routes!(tenant_subscriptions))
}

/// Receives a payment processor event (Stripe's format and `Stripe-Signature` scheme): 200
/// when applied, a duplicate, ignored or stored unmatched; 202 when stored to wait for what it
/// concerns (it is applied when that arrives).
#[utoipa::path(post, path = "/v1/billing/webhook", tag = "billing",
    request_body(content = Object, description = "A Stripe-format event", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>`")),
    responses((status = 200, body = Outcome), (status = 202, body = Outcome), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 409, body = ApiError),
        (status = 413, body = ApiError), (status = 503, body = ApiError)))]
async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let settings = &state.settings().ledger;
    if settings.webhook_secret.is_none() {
        return Ok(billing_not_configured());
    }
    if body.len() > MAX_EVENT_BYTES {
        return Err(Error::PayloadTooLarge {
            limit: MAX_EVENT_BYTES,
        });
    }
    let signature = headers
        .get("stripe-signature")
        .map(|value| {
            value.to_str().map_err(|_| {
                Error::bad_request(
                    "invalid_signature_header",
                    "the `Stripe-Signature` header is not ASCII",
                )
            })
        })
        .transpose()?;
    let outcome = super::webhook::receive(
        state.db(),
        settings,
        &state.settings().billing,
        signature,
        &body,
    )
    .await?;
    let status = if outcome.status == processor_events::Status::Pending.as_str() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)).into_response())
}

/// Which stored processor events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// `applied`, `pending`, `unmatched` or `ignored`; all when absent.
    status: Option<String>,
    /// At most this many (default and maximum 500).
    limit: Option<i64>,
}

/// Stored processor events.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventList {
    /// In the processor's order (`created`, then id).
    items: Vec<StoredEvent>,
}

/// The processor events as stored, e.g. those waiting (`pending`) or reported `unmatched`
/// (operator).
#[utoipa::path(get, path = "/v1/billing/events", tag = "billing", security(("bearer" = [])),
    params(EventsQuery),
    responses((status = 200, body = EventList), (status = 400, body = ApiError),
        (status = 403, body = ApiError)))]
async fn billing_events(
    State(state): State<AppState>,
    principal: Principal,
    params: std::result::Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<EventList>> {
    principal.operator()?;
    let params = crate::body::query(params)?;
    let status = match params.status.as_deref() {
        None => None,
        Some(name) => Some(processor_events::Status::parse(name).ok_or_else(|| {
            Error::bad_request(
                "invalid_query",
                format!("`status` must be applied, pending, unmatched or ignored, not {name:?}"),
            )
        })?),
    };
    let limit = params.limit.unwrap_or(processor_events::MAX_LISTED);
    if !(1..=processor_events::MAX_LISTED).contains(&limit) {
        return Err(Error::bad_request(
            "invalid_query",
            format!(
                "`limit` must be between 1 and {}, not {limit}",
                processor_events::MAX_LISTED
            ),
        ));
    }
    Ok(Json(EventList {
        items: processor_events::list(state.db(), status, limit).await?,
    }))
}

/// Tries every pending processor event again now, marks those past the deadline unmatched and
/// reports them to operators (operator); the server also does this every hour.
#[utoipa::path(post, path = "/v1/billing/reconcile", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = ReconcileReport), (status = 403, body = ApiError)))]
async fn reconcile(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<ReconcileReport>> {
    principal.operator()?;
    let report =
        processor_events::reconcile(state.db(), &state.settings().ledger, now_ms()).await?;
    Ok(Json(report))
}

/// 503 `billing_not_configured`.
fn billing_not_configured() -> Response {
    let body = serde_json::json!({"error": {
        "code": "billing_not_configured",
        "message": "billing is not configured on this server: start it with --billing-webhook-secret",
    }});
    (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// `POST /v1/billing/usage-statements`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageStatementRequest {
    /// The month to bill, `YYYY-MM`; it must have ended.
    month: String,
}

/// The charges of a usage statement.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UsageStatementView {
    month: String,
    charges: Vec<UsageCharge>,
}

/// Bills a month's metered usage of usage-priced plugins (operator); idempotent per tenant,
/// plugin and month.
#[utoipa::path(post, path = "/v1/billing/usage-statements", tag = "billing", security(("bearer" = [])),
    request_body = UsageStatementRequest,
    responses((status = 200, body = UsageStatementView), (status = 400, body = ApiError),
        (status = 403, body = ApiError)))]
async fn usage_statement(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(body): JsonBody<UsageStatementRequest>,
) -> Result<Json<UsageStatementView>> {
    principal.operator()?;
    let month = crate::month::parse("month", &body.month).map_err(|_| {
        Error::bad_request(
            "invalid_body",
            format!("field `month` must be YYYY-MM, not {:?}", body.month),
        )
    })?;
    let charges =
        super::usage_charges::run(state.db(), &state.settings().ledger, &month, now_ms()).await?;
    Ok(Json(UsageStatementView {
        month: month.key,
        charges,
    }))
}

/// `POST /v1/payouts/runs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PayoutRunRequest {
    /// The run's id, chosen by the caller: 1 to 64 of `A-Z a-z 0-9 - _`. Repeating it pays
    /// nobody twice.
    run_id: String,
}

/// Pays every publisher whose available balance reaches the threshold, once per run id, and
/// writes the payout file (operator).
#[utoipa::path(post, path = "/v1/payouts/runs", tag = "payouts", security(("bearer" = [])),
    request_body = PayoutRunRequest,
    responses((status = 200, body = RunReport), (status = 400, body = ApiError),
        (status = 403, body = ApiError)))]
async fn payout_run(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(body): JsonBody<PayoutRunRequest>,
) -> Result<Json<RunReport>> {
    principal.operator()?;
    let report = super::payouts::run(
        state.db(),
        &state.settings().ledger,
        &body.run_id,
        &Actor::from(&principal),
        now_ms(),
    )
    .await?;
    tracing::info!(run = %report.run_id, payouts = report.payouts.len(), "payout run");
    Ok(Json(report))
}

/// Marks a payout paid by the processor (operator).
#[utoipa::path(post, path = "/v1/payouts/{id}/paid", tag = "payouts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Payout id")),
    responses((status = 200, body = Payout), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn payout_paid(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Payout>> {
    principal.operator()?;
    let payout =
        super::payouts::mark(state.db(), &id, Settlement::Paid, &Actor::from(&principal)).await?;
    Ok(Json(payout))
}

/// Marks a payout failed: its amount returns to the publisher's available balance (operator).
#[utoipa::path(post, path = "/v1/payouts/{id}/failed", tag = "payouts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Payout id")),
    responses((status = 200, body = Payout), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn payout_failed(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Payout>> {
    principal.operator()?;
    let payout = super::payouts::mark(
        state.db(),
        &id,
        Settlement::Failed,
        &Actor::from(&principal),
    )
    .await?;
    Ok(Json(payout))
}

/// Which statement.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatementQuery {
    /// `YYYY-MM` (UTC).
    month: String,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// A publisher's monthly statement, as JSON or CSV (publisher members; others get 404).
#[utoipa::path(get, path = "/v1/publishers/{ns}/statements", tag = "billing", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace"), StatementQuery),
    responses((status = 200, body = Statement), (status = 400, body = ApiError),
        (status = 404, body = ApiError)))]
async fn publisher_statement(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
    params: std::result::Result<Query<StatementQuery>, QueryRejection>,
) -> Result<Response> {
    let publisher = crate::publishers::access(state.db(), &principal, &ns).await?;
    let params = crate::body::query(params)?;
    let month = crate::month::parse("month", &params.month)?;
    let statement =
        super::statements::statement(state.db(), &publisher.id, &publisher.namespace, &month)
            .await?;
    match params.format.as_deref() {
        None | Some("json") => Ok(Json(statement).into_response()),
        Some("csv") => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            )],
            super::statements::to_csv(&statement),
        )
            .into_response()),
        Some(other) => Err(Error::bad_request(
            "invalid_query",
            format!("`format` must be json or csv, not {other:?}"),
        )),
    }
}

/// Which month.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MonthQuery {
    /// `YYYY-MM` (UTC).
    month: String,
}

/// The platform's revenue for a month, per currency (operator).
#[utoipa::path(get, path = "/v1/ledger/revenue", tag = "billing", security(("bearer" = [])),
    params(MonthQuery),
    responses((status = 200, body = RevenueReport), (status = 400, body = ApiError),
        (status = 403, body = ApiError)))]
async fn revenue_report(
    State(state): State<AppState>,
    principal: Principal,
    params: std::result::Result<Query<MonthQuery>, QueryRejection>,
) -> Result<Json<RevenueReport>> {
    principal.operator()?;
    let month = crate::month::parse("month", &crate::body::query(params)?.month)?;
    Ok(Json(super::statements::revenue(state.db(), &month).await?))
}

/// Whether the ledger is sound.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LedgerStatus {
    /// True when every invariant holds.
    sound: bool,
    /// What was checked, when sound.
    report: Option<Report>,
    /// The first violation, when not.
    violation: Option<Violation>,
}

/// Checks every invariant of the ledger (operator): what `plinth ledger verify` does.
#[utoipa::path(get, path = "/v1/ledger/verify", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = LedgerStatus), (status = 403, body = ApiError)))]
async fn verify_ledger(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<LedgerStatus>> {
    principal.operator()?;
    Ok(Json(match super::verify::verify(state.db()).await? {
        Ok(report) => LedgerStatus {
            sound: true,
            report: Some(report),
            violation: None,
        },
        Err(violation) => LedgerStatus {
            sound: false,
            report: None,
            violation: Some(violation),
        },
    }))
}

/// A tenant's subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubscriptionList {
    /// Newest first.
    items: Vec<Subscription>,
}

/// The tenant's paid-install subscriptions, active and ended (any member).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/subscriptions", tag = "billing", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = SubscriptionList), (status = 404, body = ApiError)))]
async fn tenant_subscriptions(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<SubscriptionList>> {
    let tenant = tenants::access(state.db(), &principal, &slug, TenantRole::Readonly).await?;
    Ok(Json(SubscriptionList {
        items: super::subscriptions::of_tenant(state.db(), &tenant.id).await?,
    }))
}
