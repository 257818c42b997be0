//! Host bindings of the `plinth:plugin` WIT package, generated once, here.
//!
//! The world used is `lifecycle-plugin` (imports plus the `handler` and `lifecycle` exports);
//! the host looks up each export on its own, so a component without `lifecycle` still loads.
//! WASI types come from `wasmtime-wasi` and `wasmtime-wasi-http`, so their host
//! implementations are shared.

#[expect(missing_docs, reason = "bindgen-generated code")]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plinth:plugin/lifecycle-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

pub use generated::exports::plinth::plugin::{handler, lifecycle};
// Every interface of the package, so a capability added to the world is here without a line.
pub use generated::plinth::plugin::*;
