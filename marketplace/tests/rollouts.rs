//! Staged rollouts over HTTP with a host, on both backends, driven by an injected clock
//! (`rollout::tick` with the time the test chooses): a new version reaches the first stage's
//! tenants on approval and the rest after the soak; it pauses by itself when the breaker rolls
//! an updated install back; the kill switch halts it and rolls its updates back.

mod common;
mod publishing;

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::clock::now_ms;
use plinth_marketplace::versions::rollout::{self, stages};
use plinth_package::Package;
use plinth_test_artifacts::{HELLO, TRAP};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{Reply, TestApp};
use publishing::{Dev, developer, package_with, permissions_digest, submit_ok};

on_both_backends_with_host!(
    a_rollout_follows_its_schedule_and_the_clock,
    rollout_input_and_rights_are_checked,
    a_failing_update_pauses_the_rollout_by_itself,
    the_kill_switch_rolls_the_updated_installs_back,
);

const PLUGIN: &str = "labs.hello";
const HOUR_MS: i64 = 60 * 60 * 1000;

/// The operator, developer `labs` with `labs.hello` 1.0.0 published, and tenants (slug → id),
/// each with 1.0.0 installed on the `minor` policy: enough of them that the first stage (50%)
/// holds some and not others.
struct World {
    operator: String,
    dev: Dev,
    tenants: BTreeMap<String, String>,
}

impl World {
    /// The tenants (slugs) the first `percent` percent of the line holds.
    fn in_stage(&self, percent: u8) -> Vec<String> {
        self.tenants
            .iter()
            .filter(|(_, id)| stages::includes(percent, id, PLUGIN))
            .map(|(slug, _)| slug.clone())
            .collect()
    }
}

async fn world(app: &TestApp) -> Result<World> {
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    release(
        app,
        &operator,
        &dev,
        package_with(&HELLO, PLUGIN, "1.0.0", "", None, Some(&dev.key))?,
    )
    .await?;
    let digest = permissions_digest(app, PLUGIN, "1.0.0").await?;
    let mut w = World {
        operator,
        dev,
        tenants: BTreeMap::new(),
    };
    for n in 0..40 {
        let inside = w.in_stage(50).len();
        if w.tenants.len() >= 4 && inside > 0 && inside < w.tenants.len() {
            break;
        }
        let slug = format!("t{n:02}");
        app.tenant(&w.operator, &slug).await?;
        app.post(
            &format!("/v1/tenants/{slug}/installs"),
            Some(&w.operator),
            json!({"plugin": PLUGIN, "version": "1.0.0", "permissions_digest": digest, "update_policy": "minor"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
        let id: String = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
            .bind(&slug)
            .fetch_one(app.db().pool())
            .await?;
        w.tenants.insert(slug, id);
    }
    Ok(w)
}

/// Submits `bytes` and has the operator approve them.
async fn release(app: &TestApp, operator: &str, dev: &Dev, bytes: Vec<u8>) -> Result<()> {
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

/// Hello 1.1.0 (the same permissions, so it is applied automatically).
fn hello_1_1(dev: &Dev) -> Result<Vec<u8>> {
    package_with(&HELLO, PLUGIN, "1.1.0", "", None, Some(&dev.key))
}

/// The trap component as hello 1.1.0: it fails every event.
fn trap_1_1(dev: &Dev) -> Result<Vec<u8>> {
    let manifest = publishing::manifest(&HELLO, PLUGIN, "1.1.0", "")?;
    let mut package = Package::new(manifest, std::fs::read(TRAP.wasm)?, None, None)?;
    package.sign(&dev.key);
    Ok(package.to_bytes()?)
}

async fn schedule(app: &TestApp, token: &str, version: &str, stages: Value) -> Result<Reply> {
    app.put(
        &format!("/v1/plugins/{PLUGIN}/versions/{version}/rollout"),
        Some(token),
        json!({ "stages": stages }),
    )
    .await
}

async fn rollout_of(app: &TestApp, token: &str) -> Result<Value> {
    Ok(app
        .get(
            &format!("/v1/plugins/{PLUGIN}/versions/1.1.0/rollout"),
            Some(token),
        )
        .await?
        .expect(StatusCode::OK)?
        .body)
}

/// The tenants (slugs) whose install is on `version`, in storage and in the host alike.
async fn on_version(app: &TestApp, w: &World, version: &str) -> Result<Vec<String>> {
    let runtime = app.state.runtime()?;
    let mut on = Vec::new();
    for (slug, id) in &w.tenants {
        let stored: String = sqlx::query_scalar(
            "SELECT version FROM installs WHERE tenant_id = $1 AND plugin_id = $2",
        )
        .bind(id)
        .bind(PLUGIN)
        .fetch_one(app.db().pool())
        .await?;
        let hosted = runtime
            .host
            .installs(id)
            .into_iter()
            .find(|info| info.plugin == PLUGIN)
            .map(|info| info.version)
            .context("not in the host")?;
        ensure!(
            stored == hosted,
            "{slug}: storage has {stored}, the host {hosted}"
        );
        if stored == version {
            on.push(slug.clone());
        }
    }
    Ok(on)
}

async fn a_rollout_follows_its_schedule_and_the_clock(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let first = w.in_stage(50);
    let scheduled = schedule(
        &app,
        &w.dev.token,
        "1.1.0",
        json!([{"percent": 50, "soak_minutes": 60}, {"percent": 100}]),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(
        scheduled.body["state"] == "pending" && scheduled.body["percent"] == 0,
        "{}",
        scheduled.body
    );

    let approved_at = now_ms();
    release(&app, &w.operator, &w.dev, hello_1_1(&w.dev)?).await?;
    ensure!(
        on_version(&app, &w, "1.1.0").await? == first,
        "only the first stage follows"
    );
    let active = rollout_of(&app, &w.dev.token).await?;
    ensure!(
        active["state"] == "active"
            && active["stage"] == 1
            && active["percent"] == 50
            && active["updated_installs"] == first.len()
            && active["next_stage_at"].is_string(),
        "{active}"
    );

    // Nothing is due before the soak has passed.
    ensure!(rollout::tick(&app.state, approved_at + HOUR_MS / 2).await? == 0);
    ensure!(on_version(&app, &w, "1.1.0").await? == first);
    // After it, the last stage reaches everyone, and the rollout is complete.
    ensure!(rollout::tick(&app.state, approved_at + HOUR_MS + 60_000).await? == 1);
    ensure!(on_version(&app, &w, "1.1.0").await?.len() == w.tenants.len());
    let complete = rollout_of(&app, &w.operator).await?;
    ensure!(
        complete["state"] == "complete"
            && complete["percent"] == 100
            && complete["updated_installs"] == w.tenants.len()
            && complete["next_stage_at"].is_null(),
        "{complete}"
    );
    ensure!(rollout::tick(&app.state, approved_at + 10 * HOUR_MS).await? == 0);

    let actions = app.audit_actions(&w.operator).await?;
    for action in ["rollout.scheduled", "rollout.started", "rollout.completed"] {
        ensure!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    let inbox = app
        .get("/v1/publishers/labs/notifications", Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    let told = inbox.body["items"].as_array().map_or(0, |items| {
        items.iter().filter(|n| n["kind"] == "rollout").count()
    });
    ensure!(told == 3, "scheduled, started, completed: {}", inbox.body);
    Ok(())
}

async fn rollout_input_and_rights_are_checked(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let cases = [
        (json!([]), "invalid_rollout"),
        (json!([{"percent": 50}]), "invalid_rollout"),
        (
            json!([{"percent": 60}, {"percent": 40}, {"percent": 100}]),
            "invalid_rollout",
        ),
        (
            json!([{"percent": 50, "soak_minutes": -5}, {"percent": 100}]),
            "invalid_rollout",
        ),
    ];
    for (stages, code) in cases {
        let refused = schedule(&app, &w.dev.token, "1.1.0", stages.clone())
            .await?
            .expect_error(StatusCode::BAD_REQUEST, code)?;
        ensure!(
            refused.message().contains("stage"),
            "{stages} → {}",
            refused.body
        );
    }
    schedule(&app, &w.dev.token, "one", json!([{"percent": 100}]))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_version")?;
    schedule(&app, &w.dev.token, "1.0.0", json!([{"percent": 100}]))
        .await?
        .expect_error(StatusCode::CONFLICT, "version_published")?;
    // Outside the publisher (a tenant admin, another developer): 404; a stranger: 401.
    let (_, other) = app.user("other@example.com").await?;
    schedule(&app, &other, "1.1.0", json!([{"percent": 100}]))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.put(
        &format!("/v1/plugins/{PLUGIN}/versions/1.1.0/rollout"),
        None,
        json!({"stages": [{"percent": 100}]}),
    )
    .await?
    .expect(StatusCode::UNAUTHORIZED)?;
    app.get(
        &format!("/v1/plugins/{PLUGIN}/versions/1.1.0/rollout"),
        Some(&w.dev.token),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    ensure!(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rollouts")
            .fetch_one(app.db().pool())
            .await?
            == 0,
        "refused requests store nothing"
    );
    // A pending rollout can be replaced, not paused or resumed.
    schedule(
        &app,
        &w.dev.token,
        "1.1.0",
        json!([{"percent": 10}, {"percent": 100}]),
    )
    .await?
    .expect(StatusCode::OK)?;
    let replaced = schedule(
        &app,
        &w.operator,
        "1.1.0",
        json!([{"percent": 30}, {"percent": 100}]),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(
        replaced.body["stages"][0]["percent"] == 30,
        "{}",
        replaced.body
    );
    app.post(
        &format!("/v1/plugins/{PLUGIN}/versions/1.1.0/rollout/pause"),
        Some(&w.dev.token),
        json!({"reason": "wait"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "rollout_state")?;
    app.post(
        &format!("/v1/plugins/{PLUGIN}/versions/1.1.0/rollout/resume"),
        Some(&w.dev.token),
        json!({}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "rollout_state")?;
    Ok(())
}

async fn a_failing_update_pauses_the_rollout_by_itself(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let first = w.in_stage(50);
    schedule(
        &app,
        &w.dev.token,
        "1.1.0",
        json!([{"percent": 50, "soak_minutes": 60}, {"percent": 100}]),
    )
    .await?
    .expect(StatusCode::OK)?;
    let approved_at = now_ms();
    release(&app, &w.operator, &w.dev, trap_1_1(&w.dev)?).await?;
    ensure!(on_version(&app, &w, "1.1.0").await? == first);

    // One updated tenant's events fail: the test host's breaker rolls it back after 3 calls.
    let failing = first.first().context("a tenant in the first stage")?;
    for _ in 0..3 {
        app.post(
            &format!("/v1/tenants/{failing}/events"),
            Some(&w.operator),
            json!({"topic": "greet", "payload": {}}),
        )
        .await?
        .expect(StatusCode::OK)?;
    }
    let mut paused = Value::Null;
    for _ in 0..100 {
        paused = rollout_of(&app, &w.dev.token).await?;
        if paused["state"] == "paused" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ensure!(
        paused["state"] == "paused"
            && paused["reason"]
                .as_str()
                .is_some_and(|r| r.contains("rolled back by its breaker")),
        "{paused}"
    );
    // Paused: the soak passing starts nothing, and no other tenant gets the failing version.
    ensure!(rollout::tick(&app.state, approved_at + 2 * HOUR_MS).await? == 0);
    let on_new = on_version(&app, &w, "1.1.0").await?;
    ensure!(
        !on_new.contains(failing) && on_new.iter().all(|slug| first.contains(slug)),
        "{on_new:?}"
    );
    let actions = app.audit_actions(&w.operator).await?;
    ensure!(actions.iter().any(|a| a == "rollout.paused"), "{actions:?}");
    Ok(())
}

async fn the_kill_switch_rolls_the_updated_installs_back(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let first = w.in_stage(50);
    schedule(
        &app,
        &w.dev.token,
        "1.1.0",
        json!([{"percent": 50, "soak_minutes": 60}, {"percent": 100}]),
    )
    .await?
    .expect(StatusCode::OK)?;
    let approved_at = now_ms();
    release(&app, &w.operator, &w.dev, hello_1_1(&w.dev)?).await?;
    ensure!(on_version(&app, &w, "1.1.0").await? == first);

    // Paused by hand (with a reason), then resumed: the stage soaks again from the resume.
    let path = format!("/v1/plugins/{PLUGIN}/versions/1.1.0/rollout");
    app.post(&format!("{path}/pause"), Some(&w.dev.token), json!({}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "reason_required")?;
    app.post(
        &format!("{path}/pause"),
        Some(&w.dev.token),
        json!({"reason": "Checking a report."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(rollout::tick(&app.state, approved_at + 2 * HOUR_MS).await? == 0);
    app.post(&format!("{path}/resume"), Some(&w.dev.token), json!({}))
        .await?
        .expect(StatusCode::OK)?;

    // The kill switch, by the publisher: every install the rollout updated goes back.
    let halted = app
        .post(
            &format!("{path}/halt"),
            Some(&w.dev.token),
            json!({"reason": "Data loss reported."}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        halted.body["rollout"]["state"] == "halted"
            && halted.body["installs"].as_array().map(Vec::len) == Some(first.len()),
        "{}",
        halted.body
    );
    ensure!(on_version(&app, &w, "1.1.0").await?.is_empty());
    ensure!(on_version(&app, &w, "1.0.0").await?.len() == w.tenants.len());
    // Halted for good: no stage starts, and it cannot be halted or resumed again.
    ensure!(rollout::tick(&app.state, approved_at + 10 * HOUR_MS).await? == 0);
    ensure!(on_version(&app, &w, "1.1.0").await?.is_empty());
    app.post(
        &format!("{path}/halt"),
        Some(&w.operator),
        json!({"reason": "again"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "rollout_state")?;
    app.post(&format!("{path}/resume"), Some(&w.operator), json!({}))
        .await?
        .expect_error(StatusCode::CONFLICT, "rollout_state")?;

    let tenant = first.first().context("a tenant in the first stage")?;
    let inbox = app
        .get(
            &format!("/v1/tenants/{tenant}/notifications"),
            Some(&w.operator),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        inbox.body["items"].as_array().is_some_and(|items| items
            .iter()
            .any(|n| n["kind"] == "install_rolled_back"
                && n["message"].as_str().is_some_and(|m| m.contains("halted")))),
        "{}",
        inbox.body
    );
    let actions = app.audit_actions(&w.operator).await?;
    for action in ["rollout.paused", "rollout.resumed", "rollout.halted"] {
        ensure!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    Ok(())
}
