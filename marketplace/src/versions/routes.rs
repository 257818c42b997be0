//! Routes of the versions module: tenant updates and rollbacks of an install; operator yanks,
//! rollbacks and blocks; appeals; deprecation; staged rollouts.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::appeals::{self, Appeal};
use super::deprecation::{DeprecationView, NewDeprecation};
use super::rollout::{Halted, RolloutView, Stage};
use crate::audit::Actor;
use crate::auth::Principal;
use crate::body::JsonBody;
use crate::error::{ApiError, Error, Result};
use crate::installs::InstallView;
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(update_install))
        .routes(routes!(rollback_install))
        .routes(routes!(yank_version))
        .routes(routes!(rollback_plugin))
        .routes(routes!(block_plugin))
        .routes(routes!(unblock_plugin))
        .routes(routes!(file_appeal))
        .routes(routes!(list_appeals))
        .routes(routes!(decide_appeal))
        .routes(routes!(deprecate_plugin, undeprecate_plugin))
        .routes(routes!(schedule_rollout, get_rollout))
        .routes(routes!(pause_rollout))
        .routes(routes!(resume_rollout))
        .routes(routes!(halt_rollout))
}

/// `PUT /v1/plugins/{id}/versions/{v}/rollout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolloutRequest {
    /// 1 to 10 stages, their percentages rising to 100.
    stages: Vec<Stage>,
}

/// Schedules a staged rollout of a version before it is approved (a member of the plugin's
/// publisher, or an operator): once approved, only the first stage's tenants' auto-updating
/// installs follow it; each next stage starts after the soak. Replaces a schedule not yet
/// started. 409 `version_published` once approved.
#[utoipa::path(put, path = "/v1/plugins/{id}/versions/{v}/rollout", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id"), ("v" = String, Path, description = "The version, not yet approved")),
    request_body = RolloutRequest,
    responses((status = 200, body = RolloutView), (status = 400, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn schedule_rollout(
    State(state): State<AppState>,
    principal: Principal,
    Path((plugin, version)): Path<(String, String)>,
    JsonBody(body): JsonBody<RolloutRequest>,
) -> Result<Json<RolloutView>> {
    Ok(Json(
        super::rollout::schedule(state.db(), &principal, &plugin, &version, body.stages).await?,
    ))
}

/// A version's rollout: its stage, share of tenants, next stage and updated installs (members
/// of the plugin's publisher, operators).
#[utoipa::path(get, path = "/v1/plugins/{id}/versions/{v}/rollout", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id"), ("v" = String, Path, description = "Version")),
    responses((status = 200, body = RolloutView), (status = 404, body = ApiError)))]
async fn get_rollout(
    State(state): State<AppState>,
    principal: Principal,
    Path((plugin, version)): Path<(String, String)>,
) -> Result<Json<RolloutView>> {
    Ok(Json(
        super::rollout::get(state.db(), &principal, &plugin, &version).await?,
    ))
}

/// `POST …/rollout/pause` and `…/halt`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolloutReason {
    /// Why (required; audited and sent to the publisher).
    reason: Option<String>,
}

/// Pauses an active rollout: no next stage starts until it is resumed.
#[utoipa::path(post, path = "/v1/plugins/{id}/versions/{v}/rollout/pause", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id"), ("v" = String, Path, description = "Version")),
    request_body = RolloutReason,
    responses((status = 200, body = RolloutView), (status = 400, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn pause_rollout(
    State(state): State<AppState>,
    principal: Principal,
    Path((plugin, version)): Path<(String, String)>,
    JsonBody(body): JsonBody<RolloutReason>,
) -> Result<Json<RolloutView>> {
    Ok(Json(
        super::rollout::pause(
            state.db(),
            &principal,
            &plugin,
            &version,
            body.reason.as_deref(),
        )
        .await?,
    ))
}

/// Resumes a paused rollout; the current stage soaks again from now.
#[utoipa::path(post, path = "/v1/plugins/{id}/versions/{v}/rollout/resume", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id"), ("v" = String, Path, description = "Version")),
    responses((status = 200, body = RolloutView), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn resume_rollout(
    State(state): State<AppState>,
    principal: Principal,
    Path((plugin, version)): Path<(String, String)>,
) -> Result<Json<RolloutView>> {
    Ok(Json(
        super::rollout::resume(state.db(), &principal, &plugin, &version).await?,
    ))
}

/// The kill switch: halts a rollout for good and rolls every install it updated back to the
/// version it had.
#[utoipa::path(post, path = "/v1/plugins/{id}/versions/{v}/rollout/halt", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id"), ("v" = String, Path, description = "Version")),
    request_body = RolloutReason,
    responses((status = 200, body = Halted), (status = 400, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn halt_rollout(
    State(state): State<AppState>,
    principal: Principal,
    Path((plugin, version)): Path<(String, String)>,
    JsonBody(body): JsonBody<RolloutReason>,
) -> Result<Json<Halted>> {
    Ok(Json(
        super::rollout::halt(
            &state,
            &principal,
            &plugin,
            &version,
            body.reason.as_deref(),
        )
        .await?,
    ))
}

/// `PUT /v1/plugins/{id}/deprecation`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeprecationRequest {
    /// What tenants are told (at most 500 characters).
    message: String,
    /// The plugin to use instead (a published public plugin).
    replacement: Option<String>,
    /// The versions deprecated, as a semver requirement (e.g. `<2.0.0`); default every
    /// version. Only a deprecation of every version ranks the plugin down in search.
    versions: Option<String>,
    /// Refuse new installs of the deprecated versions (operators only).
    blocks_installs: Option<bool>,
}

/// Deprecates a plugin or a range of its versions (a member of its publisher, or an operator),
/// replacing an earlier deprecation. The catalog shows it, search ranks a wholly deprecated
/// plugin last, installs answer with it, installed tenants are notified. Audited.
#[utoipa::path(put, path = "/v1/plugins/{id}/deprecation", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id")), request_body = DeprecationRequest,
    responses((status = 200, body = DeprecationView), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError)))]
async fn deprecate_plugin(
    State(state): State<AppState>,
    principal: Principal,
    Path(plugin): Path<String>,
    JsonBody(body): JsonBody<DeprecationRequest>,
) -> Result<Json<DeprecationView>> {
    let deprecation = super::deprecation::deprecate(
        state.db(),
        &principal,
        &plugin,
        NewDeprecation {
            message: body.message,
            replacement: body.replacement,
            versions: body.versions,
            blocks_installs: body.blocks_installs,
        },
    )
    .await?;
    Ok(Json(DeprecationView::from(&deprecation)))
}

/// Lifts a plugin's deprecation (a member of its publisher, or an operator; only an operator
/// when it blocks installs). Audited.
#[utoipa::path(delete, path = "/v1/plugins/{id}/deprecation", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id")),
    responses((status = 204, description = "Lifted"), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn undeprecate_plugin(
    State(state): State<AppState>,
    principal: Principal,
    Path(plugin): Path<String>,
) -> Result<StatusCode> {
    super::deprecation::undeprecate(state.db(), &principal, &plugin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/tenants/{tenant}/installs/{plugin}/update`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateRequest {
    /// The version to update to (newer than the installed one, not yanked).
    version: String,
    /// The digest of that version's permission set: updating is consenting to exactly it.
    permissions_digest: String,
    /// Configuration values to change on the way (`null` clears one); others are kept.
    #[schema(value_type = Object)]
    config: Option<Map<String, Value>>,
}

/// Updates an install to a newer version, consenting to its permissions (admin). This is how
/// an update that needs consent is completed.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/installs/{plugin}/update", tag = "versions", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("plugin" = String, Path, description = "Plugin id")),
    request_body = UpdateRequest,
    responses((status = 200, body = InstallView), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn update_install(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, plugin)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateRequest>,
) -> Result<Json<InstallView>> {
    let install = super::updates::update(
        &state,
        &principal,
        &slug,
        &plugin,
        &body.version,
        &body.permissions_digest,
        body.config.as_ref(),
    )
    .await?;
    let host = state.runtime().ok().map(|runtime| runtime.host.as_ref());
    Ok(Json(
        InstallView::of(&install, host)
            .with_deprecation(state.db())
            .await?,
    ))
}

/// Returns an install to its previous version, with the grant and configuration it had there
/// (admin). 409 `nothing_to_roll_back` when there is none.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/installs/{plugin}/rollback", tag = "versions", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("plugin" = String, Path, description = "Plugin id")),
    responses((status = 200, body = InstallView), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn rollback_install(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, plugin)): Path<(String, String)>,
) -> Result<Json<InstallView>> {
    let install = super::rollback::tenant_rollback(&state, &principal, &slug, &plugin).await?;
    let host = state.runtime().ok().map(|runtime| runtime.host.as_ref());
    Ok(Json(
        InstallView::of(&install, host)
            .with_deprecation(state.db())
            .await?,
    ))
}

/// `POST /v1/plugins/{id}/versions/{v}/yank`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct YankRequest {
    /// `security`, `malicious`, `broken`, `legal`, `policy` or `publisher_request`.
    reason_code: Option<String>,
    /// The evidence: what was found, for the publisher and the tenants.
    reason: Option<String>,
    /// A security yank moves every install off the version at once (default false).
    #[serde(default)]
    security: bool,
}

/// What happened to one install.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MovedInstall {
    /// The tenant's slug.
    tenant: String,
    from: String,
    /// The version it runs now; null when it was disabled.
    to: Option<String>,
    /// `moved` or `disabled`.
    status: String,
    /// Why it was disabled.
    reason: Option<String>,
}

fn moved_installs(values: Vec<Value>) -> Vec<MovedInstall> {
    values
        .into_iter()
        .map(|v| MovedInstall {
            tenant: v["tenant"].as_str().unwrap_or_default().to_owned(),
            from: v["from"].as_str().unwrap_or_default().to_owned(),
            to: v["to"].as_str().map(str::to_owned),
            status: v["status"].as_str().unwrap_or_default().to_owned(),
            reason: v["reason"].as_str().map(str::to_owned),
        })
        .collect()
}

/// A yank.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct YankView {
    plugin: String,
    version: String,
    yanked: bool,
    /// RFC 3339.
    yanked_at: String,
    security: bool,
    /// The installs a security yank moved or disabled.
    installs: Vec<MovedInstall>,
}

/// Yanks a version (operator): no new installs, updates or rollbacks to it; a security yank
/// also moves every install off it in the same transaction.
#[utoipa::path(post, path = "/v1/plugins/{id}/versions/{v}/yank", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id"), ("v" = String, Path, description = "Version")),
    request_body = YankRequest,
    responses((status = 200, body = YankView), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn yank_version(
    State(state): State<AppState>,
    principal: Principal,
    Path((plugin, version)): Path<(String, String)>,
    JsonBody(body): JsonBody<YankRequest>,
) -> Result<Json<YankView>> {
    let operator = principal.operator()?;
    let yanked = super::yank::yank(
        &state,
        operator,
        &plugin,
        &version,
        body.reason_code.as_deref(),
        body.reason.as_deref(),
        body.security,
    )
    .await?;
    Ok(Json(YankView {
        plugin,
        version: yanked.version,
        yanked: true,
        yanked_at: yanked.yanked_at,
        security: body.security,
        installs: moved_installs(yanked.installs),
    }))
}

/// `POST /v1/plugins/{id}/rollback`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PluginRollbackRequest {
    /// The version every install on a newer one returns to.
    to_version: String,
    /// Why, for the tenants and the publisher.
    reason: Option<String>,
}

/// An operator rollback.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginRollbackView {
    plugin: String,
    to_version: String,
    installs: Vec<MovedInstall>,
}

/// Moves every install on a newer version to `to_version` (operator). An install that was not
/// granted a permission `to_version` asks for is disabled instead.
#[utoipa::path(post, path = "/v1/plugins/{id}/rollback", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id")), request_body = PluginRollbackRequest,
    responses((status = 200, body = PluginRollbackView), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn rollback_plugin(
    State(state): State<AppState>,
    principal: Principal,
    Path(plugin): Path<String>,
    JsonBody(body): JsonBody<PluginRollbackRequest>,
) -> Result<Json<PluginRollbackView>> {
    let operator = principal.operator()?;
    let done = super::rollback::operator_rollback(
        &state,
        operator,
        &plugin,
        &body.to_version,
        body.reason.as_deref(),
    )
    .await?;
    Ok(Json(PluginRollbackView {
        plugin,
        to_version: done.to_version,
        installs: moved_installs(done.installs),
    }))
}

/// `POST /v1/plugins/{id}/block`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlockRequest {
    /// `security`, `malicious`, `broken`, `legal`, `policy` or `publisher_request`.
    reason_code: Option<String>,
    /// The evidence.
    reason: Option<String>,
}

/// `POST /v1/plugins/{id}/unblock`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnblockRequest {
    /// Why.
    reason: Option<String>,
}

/// A plugin's block.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlockView {
    plugin: String,
    blocked: bool,
    /// RFC 3339, while blocked.
    blocked_at: Option<String>,
    /// Installs switched off (or back on).
    installs: usize,
}

/// Blocks a plugin everywhere (operator): disabled for every tenant, hidden from the catalog,
/// refused for installs.
#[utoipa::path(post, path = "/v1/plugins/{id}/block", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id")), request_body = BlockRequest,
    responses((status = 200, body = BlockView), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn block_plugin(
    State(state): State<AppState>,
    principal: Principal,
    Path(plugin): Path<String>,
    JsonBody(body): JsonBody<BlockRequest>,
) -> Result<Json<BlockView>> {
    principal.operator()?;
    let blocked = super::block::block(
        &state,
        &Actor::from(&principal),
        &plugin,
        body.reason_code.as_deref(),
        body.reason.as_deref(),
    )
    .await?;
    Ok(Json(BlockView {
        plugin,
        blocked: true,
        blocked_at: blocked.blocked_at,
        installs: blocked.installs,
    }))
}

/// Lifts a plugin's block (operator): installs run again as their tenants set them.
#[utoipa::path(post, path = "/v1/plugins/{id}/unblock", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id")), request_body = UnblockRequest,
    responses((status = 200, body = BlockView), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn unblock_plugin(
    State(state): State<AppState>,
    principal: Principal,
    Path(plugin): Path<String>,
    JsonBody(body): JsonBody<UnblockRequest>,
) -> Result<Json<BlockView>> {
    principal.operator()?;
    let unblocked = super::block::unblock(
        &state,
        &Actor::from(&principal),
        &plugin,
        body.reason.as_deref(),
    )
    .await?;
    Ok(Json(BlockView {
        plugin,
        blocked: false,
        blocked_at: None,
        installs: unblocked.installs,
    }))
}

/// `POST /v1/plugins/{id}/appeals`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppealRequest {
    /// `yank` or `block`.
    target: String,
    /// The yanked version (for `yank`).
    version: Option<String>,
    /// The publisher's case.
    text: Option<String>,
}

/// Appeals a yank or a block of the publisher's plugin (publisher member), once per yank or
/// block.
#[utoipa::path(post, path = "/v1/plugins/{id}/appeals", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Plugin id")), request_body = AppealRequest,
    responses((status = 201, body = Appeal), (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
async fn file_appeal(
    State(state): State<AppState>,
    principal: Principal,
    Path(plugin): Path<String>,
    JsonBody(body): JsonBody<AppealRequest>,
) -> Result<(StatusCode, Json<Appeal>)> {
    let appeal = appeals::file(
        &state,
        &principal,
        &plugin,
        &body.target,
        body.version.as_deref(),
        body.text.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(appeal)))
}

/// Which appeals to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AppealsQuery {
    /// `pending` (default) or `all`.
    status: Option<String>,
}

/// Appeals, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AppealList {
    items: Vec<Appeal>,
}

/// Lists appeals (reviewers and operators): pending ones by default.
#[utoipa::path(get, path = "/v1/appeals", tag = "versions", security(("bearer" = [])), params(AppealsQuery),
    responses((status = 200, body = AppealList), (status = 400, body = ApiError), (status = 403, body = ApiError)))]
async fn list_appeals(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<AppealsQuery>, QueryRejection>,
) -> Result<Json<AppealList>> {
    principal.reviewer()?;
    let query = crate::body::query(query)?;
    let pending_only = match query.status.as_deref() {
        None | Some("pending") => true,
        Some("all") => false,
        Some(other) => {
            return Err(Error::bad_request(
                "invalid_query",
                format!("status must be \"pending\" or \"all\", not {other:?}"),
            ));
        }
    };
    Ok(Json(AppealList {
        items: appeals::list(&state, pending_only).await?,
    }))
}

/// `POST /v1/appeals/{id}/decision`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppealDecision {
    /// `uphold` (the yank or block stands) or `reverse` (it is lifted).
    decision: String,
    /// Why, for the publisher.
    reason: Option<String>,
}

/// Decides an appeal (a reviewer or operator who did not make the yank or block).
#[utoipa::path(post, path = "/v1/appeals/{id}/decision", tag = "versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Appeal id")), request_body = AppealDecision,
    responses((status = 200, body = Appeal), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn decide_appeal(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AppealDecision>,
) -> Result<Json<Appeal>> {
    let decider = principal.reviewer()?;
    let appeal =
        appeals::decide(&state, decider, &id, &body.decision, body.reason.as_deref()).await?;
    Ok(Json(appeal))
}
