//! `plinth serve` and `plinth admin bootstrap` as an operator runs them, on the embedded
//! SQLite default and on PostgreSQL.

mod common {
    pub mod server;
}

use anyhow::{Result, ensure};
use plinth_test_support::TestDatabase;
use serde_json::Value;

use common::server::{PlinthServer, bootstrap};

/// Starts on a fresh data dir (SQLite) or a fresh PostgreSQL schema, bootstraps the operator
/// once, answers health, metrics and the OpenAPI document, and stops cleanly on SIGTERM.
async fn serves_and_stops(database: Option<TestDatabase>) -> Result<()> {
    let data_dir = tempfile::tempdir()?;
    let url = database.as_ref().map(TestDatabase::url);
    let server = PlinthServer::start(data_dir.path(), url.as_deref())?;
    let client = reqwest::Client::new();

    let health: Value = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await?
        .json()
        .await?;
    ensure!(health["status"] == "ok", "{health}");

    let (ok, token, _) = bootstrap(data_dir.path(), url.as_deref())?;
    ensure!(
        ok && token.starts_with("plu_"),
        "bootstrap printed {token:?}"
    );
    let (again, _, stderr) = bootstrap(data_dir.path(), url.as_deref())?;
    ensure!(
        !again && stderr.contains("operator exists"),
        "second bootstrap: {stderr}"
    );

    let me = client
        .get(format!("{}/v1/accounts/me", server.base))
        .bearer_auth(&token)
        .send()
        .await?;
    ensure!(me.status() == 200);
    let me: Value = me.json().await?;
    ensure!(me["roles"] == serde_json::json!(["operator"]), "{me}");

    let missing = client
        .get(format!("{}/v1/nothing-here", server.base))
        .send()
        .await?;
    ensure!(missing.status() == 404);
    let body: Value = missing.json().await?;
    ensure!(body["error"]["code"] == "not_found", "{body}");
    ensure!(missing_request_id_is_set(&client, &server.base).await?);

    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        metrics.contains(
            r#"plinth_http_requests_total{method="GET",route="/v1/accounts/me",status="200"} 1"#
        ) && metrics.contains(
            r#"plinth_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ) && metrics.contains(
            r#"plinth_http_requests_total{method="GET",route="/healthz",status="200"} 3"#
        ),
        "{metrics}"
    );
    ensure!(metrics.contains("plinth_http_request_duration_seconds_bucket"));

    let openapi: Value = client
        .get(format!("{}/openapi.json", server.base))
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        openapi["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        openapi["openapi"]
    );
    for path in ["/v1/accounts", "/v1/tokens", "/v1/accounts/{id}/roles"] {
        ensure!(openapi["paths"][path].is_object(), "OpenAPI lacks {path}");
    }

    let status = server.stop()?;
    ensure!(
        status.success(),
        "plinth serve exited with {status} on SIGTERM"
    );
    if database.is_none() {
        ensure!(data_dir.path().join("marketplace.db").exists());
        ensure!(data_dir.path().join("marketplace.key.pub").exists());
    }
    Ok(())
}

/// Every response carries an `x-request-id`, echoing the client's when it sends one.
async fn missing_request_id_is_set(client: &reqwest::Client, base: &str) -> Result<bool> {
    let generated = client.get(format!("{base}/healthz")).send().await?;
    let echoed = client
        .get(format!("{base}/healthz"))
        .header("x-request-id", "test-123")
        .send()
        .await?;
    Ok(generated.headers().get("x-request-id").is_some()
        && echoed
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            == Some("test-123"))
}

#[tokio::test]
async fn serve_on_sqlite() -> Result<()> {
    serves_and_stops(None).await
}

#[tokio::test]
async fn serve_on_postgres() -> Result<()> {
    serves_and_stops(Some(TestDatabase::postgres("serve").await?)).await
}
