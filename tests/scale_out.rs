//! Several `plinth serve` processes on one PostgreSQL database (issue 9, "Scale out"): one
//! `--role marketplace` and two `--role host`, each with its own data directory, sharing only
//! the database, the marketplace key and the secrets key. Installs, an automatic update and a
//! security yank made through the marketplace reach both hosts through the database's change
//! notifications; both hosts share the counter's kv data; killing one host loses nothing and
//! the other keeps serving. A host process keeps the newest state statement it verified,
//! across restarts, against storage that serves an older one. PostgreSQL only: one SQLite file
//! serves one process.

mod common {
    pub mod api;
    pub mod server;
}

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use plinth_test_artifacts::COUNTER;
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use common::api::{Api, versioned_package};
use common::server::{Cluster, bootstrap};

const COUNTER_ID: &str = "examples.counter";

/// The longest a change may take to reach a host before the test fails (the time taken is
/// printed, not asserted: well under a second here, a first install's compile included).
const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_follow_one_marketplace_on_postgres() -> Result<()> {
    let database = TestDatabase::postgres("scale_out").await?;
    let url = database.url();
    let work = tempfile::tempdir()?;
    let cluster = Cluster::new(work.path(), &url)?;
    let start = |name: &str, role: &str| cluster.start(name, role, &[]);
    let marketplace = start("marketplace", "marketplace")?;
    let host_a = start("host-a", "host")?;
    let host_b = start("host-b", "host")?;
    let api = Api::at(&marketplace.base);
    let hosts = [Api::at(&host_a.base), Api::at(&host_b.base)];

    let (ok, operator, stderr) = bootstrap(&work.path().join("marketplace"), Some(&url))?;
    ensure!(ok, "bootstrap failed: {stderr}");
    let (developer, signing) = api.developer("dev@example.com", "examples").await?;
    let release = |version: &'static str| {
        let (api, signing, developer, operator) = (&api, &signing, &developer, &operator);
        let dir = work.path();
        async move {
            let path = versioned_package(dir, &COUNTER, signing, version, "")?;
            api.publish_and_approve(&path, developer, operator).await
        }
    };

    // Each process serves its own plane only.
    let (status, _) = hosts[0]
        .send(Method::GET, "/v1/plugins", None, None)
        .await?;
    ensure!(status == 404, "a host serves the catalog: {status}");

    // An install made through the marketplace reaches both hosts.
    release("1.0.0").await?;
    let (_, admin) = api.account("admin@acme.example").await?;
    api.ok(
        Method::POST,
        "/v1/tenants",
        Some(&admin),
        Some(json!({"slug": "acme", "name": "Acme"})),
    )
    .await?;
    let shown = api
        .ok(
            Method::GET,
            &format!("/v1/plugins/{COUNTER_ID}/versions/1.0.0"),
            None,
            None,
        )
        .await?;
    api.ok(
        Method::POST,
        "/v1/tenants/acme/installs",
        Some(&admin),
        Some(json!({
            "plugin": COUNTER_ID, "version": "1.0.0",
            "permissions_digest": shown["permissions_digest"], "update_policy": "minor",
        })),
    )
    .await?;
    let key = api
        .ok(
            Method::POST,
            "/v1/tenants/acme/api-keys",
            Some(&admin),
            Some(json!({"name": "backend"})),
        )
        .await?["key"]
        .as_str()
        .context("api key")?
        .to_owned();
    let (status, _) = api
        .send(
            Method::POST,
            "/v1/tenants/acme/events",
            Some(&key),
            Some(json!({"topic": "count", "payload": {}})),
        )
        .await?;
    ensure!(status == 404, "the marketplace serves events: {status}");
    let mut last = 0;
    for host in &hosts {
        let (version, count) = wait_for_version(host, &key, "1.0.0").await?;
        ensure!(version == "1.0.0");
        // One counter in the shared kv store, whichever host runs the call.
        ensure!(count > last, "count {count} after {last}");
        last = count;
    }

    // 1.1.0 is applied on approval (policy `minor`) by the marketplace; both hosts follow.
    release("1.1.0").await?;
    for host in &hosts {
        let (_, count) = wait_for_version(host, &key, "1.1.0").await?;
        ensure!(count > last, "count {count} after {last}");
        last = count;
    }

    // A security yank rolls everyone back to 1.0.0, on both hosts.
    api.ok(
        Method::POST,
        &format!("/v1/plugins/{COUNTER_ID}/versions/1.1.0/yank"),
        Some(&operator),
        Some(json!({
            "reason_code": "security", "reason": "Sends the count to a third party.",
            "security": true,
        })),
    )
    .await?;
    for host in &hosts {
        let (_, count) = wait_for_version(host, &key, "1.0.0").await?;
        ensure!(count > last, "count {count} after {last}");
        last = count;
    }

    // Disabling it through the marketplace stops deliveries on both hosts.
    api.ok(
        Method::PATCH,
        &format!("/v1/tenants/acme/installs/{COUNTER_ID}"),
        Some(&admin),
        Some(json!({"enabled": false})),
    )
    .await?;
    for host in &hosts {
        wait_until(host, &key, |results| results.is_empty()).await?;
    }
    api.ok(
        Method::PATCH,
        &format!("/v1/tenants/acme/installs/{COUNTER_ID}"),
        Some(&admin),
        Some(json!({"enabled": true})),
    )
    .await?;

    // A host dies: nothing is lost, and the other keeps serving from where it was.
    host_a.kill()?;
    let (_, count) = wait_for_version(&hosts[1], &key, "1.0.0").await?;
    ensure!(count > last, "count {count} after {last}");

    // A revoked key stops working on the host at once, not after its cache expires.
    let key_id = key_id(&api, &admin).await?;
    api.ok(
        Method::DELETE,
        &format!("/v1/tenants/acme/api-keys/{key_id}"),
        Some(&admin),
        None,
    )
    .await?;
    let revoked_at = Instant::now();
    loop {
        let (status, body) = event(&hosts[1], &key).await?;
        if status == 401 {
            break;
        }
        ensure!(status == 200, "{status} {body}");
        if revoked_at.elapsed() > PATIENCE {
            bail!("the revoked key still works on a host after {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "scale-out: a revocation reached the host in {:?}",
        revoked_at.elapsed()
    );

    host_b.stop()?;
    marketplace.stop()?;
    Ok(())
}

/// A `--role host` process keeps the newest state statement it verified: after a security
/// yank, storage that serves an older statement and "forgets" the yank (a withheld state)
/// brings neither the statement nor the version back, even across a restart of the host; and
/// when the newest statement expires with nothing newer, its health turns degraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_process_refuses_a_replayed_state_on_postgres() -> Result<()> {
    let database = TestDatabase::postgres("statements_role_host").await?;
    let url = database.url();
    let work = tempfile::tempdir()?;
    let cluster = Cluster::new(work.path(), &url)?;
    let start = |name: &str, role: &str| cluster.start(name, role, &[]);
    let marketplace = start("marketplace", "marketplace")?;
    let host = start("host", "host")?;
    let api = Api::at(&marketplace.base);
    let on_host = Api::at(&host.base);
    let (ok, operator, stderr) = bootstrap(&work.path().join("marketplace"), Some(&url))?;
    ensure!(ok, "bootstrap failed: {stderr}");
    let (developer, signing) = api.developer("dev@example.com", "examples").await?;
    for version in ["1.0.0", "1.1.0"] {
        let path = versioned_package(work.path(), &COUNTER, &signing, version, "")?;
        api.publish_and_approve(&path, &developer, &operator)
            .await?;
    }
    let (_, admin) = api.account("admin@acme.example").await?;
    api.tenant(&admin, "acme", None).await?;
    api.install(&admin, "acme", COUNTER_ID, Some("1.1.0"), json!({}))
        .await?;
    let key = api.api_key(&admin, "acme").await?;
    wait_for_version(&on_host, &key, "1.1.0").await?;

    // A block stops the plugin on the host; the unblock's statement lifts it again there.
    api.ok(
        Method::POST,
        &format!("/v1/plugins/{COUNTER_ID}/block"),
        Some(&operator),
        Some(json!({"reason_code": "policy", "reason": "Under investigation."})),
    )
    .await?;
    wait_until(&on_host, &key, |results| results.is_empty()).await?;
    api.ok(
        Method::POST,
        &format!("/v1/plugins/{COUNTER_ID}/unblock"),
        Some(&operator),
        Some(json!({"reason": "Cleared."})),
    )
    .await?;
    wait_for_version(&on_host, &key, "1.1.0").await?;

    api.ok(
        Method::POST,
        &format!("/v1/plugins/{COUNTER_ID}/versions/1.1.0/yank"),
        Some(&operator),
        Some(json!({"reason_code": "security", "reason": "Leaks counts.", "security": true})),
    )
    .await?;
    wait_for_version(&on_host, &key, "1.0.0").await?;
    let newest = api
        .ok(Method::GET, "/v1/state", Some(&operator), None)
        .await?["statement"]["sequence"]
        .as_i64()
        .context("sequence")?;
    let sequence_on = |metrics: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("plinth_state_statement_sequence "))
            .and_then(|n| n.trim().parse::<i64>().ok())
    };
    let started = Instant::now();
    loop {
        let metrics = on_host
            .client
            .get(format!("{}/metrics", on_host.base))
            .send()
            .await?
            .text()
            .await?;
        if sequence_on(&metrics) == Some(newest) {
            break;
        }
        ensure!(
            started.elapsed() < PATIENCE,
            "the host never took statement {newest}: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = on_host.ok(Method::GET, "/healthz", None, None).await?;
    ensure!(health["state_statement"] == "fresh", "{health}");

    // Storage withholds the yank and serves the statement before it as the newest.
    let db = plinth_marketplace::Db::connect(&url).await?;
    sqlx::query("DELETE FROM state_statements WHERE sequence >= $1")
        .bind(newest)
        .execute(db.pool())
        .await?;
    sqlx::query("UPDATE versions SET yanked_at = NULL, yank_security = 0 WHERE plugin_id = $1")
        .bind(COUNTER_ID)
        .execute(db.pool())
        .await?;
    sqlx::query("UPDATE installs SET version = '1.1.0' WHERE plugin_id = $1")
        .bind(COUNTER_ID)
        .execute(db.pool())
        .await?;
    db.close().await;

    // The host restarts from its data directory: it follows storage, refuses the older
    // statement, and still runs 1.0.0.
    host.stop()?;
    let host = start("host", "host")?;
    let on_host = Api::at(&host.base);
    let started = Instant::now();
    loop {
        let metrics = on_host
            .client
            .get(format!("{}/metrics", on_host.base))
            .send()
            .await;
        if let Ok(response) = metrics {
            let text = response.text().await?;
            let refused = text
                .lines()
                .find_map(|line| line.strip_prefix("plinth_state_statements_refused_total "))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or(0);
            if refused >= 1 {
                ensure!(sequence_on(&text) == Some(newest), "{text}");
                break;
            }
        }
        ensure!(
            started.elapsed() < PATIENCE,
            "the host never refused the older statement"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = event(&on_host, &key).await?;
    ensure!(status == 200, "{status} {body}");
    let ran: Vec<&Value> = body["results"]
        .as_array()
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    ensure!(
        ran.iter().all(|r| r["version"] != "1.1.0"),
        "the host runs the revoked version: {body}"
    );

    // The marketplace stops speaking: the last statement it left (still revoking 1.1.0) is
    // past its expiry, and the host says so on /healthz and in its metrics.
    let marketplace_key = plinth_package::SecretKey::parse(
        std::fs::read_to_string(work.path().join("marketplace.key"))?.trim(),
    )?;
    let stale = plinth_package::signing::statement::StateStatement::new(
        u64::try_from(newest)? + 5,
        1_000_000,
        3600,
        vec![plinth_package::signing::statement::Revoked {
            plugin: COUNTER_ID.to_owned(),
            version: Some("1.1.0".to_owned()),
        }],
        "sha256:00".to_owned(),
        vec![marketplace_key.public_key()],
    )
    .sign(&marketplace_key);
    let db = plinth_marketplace::Db::connect(&url).await?;
    sqlx::query("INSERT INTO state_statements (sequence, issued_at, expires_at, body) VALUES ($1, $2, $3, $4)")
        .bind(newest + 5)
        .bind(stale.statement.issued_at)
        .bind(stale.statement.expires_at)
        .bind(serde_json::to_string(&stale)?)
        .execute(db.pool())
        .await?;
    db.close().await;
    let started = Instant::now();
    loop {
        let health = on_host.ok(Method::GET, "/healthz", None, None).await?;
        if health["status"] == "degraded" {
            ensure!(health["state_statement"] == "expired", "{health}");
            break;
        }
        ensure!(
            started.elapsed() < PATIENCE,
            "the host never saw its statement expire: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = on_host
        .client
        .get(format!("{}/metrics", on_host.base))
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        metrics.contains("plinth_state_statement_expired 1"),
        "{metrics}"
    );
    let (_, body) = event(&on_host, &key).await?;
    ensure!(
        body["results"]
            .as_array()
            .is_none_or(|results| results.iter().all(|r| r["version"] != "1.1.0")),
        "the expired statement's revocation still holds: {body}"
    );

    host.stop()?;
    marketplace.stop()?;
    Ok(())
}

async fn event(host: &Api, key: &str) -> Result<(u16, Value)> {
    host.send(
        Method::POST,
        "/v1/tenants/acme/events",
        Some(key),
        Some(json!({"topic": "count", "payload": {}})),
    )
    .await
}

/// Sends `count` events to `host` until `done` holds for the results; returns them.
async fn wait_until(host: &Api, key: &str, done: impl Fn(&[Value]) -> bool) -> Result<Vec<Value>> {
    let started = Instant::now();
    loop {
        let (status, body) = event(host, key).await?;
        ensure!(status == 200, "event on {}: {status} {body}", host.base);
        let results = body["results"].as_array().cloned().unwrap_or_default();
        if done(&results) {
            eprintln!(
                "scale-out: {} was in step after {:?}",
                host.base,
                started.elapsed()
            );
            return Ok(results);
        }
        if started.elapsed() > PATIENCE {
            bail!("{} not in step after {PATIENCE:?}: {body}", host.base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `host` runs the counter at `version`; returns (version, count).
async fn wait_for_version(host: &Api, key: &str, version: &str) -> Result<(String, i64)> {
    let results = wait_until(host, key, |results| {
        results
            .iter()
            .any(|r| r["plugin"] == COUNTER_ID && r["version"] == version)
    })
    .await?;
    let result = results
        .iter()
        .find(|r| r["plugin"] == COUNTER_ID)
        .context("counter result")?;
    ensure!(result["error"].is_null(), "{result}");
    Ok((
        version.to_owned(),
        result["output"]["count"].as_i64().context("count")?,
    ))
}

async fn key_id(api: &Api, admin: &str) -> Result<String> {
    let keys = api
        .ok(Method::GET, "/v1/tenants/acme/api-keys", Some(admin), None)
        .await?;
    keys["items"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no key: {keys}"))
}
