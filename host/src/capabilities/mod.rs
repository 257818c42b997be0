//! The capabilities a plugin may import, one module each, and the linker that composes them.
//!
//! Every capability has the same shape: a `link` function that adds its imports to a
//! [`Linker`], a per-call state built from the tenant's grant, and the WIT `Host` impl. A
//! capability is linked only when granted, so a component that imports one it was not granted
//! cannot be instantiated at all. Adding a capability touches its module and one line of
//! [`linker`].

pub mod config;
pub mod events;
pub mod http;
pub mod kv;
pub mod log;
pub mod wasi;

use plinth_package::Permissions;
use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::sandbox::SandboxState;

/// Which optional capabilities a linker provides; derived from a grant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CapabilitySet {
    /// `plinth:plugin/kv`.
    pub kv: bool,
    /// `plinth:plugin/config`.
    pub config: bool,
    /// `plinth:plugin/events`.
    pub events: bool,
    /// `wasi:http/outgoing-handler`.
    pub http: bool,
}

impl CapabilitySet {
    /// The capabilities a set of granted permissions turns on.
    pub fn granted(permissions: &Permissions) -> Self {
        CapabilitySet {
            kv: permissions.kv.is_some(),
            config: permissions.config,
            events: permissions
                .events
                .as_ref()
                .is_some_and(|events| !events.emit.is_empty()),
            http: permissions.http.is_some(),
        }
    }
}

/// A linker with the always-present imports (base WASI, `log`, the shared types) and the
/// optional capabilities in `set`.
///
/// # Errors
///
/// Only if wasmtime refuses a definition, which would be a bug.
pub fn linker(engine: &Engine, set: CapabilitySet) -> wasmtime::Result<Linker<SandboxState>> {
    let mut linker = Linker::new(engine);
    wasi::link(&mut linker)?;
    log::link(&mut linker)?;
    if set.kv {
        kv::link(&mut linker)?;
    }
    if set.config {
        config::link(&mut linker)?;
    }
    if set.events {
        events::link(&mut linker)?;
    }
    if set.http {
        wasmtime_wasi_http::p2::bindings::http::outgoing_handler::add_to_linker::<
            _,
            wasmtime_wasi_http::WasiHttp,
        >(
            &mut linker,
            <SandboxState as wasmtime_wasi_http::WasiHttpView>::http,
        )?;
    }
    Ok(linker)
}
