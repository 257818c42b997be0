//! Entry points for the fuzz harness in `fuzz/` (the `fuzzing` feature; not part of the API).
//!
//! [`GuestCalls`] holds the state of one sandboxed call, built exactly as an invocation builds
//! it, and calls the host functions a guest imports (`kv`, `log`, `events`, `config`) directly,
//! with whatever arguments the fuzzer makes up, without compiling a component.
//! [`outbound_request`] runs an outgoing request through the outbound HTTP policy up to the
//! point where it would reach DNS or the network.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::Request;
use plinth_package::Manifest;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::bindings::config::{self, ConfigError};
use crate::bindings::events::{self, EmitError};
use crate::bindings::kv::{self, KeyPage, KvError as WitKvError};
use crate::bindings::log::{self, Level};
use crate::capabilities::config::Config;
use crate::capabilities::events::{EmittedEvent, Events};
use crate::capabilities::http::{OutboundHttp, retarget};
use crate::capabilities::kv::{Kv, KvState};
use crate::capabilities::log::{Log, LogLine};
use crate::capabilities::{self, CallContext, CallIdentity, CallStates, Capability, Holds, View};
use crate::egress::CheckedResolver;
use crate::kv::{KvQuota, KvStore, Namespace};
use crate::limits::Limits;
use crate::rates::TenantRates;
use crate::sandbox::SandboxState;

/// The kv grant of a [`GuestCalls`]: the store, the install's namespace and its quota.
#[derive(Debug, Clone)]
pub struct KvGrant {
    /// The store (the harness opens one SQLite file and reuses it).
    pub store: KvStore,
    /// The install's namespace.
    pub namespace: Namespace,
    /// The install's quota.
    pub quota: KvQuota,
}

/// One call's sandbox state, with each guest-facing host function callable directly.
#[derive(Debug)]
pub struct GuestCalls {
    state: SandboxState,
}

/// A guest call that trapped: the host function failed as a host fault instead of answering.
pub type Trap = wasmtime::Error;

impl GuestCalls {
    /// The state of a call of the plugin `manifest` describes, granted all it asks for, under
    /// `limits`, handling an event at `depth`, with the install's `config` values.
    pub fn new(
        manifest: &Manifest,
        limits: &Limits,
        kv: Option<KvGrant>,
        config: BTreeMap<String, String>,
        depth: u32,
    ) -> Self {
        let permissions = Arc::new(manifest.permissions.clone());
        let mut state = SandboxState::new(CallContext {
            identity: CallIdentity {
                tenant: "fuzz".to_owned(),
                plugin: manifest.plugin.id.to_string(),
                version: manifest.plugin.version.to_string(),
            },
            manifest,
            grants: &permissions,
            limits,
            config: &Arc::new(config),
            depth,
            kv: None,
            egress: &CheckedResolver::system(false),
            rates: &Arc::new(TenantRates::new()),
        });
        // The harness names the namespace and quota itself.
        state.capabilities.kv =
            kv.map(|grant| KvState::new(grant.store, grant.namespace, grant.quota));
        GuestCalls { state }
    }

    /// Capability `C`'s view of the call, as its bindings get it.
    fn view<C: Capability>(&mut self) -> View<'_, C::State>
    where
        CallStates: Holds<C>,
    {
        capabilities::view::<C, _>(&mut self.state)
    }

    /// `kv.get`.
    ///
    /// # Errors
    ///
    /// A [`Trap`] if the host function faults.
    pub async fn kv_get(
        &mut self,
        key: String,
    ) -> Result<Result<Option<Vec<u8>>, WitKvError>, Trap> {
        kv::Host::get(&mut self.view::<Kv>(), key).await
    }

    /// `kv.set`.
    ///
    /// # Errors
    ///
    /// A [`Trap`] if the host function faults.
    pub async fn kv_set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> Result<Result<(), WitKvError>, Trap> {
        kv::Host::set(&mut self.view::<Kv>(), key, value).await
    }

    /// `kv.delete`.
    ///
    /// # Errors
    ///
    /// A [`Trap`] if the host function faults.
    pub async fn kv_delete(&mut self, key: String) -> Result<Result<bool, WitKvError>, Trap> {
        kv::Host::delete(&mut self.view::<Kv>(), key).await
    }

    /// `kv.list-keys`.
    ///
    /// # Errors
    ///
    /// A [`Trap`] if the host function faults.
    pub async fn kv_list_keys(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<Result<KeyPage, WitKvError>, Trap> {
        kv::Host::list_keys(&mut self.view::<Kv>(), prefix, cursor, limit).await
    }

    /// Bytes of keys and values the call's kv writes wrote so far.
    pub fn kv_bytes_written(&self) -> u64 {
        self.state
            .capabilities
            .kv
            .as_ref()
            .map_or(0, KvState::bytes_written)
    }

    /// `log.write`.
    ///
    /// # Errors
    ///
    /// A [`Trap`] if the host function faults.
    pub async fn log(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> Result<(), Trap> {
        log::Host::write(&mut self.view::<Log>(), level, message, fields).await
    }

    /// `events.emit`.
    ///
    /// # Errors
    ///
    /// A [`Trap`] if the host function faults.
    pub async fn emit(
        &mut self,
        topic: String,
        payload: Vec<u8>,
    ) -> Result<Result<(), EmitError>, Trap> {
        events::Host::emit(&mut self.view::<Events>(), topic, payload).await
    }

    /// `config.get`.
    ///
    /// # Errors
    ///
    /// A [`Trap`] if the host function faults.
    pub async fn config_get(
        &mut self,
        key: String,
    ) -> Result<Result<Option<String>, ConfigError>, Trap> {
        config::Host::get(&mut self.view::<Config>(), key).await
    }

    /// What the call kept: its log lines, how many lines were dropped, and the events emitted.
    pub fn finish(self) -> (Vec<LogLine>, u32, Vec<EmittedEvent>) {
        let capabilities = self.state.capabilities;
        let (lines, dropped) = capabilities.log.finish();
        (lines, dropped, capabilities.events.finish())
    }
}

/// An outgoing request's fate under the policy of a call granted `permissions` with a budget
/// of `max_requests`, private destinations refused: the request as it would be handed to the
/// network (its address is looked up and checked when connecting, see [`crate::egress`]), or
/// the refusal. Stops before any DNS lookup or connection.
///
/// `policy` is the call's policy, shared by its requests (so the budget is spent across calls
/// to this function); build it with [`OutboundHttp::new`].
///
/// # Errors
///
/// The error the guest would see: `HTTP-request-denied`, `HTTP-request-URI-invalid`, ….
pub fn outbound_request(
    policy: &OutboundHttp,
    request: Request<WasiBody>,
) -> Result<Request<WasiBody>, HttpError> {
    let destination = policy.admit(request.uri())?;
    retarget(request, &destination)
}
