//! `/v1/plans` and `/v1/tenants/…`: plans, tenants, members, API keys, usage.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::members::Member;
use super::plans::{DEFAULT_PLAN, Plan, PlanChange};
use super::{Access, Tenant, TenantRole, api_keys, authorize, members, usage};
use crate::auth::{Caller, Principal};
use crate::body::JsonBody;
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, Error, Result};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans))
        .routes(routes!(update_plan))
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(get_tenant, update_tenant, delete_tenant))
        .routes(routes!(restore_tenant))
        .routes(routes!(add_member, list_members))
        .routes(routes!(set_member_role, remove_member))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
        .routes(routes!(tenant_usage))
}

// ---------------------------------------------------------------------------------------------
// Plans

/// A plan's quotas.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Quotas {
    max_installs: i64,
    invocations_per_month: i64,
    kv_bytes: i64,
    memory_mb: i64,
    /// `null`: the host's default.
    fuel_per_call: Option<i64>,
    timeout_ms: i64,
    outbound_requests_per_minute: i64,
    api_requests_per_minute: i64,
    /// Invocations one inbound event may start across all its emit hops.
    max_invocations_per_event: i64,
    /// The tenant's plugin calls running at once on a host.
    max_concurrent_calls: i64,
    /// Core instance slots the tenant's running calls may hold together on a host.
    max_instance_slots: i64,
    /// Memory the tenant's running calls may reserve together on a host (each reserves its
    /// own `memory_mb`).
    memory_share_mb: i64,
    /// Days the run log keeps each run.
    run_retention_days: i64,
    /// Runs the run log keeps at most (the oldest go first).
    max_runs: i64,
    /// Attempts a queued (asynchronous) event gets before it is dead-lettered.
    event_attempts: i64,
    /// The tenant's asynchronous events that may wait in the queue at once.
    max_queued_events: i64,
}

/// A plan's feature gates.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Features {
    /// Whether tenants on the plan may install paid plugins.
    paid_plugins: bool,
}

/// A plan.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlanView {
    name: String,
    /// Cheapest first.
    position: i64,
    quotas: Quotas,
    features: Features,
    price: PriceView,
}

/// What a plan costs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PriceView {
    /// Minor units a month (0: free).
    monthly: i64,
    /// ISO 4217.
    currency: String,
    /// Days of the trial a tenant may take once (0: none).
    trial_days: i64,
}

impl From<&Plan> for Quotas {
    fn from(plan: &Plan) -> Quotas {
        Quotas {
            max_installs: plan.max_installs,
            invocations_per_month: plan.invocations_per_month,
            kv_bytes: plan.kv_bytes,
            memory_mb: plan.memory_mb,
            fuel_per_call: plan.fuel_per_call,
            timeout_ms: plan.timeout_ms,
            outbound_requests_per_minute: plan.outbound_requests_per_minute,
            api_requests_per_minute: plan.api_requests_per_minute,
            max_invocations_per_event: plan.max_invocations_per_event,
            max_concurrent_calls: plan.max_concurrent_calls,
            max_instance_slots: plan.max_instance_slots,
            memory_share_mb: plan.memory_share_mb,
            run_retention_days: plan.run_retention_days,
            max_runs: plan.max_runs,
            event_attempts: plan.event_attempts,
            max_queued_events: plan.max_queued_events,
        }
    }
}

impl From<&Plan> for PlanView {
    fn from(plan: &Plan) -> PlanView {
        PlanView {
            name: plan.name.clone(),
            position: plan.position,
            quotas: Quotas::from(plan),
            features: Features {
                paid_plugins: plan.paid_plugins,
            },
            price: PriceView {
                monthly: plan.price_monthly,
                currency: plan.currency.clone(),
                trial_days: plan.trial_days,
            },
        }
    }
}

/// The plans.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlanList {
    items: Vec<PlanView>,
}

/// Lists the plans with their quotas and feature gates (anyone).
#[utoipa::path(get, path = "/v1/plans", tag = "tenants",
    responses((status = 200, body = PlanList), (status = 500, description = "The database failed", body = ApiError)))]
async fn list_plans(State(state): State<AppState>) -> Result<Json<PlanList>> {
    let plans = super::plans(state.db()).await?;
    Ok(Json(PlanList {
        items: plans.iter().map(PlanView::from).collect(),
    }))
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(deserializer).map(Some)
}

/// `PUT /v1/plans/{name}`: the quotas to change; fields left out keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanUpdate {
    max_installs: Option<i64>,
    invocations_per_month: Option<i64>,
    kv_bytes: Option<i64>,
    memory_mb: Option<i64>,
    /// `null` returns to the host's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    fuel_per_call: Option<Option<i64>>,
    timeout_ms: Option<i64>,
    outbound_requests_per_minute: Option<i64>,
    api_requests_per_minute: Option<i64>,
    paid_plugins: Option<bool>,
    max_invocations_per_event: Option<i64>,
    max_concurrent_calls: Option<i64>,
    max_instance_slots: Option<i64>,
    memory_share_mb: Option<i64>,
    run_retention_days: Option<i64>,
    max_runs: Option<i64>,
    event_attempts: Option<i64>,
    max_queued_events: Option<i64>,
    /// The monthly price in minor units of the plan's currency (0: free).
    price_monthly: Option<i64>,
    /// Days of the trial a tenant may take once (0: none).
    trial_days: Option<i64>,
}

/// Changes a plan's quotas and feature gates (operator). Quotas are positive integers.
#[utoipa::path(put, path = "/v1/plans/{name}", tag = "tenants", security(("bearer" = [])),
    params(("name" = String, Path, description = "Plan name")), request_body = PlanUpdate,
    responses((status = 200, body = PlanView), (status = 400, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn update_plan(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PlanUpdate>,
) -> Result<Json<PlanView>> {
    let operator = principal.operator()?;
    let change = PlanChange {
        max_installs: body.max_installs,
        invocations_per_month: body.invocations_per_month,
        kv_bytes: body.kv_bytes,
        memory_mb: body.memory_mb,
        fuel_per_call: body.fuel_per_call,
        timeout_ms: body.timeout_ms,
        outbound_requests_per_minute: body.outbound_requests_per_minute,
        api_requests_per_minute: body.api_requests_per_minute,
        paid_plugins: body.paid_plugins,
        max_invocations_per_event: body.max_invocations_per_event,
        max_concurrent_calls: body.max_concurrent_calls,
        max_instance_slots: body.max_instance_slots,
        memory_share_mb: body.memory_share_mb,
        run_retention_days: body.run_retention_days,
        max_runs: body.max_runs,
        event_attempts: body.event_attempts,
        max_queued_events: body.max_queued_events,
        price_monthly: body.price_monthly,
        trial_days: body.trial_days,
    };
    let plan = super::plans::update_plan(&state, &name, &change).await?;
    tracing::info!(operator = %operator.id, plan = %name, ?change, "plan updated");
    Ok(Json(PlanView::from(&plan)))
}

// ---------------------------------------------------------------------------------------------
// Tenants

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TenantView {
    id: String,
    slug: String,
    name: String,
    plan: String,
    /// RFC 3339, UTC.
    created_at: String,
    /// The caller's role: `owner`, `admin`, `member`, `readonly`, or `operator` / `api_key`
    /// (`null` in an operator's list for tenants they are not a member of).
    role: Option<String>,
    /// When it was deleted (RFC 3339), for deleted tenants only.
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_at: Option<String>,
    /// When a deleted tenant will be purged (RFC 3339), for deleted tenants only.
    #[serde(skip_serializing_if = "Option::is_none")]
    purge_after: Option<String>,
}

impl TenantView {
    fn new(tenant: Tenant, role: Option<&str>) -> TenantView {
        TenantView {
            id: tenant.id,
            slug: tenant.slug,
            name: tenant.name,
            plan: tenant.plan,
            created_at: rfc3339(tenant.created_at),
            role: role.map(str::to_owned),
            deleted_at: tenant.deleted_at.map(rfc3339),
            purge_after: tenant.purge_after.map(rfc3339),
        }
    }

    fn of(access: Access) -> TenantView {
        let label = access.acting.label();
        TenantView::new(access.tenant, Some(label))
    }
}

/// `POST /v1/tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTenant {
    /// Lowercase a-z, 0-9 and '-', 2 to 40 characters, starting with a letter.
    slug: String,
    name: String,
    /// Defaults to `free`; other plans need the operator role.
    plan: Option<String>,
}

/// Creates a tenant; the caller becomes its owner. An account may create a few tenants (the
/// operator's `--max-tenants-per-account`, 3 by default; 409 `tenant_limit_reached` beyond).
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])),
    request_body = CreateTenant,
    responses((status = 201, body = TenantView), (status = 400, body = ApiError),
        (status = 403, body = ApiError), (status = 409, body = ApiError)))]
async fn create_tenant(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(body): JsonBody<CreateTenant>,
) -> Result<(StatusCode, Json<TenantView>)> {
    let user = principal.user()?;
    let plan = body.plan.as_deref().unwrap_or(DEFAULT_PLAN);
    let tenant = super::create(
        state.db(),
        &body.slug,
        &body.name,
        plan,
        user,
        state.settings().max_tenants_per_account,
        now_ms(),
    )
    .await?;
    tracing::info!(tenant = %tenant.id, slug = %tenant.slug, owner = %user.id, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(TenantView::new(tenant, Some(TenantRole::Owner.as_str()))),
    ))
}

/// `GET /v1/tenants` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListTenantsQuery {
    /// Operators only: include deleted tenants still in their grace period.
    include_deleted: Option<bool>,
}

/// Tenants.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TenantList {
    items: Vec<TenantView>,
}

/// Lists the caller's tenants (an operator's: every tenant).
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])),
    params(ListTenantsQuery),
    responses((status = 200, body = TenantList), (status = 400, body = ApiError),
        (status = 403, body = ApiError)))]
async fn list_tenants(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<ListTenantsQuery>, QueryRejection>,
) -> Result<Json<TenantList>> {
    let Query(query) = query.map_err(|e| {
        Error::bad_request(
            "invalid_query",
            format!("invalid query string: {}", e.body_text()),
        )
    })?;
    let include_deleted = query.include_deleted.unwrap_or(false);
    let tenants = super::visible(state.db(), &principal, include_deleted).await?;
    Ok(Json(TenantList {
        items: tenants
            .into_iter()
            .map(|(tenant, role)| TenantView::new(tenant, role.map(TenantRole::as_str)))
            .collect(),
    }))
}

/// A tenant (any member, the tenant's API key, an operator).
#[utoipa::path(get, path = "/v1/tenants/{tenant}", tag = "tenants", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = TenantView), (status = 404, body = ApiError)))]
async fn get_tenant(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<TenantView>> {
    let access = authorize(state.db(), &principal, &slug, TenantRole::Readonly).await?;
    Ok(Json(TenantView::of(access)))
}

/// `PATCH /v1/tenants/{tenant}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateTenant {
    /// Owner or admin.
    name: Option<String>,
    /// Operator only.
    plan: Option<String>,
}

/// Renames a tenant (owner, admin) or moves it to another plan (operator).
#[utoipa::path(patch, path = "/v1/tenants/{tenant}", tag = "tenants", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")), request_body = UpdateTenant,
    responses((status = 200, body = TenantView), (status = 400, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn update_tenant(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<UpdateTenant>,
) -> Result<Json<TenantView>> {
    let change = super::TenantChange {
        name: body.name.as_deref(),
        plan: body.plan.as_deref(),
    };
    let access = super::update(&state, &principal, &slug, change).await?;
    let tenant = access.tenant;
    tracing::info!(tenant = %tenant.id, plan = %tenant.plan, "tenant updated");
    Ok(Json(TenantView::new(tenant, Some(access.acting.label()))))
}

/// Deletes a tenant (owner, operator): it is gone at once and its API keys are revoked; an
/// operator may restore it until `purge_after`, when it is removed for good.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}", tag = "tenants", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = TenantView), (status = 403, body = ApiError),
        (status = 404, body = ApiError)))]
async fn delete_tenant(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<TenantView>> {
    let access = authorize(state.db(), &principal, &slug, TenantRole::Owner).await?;
    let grace = state.settings().tenant_grace_ms;
    let tenant = super::soft_delete(state.db(), &access.tenant, now_ms(), grace).await?;
    tracing::info!(tenant = %tenant.id, purge_after = ?tenant.purge_after, "tenant deleted");
    Ok(Json(TenantView::new(tenant, Some(access.acting.label()))))
}

/// Restores a deleted tenant within its grace period (operator).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/restore", tag = "tenants",
    security(("bearer" = [])), params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = TenantView), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn restore_tenant(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<TenantView>> {
    let operator = principal.operator()?;
    let tenant = super::restore(state.db(), &slug, now_ms()).await?;
    let role = super::member_role(state.db(), &tenant.id, &operator.id).await?;
    tracing::info!(tenant = %tenant.id, operator = %operator.id, "tenant restored");
    let label = role.map_or("operator", TenantRole::as_str);
    Ok(Json(TenantView::new(tenant, Some(label))))
}

// ---------------------------------------------------------------------------------------------
// Members

/// A member of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberView {
    user_id: String,
    email: String,
    name: String,
    /// `owner`, `admin`, `member` or `readonly`.
    role: String,
    /// RFC 3339, UTC.
    created_at: String,
}

impl From<Member> for MemberView {
    fn from(member: Member) -> MemberView {
        MemberView {
            user_id: member.user_id,
            email: member.email,
            name: member.name,
            role: member.role.as_str().to_owned(),
            created_at: rfc3339(member.created_at),
        }
    }
}

/// Members of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberList {
    items: Vec<MemberView>,
}

/// `POST /v1/tenants/{tenant}/members`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddMember {
    /// The email of an existing account.
    email: String,
    /// `owner` (owners only), `admin`, `member` or `readonly`.
    role: String,
}

/// The role the caller acts with, for the members rules.
fn acting_role(access: &Access) -> Result<TenantRole> {
    access
        .acting
        .effective_role()
        .ok_or_else(|| Error::Internal("authorized caller without a role".to_owned()))
}

/// Adds an account to a tenant (owner, admin; only an owner adds owners).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members", tag = "tenants",
    security(("bearer" = [])), params(("tenant" = String, Path, description = "Tenant slug")),
    request_body = AddMember,
    responses((status = 201, body = MemberView), (status = 400, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
async fn add_member(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<AddMember>,
) -> Result<(StatusCode, Json<MemberView>)> {
    let access = authorize(state.db(), &principal, &slug, TenantRole::Admin).await?;
    let role = TenantRole::parse(&body.role)?;
    let member = members::add(
        state.db(),
        &access.tenant,
        acting_role(&access)?,
        &body.email,
        role,
        now_ms(),
    )
    .await?;
    tracing::info!(tenant = %access.tenant.id, user = %member.user_id, role = role.as_str(), "member added");
    Ok((StatusCode::CREATED, Json(MemberView::from(member))))
}

/// Lists a tenant's members (any member).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members", tag = "tenants",
    security(("bearer" = [])), params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = MemberList), (status = 404, body = ApiError)))]
async fn list_members(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<MemberList>> {
    let tenant = super::access(state.db(), &principal, &slug, TenantRole::Readonly).await?;
    let members = members::list(state.db(), &tenant).await?;
    Ok(Json(MemberList {
        items: members.into_iter().map(MemberView::from).collect(),
    }))
}

/// `PATCH /v1/tenants/{tenant}/members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetRole {
    /// `owner`, `admin`, `member` or `readonly`.
    role: String,
}

/// Changes a member's role (owner, admin; only an owner makes or changes owners; the last
/// owner keeps the role).
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/members/{user_id}", tag = "tenants",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"),
        ("user_id" = String, Path, description = "The member's account id")),
    request_body = SetRole,
    responses((status = 200, body = MemberView), (status = 400, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
async fn set_member_role(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, user_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetRole>,
) -> Result<Json<MemberView>> {
    let access = authorize(state.db(), &principal, &slug, TenantRole::Admin).await?;
    let role = TenantRole::parse(&body.role)?;
    let member = members::set_role(
        state.db(),
        &access.tenant,
        acting_role(&access)?,
        &user_id,
        role,
    )
    .await?;
    tracing::info!(tenant = %access.tenant.id, user = %user_id, role = role.as_str(), "member role set");
    Ok(Json(MemberView::from(member)))
}

/// Removes a member (owner, admin; any member may leave; the last owner stays).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/members/{user_id}", tag = "tenants",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"),
        ("user_id" = String, Path, description = "The member's account id")),
    responses((status = 204), (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
async fn remove_member(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let leaving = matches!(&principal.caller, Caller::User(user) if user.id == user_id);
    let needed = if leaving {
        TenantRole::Readonly
    } else {
        TenantRole::Admin
    };
    let access = authorize(state.db(), &principal, &slug, needed).await?;
    // Leaving oneself counts as an owner's act on one's own membership; the last-owner rule
    // still holds.
    let acting_as = if leaving {
        TenantRole::Owner
    } else {
        acting_role(&access)?
    };
    members::remove(state.db(), &access.tenant, acting_as, &user_id).await?;
    tracing::info!(tenant = %access.tenant.id, user = %user_id, "member removed");
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// API keys

/// `POST /v1/tenants/{tenant}/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKey {
    /// What the key is for, 1 to 100 characters.
    name: String,
}

/// A new API key; `key` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedApiKey {
    id: String,
    /// The bearer token. It is not stored and cannot be shown again.
    key: String,
    name: String,
    /// RFC 3339, UTC.
    created_at: String,
}

/// An API key (without its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyView {
    id: String,
    name: String,
    /// RFC 3339, UTC.
    created_at: String,
    /// RFC 3339, UTC; `null` while the key works.
    revoked_at: Option<String>,
}

/// A tenant's API keys.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyList {
    items: Vec<ApiKeyView>,
}

/// Makes an API key for the tenant (owner, admin). The key acts as a member of the tenant.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/api-keys", tag = "tenants",
    security(("bearer" = [])), params(("tenant" = String, Path, description = "Tenant slug")),
    request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 400, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn create_api_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>)> {
    let tenant = super::access(state.db(), &principal, &slug, TenantRole::Admin).await?;
    let (key, secret) = api_keys::create(
        state.db(),
        &crate::audit::Actor::from(&principal),
        &tenant,
        &body.name,
        now_ms(),
    )
    .await?;
    tracing::info!(tenant = %tenant.id, key = %key.id, "tenant API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            id: key.id,
            key: secret,
            name: key.name,
            created_at: rfc3339(key.created_at),
        }),
    ))
}

/// Lists the tenant's API keys, without secrets (owner, admin).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/api-keys", tag = "tenants",
    security(("bearer" = [])), params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = ApiKeyList), (status = 403, body = ApiError),
        (status = 404, body = ApiError)))]
async fn list_api_keys(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<ApiKeyList>> {
    let tenant = super::access(state.db(), &principal, &slug, TenantRole::Admin).await?;
    let keys = api_keys::list(state.db(), &tenant).await?;
    Ok(Json(ApiKeyList {
        items: keys
            .into_iter()
            .map(|key| ApiKeyView {
                id: key.id,
                name: key.name,
                created_at: rfc3339(key.created_at),
                revoked_at: key.revoked_at.map(rfc3339),
            })
            .collect(),
    }))
}

/// Revokes one of the tenant's API keys (owner, admin).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/api-keys/{id}", tag = "tenants",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"),
        ("id" = String, Path, description = "API key id")),
    responses((status = 204), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn revoke_api_key(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let tenant = super::access(state.db(), &principal, &slug, TenantRole::Admin).await?;
    api_keys::revoke(
        state.db(),
        &crate::audit::Actor::from(&principal),
        &tenant,
        &id,
        now_ms(),
    )
    .await?;
    tracing::info!(tenant = %tenant.id, key = %id, "tenant API key revoked");
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Usage

/// A billing period, `[start, end)`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Period {
    /// RFC 3339, UTC: the first instant of the calendar month.
    start: String,
    /// RFC 3339, UTC: the first instant of the next month.
    end: String,
}

/// What the tenant has used.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UsageTotals {
    /// Plugins installed now.
    installs: i64,
    /// Invocations in the period.
    invocations: i64,
    /// Key-value bytes written in the period (what the tenant stores now is kept by the host's
    /// kv store, which the marketplace does not read).
    kv_bytes: i64,
    /// Outbound HTTP requests in the period.
    outbound_requests: i64,
}

/// One quota and its use.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UsageItem {
    /// `installs`, `invocations` or `kv_bytes`.
    name: String,
    used: i64,
    limit: i64,
}

/// Usage of one installed plugin.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginUsage {
    plugin: String,
    invocations: i64,
    failures: i64,
    /// Wall-clock time of the calls, in microseconds.
    wall_time_us: i64,
    fuel: i64,
    /// Key-value bytes written in the period (as in the totals).
    kv_bytes: i64,
    kv_bytes_written: i64,
    outbound_requests: i64,
}

/// A tenant's usage in the current period against its plan.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UsageView {
    plan: String,
    period: Period,
    quotas: Quotas,
    features: Features,
    usage: UsageTotals,
    /// Each quota next to its use.
    items: Vec<UsageItem>,
    plugins: Vec<PluginUsage>,
}

/// The tenant's usage this calendar month against its plan's quotas (any member).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/usage", tag = "tenants",
    security(("bearer" = [])), params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = UsageView), (status = 404, body = ApiError)))]
async fn tenant_usage(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<UsageView>> {
    let tenant = super::access(state.db(), &principal, &slug, TenantRole::Readonly).await?;
    let plan = super::plan(state.db(), &tenant.plan).await?;
    let (start, end) = usage::month_of(now_ms())?;
    let meter = state.runtime().ok().map(|runtime| runtime.host.meter());
    let used = usage::counts(state.db(), meter, &tenant, start).await?;
    let items = vec![
        UsageItem {
            name: "installs".to_owned(),
            used: used.installs,
            limit: plan.max_installs,
        },
        UsageItem {
            name: "invocations".to_owned(),
            used: used.invocations,
            limit: plan.invocations_per_month,
        },
        UsageItem {
            name: "kv_bytes".to_owned(),
            used: used.kv_bytes_written,
            limit: plan.kv_bytes,
        },
    ];
    Ok(Json(UsageView {
        plan: plan.name.clone(),
        period: Period {
            start: rfc3339(start),
            end: rfc3339(end),
        },
        quotas: Quotas::from(&plan),
        features: Features {
            paid_plugins: plan.paid_plugins,
        },
        usage: UsageTotals {
            installs: used.installs,
            invocations: used.invocations,
            kv_bytes: used.kv_bytes_written,
            outbound_requests: used.outbound_requests,
        },
        items,
        plugins: used
            .plugins
            .into_iter()
            .map(|p| PluginUsage {
                plugin: p.plugin,
                invocations: p.invocations,
                failures: p.failures,
                wall_time_us: p.wall_time_us,
                fuel: p.fuel,
                kv_bytes: p.kv_bytes_written,
                kv_bytes_written: p.kv_bytes_written,
                outbound_requests: p.outbound_requests,
            })
            .collect(),
    }))
}
