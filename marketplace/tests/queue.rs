//! Asynchronous events and schedules (issue 24), on both backends with a host. The background
//! worker and ticker are off: each test drives [`work_due`] and the schedule ticker with the
//! time it chooses, so back-off, dead letters and missed ticks are checked without waiting.

mod common;
mod publishing;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::AppState;
use plinth_marketplace::queue::store::emitted_id;
use plinth_marketplace::queue::worker::work_due;
use plinth_marketplace::schedules::{self, Ticker};
use plinth_marketplace::{Settings, clock::now_ms};
use plinth_test_artifacts::QUEUE_PROBE;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{Reply, TestApp};
use publishing::{developer, permissions_digest, publish};

/// The wait before a failed event's second attempt in these tests.
const RETRY_BASE: Duration = Duration::from_secs(600);

const PROBE: &str = "labs.probe";

fn settings() -> Settings {
    let mut settings = Settings::default();
    settings.queue.background = false;
    settings.queue.retry_base = RETRY_BASE;
    settings
}

on_both_backends_with_settings!(host settings =>
    an_async_event_is_stored_then_delivered_with_each_plugins_result,
    an_idempotency_key_returns_the_first_requests_event,
    failures_back_off_then_dead_letter_and_replay,
    the_queue_is_bounded_per_tenant_and_private_to_it,
    an_event_tree_shares_its_plans_budget,
    a_schedule_ticks_once_per_tick_across_hosts,
    after_downtime_only_the_latest_missed_tick_is_delivered,
    a_suspended_tenants_queued_events_and_schedules_do_not_run,
);

/// A tenant `slug` with the probe installed; returns (owner token, API key).
async fn probe_tenant(app: &TestApp, slug: &str) -> Result<(String, String)> {
    let (_, owner) = app.user(&format!("owner@{slug}.example")).await?;
    app.tenant(&owner, slug).await?;
    let digest = permissions_digest(app, PROBE, "0.1.0").await?;
    app.post(
        &format!("/v1/tenants/{slug}/installs"),
        Some(&owner),
        json!({"plugin": PROBE, "permissions_digest": digest}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let key = app.api_key(&owner, slug).await?;
    Ok((owner, key))
}

/// The operator, the probe published, and tenant `acme` with it installed.
async fn setup(app: &TestApp) -> Result<(String, String, String)> {
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    publish(app, &dev, &operator, &QUEUE_PROBE, PROBE, "0.1.0").await?;
    let (owner, key) = probe_tenant(app, "acme").await?;
    Ok((operator, owner, key))
}

/// `POST /v1/tenants/{slug}/events` asking for asynchronous delivery, with an optional
/// idempotency key.
async fn send_async(
    app: &TestApp,
    key: &str,
    slug: &str,
    topic: &str,
    payload: Value,
    idempotency_key: Option<&str>,
) -> Result<Reply> {
    let mut request = app
        .client
        .post(format!("{}/v1/tenants/{slug}/events", app.base))
        .bearer_auth(key)
        .json(&json!({"topic": topic, "payload": payload, "delivery": "async"}));
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("Idempotency-Key", idempotency_key);
    }
    common::reply(request.send().await?).await
}

/// Queues a `job` and returns its id.
async fn job(app: &TestApp, key: &str, payload: Value) -> Result<String> {
    let accepted = send_async(app, key, "acme", "job", payload, None)
        .await?
        .expect(StatusCode::ACCEPTED)?;
    Ok(accepted.body["id"].as_str().context("event id")?.to_owned())
}

async fn shown(app: &TestApp, key: &str, id: &str) -> Result<Value> {
    Ok(app
        .get(&format!("/v1/tenants/acme/events/{id}"), Some(key))
        .await?
        .expect(StatusCode::OK)?
        .body)
}

async fn an_async_event_is_stored_then_delivered_with_each_plugins_result(
    app: TestApp,
) -> Result<()> {
    let (_, _, key) = setup(&app).await?;
    let accepted = send_async(&app, &key, "acme", "job", json!({"emit": 2}), None)
        .await?
        .expect(StatusCode::ACCEPTED)?;
    let id = accepted.body["id"].as_str().context("id")?.to_owned();
    ensure!(accepted.body["status"] == "queued", "{}", accepted.body);
    let location = accepted.headers.get("location").context("Location")?;
    ensure!(location.to_str()? == format!("/v1/tenants/acme/events/{id}"));
    // Stored before the answer: it is there, queued, with no attempt yet.
    let before = shown(&app, &key, &id).await?;
    ensure!(
        before["status"] == "queued" && before["attempts"] == 0,
        "{before}"
    );

    ensure!(work_due(&app.state, now_ms()).await? == 1);
    let after = shown(&app, &key, &id).await?;
    ensure!(after["status"] == "delivered", "{after}");
    let results = after["results"].as_array().context("results")?;
    ensure!(results.len() == 1, "{after}");
    ensure!(results[0]["plugin"] == PROBE && results[0]["outcome"] == "ok");
    // The plugin got the event's own id, once.
    ensure!(results[0]["output"]["id"] == id.as_str(), "{after}");
    ensure!(results[0]["output"]["seen"] == 1, "{after}");

    // What the plugin emitted was queued as events of their own and is delivered next.
    ensure!(work_due(&app.state, now_ms()).await? == 2);
    let listed = app
        .get("/v1/tenants/acme/events?status=delivered", Some(&key))
        .await?
        .expect(StatusCode::OK)?;
    let items = listed.body["items"].as_array().context("items")?;
    ensure!(items.len() == 3, "{}", listed.body);
    for step in 0..2 {
        let child = shown(&app, &key, &emitted_id(&id, PROBE, step)).await?;
        ensure!(
            child["depth"] == 1 && child["parent_id"] == id.as_str(),
            "{child}"
        );
        ensure!(
            child["results"][0]["output"]["payload"]["step"] == step,
            "{child}"
        );
    }

    // `Prefer: respond-async` asks for the same.
    let preferred = app
        .client
        .post(format!("{}/v1/tenants/acme/events", app.base))
        .bearer_auth(&key)
        .header("Prefer", "respond-async, wait=5")
        .json(&json!({"topic": "job", "payload": {}}))
        .send()
        .await?;
    ensure!(preferred.status() == StatusCode::ACCEPTED);
    ensure!(
        preferred
            .headers()
            .get("preference-applied")
            .is_some_and(|v| v == "respond-async")
    );
    Ok(())
}

async fn an_idempotency_key_returns_the_first_requests_event(app: TestApp) -> Result<()> {
    let (_, _, key) = setup(&app).await?;
    let first = send_async(&app, &key, "acme", "job", json!({"n": 1}), Some("order-42"))
        .await?
        .expect(StatusCode::ACCEPTED)?;
    let again = send_async(&app, &key, "acme", "job", json!({"n": 1}), Some("order-42"))
        .await?
        .expect(StatusCode::ACCEPTED)?;
    ensure!(
        first.body["id"] == again.body["id"],
        "{} {}",
        first.body,
        again.body
    );
    ensure!(first.body["replayed"] == false && again.body["replayed"] == true);
    // One event was stored, and it is delivered once.
    ensure!(work_due(&app.state, now_ms()).await? == 1);
    let after = send_async(&app, &key, "acme", "job", json!({"n": 1}), Some("order-42"))
        .await?
        .expect(StatusCode::ACCEPTED)?;
    ensure!(after.body["status"] == "delivered", "{}", after.body);

    send_async(&app, &key, "acme", "job", json!({"n": 2}), Some("order-42"))
        .await?
        .expect_error(StatusCode::CONFLICT, "idempotency_key_reused")?;
    send_async(&app, &key, "acme", "job", json!({}), Some("has space"))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_idempotency_key")?;
    let sync_with_key = app
        .client
        .post(format!("{}/v1/tenants/acme/events", app.base))
        .bearer_auth(&key)
        .header("Idempotency-Key", "k1")
        .json(&json!({"topic": "job", "payload": {}}))
        .send()
        .await?;
    common::reply(sync_with_key)
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_idempotency_key")?;
    Ok(())
}

async fn failures_back_off_then_dead_letter_and_replay(app: TestApp) -> Result<()> {
    let (operator, _, key) = setup(&app).await?;
    app.put(
        "/v1/plans/free",
        Some(&operator),
        json!({"event_attempts": 3}),
    )
    .await?
    .expect(StatusCode::OK)?;

    // Fails once, then succeeds on the retry, which waits for the back-off.
    let flaky = job(&app, &key, json!({"fail_times": 1})).await?;
    let t0 = now_ms();
    ensure!(work_due(&app.state, t0).await? == 1);
    let failed_once = shown(&app, &key, &flaky).await?;
    ensure!(
        failed_once["status"] == "queued" && failed_once["attempts"] == 1,
        "{failed_once}"
    );
    ensure!(
        failed_once["results"][0]["outcome"] == "retry",
        "{failed_once}"
    );
    ensure!(failed_once["results"][0]["error"]["code"] == "plugin_error");
    let wait = failed_once["next_attempt_at"].as_i64().context("next")? - t0;
    let base = i64::try_from(RETRY_BASE.as_millis())?;
    ensure!(
        wait >= base / 2 && wait <= base,
        "back-off {wait} ms of {base}"
    );
    ensure!(
        work_due(&app.state, t0 + 1_000).await? == 0,
        "retried before its back-off"
    );
    ensure!(work_due(&app.state, t0 + base).await? == 1);
    let delivered = shown(&app, &key, &flaky).await?;
    ensure!(
        delivered["status"] == "delivered" && delivered["attempts"] == 2,
        "{delivered}"
    );
    ensure!(
        delivered["results"][1]["output"]["seen"] == 2,
        "{delivered}"
    );

    // Always failing: three attempts, then a dead letter.
    let doomed = job(&app, &key, json!({"always_fail": true})).await?;
    let mut at = t0 + base;
    for _ in 0..3 {
        ensure!(work_due(&app.state, at).await? == 1);
        at += 2 * i64::try_from(Duration::from_secs(3600).as_millis())?;
    }
    let dead = shown(&app, &key, &doomed).await?;
    ensure!(dead["status"] == "dead" && dead["attempts"] == 3, "{dead}");
    ensure!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("plugin_error")),
        "{dead}"
    );
    let outcomes: Vec<&str> = dead["results"]
        .as_array()
        .context("results")?
        .iter()
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    ensure!(outcomes == ["retry", "retry", "failed"], "{outcomes:?}");
    // `/metrics` counts what the worker recorded: two retries of `doomed` and one of
    // `flaky`, one failure for good, one dead letter.
    let metrics = app.get("/metrics", None).await?.expect(StatusCode::OK)?;
    let text = String::from_utf8(metrics.bytes)?;
    for line in [
        "plinth_queued_deliveries_total{outcome=\"retry\"} 3",
        "plinth_queued_deliveries_total{outcome=\"failed\"} 1",
        "plinth_queued_deliveries_total{outcome=\"ok\"} 1",
        "plinth_queued_events_dead_total 1",
        "plinth_queued_event_leases_lost_total 0",
        "plinth_queue_depth{queue=\"queued_events\"} 0",
    ] {
        ensure!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    let letters = app
        .get("/v1/tenants/acme/events?status=dead", Some(&key))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(letters.body["items"].as_array().map(Vec::len) == Some(1));
    ensure!(letters.body["items"][0]["id"] == doomed.as_str());

    // A replay delivers it again from a fresh count of attempts; a delivered event is not
    // replayed.
    app.post(
        &format!("/v1/tenants/acme/events/{doomed}/replay"),
        Some(&key),
        json!({}),
    )
    .await?
    .expect(StatusCode::ACCEPTED)?;
    let replayed = shown(&app, &key, &doomed).await?;
    ensure!(
        replayed["status"] == "queued" && replayed["attempts"] == 0,
        "{replayed}"
    );
    ensure!(work_due(&app.state, at).await? == 1);
    ensure!(shown(&app, &key, &doomed).await?["attempts"] == 1);
    app.post(
        &format!("/v1/tenants/acme/events/{flaky}/replay"),
        Some(&key),
        json!({}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "not_dead")?;
    Ok(())
}

async fn the_queue_is_bounded_per_tenant_and_private_to_it(app: TestApp) -> Result<()> {
    let (operator, _, key) = setup(&app).await?;
    let (_, other_key) = probe_tenant(&app, "globex").await?;
    app.put(
        "/v1/plans/free",
        Some(&operator),
        json!({"max_queued_events": 2}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let first = job(&app, &key, json!({})).await?;
    job(&app, &key, json!({})).await?;
    let full = send_async(&app, &key, "acme", "job", json!({}), None)
        .await?
        .expect_error(StatusCode::TOO_MANY_REQUESTS, "queue_full")?;
    ensure!(full.headers.contains_key("retry-after"));
    ensure!(
        full.message().contains("max_queued_events"),
        "{}",
        full.message()
    );
    // Another tenant's queue is its own.
    send_async(&app, &other_key, "globex", "job", json!({}), None)
        .await?
        .expect(StatusCode::ACCEPTED)?;
    // Delivering makes room again.
    work_due(&app.state, now_ms()).await?;
    job(&app, &key, json!({})).await?;

    // A tenant sees its own events only.
    app.get(
        &format!("/v1/tenants/globex/events/{first}"),
        Some(&other_key),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.get(
        &format!("/v1/tenants/acme/events/{first}"),
        Some(&other_key),
    )
    .await?
    .expect(StatusCode::NOT_FOUND)?;
    let theirs = app
        .get("/v1/tenants/globex/events", Some(&other_key))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        theirs.body["items"].as_array().map(Vec::len) == Some(1),
        "{}",
        theirs.body
    );
    app.get("/v1/tenants/acme/events?status=lost", Some(&key))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
    Ok(())
}

async fn an_event_tree_shares_its_plans_budget(app: TestApp) -> Result<()> {
    let (operator, _, key) = setup(&app).await?;
    app.put(
        "/v1/plans/free",
        Some(&operator),
        json!({"max_invocations_per_event": 3}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let root = job(&app, &key, json!({"emit": 5})).await?;
    ensure!(work_due(&app.state, now_ms()).await? == 1);
    ensure!(work_due(&app.state, now_ms()).await? == 5);
    // The root took one invocation of three: two of its five children ran.
    let mut ran = 0;
    let mut skipped = 0;
    for step in 0..5 {
        let child = shown(&app, &key, &emitted_id(&root, PROBE, step)).await?;
        ensure!(child["status"] == "delivered", "{child}");
        match child["results"][0]["outcome"].as_str() {
            Some("ok") => ran += 1,
            Some("skipped") => {
                ensure!(child["results"][0]["error"]["code"] == "event_budget_exhausted");
                skipped += 1;
            }
            other => anyhow::bail!("outcome {other:?}: {child}"),
        }
    }
    ensure!((ran, skipped) == (2, 3), "ran {ran}, skipped {skipped}");
    Ok(())
}

/// The number of `job.tick` events queued for the tenant.
async fn ticks(app: &TestApp, key: &str) -> Result<Vec<Value>> {
    let listed = app
        .get("/v1/tenants/acme/events?limit=100", Some(key))
        .await?
        .expect(StatusCode::OK)?;
    Ok(listed.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|event| event["topic"] == "job.tick")
        .cloned()
        .collect())
}

/// A time two days ahead of this test's writing, on a multiple of five minutes.
const T0: i64 = 1_796_637_600_000;
const FIVE_MINUTES: i64 = 300_000;

async fn a_schedule_ticks_once_per_tick_across_hosts(app: TestApp) -> Result<()> {
    let (_, _, key) = setup(&app).await?;
    let other: AppState = app.another_host().await?;
    // First sight: the schedule starts; nothing is queued for the tick already past.
    ensure!(schedules::tick(&app.state, T0 + 1_000).await? == 0);
    ensure!(ticks(&app, &key).await?.is_empty());
    // Both hosts tick at the next tick, at once: one queues it.
    let at = T0 + FIVE_MINUTES + 2_000;
    let (a, b) = tokio::join!(schedules::tick(&app.state, at), schedules::tick(&other, at));
    ensure!(a? + b? == 1, "the tick was queued twice or never");
    // Ticking again within the same tick, with a fresh ticker each (a restarted host), queues
    // nothing.
    ensure!(schedules::tick(&other, at + 10_000).await? == 0);
    ensure!(Ticker::new().tick(&app.state, at + 20_000).await? == 0);
    let queued = ticks(&app, &key).await?;
    ensure!(queued.len() == 1, "{queued:?}");
    ensure!(queued[0]["plugin"] == PROBE, "{}", queued[0]);
    // The tick is delivered to the install alone, with its time.
    ensure!(work_due(&other, at).await? == 1);
    let tick = shown(&app, &key, queued[0]["id"].as_str().context("id")?).await?;
    ensure!(tick["status"] == "delivered", "{tick}");
    let payload = &tick["results"][0]["output"]["payload"];
    ensure!(payload["tick"] == T0 + FIVE_MINUTES, "{tick}");
    ensure!(payload["schedule"] == "every 5m", "{tick}");
    Ok(())
}

async fn after_downtime_only_the_latest_missed_tick_is_delivered(app: TestApp) -> Result<()> {
    let (_, _, key) = setup(&app).await?;
    let mut ticker = Ticker::new();
    ensure!(ticker.tick(&app.state, T0).await? == 0);
    ensure!(ticker.tick(&app.state, T0 + FIVE_MINUTES).await? == 1);
    // A ticker remembers when the schedule is next due, and does nothing before.
    ensure!(ticker.tick(&app.state, T0 + FIVE_MINUTES + 60_000).await? == 0);
    // Six ticks pass while no host runs: a restarted host queues the latest only.
    let back = T0 + 7 * FIVE_MINUTES + 30_000;
    ensure!(Ticker::new().tick(&app.state, back).await? == 1);
    let queued = ticks(&app, &key).await?;
    ensure!(queued.len() == 2, "{queued:?}");
    work_due(&app.state, back).await?;
    let newest = shown(&app, &key, queued[0]["id"].as_str().context("id")?).await?;
    ensure!(
        newest["results"][0]["output"]["payload"]["tick"] == T0 + 7 * FIVE_MINUTES,
        "{newest}"
    );
    Ok(())
}

/// While a tenant is suspended its queued events do not run (each attempt fails with
/// `payment_required` and is retried with back-off, as any failure) and its schedules do not
/// fire; once lifted, both work again.
async fn a_suspended_tenants_queued_events_and_schedules_do_not_run(app: TestApp) -> Result<()> {
    let (operator, _, key) = setup(&app).await?;
    ensure!(
        schedules::tick(&app.state, T0 + 1_000).await? == 0,
        "first sight"
    );
    let queued = job(&app, &key, json!({})).await?;
    app.put(
        "/v1/tenants/acme/suspension",
        Some(&operator),
        json!({"reason": "Unpaid"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let t0 = now_ms();
    ensure!(work_due(&app.state, t0).await? == 1);
    let refused = shown(&app, &key, &queued).await?;
    ensure!(
        refused["status"] == "queued"
            && refused["results"][0]["error"]["code"] == "payment_required"
            && refused["next_attempt_at"].as_i64() >= Some(t0 + 3_600_000),
        "tried again in an hour: {refused}"
    );
    ensure!(
        schedules::tick(&app.state, T0 + FIVE_MINUTES + 2_000).await? == 0,
        "a suspended tenant's schedule fired"
    );
    app.delete("/v1/tenants/acme/suspension", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(schedules::tick(&app.state, T0 + 2 * FIVE_MINUTES + 2_000).await? == 1);
    let retry_at = refused["next_attempt_at"]
        .as_i64()
        .context("next attempt")?;
    ensure!(work_due(&app.state, retry_at.max(t0) + 1).await? >= 1);
    let delivered = shown(&app, &key, &queued).await?;
    ensure!(delivered["status"] == "delivered", "{delivered}");
    Ok(())
}
