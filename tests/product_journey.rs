//! The whole product through the real `plinth` binary, as its four roles use it (issue 9):
//!
//! 1. The **operator** bootstraps, creates tenant `shop` on plan pro (and `beta` on free) and
//!    grants a colleague the reviewer role.
//! 2. A **developer** scaffolds `acme.greeter-<backend>` with `plinth plugin new`, makes it read a
//!    secret setting, builds and signs it with `plinth plugin build --key`, and publishes it
//!    with `plinth plugin publish`.
//! 3. The **reviewer** finds it in the queue and approves it.
//! 4. The **tenant admin** of `shop` searches the catalog, installs it consenting to the
//!    permissions shown, configures the secret (never shown back), sends events and rates it.
//! 5. The developer publishes 0.1.1; once approved it applies by itself to both tenants.
//! 6. The operator security-yanks 0.1.1: every install is back on 0.1.0 at once.
//! 7. A paid plugin (signed with `plinth plugin sign`) is installed, charged through the
//!    billing webhook and paid out to its publisher.
//! 8. `plinth audit verify` and `plinth ledger verify` pass.
//!
//! On SQLite and PostgreSQL.

mod common {
    pub mod api;
    pub mod cli;
    pub mod server;
}

use std::path::Path;

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::HELLO;
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use common::api::{Api, paid_package};
use common::cli::{plinth_ok, verify_audit_and_ledger};
use common::server::{PlinthServer, bootstrap};

/// The scaffolded plugin's name: one per backend, so the two journeys running at once build
/// different crates in the shared guest target dir.
fn greeter_name(database: Option<&TestDatabase>) -> &'static str {
    match database {
        None => "greeter-sqlite",
        Some(_) => "greeter-postgres",
    }
}
const PAID: &str = "acme.paid";
const WEBHOOK_SECRET: &str = "whsec_journey";
/// What the shop configures as its secret setting.
const TOKEN: &str = "tok-very-secret-value";

/// The scaffold's plugin, changed as a developer would: it reads a secret `api-token` setting
/// and greets with `greeting` (so a new version is visibly new).
fn edit_greeter(dir: &Path, version: &str, greeting: &str) -> Result<()> {
    let manifest_path = dir.join("plinth.toml");
    let manifest = std::fs::read_to_string(&manifest_path)?;
    if manifest.contains("[config.api-token]") {
        // Already changed: a new version, greeting differently.
        let manifest = manifest.replace("version = \"0.1.0\"", &format!("version = \"{version}\""));
        std::fs::write(&manifest_path, manifest)?;
        let source_path = dir.join("src/lib.rs");
        let source = std::fs::read_to_string(&source_path)?
            .replace("\"Hello, {who}!", &format!("\"{greeting}, {{who}}!"));
        std::fs::write(&source_path, source)?;
        return Ok(());
    }
    let manifest = manifest
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        .replace(
            "events = { subscribe = [\"greet\"] }",
            "events = { subscribe = [\"greet\"] }\nconfig = true\n\n\
             [config.api-token]\ntype = \"string\"\nsecret = true\nrequired = true",
        );
    ensure!(manifest.contains("[config.api-token]"), "{manifest}");
    std::fs::write(&manifest_path, manifest)?;
    let source_path = dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&source_path)?
        .replace(
            "use plinth_sdk::{Event, Plugin, PluginError, log};",
            "use plinth_sdk::{Event, Plugin, PluginError, config, log};",
        )
        .replace(
            "plinth_sdk::json(&format!(\"Hello, {who}!\"))",
            &format!(
                "let token = config::get_required(\"api-token\")?;\n        \
                 plinth_sdk::json(&format!(\"{greeting}, {{who}}! (token of {{}} chars)\", token.len()))"
            ),
        );
    ensure!(source.contains("api-token"), "{source}");
    std::fs::write(&source_path, source)?;
    Ok(())
}

/// Builds and signs the greeter `acme.NAME` in `work/NAME`, publishes it with the CLI; the
/// submission id.
fn build_and_publish(
    work: &Path,
    name: &str,
    base: &str,
    developer: &str,
    version: &str,
) -> Result<String> {
    let built = plinth_ok(work, &["plugin", "build", name, "--key", "acme"])?;
    let package = format!("acme.{name}-{version}.plinth");
    ensure!(built.trim() == package, "plugin build printed {built}");
    let published = plinth_ok(
        work,
        &[
            "plugin", "publish", &package, "--server", base, "--token", developer, "--json",
        ],
    )?;
    let submission: Value = serde_json::from_str(&published)?;
    ensure!(submission["status"] == "in_review", "{submission}");
    Ok(submission["id"]
        .as_str()
        .context("submission id")?
        .to_owned())
}

/// The reviewer finds `submission` in the queue and approves it.
async fn approve(api: &Api, reviewer: &str, submission: &str) -> Result<()> {
    let queue = api
        .ok(Method::GET, "/v1/review/queue", Some(reviewer), None)
        .await?;
    ensure!(
        queue["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["id"] == submission)),
        "{submission} is not in the queue: {queue}"
    );
    api.ok(
        Method::POST,
        &format!("/v1/submissions/{submission}/decision"),
        Some(reviewer),
        Some(json!({"decision": "approve", "reason": "Reads one secret setting, greets."})),
    )
    .await?;
    Ok(())
}

/// Greets Ada in `tenant`; (version, output) of `greeter`.
async fn greet(api: &Api, key: &str, tenant: &str, greeter: &str) -> Result<(String, Value)> {
    let answer = api
        .ok(
            Method::POST,
            &format!("/v1/tenants/{tenant}/events"),
            Some(key),
            Some(json!({"topic": "greet", "payload": "Ada"})),
        )
        .await?;
    let result = answer["results"]
        .as_array()
        .and_then(|results| results.iter().find(|r| r["plugin"] == greeter))
        .cloned()
        .with_context(|| format!("no greeter result: {answer}"))?;
    ensure!(result["error"].is_null(), "{result}");
    Ok((
        result["version"].as_str().context("version")?.to_owned(),
        result["output"].clone(),
    ))
}

async fn product_journey(database: Option<TestDatabase>) -> Result<()> {
    let work = tempfile::tempdir()?;
    let work = work.path();
    let data_dir = work.join("data");
    let url = database.as_ref().map(TestDatabase::url);
    let name = greeter_name(database.as_ref());
    let greeter = format!("acme.{name}");
    let greeter = greeter.as_str();
    let server = PlinthServer::start_with_args(
        &data_dir,
        url.as_deref(),
        &[
            "--billing-webhook-secret",
            WEBHOOK_SECRET,
            "--payout-hold-days",
            "0",
        ],
    )?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };

    // 1. The operator: bootstrap, tenants, a reviewer.
    let (ok, operator, stderr) = bootstrap(&data_dir, url.as_deref())?;
    ensure!(ok, "bootstrap failed: {stderr}");
    for (slug, plan) in [("shop", "pro"), ("beta", "free")] {
        let tenant = api.tenant(&operator, slug, Some(plan)).await?;
        ensure!(tenant["plan"] == plan, "{tenant}");
    }
    let (_, admin) = api.account("admin@shop.example").await?;
    api.ok(
        Method::POST,
        "/v1/tenants/shop/members",
        Some(&operator),
        Some(json!({"email": "admin@shop.example", "role": "admin"})),
    )
    .await?;
    let (reviewer_id, reviewer) = api.account("reviewer@plinth.example").await?;
    api.ok(
        Method::PUT,
        &format!("/v1/accounts/{reviewer_id}/roles"),
        Some(&operator),
        Some(json!({"roles": ["reviewer"]})),
    )
    .await?;

    // 2. The developer: a key, a publisher, a scaffolded plugin built, signed and published.
    let (_, developer) = api.account("dev@acme.example").await?;
    api.ok(
        Method::POST,
        "/v1/publishers",
        Some(&developer),
        Some(json!({"namespace": "acme", "name": "Acme"})),
    )
    .await?;
    plinth_ok(work, &["keygen", "--out", "acme"])?;
    let public_key = std::fs::read_to_string(work.join("acme.pub"))?;
    let registered = plinth_ok(
        work,
        &[
            "key",
            "register",
            "--publisher",
            "acme",
            "--key",
            "acme",
            "--server",
            &server.base,
            "--token",
            &developer,
        ],
    )?;
    ensure!(
        registered.contains(public_key.trim()) && registered.contains("\"proven\": true"),
        "{registered}"
    );
    plinth_ok(work, &["plugin", "new", greeter])?;
    edit_greeter(&work.join(name), "0.1.0", "Hello")?;
    let submission = build_and_publish(work, name, &server.base, &developer, "0.1.0")?;

    // 3. The reviewer approves.
    approve(&api, &reviewer, &submission).await?;

    // 4. The tenant admin: search, install with consent and a secret, events, a rating.
    let found = api
        .ok(Method::GET, "/v1/plugins?q=greets", None, None)
        .await?;
    ensure!(
        found["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["id"] == greeter)),
        "search did not find {greeter}: {found}"
    );
    // Consenting to what the catalog shows, with the secret and a policy that follows patches.
    for (admin, tenant, token) in [(&admin, "shop", TOKEN), (&operator, "beta", "beta-token")] {
        let installed = api
            .install(
                admin,
                tenant,
                greeter,
                None,
                json!({"config": {"api-token": token}, "update_policy": "minor"}),
            )
            .await?;
        ensure!(installed["status"] == "active", "{installed}");
    }
    let installs = api
        .ok(Method::GET, "/v1/tenants/shop/installs", Some(&admin), None)
        .await?;
    ensure!(
        !installs.to_string().contains(TOKEN),
        "the secret came back: {installs}"
    );
    let shop_key = api.api_key(&admin, "shop").await?;
    let beta_key = api.api_key(&operator, "beta").await?;
    let expected = json!(format!("Hello, Ada! (token of {} chars)", TOKEN.len()));
    ensure!(
        greet(&api, &shop_key, "shop", greeter).await? == ("0.1.0".to_owned(), expected.clone())
    );
    api.ok(
        Method::PUT,
        &format!("/v1/plugins/{greeter}/ratings/shop"),
        Some(&admin),
        Some(json!({"stars": 5, "text": "Greets every customer by name."})),
    )
    .await?;
    let ratings = api
        .ok(
            Method::GET,
            &format!("/v1/plugins/{greeter}/ratings"),
            None,
            None,
        )
        .await?;
    ensure!(
        ratings
            .to_string()
            .contains("Greets every customer by name."),
        "{ratings}"
    );

    // 5. 0.1.1, same permissions: applied to both tenants once approved.
    edit_greeter(&work.join(name), "0.1.1", "Hi")?;
    let submission = build_and_publish(work, name, &server.base, &developer, "0.1.1")?;
    approve(&api, &reviewer, &submission).await?;
    let (version, output) = greet(&api, &shop_key, "shop", greeter).await?;
    ensure!(
        version == "0.1.1" && output.as_str().is_some_and(|o| o.starts_with("Hi, Ada!")),
        "after 0.1.1 was approved: {version} {output}"
    );
    ensure!(greet(&api, &beta_key, "beta", greeter).await?.0 == "0.1.1");

    // 6. A security yank of 0.1.1 moves every install back to 0.1.0.
    let yanked = api
        .ok(
            Method::POST,
            &format!("/v1/plugins/{greeter}/versions/0.1.1/yank"),
            Some(&operator),
            Some(json!({
                "reason_code": "security", "reason": "Leaks the token length.", "security": true,
            })),
        )
        .await?;
    ensure!(
        yanked["installs"].as_array().map(Vec::len) == Some(2),
        "{yanked}"
    );
    ensure!(greet(&api, &shop_key, "shop", greeter).await? == ("0.1.0".to_owned(), expected));
    ensure!(greet(&api, &beta_key, "beta", greeter).await?.0 == "0.1.0");

    // 7. A paid plugin: signed with the CLI, published, installed, charged, paid out.
    let paid = paid_package(work, &HELLO, (PAID, "Paid hello"), 5000, None)?;
    let paid = paid.to_str().context("path")?;
    plinth_ok(work, &["plugin", "sign", paid, "--key", "acme"])?;
    let published = plinth_ok(
        work,
        &[
            "plugin",
            "publish",
            paid,
            "--server",
            &server.base,
            "--token",
            &developer,
            "--json",
        ],
    )?;
    let submission: Value = serde_json::from_str(&published)?;
    approve(&api, &reviewer, submission["id"].as_str().context("id")?).await?;
    api.install(&admin, "shop", PAID, None, json!({})).await?;
    let subscription = api.subscription(&admin, "shop", PAID).await?;
    api.invoice_paid(
        WEBHOOK_SECRET,
        &subscription,
        "in_journey_1",
        5000,
        "ch_journey_1",
    )
    .await?;
    let run = api
        .ok(
            Method::POST,
            "/v1/payouts/runs",
            Some(&operator),
            Some(json!({"run_id": "journey-1"})),
        )
        .await?;
    let payout = run["payouts"]
        .as_array()
        .and_then(|payouts| payouts.iter().find(|p| p["namespace"] == "acme"))
        .cloned()
        .with_context(|| format!("acme was not paid out: {run}"))?;
    ensure!(payout["amount"] == 5000, "{payout}");
    api.ok(
        Method::POST,
        &format!(
            "/v1/payouts/{}/paid",
            payout["id"].as_str().context("payout id")?
        ),
        Some(&operator),
        None,
    )
    .await?;

    // 8. The audit log and the ledger are sound.
    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");
    verify_audit_and_ledger(&data_dir, url.as_deref())
}

#[tokio::test]
async fn product_journey_on_sqlite() -> Result<()> {
    product_journey(None).await
}

#[tokio::test]
async fn product_journey_on_postgres() -> Result<()> {
    product_journey(Some(TestDatabase::postgres("product_journey").await?)).await
}
