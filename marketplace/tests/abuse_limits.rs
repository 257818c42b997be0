//! Sprawl and storage floods, over HTTP on both backends: an account creates at most its
//! limit of tenants; a publisher has at most its limit of submissions in review and of stored
//! package bytes; a package rejected by validation is not kept (its report is). Each refusal is
//! a 409 naming the limit, with nothing stored.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::Settings;
use plinth_marketplace::settings::PublisherLimits;
use plinth_test_artifacts::UNDECLARED_HTTP;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;

use common::TestApp;
use publishing::{Dev, count, developer, hello, package_with, submit};

on_both_backends!(an_account_creates_at_most_three_tenants);

on_both_backends_with_settings!(review_limit_of_two =>
    a_publisher_has_at_most_its_limit_in_review,
    packages_rejected_by_validation_are_not_kept,
);

on_both_backends_with_settings!(room_for_one_package => a_publisher_stores_at_most_its_limit_of_bytes);

fn review_limit_of_two() -> Settings {
    Settings {
        publisher_limits: PublisherLimits {
            max_in_review: 2,
            ..PublisherLimits::default()
        },
        ..Settings::default()
    }
}

/// Room for one hello package (about 20 KiB) but not two.
fn room_for_one_package() -> Settings {
    Settings {
        publisher_limits: PublisherLimits {
            max_stored_bytes: 64 * 1024,
            ..PublisherLimits::default()
        },
        ..Settings::default()
    }
}

/// A developer with publisher `ns` and two hello versions in review.
async fn two_in_review(app: &TestApp, ns: &str) -> Result<Dev> {
    let dev = developer(app, "ada@example.com", ns).await?;
    for version in ["1.0.0", "1.1.0"] {
        submit(app, &dev.token, hello(&dev, version)?)
            .await?
            .expect(StatusCode::CREATED)?;
    }
    Ok(dev)
}

async fn tenants(app: &TestApp) -> Result<i64> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM tenants")
        .fetch_one(app.db().pool())
        .await?
        .try_get("n")?)
}

async fn an_account_creates_at_most_three_tenants(app: TestApp) -> Result<()> {
    let (_, token) = app.user("ada@example.com").await?;
    let create = |slug: &'static str, token: String| {
        let app = &app;
        async move {
            app.post(
                "/v1/tenants",
                Some(&token),
                json!({"slug": slug, "name": slug}),
            )
            .await
        }
    };
    for slug in ["one", "two", "three"] {
        create(slug, token.clone())
            .await?
            .expect(StatusCode::CREATED)?;
    }
    let refused = create("four", token.clone())
        .await?
        .expect_error(StatusCode::CONFLICT, "tenant_limit_reached")?;
    ensure!(
        refused.body["error"]["details"] == json!({"limit": 3, "created": 3})
            && refused.message().contains("limit is 3"),
        "{}",
        refused.body
    );
    ensure!(tenants(&app).await? == 3, "the fourth tenant was stored");
    // A deleted tenant still counts until it is purged: deleting does not make room.
    app.delete("/v1/tenants/three", Some(&token))
        .await?
        .expect(StatusCode::OK)?;
    create("four", token.clone())
        .await?
        .expect_error(StatusCode::CONFLICT, "tenant_limit_reached")?;
    // Another account has its own limit; an operator has none.
    let (_, other) = app.user("bob@example.com").await?;
    create("bobs", other).await?.expect(StatusCode::CREATED)?;
    let operator = app.operator().await?;
    for slug in ["op-one", "op-two", "op-three", "op-four"] {
        create(slug, operator.clone())
            .await?
            .expect(StatusCode::CREATED)?;
    }
    ensure!(tenants(&app).await? == 8);
    Ok(())
}

async fn a_publisher_has_at_most_its_limit_in_review(app: TestApp) -> Result<()> {
    let dev = two_in_review(&app, "acme").await?;
    let refused = submit(&app, &dev.token, hello(&dev, "1.2.0")?)
        .await?
        .expect_error(StatusCode::CONFLICT, "review_limit_reached")?;
    ensure!(
        refused.body["error"]["details"] == json!({"limit": 2, "in_review": 2}),
        "{}",
        refused.body
    );
    ensure!(
        (
            count(&app, "submissions").await?,
            count(&app, "artifacts").await?
        ) == (2, 2),
        "the third submission was stored"
    );
    // A decision makes room.
    let operator = app.operator().await?;
    let queue = app
        .get("/v1/review/queue", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    let first = queue.body["items"][0]["id"].as_str().context("queued")?;
    app.post(
        &format!("/v1/submissions/{first}/decision"),
        Some(&operator),
        json!({"decision": "reject", "reason": "Broken in a test.", "reason_code": "broken"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    submit(&app, &dev.token, hello(&dev, "1.2.0")?)
        .await?
        .expect(StatusCode::CREATED)?;
    Ok(())
}

async fn packages_rejected_by_validation_are_not_kept(app: TestApp) -> Result<()> {
    let dev = two_in_review(&app, "fixtures").await?;
    // The review limit is reached, but a package that fails validation is still answered with
    // its report, and only the report is kept.
    for n in 0..4 {
        let bytes = package_with(
            &UNDECLARED_HTTP,
            "fixtures.undeclared-http",
            &format!("0.{n}.0"),
            "",
            None,
            Some(&dev.key),
        )?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let reply = submit(&app, &dev.token, bytes)
            .await?
            .expect(StatusCode::CREATED)?;
        ensure!(
            reply.body["status"] == "rejected_by_validation"
                && reply.body["report"]["findings"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f["severity"] == "error")),
            "{}",
            reply.body
        );
        let kept: i64 = sqlx::query("SELECT COUNT(*) AS n FROM artifacts WHERE sha256 = $1")
            .bind(&sha256)
            .fetch_one(app.db().pool())
            .await?
            .try_get("n")?;
        ensure!(kept == 0, "the rejected package was stored");
    }
    ensure!(
        (
            count(&app, "submissions").await?,
            count(&app, "artifacts").await?
        ) == (6, 2),
        "only the two packages in review are stored"
    );
    Ok(())
}

async fn a_publisher_stores_at_most_its_limit_of_bytes(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let first = hello(&dev, "1.0.0")?;
    ensure!(
        (16 * 1024..64 * 1024).contains(&first.len()),
        "the hello package is {} bytes",
        first.len()
    );
    submit(&app, &dev.token, first)
        .await?
        .expect(StatusCode::CREATED)?;
    let refused = submit(&app, &dev.token, hello(&dev, "1.1.0")?)
        .await?
        .expect_error(StatusCode::CONFLICT, "storage_limit_reached")?;
    let details = &refused.body["error"]["details"];
    ensure!(
        details["limit_bytes"] == 64 * 1024
            && details["stored_bytes"].as_u64().is_some_and(|n| n > 0)
            && refused.message().contains("65536"),
        "{}",
        refused.body
    );
    ensure!(
        (
            count(&app, "submissions").await?,
            count(&app, "artifacts").await?
        ) == (1, 1),
        "the second package was stored"
    );
    // Another publisher has its own room.
    let other = developer(&app, "bob@example.com", "labs").await?;
    submit(&app, &other.token, hello(&other, "1.0.0")?)
        .await?
        .expect(StatusCode::CREATED)?;
    Ok(())
}
