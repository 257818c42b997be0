//! `/v1/plugins/{id}/ratings…`: list (anyone), rate (tenant admin), reply (publisher), hide
//! and unhide (reviewers).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{After, DEFAULT_LIMIT, MAX_LIMIT, RatingPage, RatingView, Reveal};
use crate::auth::{Caller, Principal};
use crate::body::JsonBody;
use crate::catalog::Visibility;
use crate::error::{ApiError, Error, Result};
use crate::state::AppState;
use crate::tenants::{self, TenantRole};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(rate))
        .routes(routes!(reply))
        .routes(routes!(hide))
        .routes(routes!(unhide))
}

/// Query of `GET /v1/plugins/{id}/ratings`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Page size, 1 to 100 (default 20).
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A plugin's ratings, most recently changed first, with the average and histogram. Hidden
/// texts are null (reviewers see them).
#[utoipa::path(get, path = "/v1/plugins/{id}/ratings", tag = "ratings",
    params(("id" = String, Path, description = "Plugin id"), ListParams),
    responses((status = 200, body = RatingPage), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn list(
    State(state): State<AppState>,
    principal: Option<Principal>,
    Path(id): Path<String>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<RatingPage>> {
    let params = crate::body::query(params)?;
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                Error::bad_request(
                    "invalid_query",
                    format!(
                        "query parameter `limit` must be a whole number from 1 to {MAX_LIMIT}, not {text:?}"
                    ),
                )
            })?,
    };
    let after = params.cursor.as_deref().map(After::decode).transpose()?;
    let reviewer = matches!(
        principal.as_ref().map(|p| &p.caller),
        Some(Caller::User(user)) if user.is_reviewer()
    );
    let visibility = Visibility::of(principal.as_ref());
    let reveal = if reviewer {
        Reveal::Everything
    } else {
        Reveal::Public
    };
    Ok(Json(
        super::list(state.db(), &id, &visibility, reveal, limit, after.as_ref()).await?,
    ))
}

/// `PUT /v1/plugins/{id}/ratings/{tenant}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateRequest {
    /// 1 to 5.
    stars: i64,
    /// Optional text, at most 2000 characters.
    text: Option<String>,
}

/// Rates a plugin as a person, through one of their tenants (tenant admin; the tenant must
/// have the plugin installed, or have had it installed for at least a day; members of the
/// plugin's publisher may not). One rating per person per plugin: a second call, through any of
/// their tenants, edits it: 201 when created, 200 when edited.
#[utoipa::path(put, path = "/v1/plugins/{id}/ratings/{tenant}", tag = "ratings", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id"), ("tenant" = String, Path, description = "Tenant slug")),
    request_body = RateRequest,
    responses((status = 200, body = RatingView), (status = 201, body = RatingView), (status = 400, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn rate(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, slug)): Path<(String, String)>,
    JsonBody(body): JsonBody<RateRequest>,
) -> Result<(StatusCode, Json<RatingView>)> {
    let tenant = tenants::access(state.db(), &principal, &slug, TenantRole::Admin).await?;
    let user = principal.user()?;
    let rated = super::rate(
        state.db(),
        &tenant,
        &user.id,
        &id,
        body.stars,
        body.text.as_deref(),
    )
    .await?;
    let status = if rated.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(rated.rating)))
}

/// `POST …/ratings/{rating}/reply`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplyRequest {
    /// The reply, 1 to 2000 characters; replaces an earlier reply.
    text: String,
}

/// Replies to a rating as the plugin's publisher (its members and API keys).
#[utoipa::path(post, path = "/v1/plugins/{id}/ratings/{rating}/reply", tag = "ratings", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id"), ("rating" = String, Path, description = "Rating id")),
    request_body = ReplyRequest,
    responses((status = 200, body = RatingView), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError)))]
async fn reply(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, rating)): Path<(String, String)>,
    JsonBody(body): JsonBody<ReplyRequest>,
) -> Result<Json<RatingView>> {
    Ok(Json(
        super::reply(state.db(), &principal, &id, &rating, &body.text).await?,
    ))
}

/// `POST …/ratings/{rating}/hide`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HideRequest {
    /// Why, 1 to 500 characters; the tenant is told.
    reason: String,
}

/// Hides a rating's text (reviewers who are not members of the plugin's publisher). The stars
/// still count.
#[utoipa::path(post, path = "/v1/plugins/{id}/ratings/{rating}/hide", tag = "ratings", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id"), ("rating" = String, Path, description = "Rating id")),
    request_body = HideRequest,
    responses((status = 200, body = RatingView), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn hide(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, rating)): Path<(String, String)>,
    JsonBody(body): JsonBody<HideRequest>,
) -> Result<Json<RatingView>> {
    Ok(Json(
        super::hide(state.db(), &principal, &id, &rating, &body.reason).await?,
    ))
}

/// Shows a hidden rating's text again (reviewers, as for hiding).
#[utoipa::path(post, path = "/v1/plugins/{id}/ratings/{rating}/unhide", tag = "ratings", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id"), ("rating" = String, Path, description = "Rating id")),
    responses((status = 200, body = RatingView), (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
async fn unhide(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, rating)): Path<(String, String)>,
) -> Result<Json<RatingView>> {
    Ok(Json(
        super::unhide(state.db(), &principal, &id, &rating).await?,
    ))
}
