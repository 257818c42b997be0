//! The plan's tenant-wide limits, on both backends with a host: outbound HTTP requests per
//! minute (a rate: 429 with `Retry-After`) and kv bytes (a quota shared by the tenant's
//! installs). Each tenant is held to its own plan alone.

mod common;
mod publishing;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, ensure};
use plinth_package::Package;
use plinth_test_artifacts::{COUNTER, TestPlugin, WEBHOOK_NOTIFY};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{Reply, TestApp};
use publishing::{Dev, developer, manifest, submit_ok};

on_both_backends_with_host!(
    outbound_requests_per_minute_is_a_tenant_rate,
    kv_bytes_is_a_quota_the_tenants_installs_share,
);

/// Publishes `plugin` as `labs.<name>` 0.1.0 with `[permissions]` lines rewritten by
/// `rewrite`, approved by `operator`; returns the plugin id.
async fn publish(
    app: &TestApp,
    dev: &Dev,
    operator: &str,
    plugin: &TestPlugin,
    name: &str,
    rewrite: impl Fn(&str) -> String,
) -> Result<String> {
    let id = format!("labs.{name}");
    let text = rewrite(&manifest(plugin, &id, "0.1.0", "")?);
    let mut package = Package::new(text, std::fs::read(plugin.wasm)?, None, None)?;
    package.sign(&dev.key);
    let submission = submit_ok(app, &dev.token, package.to_bytes()?).await?;
    app.post(
        &format!("/v1/submissions/{submission}/decision"),
        Some(operator),
        json!({"decision": "approve", "reason": "Reviewed in a test."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    Ok(id)
}

/// Creates tenant `slug` owned by `token`'s user, and an API key for it.
async fn tenant(app: &TestApp, token: &str, slug: &str) -> Result<String> {
    app.post(
        "/v1/tenants",
        Some(token),
        json!({"slug": slug, "name": slug}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let made = app
        .post(
            &format!("/v1/tenants/{slug}/api-keys"),
            Some(token),
            json!({"name": "backend"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    Ok(made.body["key"].as_str().context("key")?.to_owned())
}

/// `POST /v1/tenants/{slug}/installs` consenting to the shown permissions.
async fn install(
    app: &TestApp,
    token: &str,
    slug: &str,
    plugin: &str,
    config: Value,
) -> Result<Reply> {
    let shown = app
        .get(&format!("/v1/plugins/{plugin}/versions/0.1.0"), None)
        .await?
        .expect(StatusCode::OK)?;
    app.post(
        &format!("/v1/tenants/{slug}/installs"),
        Some(token),
        json!({"plugin": plugin, "permissions_digest": shown.body["permissions_digest"],
               "config": config}),
    )
    .await
}

/// A local webhook receiver counting the requests it is sent.
async fn receiver() -> Result<(String, Arc<AtomicUsize>)> {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let app = axum::Router::new().fallback(move || {
        let counted = Arc::clone(&counted);
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, hits))
}

async fn order(app: &TestApp, key: &str, slug: &str) -> Result<reqwest::Response> {
    Ok(app
        .client
        .post(format!("{}/v1/tenants/{slug}/events", app.base))
        .bearer_auth(key)
        .json(&json!({"topic": "order.created", "payload": {"id": 1}}))
        .send()
        .await?)
}

async fn outbound_requests_per_minute_is_a_tenant_rate(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    app.put(
        "/v1/plans/free",
        Some(&operator),
        json!({"outbound_requests_per_minute": 2}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let dev = developer(&app, "dev@labs.example", "labs").await?;
    let hook = publish(&app, &dev, &operator, &WEBHOOK_NOTIFY, "hook", |m| {
        m.replace("\"hooks.example.com\"", "\"127.0.0.1\"")
    })
    .await?;
    let (url, hits) = receiver().await?;
    let (_, acme_admin) = app.user("admin@acme.example").await?;
    let (_, globex_admin) = app.user("admin@globex.example").await?;
    let acme = tenant(&app, &acme_admin, "acme").await?;
    let globex = tenant(&app, &globex_admin, "globex").await?;
    for (admin, slug) in [(&acme_admin, "acme"), (&globex_admin, "globex")] {
        install(&app, admin, slug, &hook, json!({"webhook-url": url}))
            .await?
            .expect(StatusCode::CREATED)?;
    }

    for n in 1..=2 {
        let sent = order(&app, &acme, "acme").await?;
        ensure!(
            sent.status() == StatusCode::OK,
            "event {n}: {}",
            sent.status()
        );
        let body: Value = sent.json().await?;
        ensure!(body["results"][0]["output"]["status"] == 200, "{body}");
    }
    let limited = order(&app, &acme, "acme").await?;
    ensure!(
        limited.status() == StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.status()
    );
    let wait: u64 = limited
        .headers()
        .get("retry-after")
        .context("Retry-After")?
        .to_str()?
        .parse()?;
    ensure!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: Value = limited.json().await?;
    ensure!(body["error"]["code"] == "rate_limited", "{body}");
    ensure!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("outbound HTTP requests per minute")),
        "{body}"
    );
    ensure!(
        hits.load(Ordering::SeqCst) == 2,
        "the refused request was sent"
    );

    // Another tenant on the same plan has its own minute.
    let other = order(&app, &globex, "globex").await?;
    ensure!(other.status() == StatusCode::OK, "{}", other.status());
    ensure!(hits.load(Ordering::SeqCst) == 3);
    Ok(())
}

async fn kv_bytes_is_a_quota_the_tenants_installs_share(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    // Each counter install stores "count" = "0" (6 bytes) when installed.
    app.put("/v1/plans/free", Some(&operator), json!({"kv_bytes": 11}))
        .await?
        .expect(StatusCode::OK)?;
    let dev = developer(&app, "dev@labs.example", "labs").await?;
    let first = publish(&app, &dev, &operator, &COUNTER, "first", str::to_owned).await?;
    let second = publish(&app, &dev, &operator, &COUNTER, "second", str::to_owned).await?;
    let (_, acme_admin) = app.user("admin@acme.example").await?;
    let (_, globex_admin) = app.user("admin@globex.example").await?;
    let acme = tenant(&app, &acme_admin, "acme").await?;
    tenant(&app, &globex_admin, "globex").await?;

    install(&app, &acme_admin, "acme", &first, json!({}))
        .await?
        .expect(StatusCode::CREATED)?;
    // A second install would take the tenant to 12 bytes: its on-install write is refused.
    let refused = install(&app, &acme_admin, "acme", &second, json!({}))
        .await?
        .expect_error(StatusCode::CONFLICT, "lifecycle_failed")?;
    ensure!(
        refused.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("tenant bytes")),
        "{}",
        refused.body
    );
    let installs = app
        .get("/v1/tenants/acme/installs", Some(&acme_admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        installs.body["items"].as_array().map(Vec::len) == Some(1),
        "{}",
        installs.body
    );
    // Another tenant on the same plan has its own quota.
    install(&app, &globex_admin, "globex", &second, json!({}))
        .await?
        .expect(StatusCode::CREATED)?;
    // Replacing a value with one of the same size is not growth: the first install counts on.
    let counted = app
        .post(
            "/v1/tenants/acme/events",
            Some(&acme),
            json!({"topic": "count", "payload": {}}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        counted.body["results"][0]["output"]["count"] == 1,
        "{}",
        counted.body
    );
    Ok(())
}
