//! What a plugin costs in each language (issue 22): the `hello` example in Rust (the floor,
//! measured in the same run), JavaScript (componentize-js, StarlingMonkey) and Python
//! (componentize-py), each built by `plinth plugin build` as an author builds it.
//!
//! Per language, on a host with `plinth serve`'s default engine (release build):
//! - **wasm**: the component's size;
//! - **first compile**: compiling it with an empty cache (what a host would do inside the
//!   first install if the marketplace had not compiled it already);
//! - **memory**: linear memory at the end of the first call;
//! - **per call**: 300 `greet` events one after another, each in a fresh instance (median and
//!   p99), after 5 warm-up calls;
//! - **16 at once**: calls per second with 16 callers for [`CONCURRENT_FOR`];
//! - **fit at once**: how many instances of it the default pool holds (core instances,
//!   memories and tables per instance against the pool's totals);
//! - **first install**: a `plinth serve` publishes, approves and installs it; the install
//!   request's time right after the approval (the submission's compile check and the approval's
//!   background compile leave the compiled component in the cache).
//!
//! `cargo bench --bench languages` prints the table (Markdown).

#[path = "../tests/common"]
mod common {
    pub mod api;
    pub mod sdks;
    pub mod server;
    pub mod stats;
}

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use plinth_host::trust::TrustPolicy;
use plinth_host::{Call, EngineConfig, Event, Host, HostConfig, Limits, Metering};
use plinth_package::{Package, SecretKey};
use plinth_test_artifacts::HELLO;
use serde_json::json;

use common::api::Api;
use common::sdks::{example, signed_copy};
use common::server::{PlinthServer, bootstrap};
use common::stats::percentile;

const SEQUENTIAL: usize = 300;
const CONCURRENT: usize = 16;
const CONCURRENT_FOR: Duration = Duration::from_secs(3);

fn main() -> Result<()> {
    let rust = Package::new(
        std::fs::read_to_string(Path::new(HELLO.dir).join("plinth.toml"))?,
        std::fs::read(HELLO.wasm)?,
        None,
        None,
    )?;
    let js = Package::from_bytes(&std::fs::read(example("js/hello")?)?)?;
    let python = Package::from_bytes(&std::fs::read(example("python/hello")?)?)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "| language | wasm | first compile | memory at first call | per call p50 / p99 | \
         16 at once | fit at once | first install |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut floor = None;
    for (language, package) in [("Rust", rust), ("JavaScript", js), ("Python", python)] {
        let measured = runtime.block_on(measure(&package))?;
        let install = runtime.block_on(first_install(&package))?;
        let floor = *floor.get_or_insert(measured.p50_ms);
        println!(
            "| {language} | {:.1} MB | {:.1} s | {:.1} MiB | {:.2} / {:.2} ms ({:.1}× Rust) | \
             {:.0}/s | {} | {} ms |",
            package.wasm.len() as f64 / 1e6,
            measured.compile.as_secs_f64(),
            measured.memory_bytes as f64 / f64::from(1u32 << 20),
            measured.p50_ms,
            measured.p99_ms,
            measured.p50_ms / floor,
            measured.concurrent_per_s,
            measured.fit,
            install.as_millis(),
        );
    }
    Ok(())
}

/// One language's numbers on an in-process host.
struct Measured {
    compile: Duration,
    memory_bytes: u64,
    p50_ms: f64,
    p99_ms: f64,
    concurrent_per_s: f64,
    fit: u32,
}

async fn measure(package: &Package) -> Result<Measured> {
    let cache = tempfile::tempdir()?;
    let engine = EngineConfig::default();
    let mut config = HostConfig::new(cache.path(), TrustPolicy::development());
    config.engine = engine.clone();
    let host = Arc::new(Host::new(config)?);
    let started = Instant::now();
    let footprint = host.check_compiles(package)?;
    let compile = started.elapsed();
    let fit = [
        engine.max_instances,
        engine.max_core_instances / footprint.core_instances.max(1),
        engine.max_memories / footprint.memories.max(1),
        engine.max_tables / footprint.tables.max(1),
    ]
    .into_iter()
    .min()
    .unwrap_or(0);
    let loaded = host.load(package)?;
    let prepared = host.prepare(&loaded, &package.manifest.permissions, Metering::Epoch)?;
    let call = |i: usize| Call {
        tenant: "bench".to_owned(),
        event: Event {
            id: format!("bench-{i}"),
            topic: "greet".to_owned(),
            payload: b"\"Ada\"".to_vec(),
            depth: 0,
        },
        config: Arc::default(),
        limits: Limits::default(),
    };
    let first = host.invoke(&prepared, call(0)).await;
    let output = first.result.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        output.as_deref() == Some(b"\"Hello, Ada!\"".as_slice()),
        "hello answered {output:?}"
    );
    let memory_bytes = first.usage.memory_bytes;
    for i in 1..5 {
        host.invoke(&prepared, call(i)).await;
    }
    let mut times = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL {
        let started = Instant::now();
        let invocation = host.invoke(&prepared, call(i)).await;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        invocation.result.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let deadline = Instant::now() + CONCURRENT_FOR;
    let mut callers = Vec::new();
    for _ in 0..CONCURRENT {
        let (host, prepared) = (Arc::clone(&host), Arc::clone(&prepared));
        callers.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                if host.invoke(&prepared, call(0)).await.result.is_ok() {
                    done += 1;
                }
            }
            done
        }));
    }
    let mut done = 0;
    for caller in callers {
        done += caller.await?;
    }
    Ok(Measured {
        compile,
        memory_bytes,
        p50_ms: percentile(&times, 0.5),
        p99_ms: percentile(&times, 0.99),
        concurrent_per_s: done as f64 / CONCURRENT_FOR.as_secs_f64(),
        fit,
    })
}

/// Publishes `package` to a fresh `plinth serve`, approves it, and times the first install.
async fn first_install(package: &Package) -> Result<Duration> {
    let work = tempfile::tempdir()?;
    let data = work.path().join("data");
    let (ok, operator, stderr) = bootstrap(&data, None)?;
    ensure!(ok, "bootstrap failed: {stderr}");
    let server =
        PlinthServer::start_logging_to(&data, None, "warn", &work.path().join("server.log"))?;
    let api = Api::at(&server.base);
    let (developer, key): (String, SecretKey) = api
        .developer("dev@bench.example", package.manifest.plugin.id.publisher())
        .await?;
    let path = signed_copy(package, None, &key, work.path())?;
    api.publish_and_approve(&path, &developer, &operator)
        .await?;
    let (_, admin) = api.account("admin@acme.example").await?;
    api.tenant(&admin, "acme", None).await?;
    let plugin = package.manifest.plugin.id.to_string();
    let started = Instant::now();
    api.install(&admin, "acme", &plugin, None, json!({}))
        .await
        .context("the first install")?;
    let took = started.elapsed();
    server.stop()?;
    Ok(took)
}
