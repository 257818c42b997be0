//! The HTTP server: every route on one router, request ids, logs, metrics, graceful shutdown.

mod housekeeping;
pub mod metrics;
mod openapi;
mod plugin_metrics;
mod role;

pub use plugin_metrics::PluginCalls;
pub use role::{Role, UnknownRole};

use std::future::Future;

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderName;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Error;
use crate::state::AppState;

/// How often the host's usage counters are added to the database.
const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(5);

/// The header carrying a request's id (taken from the client if it sends one).
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The OpenAPI document of every route of [`router`] in role [`Role::All`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_routes(Role::All).split_for_parts().1
}

/// The routes `role` serves but `/openapi.json` and the fallback, with their documentation.
fn documented_routes(role: Role) -> OpenApiRouter<AppState> {
    let mut api = OpenApiRouter::with_openapi(openapi::document())
        .routes(routes!(healthz))
        .routes(routes!(metrics::render));
    if role.serves_control_plane() {
        api = api
            .merge(crate::accounts::routes())
            .merge(crate::tenants::routes())
            .merge(crate::publishers::routes())
            .merge(crate::submissions::routes())
            .merge(crate::review::routes())
            .merge(crate::catalog::routes())
            .merge(crate::ratings::routes())
            .merge(crate::notifications::routes())
            .merge(crate::audit::routes())
            .merge(crate::installs::routes())
            .merge(crate::ledger::routes())
            .merge(crate::billing::routes())
            .merge(crate::versions::routes())
            .merge(crate::runs::routes::routes())
            .merge(crate::statements::routes());
    }
    if role.serves_data_plane() {
        api = api
            .merge(crate::events::routes())
            .merge(crate::plugin_http::routes());
    }
    api
}

/// Every route this server's role serves, with its OpenAPI document at `/openapi.json`.
pub fn router(state: AppState) -> Router {
    router_with(state, None)
}

/// [`router`] with `extra` routes merged in before the fallback (the web console adds its
/// pages this way); they share the state, the layers and the port.
pub fn router_with(state: AppState, extra: Option<Router<AppState>>) -> Router {
    let (mut api, document) = documented_routes(state.settings().role).split_for_parts();
    if let Some(extra) = extra {
        api = api.merge(extra);
    }
    let document = std::sync::Arc::new(document);
    api.route(
        "/openapi.json",
        get(move || {
            let document = document.clone();
            async move { axum::Json(document.as_ref().clone()) }
        }),
    )
    .fallback(|| async { Error::not_found("route") })
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::rate_limit::enforce,
    ))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        metrics::track,
    ))
    .layer(PropagateRequestIdLayer::new(REQUEST_ID))
    .layer(
        TraceLayer::new_for_http()
            .make_span_with(|request: &Request| {
                let id = request
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", id, method = %request.method(), uri = %request.uri())
            })
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
    )
    .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
    .with_state(state)
}

/// `GET /healthz`: 200 when the database answers; `degraded` when this process's host holds
/// no state statement newer than its expiry (the marketplace stopped issuing them, or someone
/// is holding them back).
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The database answers", body = Health),
        (status = 500, body = crate::error::ApiError)))]
async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::Json<Health>, Error> {
    sqlx::query("SELECT 1").execute(state.db().pool()).await?;
    let freshness = state.runtime().ok().map(|runtime| {
        runtime
            .host
            .statement_freshness(crate::clock::now_ms() / 1000)
    });
    let state_statement = match freshness {
        None => "no_host",
        Some(plinth_host::statements::Freshness::Unknown) => "none_yet",
        Some(plinth_host::statements::Freshness::Fresh { .. }) => "fresh",
        Some(plinth_host::statements::Freshness::Expired {
            sequence,
            expired_at,
        }) => {
            tracing::warn!(
                sequence,
                expired_at,
                "the newest state statement has expired"
            );
            "expired"
        }
    };
    Ok(axum::Json(Health {
        status: if state_statement == "expired" {
            "degraded"
        } else {
            "ok"
        },
        state_statement,
    }))
}

/// `GET /healthz`'s answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct Health {
    /// `ok`, or `degraded` while the newest state statement has expired.
    status: &'static str,
    /// The host's newest state statement: `fresh`, `expired`, `none_yet`, or `no_host` in a
    /// process without a host.
    state_statement: &'static str,
}

/// Serves `state` on `listener` until `shutdown` resolves, then stops accepting and finishes
/// the requests in flight (at most `drain` long) before returning.
///
/// # Errors
///
/// [`Error::Internal`] if the server fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> Result<(), Error> {
    serve_with(listener, state, None, shutdown, drain).await
}

/// [`serve`], with `extra` routes merged into the API's router (see [`router_with`]).
///
/// # Errors
///
/// [`Error::Internal`] if the server fails.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    extra: Option<Router<AppState>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> Result<(), Error> {
    let app = router_with(state.clone(), extra);
    // Log-in's dummy hash is made now, not on the first unknown email.
    tokio::spawn(crate::auth::password::dummy_hash());
    let control_plane = state.settings().role.serves_control_plane();
    let housekeeping = control_plane.then(|| housekeeping::spawn(state.clone()));
    let deliverer = control_plane.then(|| crate::notifications::delivery::spawn(state.clone()));
    let billing = control_plane.then(|| crate::billing::cycle::spawn(state.clone()));
    let change_listener = crate::changes::spawn(state.clone());
    let rollback_recorder = crate::versions::rollback::spawn_auto_rollback_recorder(state.clone());
    let rollout_ticker = crate::versions::rollout::spawn_ticker(state.clone());
    let statements = Some(crate::statements::spawn(state.clone()));
    let queue_worker = crate::queue::worker::spawn(state.clone());
    let schedule_ticker = crate::schedules::spawn_ticker(state.clone());
    if let Ok(runtime) = state.runtime() {
        runtime
            .host
            .meter()
            .set_observer(state.metrics().plugin_calls());
    }
    let run_writer = crate::runs::recorder::start(&state);
    let usage_flusher = state.runtime().ok().map(|runtime| {
        runtime.host.meter().spawn_flusher(
            std::sync::Arc::new(crate::usage::Store::new(state.db().clone())),
            USAGE_FLUSH_EVERY,
        )
    });
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    // Connection info gives handlers the client's address (log-in throttling).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stopped_tx.send(());
    });
    let server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = server => result.map_err(|e| Error::Internal(format!("server: {e}")))?,
        () = async {
            let _ = stopped_rx.await;
            tokio::time::sleep(drain).await;
        } => tracing::warn!("requests still in flight after {drain:?}; stopping anyway"),
    }
    for task in [
        housekeeping,
        deliverer,
        billing,
        change_listener,
        rollout_ticker,
        statements,
        queue_worker,
        schedule_ticker,
    ]
    .into_iter()
    .flatten()
    {
        task.abort();
    }
    if let Some(recorder) = rollback_recorder {
        recorder.abort();
    }
    // Runs recorded by the requests in flight are written before the database closes.
    if let Some(writer) = run_writer {
        if let Some(recorder) = state.run_recorder() {
            recorder.flush().await;
        }
        writer.abort();
    }
    // Requests of the tenants' shared rates this process leased and did not spend go back
    // for the other processes (a no-op on SQLite).
    let released = state.rate_limiter().release().await;
    let released = released
        + match state.runtime() {
            Ok(runtime) => runtime.host.release_rates().await,
            Err(_) => 0,
        };
    if released > 0 {
        tracing::info!(released, "unspent shared rate given back");
    }
    // The last flush runs after the requests in flight and before the database closes, so no
    // metered call is lost.
    if let Some(flusher) = usage_flusher {
        match flusher.shutdown().await {
            Ok(records) => tracing::info!(records, "usage flushed on shutdown"),
            Err(error) => tracing::error!(%error, "usage could not be stored on shutdown"),
        }
    }
    state.db().close().await;
    Ok(())
}
