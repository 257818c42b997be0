//! Inbox and webhook routes of tenants (`/v1/tenants/{tenant}/…`) and publishers
//! (`/v1/publishers/{ns}/…`), and the operators' inbox (`/v1/operator/notifications`).
//!
//! Reading an inbox: any tenant member (read-only included) / any publisher member. Marking
//! read or unread: a tenant member (not read-only) / any publisher member. Webhooks: a tenant
//! admin / a publisher owner.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::webhooks::{self, WebhookCreated, WebhookView};
use super::{Inbox, Notification, NotificationList};
use crate::auth::Principal;
use crate::body::JsonBody;
use crate::error::{ApiError, Error, Result};
use crate::publishers::{self, MemberRole};
use crate::state::AppState;
use crate::tenants::{self, TenantRole};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publisher_notifications))
        .routes(routes!(tenant_notifications))
        .routes(routes!(operator_notifications))
        .routes(routes!(tenant_mark_read))
        .routes(routes!(tenant_mark_unread))
        .routes(routes!(tenant_read_all))
        .routes(routes!(publisher_mark_read))
        .routes(routes!(publisher_mark_unread))
        .routes(routes!(publisher_read_all))
        .routes(routes!(
            set_tenant_webhook,
            show_tenant_webhook,
            remove_tenant_webhook
        ))
        .routes(routes!(
            set_publisher_webhook,
            show_publisher_webhook,
            remove_publisher_webhook
        ))
}

/// Query of an inbox listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct InboxParams {
    /// `true` for unread notifications only (default `false`).
    unread: Option<String>,
}

/// Whether the listing is of unread notifications only.
fn unread_only(params: Result<Query<InboxParams>, QueryRejection>) -> Result<bool> {
    let params = crate::body::query(params)?;
    match params.unread.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(Error::bad_request(
            "invalid_query",
            format!("query parameter `unread` must be true or false, not {other:?}"),
        )),
    }
}

async fn inbox_of(state: &AppState, inbox: Inbox<'_>, unread: bool) -> Result<NotificationList> {
    Ok(NotificationList {
        items: super::read_inbox(state.db(), inbox, unread).await?,
        unread_count: super::unread_count(state.db(), inbox).await?,
    })
}

/// A publisher's inbox (members only), newest first.
#[utoipa::path(get, path = "/v1/publishers/{ns}/notifications", tag = "notifications", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace"), InboxParams),
    responses((status = 200, body = NotificationList), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn publisher_notifications(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
    params: Result<Query<InboxParams>, QueryRejection>,
) -> Result<Json<NotificationList>> {
    let unread = unread_only(params)?;
    let publisher = publishers::access(state.db(), &principal, &ns).await?;
    let inbox = Inbox {
        kind: "publisher",
        id: &publisher.id,
    };
    Ok(Json(inbox_of(&state, inbox, unread).await?))
}

/// The operators' shared inbox (operators only), newest first: e.g. processor events that
/// match nothing in the ledger.
#[utoipa::path(get, path = "/v1/operator/notifications", tag = "notifications", security(("bearer" = [])),
    params(InboxParams),
    responses((status = 200, body = NotificationList), (status = 400, body = ApiError), (status = 403, body = ApiError)))]
async fn operator_notifications(
    State(state): State<AppState>,
    principal: Principal,
    params: Result<Query<InboxParams>, QueryRejection>,
) -> Result<Json<NotificationList>> {
    let unread = unread_only(params)?;
    principal.operator()?;
    Ok(Json(inbox_of(&state, super::OPERATORS, unread).await?))
}

/// A tenant's inbox (any member, read-only included), newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/notifications", tag = "notifications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), InboxParams),
    responses((status = 200, body = NotificationList), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn tenant_notifications(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    params: Result<Query<InboxParams>, QueryRejection>,
) -> Result<Json<NotificationList>> {
    let unread = unread_only(params)?;
    let tenant = tenants::access(state.db(), &principal, &slug, TenantRole::Readonly).await?;
    let inbox = Inbox {
        kind: "tenant",
        id: &tenant.id,
    };
    Ok(Json(inbox_of(&state, inbox, unread).await?))
}

/// How many notifications were marked read.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Marked {
    marked: u64,
}

/// The id of the tenant `slug` whose notifications the caller may mark.
async fn tenant_marker(state: &AppState, principal: &Principal, slug: &str) -> Result<String> {
    Ok(
        tenants::access(state.db(), principal, slug, TenantRole::Member)
            .await?
            .id,
    )
}

/// Marks a tenant notification read (members; not read-only).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/notifications/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("id" = String, Path, description = "Notification id")),
    responses((status = 200, body = Notification), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn tenant_mark_read(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Json<Notification>> {
    let tenant_id = tenant_marker(&state, &principal, &slug).await?;
    let inbox = Inbox {
        kind: "tenant",
        id: &tenant_id,
    };
    Ok(Json(super::mark(state.db(), inbox, &id, true).await?))
}

/// Marks a tenant notification unread again (members; not read-only).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/notifications/{id}/unread", tag = "notifications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"), ("id" = String, Path, description = "Notification id")),
    responses((status = 200, body = Notification), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn tenant_mark_unread(
    State(state): State<AppState>,
    principal: Principal,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Json<Notification>> {
    let tenant_id = tenant_marker(&state, &principal, &slug).await?;
    let inbox = Inbox {
        kind: "tenant",
        id: &tenant_id,
    };
    Ok(Json(super::mark(state.db(), inbox, &id, false).await?))
}

/// Marks every tenant notification read (members; not read-only).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/notifications/read-all", tag = "notifications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = Marked), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn tenant_read_all(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<Marked>> {
    let tenant_id = tenant_marker(&state, &principal, &slug).await?;
    let inbox = Inbox {
        kind: "tenant",
        id: &tenant_id,
    };
    Ok(Json(Marked {
        marked: super::mark_all_read(state.db(), inbox).await?,
    }))
}

/// Marks a publisher notification read (members).
#[utoipa::path(post, path = "/v1/publishers/{ns}/notifications/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace"), ("id" = String, Path, description = "Notification id")),
    responses((status = 200, body = Notification), (status = 404, body = ApiError)))]
async fn publisher_mark_read(
    State(state): State<AppState>,
    principal: Principal,
    Path((ns, id)): Path<(String, String)>,
) -> Result<Json<Notification>> {
    let publisher = publishers::access(state.db(), &principal, &ns).await?;
    let inbox = Inbox {
        kind: "publisher",
        id: &publisher.id,
    };
    Ok(Json(super::mark(state.db(), inbox, &id, true).await?))
}

/// Marks a publisher notification unread again (members).
#[utoipa::path(post, path = "/v1/publishers/{ns}/notifications/{id}/unread", tag = "notifications", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace"), ("id" = String, Path, description = "Notification id")),
    responses((status = 200, body = Notification), (status = 404, body = ApiError)))]
async fn publisher_mark_unread(
    State(state): State<AppState>,
    principal: Principal,
    Path((ns, id)): Path<(String, String)>,
) -> Result<Json<Notification>> {
    let publisher = publishers::access(state.db(), &principal, &ns).await?;
    let inbox = Inbox {
        kind: "publisher",
        id: &publisher.id,
    };
    Ok(Json(super::mark(state.db(), inbox, &id, false).await?))
}

/// Marks every publisher notification read (members).
#[utoipa::path(post, path = "/v1/publishers/{ns}/notifications/read-all", tag = "notifications", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")),
    responses((status = 200, body = Marked), (status = 404, body = ApiError)))]
async fn publisher_read_all(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
) -> Result<Json<Marked>> {
    let publisher = publishers::access(state.db(), &principal, &ns).await?;
    let inbox = Inbox {
        kind: "publisher",
        id: &publisher.id,
    };
    Ok(Json(Marked {
        marked: super::mark_all_read(state.db(), inbox).await?,
    }))
}

/// `PUT …/webhook`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookRequest {
    /// An `http`/`https` URL on a public address.
    url: String,
}

/// 201 for a new webhook, 200 for a replaced one.
fn set_status(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// The id of the tenant `slug`, whose webhook the caller (an admin) may manage.
async fn tenant_admin(state: &AppState, principal: &Principal, slug: &str) -> Result<String> {
    Ok(
        tenants::access(state.db(), principal, slug, TenantRole::Admin)
            .await?
            .id,
    )
}

/// The id of the publisher `ns`, whose webhook the caller (an owner) may manage.
async fn publisher_owner(state: &AppState, principal: &Principal, ns: &str) -> Result<String> {
    let membership = publishers::membership(state.db(), principal, ns).await?;
    if membership.role != MemberRole::Owner {
        return Err(Error::forbidden(
            "forbidden",
            format!("managing the webhook of publisher {ns:?} needs its owner role"),
        ));
    }
    Ok(membership.publisher.id)
}

/// Sets the tenant's webhook (admin). Answers the signing secret, once; setting it again
/// issues a new one.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/webhook", tag = "notifications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")), request_body = WebhookRequest,
    responses((status = 200, body = WebhookCreated), (status = 201, body = WebhookCreated), (status = 400, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn set_tenant_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<WebhookRequest>,
) -> Result<(StatusCode, Json<WebhookCreated>)> {
    let tenant_id = tenant_admin(&state, &principal, &slug).await?;
    let egress = &state.settings().webhooks.egress;
    let (hook, created) =
        webhooks::set(state.db(), "tenant", &tenant_id, &body.url, egress).await?;
    Ok((set_status(created), Json(hook)))
}

/// The tenant's webhook and how its deliveries fare (admin).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/webhook", tag = "notifications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = WebhookView), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn show_tenant_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<WebhookView>> {
    let tenant_id = tenant_admin(&state, &principal, &slug).await?;
    Ok(Json(
        webhooks::show(state.db(), "tenant", &tenant_id).await?,
    ))
}

/// Removes the tenant's webhook and its queued deliveries (admin).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/webhook", tag = "notifications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 204), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn remove_tenant_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<StatusCode> {
    let tenant_id = tenant_admin(&state, &principal, &slug).await?;
    webhooks::remove(state.db(), "tenant", &tenant_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the publisher's webhook (owner). Answers the signing secret, once; setting it again
/// issues a new one.
#[utoipa::path(put, path = "/v1/publishers/{ns}/webhook", tag = "notifications", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")), request_body = WebhookRequest,
    responses((status = 200, body = WebhookCreated), (status = 201, body = WebhookCreated), (status = 400, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn set_publisher_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
    JsonBody(body): JsonBody<WebhookRequest>,
) -> Result<(StatusCode, Json<WebhookCreated>)> {
    let publisher_id = publisher_owner(&state, &principal, &ns).await?;
    let egress = &state.settings().webhooks.egress;
    let (hook, created) =
        webhooks::set(state.db(), "publisher", &publisher_id, &body.url, egress).await?;
    Ok((set_status(created), Json(hook)))
}

/// The publisher's webhook and how its deliveries fare (owner).
#[utoipa::path(get, path = "/v1/publishers/{ns}/webhook", tag = "notifications", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")),
    responses((status = 200, body = WebhookView), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn show_publisher_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
) -> Result<Json<WebhookView>> {
    let publisher_id = publisher_owner(&state, &principal, &ns).await?;
    Ok(Json(
        webhooks::show(state.db(), "publisher", &publisher_id).await?,
    ))
}

/// Removes the publisher's webhook and its queued deliveries (owner).
#[utoipa::path(delete, path = "/v1/publishers/{ns}/webhook", tag = "notifications", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")),
    responses((status = 204), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn remove_publisher_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
) -> Result<StatusCode> {
    let publisher_id = publisher_owner(&state, &principal, &ns).await?;
    webhooks::remove(state.db(), "publisher", &publisher_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
