//! Lifecycle hooks run outside every database transaction, on both backends with a host.
//!
//! The `slow-hooks` fixture's `on-upgrade` and `on-uninstall` hooks call a local HTTP server
//! (the [`Gate`]) that holds its answer until the test opens it, so a hook runs exactly as long
//! as the test wants, with no clock involved. While tenant alpha's uninstall, update, tenant
//! rollback, operator rollback, security yank or automatic update is held inside its hook,
//! tenant beta's writes go through: an API key and a change to its own install (both write
//! the audit chain) and a rating of the same plugin (its row). Failing hooks keep their
//! meaning, and an install changed while its hook ran is not overwritten.

mod common;
mod publishing;

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use plinth_test_artifacts::SLOW_HOOKS;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;
use tokio::sync::{mpsc, watch};

use common::{Reply, TestApp};
use publishing::{Dev, developer, package_with, submit_ok};

on_both_backends_with_host!(
    a_held_uninstall_hook_blocks_no_other_writer,
    held_upgrade_hooks_block_no_other_writer,
    failing_hooks_keep_their_meaning,
    an_install_changed_while_its_hook_runs_is_not_overwritten,
);

const PLUGIN: &str = "labs.slow-hooks";

/// How long a test waits for a hook to reach the gate, or for an action to end once the gate
/// is open: only so that a regression fails instead of hanging.
const GUARD: Duration = Duration::from_secs(30);

/// How long tenant beta's writes may take while alpha's hook is held. Shorter than the 30 s a
/// guest's outbound request waits for its answer, so a held hook cannot have ended on its own
/// when this runs out: writes that wait for the hook fail here rather than pass late.
const WRITE_GUARD: Duration = Duration::from_secs(20);

/// A local HTTP server the fixture's hooks call: it reports each request's path and query,
/// and holds its answer until the gate is opened.
struct Gate {
    /// The `hook-url` to configure.
    url: String,
    arrived: mpsc::UnboundedReceiver<String>,
    answer: watch::Sender<Option<u16>>,
}

impl Gate {
    async fn start() -> Result<Gate> {
        let (arrivals, arrived) = mpsc::unbounded_channel();
        let (answer, answers) = watch::channel(None::<u16>);
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let arrivals = arrivals.clone();
            let mut answers = answers.clone();
            async move {
                let _ = arrivals.send(
                    uri.path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                );
                let status = match answers.wait_for(Option::is_some).await {
                    Ok(status) => status.unwrap_or(500),
                    Err(_) => 500,
                };
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Gate {
            url,
            arrived,
            answer,
        })
    }

    /// Answers held and later hook requests with `status`.
    fn open(&self, status: u16) {
        self.answer.send_replace(Some(status));
    }

    /// Holds later hook requests until the gate is opened again.
    fn close(&self) {
        self.answer.send_replace(None);
    }

    /// The path and query of the next hook request (`/hook/upgrade?from=1.0.0`).
    async fn next(&mut self) -> Result<String> {
        tokio::time::timeout(GUARD, self.arrived.recv())
            .await
            .map_err(|_| anyhow!("no hook reached the gate"))?
            .context("the gate stopped")
    }
}

/// The operator, a developer's `labs.slow-hooks` 1.0.0 and 1.1.0, and tenants alpha and beta
/// (each with its own admin) with 1.0.0 installed, hooks pointed at the gate.
struct World {
    operator: String,
    dev: Dev,
    alpha: String,
    beta: String,
    gate: Gate,
}

async fn world(app: &TestApp) -> Result<World> {
    let operator = app.operator().await?;
    // A held hook must not be ended by the plan's call timeout (1 s on the free plan).
    app.put(
        "/v1/plans/free",
        Some(&operator),
        json!({"timeout_ms": 120_000}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    for version in ["1.0.0", "1.1.0"] {
        release(app, &operator, &dev, version)
            .await?
            .expect(StatusCode::OK)?;
    }
    let gate = Gate::start().await?;
    let (_, alpha) = app.user("admin@alpha.example").await?;
    let (_, beta) = app.user("admin@beta.example").await?;
    for (token, slug) in [(&alpha, "alpha"), (&beta, "beta")] {
        tenant(app, token, slug).await?;
        install(app, token, slug, "1.0.0", &gate.url)
            .await?
            .expect(StatusCode::CREATED)?;
    }
    Ok(World {
        operator,
        dev,
        alpha,
        beta,
        gate,
    })
}

/// Submits `version` of the plugin and has the operator approve it (which applies automatic
/// updates before it answers).
async fn release(app: &TestApp, operator: &str, dev: &Dev, version: &str) -> Result<Reply> {
    let bytes = package_with(&SLOW_HOOKS, PLUGIN, version, "", None, Some(&dev.key))?;
    let submission = submit_ok(app, &dev.token, bytes).await?;
    app.post(
        &format!("/v1/submissions/{submission}/decision"),
        Some(operator),
        json!({"decision": "approve", "reason": "Reviewed in a test."}),
    )
    .await
}

async fn tenant(app: &TestApp, token: &str, slug: &str) -> Result<()> {
    app.post(
        "/v1/tenants",
        Some(token),
        json!({"slug": slug, "name": slug}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    Ok(())
}

async fn digest(app: &TestApp, version: &str) -> Result<Value> {
    let shown = app
        .get(&format!("/v1/plugins/{PLUGIN}/versions/{version}"), None)
        .await?
        .expect(StatusCode::OK)?;
    Ok(shown.body["permissions_digest"].clone())
}

async fn install(
    app: &TestApp,
    token: &str,
    slug: &str,
    version: &str,
    hook_url: &str,
) -> Result<Reply> {
    let digest = digest(app, version).await?;
    app.post(
        &format!("/v1/tenants/{slug}/installs"),
        Some(token),
        json!({"plugin": PLUGIN, "version": version, "permissions_digest": digest,
               "config": {"hook-url": hook_url}}),
    )
    .await
}

async fn update(app: &TestApp, token: &str, slug: &str, version: &str) -> Result<Reply> {
    let digest = digest(app, version).await?;
    app.post(
        &format!("/v1/tenants/{slug}/installs/{PLUGIN}/update"),
        Some(token),
        json!({"version": version, "permissions_digest": digest}),
    )
    .await
}

async fn tenant_rollback(app: &TestApp, token: &str, slug: &str) -> Result<Reply> {
    app.post(
        &format!("/v1/tenants/{slug}/installs/{PLUGIN}/rollback"),
        Some(token),
        json!({}),
    )
    .await
}

async fn uninstall(app: &TestApp, token: &str, slug: &str) -> Result<Reply> {
    app.delete(
        &format!("/v1/tenants/{slug}/installs/{PLUGIN}"),
        Some(token),
    )
    .await
}

async fn security_yank(app: &TestApp, operator: &str, version: &str) -> Result<Reply> {
    app.post(
        &format!("/v1/plugins/{PLUGIN}/versions/{version}/yank"),
        Some(operator),
        json!({"reason_code": "security", "reason": "Leaks tokens.", "security": true}),
    )
    .await
}

/// The install of the plugin for `slug` as stored (`None` when there is none).
async fn stored(app: &TestApp, token: &str, slug: &str) -> Result<Option<Value>> {
    let listed = app
        .get(&format!("/v1/tenants/{slug}/installs"), Some(token))
        .await?
        .expect(StatusCode::OK)?;
    Ok(listed.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|item| item["plugin"] == PLUGIN)
        .cloned())
}

/// (version, enabled) of the install of the plugin for `slug` in the host.
async fn in_host(app: &TestApp, slug: &str) -> Result<Option<(String, bool)>> {
    let tenant: String = sqlx::query("SELECT id FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_one(app.db().pool())
        .await?
        .try_get("id")?;
    Ok(app
        .state
        .runtime()?
        .host
        .installs(&tenant)
        .into_iter()
        .find(|info| info.plugin == PLUGIN)
        .map(|info| (info.version, info.enabled)))
}

/// Storage and host agree that `slug` runs `version` (enabled or not).
async fn runs(app: &TestApp, token: &str, slug: &str, version: &str, enabled: bool) -> Result<()> {
    let install = stored(app, token, slug)
        .await?
        .with_context(|| format!("{slug} has no install"))?;
    let status = if enabled { "active" } else { "disabled" };
    ensure!(
        install["version"] == version && install["status"] == status,
        "{slug} stores {install}, not {version} {status}"
    );
    let hosted = in_host(app, slug).await?;
    ensure!(
        hosted == Some((version.to_owned(), enabled)),
        "{slug} runs {hosted:?} in the host, not {version} (enabled: {enabled})"
    );
    Ok(())
}

/// Tenant beta's writes: a new API key (audited), a change to its own install (stored and
/// audited) and a rating of the plugin (its aggregate is on the plugin's row).
async fn beta_writes(app: &TestApp, beta: &str, round: u32) -> Result<()> {
    app.post(
        "/v1/tenants/beta/api-keys",
        Some(beta),
        json!({"name": format!("key {round}")}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    app.patch(
        &format!("/v1/tenants/beta/installs/{PLUGIN}"),
        Some(beta),
        json!({"pinned": round % 2 == 1}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let rated = app
        .put(
            &format!("/v1/plugins/{PLUGIN}/ratings/beta"),
            Some(beta),
            json!({"stars": 1 + round % 5, "text": format!("Round {round}.")}),
        )
        .await?;
    ensure!(
        rated.status == StatusCode::CREATED || rated.status == StatusCode::OK,
        "rating: {} {}",
        rated.status,
        rated.body
    );
    Ok(())
}

/// Runs `action` until its hook request reaches the gate (at `hook`, e.g. `/uninstall`), then
/// `meanwhile` while the hook is held, then opens the gate (answering 200) and returns the
/// action's reply. Fails if the hook never arrives or `meanwhile` does not finish while the
/// hook is held. The gate is closed again afterwards.
async fn while_held(
    gate: &mut Gate,
    hook: &str,
    action: impl Future<Output = Result<Reply>>,
    meanwhile: impl Future<Output = Result<()>>,
) -> Result<Reply> {
    let held = async {
        let done = match gate.next().await {
            Ok(path) if path.starts_with(&format!("/hook{hook}")) => {
                tokio::time::timeout(WRITE_GUARD, meanwhile)
                    .await
                    .unwrap_or_else(|_| {
                        Err(anyhow!(
                            "writes did not go through while the {hook} hook was held"
                        ))
                    })
            }
            Ok(path) => Err(anyhow!("expected the {hook} hook, {path} arrived")),
            Err(error) => Err(error),
        };
        // Let the held hook (and its action) finish whatever happened.
        gate.open(200);
        done
    };
    let (reply, done) = tokio::join!(
        async {
            tokio::time::timeout(GUARD + WRITE_GUARD + GUARD, action)
                .await
                .unwrap_or_else(|_| Err(anyhow!("the action did not end")))
        },
        held
    );
    gate.close();
    done?;
    reply
}

/// Runs `action` with the gate open (its hooks answered at once with `status`).
async fn with_gate_open(
    gate: &Gate,
    status: u16,
    action: impl Future<Output = Result<Reply>>,
) -> Result<Reply> {
    gate.open(status);
    let reply = action.await;
    gate.close();
    reply
}

async fn a_held_uninstall_hook_blocks_no_other_writer(app: TestApp) -> Result<()> {
    let mut w = world(&app).await?;
    let (alpha, beta) = (w.alpha.clone(), w.beta.clone());
    let reply = while_held(
        &mut w.gate,
        "/uninstall",
        uninstall(&app, &alpha, "alpha"),
        beta_writes(&app, &beta, 1),
    )
    .await?;
    reply.expect(StatusCode::NO_CONTENT)?;
    ensure!(stored(&app, &w.alpha, "alpha").await?.is_none());
    ensure!(in_host(&app, "alpha").await?.is_none());
    runs(&app, &w.beta, "beta", "1.0.0", true).await?;
    let verified = app
        .get("/v1/audit/verify", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(verified.body["sound"] == true, "{}", verified.body);
    Ok(())
}

async fn held_upgrade_hooks_block_no_other_writer(app: TestApp) -> Result<()> {
    let mut w = world(&app).await?;
    let (alpha, beta, operator) = (w.alpha.clone(), w.beta.clone(), w.operator.clone());

    // A tenant's update: 1.1.0's hook is told it comes from 1.0.0.
    while_held(
        &mut w.gate,
        "/upgrade?from=1.0.0",
        update(&app, &alpha, "alpha", "1.1.0"),
        beta_writes(&app, &beta, 1),
    )
    .await?
    .expect(StatusCode::OK)?;
    runs(&app, &w.alpha, "alpha", "1.1.0", true).await?;

    // A tenant's rollback: 1.0.0's hook is told it comes from 1.1.0.
    while_held(
        &mut w.gate,
        "/upgrade?from=1.1.0",
        tenant_rollback(&app, &alpha, "alpha"),
        beta_writes(&app, &beta, 2),
    )
    .await?
    .expect(StatusCode::OK)?;
    runs(&app, &w.alpha, "alpha", "1.0.0", true).await?;

    // An operator's rollback of every newer install.
    with_gate_open(&w.gate, 200, update(&app, &w.alpha, "alpha", "1.1.0"))
        .await?
        .expect(StatusCode::OK)?;
    w.gate.next().await?;
    let rolled = while_held(
        &mut w.gate,
        "/upgrade?from=1.1.0",
        app.post(
            &format!("/v1/plugins/{PLUGIN}/rollback"),
            Some(&operator),
            json!({"to_version": "1.0.0", "reason": "1.1.0 corrupts data"}),
        ),
        beta_writes(&app, &beta, 3),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(
        rolled.body["installs"][0]["status"] == "moved",
        "{}",
        rolled.body
    );
    runs(&app, &w.alpha, "alpha", "1.0.0", true).await?;

    // A security yank moving every install off the version.
    with_gate_open(&w.gate, 200, update(&app, &w.alpha, "alpha", "1.1.0"))
        .await?
        .expect(StatusCode::OK)?;
    w.gate.next().await?;
    let yanked = while_held(
        &mut w.gate,
        "/upgrade?from=1.1.0",
        security_yank(&app, &operator, "1.1.0"),
        beta_writes(&app, &beta, 4),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(
        yanked.body["installs"][0]["to"] == "1.0.0",
        "{}",
        yanked.body
    );
    runs(&app, &w.alpha, "alpha", "1.0.0", true).await?;

    // An automatic update, applied as the approval of a new version is answered.
    app.patch(
        &format!("/v1/tenants/alpha/installs/{PLUGIN}"),
        Some(&alpha),
        json!({"update_policy": "minor"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let approval = release(&app, &operator, &w.dev, "1.2.0");
    while_held(
        &mut w.gate,
        "/upgrade?from=1.0.0",
        approval,
        beta_writes(&app, &beta, 5),
    )
    .await?
    .expect(StatusCode::OK)?;
    runs(&app, &w.alpha, "alpha", "1.2.0", true).await?;
    runs(&app, &w.beta, "beta", "1.0.0", true).await?;
    let verified = app
        .get("/v1/audit/verify", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(verified.body["sound"] == true, "{}", verified.body);
    Ok(())
}

async fn failing_hooks_keep_their_meaning(app: TestApp) -> Result<()> {
    let mut w = world(&app).await?;

    // A failing on-upgrade refuses the tenant's update: storage and host stay on 1.0.0.
    let refused = with_gate_open(&w.gate, 500, update(&app, &w.alpha, "alpha", "1.1.0"))
        .await?
        .expect_error(StatusCode::CONFLICT, "lifecycle_failed")?;
    ensure!(
        refused.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("on-upgrade")),
        "{}",
        refused.body
    );
    ensure!(w.gate.next().await? == "/hook/upgrade?from=1.0.0");
    runs(&app, &w.alpha, "alpha", "1.0.0", true).await?;
    let kept = stored(&app, &w.alpha, "alpha").await?.context("alpha")?;
    ensure!(kept["previous_version"].is_null(), "{kept}");

    // It refuses a tenant's rollback too.
    with_gate_open(&w.gate, 200, update(&app, &w.alpha, "alpha", "1.1.0"))
        .await?
        .expect(StatusCode::OK)?;
    w.gate.next().await?;
    with_gate_open(&w.gate, 500, tenant_rollback(&app, &w.alpha, "alpha"))
        .await?
        .expect_error(StatusCode::CONFLICT, "lifecycle_failed")?;
    w.gate.next().await?;
    runs(&app, &w.alpha, "alpha", "1.1.0", true).await?;

    // A security yank still moves every install off the version: alpha returns to the host's
    // previous version (its hook failing again is only logged); gamma, installed on 1.1.0
    // directly, has none and is disabled in host and storage.
    tenant(&app, &w.beta, "gamma").await?;
    install(&app, &w.beta, "gamma", "1.1.0", &w.gate.url)
        .await?
        .expect(StatusCode::CREATED)?;
    let yanked = with_gate_open(&w.gate, 500, security_yank(&app, &w.operator, "1.1.0"))
        .await?
        .expect(StatusCode::OK)?;
    let outcome = |slug: &str| {
        yanked.body["installs"]
            .as_array()
            .and_then(|items| items.iter().find(|item| item["tenant"] == slug))
            .cloned()
            .unwrap_or(Value::Null)
    };
    ensure!(outcome("alpha")["status"] == "moved", "{}", yanked.body);
    ensure!(
        outcome("gamma")["status"] == "disabled"
            && outcome("gamma")["reason"]
                .as_str()
                .is_some_and(|r| r.contains("refused")),
        "{}",
        yanked.body
    );
    runs(&app, &w.alpha, "alpha", "1.0.0", true).await?;
    runs(&app, &w.beta, "gamma", "1.1.0", false).await?;

    // A failing on-uninstall is logged; the uninstall goes ahead.
    while w.gate.arrived.try_recv().is_ok() {}
    with_gate_open(&w.gate, 500, uninstall(&app, &w.alpha, "alpha"))
        .await?
        .expect(StatusCode::NO_CONTENT)?;
    ensure!(w.gate.next().await? == "/hook/uninstall");
    ensure!(stored(&app, &w.alpha, "alpha").await?.is_none());
    ensure!(in_host(&app, "alpha").await?.is_none());
    Ok(())
}

async fn an_install_changed_while_its_hook_runs_is_not_overwritten(app: TestApp) -> Result<()> {
    let mut w = world(&app).await?;
    let alpha = w.alpha.clone();
    let url = w.gate.url.clone();
    let patch_config = async {
        app.patch(
            &format!("/v1/tenants/alpha/installs/{PLUGIN}"),
            Some(&alpha),
            json!({"config": {"hook-url": url}}),
        )
        .await?
        .expect(StatusCode::OK)?;
        Ok(())
    };
    let update_alpha = update(&app, &alpha, "alpha", "1.1.0");
    // The tenant changes the install's configuration while the update's hook runs: the update
    // is refused rather than writing over it, and nothing moved in storage or host.
    while_held(
        &mut w.gate,
        "/upgrade?from=1.0.0",
        update_alpha,
        patch_config,
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "install_changed")?;
    runs(&app, &w.alpha, "alpha", "1.0.0", true).await?;
    let audit = app
        .get("/v1/audit", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    ensure!(actions.contains(&"install.changed"), "{actions:?}");
    ensure!(!actions.contains(&"install.updated"), "{actions:?}");

    // The same for an uninstall: the install stays.
    let pin = async {
        app.patch(
            &format!("/v1/tenants/alpha/installs/{PLUGIN}"),
            Some(&alpha),
            json!({"pinned": true}),
        )
        .await?
        .expect(StatusCode::OK)?;
        Ok(())
    };
    while_held(
        &mut w.gate,
        "/uninstall",
        uninstall(&app, &alpha, "alpha"),
        pin,
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "install_changed")?;
    runs(&app, &w.alpha, "alpha", "1.0.0", true).await?;
    ensure!(stored(&app, &w.alpha, "alpha").await?.context("alpha")?["pinned"] == true);

    // Tried again, both go through.
    with_gate_open(&w.gate, 200, update(&app, &w.alpha, "alpha", "1.1.0"))
        .await?
        .expect(StatusCode::OK)?;
    runs(&app, &w.alpha, "alpha", "1.1.0", true).await?;
    with_gate_open(&w.gate, 200, uninstall(&app, &w.alpha, "alpha"))
        .await?
        .expect(StatusCode::NO_CONTENT)?;
    ensure!(in_host(&app, "alpha").await?.is_none());
    Ok(())
}
