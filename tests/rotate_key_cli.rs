//! `plinth admin rotate-key` as an operator runs it between two runs of `plinth serve`
//! (SQLite): the key file is replaced (the old one kept beside it), every package is
//! countersigned again, and after a restart the install keeps running; the statements name
//! both keys during the overlap, and the new one alone after a rotation for a compromised key.

mod common {
    pub mod api;
    pub mod server;
}

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::HELLO;
use reqwest::Method;
use serde_json::{Value, json};

use common::api::{Api, signed_package};
use common::server::{PlinthServer, bootstrap};

fn api(server: &PlinthServer) -> Api {
    Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    }
}

/// `plinth admin rotate-key --data-dir DIR` with `extra`: its JSON report.
fn rotate(data_dir: &Path, extra: &[&str]) -> Result<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(["admin", "rotate-key", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .output()?;
    ensure!(
        output.status.success(),
        "rotate-key failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The public key in `DIR/marketplace.key.pub`.
fn public_key(data_dir: &Path) -> Result<String> {
    Ok(
        std::fs::read_to_string(data_dir.join("marketplace.key.pub"))?
            .trim()
            .to_owned(),
    )
}

/// Sends a greet event to acme; the hello plugin's result.
async fn greet(api: &Api, key: &str) -> Result<Value> {
    let answer = api
        .ok(
            Method::POST,
            "/v1/tenants/acme/events",
            Some(key),
            Some(json!({"topic": "greet", "payload": "Ada"})),
        )
        .await?;
    answer["results"]
        .as_array()
        .and_then(|results| results.iter().find(|r| r["plugin"] == "examples.hello"))
        .cloned()
        .with_context(|| format!("no hello result: {answer}"))
}

/// Waits for `GET /v1/state` (as `operator`) to be signed by `key`; returns the statement.
async fn statement_by(api: &Api, operator: &str, key: &str) -> Result<Value> {
    for _ in 0..100 {
        let (status, body) = api
            .send(Method::GET, "/v1/state", Some(operator), None)
            .await?;
        if status == 200 && body["key"] == key {
            return Ok(body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("no statement signed by {key}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_keeps_installs_running_across_a_restart() -> Result<()> {
    let work = tempfile::tempdir()?;
    let data = work.path().join("data");
    let server = PlinthServer::start(&data, None)?;
    let (ok, operator, stderr) = bootstrap(&data, None)?;
    ensure!(ok, "bootstrap failed: {stderr}");
    let client = api(&server);
    let (developer, signing) = client.developer("dev@example.com", "examples").await?;
    let package = signed_package(work.path(), &HELLO, &signing)?;
    client
        .publish_and_approve(&package, &developer, operator.trim())
        .await?;
    let (_, admin) = client.account("admin@acme.example").await?;
    client.tenant(&admin, "acme", None).await?;
    client
        .install(&admin, "acme", "examples.hello", None, json!({}))
        .await?;
    let key = client.api_key(&admin, "acme").await?;
    let greeted = greet(&client, &key).await?;
    ensure!(greeted["error"].is_null(), "{greeted}");
    let first = public_key(&data)?;
    server.stop()?;

    // With an overlap: the statements name both keys.
    let rotated = rotate(&data, &["--overlap-hours", "2"])?;
    let second = public_key(&data)?;
    ensure!(
        second != first && rotated["new_key"] == second.as_str(),
        "{rotated}"
    );
    ensure!(
        rotated["countersigned"] == 1 && rotated["compromised"] == false,
        "{rotated}"
    );
    let retired = std::fs::read_dir(&data)?
        .filter_map(|entry| entry.ok())
        .any(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("marketplace.key.retired-")
        });
    ensure!(retired, "the old key file was not kept");
    let server = PlinthServer::start(&data, None)?;
    let client = api(&server);
    ensure!(
        greet(&client, &key).await?["error"].is_null(),
        "the install stopped after the rotation"
    );
    let statement = statement_by(&client, operator.trim(), &second).await?;
    let keys = statement["statement"]["keys"].clone();
    ensure!(keys == json!([second, first]), "{keys}");
    server.stop()?;

    // For a compromised key: the new one alone, at once.
    let rotated = rotate(&data, &["--compromised"])?;
    let third = public_key(&data)?;
    ensure!(rotated["compromised"] == true, "{rotated}");
    let server = PlinthServer::start(&data, None)?;
    let client = api(&server);
    ensure!(
        greet(&client, &key).await?["error"].is_null(),
        "the install stopped after the second rotation"
    );
    let statement = statement_by(&client, operator.trim(), &third).await?;
    ensure!(
        statement["statement"]["keys"] == json!([third]),
        "{statement}"
    );
    server.stop()?;
    Ok(())
}
