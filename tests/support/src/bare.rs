//! `hello` on bare wasmtime: the floor the benchmarks hold Plinth to. A fresh `Store` with an
//! empty WASI context per call, the component pre-instantiated once, `log.write` doing nothing;
//! the caller passes the engine (built with the host's own configuration, so only Plinth's
//! own work differs).

use anyhow::Context as _;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, Instance, InstancePre, Lift, Linker, Lower,
    ResourceTable,
};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The export holding the handler, and its function.
const HANDLER: &str = "plinth:plugin/handler@0.1.0";
const ON_EVENT: &str = "on-event";

/// `plinth:plugin/types.event`, lowered as the guest expects it.
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

/// `on-event`'s signature.
type OnEventParams = (WitEvent,);
type OnEventResults = (Result<Option<Vec<u8>>, WitPluginError>,);

/// The smallest store data `hello` can run with: an empty WASI context.
pub struct BareState {
    table: ResourceTable,
    wasi: WasiCtx,
}

impl std::fmt::Debug for BareState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BareState").finish_non_exhaustive()
    }
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// `hello` pre-instantiated on a bare engine.
pub struct BareHello {
    engine: Engine,
    pre: InstancePre<BareState>,
    on_event: ComponentExportIndex,
}

impl std::fmt::Debug for BareHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BareHello").finish_non_exhaustive()
    }
}

impl BareHello {
    /// Compiles `wasm` (the `hello` component) on `engine` and pre-instantiates it.
    pub fn new(engine: Engine, wasm: &[u8]) -> anyhow::Result<BareHello> {
        let component = Component::new(&engine, wasm)?;
        let mut linker: Linker<BareState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // `types` holds only types, which need no definition; `log.write` does nothing.
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
        Ok(BareHello {
            engine,
            pre,
            on_event,
        })
    }

    /// A fresh store with an empty WASI context, and `hello` instantiated in it.
    pub async fn instantiate(&self) -> anyhow::Result<(Store<BareState>, Instance)> {
        let state = BareState {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().build(),
        };
        let mut store = Store::new(&self.engine, state);
        // Epoch interruption is on and nothing ticks: any deadline in the future will do.
        store.set_epoch_deadline(1 << 20);
        let instance = self.pre.instantiate_async(&mut store).await?;
        Ok((store, instance))
    }

    /// One event in a fresh store: instantiate, call `on-event` with `topic` and `payload`.
    pub async fn call(&self, topic: &str, payload: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        let (mut store, instance) = self.instantiate().await?;
        let on_event =
            instance.get_typed_func::<OnEventParams, OnEventResults>(&mut store, &self.on_event)?;
        let event = WitEvent {
            id: "evt-bare".to_owned(),
            topic: topic.to_owned(),
            payload: payload.to_vec(),
            tenant: "bare".to_owned(),
            depth: 0,
        };
        let (result,) = on_event.call_async(&mut store, (event,)).await?;
        result.map_err(|error| anyhow::anyhow!("hello failed: {error:?}"))
    }
}
