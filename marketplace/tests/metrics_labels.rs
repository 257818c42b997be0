//! `/metrics` has a fixed set of label values whatever clients send: requests with made-up
//! HTTP methods count under method `other`, requests no route matches under route
//! `unmatched`, and a method a route does not allow (405) under the route's template. So a
//! client cannot grow the label set, and with it the server's memory and every scrape.

mod common;

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use reqwest::{Method, StatusCode};

use common::TestApp;

/// The method labels `/metrics` may show.
const METHOD_LABELS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "other",
];

/// `n` random upper-case letters.
fn random_word(n: usize) -> Result<String> {
    let mut bytes = vec![0_u8; n];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    Ok(bytes
        .iter()
        .map(|byte| char::from(b'A' + byte % 26))
        .collect())
}

/// The `(method, route)` labels of every `plinth_http_requests` sample in `metrics`.
fn request_labels(metrics: &str) -> Result<BTreeSet<(String, String)>> {
    let label = |line: &str, name: &str| -> Result<String> {
        let start = line
            .find(&format!("{name}=\""))
            .with_context(|| format!("no {name} in {line}"))?
            + name.len()
            + 2;
        let end = line[start..]
            .find('"')
            .with_context(|| format!("unterminated {name} in {line}"))?;
        Ok(line[start..start + end].to_owned())
    };
    metrics
        .lines()
        .filter(|line| line.starts_with("plinth_http_requests_total{"))
        .map(|line| Ok((label(line, "method")?, label(line, "route")?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_fall_into_fixed_labels() -> Result<()> {
    let app = TestApp::start_sqlite().await?;
    let mut sent = Vec::new();
    for i in 0..50 {
        let method = format!("X{}", random_word(6 + i % 5)?);
        let path_word = random_word(12)?.to_lowercase();
        sent.push((method.clone(), path_word.clone()));
        let method = Method::from_bytes(method.as_bytes())?;
        // A made-up method on an unknown path, on a known path, and a known method on an
        // unknown path under a known prefix.
        for (method, path) in [
            (method.clone(), format!("/{path_word}/{i}")),
            (method.clone(), "/v1/plans".to_owned()),
            (method, "/healthz".to_owned()),
            (Method::GET, format!("/v1/{path_word}")),
            (Method::DELETE, format!("/v1/plugins/{path_word}/versions")),
        ] {
            let status = app
                .client
                .request(method, format!("{}{path}", app.base))
                .send()
                .await?
                .status();
            ensure!(
                status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED,
                "{path}: {status}"
            );
        }
    }

    let metrics = app.get("/metrics", None).await?;
    let text = String::from_utf8(metrics.bytes)?;
    for (method, path_word) in &sent {
        ensure!(
            !text.contains(method.as_str()),
            "method {method} is a label"
        );
        ensure!(
            !text.contains(path_word.as_str()),
            "path {path_word} is a label"
        );
    }
    let labels = request_labels(&text)?;
    let methods: BTreeSet<&str> = labels.iter().map(|(method, _)| method.as_str()).collect();
    let routes: BTreeSet<&str> = labels.iter().map(|(_, route)| route.as_str()).collect();
    ensure!(
        methods.iter().all(|method| METHOD_LABELS.contains(method)),
        "{methods:?}"
    );
    ensure!(methods.contains("other"), "{methods:?}");
    // Only the fallback's label and the templates of the routes that were asked.
    let expected: BTreeSet<&str> = [
        "unmatched",
        "/v1/plans",
        "/healthz",
        "/v1/plugins/{id}/versions",
    ]
    .into();
    ensure!(routes == expected, "routes: {routes:?}");
    // 250 requests with 50 methods and 100 paths: a handful of label sets.
    ensure!(labels.len() <= 8, "{labels:?}");
    Ok(())
}
