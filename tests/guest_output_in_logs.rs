//! A plugin can neither flood nor forge the server's log, nor answer with a huge error: through
//! a real `plinth serve`, the log bomb (100 lines with 1 MiB fields and a forged line behind a
//! newline and terminal escapes in each message, forged lines on stdout and stderr, then an
//! 8 MiB error) leaves a bounded number of escaped lines in the server's log, each one its own,
//! and an error of a few KiB in the answer.

mod common {
    pub mod api;
    pub mod server;
}

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::LOG_BOMB;
use serde_json::json;

use common::api::{Api, signed_package};
use common::server::{PlinthServer, bootstrap};

/// What the log bomb tries to slip into the server's log as a line of its own.
const FORGED: &str = "FORGED-LINE level=INFO operator logged in";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_bomb_neither_floods_nor_forges_the_server_log() -> Result<()> {
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("data");
    let log_file = work.path().join("server.log");
    let server = PlinthServer::start_logging_to(&data_dir, None, "info", &log_file)?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    let (ok, operator, stderr) = bootstrap(&data_dir, None)?;
    ensure!(ok, "bootstrap failed: {stderr}");
    let (developer, key) = api.developer("dev@fixtures.example", "fixtures").await?;
    let path = signed_package(work.path(), &LOG_BOMB, &key)?;
    api.publish_and_approve(&path, &developer, &operator)
        .await?;
    let (_, admin) = api.account("admin@acme.example").await?;
    api.tenant(&admin, "acme", None).await?;
    api.install(&admin, "acme", "fixtures.log-bomb", None, json!({}))
        .await?;
    let tenant_key = api.api_key(&admin, "acme").await?;

    let response = api
        .client
        .post(format!("{}/v1/tenants/acme/events", api.base))
        .bearer_auth(&tenant_key)
        .json(&json!({"topic": "run", "payload": null}))
        .send()
        .await?;
    ensure!(response.status() == 200, "{}", response.status());
    let body = response.bytes().await?;
    ensure!(body.len() < 16 << 10, "the answer is {} bytes", body.len());
    let answered: serde_json::Value = serde_json::from_slice(&body)?;
    let error = &answered["results"][0]["error"];
    ensure!(error["code"] == "plugin_error", "{answered}");
    let message = error["message"].as_str().context("message")?;
    ensure!(
        message.ends_with("[cut: 8388608 bytes in all]") && !message.contains('\n'),
        "{message:.200}"
    );

    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");
    let log = std::fs::read_to_string(&log_file)?;
    ensure!(
        log.contains("bomb 0"),
        "the plugin's lines were not logged: {log:.2000}"
    );
    ensure!(!log.contains('\u{1b}'), "a raw escape reached the log");
    ensure!(!log.contains('\r'), "a raw carriage return reached the log");
    // Every line is one the server's logger started (with its timestamp), and every line
    // naming the forged text is the plugin's own, tagged as such: none stands alone.
    for line in log.lines() {
        ensure!(
            starts_with_a_timestamp(line),
            "a line the logger did not start: {line:.200}"
        );
    }
    let forged: Vec<&str> = log.lines().filter(|line| line.contains(FORGED)).collect();
    ensure!(!forged.is_empty(), "the forged text should appear, escaped");
    for line in forged {
        ensure!(
            line.contains("plinth::plugin") && line.contains("fixtures.log-bomb"),
            "a forged line: {line:.200}"
        );
    }
    // 100 MiB of fields and an 8 MiB error went in; the call's lines and error come out in a
    // few hundred KiB at most (the server's own lines included).
    ensure!(log.len() < 1 << 20, "the log is {} bytes", log.len());
    Ok(())
}

/// Whether `line` starts like the text logger's lines: `YYYY-MM-DDT…`.
fn starts_with_a_timestamp(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.len() > 11
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
}
