//! Versions over HTTP with a host, on both backends: automatic updates within the grant and
//! consent for more (or for a secret made plain), policies and pins, tenant / operator / automatic rollbacks, yanks
//! (security yanks checked through the host), blocks, appeals, change of control, and an
//! approval racing a security yank.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_package::{Package, SecretKey};
use plinth_test_artifacts::{COUNTER, HELLO, TRAP, TestPlugin, WEBHOOK_NOTIFY};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use common::{Reply, TestApp};
use publishing::{Dev, developer, package_with, submit_ok};

on_both_backends_with_host!(
    updates_follow_the_grant_and_ask_consent_for_more,
    policies_and_pins_decide_who_follows,
    manual_update_input_is_checked,
    tenant_rollback_returns_and_refuses_without_previous,
    yanked_versions_are_refused_and_yank_input_is_checked,
    security_yank_moves_every_install_off_the_version,
    operator_rollback_moves_newer_installs,
    block_is_a_kill_switch_until_unblocked,
    appeals_are_heard_once_by_someone_else,
    change_of_control_forces_full_review_and_holds_updates,
    automatic_rollback_is_recorded_and_notified,
    concurrent_approval_and_security_yank_stay_consistent,
    a_secret_stays_sealed_and_making_it_plain_needs_consent,
);

const COUNTER_ID: &str = "labs.counter";
const EXTRA_HTTP: &str = "http = { hosts = [\"api.example.com\"] }";

/// The operator, a second reviewer, a developer publishing as `labs`, and tenant `acme`
/// owned by `admin`.
struct World {
    operator: String,
    reviewer: String,
    dev: Dev,
    admin: String,
}

async fn world(app: &TestApp) -> Result<World> {
    let operator = app.operator().await?;
    let (_, reviewer) = app.reviewer(&operator, "reviewer@plinth.example").await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    let (_, admin) = app.user("admin@acme.example").await?;
    app.tenant(&admin, "acme").await?;
    Ok(World {
        operator,
        reviewer,
        dev,
        admin,
    })
}

async fn tenant_id(app: &TestApp, slug: &str) -> Result<String> {
    Ok(sqlx::query("SELECT id FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_one(app.db().pool())
        .await?
        .try_get("id")?)
}

/// Submits `plugin` as `id` `version` (with `extra` permissions); returns the submission id.
async fn submit(
    app: &TestApp,
    dev: &Dev,
    plugin: &TestPlugin,
    id: &str,
    version: &str,
    extra: &str,
) -> Result<String> {
    let bytes = package_with(plugin, id, version, extra, Some("# Test\n"), Some(&dev.key))?;
    submit_ok(app, &dev.token, bytes).await
}

async fn approve(app: &TestApp, reviewer: &str, submission: &str) -> Result<Reply> {
    app.post(
        &format!("/v1/submissions/{submission}/decision"),
        Some(reviewer),
        json!({"decision": "approve", "reason": "Reviewed in a test."}),
    )
    .await
}

/// Publishes and approves (by the operator) `plugin` as `id` `version`.
async fn release(
    app: &TestApp,
    w: &World,
    plugin: &TestPlugin,
    id: &str,
    version: &str,
    extra: &str,
) -> Result<()> {
    let submission = submit(app, &w.dev, plugin, id, version, extra).await?;
    approve(app, &w.operator, &submission)
        .await?
        .expect(StatusCode::OK)?;
    Ok(())
}

async fn counter(app: &TestApp, w: &World, version: &str, extra: &str) -> Result<()> {
    release(app, w, &COUNTER, COUNTER_ID, version, extra).await
}

async fn digest(app: &TestApp, id: &str, version: &str) -> Result<String> {
    let shown = app
        .get(&format!("/v1/plugins/{id}/versions/{version}"), None)
        .await?
        .expect(StatusCode::OK)?;
    Ok(shown.body["permissions_digest"]
        .as_str()
        .context("permissions_digest")?
        .to_owned())
}

/// Installs `id` `version` for `slug` with `policy`, consenting to its permissions.
async fn install(
    app: &TestApp,
    token: &str,
    slug: &str,
    id: &str,
    version: &str,
    policy: &str,
) -> Result<Reply> {
    let digest = digest(app, id, version).await?;
    app.post(
        &format!("/v1/tenants/{slug}/installs"),
        Some(token),
        json!({"plugin": id, "version": version, "permissions_digest": digest, "update_policy": policy}),
    )
    .await
}

/// `POST …/installs/{id}/update` to `version` with its digest.
async fn update(app: &TestApp, token: &str, slug: &str, id: &str, version: &str) -> Result<Reply> {
    let digest = digest(app, id, version).await?;
    app.post(
        &format!("/v1/tenants/{slug}/installs/{id}/update"),
        Some(token),
        json!({"version": version, "permissions_digest": digest}),
    )
    .await
}

/// The install of `id` for `slug` as the API shows it.
async fn stored(app: &TestApp, token: &str, slug: &str, id: &str) -> Result<Value> {
    let listed = app
        .get(&format!("/v1/tenants/{slug}/installs"), Some(token))
        .await?
        .expect(StatusCode::OK)?;
    listed.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["plugin"] == id))
        .cloned()
        .with_context(|| format!("no install of {id} in {}", listed.body))
}

/// (version, enabled) of the install of `id` for `slug` in the host.
async fn in_host(app: &TestApp, slug: &str, id: &str) -> Result<Option<(String, bool)>> {
    let tenant = tenant_id(app, slug).await?;
    let runtime = app.state.runtime()?;
    Ok(runtime
        .host
        .installs(&tenant)
        .into_iter()
        .find(|info| info.plugin == id)
        .map(|info| (info.version, info.enabled)))
}

async fn notifications(app: &TestApp, token: &str, path: &str) -> Result<Vec<Value>> {
    let inbox = app.get(path, Some(token)).await?.expect(StatusCode::OK)?;
    inbox.body["items"].as_array().cloned().context("items")
}

fn kinds(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|n| n["kind"].as_str().map(str::to_owned))
        .collect()
}

async fn audit_actions(app: &TestApp, operator: &str) -> Result<Vec<Value>> {
    let page = app
        .get("/v1/audit", Some(operator))
        .await?
        .expect(StatusCode::OK)?;
    page.body["items"].as_array().cloned().context("items")
}

async fn events(app: &TestApp, key: &str, slug: &str, topic: &str) -> Result<Vec<Value>> {
    let reply = app
        .post(
            &format!("/v1/tenants/{slug}/events"),
            Some(key),
            json!({"topic": topic, "payload": {}}),
        )
        .await?
        .expect(StatusCode::OK)?;
    reply.body["results"].as_array().cloned().context("results")
}

/// Sends a `count` event; returns (version that handled it, count).
async fn count(app: &TestApp, key: &str, slug: &str) -> Result<(String, i64)> {
    let results = events(app, key, slug, "count").await?;
    let result = results
        .iter()
        .find(|r| r["plugin"] == COUNTER_ID)
        .with_context(|| format!("no counter result: {results:?}"))?;
    ensure!(result["error"].is_null(), "{result}");
    Ok((
        result["version"].as_str().unwrap_or_default().to_owned(),
        result["output"]["count"].as_i64().context("count")?,
    ))
}

async fn yank(
    app: &TestApp,
    token: &str,
    id: &str,
    version: &str,
    security: bool,
) -> Result<Reply> {
    app.post(
        &format!("/v1/plugins/{id}/versions/{version}/yank"),
        Some(token),
        json!({"reason_code": "security", "reason": "Leaks tokens to a third party.", "security": security}),
    )
    .await
}

async fn updates_follow_the_grant_and_ask_consent_for_more(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    counter(&app, &w, "1.0.0", "").await?;
    install(&app, &w.admin, "acme", COUNTER_ID, "1.0.0", "minor")
        .await?
        .expect(StatusCode::CREATED)?;
    let key = app.api_key(&w.admin, "acme").await?;
    ensure!(count(&app, &key, "acme").await? == ("1.0.0".into(), 1));

    // Same permissions: applied on approval, through the host, keeping the kv data.
    counter(&app, &w, "1.1.0", "").await?;
    let now = stored(&app, &w.admin, "acme", COUNTER_ID).await?;
    ensure!(
        now["version"] == "1.1.0" && now["previous_version"] == "1.0.0",
        "{now}"
    );
    ensure!(in_host(&app, "acme", COUNTER_ID).await? == Some(("1.1.0".into(), true)));
    ensure!(count(&app, &key, "acme").await? == ("1.1.0".into(), 2));

    // One more permission: not applied; the tenant is asked, with the diff.
    counter(&app, &w, "1.2.0", EXTRA_HTTP).await?;
    let now = stored(&app, &w.admin, "acme", COUNTER_ID).await?;
    ensure!(
        now["version"] == "1.1.0",
        "auto-update granted a permission: {now}"
    );
    ensure!(in_host(&app, "acme", COUNTER_ID).await? == Some(("1.1.0".into(), true)));
    let inbox = notifications(&app, &w.admin, "/v1/tenants/acme/notifications").await?;
    let consent = inbox
        .iter()
        .find(|n| n["kind"] == "update_needs_consent")
        .with_context(|| format!("no needs-consent notification: {inbox:?}"))?;
    let added = &consent["payload"]["permission_diff"]["added"];
    ensure!(
        added.as_array().map(Vec::len) == Some(1) && added[0]["capability"] == "http",
        "{consent}"
    );
    ensure!(consent["payload"]["to"] == "1.2.0", "{consent}");
    ensure!(
        consent["message"]
            .as_str()
            .is_some_and(|m| m.contains("api.example.com")),
        "{consent}"
    );
    ensure!(
        kinds(&inbox).contains(&"install_updated".to_owned()),
        "{inbox:?}"
    );

    // The manual update with the new digest completes it.
    let updated = update(&app, &w.admin, "acme", COUNTER_ID, "1.2.0")
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        updated.body["version"] == "1.2.0" && updated.body["previous_version"] == "1.1.0",
        "{}",
        updated.body
    );
    ensure!(in_host(&app, "acme", COUNTER_ID).await? == Some(("1.2.0".into(), true)));
    ensure!(count(&app, &key, "acme").await? == ("1.2.0".into(), 3));

    let entries = audit_actions(&app, &w.operator).await?;
    let updates: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "install.updated")
        .collect();
    ensure!(updates.len() == 2, "{updates:?}");
    ensure!(
        updates[0]["actor_kind"] == "system" && updates[0]["details"]["automatic"] == true,
        "{:?}",
        updates[0]
    );
    ensure!(updates[1]["actor_kind"] == "user", "{:?}", updates[1]);
    ensure!(
        entries
            .iter()
            .any(|e| e["action"] == "install.update_needs_consent"),
        "{entries:?}"
    );
    Ok(())
}

async fn policies_and_pins_decide_who_follows(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    counter(&app, &w, "1.0.0", "").await?;
    // The admin's account may create three tenants: "acme" and two of these; the operator
    // creates the third and makes the admin its admin.
    for (slug, policy) in [("pat", "patch"), ("man", "manual"), ("pin", "any")] {
        if slug == "pin" {
            app.tenant(&w.operator, slug).await?;
            app.post(
                &format!("/v1/tenants/{slug}/members"),
                Some(&w.operator),
                json!({"email": "admin@acme.example", "role": "admin"}),
            )
            .await?
            .expect(StatusCode::CREATED)?;
        } else {
            app.tenant(&w.admin, slug).await?;
        }
        install(&app, &w.admin, slug, COUNTER_ID, "1.0.0", policy)
            .await?
            .expect(StatusCode::CREATED)?;
    }
    install(&app, &w.admin, "acme", COUNTER_ID, "1.0.0", "minor")
        .await?
        .expect(StatusCode::CREATED)?;
    let pinned = app
        .patch(
            &format!("/v1/tenants/pin/installs/{COUNTER_ID}"),
            Some(&w.admin),
            json!({"pinned": true}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(pinned.body["pinned"] == true, "{}", pinned.body);
    let bad = app
        .patch(
            &format!("/v1/tenants/pin/installs/{COUNTER_ID}"),
            Some(&w.admin),
            json!({"update_policy": "sometimes"}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(
        bad.body.to_string().contains("update_policy"),
        "{}",
        bad.body
    );

    let versions = |expected: [&'static str; 4]| {
        let app = &app;
        let admin = &w.admin;
        async move {
            for (slug, want) in ["acme", "pat", "man", "pin"].into_iter().zip(expected) {
                let now = stored(app, admin, slug, COUNTER_ID).await?;
                ensure!(now["version"] == want, "{slug}: {now}");
                ensure!(
                    in_host(app, slug, COUNTER_ID).await?.map(|h| h.0) == Some(want.to_owned())
                );
            }
            anyhow::Ok(())
        }
    };
    counter(&app, &w, "1.0.1", "").await?;
    versions(["1.0.1", "1.0.1", "1.0.0", "1.0.0"]).await?;
    counter(&app, &w, "1.1.0", "").await?;
    versions(["1.1.0", "1.0.1", "1.0.0", "1.0.0"]).await?;
    counter(&app, &w, "2.0.0", "").await?;
    versions(["1.1.0", "1.0.1", "1.0.0", "1.0.0"]).await?;
    // Unpinned, `any` follows the next version.
    app.patch(
        &format!("/v1/tenants/pin/installs/{COUNTER_ID}"),
        Some(&w.admin),
        json!({"pinned": false}),
    )
    .await?
    .expect(StatusCode::OK)?;
    counter(&app, &w, "2.0.1", "").await?;
    versions(["1.1.0", "1.0.1", "1.0.0", "2.0.1"]).await?;
    Ok(())
}

async fn manual_update_input_is_checked(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    counter(&app, &w, "1.0.0", "").await?;
    counter(&app, &w, "1.1.0", EXTRA_HTTP).await?;
    install(&app, &w.admin, "acme", COUNTER_ID, "1.1.0", "manual")
        .await?
        .expect(StatusCode::CREATED)?;
    let path = format!("/v1/tenants/acme/installs/{COUNTER_ID}/update");
    // Stale consent: the digest of another version.
    let old_digest = digest(&app, COUNTER_ID, "1.0.0").await?;
    counter(&app, &w, "1.2.0", EXTRA_HTTP).await?;
    let stale = app
        .post(
            &path,
            Some(&w.admin),
            json!({"version": "1.2.0", "permissions_digest": old_digest}),
        )
        .await?
        .expect_error(StatusCode::CONFLICT, "permissions_changed")?;
    ensure!(
        stale.body["error"].get("message").is_some(),
        "{}",
        stale.body
    );
    update(&app, &w.admin, "acme", COUNTER_ID, "1.0.0")
        .await?
        .expect_error(StatusCode::CONFLICT, "not_an_update")?;
    app.post(
        &path,
        Some(&w.admin),
        json!({"version": "9.9.9", "permissions_digest": old_digest}),
    )
    .await?
    .expect(StatusCode::NOT_FOUND)?;
    app.post(&path, Some(&w.admin), json!({"version": "1.2.0"}))
        .await?
        .expect(StatusCode::BAD_REQUEST)?;
    app.post(
        &path,
        Some(&w.admin),
        json!({"version": "1.2.0", "permissions_digest": digest(&app, COUNTER_ID, "1.2.0").await?, "config": {"nope": 1}}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_config")?;
    // Members may not update; other tenants' installs are 404.
    let (_, outsider) = app.user("outsider@other.example").await?;
    update(&app, &outsider, "acme", COUNTER_ID, "1.2.0")
        .await?
        .expect(StatusCode::NOT_FOUND)?;
    ensure!(stored(&app, &w.admin, "acme", COUNTER_ID).await?["version"] == "1.1.0");
    update(&app, &w.admin, "acme", COUNTER_ID, "1.2.0")
        .await?
        .expect(StatusCode::OK)?;
    Ok(())
}

async fn tenant_rollback_returns_and_refuses_without_previous(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    counter(&app, &w, "1.0.0", "").await?;
    counter(&app, &w, "1.1.0", EXTRA_HTTP).await?;
    install(&app, &w.admin, "acme", COUNTER_ID, "1.0.0", "manual")
        .await?
        .expect(StatusCode::CREATED)?;
    let path = format!("/v1/tenants/acme/installs/{COUNTER_ID}/rollback");
    app.post(&path, Some(&w.admin), json!({}))
        .await?
        .expect_error(StatusCode::CONFLICT, "nothing_to_roll_back")?;
    let key = app.api_key(&w.admin, "acme").await?;
    ensure!(count(&app, &key, "acme").await?.1 == 1);
    update(&app, &w.admin, "acme", COUNTER_ID, "1.1.0")
        .await?
        .expect(StatusCode::OK)?;
    ensure!(count(&app, &key, "acme").await? == ("1.1.0".into(), 2));

    let (_, outsider) = app.user("outsider@other.example").await?;
    app.post(&path, Some(&outsider), json!({}))
        .await?
        .expect(StatusCode::NOT_FOUND)?;
    let back = app
        .post(&path, Some(&w.admin), json!({}))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        back.body["version"] == "1.0.0"
            && back.body["previous_version"].is_null()
            && back.body["permissions_digest"] == digest(&app, COUNTER_ID, "1.0.0").await?,
        "{}",
        back.body
    );
    ensure!(in_host(&app, "acme", COUNTER_ID).await? == Some(("1.0.0".into(), true)));
    ensure!(count(&app, &key, "acme").await? == ("1.0.0".into(), 3));
    app.post(&path, Some(&w.admin), json!({}))
        .await?
        .expect_error(StatusCode::CONFLICT, "nothing_to_roll_back")?;
    let entries = audit_actions(&app, &w.operator).await?;
    ensure!(
        entries
            .iter()
            .any(|e| e["action"] == "install.rolled_back" && e["details"]["by"] == "tenant"),
        "{entries:?}"
    );
    Ok(())
}

async fn yanked_versions_are_refused_and_yank_input_is_checked(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    counter(&app, &w, "1.0.0", "").await?;
    counter(&app, &w, "1.1.0", "").await?;
    install(&app, &w.admin, "acme", COUNTER_ID, "1.1.0", "any")
        .await?
        .expect(StatusCode::CREATED)?;
    app.tenant(&w.admin, "late").await?;
    install(&app, &w.admin, "late", COUNTER_ID, "1.0.0", "manual")
        .await?
        .expect(StatusCode::CREATED)?;
    let path = format!("/v1/plugins/{COUNTER_ID}/versions/1.1.0/yank");
    for (body, code) in [
        (
            json!({"reason_code": "nope", "reason": "x"}),
            "invalid_reason_code",
        ),
        (json!({"reason": "x"}), "invalid_reason_code"),
        (
            json!({"reason_code": "broken", "reason": "  "}),
            "reason_required",
        ),
    ] {
        app.post(&path, Some(&w.operator), body)
            .await?
            .expect_error(StatusCode::BAD_REQUEST, code)?;
    }
    app.post(
        &path,
        Some(&w.operator),
        json!({"reason_code": "broken", "reason": "x", "extra": 1}),
    )
    .await?
    .expect(StatusCode::BAD_REQUEST)?;
    yank(&app, &w.reviewer, COUNTER_ID, "1.1.0", false)
        .await?
        .expect(StatusCode::FORBIDDEN)?;
    yank(&app, &w.operator, COUNTER_ID, "7.0.0", false)
        .await?
        .expect(StatusCode::NOT_FOUND)?;
    let yanked = yank(&app, &w.operator, COUNTER_ID, "1.1.0", false)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        yanked.body["installs"].as_array().map(Vec::len) == Some(0),
        "{}",
        yanked.body
    );
    yank(&app, &w.operator, COUNTER_ID, "1.1.0", false)
        .await?
        .expect_error(StatusCode::CONFLICT, "already_yanked")?;

    // Not installable, not an update target; the running install keeps running.
    app.tenant(&w.admin, "new").await?;
    install(&app, &w.admin, "new", COUNTER_ID, "1.1.0", "manual")
        .await?
        .expect_error(StatusCode::CONFLICT, "version_yanked")?;
    update(&app, &w.admin, "late", COUNTER_ID, "1.1.0")
        .await?
        .expect_error(StatusCode::CONFLICT, "version_yanked")?;
    ensure!(in_host(&app, "acme", COUNTER_ID).await? == Some(("1.1.0".into(), true)));
    let detail = app
        .get(&format!("/v1/plugins/{COUNTER_ID}"), None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(detail.body["latest_version"] == "1.0.0", "{}", detail.body);
    let shown = app
        .get(&format!("/v1/plugins/{COUNTER_ID}/versions/1.1.0"), None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(shown.body["yanked"] == true, "{}", shown.body);
    let publisher = notifications(&app, &w.dev.token, "/v1/publishers/labs/notifications").await?;
    ensure!(
        kinds(&publisher).contains(&"version_yanked".to_owned()),
        "{publisher:?}"
    );
    let acme = notifications(&app, &w.admin, "/v1/tenants/acme/notifications").await?;
    ensure!(
        kinds(&acme).contains(&"version_yanked".to_owned()),
        "{acme:?}"
    );
    let entries = audit_actions(&app, &w.operator).await?;
    let entry = entries
        .iter()
        .find(|e| e["action"] == "version.yanked")
        .context("no version.yanked entry")?;
    ensure!(entry["details"]["reason_code"] == "security" && entry["details"]["security"] == false);
    Ok(())
}

async fn security_yank_moves_every_install_off_the_version(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    counter(&app, &w, "1.0.0", "").await?;
    counter(&app, &w, "1.1.0", "").await?;
    counter(&app, &w, "1.2.0", EXTRA_HTTP).await?;
    app.tenant(&w.admin, "beta").await?;
    app.tenant(&w.admin, "wide").await?;
    install(&app, &w.admin, "acme", COUNTER_ID, "1.1.0", "manual")
        .await?
        .expect(StatusCode::CREATED)?;
    install(&app, &w.admin, "beta", COUNTER_ID, "1.0.0", "minor")
        .await?
        .expect(StatusCode::CREATED)?;
    update(&app, &w.admin, "beta", COUNTER_ID, "1.1.0")
        .await?
        .expect(StatusCode::OK)?;
    install(&app, &w.admin, "wide", COUNTER_ID, "1.2.0", "manual")
        .await?
        .expect(StatusCode::CREATED)?;
    let key = app.api_key(&w.admin, "beta").await?;
    ensure!(count(&app, &key, "beta").await? == ("1.1.0".into(), 1));

    let yanked = yank(&app, &w.operator, COUNTER_ID, "1.1.0", true)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        yanked.body["installs"].as_array().map(Vec::len) == Some(2),
        "{}",
        yanked.body
    );
    // Newest good version within the grant: 1.2.0 asks for more, so 1.0.0.
    for slug in ["acme", "beta"] {
        ensure!(
            in_host(&app, slug, COUNTER_ID).await? == Some(("1.0.0".into(), true)),
            "{slug} still runs the yanked version"
        );
        let now = stored(&app, &w.admin, slug, COUNTER_ID).await?;
        ensure!(
            now["version"] == "1.0.0" && now["previous_version"].is_null(),
            "{now}"
        );
    }
    ensure!(in_host(&app, "wide", COUNTER_ID).await? == Some(("1.2.0".into(), true)));
    let on_yanked: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM installs WHERE plugin_id = $1 AND version = '1.1.0'",
    )
    .bind(COUNTER_ID)
    .fetch_one(app.db().pool())
    .await?
    .try_get("n")?;
    ensure!(on_yanked == 0);
    // The kv data came along.
    ensure!(count(&app, &key, "beta").await? == ("1.0.0".into(), 2));
    let beta = notifications(&app, &w.admin, "/v1/tenants/beta/notifications").await?;
    let note = beta
        .iter()
        .find(|n| n["kind"] == "version_yanked")
        .context("no yank notification")?;
    ensure!(note["payload"]["install"]["to"] == "1.0.0", "{note}");
    // Rolling back to a yanked version is refused (beta's previous was cleared anyway).
    app.post(
        &format!("/v1/tenants/beta/installs/{COUNTER_ID}/rollback"),
        Some(&w.admin),
        json!({}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "nothing_to_roll_back")?;

    // With no good version in the grant, the install is disabled.
    release(&app, &w, &HELLO, "labs.hello", "1.0.0", "").await?;
    install(&app, &w.admin, "acme", "labs.hello", "1.0.0", "manual")
        .await?
        .expect(StatusCode::CREATED)?;
    let alone = yank(&app, &w.operator, "labs.hello", "1.0.0", true)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        alone.body["installs"][0]["status"] == "disabled",
        "{}",
        alone.body
    );
    ensure!(in_host(&app, "acme", "labs.hello").await? == Some(("1.0.0".into(), false)));
    ensure!(stored(&app, &w.admin, "acme", "labs.hello").await?["status"] == "disabled");
    let entries = audit_actions(&app, &w.operator).await?;
    ensure!(
        entries
            .iter()
            .filter(
                |e| e["action"] == "install.rolled_back" && e["details"]["by"] == "security_yank"
            )
            .count()
            == 2,
        "{entries:?}"
    );
    ensure!(entries.iter().any(|e| e["action"] == "install.disabled"));
    Ok(())
}

async fn operator_rollback_moves_newer_installs(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        counter(&app, &w, v, "").await?;
    }
    for (slug, v) in [("acme", "1.2.0"), ("mid", "1.1.0"), ("old", "1.0.0")] {
        if slug != "acme" {
            app.tenant(&w.admin, slug).await?;
        }
        install(&app, &w.admin, slug, COUNTER_ID, v, "manual")
            .await?
            .expect(StatusCode::CREATED)?;
    }
    let path = format!("/v1/plugins/{COUNTER_ID}/rollback");
    app.post(&path, Some(&w.reviewer), json!({"to_version": "1.1.0"}))
        .await?
        .expect(StatusCode::FORBIDDEN)?;
    app.post(&path, Some(&w.operator), json!({"to_version": "3.0.0"}))
        .await?
        .expect(StatusCode::NOT_FOUND)?;
    app.post(&path, Some(&w.operator), json!({}))
        .await?
        .expect(StatusCode::BAD_REQUEST)?;
    let done = app
        .post(
            &path,
            Some(&w.operator),
            json!({"to_version": "1.1.0", "reason": "1.2.0 corrupts data"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        done.body["installs"].as_array().map(Vec::len) == Some(1)
            && done.body["installs"][0]["tenant"] == "acme",
        "{}",
        done.body
    );
    for (slug, v) in [("acme", "1.1.0"), ("mid", "1.1.0"), ("old", "1.0.0")] {
        ensure!(
            in_host(&app, slug, COUNTER_ID).await? == Some((v.into(), true)),
            "{slug}"
        );
    }
    let acme = notifications(&app, &w.admin, "/v1/tenants/acme/notifications").await?;
    ensure!(
        kinds(&acme).contains(&"install_rolled_back".to_owned()),
        "{acme:?}"
    );
    let publisher = notifications(&app, &w.dev.token, "/v1/publishers/labs/notifications").await?;
    ensure!(kinds(&publisher).contains(&"plugin_rolled_back".to_owned()));
    yank(&app, &w.operator, COUNTER_ID, "1.0.0", false)
        .await?
        .expect(StatusCode::OK)?;
    app.post(&path, Some(&w.operator), json!({"to_version": "1.0.0"}))
        .await?
        .expect_error(StatusCode::CONFLICT, "version_yanked")?;
    Ok(())
}

async fn block_is_a_kill_switch_until_unblocked(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    counter(&app, &w, "1.0.0", "").await?;
    install(&app, &w.admin, "acme", COUNTER_ID, "1.0.0", "manual")
        .await?
        .expect(StatusCode::CREATED)?;
    let key = app.api_key(&w.admin, "acme").await?;
    ensure!(count(&app, &key, "acme").await?.1 == 1);
    let path = format!("/v1/plugins/{COUNTER_ID}/block");
    app.post(
        &path,
        Some(&w.operator),
        json!({"reason_code": "kill", "reason": "x"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_reason_code")?;
    app.post(
        &path,
        Some(&w.admin),
        json!({"reason_code": "malicious", "reason": "x"}),
    )
    .await?
    .expect(StatusCode::FORBIDDEN)?;
    let blocked = app
        .post(
            &path,
            Some(&w.operator),
            json!({"reason_code": "malicious", "reason": "Mines coins."}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(blocked.body["installs"] == 1, "{}", blocked.body);
    app.post(
        &path,
        Some(&w.operator),
        json!({"reason_code": "malicious", "reason": "again"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "already_blocked")?;

    ensure!(
        events(&app, &key, "acme", "count").await?.is_empty(),
        "a blocked plugin ran"
    );
    ensure!(in_host(&app, "acme", COUNTER_ID).await? == Some(("1.0.0".into(), false)));
    app.get(&format!("/v1/plugins/{COUNTER_ID}"), None)
        .await?
        .expect(StatusCode::NOT_FOUND)?;
    let search = app
        .get("/v1/plugins?q=counter", None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        search.body["items"].as_array().map(Vec::len) == Some(0),
        "{}",
        search.body
    );
    app.tenant(&w.admin, "new").await?;
    let digest_now: String =
        sqlx::query("SELECT permissions_digest FROM versions WHERE plugin_id = $1")
            .bind(COUNTER_ID)
            .fetch_one(app.db().pool())
            .await?
            .try_get(0)?;
    app.post(
        "/v1/tenants/new/installs",
        Some(&w.admin),
        json!({"plugin": COUNTER_ID, "permissions_digest": digest_now}),
    )
    .await?
    .expect(StatusCode::NOT_FOUND)?;
    // The tenant cannot switch it back on while blocked.
    app.patch(
        &format!("/v1/tenants/acme/installs/{COUNTER_ID}"),
        Some(&w.admin),
        json!({"enabled": true}),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(events(&app, &key, "acme", "count").await?.is_empty());
    let acme = notifications(&app, &w.admin, "/v1/tenants/acme/notifications").await?;
    ensure!(kinds(&acme).contains(&"plugin_blocked".to_owned()));

    let unblock = format!("/v1/plugins/{COUNTER_ID}/unblock");
    app.post(&unblock, Some(&w.operator), json!({}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "reason_required")?;
    app.post(
        &unblock,
        Some(&w.operator),
        json!({"reason": "False alarm."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    app.post(&unblock, Some(&w.operator), json!({"reason": "again"}))
        .await?
        .expect_error(StatusCode::CONFLICT, "not_blocked")?;
    ensure!(count(&app, &key, "acme").await?.1 == 2);
    let entries = audit_actions(&app, &w.operator).await?;
    for action in ["plugin.blocked", "plugin.unblocked"] {
        ensure!(entries.iter().any(|e| e["action"] == action), "{action}");
    }
    Ok(())
}

async fn appeals_are_heard_once_by_someone_else(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    counter(&app, &w, "1.0.0", "").await?;
    counter(&app, &w, "1.1.0", "").await?;
    yank(&app, &w.operator, COUNTER_ID, "1.1.0", false)
        .await?
        .expect(StatusCode::OK)?;
    let path = format!("/v1/plugins/{COUNTER_ID}/appeals");
    let case =
        json!({"target": "yank", "version": "1.1.0", "text": "The token goes to our own API."});
    let (_, outsider) = app.user("outsider@other.example").await?;
    app.post(&path, Some(&outsider), case.clone())
        .await?
        .expect(StatusCode::NOT_FOUND)?;
    app.post(
        &path,
        Some(&w.dev.token),
        json!({"target": "ban", "text": "x"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_target")?;
    app.post(
        &path,
        Some(&w.dev.token),
        json!({"target": "yank", "text": "x"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    app.post(
        &path,
        Some(&w.dev.token),
        json!({"target": "yank", "version": "1.0.0", "text": "x"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "not_yanked")?;
    app.post(
        &path,
        Some(&w.dev.token),
        json!({"target": "block", "text": "x"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "not_blocked")?;
    let filed = app
        .post(&path, Some(&w.dev.token), case.clone())
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(filed.body["status"] == "pending", "{}", filed.body);
    app.post(&path, Some(&w.dev.token), case.clone())
        .await?
        .expect_error(StatusCode::CONFLICT, "already_appealed")?;
    let id = filed.body["id"].as_str().context("id")?;
    let listed = app
        .get("/v1/appeals", Some(&w.reviewer))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(listed.body["items"][0]["id"] == id, "{}", listed.body);
    app.get("/v1/appeals", Some(&w.dev.token))
        .await?
        .expect(StatusCode::FORBIDDEN)?;

    let decide = format!("/v1/appeals/{id}/decision");
    app.post(
        &decide,
        Some(&w.operator),
        json!({"decision": "reverse", "reason": "ok"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "same_decider")?;
    app.post(
        &decide,
        Some(&w.reviewer),
        json!({"decision": "maybe", "reason": "ok"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_decision")?;
    let reversed = app
        .post(
            &decide,
            Some(&w.reviewer),
            json!({"decision": "reverse", "reason": "Evidence holds up."}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(reversed.body["status"] == "reversed", "{}", reversed.body);
    app.post(
        &decide,
        Some(&w.reviewer),
        json!({"decision": "uphold", "reason": "changed mind"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "already_decided")?;
    let shown = app
        .get(&format!("/v1/plugins/{COUNTER_ID}"), None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(shown.body["latest_version"] == "1.1.0", "{}", shown.body);

    // A block appeal, upheld: the block stands.
    app.post(
        &format!("/v1/plugins/{COUNTER_ID}/block"),
        Some(&w.reviewer),
        json!({"reason_code": "policy", "reason": "x"}),
    )
    .await?
    .expect(StatusCode::FORBIDDEN)?;
    app.post(
        &format!("/v1/plugins/{COUNTER_ID}/block"),
        Some(&w.operator),
        json!({"reason_code": "policy", "reason": "Breaks the terms."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let filed = app
        .post(
            &path,
            Some(&w.dev.token),
            json!({"target": "block", "text": "We fixed it."}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    let id = filed.body["id"].as_str().context("id")?;
    app.post(
        &format!("/v1/appeals/{id}/decision"),
        Some(&w.reviewer),
        json!({"decision": "uphold", "reason": "Not yet."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    app.get(&format!("/v1/plugins/{COUNTER_ID}"), None)
        .await?
        .expect(StatusCode::NOT_FOUND)?;
    let publisher = notifications(&app, &w.dev.token, "/v1/publishers/labs/notifications").await?;
    ensure!(
        publisher
            .iter()
            .filter(|n| n["kind"] == "appeal_decided")
            .count()
            == 2,
        "{publisher:?}"
    );
    let entries = audit_actions(&app, &w.operator).await?;
    for action in ["appeal.filed", "appeal.decided", "version.unyanked"] {
        ensure!(entries.iter().any(|e| e["action"] == action), "{action}");
    }
    Ok(())
}

async fn change_of_control_forces_full_review_and_holds_updates(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    counter(&app, &w, "1.0.0", "").await?;
    install(&app, &w.admin, "acme", COUNTER_ID, "1.0.0", "any")
        .await?
        .expect(StatusCode::CREATED)?;
    let new_key = SecretKey::generate()?;
    publishing::register_key(&app, &w.dev.token, "labs", &new_key)
        .await?
        .expect(StatusCode::CREATED)?;
    let acme = notifications(&app, &w.admin, "/v1/tenants/acme/notifications").await?;
    ensure!(
        kinds(&acme).contains(&"control_changed".to_owned()),
        "{acme:?}"
    );

    let submission = submit(&app, &w.dev, &COUNTER, COUNTER_ID, "1.1.0", "").await?;
    let queue = app
        .get("/v1/review/queue", Some(&w.reviewer))
        .await?
        .expect(StatusCode::OK)?;
    let item = queue.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == submission.as_str()))
        .context("not queued")?;
    ensure!(item["full_review"]["reason"] == "new_signing_key", "{item}");
    approve(&app, &w.reviewer, &submission)
        .await?
        .expect(StatusCode::OK)?;
    // Held: the version of the full review is not applied automatically.
    ensure!(stored(&app, &w.admin, "acme", COUNTER_ID).await?["version"] == "1.0.0");
    let acme = notifications(&app, &w.admin, "/v1/tenants/acme/notifications").await?;
    ensure!(kinds(&acme).contains(&"update_held".to_owned()), "{acme:?}");
    // The review passed: the next version flows again, and is not flagged.
    let submission = submit(&app, &w.dev, &COUNTER, COUNTER_ID, "1.2.0", "").await?;
    let queue = app
        .get("/v1/review/queue", Some(&w.reviewer))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        queue.body["items"][0]["full_review"].is_null(),
        "{}",
        queue.body
    );
    approve(&app, &w.reviewer, &submission)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(stored(&app, &w.admin, "acme", COUNTER_ID).await?["version"] == "1.2.0");

    // A new owner is a change of control too.
    app.user("partner@labs.example").await?;
    app.post(
        "/v1/publishers/labs/members",
        Some(&w.dev.token),
        json!({"email": "partner@labs.example", "role": "owner"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let submission = submit(&app, &w.dev, &COUNTER, COUNTER_ID, "1.3.0", "").await?;
    let queue = app
        .get("/v1/review/queue", Some(&w.reviewer))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        queue.body["items"][0]["full_review"]["reason"] == "new_owner",
        "{}",
        queue.body
    );
    approve(&app, &w.reviewer, &submission)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(stored(&app, &w.admin, "acme", COUNTER_ID).await?["version"] == "1.2.0");
    let entries = audit_actions(&app, &w.operator).await?;
    ensure!(
        entries
            .iter()
            .filter(|e| e["action"] == "publisher.control_changed")
            .count()
            == 2
    );
    Ok(())
}

async fn automatic_rollback_is_recorded_and_notified(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    release(&app, &w, &HELLO, "labs.hello", "1.0.0", "").await?;
    install(&app, &w.admin, "acme", "labs.hello", "1.0.0", "minor")
        .await?
        .expect(StatusCode::CREATED)?;
    // 1.1.0 is the trap component under hello's name and permissions: it panics on every
    // event. Same permissions, so it is applied automatically.
    let manifest = publishing::manifest(&HELLO, "labs.hello", "1.1.0", "")?;
    let mut package = Package::new(manifest, std::fs::read(TRAP.wasm)?, None, None)?;
    package.sign(&w.dev.key);
    let submission = submit_ok(&app, &w.dev.token, package.to_bytes()?).await?;
    approve(&app, &w.operator, &submission)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(in_host(&app, "acme", "labs.hello").await? == Some(("1.1.0".into(), true)));

    let key = app.api_key(&w.admin, "acme").await?;
    // The test host rolls back after 3 calls with more than half failing.
    for _ in 0..3 {
        events(&app, &key, "acme", "greet").await?;
    }
    ensure!(in_host(&app, "acme", "labs.hello").await? == Some(("1.0.0".into(), true)));
    // The recorder runs beside the request; wait for storage to follow.
    let mut recorded = Value::Null;
    for _ in 0..100 {
        recorded = stored(&app, &w.admin, "acme", "labs.hello").await?;
        if recorded["version"] == "1.0.0" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ensure!(
        recorded["version"] == "1.0.0" && recorded["previous_version"].is_null(),
        "{recorded}"
    );
    let acme = notifications(&app, &w.admin, "/v1/tenants/acme/notifications").await?;
    ensure!(
        kinds(&acme).contains(&"install_rolled_back".to_owned()),
        "{acme:?}"
    );
    let publisher = notifications(&app, &w.dev.token, "/v1/publishers/labs/notifications").await?;
    ensure!(kinds(&publisher).contains(&"install_rolled_back".to_owned()));
    let entries = audit_actions(&app, &w.operator).await?;
    let entry = entries
        .iter()
        .find(|e| e["action"] == "install.rolled_back")
        .context("not audited")?;
    ensure!(
        entry["actor_kind"] == "system" && entry["details"]["automatic"] == true,
        "{entry}"
    );
    Ok(())
}

/// An approval of the next version and a security yank of the current one, sent together
/// several times: whichever lands first, no enabled install runs a yanked version, storage and
/// host agree, and the catalog's latest version is the newest non-yanked one.
async fn concurrent_approval_and_security_yank_stay_consistent(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    counter(&app, &w, "1.0.0", "").await?;
    for slug in ["acme", "beta"] {
        if slug != "acme" {
            app.tenant(&w.admin, slug).await?;
        }
        install(&app, &w.admin, slug, COUNTER_ID, "1.0.0", "any")
            .await?
            .expect(StatusCode::CREATED)?;
    }
    for round in 1..=4 {
        let next = format!("1.{round}.0");
        let current = format!("1.{}.0", round - 1);
        let submission = submit(&app, &w.dev, &COUNTER, COUNTER_ID, &next, "").await?;
        let (approved, yanked) = tokio::join!(
            approve(&app, &w.reviewer, &submission),
            yank(&app, &w.operator, COUNTER_ID, &current, true)
        );
        approved?.expect(StatusCode::OK)?;
        yanked?.expect(StatusCode::OK)?;

        let yanked_versions: Vec<String> = sqlx::query(
            "SELECT version FROM versions WHERE plugin_id = $1 AND yanked_at IS NOT NULL",
        )
        .bind(COUNTER_ID)
        .fetch_all(app.db().pool())
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
        ensure!(yanked_versions.contains(&current));
        for slug in ["acme", "beta"] {
            let now = stored(&app, &w.admin, slug, COUNTER_ID).await?;
            let version = now["version"].as_str().context("version")?.to_owned();
            let enabled = now["status"] == "active";
            ensure!(
                !(enabled && yanked_versions.contains(&version)),
                "round {round}: {slug} runs yanked {version}"
            );
            ensure!(
                in_host(&app, slug, COUNTER_ID).await? == Some((version.clone(), enabled)),
                "round {round}: host and storage disagree for {slug}: {now}"
            );
        }
        let detail = app
            .get(&format!("/v1/plugins/{COUNTER_ID}"), None)
            .await?
            .expect(StatusCode::OK)?;
        ensure!(
            detail.body["latest_version"] == next.as_str(),
            "round {round}: {}",
            detail.body
        );
    }
    let verified = app
        .get("/v1/audit/verify", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(verified.body["sound"] == true, "{}", verified.body);
    Ok(())
}

const WEBHOOK_ID: &str = "labs.webhook";

/// Publishes and approves the webhook-notify plugin as `labs.webhook` `version`, its
/// `webhook-url` marked secret or not.
async fn webhook(app: &TestApp, w: &World, version: &str, secret: bool) -> Result<()> {
    let text = publishing::manifest(&WEBHOOK_NOTIFY, WEBHOOK_ID, version, "")?
        .replace("secret = true", &format!("secret = {secret}"));
    let wasm = std::fs::read(WEBHOOK_NOTIFY.wasm)?;
    let mut package = Package::new(text, wasm, Some("# Webhook\n".into()), None)?;
    package.sign(&w.dev.key);
    let submission = submit_ok(app, &w.dev.token, package.to_bytes()?).await?;
    approve(app, &w.operator, &submission)
        .await?
        .expect(StatusCode::OK)?;
    Ok(())
}

/// Fails if `value` shows in clear to any of `tokens` (the install listing), in the audit log
/// or in storage.
async fn sealed_everywhere(app: &TestApp, w: &World, tokens: &[&str], value: &str) -> Result<()> {
    for token in tokens {
        let listed = app
            .get("/v1/tenants/acme/installs", Some(token))
            .await?
            .expect(StatusCode::OK)?;
        ensure!(!listed.body.to_string().contains(value), "{}", listed.body);
        let install = stored(app, token, "acme", WEBHOOK_ID).await?;
        ensure!(
            install["config"]["secrets_set"] == json!(["webhook-url"]),
            "{install}"
        );
    }
    let audit = app
        .get("/v1/audit", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        !audit.body.to_string().contains(value),
        "the audit log shows it"
    );
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT config || COALESCE(previous_config, '') FROM installs")
            .fetch_all(app.db().pool())
            .await?;
    ensure!(
        rows.iter().all(|row| !row.contains(value)),
        "stored in clear: {rows:?}"
    );
    Ok(())
}

async fn a_secret_stays_sealed_and_making_it_plain_needs_consent(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    webhook(&app, &w, "0.1.0", true).await?;
    let first = "https://hooks.example.com/t0ken-4b1d";
    app.post(
        "/v1/tenants/acme/installs",
        Some(&w.admin),
        json!({"plugin": WEBHOOK_ID, "version": "0.1.0", "update_policy": "patch",
               "permissions_digest": digest(&app, WEBHOOK_ID, "0.1.0").await?,
               "config": {"webhook-url": first}}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let (_, reader) = app.user("reader@acme.example").await?;
    app.post(
        "/v1/tenants/acme/members",
        Some(&w.admin),
        json!({"email": "reader@acme.example", "role": "readonly"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let key = app.api_key(&w.admin, "acme").await?;
    let viewers = [w.admin.as_str(), reader.as_str(), key.as_str()];

    // 0.1.1 asks for the same permissions but no longer marks `webhook-url` secret: the
    // automatic update waits for consent, and the install stays as it was.
    webhook(&app, &w, "0.1.1", false).await?;
    ensure!(digest(&app, WEBHOOK_ID, "0.1.1").await? == digest(&app, WEBHOOK_ID, "0.1.0").await?);
    let now = stored(&app, &w.admin, "acme", WEBHOOK_ID).await?;
    ensure!(now["version"] == "0.1.0", "updated without consent: {now}");
    ensure!(in_host(&app, "acme", WEBHOOK_ID).await? == Some(("0.1.0".into(), true)));
    let inbox = notifications(&app, &w.admin, "/v1/tenants/acme/notifications").await?;
    let consent = inbox
        .iter()
        .find(|n| n["kind"] == "update_needs_consent")
        .with_context(|| format!("no needs-consent notification: {inbox:?}"))?;
    ensure!(
        consent["payload"]["secrets_made_plain"] == json!(["webhook-url"])
            && consent["message"]
                .as_str()
                .is_some_and(|m| m.contains("webhook-url")),
        "{consent}"
    );
    sealed_everywhere(&app, &w, &viewers, first).await?;

    // The admin consents: the install moves, and what was sealed stays sealed and hidden,
    // as does a value set under the new version.
    update(&app, &w.admin, "acme", WEBHOOK_ID, "0.1.1")
        .await?
        .expect(StatusCode::OK)?;
    ensure!(in_host(&app, "acme", WEBHOOK_ID).await? == Some(("0.1.1".into(), true)));
    sealed_everywhere(&app, &w, &viewers, first).await?;
    let second = "https://hooks.example.com/s3cond-77e2";
    app.patch(
        &format!("/v1/tenants/acme/installs/{WEBHOOK_ID}"),
        Some(&w.admin),
        json!({"config": {"webhook-url": second}}),
    )
    .await?
    .expect(StatusCode::OK)?;
    sealed_everywhere(&app, &w, &viewers, second).await?;

    // A tenant that installed the plain version has its value sealed by the update that
    // marks it secret, and a rollback to the plain version keeps it sealed.
    app.tenant(&w.admin, "beta").await?;
    let third = "https://hooks.example.com/th1rd-0c4a";
    app.post(
        "/v1/tenants/beta/installs",
        Some(&w.admin),
        json!({"plugin": WEBHOOK_ID, "version": "0.1.1", "update_policy": "patch",
               "permissions_digest": digest(&app, WEBHOOK_ID, "0.1.1").await?,
               "config": {"webhook-url": third}}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    webhook(&app, &w, "0.1.2", true).await?;
    let now = stored(&app, &w.admin, "beta", WEBHOOK_ID).await?;
    ensure!(
        now["version"] == "0.1.2" && now["config"]["secrets_set"] == json!(["webhook-url"]),
        "{now}"
    );
    let back = app
        .post(
            &format!("/v1/tenants/beta/installs/{WEBHOOK_ID}/rollback"),
            Some(&w.admin),
            json!({}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        back.body["version"] == "0.1.1"
            && back.body["config"]["secrets_set"] == json!(["webhook-url"])
            && !back.body.to_string().contains(third),
        "{}",
        back.body
    );
    let row: String = sqlx::query_scalar(
        "SELECT i.config FROM installs i JOIN tenants t ON t.id = i.tenant_id WHERE t.slug = 'beta'",
    )
    .fetch_one(app.db().pool())
    .await?;
    ensure!(!row.contains(third), "stored in clear: {row}");
    Ok(())
}
