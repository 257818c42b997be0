//! A configuration secret never leaves the server: not in any API response (installs, config
//! changes, events, the audit log) and not in any line the server logs, even at `debug`. The
//! server's log is captured to a file and scanned. On SQLite and PostgreSQL.

mod common {
    pub mod api;
    pub mod server;
}

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::WEBHOOK_NOTIFY;
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use common::api::{Api, signed_package};
use common::server::{PlinthServer, bootstrap};

/// Fails if `secret` appears anywhere in `value` (its JSON text).
fn ensure_absent(what: &str, value: &Value, secret: &str) -> Result<()> {
    ensure!(
        !value.to_string().contains(secret),
        "{what} shows the secret: {value}"
    );
    Ok(())
}

async fn secrets_stay_secret(database: Option<TestDatabase>) -> Result<()> {
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("data");
    let log_file = work.path().join("server.log");
    let url = database.as_ref().map(TestDatabase::url);
    let server = PlinthServer::start_logging_to(&data_dir, url.as_deref(), "debug", &log_file)?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    let (ok, operator, stderr) = bootstrap(&data_dir, url.as_deref())?;
    ensure!(ok, "bootstrap failed: {stderr}");
    let (developer, key) = api.developer("dev@example.com", "examples").await?;
    let path = signed_package(work.path(), &WEBHOOK_NOTIFY, &key)?;
    api.publish_and_approve(&path, &developer, &operator)
        .await?;
    let plugin = "examples.webhook-notify";

    let (_, admin) = api.account("admin@acme.example").await?;
    api.ok(
        Method::POST,
        "/v1/tenants",
        Some(&admin),
        Some(json!({"slug": "acme", "name": "Acme"})),
    )
    .await?;
    let first = format!("https://hooks.example.com/first-{}", uuid_like());
    let second = format!("https://hooks.example.com/second-{}", uuid_like());
    let shown = api
        .ok(
            Method::GET,
            &format!("/v1/plugins/{plugin}/versions/0.1.0"),
            None,
            None,
        )
        .await?;
    let installed = api
        .ok(
            Method::POST,
            "/v1/tenants/acme/installs",
            Some(&admin),
            Some(
                json!({"plugin": plugin, "permissions_digest": shown["permissions_digest"],
                        "config": {"webhook-url": first}}),
            ),
        )
        .await?;
    ensure_absent("the install", &installed, &first)?;
    let changed = api
        .ok(
            Method::PATCH,
            &format!("/v1/tenants/acme/installs/{plugin}"),
            Some(&admin),
            Some(json!({"config": {"webhook-url": second}})),
        )
        .await?;
    ensure_absent("the config change", &changed, &second)?;
    let listed = api
        .ok(Method::GET, "/v1/tenants/acme/installs", Some(&admin), None)
        .await?;
    ensure!(
        listed.to_string().contains("webhook-url"),
        "the listing should name the secret that is set: {listed}"
    );
    let made = api
        .ok(
            Method::POST,
            "/v1/tenants/acme/api-keys",
            Some(&admin),
            Some(json!({"name": "backend"})),
        )
        .await?;
    let tenant_key = made["key"].as_str().context("key")?;
    // The plugin posts to the secret URL; the host cannot reach it here, and the failure it
    // reports must not quote the URL.
    let (_, answered) = api
        .send(
            Method::POST,
            "/v1/tenants/acme/events",
            Some(tenant_key),
            Some(json!({"topic": "order.created", "payload": {"id": 7}})),
        )
        .await?;
    ensure!(
        answered["results"][0]["plugin"] == plugin,
        "the event did not reach the plugin: {answered}"
    );
    let audit = api
        .ok(
            Method::GET,
            "/v1/audit?action=install.changed",
            Some(&operator),
            None,
        )
        .await?;
    ensure!(
        audit["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty()),
        "{audit}"
    );
    for (what, value) in [
        ("the listing", &listed),
        ("the event results", &answered),
        ("the audit log", &audit),
    ] {
        ensure_absent(what, value, &first)?;
        ensure_absent(what, value, &second)?;
    }

    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");
    let log = std::fs::read_to_string(&log_file)?;
    // The capture works: the install and the event were logged.
    ensure!(log.contains("installed"), "nothing captured: {log}");
    ensure!(log.contains(plugin), "the plugin is never named in the log");
    for secret in [&first, &second] {
        let path = secret.trim_start_matches("https://hooks.example.com");
        ensure!(
            !log.contains(path),
            "the log holds a secret:\n{}",
            log.lines()
                .filter(|line| line.contains(path))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(())
}

/// A value no log line could hold by chance.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("s3cr3t{nanos:x}{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_secret_on_sqlite() -> Result<()> {
    secrets_stay_secret(None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_secret_on_postgres() -> Result<()> {
    secrets_stay_secret(Some(TestDatabase::postgres("secrets_logs").await?)).await
}
