//! The marketplace journey of DESIGN §1 over HTTP against the real `plinth` binary: an operator
//! bootstraps; a developer signs up, creates a publisher, registers a key and publishes
//! `hello` with `plinth plugin publish`; a reviewer (granted by the operator) approves it with a
//! reason; anyone then finds it by searching "hello" and sees its permissions, and the package
//! they download carries the marketplace's countersignature. Runs on SQLite and PostgreSQL.

mod common {
    pub mod api;
    pub mod server;
}

use std::process::Command;

use anyhow::{Context, Result, ensure};
use plinth_package::{Package, PublicKey};
use plinth_test_artifacts::HELLO;
use plinth_test_support::TestDatabase;
use serde_json::{Value, json};

use common::api::{Api, signed_package};
use common::server::{PlinthServer, bootstrap};

async fn journey(database: Option<TestDatabase>) -> Result<()> {
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("data");
    let url = database.as_ref().map(TestDatabase::url);
    let server = PlinthServer::start(&data_dir, url.as_deref())?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    use reqwest::Method;

    // The operator.
    let (ok, operator, stderr) = bootstrap(&data_dir, url.as_deref())?;
    ensure!(ok, "bootstrap failed: {stderr}");

    // The developer: account, publisher, key, package, publish.
    let (developer, key) = api.developer("dev@example.com", "examples").await?;
    let package_path = signed_package(work.path(), &HELLO, &key)?;
    let published = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(["plugin", "publish"])
        .arg(&package_path)
        .args(["--server", &server.base, "--token", &developer, "--json"])
        .output()?;
    ensure!(
        published.status.success(),
        "plinth plugin publish failed: {}",
        String::from_utf8_lossy(&published.stderr)
    );
    let submission: Value = serde_json::from_slice(&published.stdout).with_context(|| {
        format!(
            "publish --json printed {:?}",
            String::from_utf8_lossy(&published.stdout)
        )
    })?;
    ensure!(submission["status"] == "in_review", "{submission}");
    let submission_id = submission["id"]
        .as_str()
        .context("submission id")?
        .to_owned();

    // The reviewer, granted by the operator, approves with a reason.
    let (reviewer_id, reviewer) = api.account("reviewer@example.com").await?;
    let (status, _) = api
        .send(Method::GET, "/v1/review/queue", Some(&reviewer), None)
        .await?;
    ensure!(
        status == 403,
        "a plain account must not see the review queue (got {status})"
    );
    api.ok(
        Method::PUT,
        &format!("/v1/accounts/{reviewer_id}/roles"),
        Some(&operator),
        Some(json!({"roles": ["reviewer"]})),
    )
    .await?;
    let queue = api
        .ok(Method::GET, "/v1/review/queue", Some(&reviewer), None)
        .await?;
    let item = queue["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == submission_id.as_str()))
        .with_context(|| format!("submission not in the queue: {queue}"))?;
    ensure!(item["plugin"] == "examples.hello", "{item}");
    api.ok(
        Method::POST,
        &format!("/v1/submissions/{submission_id}/decision"),
        Some(&reviewer),
        Some(json!({"decision": "approve", "reason": "Small, does what it says, asks for one topic."})),
    )
    .await?;
    let decided = api
        .ok(
            Method::GET,
            &format!("/v1/submissions/{submission_id}"),
            Some(&developer),
            None,
        )
        .await?;
    ensure!(decided["status"] == "approved", "{decided}");

    // Anyone finds it and sees what it may do.
    let found = api
        .ok(Method::GET, "/v1/plugins?q=hello", None, None)
        .await?;
    let hit = found["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == "examples.hello"))
        .with_context(|| format!("search for hello did not find it: {found}"))?;
    ensure!(hit["latest_version"] == "0.1.0", "{hit}");
    let version = api
        .ok(
            Method::GET,
            "/v1/plugins/examples.hello/versions/0.1.0",
            None,
            None,
        )
        .await?;
    let sentences: Vec<&str> = version["permissions"]
        .as_array()
        .context("permissions")?
        .iter()
        .filter_map(|p| p["sentence"].as_str())
        .collect();
    ensure!(
        sentences.iter().any(|s| s.contains("greet")),
        "the permissions shown do not mention the greet topic: {version}"
    );
    ensure!(
        version["permissions_digest"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{version}"
    );

    // The package anyone downloads is countersigned by this marketplace's key.
    let bytes = api
        .client
        .get(format!(
            "{}/v1/plugins/examples.hello/versions/0.1.0/package",
            server.base
        ))
        .send()
        .await?
        .bytes()
        .await?;
    let package = Package::from_bytes(&bytes)?;
    let marketplace_key =
        PublicKey::parse(std::fs::read_to_string(data_dir.join("marketplace.key.pub"))?.trim())?;
    package.verify_countersignature(&marketplace_key)?;
    package.verify_developer(&key.public_key())?;

    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");
    Ok(())
}

#[tokio::test]
async fn journey_on_sqlite() -> Result<()> {
    journey(None).await
}

#[tokio::test]
async fn journey_on_postgres() -> Result<()> {
    journey(Some(TestDatabase::postgres("journey").await?)).await
}
