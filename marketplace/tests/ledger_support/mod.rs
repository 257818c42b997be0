//! Helpers for the ledger tests: a marketplace with billing configured, a paid plugin, a
//! tenant on a plan that allows it, and signed processor events.

#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses part of it"
)]

use anyhow::{Context, Result};
use plinth_marketplace::Settings;
use plinth_marketplace::ledger::split::{FeeBearer, FeePolicy, SplitPolicy, Tier};
use plinth_test_support::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::common::{Reply, TestApp};
use crate::publishing::{Dev, developer, package_with, submit_ok};

/// The webhook secret of the test servers.
pub const SECRET: &str = "whsec_test_secret";

/// Runs each named `async fn(Ledger) -> anyhow::Result<()>` on SQLite and PostgreSQL, the
/// server started by `$start` (`without_host` or `with_host`).
#[macro_export]
macro_rules! on_both_backends_ledger {
    ($start:ident: $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let database = plinth_test_support::TestDatabase::sqlite().expect("SQLite");
                let ledger = $crate::ledger_support::$start(database).await.expect("start on SQLite");
                super::$name(ledger).await.expect("test on SQLite");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let database = plinth_test_support::TestDatabase::postgres(stringify!($name))
                    .await
                    .expect("PostgreSQL");
                let ledger = $crate::ledger_support::$start(database).await.expect("start on PostgreSQL");
                super::$name(ledger).await.expect("test on PostgreSQL");
            }
        }
    )*};
}

/// A marketplace with billing configured, and where its payout files go.
pub struct Ledger {
    pub app: TestApp,
    pub files: tempfile::TempDir,
}

/// The settings of the ledger tests: a small first tier (0% on the first 50.00 of lifetime
/// gross, 15% above) so the split shows, a 0.30 fee the publisher bears, the default 30-day
/// hold and 25.00 threshold. One admin owns a tenant per client, and every client calls from
/// this machine's address, so the tenant limit and the address's log-in budget are raised.
pub fn settings(files: &tempfile::TempDir) -> Settings {
    let mut settings = Settings {
        max_tenants_per_account: 100,
        ..Settings::default()
    };
    settings.throttle.address_burst = 1_000;
    settings.ledger.webhook_secret = Some(SECRET.to_owned());
    settings.ledger.split = SplitPolicy {
        version: 2,
        tiers: vec![
            Tier {
                up_to: Some(5_000),
                platform_bps: 0,
            },
            Tier {
                up_to: None,
                platform_bps: 1_500,
            },
        ],
    };
    settings.ledger.fees = FeePolicy {
        basis_points: 0,
        fixed: 30,
        bearer: FeeBearer::Publisher,
    };
    settings.ledger.payout_dir = files.path().join("payouts");
    settings
}

/// A server without a host.
pub async fn without_host(database: TestDatabase) -> Result<Ledger> {
    let files = tempfile::tempdir()?;
    let app = TestApp::start(database, settings(&files)).await?;
    Ok(Ledger { app, files })
}

/// A server with a host (installs work).
pub async fn with_host(database: TestDatabase) -> Result<Ledger> {
    let files = tempfile::tempdir()?;
    let app = TestApp::start_with_host_settings(database, settings(&files)).await?;
    Ok(Ledger { app, files })
}

/// The operator, a developer publishing as `labs` with the paid plugin `labs.paid` (10.00 USD
/// a month) approved, and tenant `acme` on the pro plan owned by `admin`.
pub struct World {
    pub operator: String,
    pub dev: Dev,
    pub admin: String,
    pub tenant_id: String,
    pub plugin: String,
}

/// `[pricing]` of a plugin billed monthly.
pub fn monthly(amount: i64) -> String {
    format!("\n[pricing]\nmodel = \"monthly\"\namount = {amount}\ncurrency = \"USD\"")
}

/// Publishes `labs.<name>` 0.1.0 with `pricing` and approves it; returns the id.
pub async fn publish_paid(
    app: &TestApp,
    operator: &str,
    dev: &Dev,
    name: &str,
    pricing: &str,
) -> Result<String> {
    let id = format!("{}.{name}", dev.ns);
    let bytes = package_with(
        &plinth_test_artifacts::HELLO,
        &id,
        "0.1.0",
        pricing,
        Some("# Paid\nCosts money."),
        Some(&dev.key),
    )?;
    let submission = submit_ok(app, &dev.token, bytes).await?;
    app.post(
        &format!("/v1/submissions/{submission}/decision"),
        Some(operator),
        json!({"decision": "approve", "reason": "Reviewed in a test."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    Ok(id)
}

/// Creates tenant `slug` owned by `admin`, moved to the pro plan by the operator; its id.
pub async fn pro_tenant(app: &TestApp, operator: &str, admin: &str, slug: &str) -> Result<String> {
    let made = app
        .post(
            "/v1/tenants",
            Some(admin),
            json!({"slug": slug, "name": format!("Tenant {slug}")}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    app.patch(
        &format!("/v1/tenants/{slug}"),
        Some(operator),
        json!({"plan": "pro"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    Ok(made.body["id"].as_str().context("tenant id")?.to_owned())
}

pub async fn world(app: &TestApp) -> Result<World> {
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    let plugin = publish_paid(app, &operator, &dev, "paid", &monthly(10_000)).await?;
    let (_, admin) = app.user("admin@acme.example").await?;
    let tenant_id = pro_tenant(app, &operator, &admin, "acme").await?;
    Ok(World {
        operator,
        dev,
        admin,
        tenant_id,
        plugin,
    })
}

/// The [`world`] and a subscription of `acme` to `labs.paid` (10.00 a month), started as an
/// install would.
pub async fn subscribed(ledger: &Ledger) -> Result<(World, String)> {
    let w = world(&ledger.app).await?;
    let subscription = subscribe(
        &ledger.app,
        &w.tenant_id,
        &w.plugin,
        &pricing(plinth_package::PricingModel::Monthly, 10_000)?,
    )
    .await?;
    Ok((w, subscription))
}

/// Starts a subscription of `tenant_id` to `plugin` as an install would (for tests without a
/// host); its id.
pub async fn subscribe(
    app: &TestApp,
    tenant_id: &str,
    plugin: &str,
    pricing: &plinth_package::Pricing,
) -> Result<String> {
    let mut tx = app.db().begin().await?;
    let id = plinth_marketplace::ledger::subscriptions::start(&mut tx, tenant_id, plugin, pricing)
        .await?
        .context("a paid plugin has a subscription")?;
    tx.commit().await?;
    Ok(id)
}

/// Pricing of `model` at `amount` USD minor units.
pub fn pricing(
    model: plinth_package::PricingModel,
    amount: i64,
) -> Result<plinth_package::Pricing> {
    Ok(plinth_package::Pricing {
        model,
        amount: Some(amount),
        currency: Some("USD".parse()?),
    })
}

/// Sends `event` to the webhook signed with `secret` at `at` (Unix seconds).
pub async fn deliver_signed(app: &TestApp, event: &Value, secret: &str, at: i64) -> Result<Reply> {
    let payload = serde_json::to_vec(event)?;
    let header = plinth_marketplace::ledger::webhook::signature_header(secret, at, &payload)?;
    send(app, payload, Some(&header)).await
}

/// Sends `payload` to the webhook with `signature` as the `Stripe-Signature` header.
pub async fn send(app: &TestApp, payload: Vec<u8>, signature: Option<&str>) -> Result<Reply> {
    send_to(
        app.client.clone(),
        app.base.clone(),
        payload,
        signature.map(str::to_owned),
    )
    .await
}

/// As [`send`], to the server at `base` (owned, for spawned tasks).
pub async fn send_to(
    client: reqwest::Client,
    base: String,
    payload: Vec<u8>,
    signature: Option<String>,
) -> Result<Reply> {
    let mut request = client
        .post(format!("{base}/v1/billing/webhook"))
        .header("content-type", "application/json")
        .body(payload);
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    crate::common::reply(request.send().await?).await
}

/// Delivers every event signed now, each from its own task, all at once; the replies in the
/// events' order.
pub async fn deliver_at_once(app: &TestApp, events: &[Value]) -> Result<Vec<Reply>> {
    let mut tasks = Vec::new();
    for event in events {
        let payload = serde_json::to_vec(event)?;
        let header =
            plinth_marketplace::ledger::webhook::signature_header(SECRET, now_secs(), &payload)?;
        tasks.push(tokio::spawn(send_to(
            app.client.clone(),
            app.base.clone(),
            payload,
            Some(header),
        )));
    }
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await??);
    }
    Ok(replies)
}

/// `POST path` with `body` as `token`, `count` times at once, each from its own task; the
/// replies.
pub async fn post_at_once(
    app: &TestApp,
    path: &str,
    token: &str,
    body: &Value,
    count: usize,
) -> Result<Vec<Reply>> {
    let mut tasks = Vec::new();
    for _ in 0..count {
        let request = app
            .client
            .post(format!("{}{path}", app.base))
            .bearer_auth(token)
            .json(body);
        tasks.push(tokio::spawn(async move {
            crate::common::reply(request.send().await?).await
        }));
    }
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await??);
    }
    Ok(replies)
}

/// Sends `event` signed now with the server's secret.
pub async fn deliver(app: &TestApp, event: &Value) -> Result<Reply> {
    deliver_signed(app, event, SECRET, now_secs()).await
}

pub fn now_secs() -> i64 {
    plinth_marketplace::clock::now_ms() / 1000
}

/// `invoice.paid` for `subscription`, paid by charge `charge`.
pub fn invoice_paid(
    event: &str,
    invoice: &str,
    subscription: &str,
    amount: i64,
    charge: &str,
) -> Value {
    json!({
        "id": event,
        "object": "event",
        "type": "invoice.paid",
        "created": now_secs(),
        "data": {"object": {
            "id": invoice,
            "object": "invoice",
            "subscription": subscription,
            "amount_paid": amount,
            "currency": "usd",
            "charge": charge,
            "status": "paid",
        }},
    })
}

/// `charge.refunded` bringing `charge`'s refunded total to `amount_refunded`.
pub fn charge_refunded(event: &str, charge: &str, amount_refunded: i64) -> Value {
    json!({
        "id": event,
        "object": "event",
        "type": "charge.refunded",
        "created": now_secs(),
        "data": {"object": {
            "id": charge,
            "object": "charge",
            "amount_refunded": amount_refunded,
            "currency": "usd",
            "refunded": true,
        }},
    })
}

/// `charge.dispute.created` / `charge.dispute.closed`.
pub fn dispute(
    event: &str,
    kind: &str,
    dispute: &str,
    charge: &str,
    amount: i64,
    status: &str,
) -> Value {
    json!({
        "id": event,
        "object": "event",
        "type": kind,
        "created": now_secs(),
        "data": {"object": {
            "id": dispute,
            "object": "dispute",
            "charge": charge,
            "amount": amount,
            "currency": "usd",
            "status": status,
        }},
    })
}

/// One number from `sql` (a `COUNT(*)` or sum aliased `n`).
pub async fn scalar(app: &TestApp, sql: &'static str) -> Result<i64> {
    let row = sqlx::query(sql).fetch_one(app.db().pool()).await?;
    Ok(row.try_get("n")?)
}

/// How many ledger transactions there are.
pub async fn transactions(app: &TestApp) -> Result<i64> {
    scalar(app, "SELECT COUNT(*) AS n FROM ledger_transactions").await
}

/// The current month, `YYYY-MM`.
pub fn this_month() -> Result<String> {
    Ok(plinth_marketplace::usage::month_key(
        plinth_marketplace::clock::now_ms(),
    )?)
}

/// Ends the hold of every charge (as if its 30 days had passed).
pub async fn end_holds(app: &TestApp) -> Result<()> {
    sqlx::query("UPDATE ledger_charges SET available_at = $1 WHERE available_at IS NOT NULL")
        .bind(plinth_marketplace::clock::now_ms() - 1)
        .execute(app.db().pool())
        .await?;
    Ok(())
}

/// The balance of account `id` (0 if it does not exist).
pub async fn balance(app: &TestApp, id: &str) -> Result<i64> {
    let row = sqlx::query("SELECT balance FROM ledger_accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(app.db().pool())
        .await?;
    Ok(match row {
        Some(row) => row.try_get("balance")?,
        None => 0,
    })
}

/// Fails unless the ledger verifies.
pub async fn assert_sound(app: &TestApp) -> Result<()> {
    match plinth_marketplace::ledger::verify::verify(app.db()).await? {
        Ok(_) => Ok(()),
        Err(violation) => anyhow::bail!("ledger broken: {violation}"),
    }
}
