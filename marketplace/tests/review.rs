//! The review queue and decisions over HTTP, on both backends.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_package::Package;
use plinth_test_artifacts::HELLO;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use common::TestApp;
use publishing::{Dev, count, developer, hello, package_with, submit_ok};

on_both_backends!(
    only_reviewers_see_the_queue,
    queue_is_oldest_first_with_permission_diff,
    nobody_reviews_their_own_publisher,
    decisions_need_a_reason,
    approval_countersigns_and_publishes,
    rejection_carries_its_reason_code,
    two_decisions_at_once_one_wins,
    request_changes_is_recorded,
);

async fn decide(app: &TestApp, token: &str, id: &str, body: Value) -> Result<common::Reply> {
    app.post(&format!("/v1/submissions/{id}/decision"), Some(token), body)
        .await
}

async fn queue(app: &TestApp, token: &str) -> Result<Vec<Value>> {
    let reply = app
        .get("/v1/review/queue", Some(token))
        .await?
        .expect(StatusCode::OK)?;
    Ok(reply.body["items"].as_array().context("items")?.clone())
}

/// An operator, a reviewer (token) and a developer with publisher `acme`.
async fn setup(app: &TestApp) -> Result<(String, String, Dev)> {
    let operator = app.operator().await?;
    let (_, reviewer) = app.reviewer(&operator, "rita@example.com").await?;
    let dev = developer(app, "ada@example.com", "acme").await?;
    Ok((operator, reviewer, dev))
}

async fn only_reviewers_see_the_queue(app: TestApp) -> Result<()> {
    let (operator, reviewer, dev) = setup(&app).await?;
    app.get("/v1/review/queue", Some(&dev.token))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.get("/v1/review/queue", None)
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    let id = submit_ok(&app, &dev.token, hello(&dev, "1.0.0")?).await?;
    decide(
        &app,
        &dev.token,
        &id,
        json!({"decision": "approve", "reason": "looks good"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    ensure!(queue(&app, &reviewer).await?.len() == 1);
    ensure!(queue(&app, &operator).await?.len() == 1);
    Ok(())
}

async fn queue_is_oldest_first_with_permission_diff(app: TestApp) -> Result<()> {
    let (_, reviewer, dev) = setup(&app).await?;
    let first = submit_ok(&app, &dev.token, hello(&dev, "1.0.0")?).await?;
    let other = package_with(&HELLO, "acme.other", "0.1.0", "", None, Some(&dev.key))?;
    let second = submit_ok(&app, &dev.token, other).await?;
    let items = queue(&app, &reviewer).await?;
    ensure!(items.len() == 2, "{items:?}");
    ensure!(items[0]["id"] == first.as_str() && items[1]["id"] == second.as_str());
    let item = &items[0];
    ensure!(
        item["plugin"] == "acme.hello"
            && item["version"] == "1.0.0"
            && item["publisher"] == "acme"
            && item["submitted_at"].is_string()
            && item["size_bytes"].as_i64().is_some_and(|n| n > 0)
            && item["readme"].as_str().unwrap_or("").contains("Hello")
            && item["report"]["findings"].is_array(),
        "{item}"
    );
    // A first version: everything it asks for is added.
    ensure!(
        item["permission_diff"]["added"] == item["permissions"]
            && item["permission_diff"]["removed"] == json!([])
            && item["permissions"]
                .as_array()
                .is_some_and(|p| p.iter().any(|g| g["capability"] == "events.subscribe")),
        "{item}"
    );

    // Approve 1.0.0, then submit 1.1.0 asking for kv too: the diff shows only kv added.
    decide(
        &app,
        &reviewer,
        &first,
        json!({"decision": "approve", "reason": "fine"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let next = package_with(
        &HELLO,
        "acme.hello",
        "1.1.0",
        "kv = { max-bytes = 1024 }",
        None,
        Some(&dev.key),
    )?;
    let third = submit_ok(&app, &dev.token, next).await?;
    let items = queue(&app, &reviewer).await?;
    let item = items
        .iter()
        .find(|i| i["id"] == third.as_str())
        .context("1.1.0 in the queue")?;
    let added = item["permission_diff"]["added"]
        .as_array()
        .context("added")?;
    ensure!(
        added.len() == 1
            && added[0]["capability"] == "kv"
            && added[0]["sentence"].is_string()
            && added[0]["risk"] == "low",
        "{item}"
    );
    ensure!(item["permission_diff"]["removed"] == json!([]), "{item}");
    Ok(())
}

async fn nobody_reviews_their_own_publisher(app: TestApp) -> Result<()> {
    let (operator, _, dev) = setup(&app).await?;
    // The developer is made a reviewer: still not of their own publisher's submissions.
    app.put(
        &format!("/v1/accounts/{}/roles", dev.user_id),
        Some(&operator),
        json!({"roles": ["reviewer"]}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let id = submit_ok(&app, &dev.token, hello(&dev, "1.0.0")?).await?;
    decide(
        &app,
        &dev.token,
        &id,
        json!({"decision": "approve", "reason": "my own work is great"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "self_review")?;
    let items = queue(&app, &dev.token).await?;
    ensure!(
        items.len() == 1 && items[0]["own_publisher"] == true,
        "{items:?}"
    );
    let status = app
        .get(&format!("/v1/submissions/{id}"), Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(status.body["status"] == "in_review", "{}", status.body);
    Ok(())
}

async fn decisions_need_a_reason(app: TestApp) -> Result<()> {
    let (_, reviewer, dev) = setup(&app).await?;
    let id = submit_ok(&app, &dev.token, hello(&dev, "1.0.0")?).await?;
    decide(&app, &reviewer, &id, json!({"decision": "approve"}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "reason_required")?;
    decide(
        &app,
        &reviewer,
        &id,
        json!({"decision": "approve", "reason": "   "}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "reason_required")?;
    decide(
        &app,
        &reviewer,
        &id,
        json!({"decision": "maybe", "reason": "hmm"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_decision")?;
    decide(
        &app,
        &reviewer,
        "no-such-submission",
        json!({"decision": "approve", "reason": "ok"}),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    ensure!(count(&app, "notifications").await? == 0);
    Ok(())
}

async fn approval_countersigns_and_publishes(app: TestApp) -> Result<()> {
    let (_, reviewer, dev) = setup(&app).await?;
    let id = submit_ok(&app, &dev.token, hello(&dev, "1.0.0")?).await?;
    let decided = decide(
        &app,
        &reviewer,
        &id,
        json!({"decision": "approve", "reason": "does what it says"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(
        decided.body["status"] == "approved"
            && decided.body["decision"] == "approve"
            && decided.body["reason"] == "does what it says"
            && decided.body["decided_at"].is_string()
            && decided.body["queue_position"].is_null()
            && decided.body["median_review_seconds"].is_i64(),
        "{}",
        decided.body
    );
    // The version row points at a countersigned artifact that verifies with the
    // marketplace's key and carries the same content.
    let row = sqlx::query(
        "SELECT v.artifact_sha256, v.digest, a.bytes FROM versions v \
         JOIN artifacts a ON a.sha256 = v.artifact_sha256 \
         WHERE v.plugin_id = 'acme.hello' AND v.version = '1.0.0'",
    )
    .fetch_one(app.db().pool())
    .await?;
    let bytes: Vec<u8> = row.try_get("bytes")?;
    let package = Package::from_bytes(&bytes)?;
    package.verify_countersignature(&app.state.public_key())?;
    package.verify_developer(&dev.key.public_key())?;
    let digest: String = row.try_get("digest")?;
    ensure!(digest == package.digest().to_string());
    ensure!(count(&app, "versions").await? == 1);
    let plugin = sqlx::query("SELECT latest_version FROM plugins WHERE id = 'acme.hello'")
        .fetch_one(app.db().pool())
        .await?;
    ensure!(plugin.try_get::<String, _>("latest_version")? == "1.0.0");

    // The publisher is told; the queue is empty; the median is known.
    let inbox = app
        .get("/v1/publishers/acme/notifications", Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    let items = inbox.body["items"].as_array().context("items")?;
    ensure!(items.len() == 1, "{}", inbox.body);
    ensure!(
        items[0]["kind"] == "review_decided"
            && items[0]["payload"]["submission"] == id.as_str()
            && items[0]["payload"]["decision"] == "approve"
            && items[0]["read"] == false
            && items[0]["message"]
                .as_str()
                .unwrap_or("")
                .contains("acme.hello"),
        "{}",
        inbox.body
    );
    ensure!(queue(&app, &reviewer).await?.is_empty());
    let (_, stranger) = app.user("eve@example.com").await?;
    app.get("/v1/publishers/acme/notifications", Some(&stranger))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

async fn rejection_carries_its_reason_code(app: TestApp) -> Result<()> {
    let (_, reviewer, dev) = setup(&app).await?;
    let id = submit_ok(&app, &dev.token, hello(&dev, "1.0.0")?).await?;
    let missing = decide(
        &app,
        &reviewer,
        &id,
        json!({"decision": "reject", "reason": "no"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_reason_code")?;
    ensure!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("permissions_unjustified"),
        "names the list: {}",
        missing.body
    );
    decide(
        &app,
        &reviewer,
        &id,
        json!({"decision": "reject", "reason": "no", "reason_code": "ugly"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_reason_code")?;
    let rejected = decide(
        &app,
        &reviewer,
        &id,
        json!({"decision": "reject", "reason": "asks for far too much", "reason_code": "permissions_unjustified"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(
        rejected.body["status"] == "rejected"
            && rejected.body["reason_code"] == "permissions_unjustified",
        "{}",
        rejected.body
    );
    let seen = app
        .get(&format!("/v1/submissions/{id}"), Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        seen.body["decision"] == "reject"
            && seen.body["reason"] == "asks for far too much"
            && seen.body["reason_code"] == "permissions_unjustified",
        "{}",
        seen.body
    );
    ensure!(count(&app, "versions").await? == 0);
    // A rejected version frees the number: the fixed package may reuse it.
    let fixed = package_with(
        &HELLO,
        "acme.hello",
        "1.0.0",
        "",
        Some("fixed"),
        Some(&dev.key),
    )?;
    submit_ok(&app, &dev.token, fixed).await?;
    Ok(())
}

async fn two_decisions_at_once_one_wins(app: TestApp) -> Result<()> {
    let (operator, reviewer, dev) = setup(&app).await?;
    let id = submit_ok(&app, &dev.token, hello(&dev, "1.0.0")?).await?;
    let (a, b) = tokio::join!(
        decide(
            &app,
            &reviewer,
            &id,
            json!({"decision": "approve", "reason": "good"})
        ),
        decide(
            &app,
            &operator,
            &id,
            json!({"decision": "reject", "reason": "bad", "reason_code": "broken"})
        ),
    );
    let (a, b) = (a?, b?);
    let mut statuses = [a.status, b.status];
    statuses.sort();
    ensure!(
        statuses == [StatusCode::OK, StatusCode::CONFLICT],
        "{statuses:?}: {} / {}",
        a.body,
        b.body
    );
    let loser = if a.status == StatusCode::CONFLICT {
        &a
    } else {
        &b
    };
    ensure!(loser.code() == "not_in_review", "{}", loser.body);
    ensure!(count(&app, "notifications").await? == 1);
    let winner_approved = [&a, &b]
        .iter()
        .any(|r| r.status == StatusCode::OK && r.body["status"] == "approved");
    ensure!(count(&app, "versions").await? == i64::from(winner_approved));
    // And later, too.
    decide(
        &app,
        &reviewer,
        &id,
        json!({"decision": "approve", "reason": "again"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "not_in_review")?;
    Ok(())
}

async fn request_changes_is_recorded(app: TestApp) -> Result<()> {
    let (_, reviewer, dev) = setup(&app).await?;
    let id = submit_ok(&app, &dev.token, hello(&dev, "1.0.0")?).await?;
    let later = submit_ok(
        &app,
        &dev.token,
        package_with(&HELLO, "acme.later", "1.0.0", "", None, Some(&dev.key))?,
    )
    .await?;
    let before = app
        .get(&format!("/v1/submissions/{later}"), Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        before.body["queue_position"] == 2 && before.body["median_review_seconds"].is_null(),
        "{}",
        before.body
    );
    decide(
        &app,
        &reviewer,
        &id,
        json!({"decision": "request_changes", "reason": "add a README section on config"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let after = app
        .get(&format!("/v1/submissions/{later}"), Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        after.body["queue_position"] == 1 && after.body["median_review_seconds"].is_i64(),
        "{}",
        after.body
    );
    let decided = app
        .get(&format!("/v1/submissions/{id}"), Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        decided.body["status"] == "changes_requested"
            && decided.body["decision"] == "request_changes",
        "{}",
        decided.body
    );
    let inbox = app
        .get("/v1/publishers/acme/notifications", Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        inbox.body["items"][0]["payload"]["decision"] == "request_changes",
        "{}",
        inbox.body
    );
    Ok(())
}
