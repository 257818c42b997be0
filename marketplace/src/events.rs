//! `POST /v1/tenants/{tenant}/events`: an event dispatched to every active install of the
//! tenant subscribed to its topic, and onward to what those plugins emit (depth-limited by the
//! host, and within the event's budget); each plugin's result or typed error comes back. The
//! request passes the admission gate ([`crate::admission`]) first: 429 `rate_limited` or
//! `quota_exceeded`, and 503 `capacity` when no call could run.
//!
//! With `"delivery": "async"` (or `Prefer: respond-async`) the event is queued instead and the
//! answer is 202 with its id as soon as it is stored ([`crate::queue`]); an `Idempotency-Key`
//! header makes a repeated request return the same event.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
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
use crate::queue::accept::{self, NewEvent};
use crate::queue::routes::AcceptedEvent;
use crate::state::AppState;

/// The longest topic accepted.
const MAX_TOPIC_BYTES: usize = 256;

/// The header that makes a repeated asynchronous request return the first one's event.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    use crate::queue::routes::{__path_list, __path_replay, __path_show, list, replay, show};
    OpenApiRouter::new()
        .routes(routes!(dispatch, list))
        .routes(routes!(show))
        .routes(routes!(replay))
}

/// How an event is delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DeliveryMode {
    /// The request waits for every plugin and returns their results (200).
    #[default]
    Sync,
    /// The event is queued and delivered at least once by a host; the answer is 202 with its
    /// id.
    Async,
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
    /// `sync` (the default) or `async`; `Prefer: respond-async` also asks for `async`.
    #[serde(default)]
    delivery: DeliveryMode,
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

/// Dispatches an event to the tenant's subscribed installs, or queues it with `"delivery":
/// "async"` (tenant API key or member).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/events", tag = "events", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant slug"),
        ("Idempotency-Key" = Option<String>, Header, description = "Asynchronous events: a repeated request with the same key (and the same topic and payload) returns the first one's event"),
        ("Prefer" = Option<String>, Header, description = "`respond-async` queues the event as `\"delivery\": \"async\"` does")),
    request_body = EventRequest,
    responses((status = 200, body = EventResults), (status = 202, body = AcceptedEvent), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 429, body = ApiError), (status = 503, body = ApiError)))]
async fn dispatch(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<EventRequest>,
) -> Result<Response> {
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
    let prefer_async = prefers_async(&headers);
    let idempotency_key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            Error::bad_request(
                "invalid_idempotency_key",
                "header `Idempotency-Key` must be printable ASCII",
            )
        })?),
    };
    if body.delivery == DeliveryMode::Async || prefer_async {
        let payload = body.payload.to_string();
        let accepted = accept::accept(
            state.db(),
            &admitted.tenant,
            &admitted.plan,
            &NewEvent {
                topic: &body.topic,
                payload: payload.as_bytes(),
                idempotency_key,
            },
            crate::clock::now_ms(),
        )
        .await?;
        if !accepted.replayed {
            crate::queue::worker::wake(&state);
        }
        let location = format!("/v1/tenants/{slug}/events/{}", accepted.id);
        let mut response = (
            StatusCode::ACCEPTED,
            Json(AcceptedEvent {
                id: accepted.id,
                status: accepted.status,
                replayed: accepted.replayed,
            }),
        )
            .into_response();
        if let Ok(location) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        if prefer_async {
            response.headers_mut().insert(
                "preference-applied",
                HeaderValue::from_static("respond-async"),
            );
        }
        return Ok(response);
    }
    if idempotency_key.is_some() {
        return Err(Error::bad_request(
            "invalid_idempotency_key",
            "header `Idempotency-Key` applies to asynchronous events: send `\"delivery\": \"async\"` \
             (or `Prefer: respond-async`) with it",
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
    })
    .into_response())
}

/// Whether a `Prefer` header asks for `respond-async` (RFC 7240).
fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|preference| {
            preference
                .split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case("respond-async"))
        })
}
