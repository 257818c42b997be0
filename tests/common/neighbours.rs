//! Two tenants on one `plinth serve`, for the noisy-neighbour test and benchmark: the fixtures
//! published, tenant A's hostile clients, and what they get back.

#![allow(
    dead_code,
    reason = "shared by the noisy-neighbour test and benchmark; each uses part of it"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, ensure};
use plinth_test_artifacts::{HELLO, LOG_BOMB, NOISY};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::api::{Api, signed_package};

/// How soon A's clients send again after a refusal: at once after an answer, a moment after a
/// refusal rather than the `Retry-After` asked for (a client flooding requests is the API
/// rate's to stop, which these runs raise).
pub const RETRY_AFTER_REFUSAL: Duration = Duration::from_millis(200);

/// One way A loads the host: a topic, a payload, and how many requests it keeps in flight.
pub struct Attack {
    pub name: &'static str,
    pub topic: &'static str,
    pub payload: Value,
    pub in_flight: usize,
}

impl Attack {
    pub fn new(name: &'static str, topic: &'static str, payload: Value, in_flight: usize) -> Self {
        Attack {
            name,
            topic,
            payload,
            in_flight,
        }
    }
}

/// What A got back: results, typed refusals, and error codes counted.
#[derive(Debug, Default)]
pub struct Outcomes {
    pub ok: usize,
    pub refused: usize,
    pub codes: BTreeMap<String, usize>,
}

impl Outcomes {
    fn add(&mut self, other: Outcomes) {
        self.ok += other.ok;
        self.refused += other.refused;
        for (code, n) in other.codes {
            *self.codes.entry(code).or_default() += n;
        }
    }
}

/// `hello` (namespace `examples`), `noisy` and `log-bomb` (namespace `fixtures`) published
/// and approved by `operator`; the free plan's API rate raised so that A's calls reach the
/// host, whose bounds are then what stops them.
pub async fn publish_fixtures(api: &Api, dir: &Path, operator: &str) -> Result<()> {
    for (namespace, plugins) in [
        ("examples", vec![&HELLO]),
        ("fixtures", vec![&NOISY, &LOG_BOMB]),
    ] {
        let (developer, key) = api
            .developer(&format!("dev@{namespace}.example"), namespace)
            .await?;
        for plugin in plugins {
            let path = signed_package(dir, plugin, &key)?;
            api.publish_and_approve(&path, &developer, operator).await?;
        }
    }
    api.ok(
        Method::PUT,
        "/v1/plans/free",
        Some(operator),
        Some(json!({"api_requests_per_minute": 100_000_000})),
    )
    .await?;
    Ok(())
}

/// Tenant `slug` (free plan) with a new owner and `plugins` installed; returns an API key and
/// the owner's token.
pub async fn tenant(api: &Api, slug: &str, plugins: &[&str]) -> Result<(String, String)> {
    let (_, owner) = api.account(&format!("owner@{slug}.example")).await?;
    api.tenant(&owner, slug, None).await?;
    for plugin in plugins {
        api.install(&owner, slug, plugin, None, json!({})).await?;
    }
    Ok((api.api_key(&owner, slug).await?, owner))
}

/// A's clients for `attack`, sending events to tenant `slug` with `key` until `stop`.
pub fn start(
    api: &Api,
    slug: &str,
    key: &str,
    attack: &Attack,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<Result<Outcomes>>> {
    (0..attack.in_flight)
        .map(|_| {
            let client = api.client.clone();
            let url = format!("{}/v1/tenants/{slug}/events", api.base);
            let body = json!({"topic": attack.topic, "payload": attack.payload});
            let (key, stop) = (key.to_owned(), Arc::clone(stop));
            tokio::spawn(async move { hammer(&client, &url, &key, &body, &stop).await })
        })
        .collect()
}

/// Waits for A's clients and adds up what they got.
pub async fn finish(clients: Vec<JoinHandle<Result<Outcomes>>>) -> Result<Outcomes> {
    let mut outcomes = Outcomes::default();
    for client in clients {
        outcomes.add(client.await??);
    }
    Ok(outcomes)
}

/// Sends `body` to `url` as fast as answers come back (soon again after a refusal), until
/// `stop`; every answer must be results or a typed refusal with `Retry-After`.
async fn hammer(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
    stop: &AtomicBool,
) -> Result<Outcomes> {
    let mut outcomes = Outcomes::default();
    while !stop.load(Ordering::SeqCst) {
        let response = client.post(url).bearer_auth(key).json(body).send().await?;
        let status = response.status();
        let retry_after = response.headers().contains_key("retry-after");
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        match status.as_u16() {
            200 => {
                outcomes.ok += 1;
                for result in answer["results"].as_array().into_iter().flatten() {
                    let code = result["error"]["code"].as_str().unwrap_or("ok");
                    *outcomes.codes.entry(code.to_owned()).or_default() += 1;
                }
            }
            429 | 503 => {
                let code = answer["error"]["code"].as_str().unwrap_or_default();
                ensure!(
                    retry_after && ["rate_limited", "quota_exceeded", "capacity"].contains(&code),
                    "A got an untyped refusal: {status} {answer}"
                );
                outcomes.refused += 1;
                *outcomes
                    .codes
                    .entry(format!("{status} {code}"))
                    .or_default() += 1;
                tokio::time::sleep(RETRY_AFTER_REFUSAL).await;
            }
            _ => anyhow::bail!("A got {status}: {answer}"),
        }
    }
    Ok(outcomes)
}
