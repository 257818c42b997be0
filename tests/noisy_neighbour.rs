//! A noisy neighbour cannot hurt another tenant, end to end through `plinth serve`, on SQLite
//! and PostgreSQL. Tenant A (free plan, its API rate raised so that its calls reach the host)
//! runs, phase after phase and at full tilt: a plugin that spins forever, a CPU burner,
//! hundreds of sleepers, memory holders, a self-re-emitting storm and a log bomb. Meanwhile
//! tenant B (free plan too) sends `hello`:
//!
//! - B gets every answer right, and `/healthz` answers every time, well within a bound a
//!   starved server would pass (seconds; the latencies themselves are measured by the
//!   `noisy_neighbour` benchmark);
//! - everything A gets back is a result or a typed refusal (429 / 503 with `Retry-After`);
//! - A's memory holders never take the server past its share;
//! - A's storm ends at the plan's event budget and the usage shows exactly the calls that ran;
//! - the log bomb does not flood or forge the server's log.

mod common {
    pub mod api;
    pub mod server;
}

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::{HELLO, LOG_BOMB, NOISY};
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use common::api::{Api, signed_package};
use common::server::{PlinthServer, bootstrap};

/// `/healthz` must answer within this even while A saturates the host (before the fair data
/// plane it took 2.5 s under 8 CPU-bound calls).
const HEALTH_BOUND: Duration = Duration::from_secs(1);

/// How soon A's clients send again after a refusal.
const RETRY_AFTER_REFUSAL: Duration = Duration::from_millis(200);

/// One phase of A's attack: a topic and payload, and how many requests A keeps in flight.
struct Attack {
    name: &'static str,
    topic: &'static str,
    payload: Value,
    in_flight: usize,
}

/// What A got back during a phase.
#[derive(Debug, Default)]
struct Outcomes {
    ok: usize,
    refused: usize,
    codes: std::collections::BTreeMap<String, usize>,
    /// The start of one answer, for the report.
    sample: String,
}

/// The two backends' runs take turns: each saturates the machine on its own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn noisy_neighbour(database: Option<TestDatabase>) -> Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("data");
    let log = work.path().join("server.log");
    let url = database.as_ref().map(TestDatabase::url);
    let server = PlinthServer::start_logging_to(&data_dir, url.as_deref(), "info", &log)?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    let (ok, operator, stderr) = bootstrap(&data_dir, url.as_deref())?;
    ensure!(ok, "bootstrap failed: {stderr}");
    for (namespace, plugins) in [
        ("examples", vec![&HELLO]),
        ("fixtures", vec![&NOISY, &LOG_BOMB]),
    ] {
        let (developer, key) = api
            .developer(&format!("dev@{namespace}.example"), namespace)
            .await?;
        for plugin in plugins {
            let path = signed_package(work.path(), plugin, &key)?;
            api.publish_and_approve(&path, &developer, &operator)
                .await?;
        }
    }
    // A's own requests must reach the host for the host's bounds to be what stops them.
    api.ok(
        Method::PUT,
        "/v1/plans/free",
        Some(&operator),
        Some(json!({"api_requests_per_minute": 10_000_000})),
    )
    .await?;
    let (a, a_admin) = tenant(&api, "noisy", &["fixtures.noisy", "fixtures.log-bomb"]).await?;
    let (b, _) = tenant(&api, "quiet", &["examples.hello"]).await?;

    let attacks = [
        Attack {
            name: "spin forever",
            topic: "spin",
            payload: json!(null),
            in_flight: 8,
        },
        Attack {
            name: "CPU burner",
            topic: "burn",
            payload: json!({"ms": 900}),
            in_flight: 8,
        },
        Attack {
            name: "sleepers",
            topic: "sleep",
            payload: json!({"ms": 900}),
            in_flight: 300,
        },
        Attack {
            name: "memory holders",
            topic: "hold",
            payload: json!({"mb": 56, "ms": 500}),
            in_flight: 40,
        },
        Attack {
            name: "storm",
            topic: "storm",
            payload: json!({"pad": 4096}),
            in_flight: 8,
        },
        Attack {
            name: "log bomb",
            topic: "run",
            payload: json!(null),
            in_flight: 4,
        },
    ];
    let baseline_rss = rss_mib(server.pid())?;
    for attack in &attacks {
        // A hostile admin closes its breakers before each attack, so the attack reaches the host.
        for plugin in ["fixtures.noisy", "fixtures.log-bomb"] {
            api.ok(
                Method::POST,
                &format!("/v1/tenants/noisy/installs/{plugin}/breaker/reset"),
                Some(&a_admin),
                None,
            )
            .await?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let load: Vec<_> = (0..attack.in_flight)
            .map(|_| {
                let client = api.client.clone();
                let url = format!("{}/v1/tenants/noisy/events", api.base);
                let key = a.clone();
                let body = json!({"topic": attack.topic, "payload": attack.payload});
                let stop = Arc::clone(&stop);
                tokio::spawn(async move { hammer(&client, &url, &key, &body, &stop).await })
            })
            .collect();
        let mut peak_rss = 0.0_f64;
        // B's calls and the health check, while A's load runs.
        for i in 0..10 {
            let started = Instant::now();
            let health = api
                .client
                .get(format!("{}/healthz", api.base))
                .send()
                .await?;
            let took = started.elapsed();
            ensure!(
                health.status() == 200,
                "{}: /healthz answered {}",
                attack.name,
                health.status()
            );
            ensure!(
                took < HEALTH_BOUND,
                "{}: /healthz took {took:?}",
                attack.name
            );
            let answer = api
                .ok(
                    Method::POST,
                    "/v1/tenants/quiet/events",
                    Some(&b),
                    Some(json!({"topic": "greet", "payload": format!("B{i}")})),
                )
                .await?;
            ensure!(
                answer["results"][0]["output"] == format!("Hello, B{i}!"),
                "{}: B got {answer}",
                attack.name
            );
            peak_rss = peak_rss.max(rss_mib(server.pid())?);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.store(true, Ordering::SeqCst);
        let mut outcomes = Outcomes::default();
        for task in load {
            let seen = task.await??;
            outcomes.ok += seen.ok;
            outcomes.refused += seen.refused;
            if outcomes.sample.is_empty() {
                outcomes.sample = seen.sample;
            }
            for (code, n) in seen.codes {
                *outcomes.codes.entry(code).or_default() += n;
            }
        }
        eprintln!(
            "{}: A got {outcomes:?}; server RSS peak {peak_rss:.0} MiB",
            attack.name
        );
        ensure!(
            outcomes.ok + outcomes.refused > 0,
            "{}: A's load sent nothing",
            attack.name
        );
        if attack.topic == "hold" {
            // The free plan's share is 256 MiB of guest memory, whatever A asks for.
            ensure!(
                peak_rss - baseline_rss < 512.0,
                "memory holders took the server from {baseline_rss:.0} to {peak_rss:.0} MiB"
            );
        }
    }

    // The storm ends at the free plan's budget, and usage shows exactly the calls that ran.
    let (c, _) = tenant(&api, "stormy", &["fixtures.noisy"]).await?;
    let mut ran = 0;
    for _ in 0..3 {
        let answer = api
            .ok(
                Method::POST,
                "/v1/tenants/stormy/events",
                Some(&c),
                Some(json!({"topic": "storm", "payload": {"pad": 64}})),
            )
            .await?;
        ensure!(answer["invocations"] == 32, "{answer}");
        let last = answer["results"]
            .as_array()
            .and_then(|r| r.last())
            .context("results")?;
        ensure!(last["error"]["code"] == "event_budget_exhausted", "{last}");
        ran += 32;
    }
    let mut shown = Value::Null;
    for _ in 0..100 {
        shown = api
            .ok(
                Method::GET,
                "/v1/tenants/stormy/usage",
                Some(&operator),
                None,
            )
            .await?["usage"]["invocations"]
            .clone();
        if shown == ran {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(shown == ran, "usage shows {shown}, {ran} calls ran");

    // The log bomb: lines and fields are capped, and no plugin text starts a log line.
    let logged = std::fs::read_to_string(&log)?;
    ensure!(
        logged.len() < 64 << 20,
        "the server log grew to {} MiB",
        logged.len() >> 20
    );
    ensure!(
        !logged.lines().any(|line| line.starts_with("FORGED-LINE")),
        "a plugin forged a server log line"
    );
    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");
    Ok(())
}

/// Creates tenant `slug` with a new owner, installs `plugins`; returns an API key and the
/// owner's token.
async fn tenant(api: &Api, slug: &str, plugins: &[&str]) -> Result<(String, String)> {
    let (_, owner) = api.account(&format!("owner@{slug}.example")).await?;
    api.tenant(&owner, slug, None).await?;
    for plugin in plugins {
        api.install(&owner, slug, plugin, None, json!({})).await?;
    }
    Ok((api.api_key(&owner, slug).await?, owner))
}

/// Sends `body` to `url` as fast as answers come back (soon again after a refusal), until
/// `stop`; every answer must be a result or a typed refusal with `Retry-After`.
async fn hammer(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
    stop: &AtomicBool,
) -> Result<Outcomes> {
    let mut outcomes = Outcomes::default();
    while !stop.load(Ordering::SeqCst) {
        let response = client.post(url).bearer_auth(key).json(body).send().await?;
        let status = response.status();
        let retry_after = response.headers().contains_key("retry-after");
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        match status.as_u16() {
            200 => {
                outcomes.ok += 1;
                if outcomes.sample.is_empty() {
                    outcomes.sample = answer.to_string().chars().take(300).collect();
                }
                for result in answer["results"].as_array().into_iter().flatten() {
                    if let Some(code) = result["error"]["code"].as_str() {
                        *outcomes.codes.entry(code.to_owned()).or_default() += 1;
                    }
                }
            }
            429 | 503 => {
                let code = answer["error"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                ensure!(
                    retry_after
                        && ["rate_limited", "quota_exceeded", "capacity"].contains(&code.as_str()),
                    "A got an untyped refusal: {status} {answer}"
                );
                outcomes.refused += 1;
                *outcomes.codes.entry(code).or_default() += 1;
                // Back after a moment rather than the `Retry-After` asked for; a client that
                // floods requests is the API rate's to stop, and this test raised A's.
                tokio::time::sleep(RETRY_AFTER_REFUSAL).await;
            }
            _ => anyhow::bail!("A got {status}: {answer}"),
        }
    }
    Ok(outcomes)
}

/// The resident set of process `pid`, in MiB.
fn rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")?;
    Ok(kib / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_neighbour_does_not_hurt_another_tenant_on_sqlite() -> Result<()> {
    noisy_neighbour(None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_neighbour_does_not_hurt_another_tenant_on_postgres() -> Result<()> {
    noisy_neighbour(Some(TestDatabase::postgres("noisy").await?)).await
}
