//! A private PostgreSQL schema per test, so tests run in parallel against one database.
//!
//! The server is `PLINTH_TEST_POSTGRES_URL`, by default `postgres://postgres@127.0.0.1:5432/test`.
//! A test that asks for a schema FAILS when the server is unreachable: a skipped storage test
//! proves nothing.
//!
//! The schema belongs to, and tests connect as, an ordinary role ([`APP_ROLE`], made on first
//! use; the server's trust authentication lets it in), not the server URL's superuser: a
//! superuser is above row-level security, and the tests are to run as the application does in
//! production, under its policies. `PLINTH_TEST_POSTGRES_APP_ROLE=` (empty) connects as the
//! server URL's user instead.

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

/// The role tests connect as unless `PLINTH_TEST_POSTGRES_APP_ROLE` names another.
pub const APP_ROLE: &str = "plinth_app";

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
    /// Whom the schema's URL connects as, when not the server URL's user.
    role: Option<String>,
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
        let role = app_role();
        if let Some(role) = &role {
            ensure_role(&mut admin, role).await?;
            admin
                .execute(AssertSqlSafe(format!(
                    "ALTER SCHEMA \"{name}\" OWNER TO \"{role}\""
                )))
                .await
                .with_context(|| format!("giving schema {name} to {role}"))?;
        }
        admin.close().await?;
        Ok(Self { name, server, role })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL whose connections (as the schema's owner) have this schema alone on their
    /// `search_path`.
    pub fn url(&self) -> String {
        let server = match &self.role {
            Some(role) => with_user(&self.server, role),
            None => self.server.clone(),
        };
        let separator = if server.contains('?') { '&' } else { '?' };
        format!("{server}{separator}options[search_path]={}", self.name)
    }

    /// A pool whose connections (as the schema's owner) have this schema alone on their
    /// `search_path`.
    pub async fn pool(&self, max_connections: u32) -> anyhow::Result<PgPool> {
        let mut options = PgConnectOptions::from_str(&self.server)?
            .options([("search_path", self.name.as_str())]);
        if let Some(role) = &self.role {
            options = options.username(role);
        }
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

/// The test server's URL as the role tests connect as (see [`APP_ROLE`]).
pub fn app_server_url() -> String {
    match app_role() {
        Some(role) => with_user(&server_url(), &role),
        None => server_url(),
    }
}

/// The role tests connect as: [`APP_ROLE`], or `PLINTH_TEST_POSTGRES_APP_ROLE` (`None` when it
/// is empty: the server URL's user).
fn app_role() -> Option<String> {
    match std::env::var("PLINTH_TEST_POSTGRES_APP_ROLE") {
        Ok(role) if role.is_empty() => None,
        Ok(role) => Some(role),
        Err(_) => Some(APP_ROLE.to_owned()),
    }
}

/// Makes `role` (a login role with no special powers but making schemas in the test
/// database, as a restore does) unless it exists; tests of several processes may race to make
/// it.
async fn ensure_role(admin: &mut PgConnection, role: &str) -> anyhow::Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&mut *admin)
            .await?;
    if !exists {
        make_role(admin, role).await?;
    }
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut *admin)
        .await?;
    // Tests granting at the same moment collide on the catalog row ("tuple concurrently
    // updated"): check first, and try again.
    for _ in 0..20 {
        let granted: bool =
            sqlx::query_scalar("SELECT has_database_privilege($1, current_database(), 'CREATE')")
                .bind(role)
                .fetch_one(&mut *admin)
                .await?;
        if granted {
            return Ok(());
        }
        let grant = admin
            .execute(AssertSqlSafe(format!(
                "GRANT CREATE ON DATABASE \"{database}\" TO \"{role}\""
            )))
            .await;
        if grant.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("could not let {role} create schemas in {database}")
}

async fn make_role(admin: &mut PgConnection, role: &str) -> anyhow::Result<()> {
    let made = admin
        .execute(AssertSqlSafe(format!(
            "CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
        )))
        .await;
    match made {
        Ok(_) => Ok(()),
        // Another test made it first.
        Err(sqlx::Error::Database(e))
            if e.code().as_deref() == Some("42710") || e.code().as_deref() == Some("23505") =>
        {
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("creating role {role}")),
    }
}

/// `url` with its user replaced by `user` (and no password: the test server trusts).
fn with_user(url: &str, user: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{user}@{host}{tail}")
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

#[cfg(test)]
mod tests {
    use super::with_user;

    #[test]
    fn a_url_gets_another_user_and_keeps_the_rest() {
        assert_eq!(
            with_user("postgres://postgres@127.0.0.1:5432/test", "app"),
            "postgres://app@127.0.0.1:5432/test"
        );
        assert_eq!(
            with_user("postgres://u:secret@db:5432/test?sslmode=disable", "app"),
            "postgres://app@db:5432/test?sslmode=disable"
        );
        assert_eq!(
            with_user("postgresql://localhost/test", "app"),
            "postgresql://app@localhost/test"
        );
    }
}
