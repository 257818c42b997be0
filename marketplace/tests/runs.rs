//! Run logs through the API, on both backends with a host: runs are recorded with their log
//! lines and typed errors and filtered; capture is off until a tenant turns it on, and then
//! secrets are redacted; retention and volume follow the plan (with the clock moved forward);
//! daily charts; the export; failure reports across tenants that name none of them; sharing a
//! run with the publisher and taking it back; and another tenant sees none of it.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::clock::{DAY_MS, now_ms};
use plinth_marketplace::runs::retention;
use plinth_test_artifacts::{HELLO, HTTP_ECHO, TestPlugin, WEBHOOK_NOTIFY};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{Reply, TestApp};
use publishing::{Dev, developer};

on_both_backends_with_host!(
    runs_keep_logs_and_typed_errors_and_filter,
    capture_is_off_until_turned_on_and_redacts_secrets,
    retention_and_volume_follow_the_plan,
    daily_charts_and_the_export,
    failure_reports_name_no_tenant_and_shared_runs_come_and_go,
    another_tenant_sees_no_runs,
    plugin_http_requests_are_runs_too,
);

struct World {
    operator: String,
    dev: Dev,
    admin: String,
}

async fn world(app: &TestApp) -> Result<World> {
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    let (_, admin) = app.user("admin@acme.example").await?;
    app.tenant(&admin, "acme").await?;
    Ok(World {
        operator,
        dev,
        admin,
    })
}

/// `plugin` as `labs.<name>` 0.1.0, submitted by the developer and approved by the operator.
async fn publish(app: &TestApp, w: &World, plugin: &TestPlugin, name: &str) -> Result<String> {
    let id = format!("labs.{name}");
    publishing::publish(app, &w.dev, &w.operator, plugin, &id, "0.1.0").await?;
    Ok(id)
}

async fn install(
    app: &TestApp,
    token: &str,
    slug: &str,
    plugin: &str,
    config: Value,
) -> Result<()> {
    let shown = app
        .get(&format!("/v1/plugins/{plugin}/versions/0.1.0"), None)
        .await?
        .expect(StatusCode::OK)?;
    let digest = shown.body["permissions_digest"].clone();
    app.post(
        &format!("/v1/tenants/{slug}/installs"),
        Some(token),
        json!({"plugin": plugin, "permissions_digest": digest, "config": config}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    Ok(())
}

async fn event(app: &TestApp, token: &str, slug: &str, topic: &str, payload: Value) -> Result<()> {
    app.post(
        &format!("/v1/tenants/{slug}/events"),
        Some(token),
        json!({"topic": topic, "payload": payload}),
    )
    .await?
    .expect(StatusCode::OK)?;
    Ok(())
}

/// The runs `GET path` lists.
async fn runs(app: &TestApp, token: &str, path: &str) -> Result<Vec<Value>> {
    let reply = app.get(path, Some(token)).await?.expect(StatusCode::OK)?;
    reply.body["items"].as_array().cloned().context("items")
}

/// Every run the database holds (in batches, and shared copies), each as the JSON text it is
/// stored as once decompressed: entry, error, logs, payload and output.
async fn stored_texts(app: &TestApp) -> Result<Vec<String>> {
    let bodies: Vec<Vec<u8>> = sqlx::query_scalar("SELECT body FROM run_batches")
        .fetch_all(app.db().pool())
        .await?;
    let mut texts = Vec::new();
    for body in bodies {
        for run in plinth_marketplace::runs::batch::decode(&body)? {
            texts.push(serde_json::to_string(&run)?);
        }
    }
    let shared: Vec<String> = sqlx::query_scalar("SELECT run FROM shared_runs")
        .fetch_all(app.db().pool())
        .await?;
    texts.extend(shared);
    Ok(texts)
}

async fn runs_keep_logs_and_typed_errors_and_filter(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    install(&app, &w.admin, "acme", &hello, json!({})).await?;
    event(&app, &w.admin, "acme", "greet", json!("Ada")).await?;
    event(&app, &w.admin, "acme", "greet", json!(42)).await?;
    event(&app, &w.admin, "acme", "greet", json!("Grace")).await?;

    let all = runs(&app, &w.admin, "/v1/tenants/acme/runs").await?;
    // Three events and the install's hook, newest first.
    ensure!(all.len() == 4, "{all:?}");
    ensure!(
        all[0]["entry"] == "greet"
            && all[3]["entry_kind"] == "hook"
            && all[3]["entry"] == "on-install",
        "{all:?}"
    );
    ensure!(
        all.iter()
            .all(|run| run["plugin"] == hello.as_str() && run["version"] == "0.1.0")
    );

    let failed = runs(&app, &w.admin, "/v1/tenants/acme/runs?outcome=failed").await?;
    ensure!(failed.len() == 1, "{failed:?}");
    ensure!(
        failed[0]["outcome"] == "plugin_error"
            && failed[0]["error"]["code"] == "plugin_error"
            && failed[0]["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
        "{failed:?}"
    );
    let by_code = runs(&app, &w.admin, "/v1/tenants/acme/runs?outcome=plugin_error").await?;
    ensure!(by_code.len() == 1 && by_code[0]["id"] == failed[0]["id"]);
    let ok = runs(&app, &w.admin, "/v1/tenants/acme/runs?outcome=ok").await?;
    ensure!(ok.len() == 3, "{ok:?}");

    // Text in the log lines.
    let ada = runs(&app, &w.admin, "/v1/tenants/acme/runs?q=ada").await?;
    ensure!(ada.len() == 1, "{ada:?}");
    let run = app
        .get(
            &format!(
                "/v1/tenants/acme/runs/{}",
                ada[0]["id"].as_str().context("id")?
            ),
            Some(&w.admin),
        )
        .await?
        .expect(StatusCode::OK)?;
    let logs = run.body["logs"].as_array().context("logs")?;
    ensure!(
        logs.iter().any(|line| line["level"] == "info"
            && line["message"] == "greeting"
            && line["fields"] == json!([["name", "Ada"]])),
        "{}",
        run.body
    );
    ensure!(
        run.body["duration_us"].as_i64().is_some_and(|us| us > 0)
            && run.body["memory_bytes"].as_i64().is_some_and(|m| m > 0)
            && run.body["output_bytes"] == json!("\"Hello, Ada!\"".len())
            && run.body["capture"].is_null(),
        "{}",
        run.body
    );

    // Paging: two at a time, nothing twice, nothing missed.
    let first = app
        .get("/v1/tenants/acme/runs?limit=2", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    let cursor = first.body["next_cursor"].as_str().context("cursor")?;
    let second = app
        .get(
            &format!("/v1/tenants/acme/runs?limit=2&before={cursor}"),
            Some(&w.admin),
        )
        .await?
        .expect(StatusCode::OK)?;
    let mut ids: Vec<Value> = [&first, &second]
        .iter()
        .flat_map(|page| page.body["items"].as_array().cloned().unwrap_or_default())
        .map(|run| run["id"].clone())
        .collect();
    ensure!(second.body["next_cursor"].is_null(), "{}", second.body);
    ids.dedup();
    ensure!(ids == all.iter().map(|run| run["id"].clone()).collect::<Vec<_>>());

    // Time ranges: none before 2000; a day alone is that day in UTC, `until` it included.
    let none = runs(
        &app,
        &w.admin,
        "/v1/tenants/acme/runs?until=2000-01-01T00:00:00Z",
    )
    .await?;
    ensure!(none.is_empty(), "{none:?}");
    let today = all[0]["started_at"].as_str().context("started_at")?[..10].to_owned();
    let on_the_day = runs(
        &app,
        &w.admin,
        &format!("/v1/tenants/acme/runs?since={today}&until={today}"),
    )
    .await?;
    ensure!(on_the_day.len() == all.len(), "{on_the_day:?}");
    let before_the_day = runs(&app, &w.admin, "/v1/tenants/acme/runs?until=2001-01-01").await?;
    ensure!(before_the_day.is_empty(), "{before_the_day:?}");

    // Bad filters name what is wrong.
    for (query, names) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("since=yesterday", "since"),
        ("until=2026-13-40", "until"),
        ("outcome=Bad%20Code", "outcome"),
        ("before=nonsense", "before"),
        ("unknown=1", "unknown"),
    ] {
        let reply = app
            .get(&format!("/v1/tenants/acme/runs?{query}"), Some(&w.admin))
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
        ensure!(reply.message().contains(names), "{query}: {}", reply.body);
    }
    app.get("/v1/tenants/acme/runs/no-such-run", Some(&w.admin))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

async fn capture_is_off_until_turned_on_and_redacts_secrets(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let webhook = publish(&app, &w, &WEBHOOK_NOTIFY, "webhook").await?;
    let secret = "https://hooks.example.com/T0P-SECRET-7f3a";
    install(
        &app,
        &w.admin,
        "acme",
        &webhook,
        json!({"webhook-url": secret}),
    )
    .await?;
    event(
        &app,
        &w.admin,
        "acme",
        "order.created",
        json!({"order": "MARKER-1234", "echo": secret}),
    )
    .await?;
    // Capture is off: no payload is stored anywhere in the run log.
    runs(&app, &w.admin, "/v1/tenants/acme/runs").await?;
    let stored = stored_texts(&app).await?;
    ensure!(stored.len() == 2, "{stored:?}");
    for text in &stored {
        ensure!(
            !text.contains("MARKER") && !text.contains("SECRET"),
            "{text}"
        );
    }

    // An admin turns capture on, and the install says so.
    let changed = app
        .patch(
            &format!("/v1/tenants/acme/installs/{webhook}"),
            Some(&w.admin),
            json!({"capture_runs": true}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(changed.body["capture_runs"] == true, "{}", changed.body);
    event(
        &app,
        &w.admin,
        "acme",
        "order.created",
        json!({"order": "MARKER-5678", "echo": secret}),
    )
    .await?;
    let latest = runs(&app, &w.admin, "/v1/tenants/acme/runs?limit=1").await?;
    let run = app
        .get(
            &format!(
                "/v1/tenants/acme/runs/{}",
                latest[0]["id"].as_str().context("id")?
            ),
            Some(&w.admin),
        )
        .await?
        .expect(StatusCode::OK)?;
    let input = run.body["capture"]["input"]
        .as_str()
        .context("captured input")?;
    ensure!(
        input.contains("MARKER-5678") && input.contains("[redacted]") && !input.contains("SECRET"),
        "{}",
        run.body
    );
    // The secret is nowhere in what is stored, whatever the plugin did with it.
    for text in stored_texts(&app).await? {
        ensure!(!text.contains("SECRET"), "{text}");
    }
    // Turned off again: the next run keeps no payload.
    app.patch(
        &format!("/v1/tenants/acme/installs/{webhook}"),
        Some(&w.admin),
        json!({"capture_runs": false}),
    )
    .await?
    .expect(StatusCode::OK)?;
    event(
        &app,
        &w.admin,
        "acme",
        "order.created",
        json!({"order": "MARKER-9"}),
    )
    .await?;
    runs(&app, &w.admin, "/v1/tenants/acme/runs").await?;
    ensure!(
        !stored_texts(&app)
            .await?
            .iter()
            .any(|text| text.contains("MARKER-9")),
        "a payload was kept with capture off"
    );
    Ok(())
}

async fn retention_and_volume_follow_the_plan(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    install(&app, &w.admin, "acme", &hello, json!({})).await?;
    for name in ["a", "b", "c", "d", "e"] {
        event(&app, &w.admin, "acme", "greet", json!(name)).await?;
    }
    ensure!(runs(&app, &w.admin, "/v1/tenants/acme/runs").await?.len() == 6);
    // The free plan keeps runs 1 day; at most 3 of them from now on.
    let plan = app
        .put("/v1/plans/free", Some(&w.operator), json!({"max_runs": 3}))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        plan.body["quotas"]["max_runs"] == 3 && plan.body["quotas"]["run_retention_days"] == 1,
        "{}",
        plan.body
    );
    app.put("/v1/plans/free", Some(&w.operator), json!({"max_runs": 0}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_quota")?;
    let now = now_ms();
    let pruned = retention::prune(app.db(), now).await?;
    ensure!(pruned.over_volume == 3 && pruned.expired == 0, "{pruned:?}");
    // The newest three are kept.
    let kept = runs(&app, &w.admin, "/v1/tenants/acme/runs").await?;
    let names: Vec<&str> = kept
        .iter()
        .map(|run| run["entry"].as_str().unwrap_or_default())
        .collect();
    ensure!(names == ["greet"; 3], "{kept:?}");
    let newest = app
        .get(
            &format!(
                "/v1/tenants/acme/runs/{}",
                kept[0]["id"].as_str().context("id")?
            ),
            Some(&w.admin),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        newest.body["logs"][0]["fields"] == json!([["name", "e"]]),
        "{}",
        newest.body
    );
    // A day and a bit later they are past the free plan's retention; the daily counts stay.
    let pruned = retention::prune(app.db(), now + DAY_MS + 60_000).await?;
    ensure!(pruned.expired == 3 && pruned.days == 0, "{pruned:?}");
    ensure!(
        runs(&app, &w.admin, "/v1/tenants/acme/runs")
            .await?
            .is_empty()
    );
    let daily = app
        .get(
            &format!("/v1/tenants/acme/installs/{hello}/daily?days=1"),
            Some(&w.admin),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(daily.body["items"][0]["invocations"] == 6, "{}", daily.body);
    // A month later the daily counts go too.
    let pruned = retention::prune(app.db(), now + 32 * DAY_MS).await?;
    ensure!(pruned.days > 0, "{pruned:?}");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM run_daily")
        .fetch_one(app.db().pool())
        .await?;
    ensure!(left == 0, "{left} daily rows left");
    Ok(())
}

async fn daily_charts_and_the_export(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    install(&app, &w.admin, "acme", &hello, json!({})).await?;
    for payload in [json!("a"), json!(1), json!("b"), json!(2), json!("c")] {
        event(&app, &w.admin, "acme", "greet", payload).await?;
    }
    let daily = app
        .get(
            &format!("/v1/tenants/acme/installs/{hello}/daily"),
            Some(&w.admin),
        )
        .await?
        .expect(StatusCode::OK)?;
    let days = daily.body["items"].as_array().context("items")?;
    ensure!(days.len() == 30, "{}", daily.body);
    let today = &days[29];
    ensure!(
        today["invocations"] == 6
            && today["failures"] == json!({"plugin_error": 2})
            && today["p50_us"].as_u64().is_some_and(|us| us > 0)
            && today["p95_us"].as_u64() >= today["p50_us"].as_u64(),
        "{today}"
    );
    ensure!(days[..29].iter().all(|day| day["invocations"] == 0));
    app.get(
        &format!("/v1/tenants/acme/installs/{hello}/daily?days=31"),
        Some(&w.admin),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;

    // The export: one whole run per line, for admins only.
    let export = app
        .get(
            "/v1/tenants/acme/runs/export?outcome=failed",
            Some(&w.admin),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        export
            .headers
            .get("content-type")
            .is_some_and(|v| v == "application/x-ndjson")
    );
    let lines: Vec<Value> = String::from_utf8(export.bytes)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    ensure!(
        lines.len() == 2
            && lines
                .iter()
                .all(|run| run["outcome"] == "plugin_error" && run["logs"].is_array()),
        "{lines:?}"
    );
    let everything = app
        .get("/v1/tenants/acme/runs/export", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(String::from_utf8(everything.bytes)?.lines().count() == 6);
    // A member (an API key) may list runs but not export them.
    let key = app
        .post(
            "/v1/tenants/acme/api-keys",
            Some(&w.admin),
            json!({"name": "backend"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    let key = key.body["key"].as_str().context("key")?;
    ensure!(runs(&app, key, "/v1/tenants/acme/runs").await?.len() == 6);
    app.get("/v1/tenants/acme/runs/export", Some(key))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    Ok(())
}

async fn failure_reports_name_no_tenant_and_shared_runs_come_and_go(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    let (_, globex) = app.user("admin@globex.example").await?;
    app.tenant(&globex, "globex").await?;
    for (token, slug, bad) in [(&w.admin, "acme", 41), (&globex, "globex", 97)] {
        install(&app, token, slug, &hello, json!({})).await?;
        event(&app, token, slug, "greet", json!(bad)).await?;
        event(&app, token, slug, "greet", json!("fine")).await?;
    }
    let reports = app
        .get(&format!("/v1/plugins/{hello}/failures"), Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    let items = reports.body["items"].as_array().context("items")?;
    // Both tenants' failures are one kind of failure.
    ensure!(items.len() == 1, "{}", reports.body);
    ensure!(
        items[0]["failures"] == 2
            && items[0]["code"] == "plugin_error"
            && items[0]["versions"] == json!([{"version": "0.1.0", "failures": 2}]),
        "{}",
        reports.body
    );
    let text = reports.body.to_string();
    let message = items[0]["message"].as_str().unwrap_or_default();
    ensure!(
        !text.contains("acme")
            && !text.contains("globex")
            && !message.contains("41")
            && !message.contains("97"),
        "{text}"
    );
    // Only the publisher's members see it.
    let (_, stranger) = app.user("stranger@example.com").await?;
    for token in [&stranger, &w.admin] {
        app.get(&format!("/v1/plugins/{hello}/failures"), Some(token))
            .await?
            .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    }

    // acme shares its failed run; the publisher sees that one and nothing of globex.
    let failed = runs(&app, &w.admin, "/v1/tenants/acme/runs?outcome=failed").await?;
    let run_id = failed[0]["id"].as_str().context("id")?.to_owned();
    let shared_path = format!("/v1/plugins/{hello}/shared-runs");
    ensure!(runs(&app, &w.dev.token, &shared_path).await?.is_empty());
    for _ in 0..2 {
        app.put(
            &format!("/v1/tenants/acme/runs/{run_id}/share"),
            Some(&w.admin),
            json!({}),
        )
        .await?
        .expect(StatusCode::OK)?;
    }
    let shared = runs(&app, &w.dev.token, &shared_path).await?;
    ensure!(
        shared.len() == 1 && shared[0]["id"] == run_id.as_str() && shared[0]["tenant"] == "acme",
        "{shared:?}"
    );
    let one = app
        .get(&format!("{shared_path}/{run_id}"), Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(one.body["outcome"] == "plugin_error" && one.body["logs"].is_array());
    app.get(&format!("{shared_path}/{run_id}"), Some(&stranger))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    let listed = runs(&app, &w.admin, "/v1/tenants/acme/runs?outcome=failed").await?;
    ensure!(listed[0]["shared"] == true);
    // Sharing is audited, once per change.
    let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
        .bind("run.shared")
        .fetch_one(app.db().pool())
        .await?;
    ensure!(audited == 1, "{audited} audit entries");
    // Taken back: gone for the publisher.
    app.delete(
        &format!("/v1/tenants/acme/runs/{run_id}/share"),
        Some(&w.admin),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(runs(&app, &w.dev.token, &shared_path).await?.is_empty());
    app.get(&format!("{shared_path}/{run_id}"), Some(&w.dev.token))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

async fn another_tenant_sees_no_runs(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    install(&app, &w.admin, "acme", &hello, json!({})).await?;
    event(&app, &w.admin, "acme", "greet", json!("Ada")).await?;
    let acme_run = runs(&app, &w.admin, "/v1/tenants/acme/runs").await?[0]["id"]
        .as_str()
        .context("id")?
        .to_owned();
    let (_, globex) = app.user("admin@globex.example").await?;
    app.tenant(&globex, "globex").await?;
    let routes: Vec<(Method, String)> = vec![
        (Method::GET, "/v1/tenants/acme/runs".into()),
        (Method::GET, format!("/v1/tenants/acme/runs/{acme_run}")),
        (Method::GET, "/v1/tenants/acme/runs/export".into()),
        (
            Method::PUT,
            format!("/v1/tenants/acme/runs/{acme_run}/share"),
        ),
        (
            Method::DELETE,
            format!("/v1/tenants/acme/runs/{acme_run}/share"),
        ),
        (
            Method::GET,
            format!("/v1/tenants/acme/installs/{hello}/daily"),
        ),
        // Its own tenant's routes do not reach acme's run either.
        (Method::GET, format!("/v1/tenants/globex/runs/{acme_run}")),
        (
            Method::PUT,
            format!("/v1/tenants/globex/runs/{acme_run}/share"),
        ),
    ];
    for (method, path) in &routes {
        let reply: Reply = app
            .call(method.clone(), path, Some(&globex), Some(json!({})))
            .await?;
        ensure!(
            reply.status == StatusCode::NOT_FOUND && reply.code() == "not_found",
            "{method} {path}: {} {}",
            reply.status,
            reply.body
        );
    }
    ensure!(
        runs(&app, &globex, "/v1/tenants/globex/runs")
            .await?
            .is_empty()
    );
    // Nothing of acme's run changed.
    let listed = runs(&app, &w.admin, "/v1/tenants/acme/runs").await?;
    ensure!(listed.iter().all(|run| run["shared"] == false));
    Ok(())
}

/// With the run log off nothing is recorded; with per-tenant metrics on, `/metrics` counts
/// each tenant's calls by outcome (and never without it).
async fn switches(database: plinth_test_support::TestDatabase) -> Result<()> {
    let mut settings = plinth_marketplace::Settings::default();
    settings.runs.enabled = false;
    settings.metrics_per_tenant = true;
    let app = TestApp::start_with_host_settings(database, settings).await?;
    let w = world(&app).await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    install(&app, &w.admin, "acme", &hello, json!({})).await?;
    event(&app, &w.admin, "acme", "greet", json!("Ada")).await?;
    event(&app, &w.admin, "acme", "greet", json!(1)).await?;
    ensure!(
        runs(&app, &w.admin, "/v1/tenants/acme/runs")
            .await?
            .is_empty()
    );
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM run_batches")
        .fetch_one(app.db().pool())
        .await?;
    ensure!(stored == 0, "{stored} runs stored with the run log off");
    let tenant_id: String = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'")
        .fetch_one(app.db().pool())
        .await?;
    let metrics = app.get("/metrics", None).await?.expect(StatusCode::OK)?;
    let text = String::from_utf8(metrics.bytes)?;
    for outcome in ["ok", "failed"] {
        let series = format!(
            "plinth_tenant_plugin_invocations_total{{tenant=\"{tenant_id}\",outcome=\"{outcome}\"}} 1"
        );
        ensure!(text.contains(&series), "no {series} in\n{text}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switches_on_sqlite() -> Result<()> {
    switches(plinth_test_support::TestDatabase::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switches_on_postgres() -> Result<()> {
    switches(plinth_test_support::TestDatabase::postgres("run_switches").await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_no_tenant_by_default() -> Result<()> {
    let app = TestApp::start_sqlite_with_host().await?;
    let w = world(&app).await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    install(&app, &w.admin, "acme", &hello, json!({})).await?;
    event(&app, &w.admin, "acme", "greet", json!("Ada")).await?;
    let metrics = app.get("/metrics", None).await?.expect(StatusCode::OK)?;
    let text = String::from_utf8(metrics.bytes)?;
    ensure!(
        text.contains("plinth_plugin_invocations_total") && !text.contains("tenant="),
        "{text}"
    );
    // The run was written, and counted.
    runs(&app, &w.admin, "/v1/tenants/acme/runs").await?;
    let metrics = app.get("/metrics", None).await?.expect(StatusCode::OK)?;
    let text = String::from_utf8(metrics.bytes)?;
    ensure!(text.contains("plinth_runs_written_total 2"), "{text}");
    Ok(())
}

/// The writer keeps a tenant within its plan's volume as it writes, without waiting for the
/// housekeeping.
async fn the_writer_keeps_the_volume(database: plinth_test_support::TestDatabase) -> Result<()> {
    let app = TestApp::start_with_host_settings(database, plinth_marketplace::Settings::default())
        .await?;
    let w = world(&app).await?;
    app.put("/v1/plans/free", Some(&w.operator), json!({"max_runs": 2}))
        .await?
        .expect(StatusCode::OK)?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    install(&app, &w.admin, "acme", &hello, json!({})).await?;
    for name in ["a", "b", "c", "d"] {
        event(&app, &w.admin, "acme", "greet", json!(name)).await?;
        let kept = runs(&app, &w.admin, "/v1/tenants/acme/runs").await?;
        ensure!(kept.len() <= 2, "{kept:?}");
    }
    let kept = runs(&app, &w.admin, "/v1/tenants/acme/runs").await?;
    ensure!(kept.len() == 2, "{kept:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_keeps_the_volume_on_sqlite() -> Result<()> {
    the_writer_keeps_the_volume(plinth_test_support::TestDatabase::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_keeps_the_volume_on_postgres() -> Result<()> {
    the_writer_keeps_the_volume(plinth_test_support::TestDatabase::postgres("run_volume").await?)
        .await
}

async fn plugin_http_requests_are_runs_too(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let echo = publish(&app, &w, &HTTP_ECHO, "echo").await?;
    install(&app, &w.admin, "acme", &echo, json!({})).await?;
    app.patch(
        &format!("/v1/tenants/acme/installs/{echo}"),
        Some(&w.admin),
        json!({"capture_runs": true}),
    )
    .await?
    .expect(StatusCode::OK)?;
    app.post(
        &format!("/p/acme/{echo}/orders"),
        Some(&w.admin),
        json!({"n": 7}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let http = runs(&app, &w.admin, "/v1/tenants/acme/runs?limit=1").await?;
    ensure!(
        http[0]["entry_kind"] == "http"
            && http[0]["entry"] == "POST /orders"
            && http[0]["outcome"] == "ok",
        "{http:?}"
    );
    let run = app
        .get(
            &format!(
                "/v1/tenants/acme/runs/{}",
                http[0]["id"].as_str().context("id")?
            ),
            Some(&w.admin),
        )
        .await?
        .expect(StatusCode::OK)?;
    let capture = &run.body["capture"];
    ensure!(
        capture["input"] == "{\"n\":7}"
            && capture["output"].as_str().is_some_and(|o| !o.is_empty()),
        "{}",
        run.body
    );
    Ok(())
}
