//! `GET /v1/plugins…`: the public catalog. Anyone may call these; operators also see blocked
//! plugins' detail and packages.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::search::{SearchPage, SearchParams, SearchQuery};
use super::{PluginDetail, VersionInfo, Visibility};
use crate::auth::Principal;
use crate::error::{ApiError, Error, Result};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(detail))
        .routes(routes!(versions))
        .routes(routes!(version))
        .routes(routes!(package))
}

/// Searches the catalog. Blocked plugins never appear.
#[utoipa::path(get, path = "/v1/plugins", tag = "catalog", params(SearchParams),
    responses((status = 200, body = SearchPage), (status = 400, body = ApiError)))]
async fn search(
    State(state): State<AppState>,
    _principal: Option<Principal>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchPage>> {
    let params = crate::body::query(params)?;
    let query = SearchQuery::from_params(&params)?;
    Ok(Json(super::search(state.db(), &query).await?))
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
    let blocked = Visibility::of(principal.as_ref());
    Ok(Json(super::plugin_detail(state.db(), &id, blocked).await?))
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
    let blocked = Visibility::of(principal.as_ref());
    Ok(Json(VersionList {
        items: super::versions(state.db(), &id, blocked).await?,
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
    let blocked = Visibility::of(principal.as_ref());
    Ok(Json(super::version(state.db(), &id, &v, blocked).await?))
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
    let blocked = Visibility::of(principal.as_ref());
    let file = super::package_bytes(state.db(), &id, &v, blocked).await?;
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
