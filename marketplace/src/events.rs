//! `POST /v1/tenants/{tenant}/events`: an event dispatched to every active install of the
//! tenant subscribed to its topic, and onward to what those plugins emit (depth-limited by the
//! host, and within the event's budget); each plugin's result or typed error comes back. The
//! request passes the admission gate ([`crate::admission`]) first: 429 `rate_limited` or
//! `quota_exceeded`, and 503 `capacity` when no call could run.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::admission;
use crate::auth::Principal;
use crate::body::JsonBody;
use crate::error::{ApiError, Error, Result};
use crate::id::new_id;
use crate::state::AppState;

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
    /// The plugin calls the event started, across all emit hops (each counted against the
    /// month's invocations; at most the plan's `max_invocations_per_event`).
    invocations: u32,
    /// One entry per delivery; when the event's budget or the month's quota ended the cascade
    /// early, a last entry (error `event_budget_exhausted` or `quota_exceeded`) says how many
    /// deliveries were not made.
    results: Vec<EventResult>,
}

/// Dispatches an event to the tenant's subscribed installs (tenant API key or member).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/events", tag = "events", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug")), request_body = EventRequest,
    responses((status = 200, body = EventResults), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError), (status = 429, body = ApiError), (status = 503, body = ApiError)))]
async fn dispatch(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<EventRequest>,
) -> Result<Json<EventResults>> {
    let admitted = admission::admit(&state, &principal, &slug).await?;
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
    let id = new_id();
    let event = plinth_host::Event {
        id: id.clone(),
        topic: body.topic,
        payload: body.payload.to_string().into_bytes(),
        depth: 0,
    };
    let budget = admitted.event_budget();
    let deliveries = runtime
        .host
        .dispatch(&admitted.tenant.id, event, &budget)
        .await;
    let errors: Vec<_> = deliveries
        .iter()
        .map(|delivery| delivery.invocation.result.as_ref().err())
        .collect();
    if let Some(error) = admission::whole_event_refusal(&errors) {
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
    Ok(Json(EventResults {
        id,
        invocations: budget.invocations(),
        results,
    }))
}
