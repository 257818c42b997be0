//! The queue's routes: an event's status and results, a tenant's events (dead letters with
//! `?status=dead`), and replaying a dead letter. Tenant members and the tenant's API key.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::view::{self, QueuedEventView};
use crate::auth::Principal;
use crate::clock::now_ms;
use crate::error::{ApiError, Result};
use crate::state::AppState;
use crate::tenants::{self, TenantRole};

/// An event the queue accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedEvent {
    /// The event's id: `GET /v1/tenants/{tenant}/events/{id}` shows its progress.
    pub id: String,
    /// `queued`, or (for a request repeated with its `Idempotency-Key`) the event's status now.
    pub status: String,
    /// Whether an earlier request with the same `Idempotency-Key` created the event.
    pub replayed: bool,
}

/// `GET /v1/tenants/{tenant}/events` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `queued`, `delivered` or `dead` (dead letters); any when absent.
    status: Option<String>,
    /// Only events accepted before this time (Unix ms): the last page's oldest `created_at`.
    before: Option<i64>,
    /// At most this many (1 to 100, default 50).
    limit: Option<i64>,
}

/// A page of queued events.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedEventList {
    /// Newest first.
    items: Vec<QueuedEventView>,
}

/// Lists the tenant's asynchronous events, newest first; `?status=dead` lists dead letters
/// (tenant member or API key).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/events", tag = "events", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ListQuery),
    responses((status = 200, body = QueuedEventList), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<QueuedEventList>> {
    let tenant = tenants::access(state.db(), &principal, &slug, TenantRole::Member).await?;
    let items = view::list(
        state.db(),
        &tenant.id,
        query.status.as_deref(),
        query.before,
        query.limit.unwrap_or(50),
    )
    .await?;
    Ok(Json(QueuedEventList { items }))
}

/// Shows an asynchronous event: status, attempts, and every plugin's result in every attempt
/// (tenant member or API key).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/events/{id}", tag = "events", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("id" = String, Path, description = "Event id")),
    responses((status = 200, body = QueuedEventView), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Json<QueuedEventView>> {
    let tenant = tenants::access(state.db(), &principal, &slug, TenantRole::Member).await?;
    Ok(Json(view::event(state.db(), &tenant.id, &id).await?))
}

/// Puts a dead letter back in the queue for the plugins whose delivery failed for good; its
/// attempts start again (tenant member or API key).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/events/{id}/replay", tag = "events", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("id" = String, Path, description = "Event id")),
    responses((status = 202, body = AcceptedEvent), (status = 401, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 429, body = ApiError)))]
pub(crate) async fn replay(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<AcceptedEvent>)> {
    let tenant = tenants::access(state.db(), &principal, &slug, TenantRole::Member).await?;
    let plan = tenants::plan(state.db(), &tenant.plan).await?;
    let replayed = super::accept::replay(state.db(), &tenant, &plan, &id, now_ms()).await?;
    tracing::info!(tenant = %tenant.id, event = %id, "dead letter replayed");
    super::worker::wake(&state);
    Ok((
        StatusCode::ACCEPTED,
        Json(AcceptedEvent {
            id: replayed.id,
            status: replayed.status,
            replayed: false,
        }),
    ))
}
