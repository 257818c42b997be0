//! Shared rates across processes (issue 24, part 3): three `plinth serve` processes on one
//! PostgreSQL database (a `--role marketplace` and two `--role host`) hold a tenant to its
//! plan's API rate between them, not three times over. The tenant's API key hammers all
//! three at once (tenant routes on the marketplace, events on the hosts) within one minute
//! window; the requests admitted must not pass the limit (each process's own bucket would let
//! three times as many through), and must not fall far below it. Likewise the plan's outbound
//! rate: a tenant's webhook plugin, run by events on both hosts at once, reaches a loopback
//! receiver no more often in a minute than the plan allows.

mod common {
    pub mod api;
    pub mod receiver;
    pub mod server;
}

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use plinth_package::{Package, SecretKey};
use plinth_test_artifacts::WEBHOOK_NOTIFY;
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::json;

use common::api::Api;
use common::receiver::{Receiver, now_ms};
use common::server::{Cluster, PlinthServer, bootstrap};

/// The plan's API requests per minute.
const LIMIT: u32 = 300;

/// Requests sent to each process: each process alone would admit all of them.
const PER_PROCESS: u32 = 250;

/// Requests in flight at once per process.
const CLIENTS: u32 = 6;

/// The rate windows are wall-clock minutes.
const WINDOW_MS: u128 = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_hold_a_tenant_to_one_api_rate() -> Result<()> {
    let deployment = Deployment::start("shared_rates_api").await?;
    let (marketplace, host_a, host_b) = (
        &deployment.marketplace,
        &deployment.hosts[0],
        &deployment.hosts[1],
    );
    let api = client(&marketplace.base);
    let operator = &deployment.operator;

    api.ok(
        Method::PUT,
        "/v1/plans/free",
        Some(operator),
        Some(json!({"api_requests_per_minute": LIMIT})),
    )
    .await?;
    let (_, admin) = api.account("admin@acme.example").await?;
    api.ok(
        Method::POST,
        "/v1/tenants",
        Some(&admin),
        Some(json!({"slug": "acme", "name": "Acme"})),
    )
    .await?;
    let key = api.api_key(&admin, "acme").await?;

    // Start in a window with time to spare: the hammering takes a few seconds.
    let started = window_with_time_to_spare().await;
    let admitted = Arc::new(AtomicU32::new(0));
    let refused = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    let targets = [
        (
            marketplace.base.clone(),
            Method::GET,
            "/v1/tenants/acme/usage",
        ),
        (host_a.base.clone(), Method::POST, "/v1/tenants/acme/events"),
        (host_b.base.clone(), Method::POST, "/v1/tenants/acme/events"),
    ];
    for (base, method, path) in targets {
        for _ in 0..CLIENTS {
            let (api, method, key, base) =
                (client(&base), method.clone(), key.clone(), base.clone());
            let (admitted, refused) = (Arc::clone(&admitted), Arc::clone(&refused));
            tasks.push(tokio::spawn(async move {
                for _ in 0..PER_PROCESS / CLIENTS {
                    let body = (method == Method::POST)
                        .then(|| json!({"topic": "order.created", "payload": {}}));
                    let (status, reply) = api.send(method.clone(), path, Some(&key), body).await?;
                    match status {
                        200..=299 => admitted.fetch_add(1, Ordering::Relaxed),
                        429 if reply["error"]["code"] == "rate_limited" => {
                            refused.fetch_add(1, Ordering::Relaxed)
                        }
                        _ => bail!("{method} {base}{path} answered {status}: {reply}"),
                    };
                }
                anyhow::Ok(())
            }));
        }
    }
    for task in tasks {
        task.await.context("client task")??;
    }
    let ended = now_ms();
    let (admitted, refused) = (
        admitted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    println!(
        "three processes, limit {LIMIT}/min: {admitted} admitted, {refused} refused of {} \
         in {} ms",
        admitted + refused,
        ended - started
    );
    ensure!(
        started / WINDOW_MS == ended / WINDOW_MS,
        "the requests crossed a window boundary ({started}..{ended} ms); they took too long"
    );
    // The bound: never more than the limit per window across the deployment. Not far below
    // either: at most a slice (a twentieth) per process may sit unspent.
    ensure!(
        admitted <= LIMIT,
        "{admitted} admitted over a limit of {LIMIT}"
    );
    ensure!(
        admitted >= LIMIT * 8 / 10,
        "only {admitted} admitted of a limit of {LIMIT}"
    );
    ensure!(admitted + refused == (PER_PROCESS / CLIENTS) * CLIENTS * 3);

    deployment.stop()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_hold_a_tenant_to_one_outbound_rate() -> Result<()> {
    const OUTBOUND: usize = 40;
    const EVENTS_PER_HOST: usize = 60;
    let deployment = Deployment::start("shared_rates_outbound").await?;
    let api = client(&deployment.marketplace.base);
    let operator = &deployment.operator;
    api.ok(
        Method::PUT,
        "/v1/plans/free",
        Some(operator),
        Some(json!({"outbound_requests_per_minute": OUTBOUND, "api_requests_per_minute": 6000})),
    )
    .await?;
    let (developer, signing) = api.developer("dev@labs.example", "labs").await?;
    let package = webhook_package(deployment.work.path(), &signing)?;
    api.publish_and_approve(&package, &developer, operator)
        .await?;
    let receiver = Receiver::start().await?;
    let url = receiver.url.clone();
    let (_, admin) = api.account("admin@acme.example").await?;
    api.tenant(&admin, "acme", None).await?;
    api.install(
        &admin,
        "acme",
        "labs.hook",
        None,
        json!({"config": {"webhook-url": url}}),
    )
    .await?;
    let key = api.api_key(&admin, "acme").await?;
    let hosts: Vec<Api> = deployment.hosts.iter().map(|h| client(&h.base)).collect();
    // Both hosts run the install (and have compiled it) before the minute measured.
    for host in &hosts {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (status, reply) = order(host, &key).await?;
            if status == 200 && reply["results"][0]["output"]["status"] == 200 {
                break;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "the install never ran on {}: {status} {reply}",
                host.base
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let started = window_with_time_to_spare().await;
    let mut tasks = Vec::new();
    for host in &hosts {
        for _ in 0..3 {
            let (host, key) = (client(&host.base), key.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..EVENTS_PER_HOST / 3 {
                    let (status, reply) = order(&host, &key).await?;
                    ensure!(
                        status == 200
                            || (status == 429 && reply["error"]["code"] == "rate_limited"),
                        "an event answered {status}: {reply}"
                    );
                }
                anyhow::Ok(())
            }));
        }
    }
    for task in tasks {
        task.await.context("client task")??;
    }
    let ended = now_ms();
    ensure!(
        started / WINDOW_MS == ended / WINDOW_MS,
        "the events crossed a window boundary ({started}..{ended} ms); they took too long"
    );
    let window = started / WINDOW_MS;
    let received = receiver
        .hits()
        .iter()
        .filter(|hit| hit.at_ms / WINDOW_MS == window)
        .count();
    println!(
        "two hosts, outbound limit {OUTBOUND}/min: {received} requests reached the receiver \
         of {} events in {} ms",
        2 * EVENTS_PER_HOST,
        ended - started
    );
    // Each host's bucket alone would let OUTBOUND through: 2 × OUTBOUND together.
    ensure!(
        received <= OUTBOUND,
        "{received} outbound requests over {OUTBOUND}"
    );
    ensure!(
        received >= OUTBOUND * 8 / 10,
        "only {received} outbound requests of {OUTBOUND}"
    );
    deployment.stop()
}

/// A marketplace and two hosts on one fresh PostgreSQL database, and the operator's token.
struct Deployment {
    marketplace: PlinthServer,
    hosts: [PlinthServer; 2],
    operator: String,
    work: tempfile::TempDir,
    _database: TestDatabase,
}

impl Deployment {
    async fn start(name: &str) -> Result<Deployment> {
        let database = TestDatabase::postgres(name).await?;
        let url = database.url();
        let work = tempfile::tempdir()?;
        let cluster = Cluster::new(work.path(), &url)?.with_env("PLINTH_ALLOW_PRIVATE_HTTP", "1");
        let start = |name: &str, role: &str| cluster.start(name, role, &[]);
        let marketplace = start("marketplace", "marketplace")?;
        let hosts = [start("host-a", "host")?, start("host-b", "host")?];
        let (ok, operator, stderr) = bootstrap(&work.path().join("marketplace"), Some(&url))?;
        ensure!(ok, "bootstrap failed: {stderr}");
        Ok(Deployment {
            marketplace,
            hosts,
            operator,
            work,
            _database: database,
        })
    }

    /// Stops every process with SIGTERM (each gives back what it leased and did not spend).
    fn stop(self) -> Result<()> {
        let [host_a, host_b] = self.hosts;
        for server in [self.marketplace, host_a, host_b] {
            let status = server.stop()?;
            ensure!(status.success(), "plinth serve exited with {status}");
        }
        Ok(())
    }
}

/// Waits, if need be, for a window with at least 20 s left; returns the time then (ms).
async fn window_with_time_to_spare() -> u128 {
    let into_window = now_ms() % WINDOW_MS;
    if into_window > 40_000 {
        let wait = u64::try_from(WINDOW_MS - into_window).unwrap_or(0) + 50;
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    now_ms()
}

/// The webhook-notify example as `labs.hook`, allowed to post to 127.0.0.1.
fn webhook_package(dir: &Path, key: &SecretKey) -> Result<PathBuf> {
    let manifest = std::fs::read_to_string(Path::new(WEBHOOK_NOTIFY.dir).join("plinth.toml"))?
        .replace("examples.webhook-notify", "labs.hook")
        .replace("\"hooks.example.com\"", "\"127.0.0.1\"");
    let mut package = Package::new(manifest, std::fs::read(WEBHOOK_NOTIFY.wasm)?, None, None)?;
    package.sign(key);
    let path = dir.join(package.file_name());
    package.write_to(&path)?;
    Ok(path)
}

/// An `order.created` event to `host`.
async fn order(host: &Api, key: &str) -> Result<(u16, serde_json::Value)> {
    host.send(
        Method::POST,
        "/v1/tenants/acme/events",
        Some(key),
        Some(json!({"topic": "order.created", "payload": {"id": 1}})),
    )
    .await
}

fn client(base: &str) -> Api {
    Api {
        base: base.to_owned(),
        client: reqwest::Client::new(),
    }
}
