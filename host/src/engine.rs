//! The process-wide wasmtime engines: component model, cranelift, pooling allocator and epoch
//! interruption, with one ticker thread.
//!
//! CPU time is bounded by epoch deadlines by default. Fuel costs about 2.8× on tight guest
//! loops, so it is only on for calls that ask for it (a plan that needs deterministic counts or
//! a usage-priced plugin); those run on a second engine compiled with fuel metering. Both live
//! behind [`PlinthEngine`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::Error;

/// How the engines are sized. The pool's slots are the hard ceiling of what runs at once; the
/// host's admission ([`crate::capacity`]) keeps every call within them.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Component instances that may be alive at once (pool slots): the most calls at once.
    pub max_instances: u32,
    /// Core module instances that may be alive at once, over all component instances. Sized
    /// apart from `max_instances`: a component built by a language runtime instantiates
    /// dozens of core modules (componentize-py: 14 to 38).
    pub max_core_instances: u32,
    /// Linear memories that may be alive at once.
    pub max_memories: u32,
    /// Tables that may be alive at once.
    pub max_tables: u32,
    /// The largest linear memory any instance may have, in bytes (per-call limits are lower).
    pub max_memory_bytes: u64,
    /// How often the epoch advances: the granularity of wall-clock deadlines, and how often a
    /// busy call yields its thread to other calls.
    pub epoch_tick: Duration,
    /// Largest wasm stack, in bytes; deeper recursion traps.
    pub max_wasm_stack: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_instances: 256,
            max_core_instances: 4096,
            max_memories: 512,
            max_tables: 4096,
            max_memory_bytes: 1 << 30,
            epoch_tick: Duration::from_millis(1),
            max_wasm_stack: 1 << 20,
        }
    }
}

/// Whether a call counts fuel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metering {
    /// CPU bounded by the wall-clock deadline only (the default, fastest).
    Epoch,
    /// Fuel counted and bounded as well, for deterministic usage counts.
    Fuel,
}

/// The standard and the fuel-metered engine, and the ticker that drives their epochs.
#[derive(Debug)]
pub struct PlinthEngine {
    standard: Engine,
    metered: Engine,
    epoch_tick: Duration,
    ticker: Option<Ticker>,
}

impl PlinthEngine {
    /// Creates both engines and starts the epoch ticker.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] if wasmtime refuses the configuration (e.g. a pool too large for the
    /// address space).
    pub fn new(config: &EngineConfig) -> Result<Self, Error> {
        let standard = Engine::new(&wasmtime_config(config, Metering::Epoch))
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        let metered = Engine::new(&wasmtime_config(config, Metering::Fuel))
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        let ticker = Ticker::start(vec![standard.clone(), metered.clone()], config.epoch_tick)?;
        Ok(PlinthEngine {
            standard,
            metered,
            epoch_tick: config.epoch_tick,
            ticker: Some(ticker),
        })
    }

    /// The engine for calls with this metering.
    pub fn engine(&self, metering: Metering) -> &Engine {
        match metering {
            Metering::Epoch => &self.standard,
            Metering::Fuel => &self.metered,
        }
    }

    /// Epoch ticks covering `timeout` (rounded up, at least one).
    pub fn deadline_ticks(&self, timeout: Duration) -> u64 {
        let tick = self.epoch_tick.as_nanos().max(1);
        let ticks = timeout.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

impl Drop for PlinthEngine {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

/// The most core module instances one component may instantiate.
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 256;
/// The most linear memories one component may have.
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 16;
/// The most tables one component may have.
pub const MAX_TABLES_PER_COMPONENT: u32 = 256;

/// The wasmtime configuration of the engine for `metering`. Public so that benchmarks can
/// measure bare wasmtime with exactly the host's settings.
pub fn wasmtime_config(config: &EngineConfig, metering: Metering) -> Config {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(metering == Metering::Fuel)
        .max_wasm_stack(config.max_wasm_stack);
    // The standard engine serves nearly every call: instances come from a pool, which makes
    // instantiation a few microseconds. Fuel-metered calls are rare, so their engine allocates
    // on demand and reserves no address space up front.
    if metering == Metering::Epoch {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_stacks(config.max_instances)
            .total_core_instances(config.max_core_instances)
            .total_memories(config.max_memories)
            .total_tables(config.max_tables)
            .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX))
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
            // Keep the first pages of a slot's memory, tables and fiber stack mapped when the
            // slot is reused: a fresh instance then skips most page faults (measured: ~41 µs
            // → ~34 µs per instantiate-and-call of `hello`; 1 MiB was slower than 64 KiB).
            .linear_memory_keep_resident(64 << 10)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(64 << 10)
            // Where Linux has `PAGEMAP_SCAN` (6.7+), reset only the pages a call dirtied, by
            // copying, and skip `madvise` when they fit in what is kept resident: no page
            // table changes, so no TLB shoot-downs across the cores (measured on `hello`:
            // 26 → 14 µs bare, 65 → 37–47 µs through the host; no more memory is kept).
            .pagemap_scan(Enabled::Auto);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    wasm
}

/// One thread advancing the epoch of every engine at a fixed rate.
#[derive(Debug)]
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Ticker {
    fn start(engines: Vec<Engine>, tick: Duration) -> Result<Self, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("plinth-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    for engine in &engines {
                        engine.increment_epoch();
                    }
                }
            })
            .map_err(|e| Error::Engine(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Ticker { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // The thread wakes within one tick; a panic in it has nothing left to clean up.
        let _ = self.thread.join();
    }
}
