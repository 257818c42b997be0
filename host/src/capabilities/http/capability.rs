//! Outbound HTTP as a capability: granted by `http`, its per-call state the call's
//! [`OutboundHttp`] policy and the `wasi:http` context, linked as `wasi:http/outgoing-handler`.

use std::sync::Arc;

use plinth_package::Permissions;
use wasmtime::component::Linker;
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler;
use wasmtime_wasi_http::{WasiHttp, WasiHttpCtx, WasiHttpCtxView};

use super::{Denial, OutboundHttp, TenantRate};
use crate::capabilities::{CallContext, Capability, SandboxView, view};

/// The outbound HTTP capability.
#[derive(Debug)]
pub struct Http;

/// The outbound HTTP capability's per-call state: the call's policy, which is also the
/// `wasi:http` hooks every request of the call (and `wasi:http/types`) goes through.
pub struct HttpState {
    /// The `wasi:http` context.
    pub ctx: WasiHttpCtx,
    /// The call's outbound policy; read after the call for its denials and requests sent.
    pub outbound: OutboundHttp,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("outbound", &self.outbound)
            .finish_non_exhaustive()
    }
}

impl HttpState {
    /// The call's first refused request, if any: what the call reports as its permission
    /// error when the plugin then fails.
    pub fn first_denial(&self) -> Option<Denial> {
        self.outbound.denials.first()
    }
}

impl Capability for Http {
    type State = HttpState;

    fn granted(permissions: &Permissions) -> bool {
        permissions.http.is_some()
    }

    fn link<T: SandboxView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        outgoing_handler::add_to_linker::<T, WasiHttp>(linker, ctx_view::<T>)
    }

    /// Prepared for every call, granted or not: `wasi:http/types` (always linked) and incoming
    /// requests go through the same hooks, and a call without the grant is refused every
    /// destination by its empty allowlist.
    fn prepare(call: &CallContext<'_>) -> HttpState {
        let mut outbound = OutboundHttp::new(
            Arc::clone(call.grants),
            call.egress.clone(),
            call.limits.max_outbound_requests,
        );
        if let Some(per_minute) = call.limits.tenant_outbound_per_minute {
            outbound = outbound.with_tenant_rate(TenantRate {
                rates: Arc::clone(call.rates),
                tenant: call.identity.tenant.clone(),
                per_minute,
            });
        }
        HttpState {
            ctx: WasiHttpCtx::new(),
            outbound,
        }
    }
}

/// The `wasi:http` view of a call's store data: its context, resource table and policy.
pub fn ctx_view<T: SandboxView>(data: &mut T) -> WasiHttpCtxView<'_> {
    let view = view::<Http, T>(data);
    WasiHttpCtxView {
        ctx: &mut view.state.ctx,
        table: view.table,
        hooks: &mut view.state.outbound,
    }
}
