//! The event path against its floor, in one run with one load generator.
//!
//! `cargo bench -p plinth-marketplace --bench event_path` serves two things on loopback in this
//! process: **the floor** ([`support::floor`]: axum and bare wasmtime instantiating `hello` per
//! request with the host's engine configuration; no auth, no storage) and **Plinth** (the
//! marketplace with its host on SQLite, a tenant on a plan with its API rate raised, `hello`
//! installed, the tenant's API key). The same generator (its own runtime; threads from
//! `PLINTH_LOAD_THREADS`, 2 by default: raise it to check that the floor's number does not move,
//! i.e. the generator is not the bottleneck) drives both at 1, 16 and 128 connections,
//! alternating, and prints events/s and p99 for each with their ratios; then `counter` (a kv
//! get and set per event) against `hello` through Plinth.
//!
//! Pin the process to cores to compare core counts: `taskset -c 0 cargo bench …` against
//! `taskset -c 0-1 cargo bench …`. To profile one side at one load, `PLINTH_EVENT_PATH_ONLY`
//! names it, e.g. `plinth:1` (Plinth at 1 connection) or `floor:16`; only that run is made.

mod support;

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use support::load::{self, Stats, Target};
use support::{delivered, start};

/// Requests and time of the unmeasured warm-up before each side's first run.
const WARM_UP: (usize, Duration) = (2_000, Duration::from_secs(3));

fn main() -> Result<()> {
    let threads = std::env::var("PLINTH_LOAD_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let generator = load::generator(threads)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    eprintln!(
        "load generator: {threads} threads; server runtime: {} threads",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    runtime.block_on(run(generator.handle()))
}

/// Whether the floor answered with an output.
fn floor_answered(body: &Value) -> bool {
    !body["output"].is_null()
}

/// The one run `PLINTH_EVENT_PATH_ONLY` asks for (side, connections), if any.
fn only() -> Option<(String, usize)> {
    let only = std::env::var("PLINTH_EVENT_PATH_ONLY").ok()?;
    let (side, connections) = only.split_once(':')?;
    Some((side.to_owned(), connections.parse().ok()?))
}

async fn run(generator: &tokio::runtime::Handle) -> Result<()> {
    let floor = support::floor::serve().await?;
    let database = support::database().await?;
    let cache = tempfile::tempdir()?;
    let bench = start(&database, cache.path()).await?;
    bench.publish_examples().await?;
    let tenant = bench
        .tenant("solo", &["examples.hello", "examples.counter"])
        .await?;
    let floor_targets = vec![Target {
        url: format!("{floor}/events"),
        bearer: None,
        body: json!({"topic": "greet", "payload": "Ada"}),
    }];
    let hello = bench.event_targets(&[(tenant.clone(), "greet")]);
    let counter = bench.event_targets(&[(tenant, "count")]);
    let client = &bench.client;
    let floor_run = |connections| {
        load::run(
            generator,
            client,
            floor_targets.clone(),
            connections,
            floor_answered,
        )
    };
    let plinth_run = |targets: &Vec<Target>, connections| {
        load::run(generator, client, targets.clone(), connections, delivered)
    };

    load::run_limited(
        generator,
        client,
        floor_targets.clone(),
        16,
        floor_answered,
        WARM_UP,
    )
    .await?;
    load::run_limited(generator, client, hello.clone(), 16, delivered, WARM_UP).await?;
    if let Some((side, connections)) = only() {
        let stats = match side.as_str() {
            "floor" => floor_run(connections).await?,
            "counter" => plinth_run(&counter, connections).await?,
            _ => plinth_run(&hello, connections).await?,
        };
        println!("| scenario | connections | events/s | p50 ms | p95 ms | p99 ms |");
        println!("|---|---|---|---|---|---|");
        stats.print(&side, connections);
        return Ok(());
    }

    println!(
        "| connections | floor events/s | floor p99 ms | Plinth events/s | Plinth p99 ms | events/s ratio | p99 ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut hello_at_16 = None;
    for connections in [1, 16, 128] {
        let floor_stats = floor_run(connections).await?;
        let plinth_stats = plinth_run(&hello, connections).await?;
        row(connections, &floor_stats, &plinth_stats);
        if connections == 16 {
            hello_at_16 = Some(plinth_stats);
        }
    }
    println!();
    println!("| Plinth, 16 connections | events/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    let counter_stats = plinth_run(&counter, 16).await?;
    for (label, stats) in [
        ("hello", hello_at_16.as_ref()),
        ("counter (kv get + set)", Some(&counter_stats)),
    ] {
        if let Some(stats) = stats {
            println!(
                "| {label} | {:.0} | {:.2} | {:.2} |",
                stats.rate(),
                stats.quantile_ms(0.5),
                stats.quantile_ms(0.99)
            );
        }
    }
    Ok(())
}

/// One row of the ratio table.
fn row(connections: usize, floor: &Stats, plinth: &Stats) {
    println!(
        "| {connections} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} |",
        floor.rate(),
        floor.quantile_ms(0.99),
        plinth.rate(),
        plinth.quantile_ms(0.99),
        plinth.rate() / floor.rate(),
        plinth.quantile_ms(0.99) / floor.quantile_ms(0.99)
    );
}
