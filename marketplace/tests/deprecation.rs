//! Deprecation over HTTP with a host, on both backends: a publisher (or an operator)
//! deprecates a plugin or a range of its versions with a message and a replacement; the
//! catalog shows it, search ranks a wholly deprecated plugin last, installs answer with it,
//! installed tenants are notified, and an operator's deprecation may close it to new installs.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::HELLO;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{Reply, TestApp};
use publishing::{Dev, developer, package_with, permissions_digest, submit_ok};

on_both_backends_with_host!(
    deprecation_is_shown_ranked_down_and_notified,
    deprecation_input_and_rights_are_checked,
    an_operator_deprecation_may_close_new_installs,
);

const OLD: &str = "labs.old";
const NEW: &str = "labs.new";

struct World {
    operator: String,
    dev: Dev,
    acme_admin: String,
    globex_admin: String,
}

/// The operator, developer `labs` with `labs.old` 1.0.0 and 1.1.0 and `labs.new` 1.0.0
/// published, tenant `acme` with `labs.old` 1.0.0 installed and tenant `globex` without.
async fn world(app: &TestApp) -> Result<World> {
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    // labs.old 1.1.0 last, so that it leads `sort=recent` too.
    for (id, version) in [(OLD, "1.0.0"), (NEW, "1.0.0"), (OLD, "1.1.0")] {
        let bytes = package_with(&HELLO, id, version, "", None, Some(&dev.key))?;
        let submission = submit_ok(app, &dev.token, bytes).await?;
        app.post(
            &format!("/v1/submissions/{submission}/decision"),
            Some(&operator),
            json!({"decision": "approve", "reason": "Reviewed in a test."}),
        )
        .await?
        .expect(StatusCode::OK)?;
    }
    let (_, acme_admin) = app.user("admin@acme.example").await?;
    app.tenant(&acme_admin, "acme").await?;
    let (_, globex_admin) = app.user("admin@globex.example").await?;
    app.tenant(&globex_admin, "globex").await?;
    install(app, &acme_admin, "acme", OLD, "1.0.0")
        .await?
        .expect(StatusCode::CREATED)?;
    // Rated, so that it leads `sort=rating` too.
    app.put(
        &format!("/v1/plugins/{OLD}/ratings/acme"),
        Some(&acme_admin),
        json!({"stars": 5}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    Ok(World {
        operator,
        dev,
        acme_admin,
        globex_admin,
    })
}

async fn install(app: &TestApp, token: &str, slug: &str, id: &str, version: &str) -> Result<Reply> {
    let digest = permissions_digest(app, id, version).await?;
    app.post(
        &format!("/v1/tenants/{slug}/installs"),
        Some(token),
        json!({"plugin": id, "version": version, "permissions_digest": digest}),
    )
    .await
}

async fn deprecate(app: &TestApp, token: &str, id: &str, body: Value) -> Result<Reply> {
    app.put(&format!("/v1/plugins/{id}/deprecation"), Some(token), body)
        .await
}

/// The ids a search with `query` shows, in order.
async fn order(app: &TestApp, query: &str) -> Result<Vec<String>> {
    let page = app
        .get(&format!("/v1/plugins?{query}"), None)
        .await?
        .expect(StatusCode::OK)?;
    Ok(page.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        .collect())
}

async fn deprecation_is_shown_ranked_down_and_notified(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    // labs.old has the install, the rating and the newest version: it leads every keyed order.
    for query in ["sort=installs", "sort=recent", "sort=rating"] {
        ensure!(order(&app, query).await? == [OLD, NEW], "{query}");
    }

    let made = deprecate(
        &app,
        &w.dev.token,
        OLD,
        json!({"message": "No longer maintained.", "replacement": NEW}),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(
        made.body["notice"]
            == "labs.old is deprecated: No longer maintained. Use labs.new instead."
            && made.body["versions"].is_null()
            && made.body["blocks_installs"] == false,
        "{}",
        made.body
    );

    // The catalog shows it on the plugin and on every version; search ranks it last in
    // every order, and marks it.
    let detail = app
        .get(&format!("/v1/plugins/{OLD}"), None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        detail.body["deprecation"]["replacement"] == NEW,
        "{}",
        detail.body
    );
    ensure!(
        detail.body["versions"]
            .as_array()
            .is_some_and(|v| v.len() == 2 && v.iter().all(|v| v["deprecated"] == true)),
        "{}",
        detail.body
    );
    for query in ["sort=installs", "sort=recent", "sort=rating", "q=hello"] {
        ensure!(order(&app, query).await? == [NEW, OLD], "{query}");
    }
    let page = app
        .get("/v1/plugins?q=hello", None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        page.body["items"][1]["deprecated"] == true && page.body["items"][0]["deprecated"] == false
    );

    // Installed tenants are told; a new install still works and answers with it.
    let inbox = app
        .get("/v1/tenants/acme/notifications", Some(&w.acme_admin))
        .await?
        .expect(StatusCode::OK)?;
    let told = inbox.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|n| n["kind"] == "plugin_deprecated"))
        .context("acme is notified")?;
    ensure!(
        told["message"]
            .as_str()
            .is_some_and(|m| m.contains("Use labs.new")),
        "{told}"
    );
    let globex = install(&app, &w.globex_admin, "globex", OLD, "1.1.0")
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(
        globex.body["deprecation"]["replacement"] == NEW,
        "{}",
        globex.body
    );
    let listed = app
        .get("/v1/tenants/acme/installs", Some(&w.acme_admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(listed.body["items"][0]["deprecation"]["message"] == "No longer maintained.");

    // Narrowed to the old line: only 1.0.0 is marked, search no longer ranks it down, and
    // globex (on 1.1.0) sees no deprecation on its install.
    deprecate(
        &app,
        &w.dev.token,
        OLD,
        json!({"message": "The 1.0 line is unsafe.", "versions": "<1.1.0"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let versions = app
        .get(&format!("/v1/plugins/{OLD}/versions"), None)
        .await?
        .expect(StatusCode::OK)?;
    let marks: Vec<(String, bool)> = versions.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap_or_default().to_owned(),
                v["deprecated"] == true,
            )
        })
        .collect();
    ensure!(
        marks == [("1.1.0".to_owned(), false), ("1.0.0".to_owned(), true)],
        "{marks:?}"
    );
    ensure!(order(&app, "sort=installs").await? == [OLD, NEW]);
    let globex = app
        .get("/v1/tenants/globex/installs", Some(&w.globex_admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        globex.body["items"][0]["deprecation"].is_null(),
        "{}",
        globex.body
    );

    // Lifted by the publisher: nothing is marked any more.
    app.delete(
        &format!("/v1/plugins/{OLD}/deprecation"),
        Some(&w.dev.token),
    )
    .await?
    .expect(StatusCode::NO_CONTENT)?;
    let detail = app
        .get(&format!("/v1/plugins/{OLD}"), None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(detail.body["deprecation"].is_null(), "{}", detail.body);
    app.delete(
        &format!("/v1/plugins/{OLD}/deprecation"),
        Some(&w.dev.token),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "not_deprecated")?;

    let actions = app.audit_actions(&w.operator).await?;
    ensure!(
        actions.iter().filter(|a| *a == "plugin.deprecated").count() == 2
            && actions.iter().any(|a| a == "plugin.undeprecated"),
        "{actions:?}"
    );
    Ok(())
}

async fn deprecation_input_and_rights_are_checked(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let cases = [
        (
            json!({"message": "  "}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"message": "x".repeat(501)}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"message": "m", "replacement": OLD}),
            StatusCode::BAD_REQUEST,
            "invalid_replacement",
        ),
        (
            json!({"message": "m", "replacement": "labs.nothing"}),
            StatusCode::BAD_REQUEST,
            "invalid_replacement",
        ),
        (
            json!({"message": "m", "versions": "one point oh"}),
            StatusCode::BAD_REQUEST,
            "invalid_version_range",
        ),
        (
            json!({"message": "m", "blocks_installs": true}),
            StatusCode::FORBIDDEN,
            "operator_required",
        ),
    ];
    for (body, status, code) in cases {
        deprecate(&app, &w.dev.token, OLD, body.clone())
            .await?
            .expect_error(status, code)
            .with_context(|| format!("{body}"))?;
    }
    app.put(
        &format!("/v1/plugins/{OLD}/deprecation"),
        None,
        json!({"message": "m"}),
    )
    .await?
    .expect(StatusCode::UNAUTHORIZED)?;
    // Someone outside the publisher, even a tenant that has it installed: 404.
    deprecate(&app, &w.acme_admin, OLD, json!({"message": "m"}))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    deprecate(&app, &w.dev.token, "labs.unknown", json!({"message": "m"}))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    ensure!(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM deprecations")
            .fetch_one(app.db().pool())
            .await?
            == 0,
        "refused requests store nothing"
    );
    // A private replacement cannot be advised to everyone.
    app.put(
        "/v1/plugins/labs.secret/audience",
        Some(&w.dev.token),
        json!({"tenants": ["acme"]}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let bytes = package_with(&HELLO, "labs.secret", "1.0.0", "", None, Some(&w.dev.key))?;
    let submission = submit_ok(&app, &w.dev.token, bytes).await?;
    app.post(
        &format!("/v1/submissions/{submission}/decision"),
        Some(&w.operator),
        json!({"decision": "approve", "reason": "Reviewed in a test."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    deprecate(
        &app,
        &w.dev.token,
        OLD,
        json!({"message": "m", "replacement": "labs.secret"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_replacement")?;
    Ok(())
}

async fn an_operator_deprecation_may_close_new_installs(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let closed = deprecate(
        &app,
        &w.operator,
        OLD,
        json!({"message": "Withdrawn by the platform.", "replacement": NEW, "blocks_installs": true}),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(closed.body["blocks_installs"] == true, "{}", closed.body);
    let refused = install(&app, &w.globex_admin, "globex", OLD, "1.1.0")
        .await?
        .expect_error(StatusCode::CONFLICT, "plugin_deprecated")?;
    ensure!(refused.message().contains(NEW), "{}", refused.body);
    // The installed tenant keeps running it; the publisher is told.
    let inbox = app
        .get("/v1/publishers/labs/notifications", Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        inbox.body["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|n| n["kind"] == "plugin_deprecated")),
        "{}",
        inbox.body
    );
    // The publisher's own change keeps the operator's block; only an operator lifts it.
    let rephrased = deprecate(
        &app,
        &w.dev.token,
        OLD,
        json!({"message": "Please move to labs.new."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(
        rephrased.body["blocks_installs"] == true,
        "{}",
        rephrased.body
    );
    app.delete(
        &format!("/v1/plugins/{OLD}/deprecation"),
        Some(&w.dev.token),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "operator_required")?;
    app.delete(&format!("/v1/plugins/{OLD}/deprecation"), Some(&w.operator))
        .await?
        .expect(StatusCode::NO_CONTENT)?;
    install(&app, &w.globex_admin, "globex", OLD, "1.1.0")
        .await?
        .expect(StatusCode::CREATED)?;
    Ok(())
}
