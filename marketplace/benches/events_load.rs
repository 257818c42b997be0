//! Load over HTTP on loopback: events sent to a running marketplace with its host, by a Rust
//! load generator bounded in count and time.
//!
//! `cargo bench -p plinth-marketplace --bench events_load` prints events/s and p50/p95/p99
//! latency for one tenant with `hello` at 1, 16 and 128 concurrent connections; the same with
//! 1,000 tenants each with `hello` and `counter`, events spread across tenants; the host's
//! in-process dispatch rate for comparison; and the process RSS with 1,000 tenants installed.
//! The load generator runs on a runtime of its own (two threads) in the same process.

mod support;

use std::time::Instant;

use anyhow::Result;

use support::{delivered, load, rss_mib, start};

/// Tenants in the many-tenant run.
const TENANTS: usize = 1000;

fn main() -> Result<()> {
    let generator = load::generator(2)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(generator.handle()))
}

async fn run(generator: &tokio::runtime::Handle) -> Result<()> {
    let database = support::database().await?;
    let cache = tempfile::tempdir()?;
    let bench = start(&database, cache.path()).await?;
    bench.publish_examples().await?;

    println!("| scenario | connections | events/s | p50 ms | p95 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    let one = bench.tenant("solo", &["examples.hello"]).await?;
    for connections in [1, 16, 128] {
        let targets = bench.event_targets(&[(one.clone(), "greet")]);
        let stats = load::run(generator, &bench.client, targets, connections, delivered).await?;
        stats.print("1 tenant, hello", connections);
    }
    let in_process = bench.in_process_rate("solo", 16).await?;
    println!(
        "| in-process `Host::dispatch` (same hello install) | 16 tasks | {in_process:.0} | | | |"
    );

    let started = Instant::now();
    let mut targets = Vec::with_capacity(TENANTS * 2);
    for i in 0..TENANTS {
        let key = bench
            .tenant(&format!("t{i:04}"), &["examples.hello", "examples.counter"])
            .await?;
        targets.push((key.clone(), "greet"));
        targets.push((key, "count"));
    }
    eprintln!(
        "set up {TENANTS} tenants with 2 installs each in {:.1?}",
        started.elapsed()
    );
    let targets = bench.event_targets(&targets);
    for connections in [16, 128] {
        let stats = load::run(
            generator,
            &bench.client,
            targets.clone(),
            connections,
            delivered,
        )
        .await?;
        stats.print("1,000 tenants, hello + counter", connections);
    }
    println!();
    println!(
        "RSS of the process (server, host and load generator) with {TENANTS} tenants: {:.1} MiB",
        rss_mib()?
    );
    let empty = tempfile::tempdir()?;
    for (label, compiled) in [
        ("an empty compiled cache", empty.path()),
        ("the compiled cache", cache.path()),
    ] {
        let (restored, took) = bench.restart(&database, compiled).await?;
        println!("start to ready (restore {restored} installs) with {label}: {took:.2?}");
    }
    Ok(())
}
