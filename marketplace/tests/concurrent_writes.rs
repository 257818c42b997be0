//! Concurrent writes never answer 5xx, on both backends.
//!
//! On SQLite a transaction that reads first and writes later fails at once (`database is
//! locked`, whatever the busy timeout) when another writer committed in between, so every
//! transaction that may write takes the write lock at its start (`Db::begin`). These tests
//! drive the API with eight clients at once:
//!
//! - [`eight_clients_create_40_tenants_at_once`]: the case that failed (27 of 40 answered 500
//!   on SQLite), right after the server started and its housekeeping wrote.
//! - [`every_write_route_answers_without_5xx`]: every POST, PUT, PATCH and DELETE route of
//!   the OpenAPI document (`plinth_marketplace::server::openapi()`), eight requests at once per
//!   route, over a marketplace with enough in it that almost every route really writes. A
//!   route added later is driven too, with its parameters filled in generically, until
//!   [`PLAN`] says how to drive it for real.
//! - [`transactions_open_only_through_db`]: no code opens a transaction around `Db::begin`
//!   (may write) and `Db::begin_read` (only reads).

mod common;
mod ledger_support;
mod publishing;

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::{HELLO, HTTP_ECHO};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

use common::{Reply, TestApp};
use ledger_support::{Ledger, SECRET, end_holds, invoice_paid, now_secs, pro_tenant, this_month};
use publishing::{Dev, package_with, permissions_digest, publish};

on_both_backends!(eight_clients_create_40_tenants_at_once);
on_both_backends_ledger!(with_host: every_write_route_answers_without_5xx);

/// How many clients send at once.
const CLIENTS: usize = 8;

/// A request as a client sends it.
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    token: Option<String>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Value),
    /// A package, as `application/octet-stream`.
    Package(Vec<u8>),
    /// A processor event with its `Stripe-Signature` header.
    Signed(Vec<u8>, String),
}

impl Call {
    fn new(method: Method, path: impl Into<String>, token: Option<&str>, body: Body) -> Call {
        Call {
            method,
            path: path.into(),
            token: token.map(str::to_owned),
            body,
        }
    }
}

/// Sends `call` with `client` to the server at `base`.
async fn send(client: reqwest::Client, base: String, call: Call) -> Result<Reply> {
    let mut request = client.request(call.method, format!("{base}{}", call.path));
    if let Some(token) = &call.token {
        request = request.bearer_auth(token);
    }
    request = match call.body {
        Body::None => request,
        Body::Json(body) => request.json(&body),
        Body::Package(bytes) => request
            .header("content-type", "application/octet-stream")
            .body(bytes),
        Body::Signed(payload, signature) => request
            .header("content-type", "application/json")
            .header("Stripe-Signature", signature)
            .body(payload),
    };
    common::reply(request.send().await?).await
}

/// Sends every call at once, each from its own client and task; the replies in order.
async fn all_at_once(
    app: &TestApp,
    clients: &[reqwest::Client],
    calls: Vec<Call>,
) -> Result<Vec<Reply>> {
    let tasks: Vec<_> = clients
        .iter()
        .zip(calls)
        .map(|(client, call)| tokio::spawn(send(client.clone(), app.base.clone(), call)))
        .collect();
    let mut replies = Vec::with_capacity(tasks.len());
    for task in tasks {
        replies.push(task.await??);
    }
    Ok(replies)
}

fn clients() -> Vec<reqwest::Client> {
    (0..CLIENTS).map(|_| reqwest::Client::new()).collect()
}

async fn eight_clients_create_40_tenants_at_once(app: TestApp) -> Result<()> {
    // No waiting after the start: the server's housekeeping writes at the same moment.
    let operator = app.operator().await?;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (http, base, operator) =
                (reqwest::Client::new(), app.base.clone(), operator.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for n in 0..5 {
                    let slug = format!("c{client}-{n}");
                    let call = Call::new(
                        Method::POST,
                        "/v1/tenants",
                        Some(&operator),
                        Body::Json(json!({"slug": slug, "name": format!("Tenant {slug}")})),
                    );
                    let reply = send(http.clone(), base.clone(), call).await?;
                    statuses.push((slug, reply.status, reply.body));
                }
                Ok::<_, anyhow::Error>(statuses)
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        for (slug, status, body) in task.await?? {
            ensure!(status == StatusCode::CREATED, "{slug}: {status} {body}");
            created += 1;
        }
    }
    ensure!(created == 40, "{created} tenants created");
    let stored: i64 = sqlx::query("SELECT COUNT(*) AS n FROM tenants")
        .fetch_one(app.db().pool())
        .await?
        .try_get("n")?;
    ensure!(stored == 40, "{stored} tenants stored");
    Ok(())
}

/// Every `.rs` file under `dir`.
fn sources(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sources(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// Transactions on the marketplace's database open only through `Db::begin` (may write:
/// SQLite's write lock at once) and `Db::begin_read` (only reads), never on the pool itself,
/// where a deferred transaction that writes would fail again under concurrent writers.
#[test]
fn transactions_open_only_through_db() -> Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "../console/src", "../src"] {
        sources(&root.join(dir), &mut files)?;
    }
    ensure!(files.len() > 50, "found only {} source files", files.len());
    let own = root.join("src/db/mod.rs");
    let mut found = Vec::new();
    for file in files.iter().filter(|file| **file != own) {
        let text = std::fs::read_to_string(file)?;
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let opens = [".begin_with(", "pool().begin(", "pool.begin(", "\"BEGIN"]
                .iter()
                .any(|needle| code.contains(needle));
            if opens {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    ensure!(
        found.is_empty(),
        "transactions opened around Db::begin / Db::begin_read:\n{}",
        found.join("\n")
    );
    Ok(())
}

/// How many of a route's eight requests must succeed (2xx).
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Every one: each client acts on its own things.
    All,
    /// At least one: the clients act on one shared thing, which changes once; the others are
    /// refused with a 4xx (e.g. 409 `already_yanked`).
    Some,
    /// None: every one is refused with this 4xx status, for the reason given (the route is
    /// driven only that far).
    Refused(u16, &'static str),
    /// Anything but a 5xx: a route [`PLAN`] does not name yet, driven generically.
    Unplanned,
}

/// The write routes in the order they are driven (each needs what the ones before made), and
/// what they must answer. Client `i` acts on its own tenant `t{i}`, publisher `pub{i}`, user
/// `m{i}` and so on (see [`request`]), so most routes write eight times.
///
/// - Only a 4xx: `POST /v1/payouts/{id}/failed` (409 `payout_settled`: the one payout was
///   marked paid just before; failing it would need a second payout run's worth of charges).
/// - One write, seven 4xx (one shared thing changes once): the yank, the appeal of it and its
///   decision, the block and the unblock of `labs.echo` (409 `already_yanked`,
///   `already_appealed`, `already_decided`, `already_blocked`, `not_blocked`).
/// - One write, seven answers without one: `POST /v1/payouts/{id}/paid` (the same payout, paid
///   already: the same 200). The eight payout runs each record their run; the first pays.
/// - Succeed without writing to the marketplace's database: the circuit breaker's reset (host
///   state) and the plugin HTTP routes `/p/…` (usage is flushed later, in batches).
const PLAN: &[(&str, Expect)] = &[
    ("POST /v1/accounts", Expect::All),
    ("POST /v1/tokens", Expect::All),
    ("PUT /v1/accounts/{id}/roles", Expect::All),
    ("DELETE /v1/tokens/current", Expect::All),
    ("POST /v1/tenants", Expect::All),
    ("PATCH /v1/tenants/{tenant}", Expect::All),
    ("PUT /v1/plans/{name}", Expect::All),
    ("POST /v1/tenants/{tenant}/members", Expect::All),
    ("PATCH /v1/tenants/{tenant}/members/{user_id}", Expect::All),
    ("DELETE /v1/tenants/{tenant}/members/{user_id}", Expect::All),
    ("POST /v1/tenants/{tenant}/api-keys", Expect::All),
    ("DELETE /v1/tenants/{tenant}/api-keys/{id}", Expect::All),
    ("PUT /v1/tenants/{tenant}/webhook", Expect::All),
    ("DELETE /v1/tenants/{tenant}/webhook", Expect::All),
    ("POST /v1/publishers", Expect::All),
    ("POST /v1/publishers/{ns}/members", Expect::All),
    ("POST /v1/publishers/{ns}/keys/challenges", Expect::All),
    ("POST /v1/publishers/{ns}/keys", Expect::All),
    ("DELETE /v1/publishers/{ns}/keys/{key}", Expect::All),
    ("POST /v1/publishers/{ns}/api-keys", Expect::All),
    ("PUT /v1/publishers/{ns}/webhook", Expect::All),
    ("DELETE /v1/publishers/{ns}/webhook", Expect::All),
    ("POST /v1/submissions", Expect::All),
    ("POST /v1/submissions/{id}/decision", Expect::All),
    ("POST /v1/tenants/{tenant}/installs", Expect::All),
    ("PATCH /v1/tenants/{tenant}/installs/{plugin}", Expect::All),
    (
        "POST /v1/tenants/{tenant}/installs/{plugin}/breaker/reset",
        Expect::All,
    ),
    (
        "POST /v1/tenants/{tenant}/installs/{plugin}/update",
        Expect::All,
    ),
    (
        "POST /v1/tenants/{tenant}/installs/{plugin}/rollback",
        Expect::All,
    ),
    ("POST /v1/tenants/{tenant}/events", Expect::All),
    ("POST /p/{tenant}/{plugin}", Expect::All),
    ("PUT /p/{tenant}/{plugin}", Expect::All),
    ("PATCH /p/{tenant}/{plugin}", Expect::All),
    ("DELETE /p/{tenant}/{plugin}", Expect::All),
    ("POST /p/{tenant}/{plugin}/{path}", Expect::All),
    ("PUT /p/{tenant}/{plugin}/{path}", Expect::All),
    ("PATCH /p/{tenant}/{plugin}/{path}", Expect::All),
    ("DELETE /p/{tenant}/{plugin}/{path}", Expect::All),
    ("PUT /v1/plugins/{id}/ratings/{tenant}", Expect::All),
    ("POST /v1/plugins/{id}/ratings/{rating}/reply", Expect::All),
    ("POST /v1/plugins/{id}/ratings/{rating}/hide", Expect::All),
    ("POST /v1/plugins/{id}/ratings/{rating}/unhide", Expect::All),
    ("POST /v1/billing/webhook", Expect::All),
    ("POST /v1/billing/usage-statements", Expect::All),
    ("POST /v1/billing/reconcile", Expect::All),
    ("POST /v1/payouts/runs", Expect::All),
    ("POST /v1/payouts/{id}/paid", Expect::All),
    (
        "POST /v1/payouts/{id}/failed",
        Expect::Refused(
            409,
            "the only payout was marked paid just before: payout_settled",
        ),
    ),
    (
        "POST /v1/tenants/{tenant}/notifications/{id}/read",
        Expect::All,
    ),
    (
        "POST /v1/tenants/{tenant}/notifications/{id}/unread",
        Expect::All,
    ),
    (
        "POST /v1/tenants/{tenant}/notifications/read-all",
        Expect::All,
    ),
    (
        "POST /v1/publishers/{ns}/notifications/{id}/read",
        Expect::All,
    ),
    (
        "POST /v1/publishers/{ns}/notifications/{id}/unread",
        Expect::All,
    ),
    (
        "POST /v1/publishers/{ns}/notifications/read-all",
        Expect::All,
    ),
    ("POST /v1/plugins/{id}/versions/{v}/yank", Expect::Some),
    ("POST /v1/plugins/{id}/appeals", Expect::Some),
    ("POST /v1/appeals/{id}/decision", Expect::Some),
    ("POST /v1/plugins/{id}/rollback", Expect::All),
    ("POST /v1/plugins/{id}/block", Expect::Some),
    ("POST /v1/plugins/{id}/unblock", Expect::Some),
    ("DELETE /v1/tenants/{tenant}/installs/{plugin}", Expect::All),
    ("DELETE /v1/tenants/{tenant}", Expect::All),
    ("POST /v1/tenants/{tenant}/restore", Expect::All),
];

/// Every write operation of the OpenAPI document, as `METHOD /path`.
fn write_routes() -> Result<BTreeSet<String>> {
    let document = serde_json::to_value(plinth_marketplace::server::openapi())?;
    let paths = document["paths"].as_object().context("paths")?;
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        for method in ["post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                routes.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    Ok(routes)
}

/// What the routes act on: the ledger tests' world (the operator, developer `labs` with the
/// paid plugin `labs.paid`, tenant owner `admin`), a reviewer, `labs.echo` 0.1.0 and 0.2.0 and
/// `labs.hello` 0.1.0 approved, and per client `i`: tenant `t{i}` on the pro plan with
/// `labs.paid` (a subscription) and `labs.echo` 0.1.0 installed, two API keys (one to use,
/// one to revoke) and a signed-up user `m{i}`.
struct World {
    operator: String,
    dev: Dev,
    admin: String,
    reviewer: String,
    echo_digest: String,
    hello_digest: String,
    clients: Vec<Client>,
}

struct Client {
    slug: String,
    tenant_id: String,
    key: String,
    spare_key_id: String,
    member_id: String,
    member_email: String,
    /// An admin of the tenant who rates `labs.echo` through it (one rating per person).
    rater: String,
    rater_email: String,
    subscription: String,
}

const ECHO: &str = "labs.echo";
const HELLO_ID: &str = "labs.hello";

async fn world(app: &TestApp) -> Result<World> {
    let base = ledger_support::world(app).await?;
    let (_, reviewer) = app
        .reviewer(&base.operator, "reviewer@writes.example")
        .await?;
    for (plugin, id, version) in [
        (&HTTP_ECHO, ECHO, "0.1.0"),
        (&HTTP_ECHO, ECHO, "0.2.0"),
        (&HELLO, HELLO_ID, "0.1.0"),
    ] {
        publish(app, &base.dev, &base.operator, plugin, id, version).await?;
    }
    let echo_digest = permissions_digest(app, ECHO, "0.2.0").await?;
    let paid_digest = permissions_digest(app, &base.plugin, "0.1.0").await?;
    let hello_digest = permissions_digest(app, HELLO_ID, "0.1.0").await?;
    let mut clients = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let slug = format!("t{i}");
        let tenant_id = pro_tenant(app, &base.operator, &base.admin, &slug).await?;
        for (plugin, digest) in [(base.plugin.as_str(), &paid_digest), (ECHO, &echo_digest)] {
            app.post(
                &format!("/v1/tenants/{slug}/installs"),
                Some(&base.admin),
                json!({"plugin": plugin, "version": "0.1.0", "permissions_digest": digest,
                       "config": {}}),
            )
            .await?
            .expect(StatusCode::CREATED)?;
        }
        let mut keys = Vec::new();
        for name in ["backend", "spare"] {
            let made = app
                .post(
                    &format!("/v1/tenants/{slug}/api-keys"),
                    Some(&base.admin),
                    json!({"name": name}),
                )
                .await?
                .expect(StatusCode::CREATED)?;
            keys.push(made.body);
        }
        let member_email = format!("m{i}@writes.example");
        let (member_id, _) = app.user(&member_email).await?;
        let rater_email = format!("r{i}@writes.example");
        let (_, rater) = app.user(&rater_email).await?;
        app.post(
            &format!("/v1/tenants/{slug}/members"),
            Some(&base.admin),
            json!({"email": rater_email, "role": "admin"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
        let subscriptions = app
            .get(
                &format!("/v1/tenants/{slug}/subscriptions"),
                Some(&base.admin),
            )
            .await?
            .expect(StatusCode::OK)?;
        clients.push(Client {
            slug,
            tenant_id,
            key: keys[0]["key"].as_str().context("key")?.to_owned(),
            spare_key_id: keys[1]["id"].as_str().context("key id")?.to_owned(),
            member_id,
            member_email,
            rater,
            rater_email,
            subscription: subscriptions.body["items"][0]["id"]
                .as_str()
                .context("subscription")?
                .to_owned(),
        });
    }
    Ok(World {
        operator: base.operator,
        dev: base.dev,
        admin: base.admin,
        reviewer,
        echo_digest,
        hello_digest,
        clients,
    })
}

/// One text from the database (`sql` selects one column of text), or `missing` when there
/// is none: a request naming it then answers 404, which the test reports.
async fn lookup(app: &TestApp, sql: &'static str, binds: &[&str]) -> Result<String> {
    let mut query = sqlx::query_scalar::<_, String>(sql);
    for bind in binds {
        query = query.bind(*bind);
    }
    Ok(query
        .fetch_optional(app.db().pool())
        .await?
        .unwrap_or_else(|| "missing".to_owned()))
}

/// Notification `i` (wrapping around) of `recipient_kind` `recipient_id`, oldest first.
async fn notification(
    app: &TestApp,
    recipient_kind: &str,
    recipient_id: &str,
    i: usize,
) -> Result<String> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM notifications WHERE recipient_kind = $1 AND recipient_id = $2 \
         ORDER BY created_at, id",
    )
    .bind(recipient_kind)
    .bind(recipient_id)
    .fetch_all(app.db().pool())
    .await?;
    Ok(if ids.is_empty() {
        "missing".to_owned()
    } else {
        ids[i % ids.len()].clone()
    })
}

/// What must be true before `route`'s requests are sent.
async fn prepare(app: &TestApp, route: &str) -> Result<()> {
    if route == "POST /v1/payouts/runs" {
        // The webhook's charges are available for payout as if their hold had passed.
        end_holds(app).await?;
    }
    Ok(())
}

/// Client `i`'s request of `route`.
#[allow(
    clippy::too_many_lines,
    reason = "one arm per route of the API, each a few lines; split, it would only be harder to check against the plan"
)]
async fn request(app: &TestApp, w: &World, route: &str, i: usize) -> Result<Call> {
    let c = &w.clients[i];
    let (operator, admin, dev, reviewer) = (
        Some(w.operator.as_str()),
        Some(w.admin.as_str()),
        Some(w.dev.token.as_str()),
        Some(w.reviewer.as_str()),
    );
    let t = &c.slug;
    let new_email = format!("new{i}@writes.example");
    let new_password = format!("password-of-{new_email}");
    let publisher = format!("pub{i}");
    let (method, path, token, body) = match route {
        "POST /v1/accounts" => (
            Method::POST,
            "/v1/accounts".to_owned(),
            None,
            Body::Json(json!({"email": new_email, "password": new_password, "name": "New"})),
        ),
        "POST /v1/tokens" => (
            Method::POST,
            "/v1/tokens".to_owned(),
            None,
            Body::Json(json!({"email": new_email, "password": new_password})),
        ),
        "PUT /v1/accounts/{id}/roles" => {
            let id = lookup(app, "SELECT id FROM users WHERE email = $1", &[&new_email]).await?;
            (
                Method::PUT,
                format!("/v1/accounts/{id}/roles"),
                operator,
                Body::Json(json!({"roles": ["reviewer"]})),
            )
        }
        "DELETE /v1/tokens/current" => {
            let session = app
                .post(
                    "/v1/tokens",
                    None,
                    json!({"email": new_email, "password": new_password}),
                )
                .await?
                .expect(StatusCode::CREATED)?;
            let token = session.body["token"].as_str().context("token")?.to_owned();
            return Ok(Call::new(
                Method::DELETE,
                "/v1/tokens/current",
                Some(&token),
                Body::None,
            ));
        }
        "POST /v1/tenants" => (
            Method::POST,
            "/v1/tenants".to_owned(),
            admin,
            Body::Json(json!({"slug": format!("n{i}"), "name": format!("New {i}")})),
        ),
        "PATCH /v1/tenants/{tenant}" => (
            Method::PATCH,
            format!("/v1/tenants/{t}"),
            admin,
            Body::Json(json!({"name": format!("Tenant {t}, renamed")})),
        ),
        "PUT /v1/plans/{name}" => (
            Method::PUT,
            "/v1/plans/pro".to_owned(),
            operator,
            Body::Json(json!({"max_installs": 50})),
        ),
        "POST /v1/tenants/{tenant}/members" => (
            Method::POST,
            format!("/v1/tenants/{t}/members"),
            admin,
            Body::Json(json!({"email": c.member_email, "role": "member"})),
        ),
        "PATCH /v1/tenants/{tenant}/members/{user_id}" => (
            Method::PATCH,
            format!("/v1/tenants/{t}/members/{}", c.member_id),
            admin,
            Body::Json(json!({"role": "admin"})),
        ),
        "DELETE /v1/tenants/{tenant}/members/{user_id}" => (
            Method::DELETE,
            format!("/v1/tenants/{t}/members/{}", c.member_id),
            admin,
            Body::None,
        ),
        "POST /v1/tenants/{tenant}/api-keys" => (
            Method::POST,
            format!("/v1/tenants/{t}/api-keys"),
            admin,
            Body::Json(json!({"name": "another"})),
        ),
        "DELETE /v1/tenants/{tenant}/api-keys/{id}" => (
            Method::DELETE,
            format!("/v1/tenants/{t}/api-keys/{}", c.spare_key_id),
            admin,
            Body::None,
        ),
        "PUT /v1/tenants/{tenant}/webhook" => (
            Method::PUT,
            format!("/v1/tenants/{t}/webhook"),
            admin,
            Body::Json(json!({"url": format!("https://hooks.example.com/{t}")})),
        ),
        "DELETE /v1/tenants/{tenant}/webhook" => (
            Method::DELETE,
            format!("/v1/tenants/{t}/webhook"),
            admin,
            Body::None,
        ),
        "POST /v1/publishers" => (
            Method::POST,
            "/v1/publishers".to_owned(),
            dev,
            Body::Json(json!({"namespace": publisher, "name": format!("Publisher {i}")})),
        ),
        "POST /v1/publishers/{ns}/members" => (
            Method::POST,
            format!("/v1/publishers/{publisher}/members"),
            dev,
            Body::Json(json!({"email": c.member_email, "role": "member"})),
        ),
        "POST /v1/publishers/{ns}/keys/challenges" => {
            let key = plinth_package::SecretKey::generate()?;
            (
                Method::POST,
                format!("/v1/publishers/{publisher}/keys/challenges"),
                dev,
                Body::Json(json!({"public_key": key.public_key().to_string()})),
            )
        }
        "POST /v1/publishers/{ns}/keys" => {
            let key = plinth_package::SecretKey::generate()?;
            let issued = app
                .post(
                    &format!("/v1/publishers/{publisher}/keys/challenges"),
                    dev,
                    json!({"public_key": key.public_key().to_string()}),
                )
                .await?
                .expect(StatusCode::CREATED)?;
            let challenge = issued.body["challenge"].as_str().context("challenge")?;
            (
                Method::POST,
                format!("/v1/publishers/{publisher}/keys"),
                dev,
                Body::Json(json!({
                    "public_key": key.public_key().to_string(),
                    "challenge": challenge,
                    "signature": key.prove_possession(&publisher, challenge).to_string(),
                })),
            )
        }
        "DELETE /v1/publishers/{ns}/keys/{key}" => {
            let key = lookup(
                app,
                "SELECT k.id FROM publisher_keys k JOIN publishers p ON p.id = k.publisher_id \
                 WHERE p.namespace = $1",
                &[&publisher],
            )
            .await?;
            (
                Method::DELETE,
                format!("/v1/publishers/{publisher}/keys/{key}"),
                dev,
                Body::None,
            )
        }
        "POST /v1/publishers/{ns}/api-keys" => (
            Method::POST,
            format!("/v1/publishers/{publisher}/api-keys"),
            dev,
            Body::Json(json!({"name": "ci"})),
        ),
        "PUT /v1/publishers/{ns}/webhook" => (
            Method::PUT,
            format!("/v1/publishers/{publisher}/webhook"),
            dev,
            Body::Json(json!({"url": format!("https://hooks.example.com/{publisher}")})),
        ),
        "DELETE /v1/publishers/{ns}/webhook" => (
            Method::DELETE,
            format!("/v1/publishers/{publisher}/webhook"),
            dev,
            Body::None,
        ),
        "POST /v1/submissions" => {
            let package = package_with(
                &HELLO,
                &format!("labs.s{i}"),
                "0.1.0",
                "",
                None,
                Some(&w.dev.key),
            )?;
            (
                Method::POST,
                "/v1/submissions".to_owned(),
                dev,
                Body::Package(package),
            )
        }
        "POST /v1/submissions/{id}/decision" => {
            let plugin = format!("labs.s{i}");
            let id = lookup(
                app,
                "SELECT id FROM submissions WHERE plugin_id = $1",
                &[&plugin],
            )
            .await?;
            (
                Method::POST,
                format!("/v1/submissions/{id}/decision"),
                operator,
                Body::Json(json!({"decision": "approve", "reason": "Reviewed at once."})),
            )
        }
        "POST /v1/tenants/{tenant}/installs" => (
            Method::POST,
            format!("/v1/tenants/{t}/installs"),
            admin,
            Body::Json(
                json!({"plugin": HELLO_ID, "permissions_digest": w.hello_digest,
                        "config": {}}),
            ),
        ),
        "PATCH /v1/tenants/{tenant}/installs/{plugin}" => (
            Method::PATCH,
            format!("/v1/tenants/{t}/installs/{ECHO}"),
            admin,
            Body::Json(json!({"config": {}, "enabled": true, "update_policy": "manual"})),
        ),
        "POST /v1/tenants/{tenant}/installs/{plugin}/breaker/reset" => (
            Method::POST,
            format!("/v1/tenants/{t}/installs/{ECHO}/breaker/reset"),
            admin,
            Body::None,
        ),
        "POST /v1/tenants/{tenant}/installs/{plugin}/update" => (
            Method::POST,
            format!("/v1/tenants/{t}/installs/{ECHO}/update"),
            admin,
            Body::Json(
                json!({"version": "0.2.0", "permissions_digest": w.echo_digest,
                        "config": {}}),
            ),
        ),
        "POST /v1/tenants/{tenant}/installs/{plugin}/rollback" => (
            Method::POST,
            format!("/v1/tenants/{t}/installs/{ECHO}/rollback"),
            admin,
            Body::None,
        ),
        "POST /v1/tenants/{tenant}/events" => {
            return Ok(Call::new(
                Method::POST,
                format!("/v1/tenants/{t}/events"),
                Some(&c.key),
                Body::Json(json!({"topic": "greet", "payload": {"name": t}})),
            ));
        }
        "POST /p/{tenant}/{plugin}"
        | "PUT /p/{tenant}/{plugin}"
        | "PATCH /p/{tenant}/{plugin}"
        | "DELETE /p/{tenant}/{plugin}"
        | "POST /p/{tenant}/{plugin}/{path}"
        | "PUT /p/{tenant}/{plugin}/{path}"
        | "PATCH /p/{tenant}/{plugin}/{path}"
        | "DELETE /p/{tenant}/{plugin}/{path}" => {
            let (method, template) = route.split_once(' ').context("route")?;
            let path = template
                .replace("{tenant}", t)
                .replace("{plugin}", ECHO)
                .replace("{path}", &format!("orders/{i}"));
            return Ok(Call::new(
                Method::from_bytes(method.as_bytes())?,
                path,
                Some(&c.key),
                Body::Json(json!({"client": i})),
            ));
        }
        "PUT /v1/plugins/{id}/ratings/{tenant}" => (
            Method::PUT,
            format!("/v1/plugins/{ECHO}/ratings/{t}"),
            Some(c.rater.as_str()),
            Body::Json(json!({"stars": 4, "text": format!("Works for {t}.")})),
        ),
        "POST /v1/plugins/{id}/ratings/{rating}/reply"
        | "POST /v1/plugins/{id}/ratings/{rating}/hide"
        | "POST /v1/plugins/{id}/ratings/{rating}/unhide" => {
            let rating = lookup(
                app,
                "SELECT r.id FROM ratings r JOIN users u ON u.id = r.rated_by WHERE u.email = $1",
                &[&c.rater_email],
            )
            .await?;
            let (action, token, body) = match route.rsplit('/').next() {
                Some("reply") => ("reply", dev, Body::Json(json!({"text": "Thank you."}))),
                Some("hide") => (
                    "hide",
                    reviewer,
                    Body::Json(json!({"reason": "Hidden while a test moderates."})),
                ),
                _ => ("unhide", reviewer, Body::None),
            };
            (
                Method::POST,
                format!("/v1/plugins/{ECHO}/ratings/{rating}/{action}"),
                token,
                body,
            )
        }
        "POST /v1/billing/webhook" => {
            let event = invoice_paid(
                &format!("evt_w{i}"),
                &format!("in_w{i}"),
                &c.subscription,
                10_000,
                &format!("ch_w{i}"),
            );
            let payload = serde_json::to_vec(&event)?;
            let signature = plinth_marketplace::ledger::webhook::signature_header(
                SECRET,
                now_secs(),
                &payload,
            )?;
            return Ok(Call::new(
                Method::POST,
                "/v1/billing/webhook",
                None,
                Body::Signed(payload, signature),
            ));
        }
        "POST /v1/billing/usage-statements" => {
            // Last month: only an ended month is billed.
            let this = plinth_marketplace::month::parse("month", &this_month()?)?;
            let last = plinth_marketplace::month::of(this.start_ms - 1)?;
            (
                Method::POST,
                "/v1/billing/usage-statements".to_owned(),
                operator,
                Body::Json(json!({"month": last.key})),
            )
        }
        "POST /v1/billing/reconcile" => (
            Method::POST,
            "/v1/billing/reconcile".to_owned(),
            operator,
            Body::None,
        ),
        "POST /v1/payouts/runs" => (
            Method::POST,
            "/v1/payouts/runs".to_owned(),
            operator,
            Body::Json(json!({"run_id": format!("run-{i}")})),
        ),
        "POST /v1/payouts/{id}/paid" | "POST /v1/payouts/{id}/failed" => {
            let id = lookup(app, "SELECT id FROM payouts ORDER BY created_at, id", &[]).await?;
            let settled = if route.ends_with("/paid") {
                "paid"
            } else {
                "failed"
            };
            (
                Method::POST,
                format!("/v1/payouts/{id}/{settled}"),
                operator,
                Body::None,
            )
        }
        "POST /v1/tenants/{tenant}/notifications/{id}/read"
        | "POST /v1/tenants/{tenant}/notifications/{id}/unread" => {
            let id = notification(app, "tenant", &c.tenant_id, 0).await?;
            let mark = route.rsplit('/').next().context("route")?;
            (
                Method::POST,
                format!("/v1/tenants/{t}/notifications/{id}/{mark}"),
                admin,
                Body::None,
            )
        }
        "POST /v1/tenants/{tenant}/notifications/read-all" => (
            Method::POST,
            format!("/v1/tenants/{t}/notifications/read-all"),
            admin,
            Body::None,
        ),
        "POST /v1/publishers/{ns}/notifications/{id}/read"
        | "POST /v1/publishers/{ns}/notifications/{id}/unread" => {
            let labs = lookup(
                app,
                "SELECT id FROM publishers WHERE namespace = 'labs'",
                &[],
            )
            .await?;
            let id = notification(app, "publisher", &labs, i).await?;
            let mark = route.rsplit('/').next().context("route")?;
            (
                Method::POST,
                format!("/v1/publishers/labs/notifications/{id}/{mark}"),
                dev,
                Body::None,
            )
        }
        "POST /v1/publishers/{ns}/notifications/read-all" => (
            Method::POST,
            "/v1/publishers/labs/notifications/read-all".to_owned(),
            dev,
            Body::None,
        ),
        "POST /v1/plugins/{id}/versions/{v}/yank" => (
            Method::POST,
            format!("/v1/plugins/{ECHO}/versions/0.2.0/yank"),
            operator,
            Body::Json(
                json!({"reason_code": "security", "reason": "A test yanks it.",
                        "security": true}),
            ),
        ),
        "POST /v1/plugins/{id}/appeals" => (
            Method::POST,
            format!("/v1/plugins/{ECHO}/appeals"),
            dev,
            Body::Json(json!({"target": "yank", "version": "0.2.0", "text": "It was fine."})),
        ),
        "POST /v1/appeals/{id}/decision" => {
            let id = lookup(app, "SELECT id FROM appeals WHERE plugin_id = $1", &[ECHO]).await?;
            (
                Method::POST,
                format!("/v1/appeals/{id}/decision"),
                reviewer,
                Body::Json(json!({"decision": "reverse", "reason": "It was fine."})),
            )
        }
        "POST /v1/plugins/{id}/rollback" => (
            Method::POST,
            format!("/v1/plugins/{ECHO}/rollback"),
            operator,
            Body::Json(json!({"to_version": "0.1.0", "reason": "A test rolls back."})),
        ),
        "POST /v1/plugins/{id}/block" => (
            Method::POST,
            format!("/v1/plugins/{ECHO}/block"),
            operator,
            Body::Json(json!({"reason_code": "policy", "reason": "A test blocks it."})),
        ),
        "POST /v1/plugins/{id}/unblock" => (
            Method::POST,
            format!("/v1/plugins/{ECHO}/unblock"),
            operator,
            Body::Json(json!({"reason": "A test unblocks it."})),
        ),
        "DELETE /v1/tenants/{tenant}/installs/{plugin}" => (
            Method::DELETE,
            format!("/v1/tenants/{t}/installs/{HELLO_ID}"),
            admin,
            Body::None,
        ),
        "DELETE /v1/tenants/{tenant}" => (
            Method::DELETE,
            format!("/v1/tenants/n{i}"),
            operator,
            Body::None,
        ),
        "POST /v1/tenants/{tenant}/restore" => (
            Method::POST,
            format!("/v1/tenants/n{i}/restore"),
            operator,
            Body::None,
        ),
        // A route the plan does not know yet: its parameters filled in with client `i`'s
        // things, an empty body, as the operator.
        other => {
            let (method, template) = other.split_once(' ').context("route")?;
            let path = template
                .split('/')
                .map(|segment| match segment {
                    "{tenant}" => t.clone(),
                    "{plugin}" | "{id}" => ECHO.to_owned(),
                    "{ns}" => "labs".to_owned(),
                    "{v}" | "{version}" => "0.1.0".to_owned(),
                    s if s.starts_with('{') => format!("x{i}"),
                    s => s.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("/");
            (
                Method::from_bytes(method.as_bytes())?,
                path,
                operator,
                Body::Json(json!({})),
            )
        }
    };
    Ok(Call::new(method, path, token, body))
}

/// Every write route of the API, eight requests at once per route (see [`PLAN`]): none
/// answers 5xx, and each answers as the plan says. Routes the plan does not name yet are
/// driven first, generically, and must not answer 5xx either. Afterwards the audit chain and
/// the ledger still verify.
async fn every_write_route_answers_without_5xx(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let routes = write_routes()?;
    ensure!(routes.len() >= 60, "only {} write routes", routes.len());
    for (route, _) in PLAN {
        ensure!(
            routes.contains(*route),
            "the plan names {route}, which the API does not have"
        );
    }
    let planned: BTreeSet<&str> = PLAN.iter().map(|(route, _)| *route).collect();
    ensure!(planned.len() == PLAN.len(), "the plan names a route twice");
    let unplanned: Vec<(&str, Expect)> = routes
        .iter()
        .filter(|route| !planned.contains(route.as_str()))
        .map(|route| (route.as_str(), Expect::Unplanned))
        .collect();
    for (route, _) in &unplanned {
        eprintln!("{route} is not in the plan: driven with generic parameters");
    }

    let w = world(app).await?;
    let clients = clients();
    let mut problems = Vec::new();
    for &(route, expect) in unplanned.iter().chain(PLAN) {
        prepare(app, route).await?;
        let mut calls = Vec::with_capacity(CLIENTS);
        for i in 0..CLIENTS {
            calls.push(request(app, &w, route, i).await?);
        }
        let replies = all_at_once(app, &clients, calls).await?;
        let succeeded = replies.iter().filter(|r| r.status.is_success()).count();
        for (i, reply) in replies.iter().enumerate() {
            if reply.status.is_server_error() {
                problems.push(format!(
                    "{route}: client {i} got {} {}",
                    reply.status, reply.body
                ));
            }
        }
        let (wanted, expected) = match expect {
            Expect::All => (succeeded == CLIENTS, "all to succeed".to_owned()),
            Expect::Some => (succeeded >= 1, "at least one to succeed".to_owned()),
            Expect::Refused(status, why) => (
                replies.iter().all(|r| r.status.as_u16() == status),
                format!("all to answer {status} ({why})"),
            ),
            Expect::Unplanned => (true, String::new()),
        };
        if !wanted {
            let answers: Vec<String> = replies
                .iter()
                .map(|r| format!("{} {}", r.status.as_u16(), r.body))
                .collect();
            problems.push(format!(
                "{route}: {succeeded} of {CLIENTS} succeeded, expected {expected}: {answers:?}"
            ));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));

    let audit = app
        .get("/v1/audit/verify", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(audit.body["sound"] == true, "{}", audit.body);
    ledger_support::assert_sound(app).await?;
    Ok(())
}
