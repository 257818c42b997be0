//! `POST /v1/tenants/{tenant}/events`: an event dispatched to every active install of the
//! tenant subscribed to its topic, and onward to what those plugins emit (depth-limited by the
//! host); each plugin's result or typed error comes back. A tenant that has used its plan's
//! invocations this month gets 429 `quota_exceeded` instead ([`crate::usage`]).

use axum::Json;
use axum::extract::{Path, State};
use plinth_host::InvokeError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Principal;
use crate::body::JsonBody;
use crate::error::{ApiError, Error, Result};
use crate::id::new_id;
use crate::state::AppState;
use crate::tenants::{self, TenantRole};

/// The longest topic accepted.
const MAX_TOPIC_BYTES: usize = 256;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dispatch))
}

/// `POST /v1/tenants/{tenant}/events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventRequest {
    /// The topic, e.g. `order.created`.
    topic: String,
    /// Any JSON; plugins receive it as UTF-8 JSON bytes.
    #[schema(value_type = Object)]
    payload: Value,
}

/// One plugin's result.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventResult {
    plugin: String,
    version: String,
    /// The topic delivered (an emitted topic for onward deliveries).
    topic: String,
    /// 0 for the event sent, more for events plugins emitted.
    depth: u32,
    /// The plugin's output: its JSON, or its text when it is not JSON, or null.
    #[schema(value_type = Object)]
    output: Value,
    /// `{code, message}` when the call failed, else null.
    #[schema(value_type = Object)]
    error: Value,
}

/// Every plugin's result for the event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventResults {
    /// The event's id.
    id: String,
    results: Vec<EventResult>,
}

/// Dispatches an event to the tenant's subscribed installs (tenant API key or member).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/events", tag = "events", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")), request_body = EventRequest,
    responses((status = 200, body = EventResults), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError), (status = 429, body = ApiError)))]
async fn dispatch(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<EventRequest>,
) -> Result<Json<EventResults>> {
    let tenant = tenants::access(state.db(), &principal, &slug, TenantRole::Member).await?;
    let runtime = state.runtime()?;
    if body.topic.is_empty()
        || body.topic.len() > MAX_TOPIC_BYTES
        || body.topic.chars().any(char::is_control)
    {
        return Err(Error::bad_request(
            "invalid_body",
            format!("field `topic` must be 1 to {MAX_TOPIC_BYTES} bytes of printable text"),
        ));
    }
    let plan = tenants::plan(state.db(), &tenant.plan).await?;
    crate::usage::check_invocation_quota(
        state.db(),
        runtime.host.meter(),
        &tenant,
        &plan,
        crate::clock::now_ms(),
    )
    .await?;
    let id = new_id();
    let event = plinth_host::Event {
        id: id.clone(),
        topic: body.topic,
        payload: body.payload.to_string().into_bytes(),
        depth: 0,
    };
    let deliveries = runtime.host.dispatch(&tenant.id, event).await;
    if let Some(error) = all_rate_limited(&deliveries) {
        return Err(error);
    }
    let results = deliveries
        .into_iter()
        .map(|delivery| {
            let (output, error) = match delivery.invocation.result {
                Ok(Some(bytes)) => (
                    serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&bytes).into_owned())
                    }),
                    Value::Null,
                ),
                Ok(None) => (Value::Null, Value::Null),
                Err(e) => (
                    Value::Null,
                    serde_json::json!({ "code": e.code(), "message": e.to_string() }),
                ),
            };
            EventResult {
                plugin: delivery.plugin,
                version: delivery.version,
                topic: delivery.topic,
                depth: delivery.depth,
                output,
                error,
            }
        })
        .collect();
    Ok(Json(EventResults { id, results }))
}

/// When every plugin the event reached failed on a rate of the tenant's plan, the request as a
/// whole is over that rate: a 429 with the longest wait among them.
fn all_rate_limited(deliveries: &[plinth_host::Delivery]) -> Option<Error> {
    let mut longest = None;
    for delivery in deliveries {
        match &delivery.invocation.result {
            Err(error @ InvokeError::RateLimited { retry_after_ms, .. }) => {
                let (wait, _) = longest.get_or_insert((*retry_after_ms, error.to_string()));
                *wait = (*wait).max(*retry_after_ms);
            }
            _ => return None,
        }
    }
    longest.map(|(wait_ms, message)| Error::RateLimited {
        message,
        retry_after_secs: wait_ms.div_ceil(1000).max(1),
    })
}
