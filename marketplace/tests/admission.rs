//! The admission gate every entrance that runs plugin code passes, on both backends with a
//! host: plugin HTTP counts against the monthly quota and the API rate like events; an event's
//! cascade ends at its plan's budget or the month's quota with exactly the calls that ran
//! metered; a tenant past its share of the host gets 503 `capacity` while another tenant's
//! calls run; a call larger than the whole share is refused for good.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::{HELLO, HTTP_ECHO, NOISY, TestPlugin};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::TestApp;
use publishing::{Dev, developer, package_with, submit_ok};

on_both_backends_with_host!(
    plugin_http_counts_against_the_quota_and_the_rate,
    a_storm_ends_at_the_events_budget_then_at_the_months_quota,
    a_tenant_past_its_share_gets_capacity_errors_while_another_runs,
);

/// Publishes `plugin` as `labs.<name>` 0.1.0, approved by `operator`.
async fn publish(
    app: &TestApp,
    dev: &Dev,
    operator: &str,
    plugin: &TestPlugin,
    name: &str,
) -> Result<()> {
    let id = format!("labs.{name}");
    let bytes = package_with(plugin, &id, "0.1.0", "", None, Some(&dev.key))?;
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

/// Creates tenant `slug` (on `plan`, made by the operator) for a new owner, installs `plugins`
/// and returns the tenant's API key.
async fn tenant(
    app: &TestApp,
    operator: &str,
    slug: &str,
    plan: &str,
    plugins: &[&str],
) -> Result<String> {
    let email = format!("owner@{slug}.example");
    let (_, owner) = app.user(&email).await?;
    app.post(
        "/v1/tenants",
        Some(operator),
        json!({"slug": slug, "name": slug, "plan": plan}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    app.post(
        &format!("/v1/tenants/{slug}/members"),
        Some(operator),
        json!({"email": email, "role": "admin"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    for plugin in plugins {
        let shown = app
            .get(&format!("/v1/plugins/{plugin}/versions/0.1.0"), None)
            .await?
            .expect(StatusCode::OK)?;
        app.post(
            &format!("/v1/tenants/{slug}/installs"),
            Some(&owner),
            json!({"plugin": plugin, "permissions_digest": shown.body["permissions_digest"]}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    }
    let made = app
        .post(
            &format!("/v1/tenants/{slug}/api-keys"),
            Some(&owner),
            json!({"name": "backend"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    Ok(made.body["key"].as_str().context("key")?.to_owned())
}

/// `PUT /v1/plans/{plan}` with `change`.
async fn set_plan(app: &TestApp, operator: &str, plan: &str, change: Value) -> Result<()> {
    app.put(&format!("/v1/plans/{plan}"), Some(operator), change)
        .await?
        .expect(StatusCode::OK)?;
    Ok(())
}

/// Sends an event; returns status, `Retry-After` and body.
async fn event(
    app: &TestApp,
    key: &str,
    slug: &str,
    topic: &str,
    payload: Value,
) -> Result<(StatusCode, Option<u64>, Value)> {
    let response = app
        .client
        .post(format!("{}/v1/tenants/{slug}/events", app.base))
        .bearer_auth(key)
        .json(&json!({"topic": topic, "payload": payload}))
        .send()
        .await?;
    answer(response).await
}

async fn answer(response: reqwest::Response) -> Result<(StatusCode, Option<u64>, Value)> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, retry_after, body))
}

/// The tenant's invocations this month as its usage route shows them.
async fn invocations(app: &TestApp, operator: &str, slug: &str) -> Result<i64> {
    let usage = app
        .get(&format!("/v1/tenants/{slug}/usage"), Some(operator))
        .await?
        .expect(StatusCode::OK)?;
    usage.body["usage"]["invocations"]
        .as_i64()
        .with_context(|| format!("usage: {}", usage.body))
}

async fn plugin_http_counts_against_the_quota_and_the_rate(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    let dev = developer(&app, "dev@labs.example", "labs").await?;
    publish(&app, &dev, &operator, &HTTP_ECHO, "echo").await?;
    set_plan(&app, &operator, "free", json!({"invocations_per_month": 3})).await?;
    let key = tenant(&app, &operator, "acme", "free", &["labs.echo"]).await?;
    let get = |path: &str| {
        app.client
            .post(format!("{}/p/acme/labs.echo{path}", app.base))
            .bearer_auth(&key)
            .body("ping")
            .send()
    };
    for _ in 0..3 {
        let (status, _, _) = answer(get("/x").await?).await?;
        ensure!(status == StatusCode::OK, "{status}");
    }
    let (status, retry_after, body) = answer(get("/x").await?).await?;
    ensure!(
        status == StatusCode::TOO_MANY_REQUESTS && body["error"]["code"] == "quota_exceeded",
        "{status} {body}"
    );
    ensure!(
        retry_after.is_some_and(|s| s >= 1),
        "Retry-After: {retry_after:?}"
    );
    ensure!(invocations(&app, &operator, "acme").await? == 3);

    // The API rate: the gate counts plugin HTTP against the same bucket as the other routes.
    let key = tenant(&app, &operator, "beta", "pro", &["labs.echo"]).await?;
    set_plan(
        &app,
        &operator,
        "pro",
        json!({"api_requests_per_minute": 2}),
    )
    .await?;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = app
            .client
            .put(format!("{}/p/beta/labs.echo/y", app.base))
            .bearer_auth(&key)
            .send()
            .await?;
        statuses.push(answer(response).await?);
    }
    ensure!(
        statuses[..2].iter().all(|(s, _, _)| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let (status, retry_after, body) = &statuses[2];
    ensure!(
        *status == StatusCode::TOO_MANY_REQUESTS && body["error"]["code"] == "rate_limited",
        "{statuses:?}"
    );
    ensure!(retry_after.is_some_and(|s| s >= 1));
    // The refused request ran nothing.
    ensure!(invocations(&app, &operator, "beta").await? == 2);
    Ok(())
}

async fn a_storm_ends_at_the_events_budget_then_at_the_months_quota(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    let dev = developer(&app, "dev@labs.example", "labs").await?;
    publish(&app, &dev, &operator, &NOISY, "noisy").await?;
    set_plan(
        &app,
        &operator,
        "free",
        json!({"max_invocations_per_event": 20, "invocations_per_month": 50}),
    )
    .await?;
    let key = tenant(&app, &operator, "acme", "free", &["labs.noisy"]).await?;

    let (status, _, body) = event(&app, &key, "acme", "storm", json!({"pad": 64})).await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    ensure!(body["invocations"] == 20, "{body}");
    let results = body["results"].as_array().context("results")?;
    ensure!(
        results.len() == 21,
        "twenty calls and the end: {}",
        results.len()
    );
    ensure!(results[..20].iter().all(|r| r["error"].is_null()), "{body}");
    let end = &results[20]["error"];
    ensure!(end["code"] == "event_budget_exhausted", "{end}");
    ensure!(
        end["message"]
            .as_str()
            .is_some_and(|m| m.contains("20 invocations")),
        "{end}"
    );
    ensure!(invocations(&app, &operator, "acme").await? == 20);

    // 30 left this month: the next storm runs 20 again, the one after that 10 and ends on the
    // quota, and the next is refused at the door.
    let (_, _, body) = event(&app, &key, "acme", "storm", json!({})).await?;
    ensure!(body["invocations"] == 20, "{body}");
    let (status, _, body) = event(&app, &key, "acme", "storm", json!({})).await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    ensure!(body["invocations"] == 10, "{body}");
    let last = body["results"]
        .as_array()
        .and_then(|r| r.last())
        .context("results")?;
    ensure!(last["error"]["code"] == "quota_exceeded", "{last}");
    ensure!(invocations(&app, &operator, "acme").await? == 50);
    let (status, retry_after, body) = event(&app, &key, "acme", "storm", json!({})).await?;
    ensure!(
        status == StatusCode::TOO_MANY_REQUESTS && body["error"]["code"] == "quota_exceeded",
        "{status} {body}"
    );
    ensure!(retry_after.is_some());
    ensure!(invocations(&app, &operator, "acme").await? == 50);
    Ok(())
}

async fn a_tenant_past_its_share_gets_capacity_errors_while_another_runs(
    app: TestApp,
) -> Result<()> {
    let operator = app.operator().await?;
    let dev = developer(&app, "dev@labs.example", "labs").await?;
    publish(&app, &dev, &operator, &NOISY, "noisy").await?;
    publish(&app, &dev, &operator, &HELLO, "hello").await?;
    // One call at a time, four waiting; each sleeper takes 800 ms and a waiter waits at most
    // the host's 2 s.
    set_plan(
        &app,
        &operator,
        "free",
        json!({"max_concurrent_calls": 1, "timeout_ms": 5000}),
    )
    .await?;
    let noisy = tenant(&app, &operator, "acme", "free", &["labs.noisy"]).await?;
    let hello = tenant(&app, &operator, "beta", "pro", &["labs.hello"]).await?;

    let sleepers: Vec<_> = (0..12)
        .map(|_| {
            let client = app.client.clone();
            let url = format!("{}/v1/tenants/acme/events", app.base);
            let key = noisy.clone();
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({"topic": "sleep", "payload": {"ms": 800}}))
                    .send()
                    .await?;
                answer(response).await
            })
        })
        .collect();
    for _ in 0..5 {
        let (status, _, body) = event(&app, &hello, "beta", "greet", json!("Ada")).await?;
        ensure!(
            status == StatusCode::OK && body["results"][0]["output"] == "Hello, Ada!",
            "{status} {body}"
        );
    }
    let (mut ran, mut refused) = (0, 0);
    for sleeper in sleepers {
        let (status, retry_after, body) = sleeper.await??;
        match status {
            StatusCode::OK if body["results"][0]["error"].is_null() => ran += 1,
            StatusCode::SERVICE_UNAVAILABLE if body["error"]["code"] == "capacity" => {
                ensure!(retry_after.is_some_and(|s| s >= 1), "{body}");
                ensure!(
                    body["error"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("concurrent calls")),
                    "{body}"
                );
                refused += 1;
            }
            _ => anyhow::bail!("only results and capacity refusals: {status} {body}"),
        }
    }
    ensure!(ran >= 1 && refused >= 1, "ran {ran}, refused {refused}");
    // Refusals are not the plugin's fault: its breaker stays closed.
    let installs = app
        .get("/v1/tenants/acme/installs", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    let breaker = &installs.body["items"][0]["breaker"];
    ensure!(breaker["state"] == "closed", "{}", installs.body);
    ensure!(
        breaker["last_errors"].as_array().is_some_and(Vec::is_empty),
        "{}",
        installs.body
    );

    // A share smaller than one call's memory limit never runs a call, not even the install's
    // hook: 503 without Retry-After, naming the memory.
    set_plan(
        &app,
        &operator,
        "free",
        json!({"memory_share_mb": 32, "memory_mb": 64}),
    )
    .await?;
    let (_, owner) = app.user("owner@gamma.example").await?;
    app.post(
        "/v1/tenants",
        Some(&owner),
        json!({"slug": "gamma", "name": "gamma"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let shown = app
        .get("/v1/plugins/labs.noisy/versions/0.1.0", None)
        .await?
        .expect(StatusCode::OK)?;
    let response = app
        .client
        .post(format!("{}/v1/tenants/gamma/installs", app.base))
        .bearer_auth(&owner)
        .json(&json!({"plugin": "labs.noisy", "permissions_digest": shown.body["permissions_digest"]}))
        .send()
        .await?;
    let (status, retry_after, body) = answer(response).await?;
    ensure!(
        status == StatusCode::SERVICE_UNAVAILABLE && body["error"]["code"] == "capacity",
        "{status} {body}"
    );
    ensure!(retry_after.is_none(), "{retry_after:?}");
    ensure!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("memory")),
        "{body}"
    );
    Ok(())
}
