//! The run log's routes: a tenant's runs (list, one, export, share) and daily charts of an
//! install; a plugin's failure reports and shared runs for its publisher. Handlers only
//! translate: who may do what is decided in [`super::query`], [`super::daily`] and
//! [`super::reports`].

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::daily::{self, DayStats};
use super::query::{self, RunDetail, RunFilter, RunPage};
use super::reports::{self, FailureReport, SharedRun};
use crate::auth::Principal;
use crate::error::{ApiError, Error, Result};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runs))
        .routes(routes!(export_runs))
        .routes(routes!(get_run))
        .routes(routes!(share_run, unshare_run))
        .routes(routes!(install_daily))
        .routes(routes!(plugin_failures))
        .routes(routes!(list_shared_runs))
        .routes(routes!(get_shared_run))
}

/// Which runs to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunsQuery {
    /// Only this install's runs (plugin id).
    plugin: Option<String>,
    /// `ok`, `failed`, or an error code (`timeout`, `trap`, `plugin_error`, …).
    outcome: Option<String>,
    /// Runs started at or after this time (RFC 3339), or on or after this day (`2026-12-01`,
    /// UTC).
    since: Option<String>,
    /// Runs started before this time (RFC 3339), or up to and including this day (UTC).
    until: Option<String>,
    /// Text the run's log lines or error contain.
    q: Option<String>,
    /// The `next_cursor` of the previous page.
    before: Option<String>,
    /// At most this many (1 to 100; default 50).
    limit: Option<i64>,
}

impl From<RunsQuery> for RunFilter {
    fn from(query: RunsQuery) -> RunFilter {
        RunFilter {
            plugin: query.plugin,
            outcome: query.outcome,
            since: query.since,
            until: query.until,
            text: query.q,
            before: query.before,
            limit: query.limit,
        }
    }
}

/// Lists the tenant's runs, newest first (any member).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/runs", tag = "runs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), RunsQuery),
    responses((status = 200, body = RunPage), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn list_runs(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    params: std::result::Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<RunPage>> {
    let filter = RunFilter::from(crate::body::query(params)?);
    Ok(Json(query::list(&state, &principal, &slug, &filter).await?))
}

/// Which runs to export.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportQuery {
    /// Only this install's runs (plugin id).
    plugin: Option<String>,
    /// `ok`, `failed`, or an error code.
    outcome: Option<String>,
    /// Runs started at or after this time (RFC 3339), or on or after this day (UTC).
    since: Option<String>,
    /// Runs started before this time (RFC 3339), or up to and including this day (UTC).
    until: Option<String>,
}

/// Exports the tenant's runs as NDJSON, one whole run per line, newest first (admin).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/runs/export", tag = "runs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ExportQuery),
    responses((status = 200, description = "One run per line", content_type = "application/x-ndjson", body = RunDetail),
        (status = 400, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn export_runs(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    params: std::result::Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response> {
    let params = crate::body::query(params)?;
    let filter = RunFilter {
        plugin: params.plugin,
        outcome: params.outcome,
        since: params.since,
        until: params.until,
        ..RunFilter::default()
    };
    let (tenant, filter) = query::start_export(&state, &principal, &slug, filter).await?;
    let db = state.db().clone();
    let pages = futures_util::stream::try_unfold(Some(filter), move |next| {
        let db = db.clone();
        let tenant = tenant.clone();
        async move {
            let Some(filter) = next else {
                return Ok::<_, Error>(None);
            };
            let (lines, next) = query::export_page(&db, &tenant, filter).await?;
            Ok(Some((lines, next)))
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(pages),
    )
        .into_response())
}

/// One run of the tenant, with its log lines and (when captured) payload and output (any
/// member).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/runs/{run}", tag = "runs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, body = RunDetail), (status = 404, body = ApiError)))]
async fn get_run(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, run)): Path<(String, String)>,
) -> Result<Json<RunDetail>> {
    Ok(Json(query::get(&state, &principal, &slug, &run).await?))
}

/// Whether a run is shared.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Shared {
    /// The run.
    run: String,
    /// Whether the plugin's publisher may see it.
    shared: bool,
}

/// Shares a run with the plugin's publisher (admin; audited).
#[utoipa::path(put, path = "/v1/tenants/{tenant}/runs/{run}/share", tag = "runs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, body = Shared), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn share_run(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, run)): Path<(String, String)>,
) -> Result<Json<Shared>> {
    reports::set_shared(&state, &principal, &slug, &run, true).await?;
    Ok(Json(Shared { run, shared: true }))
}

/// Stops sharing a run with the plugin's publisher (admin; audited).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/runs/{run}/share", tag = "runs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, body = Shared), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn unshare_run(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, run)): Path<(String, String)>,
) -> Result<Json<Shared>> {
    reports::set_shared(&state, &principal, &slug, &run, false).await?;
    Ok(Json(Shared { run, shared: false }))
}

/// How many days to chart.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DaysQuery {
    /// 1 to 30; default 30.
    days: Option<i64>,
}

/// An install's calls per day.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DailyUsage {
    /// Oldest first; days without calls have zeros.
    items: Vec<DayStats>,
}

/// An install's invocations, failures by kind and duration percentiles per UTC day (any
/// member).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/installs/{plugin}/daily", tag = "runs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("plugin" = String, Path, description = "Plugin id"), DaysQuery),
    responses((status = 200, body = DailyUsage), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn install_daily(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, plugin)): Path<(String, String)>,
    params: std::result::Result<Query<DaysQuery>, QueryRejection>,
) -> Result<Json<DailyUsage>> {
    let days = crate::body::query(params)?.days.unwrap_or(daily::DAYS_KEPT);
    let items = daily::for_install(&state, &principal, &slug, &plugin, days).await?;
    Ok(Json(DailyUsage { items }))
}

/// A plugin's failures across tenants.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FailureReports {
    /// Most frequent first.
    items: Vec<FailureReport>,
}

/// The plugin's failures across every tenant, by signature and version; no tenant is named
/// (members of the plugin's publisher).
#[utoipa::path(get, path = "/v1/plugins/{plugin}/failures", tag = "runs", security(("bearer" = [])),
    params(("plugin" = String, Path, description = "Plugin id")),
    responses((status = 200, body = FailureReports), (status = 404, body = ApiError)))]
async fn plugin_failures(
    State(state): State<AppState>,
    principal: Principal,
    Path(plugin): Path<String>,
) -> Result<Json<FailureReports>> {
    let items = reports::failures(&state, &principal, &plugin).await?;
    Ok(Json(FailureReports { items }))
}

/// Runs tenants shared with the plugin's publisher.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SharedRuns {
    /// Newest shared first.
    items: Vec<SharedRun>,
}

/// The runs tenants shared with the plugin's publisher (members of the publisher).
#[utoipa::path(get, path = "/v1/plugins/{plugin}/shared-runs", tag = "runs", security(("bearer" = [])),
    params(("plugin" = String, Path, description = "Plugin id")),
    responses((status = 200, body = SharedRuns), (status = 404, body = ApiError)))]
async fn list_shared_runs(
    State(state): State<AppState>,
    principal: Principal,
    Path(plugin): Path<String>,
) -> Result<Json<SharedRuns>> {
    let items = reports::shared_runs(&state, &principal, &plugin).await?;
    Ok(Json(SharedRuns { items }))
}

/// One run a tenant shared with the plugin's publisher (members of the publisher).
#[utoipa::path(get, path = "/v1/plugins/{plugin}/shared-runs/{run}", tag = "runs", security(("bearer" = [])),
    params(("plugin" = String, Path, description = "Plugin id"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, body = SharedRun), (status = 404, body = ApiError)))]
async fn get_shared_run(
    State(state): State<AppState>,
    principal: Principal,
    Path((plugin, run)): Path<(String, String)>,
) -> Result<Json<SharedRun>> {
    Ok(Json(
        reports::shared_run(&state, &principal, &plugin, &run).await?,
    ))
}
