//! Installs over HTTP with a host, on both backends: plugin HTTP routes, the visible circuit
//! breaker and its reset, and the security and bad-input cases of installs and events.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::{
    COUNTER, HELLO, HTTP_ECHO, SPIN_FOREVER, TRAP, TestPlugin, WEBHOOK_NOTIFY,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

use common::{Reply, TestApp};
use publishing::{Dev, developer, package_with, submit_ok};

on_both_backends_with_host!(
    plugin_http_reaches_the_install,
    breaker_is_visible_and_resets,
    plugin_http_is_refused_while_the_breaker_is_open,
    members_cannot_install_admins_can,
    other_tenants_installs_answer_404,
    events_input_is_checked,
    stale_consent_and_bad_config_are_refused,
    secrets_never_leave_the_server,
    yanked_versions_and_plan_limits_stop_installs,
    uninstall_deletes_kv_data,
    an_adversarial_plugin_never_blocks_another_tenant,
    a_full_sync_spares_what_this_process_just_changed,
);

/// The operator, a developer publishing as `labs`, and tenant `acme` owned by `admin`.
struct World {
    operator: String,
    dev: Dev,
    admin: String,
}

async fn world(app: &TestApp) -> Result<World> {
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    let (_, admin) = app.user("admin@acme.example").await?;
    app.tenant(&admin, "acme").await?;
    Ok(World {
        operator,
        dev,
        admin,
    })
}

/// Publishes `plugin` as `labs.<name>` 0.1.0 and has the operator approve it; returns the id.
async fn publish(app: &TestApp, w: &World, plugin: &TestPlugin, name: &str) -> Result<String> {
    let id = format!("labs.{name}");
    let bytes = package_with(
        plugin,
        &id,
        "0.1.0",
        "",
        Some("# A test plugin\nFor the install tests."),
        Some(&w.dev.key),
    )?;
    let submission = submit_ok(app, &w.dev.token, bytes).await?;
    app.post(
        &format!("/v1/submissions/{submission}/decision"),
        Some(&w.operator),
        json!({"decision": "approve", "reason": "Reviewed in a test."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    Ok(id)
}

/// The permissions digest shown for `plugin` 0.1.0.
async fn digest(app: &TestApp, plugin: &str) -> Result<String> {
    let shown = app
        .get(&format!("/v1/plugins/{plugin}/versions/0.1.0"), None)
        .await?
        .expect(StatusCode::OK)?;
    Ok(shown.body["permissions_digest"]
        .as_str()
        .context("permissions_digest")?
        .to_owned())
}

/// `POST /v1/tenants/{slug}/installs` consenting to the shown permissions.
async fn install(
    app: &TestApp,
    token: &str,
    slug: &str,
    plugin: &str,
    config: Value,
) -> Result<Reply> {
    let digest = digest(app, plugin).await?;
    app.post(
        &format!("/v1/tenants/{slug}/installs"),
        Some(token),
        json!({"plugin": plugin, "permissions_digest": digest, "config": config}),
    )
    .await
}

/// Sends an event to tenant `slug`; returns the results.
async fn event(
    app: &TestApp,
    key: &str,
    slug: &str,
    topic: &str,
    payload: Value,
) -> Result<Vec<Value>> {
    let reply = app
        .post(
            &format!("/v1/tenants/{slug}/events"),
            Some(key),
            json!({"topic": topic, "payload": payload}),
        )
        .await?
        .expect(StatusCode::OK)?;
    reply.body["results"].as_array().cloned().context("results")
}

/// Sends `POST path` declaring a body one byte over 1 MiB and sending none; returns the
/// response's status line.
async fn declared_too_large(app: &TestApp, path: &str, key: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        (1 << 20) + 1
    );
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::new();
    let mut buffer = [0_u8; 1024];
    while !received.windows(2).any(|w| w == b"\r\n") {
        let read = stream.read(&mut buffer).await?;
        ensure!(read > 0, "the server closed without answering");
        received.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&received);
    Ok(text.lines().next().unwrap_or("").to_owned())
}

/// The message of an error reply.
fn message(reply: &Reply) -> &str {
    reply.body["error"]["message"].as_str().unwrap_or("")
}

async fn plugin_http_reaches_the_install(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let echo = publish(&app, &w, &HTTP_ECHO, "echo").await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    for plugin in [&echo, &hello] {
        install(&app, &w.admin, "acme", plugin, json!({}))
            .await?
            .expect(StatusCode::CREATED)?;
    }
    let key = app.api_key(&w.admin, "acme").await?;

    let posted = app
        .send_bytes(
            Method::POST,
            &format!("/p/acme/{echo}/orders/42?x=1&y=two"),
            Some(&key),
            "text/plain",
            b"hi there".to_vec(),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        posted.body
            == json!({"method": "POST", "path": "/orders/42?x=1&y=two", "body": "hi there"}),
        "{}",
        posted.body
    );
    // A member's token works too, and the bare prefix is the root path.
    let root = app
        .get(&format!("/p/acme/{echo}"), Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        root.body == json!({"method": "GET", "path": "/", "body": ""}),
        "{}",
        root.body
    );
    let put = app
        .call(
            Method::PUT,
            &format!("/p/acme/{echo}/a/b"),
            Some(&key),
            Some(json!({"k": 1})),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        put.body["method"] == "PUT" && put.body["path"] == "/a/b",
        "{}",
        put.body
    );
    ensure!(put.body["body"] == r#"{"k":1}"#, "{}", put.body);

    // Without credentials: 401; a plugin not installed: 404; one without an HTTP handler: 501.
    app.get(&format!("/p/acme/{echo}/x"), None)
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    app.get("/p/acme/labs.nothing/x", Some(&key))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    let not_http = app
        .get(&format!("/p/acme/{hello}/x"), Some(&key))
        .await?
        .expect_error(StatusCode::NOT_IMPLEMENTED, "not_serving_http")?;
    ensure!(
        message(&not_http).contains("labs.hello"),
        "{}",
        not_http.body
    );

    // A body over 1 MiB is refused before the plugin runs, as soon as its length is declared
    // (raw HTTP: a client still sending would see the connection close instead).
    let status_line = declared_too_large(&app, &format!("/p/acme/{echo}/big"), &key).await?;
    ensure!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    // A body at the limit is accepted, but echoing it passes the plugin's output limit: the
    // failed call answers 502 with the call's error code.
    let at_limit = vec![b'a'; 1 << 20];
    let failed = app
        .send_bytes(
            Method::POST,
            &format!("/p/acme/{echo}/big"),
            Some(&key),
            "text/plain",
            at_limit,
        )
        .await?
        .expect_error(StatusCode::BAD_GATEWAY, "output_too_large")?;
    ensure!(message(&failed).contains("labs.echo"), "{}", failed.body);

    // A disabled install serves nothing.
    app.patch(
        &format!("/v1/tenants/acme/installs/{echo}"),
        Some(&w.admin),
        json!({"enabled": false}),
    )
    .await?
    .expect(StatusCode::OK)?;
    app.get(&format!("/p/acme/{echo}/x"), Some(&key))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

async fn breaker_is_visible_and_resets(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let trap = publish(&app, &w, &TRAP, "trap").await?;
    let installed = install(&app, &w.admin, "acme", &trap, json!({}))
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(
        installed.body["breaker"]["state"] == "closed",
        "{}",
        installed.body
    );
    let key = app.api_key(&w.admin, "acme").await?;

    // The default policy opens after 5 failures.
    for _ in 0..5 {
        let results = event(&app, &key, "acme", "run", json!(null)).await?;
        ensure!(
            results.len() == 1 && results[0]["error"]["code"] == "trap",
            "{results:?}"
        );
    }
    let refused = event(&app, &key, "acme", "run", json!(null)).await?;
    ensure!(refused[0]["error"]["code"] == "circuit_open", "{refused:?}");

    let listed = app
        .get("/v1/tenants/acme/installs", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    let breaker = &listed.body["items"][0]["breaker"];
    ensure!(breaker["state"] == "open", "{breaker}");
    ensure!(
        breaker["reason"]
            .as_str()
            .is_some_and(|r| r.contains("5 failures")),
        "{breaker}"
    );
    ensure!(
        breaker["opened_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{breaker}"
    );
    let errors = breaker["last_errors"].as_array().context("last_errors")?;
    ensure!(errors.len() == 5, "{breaker}");
    ensure!(
        errors.iter().all(|e| e["code"] == "trap"
            && e["message"].as_str().is_some_and(|m| m.contains("trap"))
            && e["at"].is_string()),
        "{breaker}"
    );

    // Only an admin of the tenant resets it.
    let (_, member) = app.user("member@acme.example").await?;
    app.post(
        "/v1/tenants/acme/members",
        Some(&w.admin),
        json!({"email": "member@acme.example", "role": "member"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let reset_path = format!("/v1/tenants/acme/installs/{trap}/breaker/reset");
    app.post(&reset_path, Some(&member), json!({}))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.post(&reset_path, Some(&key), json!({}))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.post(
        "/v1/tenants/acme/installs/labs.nothing/breaker/reset",
        Some(&w.admin),
        json!({}),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    let reset = app
        .post(&reset_path, Some(&w.admin), json!({}))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        reset.body["state"] == "closed"
            && reset.body["opened_at"].is_null()
            && reset.body["reason"].is_null(),
        "{}",
        reset.body
    );
    // Calls run again (and fail on their own).
    let ran = event(&app, &key, "acme", "run", json!(null)).await?;
    ensure!(ran[0]["error"]["code"] == "trap", "{ran:?}");
    let listed = app
        .get("/v1/tenants/acme/installs", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        listed.body["items"][0]["breaker"]["state"] == "closed",
        "{}",
        listed.body
    );
    Ok(())
}

async fn plugin_http_is_refused_while_the_breaker_is_open(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let echo = publish(&app, &w, &HTTP_ECHO, "echo").await?;
    install(&app, &w.admin, "acme", &echo, json!({}))
        .await?
        .expect(StatusCode::CREATED)?;
    let key = app.api_key(&w.admin, "acme").await?;
    let fail = format!("/p/acme/{echo}/fail");
    // The default policy opens after 5 failures; each is the plugin's own trap.
    for _ in 0..5 {
        app.get(&fail, Some(&key))
            .await?
            .expect_error(StatusCode::BAD_GATEWAY, "trap")?;
    }
    // Now nothing reaches the plugin, not even a request it would answer.
    let refused = app
        .client
        .get(format!("{}/p/acme/{echo}/x", app.base))
        .bearer_auth(&key)
        .send()
        .await?;
    ensure!(refused.status() == StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .context("Retry-After")?
        .to_str()?
        .parse()?;
    ensure!((1..=30).contains(&retry_after), "Retry-After {retry_after}");
    let body: Value = refused.json().await?;
    ensure!(body["error"]["code"] == "circuit_open", "{body}");
    let listed = app
        .get("/v1/tenants/acme/installs", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        listed.body["items"][0]["breaker"]["state"] == "open",
        "{}",
        listed.body
    );
    // Refused calls are not failures of the plugin: the five traps are all it logged.
    let errors = &listed.body["items"][0]["breaker"]["last_errors"];
    ensure!(errors.as_array().is_some_and(|e| e.len() == 5), "{errors}");
    app.post(
        &format!("/v1/tenants/acme/installs/{echo}/breaker/reset"),
        Some(&w.admin),
        json!({}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let echoed = app
        .get(&format!("/p/acme/{echo}/x"), Some(&key))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(echoed.body["path"] == "/x", "{}", echoed.body);
    Ok(())
}

async fn members_cannot_install_admins_can(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    let (_, member) = app.user("member@acme.example").await?;
    app.post(
        "/v1/tenants/acme/members",
        Some(&w.admin),
        json!({"email": "member@acme.example", "role": "member"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let key = app.api_key(&w.admin, "acme").await?;
    for token in [&member, &key] {
        install(&app, token, "acme", &hello, json!({}))
            .await?
            .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    }
    let listed = app
        .get("/v1/tenants/acme/installs", Some(&member))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(listed.body["items"] == json!([]), "{}", listed.body);
    install(&app, &w.admin, "acme", &hello, json!({}))
        .await?
        .expect(StatusCode::CREATED)?;
    // A member may not change or remove it either, but may use it.
    app.patch(
        &format!("/v1/tenants/acme/installs/{hello}"),
        Some(&member),
        json!({"enabled": false}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.delete(&format!("/v1/tenants/acme/installs/{hello}"), Some(&member))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    let greeted = event(&app, &member, "acme", "greet", json!("Ada")).await?;
    ensure!(greeted[0]["output"] == "Hello, Ada!", "{greeted:?}");
    Ok(())
}

async fn other_tenants_installs_answer_404(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let echo = publish(&app, &w, &HTTP_ECHO, "echo").await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    for plugin in [&echo, &hello] {
        install(&app, &w.admin, "acme", plugin, json!({}))
            .await?
            .expect(StatusCode::CREATED)?;
    }
    let (_, other) = app.user("admin@globex.example").await?;
    app.tenant(&other, "globex").await?;
    let other_key = app.api_key(&other, "globex").await?;
    let digest = digest(&app, &hello).await?;
    // A run of acme's: its install hook.
    let acme_runs = app
        .get("/v1/tenants/acme/runs", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    let run = acme_runs.body["items"][0]["id"]
        .as_str()
        .context("a run of acme")?
        .to_owned();
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/v1/tenants/acme/installs".into(), None),
        (Method::GET, "/v1/tenants/acme/runs".into(), None),
        (Method::GET, format!("/v1/tenants/acme/runs/{run}"), None),
        (Method::GET, "/v1/tenants/acme/runs/export".into(), None),
        (
            Method::PUT,
            format!("/v1/tenants/acme/runs/{run}/share"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/tenants/acme/installs/{hello}/daily"),
            None,
        ),
        (Method::GET, format!("/v1/tenants/globex/runs/{run}"), None),
        (
            Method::POST,
            "/v1/tenants/acme/installs".into(),
            Some(json!({"plugin": hello, "permissions_digest": digest})),
        ),
        (
            Method::PATCH,
            format!("/v1/tenants/acme/installs/{hello}"),
            Some(json!({"enabled": false})),
        ),
        (
            Method::DELETE,
            format!("/v1/tenants/acme/installs/{hello}"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/tenants/acme/installs/{hello}/breaker/reset"),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/v1/tenants/acme/events".into(),
            Some(json!({"topic": "greet", "payload": "Eve"})),
        ),
        (Method::GET, format!("/p/acme/{echo}/x"), None),
        (Method::POST, format!("/p/acme/{echo}"), Some(json!({}))),
    ];
    for token in [&other, &other_key] {
        for (method, path, body) in &routes {
            let reply = app
                .call(method.clone(), path, Some(token), body.clone())
                .await?;
            ensure!(
                reply.status == StatusCode::NOT_FOUND && reply.code() == "not_found",
                "{method} {path}: {} {}",
                reply.status,
                reply.body
            );
        }
    }
    // The tenant's own installs are untouched, and globex's own routes do not reach acme's.
    let listed = app
        .get("/v1/tenants/acme/installs", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        listed.body["items"].as_array().map(Vec::len) == Some(2)
            && listed.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|i| i["status"] == "active"),
        "{}",
        listed.body
    );
    app.get(&format!("/p/globex/{echo}/x"), Some(&other_key))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    ensure!(
        event(&app, &other_key, "globex", "greet", json!("Eve"))
            .await?
            .is_empty()
    );
    Ok(())
}

async fn events_input_is_checked(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    install(&app, &w.admin, "acme", &hello, json!({}))
        .await?
        .expect(StatusCode::CREATED)?;
    let key = app.api_key(&w.admin, "acme").await?;
    ensure!(
        event(&app, &key, "acme", "nobody.listens", json!({"a": 1}))
            .await?
            .is_empty()
    );

    let path = "/v1/tenants/acme/events";
    app.send_bytes(
        Method::POST,
        path,
        Some(&key),
        "application/json",
        b"{\"topic\": ".to_vec(),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    let cases = [
        (json!({"payload": 1}), "topic"),
        (json!({"topic": 5, "payload": 1}), "topic"),
        (json!({"topic": "", "payload": 1}), "topic"),
        (json!({"topic": "greet"}), "payload"),
        (
            json!({"topic": "greet", "payload": 1, "extra": true}),
            "extra",
        ),
    ];
    for (body, field) in cases {
        let reply = app
            .post(path, Some(&key), body.clone())
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
        ensure!(message(&reply).contains(field), "{body}: {}", reply.body);
    }
    Ok(())
}

async fn stale_consent_and_bad_config_are_refused(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    let webhook = publish(&app, &w, &WEBHOOK_NOTIFY, "webhook").await?;
    let shown = app
        .get(&format!("/v1/plugins/{webhook}/versions/0.1.0"), None)
        .await?
        .expect(StatusCode::OK)?;
    let stale = app
        .post(
            "/v1/tenants/acme/installs",
            Some(&w.admin),
            json!({"plugin": webhook, "permissions_digest": digest(&app, &hello).await?,
                   "config": {"webhook-url": "https://hooks.example.com/x"}}),
        )
        .await?
        .expect_error(StatusCode::CONFLICT, "permissions_changed")?;
    ensure!(
        stale.body["error"]["details"]["permissions"] == shown.body["permissions"]
            && stale.body["error"]["details"]["permissions_digest"]
                == shown.body["permissions_digest"],
        "{}",
        stale.body
    );
    let missing = install(&app, &w.admin, "acme", &webhook, json!({}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_config")?;
    ensure!(
        message(&missing).contains("config.webhook-url"),
        "{}",
        missing.body
    );
    let wrong_type = install(&app, &w.admin, "acme", &webhook, json!({"webhook-url": 7}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_config")?;
    ensure!(
        message(&wrong_type).contains("config.webhook-url"),
        "{}",
        wrong_type.body
    );
    let listed = app
        .get("/v1/tenants/acme/installs", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        listed.body["items"] == json!([]),
        "nothing installed: {}",
        listed.body
    );
    Ok(())
}

async fn secrets_never_leave_the_server(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let webhook = publish(&app, &w, &WEBHOOK_NOTIFY, "webhook").await?;
    let secret = "https://hooks.example.com/T0P-SECRET-7f3a";
    let second = "https://hooks.example.com/ANOTHER-SECRET-91c2";
    let installed = install(
        &app,
        &w.admin,
        "acme",
        &webhook,
        json!({"webhook-url": secret}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let listed = app
        .get("/v1/tenants/acme/installs", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    let patched = app
        .patch(
            &format!("/v1/tenants/acme/installs/{webhook}"),
            Some(&w.admin),
            json!({"config": {"webhook-url": second}}),
        )
        .await?
        .expect(StatusCode::OK)?;
    let listed_again = app
        .get("/v1/tenants/acme/installs", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    for reply in [&installed, &listed, &patched, &listed_again] {
        let text = String::from_utf8_lossy(&reply.bytes);
        ensure!(!text.contains("SECRET"), "a secret leaked: {text}");
    }
    ensure!(
        installed.body["config"]["secrets_set"]
            .to_string()
            .contains("webhook-url"),
        "{}",
        installed.body
    );
    // Stored sealed, not in plain text.
    let row = sqlx::query("SELECT config FROM installs WHERE plugin_id = $1")
        .bind(&webhook)
        .fetch_one(app.db().pool())
        .await?;
    let stored: String = row.try_get("config")?;
    ensure!(!stored.contains("SECRET") && !stored.is_empty(), "{stored}");
    Ok(())
}

async fn yanked_versions_and_plan_limits_stop_installs(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    let counter = publish(&app, &w, &COUNTER, "counter").await?;
    sqlx::query("UPDATE versions SET yanked_at = $1 WHERE plugin_id = $2")
        .bind(1_i64)
        .bind(&counter)
        .execute(app.db().pool())
        .await?;
    let digest_of_counter = digest(&app, &counter).await?;
    let yanked = app
        .post(
            "/v1/tenants/acme/installs",
            Some(&w.admin),
            json!({"plugin": counter, "version": "0.1.0", "permissions_digest": digest_of_counter}),
        )
        .await?
        .expect_error(StatusCode::CONFLICT, "version_yanked")?;
    ensure!(message(&yanked).contains("0.1.0"), "{}", yanked.body);

    app.put(
        "/v1/plans/free",
        Some(&w.operator),
        json!({"max_installs": 1}),
    )
    .await?
    .expect(StatusCode::OK)?;
    sqlx::query("UPDATE versions SET yanked_at = NULL WHERE plugin_id = $1")
        .bind(&counter)
        .execute(app.db().pool())
        .await?;
    install(&app, &w.admin, "acme", &hello, json!({}))
        .await?
        .expect(StatusCode::CREATED)?;
    let limited = install(&app, &w.admin, "acme", &counter, json!({}))
        .await?
        .expect_error(StatusCode::CONFLICT, "install_limit")?;
    ensure!(message(&limited).contains('1'), "{}", limited.body);
    let listed = app
        .get("/v1/tenants/acme/installs", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        listed.body["items"].as_array().map(Vec::len) == Some(1),
        "{}",
        listed.body
    );
    // The host runs only the one install: counter's topic reaches nobody.
    let key = app.api_key(&w.admin, "acme").await?;
    ensure!(
        event(&app, &key, "acme", "count", json!({}))
            .await?
            .is_empty()
    );
    Ok(())
}

async fn uninstall_deletes_kv_data(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let counter = publish(&app, &w, &COUNTER, "counter").await?;
    let key = app.api_key(&w.admin, "acme").await?;
    for round in 0..2 {
        install(&app, &w.admin, "acme", &counter, json!({}))
            .await?
            .expect(StatusCode::CREATED)?;
        for expected in 1..=2 {
            let counted = event(&app, &key, "acme", "count", json!({})).await?;
            ensure!(
                counted[0]["output"] == json!({"count": expected}),
                "round {round}: {counted:?}"
            );
        }
        app.delete(
            &format!("/v1/tenants/acme/installs/{counter}"),
            Some(&w.admin),
        )
        .await?
        .expect(StatusCode::NO_CONTENT)?;
        ensure!(
            event(&app, &key, "acme", "count", json!({}))
                .await?
                .is_empty()
        );
    }
    app.delete(
        &format!("/v1/tenants/acme/installs/{counter}"),
        Some(&w.admin),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

async fn an_adversarial_plugin_never_blocks_another_tenant(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let spin = publish(&app, &w, &SPIN_FOREVER, "spin").await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    // acme is on the free plan with a short deadline; globex on pro.
    app.put(
        "/v1/plans/free",
        Some(&w.operator),
        json!({"timeout_ms": 300}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let (_, other) = app.user("admin@globex.example").await?;
    app.tenant(&other, "globex").await?;
    app.patch(
        "/v1/tenants/globex",
        Some(&w.operator),
        json!({"plan": "pro"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    install(&app, &w.admin, "acme", &spin, json!({}))
        .await?
        .expect(StatusCode::CREATED)?;
    install(&app, &other, "globex", &hello, json!({}))
        .await?
        .expect(StatusCode::CREATED)?;
    let acme_key = app.api_key(&w.admin, "acme").await?;
    let globex_key = app.api_key(&other, "globex").await?;

    let mut calls = tokio::task::JoinSet::new();
    for i in 0..12 {
        let client = app.client.clone();
        let (slug, key, topic, payload) = if i % 3 == 0 {
            ("acme", acme_key.clone(), "run", json!(null))
        } else {
            (
                "globex",
                globex_key.clone(),
                "greet",
                json!(format!("caller {i}")),
            )
        };
        let url = format!("{}/v1/tenants/{slug}/events", app.base);
        calls.spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"topic": topic, "payload": payload}))
                .send()
                .await?;
            let status = response.status();
            let body: Value = response.json().await?;
            anyhow::Ok((i, slug, status, body))
        });
    }
    let mut timeouts = 0;
    while let Some(joined) = calls.join_next().await {
        let (i, slug, status, body) = joined??;
        ensure!(status == StatusCode::OK, "{slug} {i}: {status} {body}");
        let results = body["results"].as_array().context("results")?;
        ensure!(results.len() == 1, "{slug} {i}: {body}");
        if slug == "globex" {
            ensure!(
                results[0]["error"].is_null()
                    && results[0]["output"] == json!(format!("Hello, caller {i}!")),
                "{body}"
            );
        } else {
            let code = results[0]["error"]["code"].as_str().unwrap_or("");
            // Timeouts open acme's breaker after 5; later calls are refused without running.
            ensure!(code == "timeout" || code == "circuit_open", "{body}");
            if code == "timeout" {
                timeouts += 1;
            }
        }
    }
    ensure!(timeouts >= 1, "acme's spinning plugin never timed out");
    Ok(())
}

/// A whole-host synchronisation reads storage before it applies; an install this process made
/// meanwhile is missing from that read and must survive it. Storage still wins otherwise.
async fn a_full_sync_spares_what_this_process_just_changed(app: TestApp) -> Result<()> {
    use plinth_marketplace::installs::sync;

    let w = world(&app).await?;
    let hello = publish(&app, &w, &HELLO, "hello").await?;
    let key = app.api_key(&w.admin, "acme").await?;
    install(&app, &w.admin, "acme", &hello, json!({}))
        .await?
        .expect(StatusCode::CREATED)?;
    // What a read taken just before the install committed sees: no install.
    sqlx::query("DELETE FROM installs WHERE plugin_id = $1")
        .bind(&hello)
        .execute(app.db().pool())
        .await?;
    sync::sync_all_sparing_local(&app.state, std::time::Duration::from_secs(30)).await?;
    let greeted = event(&app, &key, "acme", "greet", json!("Ada")).await?;
    ensure!(
        greeted.len() == 1 && greeted[0]["error"].is_null(),
        "the full sync undid the install made here: {greeted:?}"
    );
    // A sync that spares nothing (a notification's) makes the host what storage says.
    sync::sync(&app.state, None, None).await?;
    let after = event(&app, &key, "acme", "greet", json!("Ada")).await?;
    ensure!(after.is_empty(), "storage has no install: {after:?}");
    Ok(())
}
