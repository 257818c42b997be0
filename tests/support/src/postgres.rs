//! A private PostgreSQL schema per test, so tests run in parallel against one database.
//!
//! The server is `PLINTH_TEST_POSTGRES_URL`, by default `postgres://postgres@127.0.0.1:5432/test`.
//! A test that asks for a schema FAILS when the server is unreachable: a skipped storage test
//! proves nothing.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};

/// The server used when `PLINTH_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The longest identifier PostgreSQL keeps whole (`NAMEDATALEN - 1`).
const MAX_IDENTIFIER_BYTES: usize = 63;

/// The test server's URL.
pub fn server_url() -> String {
    std::env::var("PLINTH_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A fresh, empty schema, dropped (with everything in it) when this value is dropped.
#[derive(Debug)]
pub struct TestSchema {
    name: String,
    server: String,
}

impl TestSchema {
    /// Creates a schema named `<prefix>_<random>`, the prefix cut so that the name fits
    /// PostgreSQL's 63 bytes (which would otherwise cut the random part, and two runs of a test
    /// with a long name would collide).
    pub async fn create(prefix: &str) -> anyhow::Result<Self> {
        let server = server_url();
        let suffix = unique_suffix();
        let mut room = MAX_IDENTIFIER_BYTES.saturating_sub(suffix.len() + 1);
        while !prefix.is_char_boundary(room.min(prefix.len())) {
            room -= 1;
        }
        let name = format!("{}_{suffix}", &prefix[..room.min(prefix.len())]);
        let mut admin = PgConnection::connect(&server).await.with_context(|| {
            format!(
                "PostgreSQL is unreachable at {server} (set PLINTH_TEST_POSTGRES_URL, or start it: \
                 pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)"
            )
        })?;
        admin
            .execute(AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .await
            .with_context(|| format!("creating schema {name}"))?;
        admin.close().await?;
        Ok(Self { name, server })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL whose connections have this schema alone on their `search_path`.
    pub fn url(&self) -> String {
        let separator = if self.server.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options[search_path]={}",
            self.server, self.name
        )
    }

    /// A pool whose connections have this schema alone on their `search_path`.
    pub async fn pool(&self, max_connections: u32) -> anyhow::Result<PgPool> {
        let options = PgConnectOptions::from_str(&self.server)?
            .options([("search_path", self.name.as_str())]);
        Ok(PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with its own
        // small runtime does the async work.
        let server = self.server.clone();
        let drop_sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let cleanup = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&server).await?;
                // Never hang a test run on a lock a failed test left behind.
                admin.execute("SET lock_timeout = '10s'").await?;
                admin.execute(AssertSqlSafe(drop_sql)).await?;
                admin.close().await?;
                anyhow::Ok(())
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("could not drop test schema {}: {err:#}", self.name),
            Err(_) => eprintln!("could not drop test schema {}: cleanup panicked", self.name),
        }
    }
}

/// Unique across the tests of this process and, with overwhelming likelihood, across processes.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    format!("{:016x}", hasher.finish())
}
