//! Invocation benchmarks, all measured in one run on the same machine (issue 4, "Performance"):
//!
//! - `hello/bare_wasmtime` (a): wasmtime alone — `InstancePre`, pooling allocator, a fresh
//!   `Store` with an empty `WasiCtx`, one call of `hello`'s `on-event`. The baseline;
//!   `hello/bare_instantiate_only` is the same without the call.
//! - `hello/plinth_invoke` (b): [`Host::invoke`] of `hello` through the full sandbox path
//!   (epoch deadline, memory limiter, captured stdio, capability state, async timeout).
//!   Targets: (b) ≤ 1.5 × (a) and (b) < 35 µs median.
//! - `hello/plinth_invoke_fuel` (e): the same call fuel-metered, against (b).
//! - `hello/runtime_hop_only` and `hello/bare_over_hop`: the host runs every call on a runtime
//!   of its own (so that plugin load never holds the API's threads); these measure that hop
//!   alone, and (a) making it, so the host's own work is (b) against `bare_over_hop`.
//! - `cache/*` (c): loading from the compiled cache against compiling from wasm.
//! - `kv/counter_invoke` (d): `counter` (one kv get and one kv set through the guest) on SQLite.
//! - `throughput/*` (f): invocations per second of `hello` with N concurrent tokio tasks on a
//!   two-worker runtime (criterion reports it as elements/s; one element is one invocation).
//! - `dispatch/*`: to be added with `Host::dispatch` (see [`dispatch`]).
//!
//! Criterion writes each benchmark's estimates (mean, median, …) to
//! `$CARGO_TARGET_DIR/criterion/<group>/<bench>/new/estimates.json`.

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use plinth_host::cache::{CacheOutcome, CompiledCache};
use plinth_host::{
    EngineConfig, EventBudget, Host, Limits, Metering, PlinthEngine, PreparedPlugin,
};
use plinth_test_artifacts::{COUNTER, HELLO};
use plinth_test_support::bare::BareHello;
use tokio::runtime::Runtime;
use wasmtime::Engine;
use wasmtime::component::Component;

use common::{Bed, call};

/// Concurrent tasks in the throughput benchmarks.
const CONCURRENCY: [usize; 2] = [2, 8];

// ------------------------------------------------------------------------------------------
// (a) Bare wasmtime: `plinth_test_support::bare`.
// ------------------------------------------------------------------------------------------

/// `hello` on an engine with exactly the configuration of plinth's standard engine, sized by
/// the same [`EngineConfig::default`] the plinth host in these benchmarks uses.
fn bare_hello() -> anyhow::Result<BareHello> {
    let config = plinth_host::engine::wasmtime_config(&EngineConfig::default(), Metering::Epoch);
    let wasm = std::fs::read(HELLO.wasm).context("reading hello")?;
    BareHello::new(Engine::new(&config)?, &wasm)
}

// ------------------------------------------------------------------------------------------
// Plinth.
// ------------------------------------------------------------------------------------------

/// One `greet "Ada"` through the host; panics unless it greets.
async fn invoke_hello(host: &Host, hello: &Arc<PreparedPlugin>, limits: Limits) {
    let invocation = host.invoke(hello, call("greet", "\"Ada\"", limits)).await;
    match invocation.result {
        Ok(Some(output)) => {
            black_box(output);
        }
        other => panic!("hello did not greet: {other:?}"),
    }
}

/// Panics with the whole error chain: benchmarks have no caller to report to.
fn or_panic<T>(result: anyhow::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e:#}"))
}

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

fn two_workers() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

// ------------------------------------------------------------------------------------------
// (a), (b), (e): one call of hello.
// ------------------------------------------------------------------------------------------

fn hello(c: &mut Criterion) {
    let rt = current_thread();
    let bare = or_panic(bare_hello());
    let bed = or_panic(rt.block_on(Bed::new()));
    let epoch = or_panic(bed.prepare(&HELLO, Metering::Epoch));
    let fuel = or_panic(bed.prepare(&HELLO, Metering::Fuel));

    // Both paths must really greet before they are timed.
    let greeting = or_panic(rt.block_on(bare.call("greet", b"\"Ada\"")));
    assert_eq!(greeting.as_deref(), Some(&b"\"Hello, Ada!\""[..]));
    rt.block_on(invoke_hello(&bed.host, &epoch, Limits::default()));
    rt.block_on(invoke_hello(&bed.host, &fuel, Limits::default()));

    let mut group = c.benchmark_group("hello");
    group.bench_function("bare_wasmtime", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(or_panic(bare.call("greet", b"\"Ada\"").await)) });
    });
    // Where the bare time goes: a fresh store and instantiation, without the call.
    group.bench_function("bare_instantiate_only", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(or_panic(bare.instantiate().await)) });
    });
    // What the host adds for isolation alone: moving a call to a runtime of its own (as many
    // threads as the host's plugin runtime) and back, with nothing to run.
    let plugin_threads = std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .saturating_mul(plinth_host::runtime::WORKER_THREADS_PER_CORE);
    let other = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plugin_threads)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    group.bench_function("runtime_hop_only", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                other
                    .spawn(async { black_box(1) })
                    .await
                    .unwrap_or_else(|e| panic!("hop: {e}")),
            )
        });
    });
    // Bare wasmtime making the same hop: what is left between it and `plinth_invoke` is the
    // host's own work.
    let moved = Arc::new(or_panic(bare_hello()));
    group.bench_function("bare_over_hop", |b| {
        b.to_async(&rt).iter(|| {
            let moved = Arc::clone(&moved);
            let call = other.spawn(async move { or_panic(moved.call("greet", b"\"Ada\"").await) });
            async move { black_box(call.await.unwrap_or_else(|e| panic!("hop: {e}"))) }
        });
    });
    group.bench_function("plinth_invoke", |b| {
        b.to_async(&rt)
            .iter(|| invoke_hello(&bed.host, &epoch, Limits::default()));
    });
    group.bench_function("plinth_invoke_fuel", |b| {
        b.to_async(&rt)
            .iter(|| invoke_hello(&bed.host, &fuel, Limits::default()));
    });
    group.finish();
}

// ------------------------------------------------------------------------------------------
// (c) Compiled cache: load vs compile.
// ------------------------------------------------------------------------------------------

fn cache(c: &mut Criterion) {
    let engines =
        PlinthEngine::new(&EngineConfig::default()).unwrap_or_else(|e| panic!("engines: {e}"));
    let engine = engines.engine(Metering::Epoch);
    let wasm = std::fs::read(HELLO.wasm).unwrap_or_else(|e| panic!("reading hello: {e}"));
    let warm_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let warm = CompiledCache::new(warm_dir.path()).unwrap_or_else(|e| panic!("cache: {e}"));
    let (_, outcome) = warm
        .load_or_compile(engine, &wasm)
        .unwrap_or_else(|e| panic!("first compile: {e}"));
    assert_eq!(outcome, CacheOutcome::Compiled);

    let mut group = c.benchmark_group("cache");
    group.bench_function("load_hit", |b| {
        b.iter(|| {
            let (component, outcome) = warm
                .load_or_compile(engine, &wasm)
                .unwrap_or_else(|e| panic!("cache hit: {e}"));
            assert_eq!(outcome, CacheOutcome::Hit);
            component
        });
    });

    // Compiling takes tens of milliseconds: few, flat samples.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.bench_function("compile_miss", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
                let cache = CompiledCache::new(dir.path()).unwrap_or_else(|e| panic!("{e}"));
                (dir, cache)
            },
            |(dir, cache)| {
                let (component, outcome) = cache
                    .load_or_compile(engine, &wasm)
                    .unwrap_or_else(|e| panic!("compile: {e}"));
                assert_eq!(outcome, CacheOutcome::Compiled);
                // Both are dropped outside the timed routine.
                (dir, component)
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("bare_component_new", |b| {
        b.iter(|| Component::new(engine, &wasm).unwrap_or_else(|e| panic!("Component::new: {e}")));
    });
    group.finish();
}

// ------------------------------------------------------------------------------------------
// (d) kv through the guest.
// ------------------------------------------------------------------------------------------

fn kv(c: &mut Criterion) {
    let rt = current_thread();
    let bed = or_panic(rt.block_on(Bed::new()));
    let counter = or_panic(bed.prepare(&COUNTER, Metering::Epoch));
    let count = || async {
        let invocation = bed
            .host
            .invoke(&counter, call("count", "null", Limits::default()))
            .await;
        match invocation.result {
            Ok(Some(output)) => black_box(output),
            other => panic!("counter did not count: {other:?}"),
        }
    };
    rt.block_on(count());

    let mut group = c.benchmark_group("kv");
    group.bench_function("counter_invoke_sqlite", |b| b.to_async(&rt).iter(count));
    group.finish();
}

// ------------------------------------------------------------------------------------------
// (f) Peak throughput on two cores.
// ------------------------------------------------------------------------------------------

/// Splits `iters` calls over `tasks` tasks and returns how long they took together.
fn spread<F, Fut>(rt: &Runtime, iters: u64, tasks: usize, one: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let tasks_u64 = u64::try_from(tasks).unwrap_or(1).max(1);
    rt.block_on(async move {
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks_u64)
            .map(|task| {
                // The first `iters % tasks` tasks take one extra call.
                let calls = iters / tasks_u64 + u64::from(task < iters % tasks_u64);
                let one = one.clone();
                tokio::spawn(async move {
                    for _ in 0..calls {
                        one().await;
                    }
                })
            })
            .collect();
        for handle in handles {
            handle
                .await
                .unwrap_or_else(|e| panic!("a throughput task failed: {e}"));
        }
        started.elapsed()
    })
}

fn throughput(c: &mut Criterion) {
    let rt = two_workers();
    let bare = Arc::new(or_panic(bare_hello()));
    let bed = Arc::new(or_panic(rt.block_on(Bed::new())));
    let hello = or_panic(bed.prepare(&HELLO, Metering::Epoch));

    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(1));
    for tasks in CONCURRENCY {
        let bare = Arc::clone(&bare);
        group.bench_function(format!("bare_wasmtime_{tasks}_tasks"), |b| {
            b.iter_custom(|iters| {
                let bare = Arc::clone(&bare);
                spread(&rt, iters, tasks, move || {
                    let bare = Arc::clone(&bare);
                    async move {
                        black_box(or_panic(bare.call("greet", b"\"Ada\"").await));
                    }
                })
            });
        });
        group.bench_function(format!("plinth_invoke_{tasks}_tasks"), |b| {
            b.iter_custom(|iters| {
                let bed = Arc::clone(&bed);
                let hello = Arc::clone(&hello);
                spread(&rt, iters, tasks, move || {
                    let bed = Arc::clone(&bed);
                    let hello = Arc::clone(&hello);
                    async move { invoke_hello(&bed.host, &hello, Limits::default()).await }
                })
            });
        });
    }
    group.finish();
}

// ------------------------------------------------------------------------------------------
// Dispatch to 10 subscribed plugins.
// ------------------------------------------------------------------------------------------

/// One event dispatched to 10 installs that all subscribe to it (each a copy of `hello` under
/// its own id), against 10 sequential `invoke`s of `hello` and one `invoke`.
fn dispatch(c: &mut Criterion) {
    let runtime = two_workers();
    let (bed, prepared) = runtime.block_on(async {
        let bed = common::Bed::new()
            .await
            .unwrap_or_else(|e| panic!("host: {e:#}"));
        let wasm = std::fs::read(HELLO.wasm).unwrap_or_else(|e| panic!("reading hello: {e}"));
        for index in 0..10 {
            let manifest = format!(
                "[plugin]\nid = \"bench.hello-{index}\"\nversion = \"0.1.0\"\nname = \"Hello {index}\"\n\
                 description = \"A copy of hello.\"\nlicense = \"Apache-2.0\"\napi = \"^0.1\"\n\n\
                 [permissions]\nevents = {{ subscribe = [\"greet\"] }}\n"
            );
            let package = plinth_package::Package::new(manifest, wasm.clone(), None, None)
                .unwrap_or_else(|e| panic!("package: {e}"));
            let loaded = bed
                .host
                .load(&package)
                .unwrap_or_else(|e| panic!("load: {e}"));
            bed.host
                .install(
                    "acme",
                    &loaded,
                    plinth_host::InstallSpec {
                        grants: package.manifest.permissions.clone(),
                        config: Arc::new(std::collections::BTreeMap::new()),
                        limits: Limits::default(),
                        metering: Metering::Epoch,
                        runs: Default::default(),
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("install: {e}"));
        }
        let prepared = bed
            .prepare(&HELLO, Metering::Epoch)
            .unwrap_or_else(|e| panic!("prepare: {e:#}"));
        (bed, prepared)
    });
    let host = Arc::clone(&bed.host);
    let event = || plinth_host::Event {
        id: "evt-bench".to_string(),
        topic: "greet".to_string(),
        payload: b"\"Ada\"".to_vec(),
        depth: 0,
    };
    let check = runtime.block_on(host.dispatch("acme", event(), &Arc::new(EventBudget::new(1000))));
    assert_eq!(check.len(), 10, "all ten installs receive the event");
    assert!(
        check
            .iter()
            .all(|delivery| delivery.invocation.result.is_ok())
    );

    let mut group = c.benchmark_group("dispatch");
    group.bench_function("dispatch_to_10", |b| {
        b.to_async(&runtime).iter(|| async {
            host.dispatch("acme", event(), &Arc::new(EventBudget::new(1000)))
                .await
        })
    });
    group.bench_function("sequential_invoke_x10", |b| {
        b.to_async(&runtime).iter(|| async {
            for _ in 0..10 {
                host.invoke(
                    &prepared,
                    common::call("greet", "\"Ada\"", Limits::default()),
                )
                .await;
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = hello, cache, kv, throughput, dispatch
}
criterion_main!(benches);
