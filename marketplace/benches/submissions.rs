//! Submission throughput: signed `hello` packages POSTed to `/v1/submissions` over loopback,
//! each parsed, checked against the publisher's keys and versions, validated (the component
//! inspected) and stored with its report in one transaction.
//!
//! `cargo bench -p plinth-marketplace --bench submissions` prints, per backend and
//! concurrency, submissions per second and the p50/p95 latency of one submission.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use plinth_marketplace::{AppState, Db, Settings};
use plinth_package::{Package, SecretKey};
use plinth_test_support::TestDatabase;
use serde_json::{Value, json};

/// Submissions per measured run.
const SUBMISSIONS: usize = 200;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!("| backend | concurrency | submissions/s | p50 ms | p95 ms |");
        println!("|---|---|---|---|---|");
        for concurrency in [1, 4] {
            let sqlite = TestDatabase::sqlite()?;
            run("SQLite", &sqlite, concurrency).await?;
            let postgres = TestDatabase::postgres("bench_submit").await?;
            run("PostgreSQL", &postgres, concurrency).await?;
        }
        Ok(())
    })
}

async fn run(name: &str, database: &TestDatabase, concurrency: usize) -> Result<()> {
    let db = Db::connect(&database.url())
        .await?
        .with_audit_key(plinth_marketplace::audit::key::AuditKey::generate()?.0);
    let state = AppState::new(db, Settings::default(), SecretKey::generate()?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(plinth_marketplace::server::serve(
        listener,
        state,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    let client = reqwest::Client::new();
    let token = developer(&client, &base).await?;
    let key = SecretKey::generate()?;
    let public_key = key.public_key().to_string();
    let issued = post(
        &client,
        &base,
        "/v1/publishers/bench/keys/challenges",
        &token,
        json!({"public_key": public_key}),
    )
    .await?;
    let challenge = issued["challenge"].as_str().context("challenge")?;
    post(
        &client,
        &base,
        "/v1/publishers/bench/keys",
        &token,
        json!({"public_key": public_key, "challenge": challenge,
               "signature": key.prove_possession("bench", challenge).to_string()}),
    )
    .await?;
    let packages = packages(&key)?;

    let started = Instant::now();
    let mut latencies = Vec::with_capacity(SUBMISSIONS);
    for chunk in packages.chunks(concurrency) {
        let sends: Vec<_> = chunk
            .iter()
            .map(|bytes| {
                let client = client.clone();
                let url = format!("{base}/v1/submissions");
                let token = token.clone();
                let bytes = bytes.clone();
                async move {
                    let began = Instant::now();
                    let response = client
                        .post(url)
                        .bearer_auth(token)
                        .header("content-type", "application/octet-stream")
                        .body(bytes)
                        .send()
                        .await?;
                    let status = response.status();
                    let body: Value = response.json().await?;
                    ensure!(
                        status == 201 && body["status"] == "in_review",
                        "submission answered {status}: {body}"
                    );
                    anyhow::Ok(began.elapsed())
                }
            })
            .map(tokio::spawn)
            .collect();
        for send in sends {
            latencies.push(send.await??);
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "| {name} | {concurrency} | {:.1} | {:.1} | {:.1} |",
        SUBMISSIONS as f64 / elapsed.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Signs up a developer with publisher `bench`; returns the session token.
async fn developer(client: &reqwest::Client, base: &str) -> Result<String> {
    let account = json!({"email": "bench@example.com", "password": "a long enough password", "name": "Bench"});
    let response = client
        .post(format!("{base}/v1/accounts"))
        .json(&account)
        .send()
        .await?;
    ensure!(
        response.status() == 201,
        "sign-up answered {}",
        response.status()
    );
    let session: Value = client
        .post(format!("{base}/v1/tokens"))
        .json(&json!({"email": "bench@example.com", "password": "a long enough password"}))
        .send()
        .await?
        .json()
        .await?;
    let token = session["token"].as_str().context("token")?.to_owned();
    post(
        client,
        base,
        "/v1/publishers",
        &token,
        json!({"namespace": "bench", "name": "Bench"}),
    )
    .await?;
    Ok(token)
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    body: Value,
) -> Result<Value> {
    let response = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "{path} answered {}",
        response.status()
    );
    Ok(response.json().await.unwrap_or(Value::Null))
}

/// `SUBMISSIONS` signed packages of `hello`, each a distinct plugin `bench.hello-N`.
fn packages(key: &SecretKey) -> Result<Vec<Vec<u8>>> {
    let hello = plinth_test_artifacts::HELLO;
    let manifest = std::fs::read_to_string(std::path::Path::new(hello.dir).join("plinth.toml"))?;
    let wasm = std::fs::read(hello.wasm)?;
    (0..SUBMISSIONS)
        .map(|i| {
            let text = manifest.replace("examples.hello", &format!("bench.hello-{i}"));
            let mut package = Package::new(text, wasm.clone(), None, None)?;
            package.sign(key);
            Ok(package.to_bytes()?)
        })
        .collect()
}
