//! Helpers for the publishing tests: developers with publishers and keys, and real packages.

#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses part of it"
)]

use anyhow::{Context, Result};
use plinth_package::{Package, SecretKey};
use plinth_test_artifacts::TestPlugin;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Row;

use crate::common::{Reply, TestApp};

/// A developer: a user who owns publisher `ns` and has registered `key`.
pub struct Dev {
    pub user_id: String,
    pub token: String,
    pub ns: String,
    pub key: SecretKey,
    pub key_id: String,
}

/// Signs up `email`, creates publisher `ns` and registers a fresh signing key.
pub async fn developer(app: &TestApp, email: &str, ns: &str) -> Result<Dev> {
    let (user_id, token) = app.user(email).await?;
    app.post(
        "/v1/publishers",
        Some(&token),
        json!({"namespace": ns, "name": format!("{ns} publishing")}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let key = SecretKey::generate()?;
    let added = register_key(app, &token, ns, &key)
        .await?
        .expect(StatusCode::CREATED)?;
    let key_id = added.body["id"].as_str().context("key id")?.to_owned();
    Ok(Dev {
        user_id,
        token,
        ns: ns.to_owned(),
        key,
        key_id,
    })
}

/// A challenge for registering `key` to publisher `ns`, as `token`: the answer.
pub async fn challenge(app: &TestApp, token: &str, ns: &str, key: &SecretKey) -> Result<Reply> {
    app.post(
        &format!("/v1/publishers/{ns}/keys/challenges"),
        Some(token),
        json!({"public_key": key.public_key().to_string()}),
    )
    .await
}

/// Registers `key` to publisher `ns` as `token`, proving possession as `plinth key register`
/// does (a challenge, signed by the key): the registration's answer.
pub async fn register_key(app: &TestApp, token: &str, ns: &str, key: &SecretKey) -> Result<Reply> {
    let issued = challenge(app, token, ns, key)
        .await?
        .expect(StatusCode::CREATED)?;
    let challenge = issued.body["challenge"].as_str().context("challenge")?;
    app.post(
        &format!("/v1/publishers/{ns}/keys"),
        Some(token),
        json!({
            "public_key": key.public_key().to_string(),
            "challenge": challenge,
            "signature": key.prove_possession(ns, challenge).to_string(),
        }),
    )
    .await
}

/// `plugin`'s `plinth.toml` with the id and version replaced and `extra` appended to its
/// `[permissions]` table (the last table of the example manifests).
pub fn manifest(plugin: &TestPlugin, id: &str, version: &str, extra: &str) -> Result<String> {
    let text = std::fs::read_to_string(std::path::Path::new(plugin.dir).join("plinth.toml"))?;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("id = ") {
            out.push_str(&format!("id = \"{id}\"\n"));
        } else if line.starts_with("version = ") {
            out.push_str(&format!("version = \"{version}\"\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(extra);
    out.push('\n');
    Ok(out)
}

/// A package of `plugin` as `id` `version`, with `readme`, signed by `key` if given.
pub fn package_with(
    plugin: &TestPlugin,
    id: &str,
    version: &str,
    extra_permissions: &str,
    readme: Option<&str>,
    key: Option<&SecretKey>,
) -> Result<Vec<u8>> {
    let wasm = std::fs::read(plugin.wasm)?;
    let mut package = Package::new(
        manifest(plugin, id, version, extra_permissions)?,
        wasm,
        readme.map(str::to_owned),
        None,
    )?;
    if let Some(key) = key {
        package.sign(key);
    }
    Ok(package.to_bytes()?)
}

/// The hello plugin as `<dev.ns>.hello` `version`, signed with the developer's key.
pub fn hello(dev: &Dev, version: &str) -> Result<Vec<u8>> {
    package_with(
        &plinth_test_artifacts::HELLO,
        &format!("{}.hello", dev.ns),
        version,
        "",
        Some("# Hello\nGreets."),
        Some(&dev.key),
    )
}

/// `POST /v1/submissions` with `bytes`.
pub async fn submit(app: &TestApp, token: &str, bytes: Vec<u8>) -> Result<Reply> {
    app.send_bytes(
        reqwest::Method::POST,
        "/v1/submissions",
        Some(token),
        "application/octet-stream",
        bytes,
    )
    .await
}

/// Submits and expects 201; returns the submission id.
pub async fn submit_ok(app: &TestApp, token: &str, bytes: Vec<u8>) -> Result<String> {
    let reply = submit(app, token, bytes)
        .await?
        .expect(StatusCode::CREATED)?;
    Ok(reply.body["id"]
        .as_str()
        .context("submission id")?
        .to_owned())
}

/// Submits `plugin` as `id` `version`, signed with `dev`'s key, and has `reviewer` (a reviewer
/// or the operator, not a member of `dev`'s publisher) approve it; returns the submission id.
pub async fn publish(
    app: &TestApp,
    dev: &Dev,
    reviewer: &str,
    plugin: &TestPlugin,
    id: &str,
    version: &str,
) -> Result<String> {
    let bytes = package_with(plugin, id, version, "", None, Some(&dev.key))?;
    let submission = submit_ok(app, &dev.token, bytes).await?;
    app.post(
        &format!("/v1/submissions/{submission}/decision"),
        Some(reviewer),
        json!({"decision": "approve", "reason": "Reviewed in a test."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    Ok(submission)
}

/// The permissions digest the catalog shows for `id` `version` (what an install consents to).
pub async fn permissions_digest(app: &TestApp, id: &str, version: &str) -> Result<String> {
    let shown = app
        .get(&format!("/v1/plugins/{id}/versions/{version}"), None)
        .await?
        .expect(StatusCode::OK)?;
    Ok(shown.body["permissions_digest"]
        .as_str()
        .context("permissions_digest")?
        .to_owned())
}

/// The number of rows in `table` (one of a fixed set).
pub async fn count(app: &TestApp, table: &str) -> Result<i64> {
    let sql = match table {
        "submissions" => "SELECT COUNT(*) AS n FROM submissions",
        "artifacts" => "SELECT COUNT(*) AS n FROM artifacts",
        "versions" => "SELECT COUNT(*) AS n FROM versions",
        "notifications" => "SELECT COUNT(*) AS n FROM notifications",
        other => anyhow::bail!("no count for {other}"),
    };
    let row = sqlx::query(sql).fetch_one(app.db().pool()).await?;
    Ok(row.try_get("n")?)
}
