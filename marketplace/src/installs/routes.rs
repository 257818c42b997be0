//! `/v1/tenants/{tenant}/installs`: install with consent, list, configure, enable/disable,
//! uninstall.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::deploy::host_error;
use super::{Install, config};
use crate::auth::Principal;
use crate::body::JsonBody;
use crate::clock::rfc3339;
use crate::db::Db;
use crate::error::{ApiError, Result};
use crate::state::AppState;
use crate::tenants::{self, TenantRole};
use crate::versions::deprecation::{self, Deprecation, DeprecationView};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(install, list))
        .routes(routes!(update, uninstall))
        .routes(routes!(reset_breaker))
}

/// A failed call that counted against an install's circuit breaker.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CallFailureView {
    /// The call's error code, e.g. `trap` or `timeout`.
    code: String,
    message: String,
    /// When the call ended (RFC 3339).
    at: String,
}

/// An install's circuit breaker, as the host sees it now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BreakerView {
    /// `closed`, `open` or `half_open`.
    state: String,
    /// Why it opened (while not closed).
    reason: Option<String>,
    /// The latest failures that counted against the plugin, newest first.
    last_errors: Vec<CallFailureView>,
    /// When it opened (while not closed; RFC 3339).
    opened_at: Option<String>,
}

/// Unix ms of a wall-clock time (0 before the epoch).
fn unix_ms(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl From<plinth_host::BreakerStatus> for BreakerView {
    fn from(status: plinth_host::BreakerStatus) -> Self {
        BreakerView {
            state: status.state.as_str().to_owned(),
            reason: status.reason,
            last_errors: status
                .last_errors
                .into_iter()
                .map(|failure| CallFailureView {
                    code: failure.code,
                    message: failure.message,
                    at: rfc3339(unix_ms(failure.at)),
                })
                .collect(),
            opened_at: status.opened_at.map(|at| rfc3339(unix_ms(at))),
        }
    }
}

/// The breaker of the tenant's install of `plugin` in `host`, if the host runs it.
fn breaker_of(host: &plinth_host::Host, tenant_id: &str, plugin: &str) -> Option<BreakerView> {
    host.breaker_status(tenant_id, plugin)
        .map(BreakerView::from)
}

/// `POST /v1/tenants/{tenant}/installs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstallRequest {
    /// The plugin id.
    plugin: String,
    /// The version; default the newest approved, non-yanked one.
    version: Option<String>,
    /// The digest of the permission set the admin was shown
    /// (`GET /v1/plugins/{id}/versions/{v}`): installing is consenting to exactly it.
    permissions_digest: String,
    /// Configuration values by key (secrets are sealed and never shown again).
    #[serde(default)]
    #[schema(value_type = Object)]
    config: Map<String, Value>,
    /// `manual` (default), `patch`, `minor` or `any`.
    update_policy: Option<String>,
}

impl From<InstallRequest> for super::manage::NewInstall {
    fn from(request: InstallRequest) -> Self {
        super::manage::NewInstall {
            plugin: request.plugin,
            version: request.version,
            permissions_digest: request.permissions_digest,
            config: request.config,
            update_policy: request.update_policy,
        }
    }
}

/// An install.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InstallView {
    plugin: String,
    version: String,
    /// `active` or `disabled`.
    status: String,
    permissions_digest: String,
    update_policy: String,
    /// Whether automatic updates are stopped for this install.
    pinned: bool,
    /// Whether its runs keep their payload and output (capped, secrets redacted).
    capture_runs: bool,
    /// The version a rollback returns to, if any.
    previous_version: Option<String>,
    /// `{values, secrets_set}`: plain values, and which secrets are set (never their values).
    #[schema(value_type = Object)]
    config: Value,
    installed_at: String,
    updated_at: String,
    /// The install's circuit breaker; null when the host does not run the install.
    breaker: Option<BreakerView>,
    /// The plugin's deprecation when it covers the installed version (the console shows it as
    /// a banner); null otherwise.
    deprecation: Option<DeprecationView>,
}

impl From<&Install> for InstallView {
    fn from(install: &Install) -> Self {
        InstallView {
            plugin: install.plugin_id.clone(),
            version: install.version.clone(),
            status: if install.enabled {
                "active"
            } else {
                "disabled"
            }
            .to_owned(),
            permissions_digest: install.permissions_digest.clone(),
            update_policy: install.update_policy.clone(),
            pinned: install.pinned,
            capture_runs: install.capture_runs,
            previous_version: install.previous_version.clone(),
            config: config::public_view(&install.config),
            installed_at: rfc3339(install.created_at),
            updated_at: rfc3339(install.updated_at),
            breaker: None,
            deprecation: None,
        }
    }
}

impl InstallView {
    /// The view of `install`, with its breaker if `host` runs it.
    pub(crate) fn of(install: &Install, host: Option<&plinth_host::Host>) -> InstallView {
        let mut view = InstallView::from(install);
        view.breaker =
            host.and_then(|host| breaker_of(host, &install.tenant_id, &install.plugin_id));
        view
    }

    /// This view with the one of `deprecations` that covers its version, if any.
    fn deprecated_by(mut self, deprecations: &[Deprecation]) -> InstallView {
        self.deprecation = deprecations
            .iter()
            .find(|d| d.plugin_id == self.plugin && d.covers(&self.version))
            .map(DeprecationView::from);
        self
    }

    /// This view with its plugin's deprecation, if it covers its version.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Database`].
    pub(crate) async fn with_deprecation(self, db: &Db) -> Result<InstallView> {
        let found = deprecation::covering(db, &self.plugin, &self.version).await?;
        Ok(self.deprecated_by(found.as_slice()))
    }
}

/// Installs a plugin version for the tenant, consenting to its permission set (admin).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/installs", tag = "installs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")), request_body = InstallRequest,
    responses((status = 201, body = InstallView), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn install(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<InstallRequest>,
) -> Result<(StatusCode, Json<InstallView>)> {
    let install = super::manage::install(&state, &principal, &slug, body.into()).await?;
    let host = state.runtime().ok().map(|runtime| runtime.host.as_ref());
    let view = InstallView::of(&install, host)
        .with_deprecation(state.db())
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The tenant's installs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InstallList {
    items: Vec<InstallView>,
}

/// Lists the tenant's installs (any member).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/installs", tag = "installs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = InstallList), (status = 404, body = ApiError)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<InstallList>> {
    let tenant = tenants::access(state.db(), &principal, &slug, TenantRole::Readonly).await?;
    let host = state.runtime().ok().map(|runtime| runtime.host.clone());
    let installs = super::list(state.db(), &tenant.id).await?;
    let deprecations = deprecation::of_installs(state.db(), &tenant.id).await?;
    Ok(Json(InstallList {
        items: installs
            .iter()
            .map(|install| {
                let mut view = InstallView::from(install);
                view.breaker = host
                    .as_ref()
                    .and_then(|host| breaker_of(host, &tenant.id, &install.plugin_id));
                view.deprecated_by(&deprecations)
            })
            .collect(),
    }))
}

/// `PATCH /v1/tenants/{tenant}/installs/{plugin}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstallChange {
    /// Enable or disable the install.
    enabled: Option<bool>,
    /// Values to set (`null` clears one); keys not given keep their value.
    #[schema(value_type = Object)]
    config: Option<Map<String, Value>>,
    /// `manual`, `patch`, `minor` or `any`.
    update_policy: Option<String>,
    /// Pin the install to its version: no automatic updates while pinned.
    pinned: Option<bool>,
    /// Keep each run's payload and output in the run log (capped, secrets redacted).
    capture_runs: Option<bool>,
}

/// Changes an install's configuration, status or update policy (admin).
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/installs/{plugin}", tag = "installs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("plugin" = String, Path, description = "Plugin id")),
    request_body = InstallChange,
    responses((status = 200, body = InstallView), (status = 400, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, plugin)): Path<(String, String)>,
    JsonBody(body): JsonBody<InstallChange>,
) -> Result<Json<InstallView>> {
    let change = super::change::InstallChange {
        enabled: body.enabled,
        config: body.config,
        update_policy: body.update_policy,
        pinned: body.pinned,
        capture_runs: body.capture_runs,
    };
    let (tenant_id, install) =
        super::change::change(&state, &principal, &slug, &plugin, change).await?;
    let mut view = InstallView::from(&install);
    view.breaker = state
        .runtime()
        .ok()
        .and_then(|runtime| breaker_of(&runtime.host, &tenant_id, &plugin));
    Ok(Json(view.with_deprecation(state.db()).await?))
}

/// Uninstalls: the install and its kv data are removed (admin).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/installs/{plugin}", tag = "installs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("plugin" = String, Path, description = "Plugin id")),
    responses((status = 204), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn uninstall(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, plugin)): Path<(String, String)>,
) -> Result<StatusCode> {
    super::manage::uninstall(&state, &principal, &slug, &plugin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Closes an install's circuit breaker: calls run again at once (admin). Answers the breaker
/// as it is then.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/installs/{plugin}/breaker/reset", tag = "installs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("plugin" = String, Path, description = "Plugin id")),
    responses((status = 200, body = BreakerView), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn reset_breaker(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, plugin)): Path<(String, String)>,
) -> Result<Json<BreakerView>> {
    let tenant = tenants::access(state.db(), &principal, &slug, TenantRole::Admin).await?;
    let runtime = state.runtime()?;
    let status = runtime
        .host
        .reset_breaker(&tenant.id, &plugin)
        .map_err(host_error)?;
    tracing::info!(tenant = %tenant.slug, plugin, "circuit breaker reset");
    Ok(Json(BreakerView::from(status)))
}
