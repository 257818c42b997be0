//! The plan's tenant-wide limits, on both backends with a host: outbound HTTP requests per
//! minute (a rate: 429 with `Retry-After`) and kv bytes (a quota shared by the tenant's
//! installs). Each tenant is held to its own plan alone. A plan change (an operator's new
//! quotas, or a tenant moved to another plan) reaches running installs at once: the next call
//! runs under the new limits, in this process and, on PostgreSQL, in the others.

mod common;
mod publishing;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use plinth_package::Package;
use plinth_test_artifacts::{COUNTER, MEMORY_HOG, SPIN_FOREVER, TestPlugin, WEBHOOK_NOTIFY};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{Reply, TestApp};
use publishing::{Dev, developer, manifest, submit_ok};

on_both_backends_with_host!(
    outbound_requests_per_minute_is_a_tenant_rate,
    kv_bytes_is_a_quota_the_tenants_installs_share,
    new_plan_quotas_reach_running_installs,
    a_tenant_moved_to_another_plan_runs_under_it_at_once,
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
    app.tenant(token, slug).await?;
    app.api_key(token, slug).await
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

/// Sends a `run` event to tenant `slug` on the server at `base`; the error message of each
/// plugin's result, by plugin id.
async fn run_errors(
    app: &TestApp,
    base: &str,
    key: &str,
    slug: &str,
) -> Result<BTreeMap<String, String>> {
    let response = app
        .client
        .post(format!("{base}/v1/tenants/{slug}/events"))
        .bearer_auth(key)
        .json(&json!({"topic": "run", "payload": null}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    ensure!(status == StatusCode::OK, "{status}: {body}");
    body["results"]
        .as_array()
        .context("results")?
        .iter()
        .map(|result| {
            Ok((
                result["plugin"].as_str().context("plugin")?.to_owned(),
                result["error"]["message"]
                    .as_str()
                    .with_context(|| format!("no error: {result}"))?
                    .to_owned(),
            ))
        })
        .collect()
}

/// Fails unless `errors` says `spin` passed a `timeout_ms` deadline and `hog` a `memory_mb`
/// limit.
fn ensure_limits(
    errors: &BTreeMap<String, String>,
    (spin, hog): (&str, &str),
    timeout_ms: u64,
    memory_mb: u64,
) -> Result<()> {
    let deadline = format!("the call passed its {timeout_ms} ms deadline");
    let memory = format!("memory limit of {} bytes", memory_mb << 20);
    ensure!(
        errors.get(spin).is_some_and(|m| m.contains(&deadline)),
        "expected {deadline:?}: {errors:?}"
    );
    ensure!(
        errors.get(hog).is_some_and(|m| m.contains(&memory)),
        "expected {memory:?}: {errors:?}"
    );
    Ok(())
}

/// The operator, and tenant `acme` with a spinning and a memory-hungry plugin installed, on
/// plan `free` limited to 300 ms and 16 MiB a call; returns (operator, acme's API key, the
/// plugins' ids).
async fn spin_and_hog(app: &TestApp) -> Result<(String, String, (String, String))> {
    let operator = app.operator().await?;
    app.put(
        "/v1/plans/free",
        Some(&operator),
        json!({"timeout_ms": 300, "memory_mb": 16}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    let spin = publish(app, &dev, &operator, &SPIN_FOREVER, "spin", str::to_owned).await?;
    let hog = publish(app, &dev, &operator, &MEMORY_HOG, "hog", str::to_owned).await?;
    let (_, admin) = app.user("admin@acme.example").await?;
    let key = tenant(app, &admin, "acme").await?;
    for plugin in [&spin, &hog] {
        install(app, &admin, "acme", plugin, json!({}))
            .await?
            .expect(StatusCode::CREATED)?;
    }
    let errors = run_errors(app, &app.base, &key, "acme").await?;
    ensure_limits(&errors, (&spin, &hog), 300, 16)?;
    Ok((operator, key, (spin, hog)))
}

async fn new_plan_quotas_reach_running_installs(app: TestApp) -> Result<()> {
    let (operator, key, (spin, hog)) = spin_and_hog(&app).await?;
    app.put(
        "/v1/plans/free",
        Some(&operator),
        json!({"timeout_ms": 600, "memory_mb": 24}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let errors = run_errors(&app, &app.base, &key, "acme").await?;
    ensure_limits(&errors, (&spin, &hog), 600, 24)?;
    Ok(())
}

async fn a_tenant_moved_to_another_plan_runs_under_it_at_once(app: TestApp) -> Result<()> {
    let (operator, key, (spin, hog)) = spin_and_hog(&app).await?;
    app.put(
        "/v1/plans/pro",
        Some(&operator),
        json!({"timeout_ms": 500, "memory_mb": 20}),
    )
    .await?
    .expect(StatusCode::OK)?;
    // pro's new quotas concern no install of acme's yet.
    let errors = run_errors(&app, &app.base, &key, "acme").await?;
    ensure_limits(&errors, (&spin, &hog), 300, 16)?;
    app.patch("/v1/tenants/acme", Some(&operator), json!({"plan": "pro"}))
        .await?
        .expect(StatusCode::OK)?;
    let errors = run_errors(&app, &app.base, &key, "acme").await?;
    ensure_limits(&errors, (&spin, &hog), 500, 20)?;
    Ok(())
}

/// The longest a change may take to reach the other process before the test fails (the time
/// is not asserted otherwise).
const PATIENCE: Duration = Duration::from_secs(20);

/// Another process on the same PostgreSQL database: a marketplace with its own host (trusting
/// the first one's key, with a breaker that never opens), restored from storage and serving
/// until the returned sender is dropped.
async fn another_process(
    app: &TestApp,
) -> Result<(String, tokio::sync::oneshot::Sender<()>, tempfile::TempDir)> {
    use plinth_host::breaker::BreakerPolicy;
    use plinth_host::trust::TrustPolicy;

    let url = app.db().url().to_owned();
    let cache = tempfile::tempdir()?;
    let mut config = plinth_host::HostConfig::new(
        cache.path(),
        TrustPolicy::enforce(vec![app.state.signing_key().public_key()]),
    );
    config.kv = Some(plinth_host::kv::KvStore::connect(&url).await?);
    config.policies.breaker = BreakerPolicy {
        failure_threshold: 1_000,
        ..BreakerPolicy::default()
    };
    let host = Arc::new(plinth_host::Host::new(config)?);
    let (secrets, _) = plinth_marketplace::secrets::SecretsKey::generate()?;
    let state = plinth_marketplace::AppState::with_runtime(
        plinth_marketplace::Db::connect(&url).await?,
        plinth_marketplace::Settings::default(),
        plinth_package::SecretKey::generate()?,
        plinth_marketplace::Runtime { host, secrets },
    );
    plinth_marketplace::installs::restore_all(&state).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(plinth_marketplace::server::serve(
        listener,
        state,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    Ok((base, stop, cache))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_changes_reach_another_process_through_the_change_feed() -> Result<()> {
    let app = TestApp::start_postgres_with_host("plan_feed").await?;
    let (operator, key, (spin, hog)) = spin_and_hog(&app).await?;
    let (other, _stop, _cache) = another_process(&app).await?;
    let errors = run_errors(&app, &other, &key, "acme").await?;
    ensure_limits(&errors, (&spin, &hog), 300, 16)?;

    // The other process learns of the change from its notification (sent again until its
    // listener, started with it, has surely seen one).
    let started = Instant::now();
    loop {
        app.put(
            "/v1/plans/free",
            Some(&operator),
            json!({"timeout_ms": 600, "memory_mb": 24}),
        )
        .await?
        .expect(StatusCode::OK)?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let errors = run_errors(&app, &other, &key, "acme").await?;
        if ensure_limits(&errors, (&spin, &hog), 600, 24).is_ok() {
            break;
        }
        ensure!(
            started.elapsed() < PATIENCE,
            "the other process still runs the old limits: {errors:?}"
        );
    }
    println!(
        "the plan change reached the other process in {:?}",
        started.elapsed()
    );

    // A tenant moved to another plan: its listener is up by now, one notification is enough.
    app.put(
        "/v1/plans/pro",
        Some(&operator),
        json!({"timeout_ms": 500, "memory_mb": 20}),
    )
    .await?
    .expect(StatusCode::OK)?;
    app.patch("/v1/tenants/acme", Some(&operator), json!({"plan": "pro"}))
        .await?
        .expect(StatusCode::OK)?;
    let started = Instant::now();
    loop {
        let errors = run_errors(&app, &other, &key, "acme").await?;
        if ensure_limits(&errors, (&spin, &hog), 500, 20).is_ok() {
            break;
        }
        ensure!(
            started.elapsed() < PATIENCE,
            "the other process still runs the old plan: {errors:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "the move reached the other process in {:?}",
        started.elapsed()
    );
    Ok(())
}
