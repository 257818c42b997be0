//! The floor of the event path: axum and bare wasmtime, nothing else. `POST /events` with
//! `{"topic", "payload"}` instantiates `hello` in a fresh store (pooling allocator, epoch
//! interruption: the host engine's exact configuration, via
//! [`plinth_host::engine::wasmtime_config`]) with an empty WASI context, calls its `on-event`
//! and answers `{"output": …}`. No auth, no storage, no limits: what Plinth's event path costs
//! beyond this is its own.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use plinth_host::{EngineConfig, Metering};
use plinth_test_support::bare::BareHello;
use serde_json::{Value, json};

async fn event(
    State(floor): State<Arc<BareHello>>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let bad = |e: anyhow::Error| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
    let topic = body["topic"].as_str().unwrap_or_default().to_owned();
    let payload = serde_json::to_vec(&body["payload"]).map_err(|e| bad(e.into()))?;
    let output = floor.call(&topic, &payload).await.map_err(bad)?;
    let output: Value = match output {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| bad(e.into()))?,
        None => Value::Null,
    };
    Ok(Json(json!({ "output": output })))
}

/// Serves the floor on an ephemeral loopback port, on the current runtime; returns its
/// base URL.
pub async fn serve() -> Result<String> {
    let config = plinth_host::engine::wasmtime_config(&EngineConfig::default(), Metering::Epoch);
    let wasm = std::fs::read(plinth_test_artifacts::HELLO.wasm).context("reading hello")?;
    let floor = Arc::new(BareHello::new(wasmtime::Engine::new(&config)?, &wasm)?);
    let app = axum::Router::new()
        .route("/events", post(event))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}
