//! Memory per idle install, and how long a restart takes to make every install ready.
//!
//! `cargo bench -p plinth-marketplace --bench installs_memory` starts a marketplace with its
//! host on SQLite, then sets up `PLINTH_TENANTS` tenants (10,000 by default) through its API,
//! each with `hello` and `counter` installed and an API key, eight tenants at a time. It
//! prints the process's resident set before and after, the growth per install, and the time a
//! new host and state over the same database take to restore every install (as `plinth
//! serve` starting again), with the compiled cache warm.

mod support;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use support::{rss_mib, start};

/// Tenants set up at once.
const AT_ONCE: usize = 8;

fn main() -> Result<()> {
    let tenants: usize = match std::env::var("PLINTH_TENANTS") {
        Ok(text) => text.parse().context("PLINTH_TENANTS is not a number")?,
        Err(_) => 10_000,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(tenants))
}

async fn run(tenants: usize) -> Result<()> {
    let database = support::database().await?;
    let cache = tempfile::tempdir()?;
    let bench = Arc::new(start(&database, cache.path()).await?);
    bench.publish_examples().await?;
    // One tenant first, so that both versions are loaded and the pools warm before measuring.
    bench
        .tenant("warmup", &["examples.hello", "examples.counter"])
        .await?;
    let before = rss_mib()?;

    let started = Instant::now();
    let mut set_up = tokio::task::JoinSet::new();
    for i in 0..tenants {
        if set_up.len() == AT_ONCE {
            set_up.join_next().await.context("a set-up task")???;
        }
        let bench = Arc::clone(&bench);
        set_up.spawn(async move {
            bench
                .tenant(&format!("t{i:05}"), &["examples.hello", "examples.counter"])
                .await
        });
    }
    while let Some(tenant) = set_up.join_next().await {
        tenant??;
    }
    let took = started.elapsed();
    let after = rss_mib()?;
    let installs = tenants * 2;
    println!("| tenants | installs | set-up | RSS before MiB | RSS after MiB | KiB per install |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {tenants} | {installs} | {took:.1?} | {before:.1} | {after:.1} | {:.1} |",
        (after - before) * 1024.0 / installs as f64
    );

    let (restored, took) = bench.restart(&database, cache.path()).await?;
    println!();
    println!("start to ready, restoring {restored} installs (compiled cache warm): {took:.2?}");
    Ok(())
}
