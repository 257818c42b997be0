//! Asynchronous events (issue 24) over loopback HTTP against real `plinth serve` processes
//! (release build), with the load generator in this process:
//!
//! - **accept rate**: 16 clients send `"delivery": "async"` events as fast as they are answered
//!   for [`ACCEPT_FOR`]; the 202s per second (the hosts deliver meanwhile);
//! - **delivery latency**: once the queue is drained, [`PACED`] events one every 10 ms (below
//!   saturation); each event's `finished_at − created_at` as the server recorded them (ms);
//! - on SQLite (one process), PostgreSQL with one process, and PostgreSQL with two
//!   `--role host` processes (and a `--role marketplace`), accepting on both hosts;
//! - **row-level security's cost** (PostgreSQL, one process): synchronous events per second
//!   (16 clients) and catalog search latency, with the policies on, then off (disabled on every
//!   table by the server's superuser), then on and off again, in this run.
//!
//! `cargo bench --bench async_events` prints the tables.

#[path = "../tests/common"]
mod common {
    pub mod api;
    pub mod server;
    pub mod stats;
}

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::QUEUE_PROBE;
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, Executor};

use common::api::{Api, versioned_package};
use common::server::{Cluster, PlinthServer, bootstrap};
use common::stats::percentile;

const ACCEPT_FOR: Duration = Duration::from_secs(5);
const PACED: usize = 300;
const CLIENTS: usize = 16;
const SYNC_FOR: Duration = Duration::from_secs(4);
const PROBE: &str = "fixtures.queue-probe";

fn main() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<()> {
    println!("| storage | hosts | accepted (202/s) | delivery p50 ms | delivery p99 ms |");
    println!("|---|---|---|---|---|");
    let sqlite = Deployment::start(None, 1).await?;
    sqlite.measure_queue("SQLite").await?;
    drop(sqlite);
    let database = TestDatabase::postgres("bench_async").await?;
    let one = Deployment::start(Some(&database), 1).await?;
    one.measure_queue("PostgreSQL").await?;
    let rls = one.measure_rls(&database).await?;
    drop(one);
    let database = TestDatabase::postgres("bench_async_two").await?;
    let two = Deployment::start(Some(&database), 2).await?;
    two.measure_queue("PostgreSQL").await?;
    drop(two);
    println!();
    println!("| row-level security | sync events/s (16 clients) | search p50 ms | search p99 ms |");
    println!("|---|---|---|---|");
    for (label, events, search) in rls {
        println!(
            "| {label} | {events:.0} | {:.2} | {:.2} |",
            percentile(&search, 0.5),
            percentile(&search, 0.99)
        );
    }
    Ok(())
}

/// Processes on one database, the probe installed for tenant `acme`.
struct Deployment {
    _work: tempfile::TempDir,
    _servers: Vec<PlinthServer>,
    hosts: Vec<Api>,
    key: String,
}

impl Deployment {
    /// One `plinth serve` (`hosts` 1), or a marketplace and `hosts` host processes.
    async fn start(database: Option<&TestDatabase>, hosts: usize) -> Result<Deployment> {
        let work = tempfile::tempdir()?;
        let url = database.map(TestDatabase::url);
        let mut servers = Vec::new();
        let first = match &url {
            None => {
                let dir = work.path().join("all");
                let log = work.path().join("all.log");
                servers.push(PlinthServer::start_logging_to(&dir, None, "warn", &log)?);
                dir
            }
            Some(url) => {
                let cluster = Cluster::new(work.path(), url)?;
                let first = if hosts == 1 { "all" } else { "marketplace" };
                servers.push(cluster.start_quiet(first, first, &[])?);
                if hosts > 1 {
                    for n in 0..hosts {
                        servers.push(cluster.start_quiet(&format!("host-{n}"), "host", &[])?);
                    }
                }
                cluster.data_dir(first)
            }
        };
        let api = Api::at(&servers[0].base);
        let (ok, operator, stderr) = bootstrap(&first, url.as_deref())?;
        ensure!(ok, "bootstrap failed: {stderr}");
        let (developer, signing) = api.developer("dev@fixtures.example", "fixtures").await?;
        let package = versioned_package(work.path(), &QUEUE_PROBE, &signing, "0.1.0", "")?;
        api.publish_and_approve(&package, &developer, &operator)
            .await?;
        api.ok(
            Method::PUT,
            "/v1/plans/free",
            Some(&operator),
            Some(json!({
                "api_requests_per_minute": 100_000_000,
                "invocations_per_month": 1_000_000_000,
                "max_queued_events": 1_000_000,
            })),
        )
        .await?;
        let (_, admin) = api.account("admin@acme.example").await?;
        api.tenant(&admin, "acme", None).await?;
        api.install(&admin, "acme", PROBE, None, json!({})).await?;
        let key = api.api_key(&admin, "acme").await?;
        let hosts: Vec<Api> = servers[usize::from(hosts > 1)..]
            .iter()
            .map(|server| Api::at(&server.base))
            .collect();
        for host in &hosts {
            // Each host runs the install before the measurement starts.
            let started = Instant::now();
            while sync_event(host, &key).await?.is_empty() {
                ensure!(started.elapsed() < Duration::from_secs(30), "no install");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(Deployment {
            _work: work,
            _servers: servers,
            hosts,
            key,
        })
    }

    /// Prints the accept rate and the delivery latency.
    async fn measure_queue(&self, storage: &str) -> Result<()> {
        let accepted = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for n in 0..CLIENTS {
            let host = Api::at(&self.hosts[n % self.hosts.len()].base);
            let (key, accepted, stop) =
                (self.key.clone(), Arc::clone(&accepted), Arc::clone(&stop));
            clients.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    send_async(&host, &key).await?;
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            }));
        }
        tokio::time::sleep(ACCEPT_FOR).await;
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.await??;
        }
        let rate = accepted.load(Ordering::Relaxed) as f64 / ACCEPT_FOR.as_secs_f64();
        self.drain().await?;

        let mut ids = Vec::with_capacity(PACED);
        let mut pace = tokio::time::interval(Duration::from_millis(10));
        for n in 0..PACED {
            pace.tick().await;
            ids.push(send_async(&self.hosts[n % self.hosts.len()], &self.key).await?);
        }
        self.drain().await?;
        let mut latencies = Vec::with_capacity(PACED);
        for id in &ids {
            let event = self.hosts[0]
                .ok(
                    Method::GET,
                    &format!("/v1/tenants/acme/events/{id}"),
                    Some(&self.key),
                    None,
                )
                .await?;
            ensure!(event["status"] == "delivered", "{event}");
            let took = event["finished_at"].as_i64().context("finished_at")?
                - event["created_at"].as_i64().context("created_at")?;
            latencies.push(took as f64);
        }
        println!(
            "| {storage} | {} | {rate:.0} | {:.0} | {:.0} |",
            self.hosts.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
        Ok(())
    }

    /// Waits until nothing is queued.
    async fn drain(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            let queued = self.hosts[0]
                .ok(
                    Method::GET,
                    "/v1/tenants/acme/events?status=queued&limit=1",
                    Some(&self.key),
                    None,
                )
                .await?;
            if queued["items"].as_array().is_some_and(Vec::is_empty) {
                return Ok(());
            }
            ensure!(
                started.elapsed() < Duration::from_secs(600),
                "the queue never drained"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Synchronous events per second and search latencies with the policies on and off,
    /// alternating.
    async fn measure_rls(&self, database: &TestDatabase) -> Result<Vec<(String, f64, Vec<f64>)>> {
        let TestDatabase::Postgres(schema) = database else {
            anyhow::bail!("row-level security is PostgreSQL's");
        };
        let mut admin =
            sqlx::PgConnection::connect(&plinth_test_support::postgres::server_url()).await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(c.relname AS TEXT) FROM pg_class c JOIN pg_namespace n \
             ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relrowsecurity",
        )
        .bind(schema.name())
        .fetch_all(&mut admin)
        .await?;
        ensure!(!tables.is_empty(), "no table has row-level security");
        let mut rows = Vec::new();
        for round in 0..4 {
            let on = round % 2 == 0;
            for table in &tables {
                let verb = if on { "ENABLE" } else { "DISABLE" };
                admin
                    .execute(AssertSqlSafe(format!(
                        "ALTER TABLE \"{}\".\"{table}\" {verb} ROW LEVEL SECURITY",
                        schema.name()
                    )))
                    .await?;
            }
            let events = self.sync_rate().await?;
            let search = self.search_latencies().await?;
            rows.push((if on { "on" } else { "off" }.to_owned(), events, search));
        }
        Ok(rows)
    }

    async fn sync_rate(&self) -> Result<f64> {
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let host = Api::at(&self.hosts[0].base);
            let (key, done, stop) = (self.key.clone(), Arc::clone(&done), Arc::clone(&stop));
            clients.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    ensure!(!sync_event(&host, &key).await?.is_empty(), "no result");
                    done.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            }));
        }
        tokio::time::sleep(SYNC_FOR).await;
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.await??;
        }
        Ok(done.load(Ordering::Relaxed) as f64 / SYNC_FOR.as_secs_f64())
    }

    async fn search_latencies(&self) -> Result<Vec<f64>> {
        let mut samples = Vec::with_capacity(300);
        for _ in 0..300 {
            let started = Instant::now();
            self.hosts[0]
                .ok(Method::GET, "/v1/plugins?q=queue", None, None)
                .await?;
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(samples)
    }
}

/// Queues a `job`; returns its id.
async fn send_async(host: &Api, key: &str) -> Result<String> {
    let (status, body) = host
        .send(
            Method::POST,
            "/v1/tenants/acme/events",
            Some(key),
            Some(json!({"topic": "job", "payload": {}, "delivery": "async"})),
        )
        .await?;
    ensure!(status == 202, "{status} {body}");
    Ok(body["id"].as_str().context("id")?.to_owned())
}

/// A synchronous `job.step`; returns its results.
async fn sync_event(host: &Api, key: &str) -> Result<Vec<Value>> {
    let (status, body) = host
        .send(
            Method::POST,
            "/v1/tenants/acme/events",
            Some(key),
            Some(json!({"topic": "job.step", "payload": {}})),
        )
        .await?;
    ensure!(status == 200, "{status} {body}");
    Ok(body["results"].as_array().cloned().unwrap_or_default())
}
