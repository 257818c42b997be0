//! Accounts and authentication over HTTP, on both backends.

mod common;

use anyhow::{Result, ensure};
use reqwest::{Method, StatusCode};
use serde_json::json;

use common::TestApp;

on_both_backends!(
    sign_up_then_log_in,
    malformed_bodies_name_the_field,
    bad_tokens_are_401,
    log_out_revokes_the_token,
    only_operators_set_roles,
    bootstrap_runs_once,
    a_bootstrapped_operator_logs_in_only_with_a_password,
    a_name_with_hidden_characters_is_refused_and_nothing_stored,
);

async fn sign_up_then_log_in(app: TestApp) -> Result<()> {
    let (id, token) = app.user("ada@example.com").await?;
    let me = app
        .get("/v1/accounts/me", Some(&token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        me.body["id"] == id && me.body["email"] == "ada@example.com",
        "{}",
        me.body
    );
    ensure!(me.body["roles"] == json!([]), "{}", me.body);
    app.post(
        "/v1/tokens",
        None,
        json!({"email": "ADA@example.com", "password": "wrong password!"}),
    )
    .await?
    .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    app.post(
        "/v1/tokens",
        None,
        json!({"email": "nobody@example.com", "password": "whatever123"}),
    )
    .await?
    .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    app.post(
        "/v1/accounts",
        None,
        json!({"email": "b@example.com", "password": "short", "name": "B"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "weak_password")?;
    Ok(())
}

async fn malformed_bodies_name_the_field(app: TestApp) -> Result<()> {
    let wrong_type = app
        .post(
            "/v1/accounts",
            None,
            json!({"email": 42, "password": "long enough pw", "name": "x"}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    let message = wrong_type.body["error"]["message"].as_str().unwrap_or("");
    ensure!(message.contains("email"), "{message}");
    let missing = app
        .post(
            "/v1/accounts",
            None,
            json!({"email": "x@example.com", "name": "x"}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("password")
    );
    let not_json = app
        .send_bytes(
            Method::POST,
            "/v1/accounts",
            None,
            "application/json",
            b"{\"email\":".to_vec(),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(
        not_json.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("not valid JSON")
    );
    Ok(())
}

async fn bad_tokens_are_401(app: TestApp) -> Result<()> {
    app.get("/v1/accounts/me", None)
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    app.get("/v1/accounts/me", Some("plt_not-a-real-token"))
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    let response = app
        .client
        .get(format!("{}/v1/accounts/me", app.base))
        .header("authorization", "Basic abc")
        .send()
        .await?;
    ensure!(response.status() == StatusCode::UNAUTHORIZED);
    // An expired session.
    let (_, token) = app.user("old@example.com").await?;
    sqlx::query("UPDATE tokens SET expires_at = 1 WHERE kind = 'session'")
        .execute(app.db().pool())
        .await?;
    let expired = app
        .get("/v1/accounts/me", Some(&token))
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    ensure!(
        expired.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("expired")
    );
    Ok(())
}

async fn log_out_revokes_the_token(app: TestApp) -> Result<()> {
    let (_, token) = app.user("lin@example.com").await?;
    app.delete("/v1/tokens/current", Some(&token))
        .await?
        .expect(StatusCode::NO_CONTENT)?;
    let revoked = app
        .get("/v1/accounts/me", Some(&token))
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    ensure!(
        revoked.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("revoked")
    );
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE token_hash = $1")
        .bind(&token)
        .fetch_one(app.db().pool())
        .await?;
    ensure!(
        stored == 0,
        "the token itself must never be stored, only its hash"
    );
    Ok(())
}

async fn only_operators_set_roles(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    let (id, token) = app.user("rev@example.com").await?;
    app.put(
        &format!("/v1/accounts/{id}/roles"),
        Some(&token),
        json!({"roles": ["reviewer"]}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.put(
        &format!("/v1/accounts/{id}/roles"),
        Some(&operator),
        json!({"roles": ["wizard"]}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "unknown_role")?;
    app.put(
        "/v1/accounts/nobody/roles",
        Some(&operator),
        json!({"roles": ["reviewer"]}),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.put(
        &format!("/v1/accounts/{id}/roles"),
        Some(&operator),
        json!({"roles": ["reviewer"]}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let me = app
        .get("/v1/accounts/me", Some(&token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(me.body["roles"] == json!(["reviewer"]), "{}", me.body);
    Ok(())
}

async fn bootstrap_runs_once(app: TestApp) -> Result<()> {
    let token = app.operator().await?;
    let me = app
        .get("/v1/accounts/me", Some(&token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(me.body["roles"] == json!(["operator"]), "{}", me.body);
    let again =
        plinth_marketplace::accounts::bootstrap_operator(app.db(), "x@plinth.test", "X", None)
            .await;
    ensure!(
        matches!(&again, Err(e) if e.code() == "operator_exists"),
        "{again:?}"
    );
    // Bootstrapped without a password, the operator has no password to log in with.
    for password in ["!", "a long enough password"] {
        app.post(
            "/v1/tokens",
            None,
            json!({"email": "operator@plinth.test", "password": password}),
        )
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    }
    Ok(())
}

async fn a_bootstrapped_operator_logs_in_only_with_a_password(app: TestApp) -> Result<()> {
    use plinth_marketplace::accounts::bootstrap_operator;

    let weak = bootstrap_operator(app.db(), "op@plinth.test", "Op", Some("short")).await;
    ensure!(
        matches!(&weak, Err(e) if e.code() == "weak_password"),
        "{weak:?}"
    );
    // The refusal made no operator: bootstrap still runs, with a password that keeps the rules.
    bootstrap_operator(
        app.db(),
        "op@plinth.test",
        "Op",
        Some("a long operator password"),
    )
    .await?;
    let session = app
        .post(
            "/v1/tokens",
            None,
            json!({"email": "op@plinth.test", "password": "a long operator password"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    let token = session.body["token"].as_str().unwrap_or_default();
    let me = app
        .get("/v1/accounts/me", Some(token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(me.body["roles"] == json!(["operator"]), "{}", me.body);
    Ok(())
}

/// Others read an account's name (beside its ratings): it may not hide or reorder text.
async fn a_name_with_hidden_characters_is_refused_and_nothing_stored(app: TestApp) -> Result<()> {
    let (refused_password, password) = ("violet quartz ladder 1911", "correct horse battery 42");
    for name in ["Ada\u{202E}nimda", "A\u{200B}da", "Ada\nLovelace"] {
        let refused = app
            .post(
                "/v1/accounts",
                None,
                json!({"email": "ada@example.com", "password": refused_password, "name": name}),
            )
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
        let message = refused.body["error"]["message"].as_str().unwrap_or("");
        ensure!(
            message.contains("`name`") && message.contains("U+"),
            "{message}"
        );
    }
    // Nothing was stored: the email signs up afresh, and only its new password logs in.
    app.post(
        "/v1/accounts",
        None,
        json!({"email": "ada@example.com", "password": password, "name": "Ada"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let logged_in = app
        .post(
            "/v1/tokens",
            None,
            json!({"email": "ada@example.com", "password": password}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(logged_in.body["token"].is_string(), "{}", logged_in.body);
    app.post(
        "/v1/tokens",
        None,
        json!({"email": "ada@example.com", "password": refused_password}),
    )
    .await?
    .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    Ok(())
}
