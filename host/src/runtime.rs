//! [`Host`]: loads plugin versions and prepares them for grants.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use plinth_package::{Package, Permissions};
use wasmtime::component::Linker;

use tokio::sync::broadcast;

use crate::Error;
use wasmtime_wasi_http::p2::bindings::exports::wasi::http::incoming_handler;

use crate::bindings::{handler, lifecycle};
use crate::breaker::{BreakerPolicy, RolloutPolicy};
use crate::cache::CompiledCache;
use crate::capabilities::{self, CapabilitySet};
use crate::engine::{EngineConfig, Metering, PlinthEngine};
use crate::installs::{HostEvent, InstallTable};
use crate::kv::KvStore;
use crate::local_changes::LocalChanges;
use crate::metering::Meter;
use crate::plugin::{LoadedPlugin, PreparedPlugin};
use crate::rates::TenantRates;
use crate::sandbox::SandboxState;
use crate::trust::TrustPolicy;

/// How a [`Host`] is set up. Start from [`HostConfig::new`].
#[derive(Debug)]
pub struct HostConfig {
    /// Engine sizing.
    pub engine: EngineConfig,
    /// Where compiled components are cached.
    pub cache_dir: PathBuf,
    /// Which packages may be loaded.
    pub trust: TrustPolicy,
    /// Storage of the kv capability; without it, plugins granted kv cannot be prepared.
    pub kv: Option<KvStore>,
    /// Let plugins reach loopback and private addresses over HTTP (tests, local development).
    pub allow_private_http: bool,
    /// Circuit breaker, rollout and dispatch policies.
    pub policies: HostPolicies,
}

impl HostConfig {
    /// A host caching compiled components in `cache_dir` and trusting per `trust`, with
    /// default engine sizing and policies, no kv store and no private HTTP.
    pub fn new(cache_dir: impl Into<PathBuf>, trust: TrustPolicy) -> Self {
        HostConfig {
            engine: EngineConfig::default(),
            cache_dir: cache_dir.into(),
            trust,
            kv: None,
            allow_private_http: false,
            policies: HostPolicies::default(),
        }
    }
}

/// How installs are protected and events dispatched.
#[derive(Clone, Debug)]
pub struct HostPolicies {
    /// When an install's breaker opens and for how long.
    pub breaker: BreakerPolicy,
    /// When a fresh upgrade is rolled back automatically.
    pub rollout: RolloutPolicy,
    /// Deliveries of one event that run at once.
    pub max_concurrent_deliveries: usize,
}

impl Default for HostPolicies {
    fn default() -> Self {
        HostPolicies {
            breaker: BreakerPolicy::default(),
            rollout: RolloutPolicy::default(),
            max_concurrent_deliveries: 16,
        }
    }
}

/// Linkers built so far, one per (metering, capability set).
type LinkerCache = Mutex<HashMap<(Metering, CapabilitySet), Arc<Linker<SandboxState>>>>;

/// The data plane: one per process.
pub struct Host {
    pub(crate) engine: PlinthEngine,
    cache: CompiledCache,
    trust: TrustPolicy,
    pub(crate) kv: Option<KvStore>,
    pub(crate) allow_private_http: bool,
    pub(crate) policies: HostPolicies,
    pub(crate) installs: InstallTable,
    pub(crate) meter: Meter,
    /// Tenant-wide rates (outbound requests per minute) all calls share.
    pub(crate) rates: Arc<TenantRates>,
    pub(crate) events: broadcast::Sender<HostEvent>,
    /// Installs this process changed itself, and when.
    pub(crate) local_changes: LocalChanges,
    linkers: LinkerCache,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("engine", &self.engine)
            .field("allow_private_http", &self.allow_private_http)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Starts the engines and opens the compiled-component cache.
    ///
    /// # Errors
    ///
    /// If the engine configuration is refused or the cache directory cannot be created.
    pub fn new(config: HostConfig) -> Result<Self, Error> {
        Ok(Host {
            engine: PlinthEngine::new(&config.engine)?,
            cache: CompiledCache::new(config.cache_dir)?,
            trust: config.trust,
            kv: config.kv,
            allow_private_http: config.allow_private_http,
            policies: config.policies,
            installs: InstallTable::default(),
            meter: Meter::new(),
            rates: Arc::new(TenantRates::new()),
            events: broadcast::channel(1024).0,
            local_changes: LocalChanges::default(),
            linkers: Mutex::new(HashMap::new()),
        })
    }

    /// Usage counters of every call dispatched through installs; flush them to storage.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Lifecycle events (automatic rollbacks, opened breakers) from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.events.subscribe()
    }

    /// Loads a package: checks its signatures against the trust policy, then compiles it (or
    /// loads it from the compiled cache) for the standard engine.
    ///
    /// # Errors
    ///
    /// [`Error::Trust`] if the package is not trusted; [`Error::Cache`] if it does not compile.
    pub fn load(&self, package: &Package) -> Result<Arc<LoadedPlugin>, Error> {
        self.trust.check(package)?;
        let plugin = LoadedPlugin {
            manifest: Arc::new(package.manifest.clone()),
            digest: package.digest(),
            wasm: Arc::from(package.wasm.as_slice()),
            components: [OnceLock::new(), OnceLock::new()],
            prepared: Mutex::new(HashMap::new()),
        };
        self.component(&plugin, Metering::Epoch)?;
        tracing::info!(plugin = %plugin.label(), digest = %plugin.digest, "loaded");
        Ok(Arc::new(plugin))
    }

    /// Prepares a loaded plugin for a tenant's `grants` (which must be a subset of what the
    /// manifest asks for): links exactly the granted capabilities and pre-instantiates.
    /// Prepared forms are shared by every tenant with the same grant and metering.
    ///
    /// # Errors
    ///
    /// [`Error::GrantNotRequested`] for a grant beyond the manifest; [`Error::Link`] if the
    /// component imports a capability the grant does not cover or is not a plugin;
    /// [`Error::NoKvStore`] if kv is granted and the host has no store.
    pub fn prepare(
        &self,
        plugin: &Arc<LoadedPlugin>,
        grants: &Permissions,
        metering: Metering,
    ) -> Result<Arc<PreparedPlugin>, Error> {
        let key = (metering, grants.digest());
        if let Some(prepared) = lock(&plugin.prepared).get(&key) {
            return Ok(Arc::clone(prepared));
        }
        if let Some(grant) = grants
            .grants()
            .into_iter()
            .find(|grant| !plugin.manifest.permissions.covers(grant))
        {
            return Err(Error::GrantNotRequested {
                plugin: plugin.label(),
                grant: grant.sentence(),
            });
        }
        let capabilities = CapabilitySet::granted(grants);
        if capabilities.kv && self.kv.is_none() {
            return Err(Error::NoKvStore);
        }
        let component = self.component(plugin, metering)?;
        let linker = self.linker(metering, capabilities)?;
        let link_error = |error: wasmtime::Error| Error::Link {
            plugin: plugin.label(),
            message: format!("{error:#}"),
        };
        let pre = linker.instantiate_pre(&component).map_err(link_error)?;
        let handler = handler::GuestIndices::new(&pre).map_err(link_error)?;
        let lifecycle = lifecycle::GuestIndices::new(&pre).ok();
        let incoming = incoming_handler::GuestIndices::new(&pre).ok();
        let prepared = Arc::new(PreparedPlugin {
            plugin: Arc::clone(plugin),
            grants: Arc::new(grants.clone()),
            capabilities,
            metering,
            pre,
            handler,
            lifecycle,
            incoming,
        });
        lock(&plugin.prepared).insert(key, Arc::clone(&prepared));
        Ok(prepared)
    }

    /// The plugin compiled for the engine of `metering`, compiling on first use.
    fn component(
        &self,
        plugin: &LoadedPlugin,
        metering: Metering,
    ) -> Result<wasmtime::component::Component, Error> {
        let slot = &plugin.components[LoadedPlugin::slot(metering)];
        if let Some(component) = slot.get() {
            return Ok(component.clone());
        }
        let (component, outcome) = self
            .cache
            .load_or_compile(self.engine.engine(metering), &plugin.wasm)?;
        tracing::debug!(plugin = %plugin.label(), ?metering, ?outcome, "compiled component ready");
        Ok(slot.get_or_init(|| component).clone())
    }

    /// The linker for a capability set, built once per (metering, set).
    fn linker(
        &self,
        metering: Metering,
        set: CapabilitySet,
    ) -> Result<Arc<Linker<SandboxState>>, Error> {
        let mut linkers = lock(&self.linkers);
        if let Some(linker) = linkers.get(&(metering, set)) {
            return Ok(Arc::clone(linker));
        }
        let linker = Arc::new(
            capabilities::linker(self.engine.engine(metering), set)
                .map_err(|e| Error::Engine(format!("linking capabilities: {e:#}")))?,
        );
        linkers.insert((metering, set), Arc::clone(&linker));
        Ok(linker)
    }
}

/// Locks a mutex, recovering it if a holder panicked: every value guarded this way stays
/// consistent at each step (maps that only grow, whole-value swaps).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
