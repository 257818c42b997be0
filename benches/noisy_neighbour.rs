//! Tenant B's `hello` and `/healthz` latency, alone and while tenant A saturates the host, over
//! loopback HTTP against a real `plinth serve` (SQLite, release build) with the load generator
//! in this process.
//!
//! `cargo bench --bench noisy_neighbour` prints one row per scenario: B's p50/p99 (one
//! connection, events sent one after another), `/healthz`'s p50/p99, and what A got. A is on
//! the free plan with its API rate raised, so its calls reach the host and the host's bounds
//! (its share of concurrent calls and memory, the event budget) are what stop them; each of its
//! clients sends again as soon as it has an answer (200 ms after a refusal). A's answers are
//! counted per result (its error code, `ok` for none) and per refusal (status and code). The
//! target: B's p99 within 3× its p99 alone.

#[path = "../tests/common"]
mod common {
    pub mod api;
    pub mod neighbours;
    pub mod server;
    pub mod stats;
}

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use reqwest::Method;
use serde_json::{Value, json};

use common::api::Api;
use common::neighbours::{self, Attack};
use common::server::{PlinthServer, bootstrap};
use common::stats::percentile;

/// How long each scenario measures.
const MEASURE_FOR: Duration = Duration::from_secs(10);
/// Pause between two of B's events (and two health checks).
const PAUSE: Duration = Duration::from_millis(10);

fn main() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<()> {
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("data");
    let log = work.path().join("server.log");
    let server = PlinthServer::start_logging_to(&data_dir, None, "warn", &log)?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    let (ok, operator, stderr) = bootstrap(&data_dir, None)?;
    ensure!(ok, "bootstrap failed: {stderr}");
    neighbours::publish_fixtures(&api, work.path(), &operator).await?;
    let (a, a_admin) = neighbours::tenant(&api, "noisy", &["fixtures.noisy"]).await?;
    let (b, _) = neighbours::tenant(&api, "quiet", &["examples.hello"]).await?;

    let loads = [
        None,
        Some(Attack::new(
            "CPU burners (900 ms)",
            "burn",
            json!({"ms": 900}),
            16,
        )),
        Some(Attack::new(
            "spinners (to the deadline)",
            "spin",
            json!(null),
            16,
        )),
        Some(Attack::new(
            "sleepers (900 ms)",
            "sleep",
            json!({"ms": 900}),
            300,
        )),
        Some(Attack::new(
            "memory holders (56 MiB)",
            "hold",
            json!({"mb": 56, "ms": 500}),
            40,
        )),
        Some(Attack::new(
            "storm (re-emitting)",
            "storm",
            json!({"pad": 1024}),
            16,
        )),
    ];
    println!(
        "| A runs | B hello p50 ms | B hello p99 ms | p99 vs alone | /healthz p50 ms | /healthz p99 ms | A's answers |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut alone_p99 = None;
    for load in &loads {
        api.ok(
            Method::POST,
            "/v1/tenants/noisy/installs/fixtures.noisy/breaker/reset",
            Some(&a_admin),
            None,
        )
        .await?;
        let stop = Arc::new(AtomicBool::new(false));
        let clients = load
            .as_ref()
            .map(|attack| neighbours::start(&api, "noisy", &a, attack, &stop))
            .unwrap_or_default();
        // Let A's load build up first.
        if load.is_some() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let health = {
            let client = api.client.clone();
            let url = format!("{}/healthz", api.base);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move { probe_health(&client, &url, &stop).await })
        };
        let hello = greet(&api, &b).await?;
        stop.store(true, Ordering::SeqCst);
        let health = health.await??;
        let answers = neighbours::finish(clients).await?;
        let p99 = percentile(&hello, 0.99);
        let alone = *alone_p99.get_or_insert(p99);
        println!(
            "| {} | {:.2} | {:.2} | {:.2}× | {:.2} | {:.2} | {} |",
            load.as_ref().map_or("nothing (B alone)", |load| load.name),
            percentile(&hello, 0.5),
            p99,
            p99 / alone,
            percentile(&health, 0.5),
            percentile(&health, 0.99),
            answers
                .codes
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");
    Ok(())
}

/// B's latencies (ms) over [`MEASURE_FOR`], one event after another; every answer must be
/// the greeting.
async fn greet(api: &Api, key: &str) -> Result<Vec<f64>> {
    let url = format!("{}/v1/tenants/quiet/events", api.base);
    let mut latencies = Vec::new();
    let until = Instant::now() + MEASURE_FOR;
    while Instant::now() < until {
        let started = Instant::now();
        let answer: Value = api
            .client
            .post(&url)
            .bearer_auth(key)
            .json(&json!({"topic": "greet", "payload": "Ada"}))
            .send()
            .await?
            .json()
            .await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(
            answer["results"][0]["output"] == "Hello, Ada!",
            "B got {answer}"
        );
        tokio::time::sleep(PAUSE).await;
    }
    Ok(latencies)
}

/// `/healthz` latencies (ms) until `stop`.
async fn probe_health(client: &reqwest::Client, url: &str, stop: &AtomicBool) -> Result<Vec<f64>> {
    let mut latencies = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let status = client.get(url).send().await?.status();
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(status == 200, "/healthz answered {status}");
        tokio::time::sleep(PAUSE).await;
    }
    Ok(latencies)
}
