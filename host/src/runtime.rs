//! [`Host`]: loads plugin versions and prepares them for grants.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use plinth_package::{Package, Permissions};
use wasmtime::component::Linker;

use tokio::sync::broadcast;

use crate::Error;
use wasmtime_wasi_http::p2::bindings::exports::wasi::http::incoming_handler;

use crate::bindings::{handler, lifecycle};
use crate::breaker::{BreakerPolicy, RolloutPolicy};
use crate::cache::CompiledCache;
use crate::capabilities::{self, CapabilitySet};
use crate::capacity::{Capacity, CapacityConfig, Footprint};
use crate::cpu::CpuSlots;
use crate::egress::CheckedResolver;
use crate::engine::{
    EngineConfig, MAX_CORE_INSTANCES_PER_COMPONENT, MAX_MEMORIES_PER_COMPONENT,
    MAX_TABLES_PER_COMPONENT, Metering, PlinthEngine,
};
use crate::footprint;
use crate::installs::{HostEvent, InstallTable};
use crate::invoke::Sandboxes;
use crate::kv::KvStore;
use crate::loaded::LoadedVersions;
use crate::local_changes::LocalChanges;
use crate::metering::Meter;
use crate::plugin::{LoadedPlugin, PreparedPlugin};
use crate::rates::{RateLeases, SharedRates, TenantRates};
use crate::runs::RunRecorder;
use crate::sandbox::SandboxState;
use crate::statements::{Freshness, Observed, StatementGuard, StatementRefused};
use crate::trust::{TrustError, TrustPolicy};
use crate::workers::Workers;
use plinth_package::signing::statement::{SignedStatement, StateStatement};

/// Plugin threads per core by default. More threads than cores, so that a few calls busy in
/// work that cannot yield (a large `memory.fill`, say) never hold every thread: the operating
/// system then shares the cores between them and other tenants' calls.
pub const WORKER_THREADS_PER_CORE: usize = 4;

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
    /// How plugins' outbound HTTP resolves names and which addresses it may reach (private and
    /// loopback ones only if it allows them: tests, local development).
    pub egress: CheckedResolver,
    /// Circuit breaker, rollout and dispatch policies.
    pub policies: HostPolicies,
    /// The budget all calls share (clamped to the engine's pool).
    pub capacity: CapacityConfig,
    /// Threads of the plugin runtime; `None`: [`WORKER_THREADS_PER_CORE`] per available core.
    pub worker_threads: Option<usize>,
    /// Calls that may run guest code at once, shared fairly between tenants: a call holds a
    /// slot only while its guest code runs, and a freed slot goes to the waiting tenant with
    /// the fewest slots. `None`: one per plugin thread, so the threads are the only bound and
    /// the operating system shares the cores.
    pub cpu_slots: Option<usize>,
    /// The store every process of a deployment leases tenants' outbound rates from, when
    /// several share them; `None`: the rates are this process's alone ([`crate::rates`]).
    pub rate_leases: Option<Arc<dyn RateLeases>>,
}

impl HostConfig {
    /// A host caching compiled components in `cache_dir` and trusting per `trust`, with
    /// default engine sizing and policies, no kv store, and outbound HTTP through the system's
    /// resolver to public addresses only.
    pub fn new(cache_dir: impl Into<PathBuf>, trust: TrustPolicy) -> Self {
        HostConfig {
            engine: EngineConfig::default(),
            cache_dir: cache_dir.into(),
            trust,
            kv: None,
            egress: CheckedResolver::default(),
            policies: HostPolicies::default(),
            capacity: CapacityConfig::default(),
            worker_threads: None,
            cpu_slots: None,
            rate_leases: None,
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

/// Slots of the pooling allocator in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolInUse {
    /// Component instances (calls).
    pub component_instances: u64,
    /// Core module instances.
    pub core_instances: u64,
    /// Linear memories.
    pub memories: u64,
    /// Tables.
    pub tables: u64,
}

/// Linkers built so far, one per (metering, capability set).
type LinkerCache = Mutex<HashMap<(Metering, CapabilitySet), Arc<Linker<SandboxState>>>>;

/// The data plane: one per process.
pub struct Host {
    /// What runs calls; shared with the calls in flight.
    pub(crate) sandboxes: Arc<Sandboxes>,
    cache: CompiledCache,
    trust: TrustPolicy,
    pub(crate) policies: HostPolicies,
    pub(crate) installs: InstallTable,
    pub(crate) events: broadcast::Sender<HostEvent>,
    /// Installs this process changed itself, and when.
    pub(crate) local_changes: LocalChanges,
    linkers: LinkerCache,
    loaded: LoadedVersions,
    /// Where runs through installs are recorded, once set.
    pub(crate) run_recorder: OnceLock<Arc<dyn RunRecorder>>,
    /// The newest marketplace state statement seen (freeze and rollback defence).
    pub(crate) statements: StatementGuard,
    /// Held by a compile check: one compiles at a time, so concurrent submissions of large
    /// components queue instead of compiling (and holding their compilers' memory) all at
    /// once. One compile still uses every core for its seconds (parallel compilation).
    compile_checks: Mutex<()>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("sandboxes", &self.sandboxes)
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
        let pool = &config.engine;
        // Admission keeps calls within the pool, so the pool itself never refuses one.
        let capacity = CapacityConfig {
            max_calls: config.capacity.max_calls.min(pool.max_instances),
            max_core_instances: config
                .capacity
                .max_core_instances
                .min(pool.max_core_instances),
            max_memories: config.capacity.max_memories.min(pool.max_memories),
            max_tables: config.capacity.max_tables.min(pool.max_tables),
            ..config.capacity
        };
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let threads = config
            .worker_threads
            .unwrap_or(cores.saturating_mul(WORKER_THREADS_PER_CORE));
        let sandboxes = Sandboxes {
            engine: PlinthEngine::new(&config.engine)?,
            kv: config.kv,
            egress: config.egress,
            rates: Arc::new(config.rate_leases.map_or_else(TenantRates::new, |leases| {
                TenantRates::with_shared(SharedRates::new(leases))
            })),
            capacity: Capacity::new(capacity),
            // A call holds a slot only while a plugin thread polls it: with a slot per thread
            // nobody ever waits, so the slots are left out.
            cpu: config
                .cpu_slots
                .filter(|slots| *slots < threads)
                .map(CpuSlots::new),
            meter: Meter::new(),
            workers: Workers::new(threads)?,
        };
        let cache = CompiledCache::new(config.cache_dir)?;
        let statements = StatementGuard::open(Some(cache.dir()));
        Ok(Host {
            sandboxes: Arc::new(sandboxes),
            cache,
            statements,
            trust: config.trust,
            policies: config.policies,
            installs: InstallTable::default(),
            events: broadcast::channel(1024).0,
            local_changes: LocalChanges::default(),
            linkers: Mutex::new(HashMap::new()),
            loaded: LoadedVersions::default(),
            run_recorder: OnceLock::new(),
            compile_checks: Mutex::new(()),
        })
    }

    /// Usage counters of every call dispatched through installs; flush them to storage.
    pub fn meter(&self) -> &Meter {
        &self.sandboxes.meter
    }

    /// The kv capability's storage, if this host has one (what a tenant's plugins store).
    pub fn kv_store(&self) -> Option<&KvStore> {
        self.sandboxes.kv.as_ref()
    }

    /// Hands every run through an install (events, HTTP requests, lifecycle hooks) to
    /// `recorder` from now on, as it ends ([`crate::runs`]). A host has at most one recorder:
    /// returns `false` (and keeps the first) if one was set already.
    pub fn set_run_recorder(&self, recorder: Arc<dyn RunRecorder>) -> bool {
        self.run_recorder.set(recorder).is_ok()
    }

    /// Gives the deployment's shared rate store back the outbound requests this process
    /// leased and did not send (at shutdown); returns how many went back.
    pub async fn release_rates(&self) -> u64 {
        self.sandboxes.rates.release().await
    }

    /// The host's capacity: its budget and what is in use.
    pub fn capacity(&self) -> &Capacity {
        &self.sandboxes.capacity
    }

    /// The slots of the standard engine's pooling allocator in use now (as wasmtime counts
    /// them), for metrics and to check admission against.
    pub fn pool_in_use(&self) -> PoolInUse {
        let metrics = self
            .sandboxes
            .engine
            .engine(Metering::Epoch)
            .pooling_allocator_metrics();
        metrics.map_or_else(PoolInUse::default, |pool| PoolInUse {
            component_instances: pool.component_instances(),
            core_instances: pool.core_instances(),
            memories: pool.memories() as u64,
            tables: pool.tables() as u64,
        })
    }

    /// Lifecycle events (automatic rollbacks, opened breakers) from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.events.subscribe()
    }

    /// Loads a package: checks its signatures against the trust policy, then compiles it (or
    /// loads it from the compiled cache) for the standard engine. A version already loaded
    /// (same package digest) is checked again and shared, not loaded twice.
    ///
    /// # Errors
    ///
    /// [`Error::Trust`] if the package is not trusted; [`Error::Cache`] if it does not compile.
    pub fn load(&self, package: &Package) -> Result<Arc<LoadedPlugin>, Error> {
        let info = &package.manifest.plugin;
        let version = info.version.to_string();
        if let Some(sequence) = self.statements.revokes(info.id.as_str(), &version) {
            return Err(Error::Trust(TrustError::Revoked {
                plugin: info.id.to_string(),
                version,
                sequence,
            }));
        }
        // The check hashes the package; its digest is the one the loaded versions are kept by.
        let rotated = self.statements.keys();
        let digest = self.trust.check_with(package, rotated.as_deref())?.digest();
        if let Some(loaded) = self.loaded.get(&digest) {
            return Ok(loaded);
        }
        let mut plugin = LoadedPlugin {
            manifest: Arc::new(package.manifest.clone()),
            digest,
            wasm: Arc::from(package.wasm.as_slice()),
            components: [OnceLock::new(), OnceLock::new()],
            prepared: Mutex::new(HashMap::new()),
            footprint: Footprint::default(),
        };
        let component = self.component(&plugin, Metering::Epoch)?;
        plugin.footprint = footprint::of(&component, &plugin.wasm);
        fits_one_instance(&plugin.footprint).map_err(|message| Error::Link {
            plugin: plugin.label(),
            message,
        })?;
        tracing::info!(plugin = %plugin.label(), digest = %plugin.digest, footprint = ?plugin.footprint, "loaded");
        Ok(self.loaded.keep(Arc::new(plugin)))
    }

    /// Compiles `package`'s component with this host's engine (into the compiled cache, so a
    /// later [`load`](Self::load) does not compile again) and checks that it would run here:
    /// it fits one instance of the pool, links against the capabilities its manifest asks
    /// for, and exports the handler. Signatures are not checked: this is what `plinth plugin
    /// build` and a submission run before anything is signed or countersigned.
    ///
    /// Compiling a component built by a language runtime takes seconds of CPU: call it off the
    /// async runtime. Checks run one at a time (others wait); a component already in the cache
    /// is not compiled again.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] if wasmtime refuses to compile the component, [`Error::Link`] if it
    /// does not fit or does not link.
    pub fn check_compiles(&self, package: &Package) -> Result<Footprint, Error> {
        let label = format!(
            "{}@{}",
            package.manifest.plugin.id, package.manifest.plugin.version
        );
        let engine = self.sandboxes.engine.engine(Metering::Epoch);
        let (component, _) = {
            let _one_at_a_time = lock(&self.compile_checks);
            self.cache.load_or_compile(engine, &package.wasm)?
        };
        let footprint = footprint::of(&component, &package.wasm);
        let link_error = |message: String| Error::Link {
            plugin: label.clone(),
            message,
        };
        fits_one_instance(&footprint).map_err(link_error)?;
        let capabilities = CapabilitySet::granted(&package.manifest.permissions);
        let linker = self.linker(Metering::Epoch, capabilities)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| link_error(format!("{e:#}")))?;
        handler::GuestIndices::new(&pre).map_err(|e| link_error(format!("{e:#}")))?;
        Ok(footprint)
    }

    /// Whether this host's compiled cache holds `wasm` compiled for its standard engine (a
    /// file check: nothing is read or compiled).
    pub fn is_compiled(&self, wasm: &[u8]) -> bool {
        self.cache
            .entry_path(self.sandboxes.engine.engine(Metering::Epoch), wasm)
            .is_file()
    }

    /// Takes in a marketplace state statement (see [`crate::statements`]): verified against
    /// the keys the newest statement seen names (before any, the trust policy's marketplace
    /// keys; any key under the development policy) and refused if older than the newest seen.
    /// When it is newer, the keys it names are trusted for countersignatures from then on,
    /// every install running a version it revokes is stopped at once, and those versions no
    /// longer load.
    ///
    /// # Errors
    ///
    /// [`StatementRefused`].
    pub fn observe_statement(
        &self,
        signed: &SignedStatement,
    ) -> Result<Observed, StatementRefused> {
        let observed = self
            .statements
            .observe(signed, self.trust.marketplace_keys())?;
        if let Observed::Newer { sequence } = observed {
            for tenant in self.tenants() {
                for install in self.installs(&tenant) {
                    if install.enabled
                        && signed.statement.revokes(&install.plugin, &install.version)
                    {
                        if let Ok(found) = self.find(&tenant, &install.plugin) {
                            found
                                .enabled
                                .store(false, std::sync::atomic::Ordering::SeqCst);
                        }
                        tracing::warn!(tenant, plugin = %install.plugin, version = %install.version, sequence, "stopped an install of a version the state statement revokes");
                    }
                }
            }
            tracing::info!(sequence, "state statement accepted");
        }
        Ok(observed)
    }

    /// How current the newest state statement seen is at `now` (Unix seconds).
    pub fn statement_freshness(&self, now: i64) -> Freshness {
        self.statements.freshness(now)
    }

    /// The newest state statement seen, if any.
    pub fn newest_statement(&self) -> Option<StateStatement> {
        self.statements.newest()
    }

    /// The sequence of the newest statement seen if it revokes `version` of `plugin`.
    pub fn revoked_by_statement(&self, plugin: &str, version: &str) -> Option<u64> {
        self.statements.revokes(plugin, version)
    }

    /// How many plugin versions are loaded now (each shared by all its installs).
    pub fn loaded_versions(&self) -> usize {
        self.loaded.len()
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
        if let Some(prepared) = lock(&plugin.prepared).get(&key).and_then(Weak::upgrade) {
            return Ok(prepared);
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
        if capabilities.kv && self.sandboxes.kv.is_none() {
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
        let mut forms = lock(&plugin.prepared);
        // A concurrent preparation of the same grant may have finished first: share it.
        if let Some(first) = forms.get(&key).and_then(Weak::upgrade) {
            return Ok(first);
        }
        forms.retain(|_, form| form.strong_count() > 0);
        forms.insert(key, Arc::downgrade(&prepared));
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
            .load_or_compile(self.sandboxes.engine.engine(metering), &plugin.wasm)?;
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
            capabilities::linker::<SandboxState>(self.sandboxes.engine.engine(metering), set)
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

/// Whether one instance of a component with `footprint` fits the pool's per-component limits;
/// the error names what is over and the limit.
fn fits_one_instance(footprint: &Footprint) -> Result<(), String> {
    let too_many = [
        (
            footprint.core_instances,
            MAX_CORE_INSTANCES_PER_COMPONENT,
            "core instances",
        ),
        (footprint.memories, MAX_MEMORIES_PER_COMPONENT, "memories"),
        (footprint.tables, MAX_TABLES_PER_COMPONENT, "tables"),
    ]
    .into_iter()
    .find(|(has, max, _)| has > max);
    match too_many {
        Some((has, max, what)) => Err(format!(
            "the component has {has} {what}; a host runs at most {max}"
        )),
        None => Ok(()),
    }
}
