//! Installs that run, end to end through the `plinth` binary: `hello` and `counter` are
//! published and approved; a tenant admin installs both, consenting to their permissions;
//! events sent with the tenant's API key return the greeting and increment the counter; after
//! `plinth serve` restarts, the counter continues from its value. On SQLite and PostgreSQL.

mod common {
    pub mod api;
    pub mod server;
}

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::{COUNTER, HELLO};
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use common::api::{Api, signed_package};
use common::server::{PlinthServer, bootstrap};

/// Sends `{topic, payload}` with `key` and returns the results array.
async fn event(api: &Api, key: &str, topic: &str, payload: Value) -> Result<Vec<Value>> {
    let answer = api
        .ok(
            Method::POST,
            "/v1/tenants/acme/events",
            Some(key),
            Some(json!({"topic": topic, "payload": payload})),
        )
        .await?;
    answer["results"].as_array().cloned().context("results")
}

/// The output of `plugin` among `results`, failing on its error.
fn output_of(results: &[Value], plugin: &str) -> Result<Value> {
    let result = results
        .iter()
        .find(|r| r["plugin"] == plugin)
        .with_context(|| format!("no result from {plugin}: {results:?}"))?;
    ensure!(result["error"].is_null(), "{plugin} failed: {result}");
    Ok(result["output"].clone())
}

async fn installs_run_and_survive_a_restart(database: Option<TestDatabase>) -> Result<()> {
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("data");
    let url = database.as_ref().map(TestDatabase::url);
    let server = PlinthServer::start(&data_dir, url.as_deref())?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    let (ok, operator, stderr) = bootstrap(&data_dir, url.as_deref())?;
    ensure!(ok, "bootstrap failed: {stderr}");

    // A developer publishes hello and counter; the operator approves them.
    let (developer, key) = api.developer("dev@example.com", "examples").await?;
    for plugin in [&HELLO, &COUNTER] {
        let path = signed_package(work.path(), plugin, &key)?;
        api.publish_and_approve(&path, &developer, &operator)
            .await?;
    }

    // A tenant admin installs both, consenting to exactly the permissions shown.
    let (_, admin) = api.account("admin@acme.example").await?;
    api.tenant(&admin, "acme", None).await?;
    for plugin in ["examples.hello", "examples.counter"] {
        let shown = api
            .ok(
                Method::GET,
                &format!("/v1/plugins/{plugin}/versions/0.1.0"),
                None,
                None,
            )
            .await?;
        let (status, stale) = api
            .send(
                Method::POST,
                "/v1/tenants/acme/installs",
                Some(&admin),
                Some(json!({"plugin": plugin, "permissions_digest": "sha256:0000", "config": {}})),
            )
            .await?;
        ensure!(
            status == 409 && stale["error"]["code"] == "permissions_changed",
            "{status} {stale}"
        );
        ensure!(
            stale["error"]["details"]["permissions"] == shown["permissions"],
            "{stale}"
        );
        let installed = api
            .ok(
                Method::POST,
                "/v1/tenants/acme/installs",
                Some(&admin),
                Some(json!({"plugin": plugin, "permissions_digest": shown["permissions_digest"], "config": {}})),
            )
            .await?;
        ensure!(
            installed["status"] == "active" && installed["version"] == "0.1.0",
            "{installed}"
        );
    }
    let listed = api
        .ok(Method::GET, "/v1/tenants/acme/installs", Some(&admin), None)
        .await?;
    ensure!(
        listed["items"].as_array().map(Vec::len) == Some(2),
        "{listed}"
    );

    // Events through the tenant's API key.
    let tenant_key = api.api_key(&admin, "acme").await?;
    let greeted = event(&api, &tenant_key, "greet", json!("Ada")).await?;
    ensure!(
        greeted.len() == 1,
        "only hello subscribes to greet: {greeted:?}"
    );
    ensure!(
        output_of(&greeted, "examples.hello")? == json!("Hello, Ada!"),
        "{greeted:?}"
    );
    for expected in 1..=2 {
        let counted = event(&api, &tenant_key, "count", json!({})).await?;
        ensure!(
            output_of(&counted, "examples.counter")? == json!({"count": expected}),
            "{counted:?}"
        );
    }
    ensure!(
        event(&api, &tenant_key, "nobody.listens", json!(1))
            .await?
            .is_empty()
    );

    // After a restart the host is rebuilt from storage and the counter continues.
    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");
    let server = PlinthServer::start(&data_dir, url.as_deref())?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    let counted = event(&api, &tenant_key, "count", json!({})).await?;
    ensure!(
        output_of(&counted, "examples.counter")? == json!({"count": 3}),
        "{counted:?}"
    );
    let greeted = event(&api, &tenant_key, "greet", json!("Grace")).await?;
    ensure!(
        output_of(&greeted, "examples.hello")? == json!("Hello, Grace!"),
        "{greeted:?}"
    );

    // Uninstalling removes the install and its data: a reinstall counts from 1.
    api.ok(
        Method::DELETE,
        "/v1/tenants/acme/installs/examples.counter",
        Some(&admin),
        None,
    )
    .await?;
    ensure!(
        event(&api, &tenant_key, "count", json!({}))
            .await?
            .is_empty()
    );
    let shown = api
        .ok(
            Method::GET,
            "/v1/plugins/examples.counter/versions/0.1.0",
            None,
            None,
        )
        .await?;
    api.ok(
        Method::POST,
        "/v1/tenants/acme/installs",
        Some(&admin),
        Some(json!({"plugin": "examples.counter", "permissions_digest": shown["permissions_digest"]})),
    )
    .await?;
    let counted = event(&api, &tenant_key, "count", json!({})).await?;
    ensure!(
        output_of(&counted, "examples.counter")? == json!({"count": 1}),
        "{counted:?}"
    );
    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");
    Ok(())
}

#[tokio::test]
async fn installs_on_sqlite() -> Result<()> {
    installs_run_and_survive_a_restart(None).await
}

#[tokio::test]
async fn installs_on_postgres() -> Result<()> {
    installs_run_and_survive_a_restart(Some(TestDatabase::postgres("installs").await?)).await
}
