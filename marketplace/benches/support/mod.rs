//! What the HTTP benchmarks share: a marketplace with its host on loopback (SQLite, or
//! PostgreSQL with `PLINTH_BENCH_DATABASE=postgres`), set up through its own API, and the load
//! generator ([`load`]) and the floor ([`floor`]) they measure it with.

#![allow(dead_code, reason = "each benchmark uses a part")]

pub mod floor;
pub mod load;

/// The allocator the `plinth` binary runs with (see `src/main.rs`), for the whole process:
/// the floor, the server and the load generator alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use plinth_host::kv::KvStore;
use plinth_host::trust::TrustPolicy;
use plinth_host::{Host, HostConfig};
use plinth_marketplace::secrets::SecretsKey;
use plinth_marketplace::{AppState, Db, Runtime, Settings};
use plinth_package::{Package, SecretKey};
use plinth_test_support::TestDatabase;
use serde_json::{Value, json};

/// A marketplace serving on loopback, and an operator's token for it.
pub struct Bench {
    pub base: String,
    pub client: reqwest::Client,
    pub operator: String,
    pub state: AppState,
    /// The secrets key (base64), for a restart.
    secrets: String,
}

/// A marketplace with its host over `database` (kv beside it), compiled components
/// cached in `compiled`, trusting packages countersigned by `trusted`, countersigning with
/// `key` and sealing with `secrets`.
async fn app_state(
    database: &TestDatabase,
    compiled: &Path,
    trusted: plinth_package::PublicKey,
    key: SecretKey,
    secrets: SecretsKey,
    settings: Settings,
) -> Result<AppState> {
    let db = Db::connect(&database.url())
        .await?
        .with_audit_key(plinth_marketplace::audit::key::AuditKey::generate()?.0);
    // kv beside the marketplace's tables: a file of its own on SQLite, the same schema on
    // PostgreSQL.
    let kv = match database {
        TestDatabase::Sqlite(dir) => {
            KvStore::connect(&format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("kv.db").display()
            ))
            .await?
        }
        TestDatabase::Postgres(_) => KvStore::connect(&database.url()).await?,
    };
    let mut config = HostConfig::new(compiled, TrustPolicy::enforce(vec![trusted]));
    config.kv = Some(kv);
    let host = Arc::new(Host::new(config)?);
    Ok(AppState::with_runtime(
        db,
        settings,
        key,
        Runtime { host, secrets },
    ))
}

/// The database `PLINTH_BENCH_DATABASE` names: `postgres` (a fresh schema on the test server)
/// or, by default, SQLite (a temporary file).
pub async fn database() -> Result<TestDatabase> {
    match std::env::var("PLINTH_BENCH_DATABASE").as_deref() {
        Ok("postgres") => TestDatabase::postgres("bench").await,
        Ok("sqlite") | Err(_) => TestDatabase::sqlite(),
        Ok(other) => anyhow::bail!("PLINTH_BENCH_DATABASE is sqlite or postgres, not {other:?}"),
    }
}

pub async fn start(database: &TestDatabase, cache: &Path) -> Result<Bench> {
    start_with_settings(database, cache, Settings::default()).await
}

/// [`start`] with `settings`.
pub async fn start_with_settings(
    database: &TestDatabase,
    cache: &Path,
    settings: Settings,
) -> Result<Bench> {
    let (secrets, secrets_text) = SecretsKey::generate()?;
    let key = SecretKey::generate()?;
    let state = app_state(database, cache, key.public_key(), key, secrets, settings).await?;
    let operator =
        plinth_marketplace::accounts::bootstrap_operator(state.db(), "op@bench.test", "Op", None)
            .await?
            .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let served = state.clone();
    tokio::spawn(plinth_marketplace::server::serve(
        listener,
        served,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    Ok(Bench {
        base,
        client,
        operator,
        state,
        secrets: secrets_text,
    })
}

impl Bench {
    /// A new host and state over the same database (as `plinth serve` starting again), with
    /// compiled components cached in `compiled`; returns how many installs it restored and
    /// how long that took.
    pub async fn restart(
        &self,
        database: &TestDatabase,
        compiled: &Path,
    ) -> Result<(usize, Duration)> {
        let started = Instant::now();
        let secrets = SecretsKey::parse(&self.secrets)?;
        let trusted = self.state.public_key();
        let state = app_state(
            database,
            compiled,
            trusted,
            SecretKey::generate()?,
            secrets,
            Settings::default(),
        )
        .await?;
        let restored = plinth_marketplace::installs::restore_all(&state).await?;
        Ok((restored, started.elapsed()))
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "{path}: {status} {value}");
        Ok(value)
    }

    /// Publishes hello and counter under `examples`, approved by the operator, and raises the
    /// enterprise plan's API rate out of the way (the benchmarks measure the platform, not the
    /// plan's limit).
    pub async fn publish_examples(&self) -> Result<()> {
        use reqwest::Method;
        self.call(
            Method::PUT,
            "/v1/plans/enterprise",
            &self.operator,
            Some(json!({"api_requests_per_minute": 100_000_000})),
        )
        .await?;
        self.call(
            Method::POST,
            "/v1/publishers",
            &self.operator,
            Some(json!({"namespace": "examples", "name": "Examples"})),
        )
        .await?;
        let key = SecretKey::generate()?;
        let public_key = key.public_key().to_string();
        let issued = self
            .call(
                Method::POST,
                "/v1/publishers/examples/keys/challenges",
                &self.operator,
                Some(json!({"public_key": public_key})),
            )
            .await?;
        let challenge = issued["challenge"].as_str().context("challenge")?;
        self.call(
            Method::POST,
            "/v1/publishers/examples/keys",
            &self.operator,
            Some(json!({"public_key": public_key, "challenge": challenge,
                        "signature": key.prove_possession("examples", challenge).to_string()})),
        )
        .await?;
        let reviewer = self.reviewer().await?;
        for plugin in [plinth_test_artifacts::HELLO, plinth_test_artifacts::COUNTER] {
            let manifest = std::fs::read_to_string(Path::new(plugin.dir).join("plinth.toml"))?;
            let mut package = Package::new(manifest, std::fs::read(plugin.wasm)?, None, None)?;
            package.sign(&key);
            let response = self
                .client
                .post(format!("{}/v1/submissions", self.base))
                .bearer_auth(&self.operator)
                .header("content-type", "application/octet-stream")
                .body(package.to_bytes()?)
                .send()
                .await?;
            let submission: Value = response.json().await?;
            let id = submission["id"].as_str().context("submission id")?;
            self.call(
                Method::POST,
                &format!("/v1/submissions/{id}/decision"),
                &reviewer,
                Some(json!({"decision": "approve", "reason": "bench"})),
            )
            .await?;
        }
        Ok(())
    }

    /// A reviewer who is no member of `examples` (the operator published it).
    async fn reviewer(&self) -> Result<String> {
        use reqwest::Method;
        let password = "a long enough password";
        let account = self
            .client
            .post(format!("{}/v1/accounts", self.base))
            .json(&json!({"email": "rev@bench.test", "password": password, "name": "Rev"}))
            .send()
            .await?
            .json::<Value>()
            .await?;
        let id = account["id"].as_str().context("account id")?;
        self.call(
            Method::PUT,
            &format!("/v1/accounts/{id}/roles"),
            &self.operator,
            Some(json!({"roles": ["reviewer"]})),
        )
        .await?;
        let session = self
            .client
            .post(format!("{}/v1/tokens", self.base))
            .json(&json!({"email": "rev@bench.test", "password": password}))
            .send()
            .await?
            .json::<Value>()
            .await?;
        Ok(session["token"].as_str().context("token")?.to_owned())
    }

    /// Creates tenant `slug` on the enterprise plan with `plugins` installed; returns
    /// (slug, tenant API key).
    pub async fn tenant(&self, slug: &str, plugins: &[&str]) -> Result<(String, String)> {
        use reqwest::Method;
        self.call(
            Method::POST,
            "/v1/tenants",
            &self.operator,
            Some(json!({"slug": slug, "name": slug, "plan": "enterprise"})),
        )
        .await?;
        for plugin in plugins {
            let shown = self
                .call(
                    Method::GET,
                    &format!("/v1/plugins/{plugin}/versions/0.1.0"),
                    &self.operator,
                    None,
                )
                .await?;
            self.call(
                Method::POST,
                &format!("/v1/tenants/{slug}/installs"),
                &self.operator,
                Some(json!({"plugin": plugin, "permissions_digest": shown["permissions_digest"]})),
            )
            .await?;
        }
        let key = self
            .call(
                Method::POST,
                &format!("/v1/tenants/{slug}/api-keys"),
                &self.operator,
                Some(json!({"name": "bench"})),
            )
            .await?;
        Ok((
            slug.to_owned(),
            key["key"].as_str().context("key")?.to_owned(),
        ))
    }

    /// Events to `targets` ((tenant slug, API key), topic) as [`load::Target`]s.
    pub fn event_targets(&self, targets: &[((String, String), &'static str)]) -> Vec<load::Target> {
        targets
            .iter()
            .map(|((slug, key), topic)| load::Target {
                url: format!("{}/v1/tenants/{slug}/events", self.base),
                bearer: Some(key.clone()),
                body: json!({"topic": topic, "payload": payload_of(topic)}),
            })
            .collect()
    }

    /// Events per second of `Host::dispatch` called in-process by `tasks` tasks for `slug`.
    pub async fn in_process_rate(&self, slug: &str, tasks: usize) -> Result<f64> {
        let runtime = self.state.runtime()?;
        let tenant_id: String = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
            .bind(slug)
            .fetch_one(self.state.db().pool())
            .await?;
        let per_task = 2000;
        let started = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let host = Arc::clone(&runtime.host);
            let tenant_id = tenant_id.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..per_task {
                    let event = plinth_host::Event {
                        id: format!("{t}-{i}"),
                        topic: "greet".to_owned(),
                        payload: b"\"Ada\"".to_vec(),
                        depth: 0,
                    };
                    let budget = Arc::new(plinth_host::EventBudget::new(1000));
                    let delivered = host.dispatch(&tenant_id, event, &budget).await;
                    ensure!(
                        delivered.len() == 1 && delivered[0].invocation.result.is_ok(),
                        "in-process dispatch failed"
                    );
                }
                anyhow::Ok(())
            }));
        }
        for handle in handles {
            handle.await??;
        }
        Ok((tasks * per_task) as f64 / started.elapsed().as_secs_f64())
    }
}

/// The payload each example plugin's topic takes.
fn payload_of(topic: &str) -> Value {
    if topic == "greet" {
        json!("Ada")
    } else {
        json!({})
    }
}

/// Whether an events answer delivered to one install that answered.
pub fn delivered(body: &Value) -> bool {
    body["results"][0]["error"].is_null() && !body["results"][0]["output"].is_null()
}

/// The resident set size of this process, from /proc.
pub fn rss_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .context("no VmRSS")?
        .parse()?;
    Ok(kib / 1024.0)
}
