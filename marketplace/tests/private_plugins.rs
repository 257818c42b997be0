//! Private plugins over HTTP with a host, on both backends: a publisher names the tenants that
//! see and install a plugin; everyone else gets a 404 on every catalog and install route, as
//! for a plugin that does not exist; an operator may waive review of a publisher's private
//! plugins (audited), never of its public ones.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::HELLO;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{Reply, TestApp};
use publishing::{Dev, developer, package_with, permissions_digest, submit_ok};

on_both_backends_with_host!(
    private_plugins_are_404_to_everyone_outside_the_audience,
    the_audience_is_checked_and_changes_are_audited,
    an_operator_may_waive_review_of_private_plugins_only,
);

const INTERNAL: &str = "labs.internal";

/// The operator, a developer publishing as `labs`, tenant `acme` (in the audience) owned by
/// `acme_admin`, tenant `globex` (outside it) owned by `globex_admin`, and a user with no
/// tenant.
struct World {
    operator: String,
    dev: Dev,
    acme_admin: String,
    globex_admin: String,
    loner: String,
}

async fn world(app: &TestApp) -> Result<World> {
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    let (_, acme_admin) = app.user("admin@acme.example").await?;
    app.tenant(&acme_admin, "acme").await?;
    let (_, globex_admin) = app.user("admin@globex.example").await?;
    app.tenant(&globex_admin, "globex").await?;
    let (_, loner) = app.user("loner@example.com").await?;
    Ok(World {
        operator,
        dev,
        acme_admin,
        globex_admin,
        loner,
    })
}

/// Submits HELLO as `id` `version`; returns the submission id.
async fn submit(app: &TestApp, dev: &Dev, id: &str, version: &str) -> Result<String> {
    let bytes = package_with(&HELLO, id, version, "", None, Some(&dev.key))?;
    submit_ok(app, &dev.token, bytes).await
}

async fn approve(app: &TestApp, operator: &str, submission: &str) -> Result<()> {
    app.post(
        &format!("/v1/submissions/{submission}/decision"),
        Some(operator),
        json!({"decision": "approve", "reason": "Reviewed in a test."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    Ok(())
}

async fn set_audience(app: &TestApp, token: &str, id: &str, tenants: &[&str]) -> Result<Reply> {
    app.put(
        &format!("/v1/plugins/{id}/audience"),
        Some(token),
        json!({ "tenants": tenants }),
    )
    .await
}

/// Installs `id` 1.0.0 for `slug`, consenting with `digest`.
async fn install(app: &TestApp, token: &str, slug: &str, id: &str, digest: &str) -> Result<Reply> {
    app.post(
        &format!("/v1/tenants/{slug}/installs"),
        Some(token),
        json!({"plugin": id, "version": "1.0.0", "permissions_digest": digest}),
    )
    .await
}

/// The plugin ids a search (with `query`) shows to `token`.
async fn search(app: &TestApp, token: Option<&str>, query: &str) -> Result<Vec<String>> {
    let page = app
        .get(&format!("/v1/plugins?{query}"), token)
        .await?
        .expect(StatusCode::OK)?;
    Ok(page.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        .collect())
}

/// Every catalog read of `id` 1.0.0 as `token`: each must answer `status`.
async fn catalog_reads(
    app: &TestApp,
    token: Option<&str>,
    id: &str,
    status: StatusCode,
) -> Result<()> {
    for path in [
        format!("/v1/plugins/{id}"),
        format!("/v1/plugins/{id}/versions"),
        format!("/v1/plugins/{id}/versions/1.0.0"),
        format!("/v1/plugins/{id}/versions/1.0.0/package"),
        format!("/v1/plugins/{id}/ratings"),
    ] {
        let reply = app.get(&path, token).await?;
        ensure!(
            reply.status == status,
            "GET {path} as {token:?}: expected {status}, got {} {}",
            reply.status,
            reply.body
        );
        if status == StatusCode::NOT_FOUND {
            ensure!(
                reply.code() == "not_found" && !reply.message().contains("private"),
                "a hidden plugin must look unknown: {}",
                reply.body
            );
        }
    }
    for query in [
        "q=hello",
        "sort=installs",
        "sort=recent",
        "q=greets&sort=rating",
    ] {
        let found = search(app, token, query).await?;
        ensure!(
            found.contains(&id.to_owned()) == (status == StatusCode::OK),
            "search {query} as {token:?} shows {found:?}"
        );
    }
    Ok(())
}

async fn private_plugins_are_404_to_everyone_outside_the_audience(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let acme_key = app.api_key(&w.acme_admin, "acme").await?;
    let globex_key = app.api_key(&w.globex_admin, "globex").await?;

    // Declared private before its first version, so it is never public for a moment.
    let declared = set_audience(&app, &w.dev.token, INTERNAL, &["acme"])
        .await?
        .expect(StatusCode::OK)?;
    ensure!(declared.body == json!({"plugin": INTERNAL, "private": true, "tenants": ["acme"]}));
    let submission = submit(&app, &w.dev, INTERNAL, "1.0.0").await?;
    approve(&app, &w.operator, &submission).await?;
    // A public plugin of the same publisher, to see that searches still work for everyone.
    let public = submit(&app, &w.dev, "labs.hello", "1.0.0").await?;
    approve(&app, &w.operator, &public).await?;

    // Outside the audience: a stranger, another tenant's admin and API key, a user with no
    // tenant. Every catalog read is a 404 and no search shows it.
    for token in [
        None,
        Some(w.globex_admin.as_str()),
        Some(globex_key.as_str()),
        Some(w.loner.as_str()),
    ] {
        catalog_reads(&app, token, INTERNAL, StatusCode::NOT_FOUND).await?;
        ensure!(
            search(&app, token, "q=hello")
                .await?
                .contains(&"labs.hello".to_owned())
        );
    }
    // The install routes too: installing, updating, reading the audience.
    let digest = permissions_digest(&app, "labs.hello", "1.0.0").await?;
    install(&app, &w.globex_admin, "globex", INTERNAL, &digest)
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.post(
        "/v1/tenants/globex/installs/labs.internal/update",
        Some(&w.globex_admin),
        json!({"version": "1.0.0", "permissions_digest": digest}),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    for token in [&w.globex_admin, &globex_key, &w.acme_admin] {
        app.get(&format!("/v1/plugins/{INTERNAL}/audience"), Some(token))
            .await?
            .expect_error(StatusCode::NOT_FOUND, "not_found")?;
        set_audience(&app, token, INTERNAL, &["globex"])
            .await?
            .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    }

    // Inside: the audience's members and API key, the publisher, operators.
    for token in [&w.acme_admin, &acme_key, &w.dev.token, &w.operator] {
        catalog_reads(&app, Some(token), INTERNAL, StatusCode::OK).await?;
    }
    let detail = app
        .get(&format!("/v1/plugins/{INTERNAL}"), Some(&w.acme_admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(detail.body["private"] == true, "{}", detail.body);
    let digest = detail.body["versions"][0]["permissions_digest"]
        .as_str()
        .context("digest")?
        .to_owned();
    install(&app, &w.acme_admin, "acme", INTERNAL, &digest)
        .await?
        .expect(StatusCode::CREATED)?;
    let ran = app
        .post(
            "/v1/tenants/acme/events",
            Some(&acme_key),
            json!({"topic": "greet", "payload": {"name": "acme"}}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        ran.body["results"]
            .as_array()
            .is_some_and(|results| results.iter().any(|r| r["plugin"] == INTERNAL)),
        "the private plugin runs for its audience: {}",
        ran.body
    );
    Ok(())
}

async fn the_audience_is_checked_and_changes_are_audited(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    // Bad input names the field or the tenant; a stranger is 401.
    set_audience(&app, &w.dev.token, INTERNAL, &[])
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    let unknown = set_audience(&app, &w.dev.token, INTERNAL, &["acme", "no-such-tenant"])
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "unknown_tenant")?;
    ensure!(
        unknown.message().contains("no-such-tenant"),
        "{}",
        unknown.body
    );
    let too_many: Vec<String> = (0..=1000).map(|n| format!("t{n}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    set_audience(&app, &w.dev.token, INTERNAL, &too_many)
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    app.put(
        &format!("/v1/plugins/{INTERNAL}/audience"),
        None,
        json!({"tenants": ["acme"]}),
    )
    .await?
    .expect(StatusCode::UNAUTHORIZED)?;
    // Another publisher's namespace, or not a plugin id at all: 404.
    set_audience(&app, &w.dev.token, "other.plugin", &["acme"])
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    set_audience(&app, &w.dev.token, "not-an-id", &["acme"])
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    ensure!(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM private_plugins")
            .fetch_one(app.db().pool())
            .await?
            == 0,
        "refused requests store nothing"
    );

    set_audience(&app, &w.dev.token, INTERNAL, &["acme"])
        .await?
        .expect(StatusCode::OK)?;
    let submission = submit(&app, &w.dev, INTERNAL, "1.0.0").await?;
    approve(&app, &w.operator, &submission).await?;
    let digest = app
        .get(
            &format!("/v1/plugins/{INTERNAL}/versions/1.0.0"),
            Some(&w.acme_admin),
        )
        .await?
        .expect(StatusCode::OK)?
        .body["permissions_digest"]
        .as_str()
        .context("digest")?
        .to_owned();
    install(&app, &w.acme_admin, "acme", INTERNAL, &digest)
        .await?
        .expect(StatusCode::CREATED)?;

    // A tenant with an install stays in the audience.
    let kept = set_audience(&app, &w.dev.token, INTERNAL, &["globex"])
        .await?
        .expect_error(StatusCode::CONFLICT, "audience_installed")?;
    ensure!(kept.message().contains("acme"), "{}", kept.body);
    // Sharing with globex: it is told, and may install.
    let shared = set_audience(&app, &w.dev.token, INTERNAL, &["globex", "acme"])
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        shared.body["tenants"] == json!(["acme", "globex"]),
        "{}",
        shared.body
    );
    let inbox = app
        .get("/v1/tenants/globex/notifications", Some(&w.globex_admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        inbox.body["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|n| n["kind"] == "private_plugin_shared")),
        "{}",
        inbox.body
    );
    install(&app, &w.globex_admin, "globex", INTERNAL, &digest)
        .await?
        .expect(StatusCode::CREATED)?;

    // A plugin published to everyone cannot be made private.
    let public = submit(&app, &w.dev, "labs.hello", "1.0.0").await?;
    approve(&app, &w.operator, &public).await?;
    set_audience(&app, &w.dev.token, "labs.hello", &["acme"])
        .await?
        .expect_error(StatusCode::CONFLICT, "plugin_public")?;

    // Opened to everyone: a stranger sees it; opening it twice is a conflict.
    let opened = app
        .delete(
            &format!("/v1/plugins/{INTERNAL}/audience"),
            Some(&w.dev.token),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(opened.body == json!({"plugin": INTERNAL, "private": false, "tenants": []}));
    catalog_reads(&app, None, INTERNAL, StatusCode::OK).await?;
    app.delete(
        &format!("/v1/plugins/{INTERNAL}/audience"),
        Some(&w.dev.token),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "not_private")?;

    let actions = app.audit_actions(&w.operator).await?;
    ensure!(
        actions
            .iter()
            .filter(|a| *a == "plugin.audience_set")
            .count()
            == 2
            && actions.iter().any(|a| a == "plugin.made_public"),
        "{actions:?}"
    );
    Ok(())
}

async fn an_operator_may_waive_review_of_private_plugins_only(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let waiver = |token: &str, ns: &str, body: Value| {
        let path = format!("/v1/publishers/{ns}/review-waiver");
        let token = token.to_owned();
        let app = &app;
        async move { app.put(&path, Some(&token), body).await }
    };
    // Only operators, with a reason, for a publisher that exists.
    waiver(
        &w.dev.token,
        "labs",
        json!({"waived": true, "reason": "our own"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    waiver(&w.operator, "labs", json!({"waived": true}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "reason_required")?;
    waiver(
        &w.operator,
        "nobody",
        json!({"waived": true, "reason": "x"}),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;

    // Without a waiver a private plugin waits for review like any other.
    set_audience(&app, &w.dev.token, INTERNAL, &["acme"])
        .await?
        .expect(StatusCode::OK)?;
    let held = submit(&app, &w.dev, INTERNAL, "1.0.0").await?;
    let shown = app
        .get(&format!("/v1/submissions/{held}"), Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(shown.body["status"] == "in_review", "{}", shown.body);
    approve(&app, &w.operator, &held).await?;

    let set = waiver(
        &w.operator,
        "labs",
        json!({"waived": true, "reason": "Labs publishes only to its own tenants."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(
        set.body["waived"] == true && set.body["waived_at"].is_string(),
        "{}",
        set.body
    );

    // With it, a private plugin's version that passes validation is published at once.
    let bytes = package_with(&HELLO, INTERNAL, "1.1.0", "", None, Some(&w.dev.key))?;
    let waived = publishing::submit(&app, &w.dev.token, bytes)
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(waived.body["status"] == "approved", "{}", waived.body);
    let detail = app
        .get(&format!("/v1/plugins/{INTERNAL}"), Some(&w.acme_admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(detail.body["latest_version"] == "1.1.0", "{}", detail.body);

    // A public plugin is always reviewed.
    let public = submit(&app, &w.dev, "labs.hello", "1.0.0").await?;
    let shown = app
        .get(&format!("/v1/submissions/{public}"), Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(shown.body["status"] == "in_review", "{}", shown.body);

    // Lifted: private plugins wait for review again.
    waiver(
        &w.operator,
        "labs",
        json!({"waived": false, "reason": "Audit season."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let again = submit(&app, &w.dev, INTERNAL, "1.2.0").await?;
    let shown = app
        .get(&format!("/v1/submissions/{again}"), Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(shown.body["status"] == "in_review", "{}", shown.body);

    let audit = app
        .get("/v1/audit", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    let items = audit.body["items"].as_array().context("items")?;
    let has = |action: &str| items.iter().any(|e| e["action"] == action);
    ensure!(has("publisher.review_waived") && has("publisher.review_required"));
    let approved_by_waiver = items
        .iter()
        .find(|e| e["details"]["review_waived_by"].is_string())
        .context("the waived approval is audited")?;
    ensure!(
        approved_by_waiver["actor_kind"] == "system"
            && approved_by_waiver["details"]["version"] == "1.1.0",
        "{approved_by_waiver}"
    );
    Ok(())
}
