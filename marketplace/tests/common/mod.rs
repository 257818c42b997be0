//! A marketplace server per test, on SQLite or PostgreSQL, and an HTTP client for it.
//!
//! Each storage test is written once as `async fn(TestApp) -> Result<()>` and run on both
//! backends by `on_both_backends!(name, …)`, which makes `name::sqlite` and `name::postgres`.

#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses part of it"
)]

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::{AppState, Db, Settings};
use plinth_package::SecretKey;
use plinth_test_support::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Runs each named `async fn(TestApp) -> anyhow::Result<()>` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::common::TestApp::start_sqlite().await.expect("start on SQLite");
                super::$name(app).await.expect("test on SQLite");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = $crate::common::TestApp::start_postgres(stringify!($name))
                    .await
                    .expect("start on PostgreSQL");
                super::$name(app).await.expect("test on PostgreSQL");
            }
        }
    )*};
}

/// Runs each named `async fn(TestApp) -> anyhow::Result<()>` on SQLite and on PostgreSQL,
/// with a host (installs and events work).
#[macro_export]
macro_rules! on_both_backends_with_host {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::common::TestApp::start_sqlite_with_host().await.expect("start on SQLite");
                super::$name(app).await.expect("test on SQLite");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = $crate::common::TestApp::start_postgres_with_host(stringify!($name))
                    .await
                    .expect("start on PostgreSQL");
                super::$name(app).await.expect("test on PostgreSQL");
            }
        }
    )*};
}

/// Runs each named `async fn(TestApp) -> anyhow::Result<()>` on SQLite and on PostgreSQL, on
/// servers started with the settings `$settings()` makes; `host $settings => …` starts them with
/// a host.
#[macro_export]
macro_rules! on_both_backends_with_settings {
    (host $settings:ident => $($name:ident),* $(,)?) => {
        $crate::on_both_backends_with_settings!(@started start_with_host_settings, $settings => $($name),*);
    };
    ($settings:ident => $($name:ident),* $(,)?) => {
        $crate::on_both_backends_with_settings!(@started start, $settings => $($name),*);
    };
    (@started $start:ident, $settings:ident => $($name:ident),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let database = plinth_test_support::TestDatabase::sqlite().expect("a SQLite database");
                let app = $crate::common::TestApp::$start(database, super::$settings())
                    .await
                    .expect("start on SQLite");
                super::$name(app).await.expect("test on SQLite");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let database = plinth_test_support::TestDatabase::postgres(stringify!($name))
                    .await
                    .expect("a PostgreSQL schema");
                let app = $crate::common::TestApp::$start(database, super::$settings())
                    .await
                    .expect("start on PostgreSQL");
                super::$name(app).await.expect("test on PostgreSQL");
            }
        }
    )*};
}

/// A running marketplace on a fresh database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client for it.
    pub client: reqwest::Client,
    /// The state the server runs with (its database, key, settings).
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    _database: TestDatabase,
    _cache: Option<tempfile::TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response: status and JSON body (`Value::Null` when there is none).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
}

impl Reply {
    /// The error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The message of an error reply.
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    /// Fails unless the status is `status`.
    pub fn expect(self, status: StatusCode) -> Result<Reply> {
        ensure!(
            self.status == status,
            "expected {status}, got {} with {}",
            self.status,
            self.body
        );
        Ok(self)
    }

    /// Fails unless the status is `status` and the error code `code`.
    pub fn expect_error(self, status: StatusCode, code: &str) -> Result<Reply> {
        ensure!(
            self.status == status && self.code() == code,
            "expected {status} {code}, got {} with {}",
            self.status,
            self.body
        );
        ensure!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error without a message: {}",
            self.body
        );
        Ok(self)
    }
}

impl TestApp {
    pub async fn start_sqlite() -> Result<TestApp> {
        TestApp::start(TestDatabase::sqlite()?, Settings::default()).await
    }

    pub async fn start_postgres(prefix: &str) -> Result<TestApp> {
        TestApp::start(TestDatabase::postgres(prefix).await?, Settings::default()).await
    }

    /// Starts a server with a host (installs and events work) on a fresh SQLite database.
    pub async fn start_sqlite_with_host() -> Result<TestApp> {
        TestApp::start_with_host(TestDatabase::sqlite()?).await
    }

    /// Starts a server with a host on a fresh PostgreSQL schema.
    pub async fn start_postgres_with_host(prefix: &str) -> Result<TestApp> {
        TestApp::start_with_host(TestDatabase::postgres(prefix).await?).await
    }

    /// Starts a server on `database` with `settings` and no host.
    pub async fn start(database: TestDatabase, settings: Settings) -> Result<TestApp> {
        TestApp::start_state(database, |db| {
            Ok(AppState::new(db, settings, SecretKey::generate()?))
        })
        .await
    }

    /// Starts a server on `database` driving a host that trusts the server's own key, keeps
    /// kv data in the same database (a separate file on SQLite) and may call loopback.
    pub async fn start_with_host(database: TestDatabase) -> Result<TestApp> {
        TestApp::start_with_host_settings(database, Settings::default()).await
    }

    /// As [`TestApp::start_with_host`], with `settings`.
    pub async fn start_with_host_settings(
        database: TestDatabase,
        settings: Settings,
    ) -> Result<TestApp> {
        let kv_url = match &database {
            TestDatabase::Sqlite(dir) => {
                format!("sqlite://{}?mode=rwc", dir.path().join("kv.db").display())
            }
            TestDatabase::Postgres(schema) => schema.url(),
        };
        let cache = tempfile::tempdir()?;
        let cache_dir = cache.path().to_path_buf();
        let kv = plinth_host::kv::KvStore::connect(&kv_url).await?;
        let key = SecretKey::generate()?;
        let mut config = plinth_host::HostConfig::new(
            cache_dir,
            plinth_host::trust::TrustPolicy::enforce(vec![key.public_key()]),
        );
        config.kv = Some(kv);
        config.egress = plinth_host::egress::CheckedResolver::system(true);
        // A fresh upgrade is rolled back after 3 calls with more than half failing (the
        // versions tests trigger it without waiting for the default 10 calls).
        config.policies.rollout = plinth_host::breaker::RolloutPolicy {
            observe_for: Duration::from_secs(600),
            min_calls: 3,
            max_failure_rate: 0.5,
        };
        let host = std::sync::Arc::new(plinth_host::Host::new(config)?);
        let (secrets, _) = plinth_marketplace::secrets::SecretsKey::generate()?;
        TestApp::start_state(database, move |db| {
            Ok(AppState::with_runtime(
                db,
                settings,
                key,
                plinth_marketplace::Runtime { host, secrets },
            ))
        })
        .await
    }

    /// A second host process's state on this app's database (no server): its own host, with
    /// the installs of the database restored into it, trusting the same marketplace key.
    pub async fn another_host(&self) -> Result<AppState> {
        let kv_url = match &self._database {
            TestDatabase::Sqlite(dir) => {
                format!("sqlite://{}?mode=rwc", dir.path().join("kv.db").display())
            }
            TestDatabase::Postgres(schema) => schema.url(),
        };
        let cache = tempfile::tempdir()?.keep();
        let kv = plinth_host::kv::KvStore::connect(&kv_url).await?;
        let key = SecretKey::parse(&self.state.signing_key().to_file_string())?;
        let mut config = plinth_host::HostConfig::new(
            cache,
            plinth_host::trust::TrustPolicy::enforce(vec![key.public_key()]),
        );
        config.kv = Some(kv);
        let host = std::sync::Arc::new(plinth_host::Host::new(config)?);
        let (secrets, _) = plinth_marketplace::secrets::SecretsKey::generate()?;
        let (audit_key, _) = plinth_marketplace::audit::key::AuditKey::generate()?;
        let db = Db::connect(&self._database.url())
            .await?
            .with_audit_key(audit_key);
        let state = AppState::with_runtime(
            db,
            self.state.settings().clone(),
            key,
            plinth_marketplace::Runtime { host, secrets },
        );
        plinth_marketplace::installs::restore_all(&state).await?;
        Ok(state)
    }

    async fn start_state(
        database: TestDatabase,
        make: impl FnOnce(Db) -> Result<AppState>,
    ) -> Result<TestApp> {
        let (audit_key, _) = plinth_marketplace::audit::key::AuditKey::generate()?;
        let db = Db::connect(&database.url())
            .await
            .with_context(|| format!("opening the {} test database", database.backend()))?
            .with_audit_key(audit_key);
        let state = make(db)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let served = state.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = plinth_marketplace::server::serve(
                listener,
                served,
                shutdown,
                Duration::from_secs(5),
            )
            .await
            {
                eprintln!("test server failed: {e}");
            }
        });
        Ok(TestApp {
            base,
            client: reqwest::Client::new(),
            state,
            stop: Some(stop),
            _database: database,
            _cache: None,
        })
    }

    /// The marketplace's database.
    pub fn db(&self) -> &Db {
        self.state.db()
    }

    /// Sends `method path` with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Reply> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        reply(request.send().await?).await
    }

    /// Sends raw bytes (e.g. a package, or malformed JSON).
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Reply> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(bytes);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        reply(request.send().await?).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Reply> {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Result<Reply> {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Result<Reply> {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Result<Reply> {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Result<Reply> {
        self.call(Method::DELETE, path, token, None).await
    }

    /// Creates the first operator; returns its API key.
    pub async fn operator(&self) -> Result<String> {
        let made = plinth_marketplace::accounts::bootstrap_operator(
            self.db(),
            "operator@plinth.test",
            "Operator",
            None,
        )
        .await?;
        Ok(made.token)
    }

    /// Signs up `email` (password `password-of-<email>`) and logs in; returns (id, token).
    pub async fn user(&self, email: &str) -> Result<(String, String)> {
        let password = format!("password-of-{email}");
        let account = self
            .post(
                "/v1/accounts",
                None,
                json!({"email": email, "password": password, "name": email}),
            )
            .await?
            .expect(StatusCode::CREATED)?;
        let session = self
            .post(
                "/v1/tokens",
                None,
                json!({"email": email, "password": password}),
            )
            .await?
            .expect(StatusCode::CREATED)?;
        let id = account.body["id"]
            .as_str()
            .context("account id")?
            .to_owned();
        let token = session.body["token"].as_str().context("token")?.to_owned();
        Ok((id, token))
    }

    /// Creates tenant `slug` (named `Tenant <slug>`) owned by `token`'s user.
    pub async fn tenant(&self, token: &str, slug: &str) -> Result<()> {
        self.post(
            "/v1/tenants",
            Some(token),
            json!({"slug": slug, "name": format!("Tenant {slug}")}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
        Ok(())
    }

    /// A new API key of tenant `slug`, made by `token` (an admin of it).
    pub async fn api_key(&self, token: &str, slug: &str) -> Result<String> {
        let made = self
            .post(
                &format!("/v1/tenants/{slug}/api-keys"),
                Some(token),
                json!({"name": "backend"}),
            )
            .await?
            .expect(StatusCode::CREATED)?;
        Ok(made.body["key"].as_str().context("key")?.to_owned())
    }

    /// The actions of the audit log's first page, as `operator` reads it, newest first.
    pub async fn audit_actions(&self, operator: &str) -> Result<Vec<String>> {
        let page = self
            .get("/v1/audit", Some(operator))
            .await?
            .expect(StatusCode::OK)?;
        Ok(page.body["items"]
            .as_array()
            .context("items")?
            .iter()
            .filter_map(|e| e["action"].as_str().map(str::to_owned))
            .collect())
    }

    /// Signs up `email` and has the operator (bootstrapped if `operator` is None) make it a
    /// reviewer; returns (id, token).
    pub async fn reviewer(&self, operator: &str, email: &str) -> Result<(String, String)> {
        let (id, token) = self.user(email).await?;
        self.put(
            &format!("/v1/accounts/{id}/roles"),
            Some(operator),
            json!({"roles": ["reviewer"]}),
        )
        .await?
        .expect(StatusCode::OK)?;
        Ok((id, token))
    }
}

/// The [`Reply`] of `response`.
pub async fn reply(response: reqwest::Response) -> Result<Reply> {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await?.to_vec();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Ok(Reply {
        status,
        headers,
        body,
        bytes,
    })
}
