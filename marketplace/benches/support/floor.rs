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
use serde_json::{Value, json};
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, InstancePre, Lift, Linker, Lower, ResourceTable,
};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const HANDLER: &str = "plinth:plugin/handler@0.1.0";
const ON_EVENT: &str = "on-event";

/// `plinth:plugin/types.event`.
#[derive(ComponentType, Lower)]
#[component(record)]
struct WitEvent {
    id: String,
    topic: String,
    payload: Vec<u8>,
    tenant: String,
    depth: u32,
}

/// `plinth:plugin/types.plugin-error`.
#[derive(ComponentType, Lift, Debug)]
#[component(variant)]
enum WitPluginError {
    #[component(name = "invalid-payload")]
    InvalidPayload(#[allow(dead_code, reason = "only printed")] String),
    #[component(name = "invalid-config")]
    InvalidConfig(#[allow(dead_code, reason = "only printed")] String),
    #[component(name = "capability")]
    Capability(#[allow(dead_code, reason = "only printed")] String),
    #[component(name = "failed")]
    Failed(#[allow(dead_code, reason = "only printed")] String),
}

/// `plinth:plugin/log.level`.
#[derive(ComponentType, Lift, Clone, Copy)]
#[component(enum)]
#[repr(u8)]
#[allow(dead_code, reason = "lifted from the guest, never built on the host")]
enum WitLevel {
    #[component(name = "trace")]
    Trace,
    #[component(name = "debug")]
    Debug,
    #[component(name = "info")]
    Info,
    #[component(name = "warn")]
    Warn,
    #[component(name = "error")]
    Error,
}

type OnEventParams = (WitEvent,);
type OnEventResults = (Result<Option<Vec<u8>>, WitPluginError>,);

/// The store data: an empty WASI context.
struct Bare {
    table: ResourceTable,
    wasi: WasiCtx,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// `hello`, pre-instantiated.
struct Floor {
    engine: Engine,
    pre: InstancePre<Bare>,
    on_event: ComponentExportIndex,
}

impl Floor {
    fn new() -> Result<Floor> {
        let config =
            plinth_host::engine::wasmtime_config(&EngineConfig::default(), Metering::Epoch);
        let engine = Engine::new(&config)?;
        let wasm = std::fs::read(plinth_test_artifacts::HELLO.wasm).context("reading hello")?;
        let component = Component::new(&engine, &wasm)?;
        let mut linker: Linker<Bare> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        linker.instance("plinth:plugin/types@0.1.0")?;
        linker
            .instance("plinth:plugin/log@0.1.0")?
            .func_wrap_async(
                "write",
                |_store, (_level, _message, _fields): (WitLevel, String, Vec<(String, String)>)| {
                    Box::new(async { Ok(()) })
                },
            )?;
        let pre = linker.instantiate_pre(&component)?;
        let handler = component
            .get_export_index(None, HANDLER)
            .context("hello exports no handler")?;
        let on_event = component
            .get_export_index(Some(&handler), ON_EVENT)
            .context("hello's handler has no on-event")?;
        Ok(Floor {
            engine,
            pre,
            on_event,
        })
    }

    /// One event in a fresh store.
    async fn call(&self, topic: String, payload: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let bare = Bare {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().build(),
        };
        let mut store = Store::new(&self.engine, bare);
        // Epoch interruption is on and nothing ticks: any deadline in the future will do.
        store.set_epoch_deadline(1 << 20);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let on_event =
            instance.get_typed_func::<OnEventParams, OnEventResults>(&mut store, &self.on_event)?;
        let event = WitEvent {
            id: "evt-floor".to_owned(),
            topic,
            payload,
            tenant: "floor".to_owned(),
            depth: 0,
        };
        let (result,) = on_event.call_async(&mut store, (event,)).await?;
        result.map_err(|error| anyhow::anyhow!("hello failed: {error:?}"))
    }
}

async fn event(
    State(floor): State<Arc<Floor>>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let bad = |e: anyhow::Error| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
    let topic = body["topic"].as_str().unwrap_or_default().to_owned();
    let payload = serde_json::to_vec(&body["payload"]).map_err(|e| bad(e.into()))?;
    let output = floor.call(topic, payload).await.map_err(bad)?;
    let output: Value = match output {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| bad(e.into()))?,
        None => Value::Null,
    };
    Ok(Json(json!({ "output": output })))
}

/// Serves the floor on an ephemeral loopback port, on the current runtime; returns its
/// base URL.
pub async fn serve() -> Result<String> {
    let floor = Arc::new(Floor::new()?);
    let app = axum::Router::new()
        .route("/events", post(event))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}
