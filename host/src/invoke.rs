//! One call of a plugin in a fresh sandbox: instantiate, run `handler.on-event` under the
//! call's limits, and turn every way it can end into a typed result.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use serde::Serialize;
use tracing::Instrument as _;
use tracing::instrument::WithSubscriber as _;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::exports::wasi::http::incoming_handler;

use crate::bindings::types;
use crate::budget::QuotaGrant;
use crate::capabilities::events::EmittedEvent;
use crate::capabilities::http::{Denial, DenialReason};
use crate::capabilities::kv::KvState;
use crate::capabilities::log::LogLine;
use crate::capabilities::{CallContext, CallIdentity};
use crate::capacity::{Capacity, Footprint, TenantShare};
use crate::cpu::CpuSlots;
use crate::egress::CheckedResolver;
use crate::engine::{Metering, PlinthEngine};
use crate::error::InvokeError;
use crate::kv::KvStore;
use crate::limits::Limits;
use crate::metering::{CallRecord, Meter};
use crate::plugin::PreparedPlugin;
use crate::rates::TenantRates;
use crate::runtime::Host;
use crate::sandbox::SandboxState;
use crate::workers::Workers;

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
pub(crate) enum Entry {
    /// `handler.on-event`.
    Event(types::Event),
    /// `lifecycle.on-install`.
    Install,
    /// `lifecycle.on-upgrade(from)`.
    Upgrade(String),
    /// `lifecycle.on-uninstall`.
    Uninstall,
    /// `wasi:http/incoming-handler.handle`: the request goes in, the response comes out.
    Http(Box<HttpExchange>),
}

/// A request for a plugin's HTTP handler and, after the call, its response.
#[derive(Debug)]
pub(crate) struct HttpExchange {
    pub(crate) request: Option<http::Request<Bytes>>,
    pub(crate) response: Option<http::Response<Bytes>>,
}

/// One call to make: what runs, for whom, under which limits, through which export.
pub(crate) struct CallSpec {
    /// The prepared plugin.
    pub(crate) prepared: Arc<PreparedPlugin>,
    /// The tenant's slug or id.
    pub(crate) tenant: String,
    /// The install's configuration values.
    pub(crate) config: Arc<BTreeMap<String, String>>,
    /// The plan's limits (capped by the manifest before use).
    pub(crate) limits: Limits,
    /// Emit hops that led to the call.
    pub(crate) depth: u32,
    /// The export to call.
    pub(crate) entry: Entry,
    /// Whether the call is metered, and against which monthly quota.
    pub(crate) metered: Option<Metered>,
}

/// A metered call: counted by the meter as it starts, within the tenant's quota if given.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Metered {
    /// The tenant's monthly invocation quota, if it has one.
    pub(crate) quota: Option<QuotaGrant>,
}

/// How a call ended, and the response of an HTTP call.
pub(crate) struct Ran {
    pub(crate) invocation: Invocation,
    pub(crate) response: Option<http::Response<Bytes>>,
}

/// What runs calls: the engine, the capabilities' shared state, the host's capacity, the meter
/// and the plugin runtime. Shared by the host and every call in flight.
pub(crate) struct Sandboxes {
    pub(crate) engine: PlinthEngine,
    pub(crate) kv: Option<KvStore>,
    pub(crate) egress: CheckedResolver,
    /// Tenant-wide rates (outbound requests per minute) all calls share.
    pub(crate) rates: Arc<TenantRates>,
    pub(crate) capacity: Capacity,
    /// Slots a call must hold to run guest code: fair shares of the cores. `None` when there
    /// are as many slots as plugin threads (the default): no call could ever wait for one.
    pub(crate) cpu: Option<CpuSlots>,
    pub(crate) meter: Meter,
    pub(crate) workers: Workers,
}

impl std::fmt::Debug for Sandboxes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandboxes")
            .field("engine", &self.engine)
            .field("egress", &self.egress)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Runs `call.event` through `prepared` in a fresh sandbox for `call.tenant`, once the
    /// host's capacity (and the tenant's share in `call.limits`) allows. Not metered.
    ///
    /// Never fails the host: a trap, timeout, exhaustion, plugin error or refusal (`capacity`)
    /// ends only this call, as the [`Invocation`]'s `result`.
    pub async fn invoke(&self, prepared: &Arc<PreparedPlugin>, call: Call) -> Invocation {
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
        self.run(CallSpec {
            prepared: Arc::clone(prepared),
            tenant: call.tenant,
            config: call.config,
            limits: call.limits,
            depth: event.depth,
            entry: Entry::Event(event),
            metered: None,
        })
        .await
        .invocation
    }

    /// Makes one call on the plugin runtime: waits for capacity, counts it (if metered), runs
    /// it in a fresh sandbox and classifies how it ended. Everything the call logs (the
    /// plugin's own lines included) is inside a `plugin_call` span naming the tenant, plugin
    /// and version. The call runs to its end even if the caller stops waiting, so capacity and
    /// usage are always accounted.
    pub(crate) async fn run(&self, spec: CallSpec) -> Ran {
        let manifest = &spec.prepared.plugin.manifest;
        let span = tracing::info_span!(
            "plugin_call",
            tenant = %spec.tenant,
            plugin = %manifest.plugin.id,
            version = %manifest.plugin.version,
        );
        let sandboxes = Arc::clone(&self.sandboxes);
        // The call logs where its caller logs: its span, and its subscriber (a test's, say).
        let call = async move { sandboxes.admit_and_run(spec).await }
            .instrument(span.clone())
            .with_current_subscriber();
        let ran = match self.sandboxes.workers.spawn(call).await {
            Ok(ran) => ran,
            Err(error) => Ran {
                invocation: Invocation::failed(
                    InvokeError::Internal(format!("the call's task failed: {error}")),
                    Instant::now(),
                ),
                response: None,
            },
        };
        span.in_scope(|| {
            let wall_ms = ran.invocation.usage.wall.as_millis();
            match &ran.invocation.result {
                Ok(_) => tracing::debug!(wall_ms, "plugin call succeeded"),
                Err(error) => tracing::info!(code = error.code(), wall_ms, "plugin call failed"),
            }
        });
        ran
    }
}

impl Sandboxes {
    /// Capacity, quota, the call, metering: [`Host::run`] on the plugin runtime.
    async fn admit_and_run(&self, spec: CallSpec) -> Ran {
        let started = Instant::now();
        let manifest = &spec.prepared.plugin.manifest;
        let limits = spec.limits.clone().capped_by(manifest);
        let footprint = Footprint {
            memory_bytes: limits.memory_bytes,
            ..spec.prepared.plugin.footprint
        };
        let share = limits.share.unwrap_or(TenantShare::UNBOUNDED);
        let refused = |error: InvokeError| Ran {
            invocation: Invocation::failed(error, started),
            response: None,
        };
        let permit = match self
            .capacity
            .acquire(&spec.tenant, &footprint, &share)
            .await
        {
            Ok(permit) => permit,
            Err(error) => {
                tracing::info!(tenant = %spec.tenant, %error, "call refused for capacity");
                return refused(InvokeError::from(error));
            }
        };
        let plugin = manifest.plugin.id.to_string();
        let version = manifest.plugin.version.to_string();
        let key = (spec.tenant.as_str(), plugin.as_str(), version.as_str());
        if let Some(metered) = &spec.metered {
            match &metered.quota {
                Some(quota) => {
                    if let Err(refusal) = self.meter.try_begin(key, quota) {
                        return refused(InvokeError::QuotaExceeded {
                            used: refusal.used,
                            limit: refusal.limit,
                        });
                    }
                }
                None => self.meter.begin(key),
            }
        }
        let sandboxed = self.run_sandboxed(
            &spec.prepared,
            &spec.tenant,
            &spec.config,
            &limits,
            spec.depth,
            spec.entry,
        );
        let ran = match &self.cpu {
            Some(cpu) => cpu.fair(&spec.tenant, sandboxed).await,
            None => sandboxed.await,
        };
        drop(permit);
        if spec.metered.is_some() {
            let invocation = &ran.invocation;
            self.meter.finish(
                key,
                &CallRecord {
                    wall: invocation.usage.wall,
                    fuel: invocation.usage.fuel,
                    kv_bytes_written: invocation.usage.kv_bytes_written,
                    outbound_requests: invocation.usage.outbound_requests,
                    error_code: invocation.result.as_ref().err().map(InvokeError::code),
                },
            );
        }
        ran
    }

    /// Calls one export of `prepared` in a fresh sandbox under `limits` (already capped by the
    /// manifest) and classifies how it ended. The call yields to the plugin runtime at every
    /// epoch tick, so a busy plugin never holds a thread past a tick, and is interrupted at its
    /// deadline.
    async fn run_sandboxed(
        &self,
        prepared: &PreparedPlugin,
        tenant: &str,
        config: &Arc<BTreeMap<String, String>>,
        limits: &Limits,
        depth: u32,
        entry: Entry,
    ) -> Ran {
        let started = Instant::now();
        let manifest = &prepared.plugin.manifest;
        let state = SandboxState::new(CallContext {
            identity: CallIdentity {
                tenant: tenant.to_string(),
                plugin: manifest.plugin.id.to_string(),
                version: manifest.plugin.version.to_string(),
            },
            manifest,
            grants: &prepared.grants,
            limits,
            config,
            depth,
            kv: self.kv.as_ref(),
            egress: &self.egress,
            rates: &self.rates,
        });

        let mut store = Store::new(self.engine.engine(prepared.metering), state);
        store.limiter(|state| &mut state.limiter);
        // Yield at every tick until the deadline, then interrupt (a trap classified as a
        // timeout). After a yield the next deadline is a tick after the call resumes, so a call
        // always makes progress however long it waited to be polled again.
        let deadline = started + limits.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        let fuel = match prepared.metering {
            Metering::Epoch => None,
            Metering::Fuel => {
                let fuel = limits.fuel.unwrap_or(DEFAULT_FUEL);
                if let Err(error) = store.set_fuel(fuel) {
                    return Ran {
                        invocation: Invocation::failed(
                            InvokeError::Internal(format!("cannot set fuel: {error:#}")),
                            started,
                        ),
                        response: None,
                    };
                }
                Some(fuel)
            }
        };

        let mut exchange = None;
        let run = async {
            let instance = prepared.pre.instantiate_async(&mut store).await?;
            let hooks = match (&entry, &prepared.lifecycle) {
                (Entry::Event(_) | Entry::Http(_), _) => None,
                (_, Some(indices)) => Some(indices.load(&mut store, &instance)?),
                // A plugin without lifecycle hooks has nothing to run: that is a success.
                (_, None) => return Ok(Ok(None)),
            };
            match (entry, hooks) {
                (Entry::Http(mut served), _) => {
                    let Some(indices) = &prepared.incoming else {
                        return Ok(Err(types::PluginError::Failed(
                            "the plugin does not serve HTTP".to_string(),
                        )));
                    };
                    let handler = indices.load(&mut store, &instance)?;
                    let result =
                        serve(&mut store, &handler, &mut served, limits.max_output_bytes).await;
                    exchange = Some(*served);
                    result
                }
                (Entry::Event(event), _) => {
                    let handler = prepared.handler.load(&mut store, &instance)?;
                    handler.call_on_event(&mut store, &event).await
                }
                (Entry::Install, Some(hooks)) => hooks
                    .call_on_install(&mut store)
                    .await
                    .map(|result| result.map(|()| None)),
                (Entry::Upgrade(from), Some(hooks)) => hooks
                    .call_on_upgrade(&mut store, &from)
                    .await
                    .map(|result| result.map(|()| None)),
                (Entry::Uninstall, Some(hooks)) => hooks
                    .call_on_uninstall(&mut store)
                    .await
                    .map(|result| result.map(|()| None)),
                (_, None) => Ok(Ok(None)),
            }
        };
        let outcome = tokio::time::timeout(limits.timeout, run).await;

        let fuel_used = fuel.map(|fuel| fuel.saturating_sub(store.get_fuel().unwrap_or(0)));
        let result = match outcome {
            Err(_elapsed) => Err(timeout(limits)),
            Ok(Err(error)) if error.downcast_ref::<ResponseTooLarge>().is_some() => {
                Err(InvokeError::OutputTooLarge {
                    size: error
                        .downcast_ref::<ResponseTooLarge>()
                        .map_or(0, |too_large| too_large.0),
                    limit: limits.max_output_bytes,
                })
            }
            Ok(Err(error)) if is_pool_exhausted(&error) => Err(InvokeError::Capacity {
                message: format!("the host's instance pool is full: {error:#}"),
                retry_after_ms: Some(1000),
            }),
            Ok(Err(error)) => Err(classify_trap(&error, &store, limits, fuel)),
            Ok(Ok(Err(plugin_error))) => Err(match store.data().capabilities.http.first_denial() {
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
        let capabilities = state.capabilities;
        let kv_bytes_written = capabilities.kv.as_ref().map_or(0, KvState::bytes_written);
        let outbound_requests = capabilities.http.outbound.requests_sent();
        let mut log = capabilities.log;
        for (level, text) in [("info", &stdout), ("warn", &stderr)] {
            for line in text.lines().filter(|line| !line.trim().is_empty()) {
                log.write(&state.identity, level, line, Vec::new());
            }
        }
        let (logs, logs_dropped) = log.finish();
        let emitted = if result.is_ok() {
            capabilities.events.finish()
        } else {
            Vec::new()
        };
        Ran {
            invocation: Invocation {
                result,
                emitted,
                logs,
                logs_dropped,
                usage: Usage {
                    wall: started.elapsed(),
                    fuel: fuel_used,
                    memory_bytes,
                    outbound_requests,
                    kv_bytes_written,
                },
            },
            response: exchange.and_then(|served| served.response),
        }
    }
}

/// Whether instantiation failed because the pooling allocator had no free slot (admission
/// should prevent it; if it happens, it is the host's capacity, not the plugin's fault).
fn is_pool_exhausted(error: &wasmtime::Error) -> bool {
    error.downcast_ref::<Trap>().is_none() && format!("{error:#}").contains("maximum concurrent")
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
