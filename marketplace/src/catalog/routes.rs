//! `GET /v1/plugins…`: the public catalog. Anyone may call these; operators also see blocked
//! plugins' detail and packages, and a private plugin's audience sees it. `…/audience`: a
//! publisher makes a plugin private.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audience::{self, AudienceView};
use super::search::{SearchPage, SearchParams, SearchQuery};
use super::{PluginDetail, VersionInfo, Visibility};
use crate::auth::Principal;
use crate::body::JsonBody;
use crate::error::{ApiError, Error, Result};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(detail))
        .routes(routes!(versions))
        .routes(routes!(version))
        .routes(routes!(package))
        .routes(routes!(get_audience, set_audience, make_public))
}

/// `PUT /v1/plugins/{id}/audience`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AudienceRequest {
    /// The slugs of the tenants that may see and install the plugin (1 to 1000).
    tenants: Vec<String>,
}

/// Who may see a plugin: public, or private to the tenants listed (members of its publisher,
/// operators).
#[utoipa::path(get, path = "/v1/plugins/{id}/audience", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id (it may have no version yet)")),
    responses((status = 200, body = AudienceView), (status = 404, body = ApiError)))]
async fn get_audience(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<AudienceView>> {
    Ok(Json(audience::get(state.db(), &principal, &id).await?))
}

/// Makes a plugin private to the tenants listed, replacing its audience (members of its
/// publisher). Anyone else gets a 404 for it on every catalog and install route. A plugin
/// already published to everyone stays public (409 `plugin_public`); a tenant that has it
/// installed stays in the audience (409 `audience_installed`).
#[utoipa::path(put, path = "/v1/plugins/{id}/audience", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id (it may have no version yet)")),
    request_body = AudienceRequest,
    responses((status = 200, body = AudienceView), (status = 400, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn set_audience(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AudienceRequest>,
) -> Result<Json<AudienceView>> {
    Ok(Json(
        audience::set(state.db(), &principal, &id, &body.tenants).await?,
    ))
}

/// Opens a private plugin to everyone (members of its publisher).
#[utoipa::path(delete, path = "/v1/plugins/{id}/audience", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id")),
    responses((status = 200, body = AudienceView), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
async fn make_public(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<AudienceView>> {
    Ok(Json(
        audience::make_public(state.db(), &principal, &id).await?,
    ))
}

/// Searches the catalog. Blocked plugins never appear; a private plugin appears only to the
/// tenants it was shared with (their members and API keys) and to its publisher.
#[utoipa::path(get, path = "/v1/plugins", tag = "catalog", params(SearchParams),
    responses((status = 200, body = SearchPage), (status = 400, body = ApiError)))]
async fn search(
    State(state): State<AppState>,
    principal: Option<Principal>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchPage>> {
    let params = crate::body::query(params)?;
    let query = SearchQuery::from_params(&params)?;
    let visibility = Visibility::of(principal.as_ref());
    Ok(Json(super::search(state.db(), &query, &visibility).await?))
}

/// A plugin: publisher, ratings, versions (newest first) with their permissions.
#[utoipa::path(get, path = "/v1/plugins/{id}", tag = "catalog",
    params(("id" = String, Path, description = "Plugin id, e.g. acme.slack-notify")),
    responses((status = 200, body = PluginDetail), (status = 404, body = ApiError)))]
async fn detail(
    State(state): State<AppState>,
    principal: Option<Principal>,
    Path(id): Path<String>,
) -> Result<Json<PluginDetail>> {
    let visibility = Visibility::of(principal.as_ref());
    Ok(Json(
        super::plugin_detail(state.db(), &id, &visibility).await?,
    ))
}

/// The versions of a plugin.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionList {
    /// Newest first.
    items: Vec<VersionInfo>,
}

/// A plugin's versions, newest first.
#[utoipa::path(get, path = "/v1/plugins/{id}/versions", tag = "catalog",
    params(("id" = String, Path, description = "Plugin id")),
    responses((status = 200, body = VersionList), (status = 404, body = ApiError)))]
async fn versions(
    State(state): State<AppState>,
    principal: Option<Principal>,
    Path(id): Path<String>,
) -> Result<Json<VersionList>> {
    let visibility = Visibility::of(principal.as_ref());
    Ok(Json(VersionList {
        items: super::versions(state.db(), &id, &visibility).await?,
    }))
}

/// One version of a plugin: its permissions (what an install consents to) and their digest.
#[utoipa::path(get, path = "/v1/plugins/{id}/versions/{v}", tag = "catalog",
    params(("id" = String, Path, description = "Plugin id"),
        ("v" = String, Path, description = "Semantic version, e.g. 1.2.0")),
    responses((status = 200, body = VersionInfo), (status = 404, body = ApiError)))]
async fn version(
    State(state): State<AppState>,
    principal: Option<Principal>,
    Path((id, v)): Path<(String, String)>,
) -> Result<Json<VersionInfo>> {
    let visibility = Visibility::of(principal.as_ref());
    Ok(Json(
        super::version(state.db(), &id, &v, &visibility).await?,
    ))
}

/// Downloads the countersigned `.plinth` package of a version.
#[utoipa::path(get, path = "/v1/plugins/{id}/versions/{v}/package", tag = "catalog",
    params(("id" = String, Path, description = "Plugin id"),
        ("v" = String, Path, description = "Semantic version")),
    responses((status = 200, description = "The package bytes", content_type = "application/octet-stream"),
        (status = 404, body = ApiError)))]
async fn package(
    State(state): State<AppState>,
    principal: Option<Principal>,
    Path((id, v)): Path<(String, String)>,
) -> Result<Response> {
    let visibility = Visibility::of(principal.as_ref());
    let file = super::package_bytes(state.db(), &id, &v, &visibility).await?;
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file.file_name)).map_err(
            |e| Error::Internal(format!("package file name is not a header value: {e}")),
        )?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        file.bytes,
    )
        .into_response())
}
