//! Shared rates across processes (issue 24, part 3): three `plinth serve` processes on one
//! PostgreSQL database (a `--role marketplace` and two `--role host`) hold a tenant to its
//! plan's API rate between them, not three times over. The tenant's API key hammers all
//! three at once (tenant routes on the marketplace, events on the hosts) within one minute
//! window; the requests admitted must not pass the limit (each process's own bucket would let
//! three times as many through), and must not fall far below it.

mod common {
    pub mod api;
    pub mod server;
}

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use plinth_marketplace::secrets::SecretsKey;
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::json;

use common::api::Api;
use common::server::{PlinthServer, bootstrap};

/// The plan's API requests per minute.
const LIMIT: u32 = 300;

/// Requests sent to each process: each process alone would admit all of them.
const PER_PROCESS: u32 = 250;

/// Requests in flight at once per process.
const CLIENTS: u32 = 6;

/// The rate windows are wall-clock minutes.
const WINDOW_MS: u128 = 60_000;

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_hold_a_tenant_to_one_api_rate() -> Result<()> {
    let database = TestDatabase::postgres("shared_rates").await?;
    let url = database.url();
    let work = tempfile::tempdir()?;
    let key_file = work.path().join("marketplace.key");
    let key_arg = key_file.to_string_lossy().into_owned();
    let (_, secrets) = SecretsKey::generate()?;
    let (_, audit_key) = plinth_marketplace::audit::key::AuditKey::generate()?;
    let start = |name: &str, role: &str| {
        PlinthServer::start_configured(
            &work.path().join(name),
            Some(&url),
            &["--role", role, "--marketplace-key", &key_arg],
            &[
                ("PLINTH_SECRETS_KEY", secrets.as_str()),
                ("PLINTH_AUDIT_KEY", audit_key.as_str()),
            ],
        )
    };
    let marketplace = start("marketplace", "marketplace")?;
    let host_a = start("host-a", "host")?;
    let host_b = start("host-b", "host")?;
    let api = client(&marketplace.base);

    let (ok, operator, stderr) = bootstrap(&work.path().join("marketplace"), Some(&url))?;
    ensure!(ok, "bootstrap failed: {stderr}");
    api.ok(
        Method::PUT,
        "/v1/plans/free",
        Some(&operator),
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
    let into_window = now_ms() % WINDOW_MS;
    if into_window > 40_000 {
        let wait = u64::try_from(WINDOW_MS - into_window).unwrap_or(0) + 50;
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    let started = now_ms();
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

    for server in [marketplace, host_a, host_b] {
        let status = server.stop()?;
        ensure!(status.success(), "plinth serve exited with {status}");
    }
    Ok(())
}

fn client(base: &str) -> Api {
    Api {
        base: base.to_owned(),
        client: reqwest::Client::new(),
    }
}
