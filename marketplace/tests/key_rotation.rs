//! Marketplace key rotation, in process with a host, on both backends: a statement signed by
//! the old key introduces the new one; during the overlap hosts load packages countersigned by
//! either, after it only by the new one; a compromised key is out at once.

mod common;
mod publishing;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::clock::now_ms;
use plinth_marketplace::key_rotation::{self, Retirement};
use plinth_marketplace::statements;
use plinth_package::{Package, SecretKey};
use plinth_test_artifacts::COUNTER;
use reqwest::StatusCode;
use serde_json::json;

use common::TestApp;
use publishing::{developer, package_with, submit_ok};

on_both_backends_with_host!(
    a_rotation_with_an_overlap_is_followed_by_hosts,
    a_compromised_key_is_out_at_once,
);

const PLUGIN: &str = "labs.counter";
const HOUR_MS: i64 = 60 * 60 * 1000;

/// Publishes counter 1.0.0 (countersigned by the app's key) and waits for the first
/// statement; returns the published package and the operator's token.
async fn world(app: &TestApp) -> Result<(Package, String)> {
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    let bytes = package_with(&COUNTER, PLUGIN, "1.0.0", "", None, Some(&dev.key))?;
    let submission = submit_ok(app, &dev.token, bytes).await?;
    app.post(
        &format!("/v1/submissions/{submission}/decision"),
        Some(&operator),
        json!({"decision": "approve", "reason": "Reviewed in a test."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    for _ in 0..100 {
        if statements::latest(app.db()).await?.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((published(app).await?, operator))
}

/// The package as the catalog serves it now.
async fn published(app: &TestApp) -> Result<Package> {
    let file = app
        .get(
            &format!("/v1/plugins/{PLUGIN}/versions/1.0.0/package"),
            None,
        )
        .await?
        .expect(StatusCode::OK)?;
    Ok(Package::from_bytes(&file.bytes)?)
}

/// Hands the newest stored statement to the host: `Ok` if it took it.
async fn deliver_newest(app: &TestApp) -> Result<bool> {
    let newest = statements::latest(app.db()).await?.context("a statement")?;
    Ok(statements::deliver(&app.state, &newest)
        .context("a host")?
        .is_ok())
}

fn countersigned_by(package: &Package, key: &SecretKey) -> Package {
    let mut package = package.clone();
    package.countersign(key, now_ms() / 1000);
    package
}

async fn a_rotation_with_an_overlap_is_followed_by_hosts(app: TestApp) -> Result<()> {
    let (before, operator) = world(&app).await?;
    let old = SecretKey::parse(&app.state.signing_key().to_file_string())?;
    let new = SecretKey::generate()?;
    let host = &app.state.runtime()?.host;
    // Before the rotation the host does not trust the new key.
    ensure!(host.load(&countersigned_by(&before, &new)).is_err());

    let now = now_ms();
    let rotated = key_rotation::rotate(
        app.db(),
        &old,
        &new,
        Retirement::Overlap(Duration::from_secs(3600)),
        now,
    )
    .await?;
    ensure!(
        rotated.countersigned == 1 && !rotated.compromised,
        "{rotated:?}"
    );
    // The catalog serves the package countersigned with the new key.
    let after = published(&app).await?;
    let key = after
        .signature
        .marketplace
        .as_ref()
        .context("countersigned")?
        .key;
    ensure!(key == new.public_key());
    // The statement signed by the old key introduces the new one: both load.
    ensure!(deliver_newest(&app).await?, "the introduction was refused");
    let held = host.newest_statement().context("a statement")?;
    ensure!(held.keys.contains(&new.public_key()) && held.keys.contains(&old.public_key()));
    ensure!(host.load(&after).is_ok());
    ensure!(host.load(&countersigned_by(&before, &old)).is_ok());

    // After the overlap, statements name the new key alone: the old one is out.
    statements::issue_as(app.db(), &new, now + 2 * HOUR_MS).await?;
    ensure!(
        deliver_newest(&app).await?,
        "the new key's statement was refused"
    );
    ensure!(host.newest_statement().map(|s| s.keys) == Some(vec![new.public_key()]));
    let refused = host.load(&countersigned_by(&before, &old));
    ensure!(
        matches!(
            refused,
            Err(plinth_host::Error::Trust(
                plinth_host::trust::TrustError::UntrustedMarketplaceKey { .. }
            ))
        ),
        "{refused:?}"
    );
    ensure!(host.load(&after).is_ok());
    // What the old key signs now is refused, statements included.
    statements::issue_as(app.db(), &old, now + 3 * HOUR_MS).await?;
    ensure!(
        !deliver_newest(&app).await?,
        "a statement by the retired key was taken"
    );

    let audit = app
        .get("/v1/audit", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        audit.body["items"].as_array().is_some_and(|items| items
            .iter()
            .any(|e| e["action"] == "marketplace_key.rotated")),
        "{}",
        audit.body
    );
    // The same new key twice is refused.
    let again = key_rotation::rotate(
        app.db(),
        &new,
        &new,
        Retirement::Overlap(Duration::from_secs(60)),
        now,
    )
    .await;
    ensure!(again.is_err());
    Ok(())
}

async fn a_compromised_key_is_out_at_once(app: TestApp) -> Result<()> {
    let (before, _) = world(&app).await?;
    let old = SecretKey::parse(&app.state.signing_key().to_file_string())?;
    let new = SecretKey::generate()?;
    let host = &app.state.runtime()?.host;
    let rotated =
        key_rotation::rotate(app.db(), &old, &new, Retirement::Compromised, now_ms()).await?;
    ensure!(rotated.compromised);
    // Signed by the old key (the only one hosts trusted), the statement names the new one
    // alone.
    ensure!(deliver_newest(&app).await?, "the revocation was refused");
    ensure!(host.newest_statement().map(|s| s.keys) == Some(vec![new.public_key()]));
    ensure!(host.load(&countersigned_by(&before, &old)).is_err());
    ensure!(host.load(&published(&app).await?).is_ok());
    // The server still signing with the compromised key: hosts refuse its statements.
    let stale = statements::issue(&app.state, now_ms()).await?;
    ensure!(
        statements::deliver(&app.state, &stale)
            .context("a host")?
            .is_err()
    );
    Ok(())
}
