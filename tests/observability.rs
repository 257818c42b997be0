//! What an operator sees of a running `plinth serve --log-format json`: `/metrics` counts each
//! plugin's calls, failures by kind, latency and fuel, shows its circuit breakers and the
//! queues' depths; every log line of a plugin call is JSON inside the request's span (its id)
//! and a `plugin_call` span naming tenant, plugin and version. On SQLite and PostgreSQL (the
//! queue depths are read from the database).

mod common {
    pub mod api;
    pub mod server;
}

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::{HELLO, TRAP};
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use common::api::{Api, signed_package};
use common::server::{PlinthServer, bootstrap};

const REQUEST_ID: &str = "req-observability-1";

/// The value of the sample `name{labels}` in the Prometheus text `metrics`.
fn sample(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.split(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Whether the span list of a JSON log line holds a span named `name` with all of `fields`.
fn in_span(line: &Value, name: &str, fields: &[(&str, &str)]) -> bool {
    line["spans"].as_array().is_some_and(|spans| {
        spans.iter().any(|span| {
            span["name"] == name
                && fields
                    .iter()
                    .all(|(key, value)| span[*key].as_str() == Some(*value))
        })
    })
}

async fn metrics_and_json_logs_describe_plugin_calls(database: Option<TestDatabase>) -> Result<()> {
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("data");
    let log_file = work.path().join("serve.log");
    let url = database.as_ref().map(TestDatabase::url);
    let server = PlinthServer::start_logging_with_args(
        &data_dir,
        url.as_deref(),
        "info",
        &log_file,
        &["--log-format", "json"],
    )?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    let (ok, operator, stderr) = bootstrap(&data_dir, url.as_deref())?;
    ensure!(ok, "bootstrap failed: {stderr}");
    // Calls on the free plan run with fuel metering, so fuel is counted.
    api.ok(
        Method::PUT,
        "/v1/plans/free",
        Some(&operator),
        Some(json!({"fuel_per_call": 50_000_000})),
    )
    .await?;
    for (plugin, namespace) in [(&HELLO, "examples"), (&TRAP, "fixtures")] {
        let (developer, key) = api
            .developer(&format!("dev@{namespace}.example"), namespace)
            .await?;
        let path = signed_package(work.path(), plugin, &key)?;
        api.publish_and_approve(&path, &developer, &operator)
            .await?;
    }
    let (_, admin) = api.account("admin@acme.example").await?;
    let tenant_id = api.tenant(&admin, "acme", None).await?["id"]
        .as_str()
        .context("tenant id")?
        .to_owned();
    for plugin in ["examples.hello", "fixtures.trap"] {
        api.install(&admin, "acme", plugin, Some("0.1.0"), json!({}))
            .await?;
    }
    let tenant_key = api.api_key(&admin, "acme").await?;
    for (topic, payload) in [
        ("greet", json!("Ada")),
        ("greet", json!("Grace")),
        ("run", json!({})),
    ] {
        let response = api
            .client
            .post(format!("{}/v1/tenants/acme/events", server.base))
            .bearer_auth(&tenant_key)
            .header("x-request-id", REQUEST_ID)
            .json(&json!({"topic": topic, "payload": payload}))
            .send()
            .await?;
        ensure!(response.status() == 200, "{}", response.text().await?);
    }

    // The metrics.
    let metrics = api
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await?
        .text()
        .await?;
    let hello = r#"plugin="examples.hello",version="0.1.0""#;
    let trap = r#"plugin="fixtures.trap",version="0.1.0""#;
    ensure!(
        sample(&metrics, "plinth_plugin_invocations_total", hello) == Some(2.0),
        "{metrics}"
    );
    ensure!(
        sample(
            &metrics,
            "plinth_plugin_failures_total",
            &format!(r#"{trap},kind="trap""#)
        ) == Some(1.0),
        "{metrics}"
    );
    ensure!(
        sample(&metrics, "plinth_plugin_call_duration_seconds_count", hello) == Some(2.0),
        "{metrics}"
    );
    ensure!(
        sample(&metrics, "plinth_plugin_fuel_total", hello).is_some_and(|fuel| fuel > 0.0),
        "{metrics}"
    );
    ensure!(
        sample(
            &metrics,
            "plinth_plugin_breakers",
            r#"plugin="examples.hello",state="closed""#
        ) == Some(1.0),
        "{metrics}"
    );
    for queue in ["webhook_deliveries", "review", "usage_records"] {
        ensure!(
            sample(
                &metrics,
                "plinth_queue_depth",
                &format!(r#"queue="{queue}""#)
            )
            .is_some(),
            "no depth of {queue}: {metrics}"
        );
    }
    ensure!(
        sample(&metrics, "plinth_queue_depth", r#"queue="review""#) == Some(0.0),
        "{metrics}"
    );

    // The logs: one JSON object a line; a plugin call's lines carry the request id, tenant,
    // plugin and version.
    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");
    let text = std::fs::read_to_string(&log_file)?;
    let lines: Vec<Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("a log line is not JSON:\n{text}"))?;
    let call = [
        ("tenant", tenant_id.as_str()),
        ("plugin", "fixtures.trap"),
        ("version", "0.1.0"),
    ];
    let failed = lines
        .iter()
        .find(|line| line["fields"]["message"] == "plugin call failed")
        .with_context(|| format!("no failed call logged:\n{text}"))?;
    ensure!(failed["fields"]["code"] == "trap", "{failed}");
    ensure!(
        in_span(failed, "request", &[("id", REQUEST_ID)]) && in_span(failed, "plugin_call", &call),
        "{failed}"
    );
    let greeting = lines
        .iter()
        .find(|line| {
            line["target"] == "plinth::plugin"
                && line["fields"]["message"] == "greeting"
                && line["fields"].to_string().contains("Ada")
        })
        .with_context(|| format!("hello's own log line is missing:\n{text}"))?;
    ensure!(
        in_span(greeting, "request", &[("id", REQUEST_ID)])
            && in_span(
                greeting,
                "plugin_call",
                &[("plugin", "examples.hello"), ("version", "0.1.0")]
            ),
        "{greeting}"
    );
    Ok(())
}

#[tokio::test]
async fn metrics_and_json_logs_on_sqlite() -> Result<()> {
    metrics_and_json_logs_describe_plugin_calls(None).await
}

#[tokio::test]
async fn metrics_and_json_logs_on_postgres() -> Result<()> {
    metrics_and_json_logs_describe_plugin_calls(Some(
        TestDatabase::postgres("observability").await?,
    ))
    .await
}
