//! Freeze and rollback defence, in process with a host, on both backends: the marketplace
//! issues signed state statements (at start and after every security yank, block and
//! unblock); the host keeps the newest, refuses a replayed older one, keeps refusing a
//! version a statement revoked when storage "forgets" the yank, and raises the alarm when its
//! newest statement has expired.

mod common;
mod publishing;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::statements;
use plinth_package::signing::statement::{SignedStatement, StateStatement};
use plinth_test_artifacts::COUNTER;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use common::TestApp;
use publishing::{Dev, developer, package_with, permissions_digest, submit_ok};

on_both_backends_with_host!(
    statements_are_signed_served_and_follow_every_security_yank,
    a_replayed_older_statement_is_refused,
    a_withheld_yank_does_not_bring_the_version_back,
    an_expired_statement_degrades_health,
);

const PLUGIN: &str = "labs.counter";

/// The operator, developer `labs` with counter 1.0.0 and 1.1.0 published, and tenant `acme`
/// with 1.1.0 installed (its previous version none).
struct World {
    operator: String,
}

async fn world(app: &TestApp) -> Result<World> {
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    for version in ["1.0.0", "1.1.0"] {
        release(app, &operator, &dev, version).await?;
    }
    let (_, admin) = app.user("admin@acme.example").await?;
    app.tenant(&admin, "acme").await?;
    let digest = permissions_digest(app, PLUGIN, "1.1.0").await?;
    app.post(
        "/v1/tenants/acme/installs",
        Some(&admin),
        json!({"plugin": PLUGIN, "version": "1.1.0", "permissions_digest": digest}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    Ok(World { operator })
}

async fn release(app: &TestApp, operator: &str, dev: &Dev, version: &str) -> Result<()> {
    let bytes = package_with(&COUNTER, PLUGIN, version, "", None, Some(&dev.key))?;
    let submission = submit_ok(app, &dev.token, bytes).await?;
    app.post(
        &format!("/v1/submissions/{submission}/decision"),
        Some(operator),
        json!({"decision": "approve", "reason": "Reviewed in a test."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    Ok(())
}

/// The newest statement `GET /v1/state` serves `operator`, once there is one.
async fn served(app: &TestApp, operator: &str) -> Result<SignedStatement> {
    for _ in 0..100 {
        let reply = app.get("/v1/state", Some(operator)).await?;
        if reply.status == StatusCode::OK {
            return Ok(serde_json::from_value(reply.body)?);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("no state statement was issued at start")
}

async fn security_yank(app: &TestApp, operator: &str, version: &str) -> Result<()> {
    app.post(
        &format!("/v1/plugins/{PLUGIN}/versions/{version}/yank"),
        Some(operator),
        json!({"reason_code": "security", "reason": "Leaks data.", "security": true}),
    )
    .await?
    .expect(StatusCode::OK)?;
    Ok(())
}

/// The version the host runs for acme, if any, and whether it is enabled.
async fn in_host(app: &TestApp) -> Result<Option<(String, bool)>> {
    let tenant: String = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'")
        .fetch_one(app.db().pool())
        .await?;
    Ok(app
        .state
        .runtime()?
        .host
        .installs(&tenant)
        .into_iter()
        .find(|info| info.plugin == PLUGIN)
        .map(|info| (info.version, info.enabled)))
}

async fn health(app: &TestApp) -> Result<Value> {
    Ok(app
        .get("/healthz", None)
        .await?
        .expect(StatusCode::OK)?
        .body)
}

async fn statements_are_signed_served_and_follow_every_security_yank(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let first = served(&app, &w.operator).await?;
    // It names private plugins: operators only.
    app.get("/v1/state", None)
        .await?
        .expect(StatusCode::UNAUTHORIZED)?;
    let (_, someone) = app.user("someone@example.com").await?;
    app.get("/v1/state", Some(&someone))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    let key = app.state.public_key();
    let stated = first.verify(&[key])?;
    ensure!(
        stated.revoked.is_empty() && stated.keys == [key],
        "{stated:?}"
    );
    ensure!(health(&app).await?["state_statement"] == "fresh");

    security_yank(&app, &w.operator, "1.1.0").await?;
    let after = served(&app, &w.operator).await?;
    let stated = after.verify(&[key])?;
    ensure!(stated.sequence > first.statement.sequence, "{stated:?}");
    ensure!(stated.revokes(PLUGIN, "1.1.0") && !stated.revokes(PLUGIN, "1.0.0"));
    // The host took it in: it holds the same statement.
    let held = app
        .state
        .runtime()?
        .host
        .newest_statement()
        .context("held")?;
    ensure!(held == *stated);
    // Blocking revokes every version; unblocking lifts it in the next statement.
    app.post(
        &format!("/v1/plugins/{PLUGIN}/block"),
        Some(&w.operator),
        json!({"reason_code": "malicious", "reason": "Mines coins."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(
        served(&app, &w.operator)
            .await?
            .statement
            .revokes(PLUGIN, "1.0.0")
    );
    app.post(
        &format!("/v1/plugins/{PLUGIN}/unblock"),
        Some(&w.operator),
        json!({"reason": "False alarm."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let lifted = served(&app, &w.operator).await?;
    ensure!(
        !lifted.statement.revokes(PLUGIN, "1.0.0") && lifted.statement.revokes(PLUGIN, "1.1.0")
    );
    // The unblocked install runs again (the host had the lifting statement before switching
    // it on).
    ensure!(
        in_host(&app).await? == Some(("1.0.0".to_owned(), true)),
        "{:?}",
        in_host(&app).await?
    );
    Ok(())
}

async fn a_replayed_older_statement_is_refused(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let before = served(&app, &w.operator).await?;
    security_yank(&app, &w.operator, "1.1.0").await?;
    let after = served(&app, &w.operator).await?;
    // Storage (or a replica) serves the statement from before the yank as the newest.
    sqlx::query("DELETE FROM state_statements WHERE sequence > $1")
        .bind(i64::try_from(before.statement.sequence)?)
        .execute(app.db().pool())
        .await?;
    let stored = statements::latest(app.db()).await?.context("a statement")?;
    ensure!(stored == before);
    let refused = statements::deliver(&app.state, &stored).context("a host")?;
    ensure!(refused.is_err(), "{refused:?}");
    let metrics = app.get("/metrics", None).await?.expect(StatusCode::OK)?;
    let text = String::from_utf8(metrics.bytes)?;
    ensure!(
        text.contains("plinth_state_statements_refused_total 1"),
        "{text}"
    );
    ensure!(text.contains(&format!(
        "plinth_state_statement_sequence {}",
        after.statement.sequence
    )));
    // The host still holds the newer statement and its revocation.
    let host = &app.state.runtime()?.host;
    ensure!(host.newest_statement().map(|s| s.sequence) == Some(after.statement.sequence));
    ensure!(host.revoked_by_statement(PLUGIN, "1.1.0") == Some(after.statement.sequence));
    Ok(())
}

async fn a_withheld_yank_does_not_bring_the_version_back(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    security_yank(&app, &w.operator, "1.1.0").await?;
    ensure!(in_host(&app).await? == Some(("1.0.0".to_owned(), true)));
    // Storage "forgets" the yank and puts the install back on 1.1.0.
    sqlx::query("UPDATE versions SET yanked_at = NULL, yank_security = 0 WHERE plugin_id = $1")
        .bind(PLUGIN)
        .execute(app.db().pool())
        .await?;
    sqlx::query("UPDATE installs SET version = '1.1.0' WHERE plugin_id = $1")
        .bind(PLUGIN)
        .execute(app.db().pool())
        .await?;
    // Bringing the host in line with storage cannot load the revoked version: the sync
    // applies nothing (the install that does not load is logged and skipped) and the host
    // keeps running 1.0.0.
    let synced = plinth_marketplace::installs::sync::sync(&app.state, None, Some(PLUGIN)).await?;
    ensure!(synced == 0, "{synced} installs applied");
    ensure!(
        in_host(&app).await? == Some(("1.0.0".to_owned(), true)),
        "the host runs {:?}",
        in_host(&app).await?
    );
    // Nor can a new install of it, whatever the catalog says now: 409 version_revoked.
    let (_, admin) = app.user("admin@globex.example").await?;
    app.tenant(&admin, "globex").await?;
    let digest = permissions_digest(&app, PLUGIN, "1.1.0").await?;
    app.post(
        "/v1/tenants/globex/installs",
        Some(&admin),
        json!({"plugin": PLUGIN, "version": "1.1.0", "permissions_digest": digest}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "version_revoked")?;
    Ok(())
}

async fn an_expired_statement_degrades_health(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let current = served(&app, &w.operator).await?;
    ensure!(health(&app).await?["status"] == "ok");
    // A statement issued long ago and never followed by another: past its expiry.
    let stale = StateStatement::new(
        current.statement.sequence + 1,
        1_000_000,
        3600,
        Vec::new(),
        current.statement.installs_digest.clone(),
        vec![app.state.public_key()],
    )
    .sign(app.state.signing_key());
    // As if the marketplace had issued it and then stopped speaking.
    sqlx::query(
        "INSERT INTO state_statements (sequence, issued_at, expires_at, body) VALUES ($1, $2, $3, $4)",
    )
    .bind(i64::try_from(stale.statement.sequence)?)
    .bind(stale.statement.issued_at)
    .bind(stale.statement.expires_at)
    .bind(serde_json::to_string(&stale)?)
    .execute(app.db().pool())
    .await?;
    statements::deliver(&app.state, &stale)
        .context("a host")?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let degraded = health(&app).await?;
    ensure!(
        degraded["status"] == "degraded" && degraded["state_statement"] == "expired",
        "{degraded}"
    );
    let metrics = app.get("/metrics", None).await?.expect(StatusCode::OK)?;
    ensure!(String::from_utf8(metrics.bytes)?.contains("plinth_state_statement_expired 1"));
    // A statement by a key the host does not trust is refused, however new.
    let stranger = plinth_package::SecretKey::generate()?;
    let forged = StateStatement::new(
        current.statement.sequence + 50,
        plinth_marketplace::clock::now_ms() / 1000,
        3600,
        Vec::new(),
        String::new(),
        vec![stranger.public_key()],
    )
    .sign(&stranger);
    ensure!(
        statements::deliver(&app.state, &forged)
            .context("a host")?
            .is_err()
    );
    // The next issued statement makes the host fresh again.
    let fresh = statements::issue(&app.state, plinth_marketplace::clock::now_ms()).await?;
    statements::deliver(&app.state, &fresh)
        .context("a host")?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(health(&app).await?["state_statement"] == "fresh");
    let row = sqlx::query("SELECT COUNT(*) AS n FROM state_statements")
        .fetch_one(app.db().pool())
        .await?;
    ensure!(row.try_get::<i64, _>("n")? >= 2);
    Ok(())
}
