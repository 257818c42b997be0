//! Inboxes of publishers and tenants, written in the transaction of the change they report.
//!
//! [`notify`] is what every module calls to leave a message; `GET
//! /v1/publishers/{ns}/notifications` and `GET /v1/tenants/{tenant}/notifications` read the
//! inboxes.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Principal;
use crate::clock::{now_ms, rfc3339};
use crate::db::{Db, Tx};
use crate::error::{ApiError, Error, Result};
use crate::id::new_id;
use crate::state::AppState;

/// The most notifications one listing returns.
pub const MAX_LISTED: i64 = 200;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publisher_notifications))
        .routes(routes!(tenant_notifications))
}

/// Leaves a notification for `recipient_kind` (`publisher` or `tenant`) `recipient_id`, in the
/// transaction of the change it reports.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] if `payload` cannot be serialized.
pub async fn notify(
    tx: &mut Tx,
    recipient_kind: &str,
    recipient_id: &str,
    kind: &str,
    message: &str,
    payload: serde_json::Value,
) -> Result<()> {
    let payload =
        serde_json::to_string(&payload).map_err(|e| Error::Internal(format!("payload: {e}")))?;
    sqlx::query(
        "INSERT INTO notifications (id, recipient_kind, recipient_id, kind, message, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(recipient_kind)
    .bind(recipient_id)
    .bind(kind)
    .bind(message)
    .bind(payload)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One notification.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Notification {
    /// The notification's id.
    pub id: String,
    /// What happened, e.g. `review_decided`.
    pub kind: String,
    /// A sentence for people.
    pub message: String,
    /// Data for programs (ids, versions, reasons).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Whether it was marked read.
    pub read: bool,
}

/// An inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    /// Newest first.
    pub items: Vec<Notification>,
}

/// The newest notifications (at most [`MAX_LISTED`]) of `recipient_kind` `recipient_id`,
/// newest first.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn list(db: &Db, recipient_kind: &str, recipient_id: &str) -> Result<Vec<Notification>> {
    let rows = sqlx::query(
        "SELECT id, kind, message, payload, created_at, read_at FROM notifications \
         WHERE recipient_kind = $1 AND recipient_id = $2 \
         ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(recipient_kind)
    .bind(recipient_id)
    .bind(MAX_LISTED)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let payload: String = row.try_get("payload")?;
            Ok(Notification {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                message: row.try_get("message")?,
                payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                created_at: rfc3339(row.try_get("created_at")?),
                read: row.try_get::<Option<i64>, _>("read_at")?.is_some(),
            })
        })
        .collect()
}

/// A publisher's inbox (members only).
#[utoipa::path(get, path = "/v1/publishers/{ns}/notifications", tag = "notifications", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")),
    responses((status = 200, body = NotificationList), (status = 404, body = ApiError)))]
async fn publisher_notifications(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
) -> Result<Json<NotificationList>> {
    let publisher = crate::publishers::access(state.db(), &principal, &ns).await?;
    let items = list(state.db(), "publisher", &publisher.id).await?;
    Ok(Json(NotificationList { items }))
}

/// A tenant's inbox (any member, read-only included).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/notifications", tag = "notifications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")),
    responses((status = 200, body = NotificationList), (status = 404, body = ApiError)))]
async fn tenant_notifications(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<NotificationList>> {
    let tenant = crate::tenants::access(
        state.db(),
        &principal,
        &slug,
        crate::tenants::TenantRole::Readonly,
    )
    .await?;
    let items = list(state.db(), "tenant", &tenant.id).await?;
    Ok(Json(NotificationList { items }))
}
