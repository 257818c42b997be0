//! Asynchronous events across real `plinth serve` processes (issue 24).
//!
//! - PostgreSQL, one `--role marketplace` and two `--role host` processes: 1,000 events across
//!   three tenants, accepted by both hosts; one host is killed (`kill -9`) midway. Every event
//!   is delivered, none is lost, and a plugin saw an event twice only where the event was
//!   attempted again (its lease ran out on the killed host). A repeated request with an
//!   `Idempotency-Key` returns the first event, whichever host answers.
//! - SQLite, one process: events that failed once and wait for their retry survive a
//!   `kill -9` and a restart, and are delivered after it.

mod common {
    pub mod api;
    pub mod server;
}

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use plinth_test_artifacts::QUEUE_PROBE;
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use common::api::{Api, versioned_package};
use common::server::{Cluster, PlinthServer, bootstrap};

const PROBE: &str = "fixtures.queue-probe";

/// The longest the queue may take to drain before the test fails.
const PATIENCE: Duration = Duration::from_secs(120);

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_events_survive_a_killed_host_on_postgres() -> Result<()> {
    let database = TestDatabase::postgres("async_events").await?;
    let url = database.url();
    let work = tempfile::tempdir()?;
    let cluster = Cluster::new(work.path(), &url)?;
    let start = |name: &str, role: &str| cluster.start(name, role, &["--event-lease-secs", "2"]);
    let marketplace = start("marketplace", "marketplace")?;
    let host_a = start("host-a", "host")?;
    let host_b = start("host-b", "host")?;
    let api = Api::at(&marketplace.base);
    let hosts = [Api::at(&host_a.base), Api::at(&host_b.base)];
    let (ok, operator, stderr) = bootstrap(&work.path().join("marketplace"), Some(&url))?;
    ensure!(ok, "bootstrap failed: {stderr}");
    let keys = setup(&api, &operator, work.path()).await?;
    for host in &hosts {
        follows_installs(host, &keys).await?;
    }

    // Both hosts accept; A is killed after a third of the events.
    let started = Instant::now();
    let mut sent: Vec<(usize, String)> = Vec::with_capacity(1000);
    let mut host_a = Some(host_a);
    for n in 0..1000 {
        let tenant = n % TENANTS.len();
        let via = if host_a.is_some() {
            &hosts[n % 2]
        } else {
            &hosts[1]
        };
        let id = send(via, &keys[tenant], TENANTS[tenant], json!({"n": n}), None).await?;
        sent.push((tenant, id));
        if n == 333
            && let Some(host) = host_a.take()
        {
            host.kill()?;
        }
    }
    let accepted = started.elapsed();

    // The same request again, with its key, through the surviving host: the same event.
    let first = send(
        &hosts[1],
        &keys[0],
        "acme",
        json!({"order": 7}),
        Some("order-7"),
    )
    .await?;
    let again = send(
        &hosts[1],
        &keys[0],
        "acme",
        json!({"order": 7}),
        Some("order-7"),
    )
    .await?;
    ensure!(first == again, "one key, two events: {first} {again}");

    // Everything is delivered by the host that is left.
    drain(&hosts[1], &keys).await?;
    let drained = started.elapsed();
    let mut redelivered = 0;
    let mut attempted_again = 0;
    for (tenant, id) in &sent {
        let event = shown(&hosts[1], &keys[*tenant], TENANTS[*tenant], id).await?;
        ensure!(event["status"] == "delivered", "{event}");
        let results = event["results"].as_array().context("results")?;
        let last = results.last().context("a result")?;
        ensure!(last["outcome"] == "ok", "{event}");
        ensure!(last["output"]["id"] == id.as_str(), "{event}");
        let seen = last["output"]["seen"].as_i64().context("seen")?;
        let attempts = event["attempts"].as_i64().context("attempts")?;
        // A plugin sees an event more than once only when it was attempted more than once.
        ensure!(
            seen <= attempts,
            "seen {seen} times in {attempts} attempts: {event}"
        );
        redelivered += i64::from(seen > 1);
        attempted_again += i64::from(attempts > 1);
    }
    eprintln!(
        "async events: 1000 accepted in {accepted:?}, all delivered after {drained:?}; \
         {attempted_again} attempted again after the kill, {redelivered} seen twice"
    );
    host_b.stop()?;
    marketplace.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_retries_survive_a_restart_on_sqlite() -> Result<()> {
    let work = tempfile::tempdir()?;
    let data = work.path().join("data");
    let server = PlinthServer::start(&data, None)?;
    let api = Api::at(&server.base);
    let (ok, operator, stderr) = bootstrap(&data, None)?;
    ensure!(ok, "bootstrap failed: {stderr}");
    let keys = setup(&api, &operator, work.path()).await?;
    // Each event fails twice: its retries wait ½–1 s, then 1–2 s more.
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            send(
                &api,
                &keys[0],
                "acme",
                json!({"n": n, "fail_times": 2}),
                None,
            )
            .await?,
        );
    }
    let seen = wait_for(
        &api,
        &keys[0],
        |event| event["attempts"].as_i64() >= Some(1),
        &ids,
    )
    .await?;
    server.kill()?;
    let waiting = seen
        .iter()
        .filter(|event| event["status"] == "queued")
        .count();
    ensure!(
        waiting > 0,
        "every event was delivered before the kill; nothing was tested"
    );

    let server = PlinthServer::start(&data, None)?;
    let api = Api::at(&server.base);
    drain(&api, &keys[..1]).await?;
    for id in &ids {
        let event = shown(&api, &keys[0], "acme", id).await?;
        ensure!(event["status"] == "delivered", "{event}");
        let results = event["results"].as_array().context("results")?;
        ensure!(results[0]["outcome"] == "retry", "{event}");
        let last = results.last().context("a result")?;
        ensure!(
            last["outcome"] == "ok" && last["output"]["seen"] == 3,
            "{event}"
        );
    }
    server.stop()?;
    Ok(())
}

/// Publishes the probe, makes the tenants (with room for the test's requests), installs it
/// in each; returns their API keys in [`TENANTS`] order.
async fn setup(api: &Api, operator: &str, dir: &std::path::Path) -> Result<Vec<String>> {
    let (developer, signing) = api.developer("dev@fixtures.example", "fixtures").await?;
    let package = versioned_package(dir, &QUEUE_PROBE, &signing, "0.1.0", "")?;
    api.publish_and_approve(&package, &developer, operator)
        .await?;
    api.ok(
        Method::PUT,
        "/v1/plans/free",
        Some(operator),
        Some(json!({"api_requests_per_minute": 1_000_000})),
    )
    .await?;
    let mut keys = Vec::new();
    for tenant in TENANTS {
        let (_, admin) = api.account(&format!("admin@{tenant}.example")).await?;
        api.tenant(&admin, tenant, None).await?;
        api.install(&admin, tenant, PROBE, None, json!({})).await?;
        keys.push(api.api_key(&admin, tenant).await?);
    }
    Ok(keys)
}

/// Queues a `job` for `tenant` through `host`; returns its id.
async fn send(
    host: &Api,
    key: &str,
    tenant: &str,
    payload: Value,
    idempotency_key: Option<&str>,
) -> Result<String> {
    let mut request = host
        .client
        .post(format!("{}/v1/tenants/{tenant}/events", host.base))
        .bearer_auth(key)
        .json(&json!({"topic": "job", "payload": payload, "delivery": "async"}));
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("Idempotency-Key", idempotency_key);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    ensure!(status == 202, "event on {}: {status} {body}", host.base);
    Ok(body["id"].as_str().context("event id")?.to_owned())
}

/// Waits until `host` runs the probe for every tenant (it learns of installs made through the
/// marketplace from the database's notifications): an event a host accepts reaches the installs
/// it runs when the event is first attempted.
async fn follows_installs(host: &Api, keys: &[String]) -> Result<()> {
    let started = Instant::now();
    for (tenant, key) in TENANTS.iter().zip(keys) {
        loop {
            let (status, body) = host
                .send(
                    Method::POST,
                    &format!("/v1/tenants/{tenant}/events"),
                    Some(key),
                    Some(json!({"topic": "job.step", "payload": {}})),
                )
                .await?;
            ensure!(status == 200, "event on {}: {status} {body}", host.base);
            if body["results"].as_array().is_some_and(|r| !r.is_empty()) {
                break;
            }
            if started.elapsed() > PATIENCE {
                bail!("{} does not run {tenant}'s install", host.base);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// Event `id` of `tenant` as `host` shows it.
async fn shown(host: &Api, key: &str, tenant: &str, id: &str) -> Result<Value> {
    host.ok(
        Method::GET,
        &format!("/v1/tenants/{tenant}/events/{id}"),
        Some(key),
        None,
    )
    .await
}

/// Waits until no tenant has an event queued.
async fn drain(host: &Api, keys: &[String]) -> Result<()> {
    let started = Instant::now();
    loop {
        let mut waiting = 0;
        for (tenant, key) in TENANTS.iter().zip(keys) {
            let queued = host
                .ok(
                    Method::GET,
                    &format!("/v1/tenants/{tenant}/events?status=queued&limit=100"),
                    Some(key),
                    None,
                )
                .await?;
            waiting += queued["items"].as_array().map_or(0, Vec::len);
        }
        if waiting == 0 {
            return Ok(());
        }
        if started.elapsed() > PATIENCE {
            bail!("{waiting} events still queued after {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `done` holds for each of `ids` (events of `acme`); returns the events as last
/// read.
async fn wait_for(
    api: &Api,
    key: &str,
    done: impl Fn(&Value) -> bool,
    ids: &[String],
) -> Result<Vec<Value>> {
    let started = Instant::now();
    let mut last: HashMap<&str, Value> = HashMap::new();
    loop {
        for id in ids {
            if last.get(id.as_str()).is_some_and(&done) {
                continue;
            }
            let event = shown(api, key, "acme", id).await?;
            last.insert(id, event);
        }
        if last.values().all(&done) && last.len() == ids.len() {
            return Ok(last.into_values().collect());
        }
        if started.elapsed() > PATIENCE {
            bail!("not reached after {PATIENCE:?}: {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
