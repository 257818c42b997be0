//! `plinth audit verify` through the binary: sound after real activity under the audit key the
//! server made in its data dir; failing under another key (`PLINTH_AUDIT_KEY`) at the first
//! seal, and refusing to run without a key; a row edited in the database directly makes it fail
//! naming that entry. On SQLite and PostgreSQL.

mod common {
    pub mod api;
    pub mod server;
}

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::Db;
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::json;

use common::api::Api;
use common::server::{PlinthServer, bootstrap};

/// Runs `plinth audit verify --json` against the storage; returns (success, stdout, stderr).
fn verify(data_dir: &Path, url: Option<&str>) -> Result<(bool, String, String)> {
    verify_with_key(data_dir, url, None)
}

/// As [`verify`], with `PLINTH_AUDIT_KEY` set to `key` if given (else unset).
fn verify_with_key(
    data_dir: &Path,
    url: Option<&str>,
    key: Option<&str>,
) -> Result<(bool, String, String)> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plinth"));
    command
        .args(["audit", "verify", "--json", "--data-dir"])
        .arg(data_dir)
        .env_remove("PLINTH_AUDIT_KEY");
    if let Some(url) = url {
        command.args(["--database-url", url]);
    }
    if let Some(key) = key {
        command.env("PLINTH_AUDIT_KEY", key);
    }
    let output = command.output()?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

async fn tampering_is_detected(database: Option<TestDatabase>) -> Result<()> {
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
    api.developer("dev@example.com", "examples").await?;
    let (_, owner) = api.account("owner@acme.example").await?;
    api.ok(
        Method::POST,
        "/v1/tenants",
        Some(&owner),
        Some(json!({"slug": "acme", "name": "Acme"})),
    )
    .await?;
    let listed = api
        .ok(Method::GET, "/v1/audit", Some(&operator), None)
        .await?;
    let entries = listed["items"].as_array().context("items")?;
    ensure!(entries.len() >= 3, "{listed}");
    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");

    let (sound, out, err) = verify(&data_dir, url.as_deref())?;
    ensure!(sound, "verify failed on an untouched log: {out} {err}");
    let report: serde_json::Value = serde_json::from_str(out.trim())?;
    ensure!(report["entries"] == json!(entries.len()), "{report}");

    // Under another key the first seal does not match; without one it does not run.
    let (_, other) = plinth_marketplace::audit::key::AuditKey::generate()?;
    let (sound, out, err) = verify_with_key(&data_dir, url.as_deref(), Some(&other))?;
    ensure!(!sound, "verify passed under another key: {out}");
    ensure!(
        err.contains("audit entry 1") && err.contains("seal does not match"),
        "{err}"
    );
    let key_file = data_dir.join("audit.key");
    let aside = work.path().join("audit.key.aside");
    std::fs::rename(&key_file, &aside)?;
    let (sound, _, err) = verify(&data_dir, url.as_deref())?;
    ensure!(!sound && err.contains("no audit key"), "{err}");
    ensure!(!key_file.exists(), "verify made a key");
    std::fs::rename(&aside, &key_file)?;

    // Edit the second entry behind the marketplace's back.
    let target = &entries[1];
    let db = match url.as_deref() {
        Some(url) => Db::connect(url).await?,
        None => Db::open_data_dir(&data_dir).await?,
    };
    sqlx::query("UPDATE audit_log SET actor_id = $1 WHERE seq = 2")
        .bind("someone-else")
        .execute(db.pool())
        .await?;
    db.close().await;
    let (sound, out, err) = verify(&data_dir, url.as_deref())?;
    ensure!(!sound, "verify passed a tampered log: {out}");
    let id = target["id"].as_str().context("id")?;
    ensure!(
        err.contains(&format!("audit entry 2 ({id})")),
        "the failure does not name the entry: {err}"
    );
    let violation: serde_json::Value = serde_json::from_str(out.trim())?;
    ensure!(violation["seq"] == 2, "{violation}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected_on_sqlite() -> Result<()> {
    tampering_is_detected(None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected_on_postgres() -> Result<()> {
    tampering_is_detected(Some(TestDatabase::postgres("audit_cli").await?)).await
}
