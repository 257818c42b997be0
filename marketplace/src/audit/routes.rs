//! `GET /v1/audit` and `GET /v1/audit/verify`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::chain::{self, ChainReport, Violation};
use super::{AuditEntry, Filter, MAX_LISTED};
use crate::auth::Principal;
use crate::error::{ApiError, Error, Result};
use crate::state::AppState;
use crate::tenants::TenantRole;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_entries))
        .routes(routes!(verify_chain))
}

/// Which entries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only this tenant's entries (by slug). Required unless the caller is an operator; a
    /// tenant's owners may list its entries.
    tenant: Option<String>,
    /// Only this action, e.g. `install.created`.
    action: Option<String>,
    /// The `next_cursor` of the previous page.
    after: Option<i64>,
    /// At most this many entries (default and maximum 500).
    limit: Option<i64>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// Oldest first.
    items: Vec<AuditEntry>,
    /// Pass as `after` for the next page; null on the last.
    next_cursor: Option<i64>,
}

/// Lists the audit log, oldest first: all of it for an operator, one tenant's entries for
/// that tenant's owners.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn list_entries(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>> {
    let query = crate::body::query(query)?;
    let limit = query.limit.unwrap_or(MAX_LISTED);
    if !(1..=MAX_LISTED).contains(&limit) {
        return Err(Error::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_LISTED}, not {limit}"),
        ));
    }
    let tenant_id = match (&query.tenant, principal.is_operator()) {
        (Some(slug), _) => Some(
            crate::tenants::access(state.db(), &principal, slug, TenantRole::Owner)
                .await?
                .id,
        ),
        (None, true) => None,
        (None, false) => {
            principal.user()?;
            return Err(Error::forbidden(
                "forbidden",
                "the whole audit log needs the operator role; a tenant owner lists their \
                 tenant's entries with ?tenant=SLUG",
            ));
        }
    };
    let filter = Filter {
        tenant_id,
        action: query.action,
        after: query.after,
        limit,
    };
    let items = super::list(state.db(), &filter).await?;
    let full = i64::try_from(items.len()).unwrap_or(i64::MAX) == limit;
    let next_cursor = if full {
        items.last().map(|entry| entry.seq)
    } else {
        None
    };
    Ok(Json(AuditPage { items, next_cursor }))
}

/// Whether the stored audit log is the one written.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChainStatus {
    /// True when every entry checks out.
    sound: bool,
    /// Entries and head hash, when sound.
    report: Option<ChainReport>,
    /// The first break, when not.
    violation: Option<Violation>,
}

/// Verifies the audit chain (operator): what `plinth audit verify` does, over HTTP.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = ChainStatus), (status = 403, body = ApiError)))]
async fn verify_chain(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<ChainStatus>> {
    principal.operator()?;
    Ok(Json(match chain::verify(state.db()).await? {
        Ok(report) => ChainStatus {
            sound: true,
            report: Some(report),
            violation: None,
        },
        Err(violation) => ChainStatus {
            sound: false,
            report: None,
            violation: Some(violation),
        },
    }))
}
