//! Updates, consent and a security yank end to end through the `plinth` binary (issue 7, "Done
//! when"): `counter` 1.0.0 installed with policy `minor`; 1.1.0 with the same permissions is
//! applied on approval; 1.2.0 adding a permission is not, and the tenant is asked to consent
//! with the permission diff; a security yank of 1.1.0 returns the install to 1.0.0 with its
//! counter value kept; `GET /v1/audit` lists those events and `plinth audit verify` passes.
//! On SQLite and PostgreSQL.

mod common {
    pub mod api;
    pub mod server;
}

use std::process::Command;

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::COUNTER;
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use common::api::{Api, versioned_package};
use common::server::{PlinthServer, bootstrap};

const COUNTER_ID: &str = "examples.counter";

/// Sends a `count` event; returns (version, count).
async fn count(api: &Api, key: &str) -> Result<(String, i64)> {
    let answer = api
        .ok(
            Method::POST,
            "/v1/tenants/acme/events",
            Some(key),
            Some(json!({"topic": "count", "payload": {}})),
        )
        .await?;
    let result = answer["results"]
        .as_array()
        .and_then(|results| results.iter().find(|r| r["plugin"] == COUNTER_ID))
        .cloned()
        .with_context(|| format!("no counter result: {answer}"))?;
    ensure!(result["error"].is_null(), "{result}");
    Ok((
        result["version"].as_str().unwrap_or_default().to_owned(),
        result["output"]["count"].as_i64().context("count")?,
    ))
}

async fn installed_version(api: &Api, admin: &str) -> Result<Value> {
    let listed = api
        .ok(Method::GET, "/v1/tenants/acme/installs", Some(admin), None)
        .await?;
    listed["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["plugin"] == COUNTER_ID))
        .map(|install| install["version"].clone())
        .context("no counter install")
}

async fn versions_journey(database: Option<TestDatabase>) -> Result<()> {
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("data");
    let url = database.as_ref().map(TestDatabase::url);
    let server = PlinthServer::start(&data_dir, url.as_deref())?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    let (ok, operator, stderr) = bootstrap(&data_dir, url.as_deref())?;
    ensure!(ok, "bootstrap failed: {stderr}");
    let (developer, key) = api.developer("dev@example.com", "examples").await?;
    let release = |version: &'static str, extra: &'static str| {
        let api = &api;
        let key = &key;
        let developer = &developer;
        let operator = &operator;
        let dir = work.path();
        async move {
            let path = versioned_package(dir, &COUNTER, key, version, extra)?;
            api.publish_and_approve(&path, developer, operator).await
        }
    };

    // counter 1.0.0, installed with policy `minor`.
    release("1.0.0", "").await?;
    let (_, admin) = api.account("admin@acme.example").await?;
    api.tenant(&admin, "acme", None).await?;
    api.install(
        &admin,
        "acme",
        COUNTER_ID,
        Some("1.0.0"),
        json!({"update_policy": "minor"}),
    )
    .await?;
    let tenant_key = api.api_key(&admin, "acme").await?;
    ensure!(count(&api, &tenant_key).await? == ("1.0.0".into(), 1));
    ensure!(count(&api, &tenant_key).await? == ("1.0.0".into(), 2));

    // 1.1.0, same permissions: the install is on it once it is approved.
    release("1.1.0", "").await?;
    ensure!(installed_version(&api, &admin).await? == "1.1.0");
    ensure!(count(&api, &tenant_key).await? == ("1.1.0".into(), 3));

    // 1.2.0 adds a permission: the install stays, and the tenant is asked to consent.
    release("1.2.0", "http = { hosts = [\"api.example.com\"] }").await?;
    ensure!(installed_version(&api, &admin).await? == "1.1.0");
    let inbox = api
        .ok(
            Method::GET,
            "/v1/tenants/acme/notifications",
            Some(&admin),
            None,
        )
        .await?;
    let consent = inbox["items"]
        .as_array()
        .and_then(|items| items.iter().find(|n| n["kind"] == "update_needs_consent"))
        .cloned()
        .with_context(|| format!("no needs-consent notification: {inbox}"))?;
    ensure!(
        consent["payload"]["to"] == "1.2.0"
            && consent["payload"]["permission_diff"]["added"][0]["capability"] == "http",
        "{consent}"
    );

    // Security yank of 1.1.0: back on 1.0.0, the counter value kept.
    let yanked = api
        .ok(
            Method::POST,
            &format!("/v1/plugins/{COUNTER_ID}/versions/1.1.0/yank"),
            Some(&operator),
            Some(json!({
                "reason_code": "security", "reason": "Sends the count to a third party.",
                "security": true,
            })),
        )
        .await?;
    ensure!(yanked["installs"][0]["to"] == "1.0.0", "{yanked}");
    ensure!(installed_version(&api, &admin).await? == "1.0.0");
    ensure!(count(&api, &tenant_key).await? == ("1.0.0".into(), 4));

    // The audit log lists those events.
    let audit = api
        .ok(Method::GET, "/v1/audit", Some(&operator), None)
        .await?;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in [
        "install.created",
        "install.updated",
        "install.update_needs_consent",
        "version.yanked",
        "install.rolled_back",
    ] {
        ensure!(actions.contains(&expected), "{expected} not in {actions:?}");
    }

    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");
    let mut verify = Command::new(env!("CARGO_BIN_EXE_plinth"));
    verify
        .args(["audit", "verify", "--data-dir"])
        .arg(&data_dir);
    if let Some(url) = &url {
        verify.args(["--database-url", url]);
    }
    let verified = verify.output()?;
    ensure!(
        verified.status.success(),
        "plinth audit verify failed: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    ensure!(
        String::from_utf8_lossy(&verified.stdout).contains("audit log sound"),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    Ok(())
}

#[tokio::test]
async fn versions_journey_on_sqlite() -> Result<()> {
    versions_journey(None).await
}

#[tokio::test]
async fn versions_journey_on_postgres() -> Result<()> {
    versions_journey(Some(TestDatabase::postgres("versions_journey").await?)).await
}
