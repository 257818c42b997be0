//! Notifications on both backends: read and unread, who may read and mark them, webhook
//! configuration, the outbox written in the notification's transaction, and signed delivery
//! to a local receiver with retries, backoff and a bound.

mod common;
mod publishing;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use plinth_host::egress::{CheckedResolver, Lookup, LookupFuture};
use plinth_marketplace::Settings;
use plinth_marketplace::notifications::notify;
use plinth_marketplace::settings::WebhookSettings;
use plinth_test_support::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::Row;

use common::TestApp;
use publishing::developer;

on_both_backends!(
    read_and_unread,
    webhook_configuration_rules,
    outbox_row_commits_with_its_notification,
);

/// Settings for delivery tests: loopback allowed, quick polls and backoff, three attempts.
fn delivery_settings() -> Settings {
    Settings {
        webhooks: WebhookSettings {
            egress: plinth_host::egress::CheckedResolver::system(true),
            max_attempts: 3,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
            concurrency: 4,
            poll_every: Duration::from_millis(25),
        },
        ..Settings::default()
    }
}

/// Runs each named `async fn(TestDatabase) -> Result<()>` (a test that starts its own server)
/// on a fresh SQLite and a fresh PostgreSQL database.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use plinth_test_support::TestDatabase;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let database = TestDatabase::sqlite().expect("database");
                super::$name(database).await.expect("test on SQLite");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let database = TestDatabase::postgres(stringify!($name))
                    .await
                    .expect("database");
                super::$name(database).await.expect("test on PostgreSQL");
            }
        }
    )*};
}

on_both_databases!(
    webhook_rebinding_never_reaches_loopback,
    webhook_private_addresses_are_refused,
);

on_both_backends_with_settings!(delivery_settings =>
    deliveries_are_signed_and_carry_the_notification,
    a_failing_receiver_is_retried_then_given_up,
    a_flaky_receiver_gets_the_delivery_on_a_retry,
    a_webhook_redirect_is_never_followed,
);

/// Creates tenant `slug` owned by `token`'s user.
async fn tenant(app: &TestApp, token: &str, slug: &str) -> Result<String> {
    let made = app
        .post(
            "/v1/tenants",
            Some(token),
            json!({"slug": slug, "name": format!("Tenant {slug}")}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    Ok(made.body["id"].as_str().context("tenant id")?.to_owned())
}

async fn add_member(app: &TestApp, owner: &str, slug: &str, role: &str) -> Result<String> {
    let email = format!("{role}@{slug}.example");
    let (_, token) = app.user(&email).await?;
    app.post(
        &format!("/v1/tenants/{slug}/members"),
        Some(owner),
        json!({"email": email, "role": role}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    Ok(token)
}

/// Leaves `n` notifications for tenant `tenant_id`, each in its own committed transaction.
async fn notify_tenant(app: &TestApp, tenant_id: &str, n: usize) -> Result<()> {
    for i in 0..n {
        let mut tx = app.db().begin().await?;
        notify(
            &mut tx,
            "tenant",
            tenant_id,
            "test_event",
            &format!("Test event {i}."),
            json!({"n": i}),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

async fn count(app: &TestApp, sql: &'static str) -> Result<i64> {
    Ok(sqlx::query(sql)
        .fetch_one(app.db().pool())
        .await?
        .try_get(0)?)
}

fn ids(listing: &Value) -> Vec<String> {
    listing["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|n| n["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn read_and_unread(app: TestApp) -> Result<()> {
    let (_, owner) = app.user("owner@acme.example").await?;
    let acme = tenant(&app, &owner, "acme").await?;
    let (_, other_owner) = app.user("owner@other.example").await?;
    let other = tenant(&app, &other_owner, "other").await?;
    notify_tenant(&app, &acme, 3).await?;
    notify_tenant(&app, &other, 1).await?;

    let inbox = app
        .get("/v1/tenants/acme/notifications", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(inbox.body["unread_count"] == 3, "{}", inbox.body);
    let all = ids(&inbox.body);
    ensure!(all.len() == 3);

    let read = app
        .post(
            &format!("/v1/tenants/acme/notifications/{}/read", all[0]),
            Some(&owner),
            json!({}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(read.body["read"] == true && read.body["id"] == all[0].as_str());
    // Marking read twice is harmless.
    app.post(
        &format!("/v1/tenants/acme/notifications/{}/read", all[0]),
        Some(&owner),
        json!({}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let unread = app
        .get("/v1/tenants/acme/notifications?unread=true", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(ids(&unread.body) == all[1..], "{}", unread.body);
    ensure!(unread.body["unread_count"] == 2);

    let again = app
        .post(
            &format!("/v1/tenants/acme/notifications/{}/unread", all[0]),
            Some(&owner),
            json!({}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(again.body["read"] == false);

    // Read-only members read the inbox but do not mark it; other tenants see nothing.
    let readonly = add_member(&app, &owner, "acme", "readonly").await?;
    app.get("/v1/tenants/acme/notifications", Some(&readonly))
        .await?
        .expect(StatusCode::OK)?;
    app.post(
        &format!("/v1/tenants/acme/notifications/{}/read", all[1]),
        Some(&readonly),
        json!({}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.post(
        "/v1/tenants/acme/notifications/read-all",
        Some(&readonly),
        json!({}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.get("/v1/tenants/acme/notifications", Some(&other_owner))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    // Another inbox's notification, or none at all: 404 and nothing changes.
    let other_inbox = app
        .get("/v1/tenants/other/notifications", Some(&other_owner))
        .await?
        .expect(StatusCode::OK)?;
    let foreign = ids(&other_inbox.body).remove(0);
    app.post(
        &format!("/v1/tenants/acme/notifications/{foreign}/read"),
        Some(&owner),
        json!({}),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.post(
        "/v1/tenants/acme/notifications/no-such-id/read",
        Some(&owner),
        json!({}),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    let other_inbox = app
        .get("/v1/tenants/other/notifications", Some(&other_owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(other_inbox.body["unread_count"] == 1);
    for query in ["unread=yes", "unread=", "colour=red"] {
        app.get(
            &format!("/v1/tenants/acme/notifications?{query}"),
            Some(&owner),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
    }

    let marked = app
        .post(
            "/v1/tenants/acme/notifications/read-all",
            Some(&owner),
            json!({}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(marked.body["marked"] == 3, "{}", marked.body);
    let after = app
        .get("/v1/tenants/acme/notifications?unread=true", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(after.body["unread_count"] == 0 && ids(&after.body).is_empty());

    // Publishers: members mark their inbox; others cannot reach it.
    let dev = developer(&app, "dev@labs.example", "labs").await?;
    let publisher_id: String = sqlx::query("SELECT id FROM publishers WHERE namespace = 'labs'")
        .fetch_one(app.db().pool())
        .await?
        .try_get(0)?;
    let mut tx = app.db().begin().await?;
    notify(
        &mut tx,
        "publisher",
        &publisher_id,
        "test_event",
        "Hello.",
        json!({}),
    )
    .await?;
    tx.commit().await?;
    let inbox = app
        .get(
            "/v1/publishers/labs/notifications?unread=true",
            Some(&dev.token),
        )
        .await?
        .expect(StatusCode::OK)?;
    let first = ids(&inbox.body).remove(0);
    app.post(
        &format!("/v1/publishers/labs/notifications/{first}/read"),
        Some(&owner),
        json!({}),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.post(
        &format!("/v1/publishers/labs/notifications/{first}/read"),
        Some(&dev.token),
        json!({}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let inbox = app
        .get("/v1/publishers/labs/notifications", Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(inbox.body["unread_count"] == 0 && inbox.body["items"][0]["read"] == true);
    Ok(())
}

async fn webhook_configuration_rules(app: TestApp) -> Result<()> {
    let (_, owner) = app.user("owner@acme.example").await?;
    tenant(&app, &owner, "acme").await?;
    let member = add_member(&app, &owner, "acme", "member").await?;
    let (_, stranger) = app.user("owner@other.example").await?;
    tenant(&app, &stranger, "other").await?;
    let url = json!({"url": "https://hooks.example.invalid/plinth"});

    app.put("/v1/tenants/acme/webhook", Some(&member), url.clone())
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.put("/v1/tenants/acme/webhook", Some(&stranger), url.clone())
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.get("/v1/tenants/acme/webhook", Some(&owner))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    for bad in [
        "ftp://hooks.example.com/x",
        "hooks.example.com/x",
        "https://user:secret@hooks.example.com/x",
        "http://127.0.0.1:9000/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.8/x",
        "http://localhost:8080/x",
    ] {
        let reply = app
            .put(
                "/v1/tenants/acme/webhook",
                Some(&owner),
                json!({"url": bad}),
            )
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_url")?;
        ensure!(
            reply.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("`url`")),
            "{bad}: {}",
            reply.body
        );
    }
    app.put(
        "/v1/tenants/acme/webhook",
        Some(&owner),
        json!({"address": "x"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(count(&app, "SELECT COUNT(*) FROM webhooks").await? == 0);

    let made = app
        .put("/v1/tenants/acme/webhook", Some(&owner), url.clone())
        .await?
        .expect(StatusCode::CREATED)?;
    let secret = made.body["secret"].as_str().context("secret")?.to_owned();
    ensure!(secret.starts_with("whsec_") && secret.len() > 40);
    let shown = app
        .get("/v1/tenants/acme/webhook", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(shown.body["url"] == "https://hooks.example.invalid/plinth");
    ensure!(shown.body.get("secret").is_none(), "{}", shown.body);
    ensure!(
        !shown
            .bytes
            .windows(secret.len())
            .any(|w| w == secret.as_bytes())
    );
    app.get("/v1/tenants/acme/webhook", Some(&member))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;

    // Setting it again replaces it with a new secret.
    let replaced = app
        .put(
            "/v1/tenants/acme/webhook",
            Some(&owner),
            json!({"url": "https://other.example.invalid/hook"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(replaced.body["secret"] != secret.as_str());
    ensure!(count(&app, "SELECT COUNT(*) FROM webhooks").await? == 1);

    app.delete("/v1/tenants/acme/webhook", Some(&member))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.delete("/v1/tenants/acme/webhook", Some(&owner))
        .await?
        .expect(StatusCode::NO_CONTENT)?;
    app.delete("/v1/tenants/acme/webhook", Some(&owner))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;

    // Publishers: owners only.
    let dev = developer(&app, "dev@labs.example", "labs").await?;
    let (_, helper) = app.user("helper@labs.example").await?;
    app.post(
        "/v1/publishers/labs/members",
        Some(&dev.token),
        json!({"email": "helper@labs.example", "role": "member"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    app.put("/v1/publishers/labs/webhook", Some(&helper), url.clone())
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.put("/v1/publishers/labs/webhook", Some(&owner), url.clone())
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.put("/v1/publishers/labs/webhook", Some(&dev.token), url.clone())
        .await?
        .expect(StatusCode::CREATED)?;
    app.get("/v1/publishers/labs/webhook", Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    Ok(())
}

async fn outbox_row_commits_with_its_notification(app: TestApp) -> Result<()> {
    let (_, owner) = app.user("owner@acme.example").await?;
    let acme = tenant(&app, &owner, "acme").await?;
    let (_, other_owner) = app.user("owner@other.example").await?;
    let other = tenant(&app, &other_owner, "other").await?;
    app.put(
        "/v1/tenants/acme/webhook",
        Some(&owner),
        json!({"url": "https://hooks.example.invalid/plinth"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;

    // A change that rolls back leaves neither the notification nor its outbox row.
    let mut tx = app.db().begin().await?;
    notify(
        &mut tx,
        "tenant",
        &acme,
        "test_event",
        "Rolled back.",
        json!({}),
    )
    .await?;
    let inside: i64 = sqlx::query("SELECT COUNT(*) FROM webhook_outbox")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    ensure!(inside == 1, "the outbox row is written in the transaction");
    tx.rollback().await?;
    ensure!(count(&app, "SELECT COUNT(*) FROM webhook_outbox").await? == 0);
    ensure!(count(&app, "SELECT COUNT(*) FROM notifications").await? == 0);

    // A committed one has both, linked; a recipient without a webhook gets no outbox row.
    notify_tenant(&app, &acme, 1).await?;
    notify_tenant(&app, &other, 1).await?;
    let row = sqlx::query(
        "SELECT o.notification_id, o.body, n.id FROM webhook_outbox o \
         JOIN notifications n ON n.id = o.notification_id",
    )
    .fetch_all(app.db().pool())
    .await?;
    ensure!(row.len() == 1);
    let body: Value = serde_json::from_str(&row[0].try_get::<String, _>("body")?)?;
    ensure!(body["recipient"]["id"] == acme.as_str(), "{body}");
    ensure!(body["notification"]["message"] == "Test event 0.");
    ensure!(count(&app, "SELECT COUNT(*) FROM notifications").await? == 2);

    // Removing the webhook removes its queued deliveries.
    app.delete("/v1/tenants/acme/webhook", Some(&owner))
        .await?
        .expect(StatusCode::NO_CONTENT)?;
    ensure!(count(&app, "SELECT COUNT(*) FROM webhook_outbox").await? == 0);
    Ok(())
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// What a receiver got so far (a panicked handler leaves it readable).
fn taken(got: &Mutex<Vec<Received>>) -> std::sync::MutexGuard<'_, Vec<Received>> {
    got.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A webhook receiver on 127.0.0.1 that answers the statuses of `script` in turn (the last
/// one from then on) and keeps what it got.
async fn receiver(script: Vec<u16>) -> Result<(String, Arc<Mutex<Vec<Received>>>)> {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            let script = script.clone();
            async move {
                let mut seen = taken(&seen);
                let n = seen.len();
                seen.push(Received {
                    headers,
                    body: body.to_vec(),
                });
                let code = script.get(n).or(script.last()).copied().unwrap_or(200);
                StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, got))
}

/// Polls the tenant's webhook until `done` holds (at most 30 s); returns the last view.
async fn wait_for(app: &TestApp, token: &str, done: impl Fn(&Value) -> bool) -> Result<Value> {
    for _ in 0..600 {
        let shown = app
            .get("/v1/tenants/acme/webhook", Some(token))
            .await?
            .expect(StatusCode::OK)?;
        if done(&shown.body) {
            return Ok(shown.body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the webhook never reached the expected state")
}

/// Sets up tenant `acme` with a webhook to `url`; returns (owner token, tenant id, secret).
async fn hooked_tenant(app: &TestApp, url: &str) -> Result<(String, String, String)> {
    let (_, owner) = app.user("owner@acme.example").await?;
    let acme = tenant(app, &owner, "acme").await?;
    let made = app
        .put(
            "/v1/tenants/acme/webhook",
            Some(&owner),
            json!({"url": url}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    let secret = made.body["secret"].as_str().context("secret")?.to_owned();
    Ok((owner, acme, secret))
}

/// Checks `Plinth-Signature: t=…,v1=…` against `secret`, independently of the server's code.
fn verify_signature(received: &Received, secret: &str) -> Result<()> {
    let header = received
        .headers
        .get("plinth-signature")
        .and_then(|v| v.to_str().ok())
        .context("Plinth-Signature header")?;
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .context("t=…,v1=…")?;
    let sent: i64 = t.parse()?;
    let now = plinth_marketplace::clock::now_ms() / 1000;
    ensure!(
        (now - sent).abs() < 300,
        "timestamp {sent} is not now ({now})"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())?;
    mac.update(format!("{t}.").as_bytes());
    mac.update(&received.body);
    mac.verify_slice(&hex::decode(v1)?)
        .map_err(|_| anyhow::anyhow!("the signature does not verify"))?;
    Ok(())
}

async fn deliveries_are_signed_and_carry_the_notification(app: TestApp) -> Result<()> {
    let (url, got) = receiver(vec![200]).await?;
    let (owner, acme, secret) = hooked_tenant(&app, &url).await?;
    notify_tenant(&app, &acme, 1).await?;
    let shown = wait_for(&app, &owner, |w| w["delivered"] == 1).await?;
    ensure!(shown["pending"] == 0 && shown["failed"] == 0, "{shown}");
    ensure!(shown["recent"][0]["attempts"] == 1 && shown["recent"][0]["status"] == "delivered");

    let received = taken(&got).clone();
    ensure!(received.len() == 1, "delivered once");
    let delivery = &received[0];
    verify_signature(delivery, &secret)?;
    // A signature under another secret does not verify.
    ensure!(verify_signature(delivery, "whsec_wrong").is_err());
    let body: Value = serde_json::from_slice(&delivery.body)?;
    let event_id = delivery
        .headers
        .get("plinth-event-id")
        .and_then(|v| v.to_str().ok())
        .context("Plinth-Event-Id")?;
    ensure!(body["id"] == event_id && shown["recent"][0]["event_id"] == event_id);
    ensure!(body["type"] == "test_event" && body["notification"]["kind"] == "test_event");
    ensure!(body["notification"]["payload"] == json!({"n": 0}), "{body}");
    ensure!(body["recipient"] == json!({"kind": "tenant", "id": acme}));
    let inbox = app
        .get("/v1/tenants/acme/notifications", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(body["notification"]["id"] == inbox.body["items"][0]["id"]);
    Ok(())
}

async fn a_failing_receiver_is_retried_then_given_up(app: TestApp) -> Result<()> {
    let (url, got) = receiver(vec![500]).await?;
    let (owner, acme, secret) = hooked_tenant(&app, &url).await?;
    notify_tenant(&app, &acme, 1).await?;
    let shown = wait_for(&app, &owner, |w| w["failed"] == 1).await?;
    ensure!(shown["pending"] == 0 && shown["delivered"] == 0, "{shown}");
    let failure = &shown["last_failure"];
    ensure!(
        failure["attempts"] == 3 && failure["status"] == "failed",
        "{shown}"
    );
    ensure!(
        failure["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{failure}"
    );
    // Exactly the bound, each attempt the same event, each signed.
    let received = taken(&got).clone();
    ensure!(received.len() == 3, "{} attempts", received.len());
    let event_ids: Vec<_> = received
        .iter()
        .map(|r| r.headers.get("plinth-event-id").cloned())
        .collect();
    ensure!(
        event_ids
            .iter()
            .all(|id| *id == event_ids[0] && id.is_some())
    );
    for attempt in &received {
        verify_signature(attempt, &secret)?;
    }
    // No attempt after giving up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(taken(&got).len() == 3);
    Ok(())
}

async fn a_flaky_receiver_gets_the_delivery_on_a_retry(app: TestApp) -> Result<()> {
    let (url, got) = receiver(vec![503, 500, 204]).await?;
    let (owner, acme, _) = hooked_tenant(&app, &url).await?;
    notify_tenant(&app, &acme, 1).await?;
    let shown = wait_for(&app, &owner, |w| w["delivered"] == 1).await?;
    ensure!(
        shown["failed"] == 0 && shown["last_failure"].is_null(),
        "{shown}"
    );
    ensure!(shown["recent"][0]["attempts"] == 3, "{shown}");
    ensure!(taken(&got).len() == 3);
    Ok(())
}

/// A public address (the retired 6to4 relay anycast): "somewhere on the internet".
const PUBLIC: &str = "192.88.99.1";

/// A resolver stand-in for webhook hosts: its first lookup answers `first`, every later one
/// `then`, whatever the name; it counts the lookups.
#[derive(Debug)]
struct Rebinding {
    first: Vec<IpAddr>,
    then: Vec<IpAddr>,
    lookups: AtomicUsize,
}

impl Rebinding {
    fn new(first: &[&str], then: &[&str]) -> Result<Arc<Rebinding>> {
        let parse = |ips: &[&str]| {
            ips.iter()
                .map(|ip| ip.parse())
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Arc::new(Rebinding {
            first: parse(first)?,
            then: parse(then)?,
            lookups: AtomicUsize::new(0),
        }))
    }

    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

impl Lookup for Rebinding {
    fn lookup(&self, _host: &str) -> LookupFuture {
        let answer = if self.lookups.fetch_add(1, Ordering::SeqCst) == 0 {
            self.first.clone()
        } else {
            self.then.clone()
        };
        Box::pin(std::future::ready(Ok(answer)))
    }
}

/// [`delivery_settings`] with private destinations refused and names looked up by `lookup`;
/// attempts give up after a second wherever they lead.
fn checked_delivery_settings(lookup: Arc<Rebinding>) -> Settings {
    let mut settings = delivery_settings();
    settings.webhooks.egress = CheckedResolver::with_lookup(lookup, false);
    settings.webhooks.timeout = Duration::from_secs(1);
    settings
}

/// The port of a receiver's URL.
fn port_of(url: &str) -> Result<u16> {
    reqwest::Url::parse(url)?.port().context("port")
}

/// A webhook host answering a public address first and loopback from then on never gets a
/// delivery to the loopback receiver; one answering loopback among public addresses is refused
/// at every attempt, each looked up afresh.
async fn webhook_rebinding_never_reaches_loopback(database: TestDatabase) -> Result<()> {
    let (url, got) = receiver(vec![200]).await?;
    let port = port_of(&url)?;
    let rebinding = Rebinding::new(&[PUBLIC], &["127.0.0.1"])?;
    let app = TestApp::start(database, checked_delivery_settings(rebinding.clone())).await?;
    let (owner, acme, _) =
        hooked_tenant(&app, &format!("http://hooks.rebind.test:{port}/hook")).await?;
    notify_tenant(&app, &acme, 1).await?;
    let shown = wait_for(&app, &owner, |w| w["failed"] == 1).await?;
    ensure!(shown["last_failure"]["attempts"] == 3, "{shown}");
    ensure!(rebinding.lookups() >= 1, "{shown}");
    ensure!(taken(&got).is_empty(), "the loopback receiver was reached");
    Ok(())
}

async fn webhook_private_addresses_are_refused(database: TestDatabase) -> Result<()> {
    let (url, got) = receiver(vec![200]).await?;
    let port = port_of(&url)?;
    let mixed = Rebinding::new(&[PUBLIC, "127.0.0.1"], &[PUBLIC, "127.0.0.1"])?;
    let app = TestApp::start(database, checked_delivery_settings(mixed.clone())).await?;
    let (owner, acme, _) =
        hooked_tenant(&app, &format!("http://hooks.mixed.test:{port}/hook")).await?;
    notify_tenant(&app, &acme, 1).await?;
    let shown = wait_for(&app, &owner, |w| w["failed"] == 1).await?;
    let failure = &shown["last_failure"];
    ensure!(failure["attempts"] == 3, "{shown}");
    ensure!(
        failure["last_error"].as_str().is_some_and(|e| e.contains(
            "hooks.mixed.test resolves to 127.0.0.1, a private, loopback or link-local address"
        )),
        "{failure}"
    );
    // Nothing was ever connected, so every attempt looked the name up again.
    ensure!(mixed.lookups() == 3, "{} lookups", mixed.lookups());
    ensure!(taken(&got).is_empty(), "the loopback receiver was reached");
    Ok(())
}

/// A receiver that answers every delivery with a redirect to `location`.
async fn redirecting_receiver(location: String) -> Result<String> {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let location = location.clone();
            async move { (StatusCode::FOUND, [(reqwest::header::LOCATION, location)]) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

async fn a_webhook_redirect_is_never_followed(app: TestApp) -> Result<()> {
    let (elsewhere, got) = receiver(vec![200]).await?;
    let url = redirecting_receiver(elsewhere).await?;
    let (owner, acme, _) = hooked_tenant(&app, &url).await?;
    notify_tenant(&app, &acme, 1).await?;
    let shown = wait_for(&app, &owner, |w| w["failed"] == 1).await?;
    let failure = &shown["last_failure"];
    ensure!(
        failure["attempts"] == 3
            && failure["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("answered HTTP 302")),
        "{shown}"
    );
    ensure!(taken(&got).is_empty(), "the redirect was followed");
    Ok(())
}
