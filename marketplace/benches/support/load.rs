//! The load generator: HTTP requests from N concurrent connections, bounded in count and time,
//! on a runtime of its own so that its threads can be varied apart from the server's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use serde_json::Value;

/// Most requests one measured run sends.
pub const MAX_REQUESTS: usize = 20_000;
/// Longest one measured run lasts.
pub const MAX_TIME: Duration = Duration::from_secs(15);

/// One request to send: `POST url` with `body`, as `bearer` if given.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub bearer: Option<String>,
    pub body: Value,
}

/// Whether an answer is a success for the run (anything else fails it).
pub type Check = fn(&Value) -> bool;

/// Sends `targets` round-robin from `connections` concurrent senders spawned on `generator`
/// until [`MAX_REQUESTS`] or [`MAX_TIME`]; every answer must be 200 and pass `check`.
pub async fn run(
    generator: &tokio::runtime::Handle,
    client: &reqwest::Client,
    targets: Vec<Target>,
    connections: usize,
    check: Check,
) -> Result<Stats> {
    run_limited(
        generator,
        client,
        targets,
        connections,
        check,
        (MAX_REQUESTS, MAX_TIME),
    )
    .await
}

/// [`run`] up to `(requests, time)`.
pub async fn run_limited(
    generator: &tokio::runtime::Handle,
    client: &reqwest::Client,
    targets: Vec<Target>,
    connections: usize,
    check: Check,
    (max_requests, max_time): (usize, Duration),
) -> Result<Stats> {
    let targets = Arc::new(targets);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (targets, next, client) = (Arc::clone(&targets), Arc::clone(&next), client.clone());
        senders.push(generator.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= max_requests || started.elapsed() >= max_time {
                    return anyhow::Ok(latencies);
                }
                let target = &targets[n % targets.len()];
                let began = Instant::now();
                let mut request = client.post(&target.url).json(&target.body);
                if let Some(bearer) = &target.bearer {
                    request = request.bearer_auth(bearer);
                }
                let response = request.send().await?;
                let status = response.status();
                let body: Value = response.json().await?;
                ensure!(
                    status == 200 && check(&body),
                    "{} answered {status}: {body}",
                    target.url
                );
                latencies.push(began.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for sender in senders {
        latencies.extend(sender.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Stats { latencies, elapsed })
}

/// What one run measured.
#[derive(Debug)]
pub struct Stats {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Stats {
    /// Counts `time` as part of the run (work it left that finished after it).
    pub fn add_time(&mut self, time: Duration) {
        self.elapsed += time;
    }

    /// This run and `other` as one: their requests, over their times added up.
    pub fn merge(&mut self, other: Stats) {
        self.latencies.extend(other.latencies);
        self.latencies.sort();
        self.elapsed += other.elapsed;
    }

    /// Requests answered.
    pub fn count(&self) -> usize {
        self.latencies.len()
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q` (0 to 1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let index = ((self.latencies.len().saturating_sub(1)) as f64 * q).round() as usize;
        self.latencies
            .get(index)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    }

    /// A row of the events table.
    pub fn print(&self, scenario: &str, connections: usize) {
        println!(
            "| {scenario} | {connections} | {:.0} | {:.2} | {:.2} | {:.2} |",
            self.rate(),
            self.quantile_ms(0.50),
            self.quantile_ms(0.95),
            self.quantile_ms(0.99)
        );
    }
}

/// A runtime for the load generator with `threads` workers.
pub fn generator(threads: usize) -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("load")
        .enable_all()
        .build()?)
}
