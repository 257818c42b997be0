//! Host memory stays bounded while plugins exhaust theirs (issue 4, "Bad input and security").
//!
//! Runs 10,000 invocations of `memory-hog` under a 16 MiB memory limit — every call ends in
//! `MemoryLimit` — and prints the process's resident set (`VmRSS`) at the start and after 100,
//! 1,000 and 10,000 calls. Exits non-zero if the RSS after 10,000 calls exceeds the RSS after
//! 1,000 by more than [`MAX_GROWTH_KIB`], or if any call ends otherwise.
//!
//! A benchmark binary rather than a test, so it may time and measure the process.

mod common;

use std::time::Instant;

use anyhow::{Context as _, bail};
use plinth_host::{InvokeError, Limits, Metering};
use plinth_test_artifacts::MEMORY_HOG;

use common::{Bed, call};

/// Calls in all, and after how many the RSS is printed.
const CALLS: u64 = 10_000;
const CHECKPOINTS: [u64; 3] = [100, 1_000, CALLS];
/// The memory limit of each call.
const MEMORY_MB: u64 = 16;
/// The largest growth of RSS allowed between 1,000 and 10,000 calls.
const MAX_GROWTH_KIB: u64 = 64 << 10;

/// The process's resident set size in KiB, from `/proc/self/status`.
fn rss_kib() -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .context("no VmRSS in /proc/self/status")?;
    let kib = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("VmRSS is not a number of kB: {line:?}"))?;
    Ok(kib)
}

/// KiB as MiB, for printing.
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let bed = Bed::new().await?;
    let hog = bed.prepare(&MEMORY_HOG, Metering::Epoch)?;
    let limits = Limits::default().with_memory_mb(MEMORY_MB);
    let limit_bytes = MEMORY_MB << 20;

    let start = rss_kib()?;
    println!("memory-hog RSS: {MEMORY_MB} MiB limit per call, {CALLS} calls");
    println!("  start           {:>8.1} MiB", mib(start));
    let mut after = Vec::with_capacity(CHECKPOINTS.len());
    let started = Instant::now();
    for done in 1..=CALLS {
        let invocation = bed
            .host
            .invoke(&hog, call("run", "null", limits.clone()))
            .await;
        match invocation.result {
            Err(InvokeError::MemoryLimit { limit_bytes: limit }) if limit == limit_bytes => {}
            other => bail!("call {done} of memory-hog did not end in MemoryLimit: {other:?}"),
        }
        if CHECKPOINTS.contains(&done) {
            let rss = rss_kib()?;
            println!("  after {done:>6} calls {:>8.1} MiB", mib(rss));
            after.push(rss);
        }
    }
    let elapsed = started.elapsed();
    println!(
        "  {CALLS} calls in {:.1} s ({:.2} ms per call)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / CALLS as f64
    );

    let (Some(&at_1k), Some(&at_10k)) = (after.get(1), after.get(2)) else {
        bail!("missing RSS checkpoints");
    };
    let growth = at_10k.saturating_sub(at_1k);
    println!(
        "  growth 1,000 -> 10,000 calls: {:.1} MiB (allowed {:.1} MiB)",
        mib(growth),
        mib(MAX_GROWTH_KIB)
    );
    if growth > MAX_GROWTH_KIB {
        bail!(
            "host RSS grew by {:.1} MiB between 1,000 and 10,000 memory-hog calls (allowed {:.1} MiB)",
            mib(growth),
            mib(MAX_GROWTH_KIB)
        );
    }
    Ok(())
}
