//! Metering, quotas and rate limits on both backends: usage counted from real events, the
//! monthly invocation quota, per-tenant API rate limits, and the usage store's batches.

mod common;
mod publishing;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use plinth_host::metering::{MeterKey, UsageCounters, UsageRecord, UsageSink};
use plinth_marketplace::usage::{self, Store};
use plinth_package::{Package, SecretKey};
use plinth_test_artifacts::{COUNTER, HELLO, TestPlugin};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::TestApp;

on_both_backends_with_host!(
    usage_counts_events_per_plugin,
    the_monthly_quota_stops_events
);
on_both_backends!(
    tenant_routes_are_rate_limited_per_tenant,
    the_store_adds_batches_all_or_nothing,
);

/// Publishes `plugins` (as in `plugins/`) under namespace `examples` and approves them.
async fn publish(app: &TestApp, operator: &str, plugins: &[&TestPlugin]) -> Result<()> {
    let (_, developer) = app.user("dev@example.com").await?;
    app.post(
        "/v1/publishers",
        Some(&developer),
        json!({"namespace": "examples", "name": "Examples"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let key = SecretKey::generate()?;
    publishing::register_key(app, &developer, "examples", &key)
        .await?
        .expect(StatusCode::CREATED)?;
    for plugin in plugins {
        let manifest =
            std::fs::read_to_string(std::path::Path::new(plugin.dir).join("plinth.toml"))?;
        let wasm = std::fs::read(plugin.wasm)?;
        let mut package = Package::new(manifest, wasm, Some(format!("# {}\n", plugin.name)), None)?;
        package.sign(&key);
        let submitted = app
            .send_bytes(
                reqwest::Method::POST,
                "/v1/submissions",
                Some(&developer),
                "application/octet-stream",
                package.to_bytes()?,
            )
            .await?
            .expect(StatusCode::CREATED)?;
        let id = submitted.body["id"].as_str().context("submission id")?;
        app.post(
            &format!("/v1/submissions/{id}/decision"),
            Some(operator),
            json!({"decision": "approve", "reason": "Reviewed in a test."}),
        )
        .await?
        .expect(StatusCode::OK)?;
    }
    Ok(())
}

/// Installs `plugin` (approved) into tenant `slug` as `admin`.
async fn install(app: &TestApp, admin: &str, slug: &str, plugin: &str) -> Result<()> {
    let shown = app
        .get(&format!("/v1/plugins/{plugin}/versions/0.1.0"), None)
        .await?
        .expect(StatusCode::OK)?;
    app.post(
        &format!("/v1/tenants/{slug}/installs"),
        Some(admin),
        json!({"plugin": plugin, "permissions_digest": shown.body["permissions_digest"]}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    Ok(())
}

/// Sends an event to tenant `slug`; returns the raw response.
async fn event(
    app: &TestApp,
    token: &str,
    slug: &str,
    topic: &str,
    payload: Value,
) -> Result<reqwest::Response> {
    Ok(app
        .client
        .post(format!("{}/v1/tenants/{slug}/events", app.base))
        .bearer_auth(token)
        .json(&json!({"topic": topic, "payload": payload}))
        .send()
        .await?)
}

/// Sends an event and fails unless every result succeeded; returns the results.
async fn event_ok(app: &TestApp, token: &str, slug: &str, topic: &str) -> Result<Vec<Value>> {
    let response = event(app, token, slug, topic, json!("Ada")).await?;
    let status = response.status();
    let body: Value = response.json().await?;
    ensure!(status == StatusCode::OK, "event: {status} {body}");
    let results = body["results"].as_array().cloned().context("results")?;
    ensure!(
        !results.is_empty() && results.iter().all(|r| r["error"].is_null()),
        "{body}"
    );
    Ok(results)
}

/// The `plugins` entry of a usage view for `plugin`.
fn plugin_usage<'a>(usage: &'a Value, plugin: &str) -> Result<&'a Value> {
    usage["plugins"]
        .as_array()
        .and_then(|plugins| plugins.iter().find(|p| p["plugin"] == plugin))
        .with_context(|| format!("no usage for {plugin}: {usage}"))
}

/// Invocations persisted for tenant `id`.
async fn stored_invocations(app: &TestApp, tenant_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT CAST(COALESCE(SUM(invocations), 0) AS BIGINT) FROM usage_counters WHERE tenant_id = $1",
    )
    .bind(tenant_id.to_owned())
    .fetch_one(app.db().pool())
    .await?)
}

async fn usage_counts_events_per_plugin(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    publish(&app, &operator, &[&HELLO, &COUNTER]).await?;
    let (_, owner) = app.user("owner@acme.example").await?;
    let acme = app
        .post(
            "/v1/tenants",
            Some(&owner),
            json!({"slug": "acme", "name": "Acme"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    let acme_id = acme.body["id"].as_str().context("tenant id")?.to_owned();
    let (_, other) = app.user("owner@globex.example").await?;
    app.post(
        "/v1/tenants",
        Some(&other),
        json!({"slug": "globex", "name": "Globex"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    for plugin in ["examples.hello", "examples.counter"] {
        install(&app, &owner, "acme", plugin).await?;
    }
    install(&app, &other, "globex", "examples.hello").await?;

    event_ok(&app, &owner, "acme", "greet").await?;
    event_ok(&app, &owner, "acme", "greet").await?;
    event_ok(&app, &owner, "acme", "count").await?;
    event_ok(&app, &other, "globex", "greet").await?;

    // Counted while still in the host's meter.
    let usage = app
        .get("/v1/tenants/acme/usage", Some(&owner))
        .await?
        .expect(StatusCode::OK)?
        .body;
    ensure!(usage["usage"]["invocations"] == 3, "{usage}");
    ensure!(usage["usage"]["installs"] == 2, "{usage}");
    ensure!(
        usage["plugins"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["failures"] == 0)),
        "{usage}"
    );
    let hello = plugin_usage(&usage, "examples.hello")?;
    ensure!(
        hello["invocations"] == 2 && hello["kv_bytes_written"] == 0,
        "{usage}"
    );
    let counter = plugin_usage(&usage, "examples.counter")?;
    ensure!(counter["invocations"] == 1, "{usage}");
    ensure!(
        counter["kv_bytes_written"].as_i64().is_some_and(|b| b > 0),
        "the counter writes kv: {usage}"
    );
    ensure!(
        usage["usage"]["kv_bytes"] == counter["kv_bytes_written"],
        "{usage}"
    );
    let invocations = usage["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["name"] == "invocations"))
        .context("invocations item")?;
    ensure!(
        invocations["used"] == 3 && invocations["limit"] == 100_000,
        "{usage}"
    );

    // Flushed to the database: the same counts, not doubled; later calls add to them.
    let meter = app.state.runtime()?.host.meter().clone();
    meter
        .flush_to(&Store::new(app.db().clone()))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(meter.snapshot().is_empty());
    ensure!(stored_invocations(&app, &acme_id).await? == 3);
    event_ok(&app, &owner, "acme", "greet").await?;
    let usage = app
        .get("/v1/tenants/acme/usage", Some(&owner))
        .await?
        .expect(StatusCode::OK)?
        .body;
    ensure!(usage["usage"]["invocations"] == 4, "{usage}");
    ensure!(
        plugin_usage(&usage, "examples.hello")?["invocations"] == 3,
        "{usage}"
    );

    // The other tenant sees only its own.
    let globex = app
        .get("/v1/tenants/globex/usage", Some(&other))
        .await?
        .expect(StatusCode::OK)?
        .body;
    ensure!(globex["usage"]["invocations"] == 1, "{globex}");
    ensure!(
        globex["plugins"].as_array().map(Vec::len) == Some(1),
        "{globex}"
    );
    Ok(())
}

async fn the_monthly_quota_stops_events(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    publish(&app, &operator, &[&HELLO]).await?;
    app.put(
        "/v1/plans/free",
        Some(&operator),
        json!({"invocations_per_month": 3}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let (_, owner) = app.user("owner@acme.example").await?;
    app.post(
        "/v1/tenants",
        Some(&owner),
        json!({"slug": "acme", "name": "Acme"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let (_, rich) = app.user("owner@rich.example").await?;
    app.post(
        "/v1/tenants",
        Some(&operator),
        json!({"slug": "rich", "name": "Rich", "plan": "pro"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    app.post(
        "/v1/tenants/rich/members",
        Some(&operator),
        json!({"email": "owner@rich.example", "role": "admin"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    install(&app, &owner, "acme", "examples.hello").await?;
    install(&app, &rich, "rich", "examples.hello").await?;

    // Half counted in the database, half still in the meter: both count.
    event_ok(&app, &owner, "acme", "greet").await?;
    event_ok(&app, &owner, "acme", "greet").await?;
    let meter = app.state.runtime()?.host.meter().clone();
    meter
        .flush_to(&Store::new(app.db().clone()))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    event_ok(&app, &owner, "acme", "greet").await?;

    let refused = event(&app, &owner, "acme", "greet", json!("Ada")).await?;
    ensure!(refused.status() == StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .context("Retry-After")?
        .to_str()?
        .parse()?;
    ensure!(
        (1..=31 * 86_400).contains(&retry_after),
        "until next month: {retry_after}"
    );
    let body: Value = refused.json().await?;
    let message = body["error"]["message"].as_str().unwrap_or("");
    ensure!(body["error"]["code"] == "quota_exceeded", "{body}");
    ensure!(
        message.contains("3 invocations per month") && message.contains("\"free\""),
        "{body}"
    );
    // Refused events run nothing.
    let usage = app
        .get("/v1/tenants/acme/usage", Some(&owner))
        .await?
        .expect(StatusCode::OK)?
        .body;
    ensure!(usage["usage"]["invocations"] == 3, "{usage}");

    // Another tenant on another plan still gets results.
    let results = event_ok(&app, &rich, "rich", "greet").await?;
    ensure!(results[0]["output"] == "Hello, Ada!", "{results:?}");
    Ok(())
}

/// GET `path` as `token`; returns (status, Retry-After).
async fn get_with_retry_after(
    app: &TestApp,
    path: &str,
    token: &str,
) -> Result<(StatusCode, Option<u64>, Value)> {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Ok((status, retry, response.json().await.unwrap_or(Value::Null)))
}

async fn tenant_routes_are_rate_limited_per_tenant(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    app.put(
        "/v1/plans/free",
        Some(&operator),
        json!({"api_requests_per_minute": 5}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let (_, owner) = app.user("owner@acme.example").await?;
    app.post(
        "/v1/tenants",
        Some(&owner),
        json!({"slug": "acme", "name": "Acme"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let (_, other) = app.user("owner@globex.example").await?;
    app.post(
        "/v1/tenants",
        Some(&other),
        json!({"slug": "globex", "name": "Globex"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;

    // Requests without credentials or to someone else's tenant are not counted.
    for _ in 0..3 {
        app.get("/v1/tenants/acme/usage", None)
            .await?
            .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
        app.get("/v1/tenants/acme/usage", Some(&other))
            .await?
            .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    }
    // Five requests over different tenant routes pass; the sixth is refused.
    for path in [
        "/v1/tenants/acme",
        "/v1/tenants/acme/usage",
        "/v1/tenants/acme/members",
        "/v1/tenants/acme/api-keys",
        "/v1/tenants/acme/usage",
    ] {
        let (status, _, body) = get_with_retry_after(&app, path, &owner).await?;
        ensure!(status == StatusCode::OK, "{path}: {status} {body}");
    }
    let (status, retry_after, body) =
        get_with_retry_after(&app, "/v1/tenants/acme/usage", &owner).await?;
    ensure!(status == StatusCode::TOO_MANY_REQUESTS, "{status} {body}");
    ensure!(body["error"]["code"] == "rate_limited", "{body}");
    ensure!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("5 API requests per minute")),
        "{body}"
    );
    // One token every 12 s at 5 per minute.
    ensure!(
        retry_after.is_some_and(|s| (1..=13).contains(&s)),
        "{retry_after:?}"
    );

    // The other tenant (same plan, own bucket) and routes outside tenants are fine.
    let (status, _, body) = get_with_retry_after(&app, "/v1/tenants/globex/usage", &other).await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    app.get("/v1/plans", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    // Operators are not limited by the tenant's plan.
    app.get("/v1/tenants/acme/usage", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    Ok(())
}

fn record(tenant: &str, plugin: &str, invocations: u64, at: SystemTime) -> UsageRecord {
    let mut counters = UsageCounters {
        invocations,
        wall_time_us: 10 * invocations,
        fuel: 100,
        kv_bytes_written: 7,
        outbound_requests: 1,
        ..UsageCounters::default()
    };
    counters.failures.insert("timeout".to_owned(), 1);
    UsageRecord {
        key: MeterKey::new(tenant, plugin, "1.0.0"),
        counters,
        period_start: at,
        period_end: at,
    }
}

async fn the_store_adds_batches_all_or_nothing(app: TestApp) -> Result<()> {
    let store = Store::new(app.db().clone());
    let now = SystemTime::now();
    let month = usage::month_key(plinth_marketplace::clock::now_ms())?;

    // Two batches with the same key add up, through the host's sink trait.
    store
        .flush(vec![record("t1", "p", 2, now), record("t2", "p", 5, now)])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    store
        .flush(vec![record("t1", "p", 3, now)])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let t1 = usage::month_usage(app.db(), None, "t1", &month).await?;
    ensure!(t1.plugins.len() == 1, "{t1:?}");
    let p = &t1.total;
    ensure!(
        (
            p.invocations,
            p.failures,
            p.wall_time_us,
            p.fuel,
            p.kv_bytes_written,
            p.outbound_requests
        ) == (5, 2, 50, 200, 14, 2),
        "{p:?}"
    );
    ensure!(
        usage::month_usage(app.db(), None, "t2", &month)
            .await?
            .total
            .invocations
            == 5
    );
    // Another month is another row.
    ensure!(
        usage::month_usage(app.db(), None, "t1", "2000-01")
            .await?
            .plugins
            .is_empty()
    );

    // A batch whose second record cannot be stored leaves nothing of the first behind.
    let out_of_range = UNIX_EPOCH + Duration::from_secs(400_000 * 365 * 86_400);
    let failed = store
        .flush(vec![
            record("t1", "p", 100, now),
            record("t1", "q", 1, out_of_range),
        ])
        .await;
    ensure!(failed.is_err(), "the batch must fail");
    let t1 = usage::month_usage(app.db(), None, "t1", &month).await?;
    ensure!(t1.total.invocations == 5 && t1.plugins.len() == 1, "{t1:?}");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_counters")
        .fetch_one(app.db().pool())
        .await?;
    ensure!(rows == 2, "{rows} rows");
    Ok(())
}
