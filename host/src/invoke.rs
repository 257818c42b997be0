//! One call of a plugin in a fresh sandbox: instantiate, run `handler.on-event` under the
//! call's limits, and turn every way it can end into a typed result.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use serde::Serialize;
use tracing::Instrument as _;
use wasmtime::{Store, Trap};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::exports::wasi::http::incoming_handler;

use crate::bindings::types;
use crate::capabilities::config::ConfigState;
use crate::capabilities::events::{EmittedEvent, EventsState};
use crate::capabilities::http::{Denial, DenialReason, OutboundHttp, TenantRate};
use crate::capabilities::kv::KvState;
use crate::capabilities::log::{LogLine, LogState};
use crate::engine::Metering;
use crate::error::InvokeError;
use crate::kv::{KvQuota, Namespace};
use crate::limits::Limits;
use crate::plugin::PreparedPlugin;
use crate::runtime::Host;
use crate::sandbox::{CallIdentity, SandboxState};

/// Fuel a metered call gets when its limits name none.
pub const DEFAULT_FUEL: u64 = 1_000_000_000;

/// An event to deliver to one plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Unique id of the delivery.
    pub id: String,
    /// The topic.
    pub topic: String,
    /// The payload (by convention UTF-8 JSON).
    pub payload: Vec<u8>,
    /// Emit hops that led to this event (0 from outside).
    pub depth: u32,
}

/// Everything one call needs besides the plugin: whose call it is, the event, the install's
/// configuration and the plan's limits.
#[derive(Clone, Debug)]
pub struct Call {
    /// The tenant's slug.
    pub tenant: String,
    /// The event.
    pub event: Event,
    /// The install's configuration values.
    pub config: Arc<BTreeMap<String, String>>,
    /// The plan's limits (capped by the manifest before use).
    pub limits: Limits,
}

/// What a call used, for metering.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Wall-clock time of the whole call.
    pub wall: Duration,
    /// Fuel consumed, when metering was on.
    pub fuel: Option<u64>,
    /// Peak bytes of memories and tables.
    pub memory_bytes: u64,
    /// Outbound HTTP requests sent.
    pub outbound_requests: u32,
    /// Bytes of keys and values written to kv.
    pub kv_bytes_written: u64,
}

/// How a call ended: its result, plus what it logged, emitted and used.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The plugin's output (`None` for no output) or why the call failed.
    pub result: Result<Option<Vec<u8>>, InvokeError>,
    /// Events emitted by a successful call (a failed call's emits are discarded).
    pub emitted: Vec<EmittedEvent>,
    /// Lines the plugin logged, including what it wrote to stdout and stderr.
    pub logs: Vec<LogLine>,
    /// Lines dropped past the per-call cap.
    pub logs_dropped: u32,
    /// Resources used.
    pub usage: Usage,
}

/// Which export a sandboxed run calls.
pub(crate) enum Entry<'a> {
    /// `handler.on-event`.
    Event(&'a types::Event),
    /// `lifecycle.on-install`.
    Install,
    /// `lifecycle.on-upgrade(from)`.
    Upgrade(&'a str),
    /// `lifecycle.on-uninstall`.
    Uninstall,
    /// `wasi:http/incoming-handler.handle`: the request goes in, the response comes out.
    Http(&'a mut HttpExchange),
}

/// A request for a plugin's HTTP handler and, after the call, its response.
#[derive(Debug)]
pub(crate) struct HttpExchange {
    pub(crate) request: Option<http::Request<Bytes>>,
    pub(crate) response: Option<http::Response<Bytes>>,
}

impl Host {
    /// Runs `call.event` through `prepared` in a fresh sandbox for `call.tenant`.
    ///
    /// Never fails the host: a trap, timeout, exhaustion or plugin error ends only this call,
    /// as the [`Invocation`]'s `result`.
    pub async fn invoke(&self, prepared: &PreparedPlugin, call: Call) -> Invocation {
        let manifest = &prepared.plugin.manifest;
        if !manifest.permissions.subscribes(&call.event.topic) {
            return Invocation::failed(
                InvokeError::NotSubscribed {
                    topic: call.event.topic,
                },
                Instant::now(),
            );
        }
        let event = types::Event {
            id: call.event.id,
            topic: call.event.topic,
            payload: call.event.payload,
            tenant: call.tenant.clone(),
            depth: call.event.depth,
        };
        self.run(
            prepared,
            &call.tenant,
            &call.config,
            &call.limits,
            event.depth,
            Entry::Event(&event),
        )
        .await
    }

    /// Calls one export of `prepared` in a fresh sandbox under `limits` (capped by the
    /// manifest) and classifies how it ended. Everything the call logs (the plugin's own lines
    /// included) is inside a `plugin_call` span naming the tenant, plugin and version.
    pub(crate) async fn run(
        &self,
        prepared: &PreparedPlugin,
        tenant: &str,
        config: &Arc<BTreeMap<String, String>>,
        limits: &Limits,
        depth: u32,
        entry: Entry<'_>,
    ) -> Invocation {
        let manifest = &prepared.plugin.manifest;
        let span = tracing::info_span!(
            "plugin_call",
            tenant,
            plugin = %manifest.plugin.id,
            version = %manifest.plugin.version,
        );
        let invocation = self
            .run_sandboxed(prepared, tenant, config, limits, depth, entry)
            .instrument(span.clone())
            .await;
        span.in_scope(|| {
            let wall_ms = invocation.usage.wall.as_millis();
            match &invocation.result {
                Ok(_) => tracing::debug!(wall_ms, "plugin call succeeded"),
                Err(error) => tracing::info!(code = error.code(), wall_ms, "plugin call failed"),
            }
        });
        invocation
    }

    /// [`Host::run`] without its span.
    async fn run_sandboxed(
        &self,
        prepared: &PreparedPlugin,
        tenant: &str,
        config: &Arc<BTreeMap<String, String>>,
        limits: &Limits,
        depth: u32,
        entry: Entry<'_>,
    ) -> Invocation {
        let started = Instant::now();
        let manifest = &prepared.plugin.manifest;
        let limits = limits.clone().capped_by(manifest);
        let identity = CallIdentity {
            tenant: tenant.to_string(),
            plugin: manifest.plugin.id.to_string(),
            version: manifest.plugin.version.to_string(),
        };
        let kv = match (&self.kv, &prepared.grants.kv) {
            (Some(store), Some(grant)) => Some(KvState::new(
                store.clone(),
                Namespace::new(&identity.tenant, &identity.plugin),
                KvQuota {
                    max_bytes: grant.max_bytes,
                    max_keys: grant.max_keys,
                    tenant_max_bytes: limits.tenant_kv_bytes,
                },
            )),
            _ => None,
        };
        let mut outbound = OutboundHttp::new(
            Arc::clone(&prepared.grants),
            self.allow_private_http,
            limits.max_outbound_requests,
        );
        if let Some(per_minute) = limits.tenant_outbound_per_minute {
            outbound = outbound.with_tenant_rate(TenantRate {
                rates: Arc::clone(&self.rates),
                tenant: identity.tenant.clone(),
                per_minute,
            });
        }
        let denials = outbound.denials();
        let state = SandboxState::new(
            identity,
            limits.memory_bytes,
            Box::new(outbound.clone()),
            LogState::new(&limits),
            kv,
            ConfigState::new(manifest, Arc::clone(config)),
            EventsState::new(
                Arc::clone(&prepared.grants),
                depth,
                limits.max_emitted_events,
                limits.max_event_payload_bytes,
            ),
        );

        let mut store = Store::new(self.engine.engine(prepared.metering), state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(self.engine.deadline_ticks(limits.timeout));
        store.epoch_deadline_trap();
        let fuel = match prepared.metering {
            Metering::Epoch => None,
            Metering::Fuel => {
                let fuel = limits.fuel.unwrap_or(DEFAULT_FUEL);
                if let Err(error) = store.set_fuel(fuel) {
                    return Invocation::failed(
                        InvokeError::Internal(format!("cannot set fuel: {error:#}")),
                        started,
                    );
                }
                Some(fuel)
            }
        };

        let run = async {
            let instance = prepared.pre.instantiate_async(&mut store).await?;
            if let Entry::Http(exchange) = entry {
                let Some(indices) = &prepared.incoming else {
                    return Ok(Err(types::PluginError::Failed(
                        "the plugin does not serve HTTP".to_string(),
                    )));
                };
                let handler = indices.load(&mut store, &instance)?;
                return serve(&mut store, &handler, exchange, limits.max_output_bytes).await;
            }
            let hooks = match (&entry, &prepared.lifecycle) {
                (Entry::Event(_), _) => None,
                (_, Some(indices)) => Some(indices.load(&mut store, &instance)?),
                // A plugin without lifecycle hooks has nothing to run: that is a success.
                (_, None) => return Ok(Ok(None)),
            };
            match (entry, hooks) {
                (Entry::Event(event), _) => {
                    let handler = prepared.handler.load(&mut store, &instance)?;
                    handler.call_on_event(&mut store, event).await
                }
                (Entry::Install, Some(hooks)) => hooks
                    .call_on_install(&mut store)
                    .await
                    .map(|result| result.map(|()| None)),
                (Entry::Upgrade(from), Some(hooks)) => hooks
                    .call_on_upgrade(&mut store, from)
                    .await
                    .map(|result| result.map(|()| None)),
                (Entry::Uninstall, Some(hooks)) => hooks
                    .call_on_uninstall(&mut store)
                    .await
                    .map(|result| result.map(|()| None)),
                (Entry::Http(_), _) | (_, None) => Ok(Ok(None)),
            }
        };
        let outcome = tokio::time::timeout(limits.timeout, run).await;

        let fuel_used = fuel.map(|fuel| fuel.saturating_sub(store.get_fuel().unwrap_or(0)));
        let result = match outcome {
            Err(_elapsed) => Err(timeout(&limits)),
            Ok(Err(error)) if error.downcast_ref::<ResponseTooLarge>().is_some() => {
                Err(InvokeError::OutputTooLarge {
                    size: error
                        .downcast_ref::<ResponseTooLarge>()
                        .map_or(0, |too_large| too_large.0),
                    limit: limits.max_output_bytes,
                })
            }
            Ok(Err(error)) => Err(classify_trap(&error, &store, &limits, fuel)),
            Ok(Ok(Err(plugin_error))) => Err(match denials.first() {
                // The plugin failed after its tenant ran out of requests for the minute.
                Some(Denial {
                    reason: DenialReason::TenantRate,
                    retry_after,
                    ..
                }) => InvokeError::RateLimited {
                    what: "outbound HTTP requests per minute".to_owned(),
                    retry_after_ms: retry_after.map_or(0, |wait| {
                        u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
                    }),
                },
                // The plugin failed after the host refused it a capability: say so.
                Some(denial) => InvokeError::PermissionDenied {
                    capability: "http".to_string(),
                    detail: denial.to_string(),
                },
                None => plugin_failure(plugin_error),
            }),
            Ok(Ok(Ok(output))) => match output {
                Some(bytes) if bytes.len() as u64 > limits.max_output_bytes => {
                    Err(InvokeError::OutputTooLarge {
                        size: bytes.len() as u64,
                        limit: limits.max_output_bytes,
                    })
                }
                output => Ok(output),
            },
        };

        let state = store.into_data();
        let stdout = state.stdout_text();
        let stderr = state.stderr_text();
        let memory_bytes = state.limiter.used();
        let kv_bytes_written = state.kv.as_ref().map_or(0, KvState::bytes_written);
        let mut log = state.log;
        for (level, text) in [("info", &stdout), ("warn", &stderr)] {
            for line in text.lines().filter(|line| !line.trim().is_empty()) {
                log.write(&state.identity, level, line, Vec::new());
            }
        }
        let (logs, logs_dropped) = log.finish();
        let emitted = if result.is_ok() {
            state.events.finish()
        } else {
            Vec::new()
        };
        Invocation {
            result,
            emitted,
            logs,
            logs_dropped,
            usage: Usage {
                wall: started.elapsed(),
                fuel: fuel_used,
                memory_bytes,
                outbound_requests: outbound.requests_sent(),
                kv_bytes_written,
            },
        }
    }
}

impl Invocation {
    pub(crate) fn failed(error: InvokeError, started: Instant) -> Self {
        Invocation {
            result: Err(error),
            emitted: Vec::new(),
            logs: Vec::new(),
            logs_dropped: 0,
            usage: Usage {
                wall: started.elapsed(),
                ..Usage::default()
            },
        }
    }
}

/// A plugin's HTTP response body passed the output limit (carries the bytes read so far).
#[derive(Debug, thiserror::Error)]
#[error("the response body passed the output limit after {0} bytes")]
struct ResponseTooLarge(u64);

/// Hands `exchange.request` to the guest's incoming handler and reads its response, body
/// included, while the handler runs (the guest blocks when the host does not read).
async fn serve(
    store: &mut Store<SandboxState>,
    handler: &incoming_handler::Guest,
    exchange: &mut HttpExchange,
    max_body_bytes: u64,
) -> wasmtime::Result<Result<Option<Vec<u8>>, types::PluginError>> {
    let Some(request) = exchange.request.take() else {
        return Ok(Ok(None));
    };
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let request = store.data_mut().http().new_incoming_request(
        wasmtime_wasi_http::p2::bindings::http::types::Scheme::Http,
        request.map(Full::new),
    )?;
    let outparam = store.data_mut().http().new_response_outparam(sender)?;
    let call = handler.call_handle(&mut *store, request, outparam);
    let read = async {
        let Ok(Ok(response)) = receiver.await else {
            return Ok(None);
        };
        let (parts, mut body) = response.into_parts();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| wasmtime::Error::msg(format!("response body: {e}")))?;
            if let Some(data) = frame.data_ref() {
                bytes.extend_from_slice(data);
                if bytes.len() as u64 > max_body_bytes {
                    return Err(wasmtime::Error::new(ResponseTooLarge(bytes.len() as u64)));
                }
            }
        }
        Ok::<_, wasmtime::Error>(Some(http::Response::from_parts(parts, Bytes::from(bytes))))
    };
    // Both run together; a handler that traps never drops its response sender (the store
    // still holds it), so its failure must end the wait for a response.
    tokio::pin!(call, read);
    let mut called = false;
    let response = loop {
        tokio::select! {
            result = &mut call, if !called => {
                result?;
                called = true;
            }
            result = &mut read => {
                let response = result?;
                if !called {
                    call.await?;
                }
                break response;
            }
        }
    };
    match response {
        Some(response) => {
            exchange.response = Some(response);
            Ok(Ok(None))
        }
        None => Ok(Err(types::PluginError::Failed(
            "the plugin's HTTP handler did not send a response".to_string(),
        ))),
    }
}

fn timeout(limits: &Limits) -> InvokeError {
    InvokeError::Timeout {
        limit_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
    }
}

/// Turns a wasmtime error (a trap or a host fault) into the call's typed error.
fn classify_trap(
    error: &wasmtime::Error,
    store: &Store<SandboxState>,
    limits: &Limits,
    fuel: Option<u64>,
) -> InvokeError {
    let state = store.data();
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => InvokeError::OutOfFuel {
            limit: fuel.unwrap_or(0),
        },
        Some(Trap::Interrupt) => timeout(limits),
        _ if state.limiter.was_denied() => InvokeError::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        },
        Some(Trap::StackOverflow) => InvokeError::Trap {
            message: "stack overflow: the plugin exhausted its call stack".to_string(),
        },
        Some(trap) => {
            // A Rust guest prints its panic message to stderr before trapping; it is the
            // guest's text, so it is escaped and bounded like any error text of a guest.
            let panic = state
                .stderr_text()
                .lines()
                .find(|line| line.contains("panicked"))
                .map(|line| format!(" ({})", line.trim()))
                .unwrap_or_default();
            InvokeError::Trap {
                message: crate::guest_text::bounded_error(&format!("{trap}{panic}")),
            }
        }
        // A fault's chain may quote the guest (e.g. names from its wasm backtrace).
        None => InvokeError::Internal(crate::guest_text::bounded_error(&format!("{error:#}"))),
    }
}

/// The typed error of a plugin that returned `plugin-error`, its text escaped and bounded.
fn plugin_failure(error: types::PluginError) -> InvokeError {
    let (kind, message) = match error {
        types::PluginError::InvalidPayload(message) => ("invalid-payload", message),
        types::PluginError::InvalidConfig(message) => ("invalid-config", message),
        types::PluginError::Capability(message) => ("capability", message),
        types::PluginError::Failed(message) => ("failed", message),
    };
    InvokeError::PluginError {
        kind: kind.to_string(),
        message: crate::guest_text::bounded_error(&message),
    }
}
