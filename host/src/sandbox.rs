//! The per-call sandbox: the data of a fresh wasmtime `Store` for each invocation.
//!
//! It carries who the call is for (tenant, plugin, version), each capability's state for the
//! call (prepared from its [`CallContext`]) and the memory limiter; capabilities reach their
//! state through [`SandboxView`], which it implements. Nothing in it outlives the call, so no state leaks
//! between tenants or calls; persistent state lives only behind the kv capability.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::capabilities::http::ctx_view;
use crate::capabilities::{CallContext, CallParts, CallStates, SandboxView};

pub use crate::capabilities::CallIdentity;

/// Bytes of guest stdout/stderr kept per call (they go to the log).
const STDIO_CAPTURE_BYTES: usize = 16 << 10;

/// The data of one call's `Store`.
pub struct SandboxState {
    pub(crate) identity: CallIdentity,
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) limiter: MemoryLimiter,
    /// Each capability's state for the call.
    pub(crate) capabilities: CallStates,
}

impl std::fmt::Debug for SandboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxState")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl SandboxState {
    /// Builds the state of the call `call` describes: every capability's state prepared from
    /// it, memory limited to the call's limit. The WASI context has nothing in it: no
    /// environment, arguments, files or network; stdout and stderr are captured for the log.
    pub(crate) fn new(call: CallContext<'_>) -> Self {
        let capabilities = CallStates::prepare(&call);
        let stdout = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        SandboxState {
            limiter: MemoryLimiter::new(call.limits.memory_bytes),
            identity: call.identity,
            table: ResourceTable::new(),
            wasi,
            stdout,
            stderr,
            capabilities,
        }
    }

    /// What the guest wrote to stderr (e.g. a panic message), lossily decoded.
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }

    /// What the guest wrote to stdout, lossily decoded.
    pub(crate) fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout.contents()).into_owned()
    }
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl SandboxView for SandboxState {
    fn parts(&mut self) -> CallParts<'_> {
        CallParts {
            states: &mut self.capabilities,
            identity: &self.identity,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for SandboxState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        ctx_view(self)
    }
}

/// Bounds an instance's memories and tables together: the sum of all linear memories plus
/// table elements (counted at 8 bytes each) may not pass the limit.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: u64,
    used: u64,
    denied: bool,
}

/// Bytes one table element is counted as.
const TABLE_ELEMENT_BYTES: u64 = 8;

impl MemoryLimiter {
    fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit,
            used: 0,
            denied: false,
        }
    }

    /// Whether the guest asked for more than the limit during the call.
    pub fn was_denied(&self) -> bool {
        self.denied
    }

    /// Bytes of memory and tables in use.
    pub fn used(&self) -> u64 {
        self.used
    }

    fn grow(&mut self, current: u64, desired: u64) -> bool {
        let next = self.used.saturating_sub(current).saturating_add(desired);
        if next > self.limit {
            self.denied = true;
            false
        } else {
            self.used = next;
            true
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current as u64, desired as u64))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(
            (current as u64).saturating_mul(TABLE_ELEMENT_BYTES),
            (desired as u64).saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }
}
