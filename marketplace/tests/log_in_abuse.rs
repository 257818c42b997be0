//! Log-in and sign-up as an attacker tries them, over HTTP on both backends: guess floods are
//! throttled per account and per address (429 `too_many_attempts` with `Retry-After`, the
//! right password working again once the wait is over), unknown emails cost the same
//! verification as wrong passwords, sign-up does not tell which emails have accounts, and weak
//! passwords are refused. Waits are passed by moving the server's clock, not by sleeping.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::Settings;
use plinth_marketplace::auth::throttle::ThrottleSettings;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Row;

use common::{Reply, TestApp};

on_both_backends_with_settings!(small_throttle =>
    a_guess_flood_is_throttled_then_the_right_password_works,
    one_address_is_throttled_across_accounts,
    an_unknown_email_costs_the_same_check_as_a_wrong_password,
);

on_both_backends!(
    sign_up_with_a_taken_email_answers_as_a_fresh_one,
    weak_passwords_are_refused_and_nothing_is_stored,
);

/// An account gets 3 attempts, then one a minute; an address 8, then one every 10 s.
fn small_throttle() -> Settings {
    Settings {
        throttle: ThrottleSettings {
            account_burst: 3,
            account_every: Duration::from_secs(60),
            address_burst: 8,
            address_every: Duration::from_secs(10),
            ..ThrottleSettings::default()
        },
        ..Settings::default()
    }
}

const PASSWORD: &str = "violet kettle harbour 42";

async fn sign_up(app: &TestApp, email: &str, password: &str) -> Result<Reply> {
    app.post(
        "/v1/accounts",
        None,
        json!({"email": email, "password": password, "name": "Ada"}),
    )
    .await
}

async fn log_in(app: &TestApp, email: &str, password: &str) -> Result<Reply> {
    app.post(
        "/v1/tokens",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

async fn count(app: &TestApp, sql: &'static str) -> Result<i64> {
    Ok(sqlx::query(sql)
        .fetch_one(app.db().pool())
        .await?
        .try_get(0)?)
}

/// The `Retry-After` of a 429 `too_many_attempts`, in seconds (at least 1).
fn retry_after(reply: Reply) -> Result<u64> {
    let reply = reply.expect_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")?;
    let secs: u64 = reply
        .headers
        .get("retry-after")
        .context("a Retry-After header")?
        .to_str()?
        .parse()?;
    ensure!(secs >= 1, "Retry-After {secs}");
    Ok(secs)
}

async fn a_guess_flood_is_throttled_then_the_right_password_works(app: TestApp) -> Result<()> {
    sign_up(&app, "ada@example.com", PASSWORD)
        .await?
        .expect(StatusCode::CREATED)?;
    for n in 0..3 {
        log_in(&app, "ada@example.com", &format!("guess number {n}"))
            .await?
            .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    }
    // Spent: every further guess is refused before any password is checked, the right one
    // included (so a guess while throttled can never succeed), in any case of the email.
    let wait = retry_after(log_in(&app, "ada@example.com", "guess number 3").await?)?;
    ensure!((50..=60).contains(&wait), "wait {wait}");
    let refused = log_in(&app, "ADA@Example.com", PASSWORD).await?;
    ensure!(
        refused.message().contains("for this account"),
        "{}",
        refused.body
    );
    retry_after(refused)?;
    ensure!(
        count(&app, "SELECT COUNT(*) FROM tokens").await? == 0,
        "a session was stored"
    );
    // Another account is not held up.
    sign_up(&app, "bob@example.com", PASSWORD)
        .await?
        .expect(StatusCode::CREATED)?;
    log_in(&app, "bob@example.com", PASSWORD)
        .await?
        .expect(StatusCode::CREATED)?;
    // Once the wait is over, the right password works again.
    app.state.clock().advance(Duration::from_secs(wait));
    let session = log_in(&app, "ada@example.com", PASSWORD)
        .await?
        .expect(StatusCode::CREATED)?;
    let token = session.body["token"].as_str().context("token")?;
    app.get("/v1/accounts/me", Some(token))
        .await?
        .expect(StatusCode::OK)?;
    Ok(())
}

async fn one_address_is_throttled_across_accounts(app: TestApp) -> Result<()> {
    // Sign-ups and log-ins from one address draw on one budget of 8.
    sign_up(&app, "ada@example.com", PASSWORD)
        .await?
        .expect(StatusCode::CREATED)?;
    for n in 0..7 {
        log_in(&app, &format!("user{n}@example.com"), PASSWORD)
            .await?
            .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    }
    let refused = log_in(&app, "ada@example.com", PASSWORD).await?;
    ensure!(
        refused.message().contains("from your address"),
        "{}",
        refused.body
    );
    let wait = retry_after(refused)?;
    retry_after(sign_up(&app, "eve@example.com", PASSWORD).await?)?;
    ensure!(
        count(&app, "SELECT COUNT(*) FROM users").await? == 1,
        "eve was stored"
    );
    app.state.clock().advance(Duration::from_secs(wait));
    log_in(&app, "ada@example.com", PASSWORD)
        .await?
        .expect(StatusCode::CREATED)?;
    Ok(())
}

/// `plinth_log_in_password_checks_total` from `/metrics`.
async fn password_checks(app: &TestApp) -> Result<u64> {
    let metrics = app.get("/metrics", None).await?.expect(StatusCode::OK)?;
    let text = String::from_utf8(metrics.bytes)?;
    let line = text
        .lines()
        .find(|l| l.starts_with("plinth_log_in_password_checks_total "))
        .context("the password check counter")?;
    Ok(line.rsplit(' ').next().unwrap_or_default().parse()?)
}

async fn an_unknown_email_costs_the_same_check_as_a_wrong_password(app: TestApp) -> Result<()> {
    sign_up(&app, "ada@example.com", PASSWORD)
        .await?
        .expect(StatusCode::CREATED)?;
    let before = password_checks(&app).await?;
    let wrong = log_in(&app, "ada@example.com", "not her password at all")
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    ensure!(
        password_checks(&app).await? == before + 1,
        "a wrong password is one check"
    );
    let unknown = log_in(&app, "nobody@example.com", "not her password at all")
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    ensure!(
        password_checks(&app).await? == before + 2,
        "an unknown email is one check too"
    );
    ensure!(
        wrong.body == unknown.body,
        "{} vs {}",
        wrong.body,
        unknown.body
    );
    // A throttled attempt checks nothing.
    for _ in 0..2 {
        log_in(&app, "nobody@example.com", "guess").await?;
    }
    let checks = password_checks(&app).await?;
    retry_after(log_in(&app, "nobody@example.com", "guess").await?)?;
    ensure!(
        password_checks(&app).await? == checks,
        "a throttled attempt was checked"
    );
    Ok(())
}

async fn sign_up_with_a_taken_email_answers_as_a_fresh_one(app: TestApp) -> Result<()> {
    let first = sign_up(&app, "grace@example.com", PASSWORD)
        .await?
        .expect(StatusCode::CREATED)?;
    let again = sign_up(&app, "Grace@Example.com", "tangerine quokka lighthouse")
        .await?
        .expect(StatusCode::CREATED)?;
    let fresh = sign_up(&app, "hopper@example.com", "tangerine quokka lighthouse")
        .await?
        .expect(StatusCode::CREATED)?;
    let keys = |reply: &Reply| {
        reply
            .body
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
    };
    ensure!(
        keys(&again) == keys(&fresh),
        "{} vs {}",
        again.body,
        fresh.body
    );
    ensure!(
        again.body["email"] == "grace@example.com" && again.body["id"] != first.body["id"],
        "{}",
        again.body
    );
    // Nothing was created or changed: the owner's password still works, the new one does not.
    ensure!(count(&app, "SELECT COUNT(*) FROM users").await? == 2);
    log_in(&app, "grace@example.com", "tangerine quokka lighthouse")
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    log_in(&app, "grace@example.com", PASSWORD)
        .await?
        .expect(StatusCode::CREATED)?;
    Ok(())
}

async fn weak_passwords_are_refused_and_nothing_is_stored(app: TestApp) -> Result<()> {
    for weak in [
        "aaaaaaaaaa",
        "          ",
        "password123",
        "qwertyuiop",
        "1234567890",
        "ada.lovelace@example.com",
    ] {
        let refused = app
            .post(
                "/v1/accounts",
                None,
                json!({"email": "ada.lovelace@example.com", "password": weak, "name": "Ada"}),
            )
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "weak_password")?;
        let message = refused.message();
        ensure!(
            message.contains("field `password`") && message.contains("at least 3"),
            "{weak:?}: {message}"
        );
    }
    let short = sign_up(&app, "ada@example.com", "Xk9#q").await?;
    let short = short.expect_error(StatusCode::BAD_REQUEST, "weak_password")?;
    ensure!(
        short.message().contains("at least 10 characters"),
        "{}",
        short.body
    );
    ensure!(
        count(&app, "SELECT COUNT(*) FROM users").await? == 0,
        "a user was stored"
    );
    Ok(())
}
