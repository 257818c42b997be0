//! The SQLite backend of the kv store: reads through a connection pool (WAL: they never wait
//! for the writer), writes through the one writer of [`super::sqlite_writer`].

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::sqlite_writer::{Done, Write, Writer};
use super::{GET_SQL, KeyRange, KvError, KvUsage, Namespace, USAGE_SQL, from_db, list_sql};

/// The SQLite migrations: every file of `host/migrations/sqlite/`, embedded.
pub(super) fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("migrations/sqlite")
}

/// How long a writer waits for another process's write lock before giving up as unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A SQLite kv database: the pool its reads use and the writer its writes go to.
#[derive(Clone, Debug)]
pub struct SqliteKv {
    pool: SqlitePool,
    writer: Writer,
}

impl SqliteKv {
    /// The pool, for reads.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Applies `write` through the writer.
    pub(super) async fn write(&self, write: Write) -> Result<Done, KvError> {
        self.writer.write(write).await
    }

    /// Stops the writer and closes the pool: later calls fail as unavailable.
    pub(super) async fn close(&self) {
        self.writer.stop().await;
        self.pool.close().await;
    }
}

pub(super) async fn connect(url: &str) -> Result<SqliteKv, KvError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .connect_with(options.clone())
        .await?;
    // sqlx names an in-memory database `file:sqlx-in-memory-<n>` and shares its cache among
    // the pool's connections; the writer opens the same one.
    let in_memory = options
        .get_filename()
        .to_str()
        .is_some_and(|name| name.starts_with("file:sqlx-in-memory-"));
    let writer = Writer::start(options.get_filename(), in_memory, BUSY_TIMEOUT)?;
    Ok(SqliteKv { pool, writer })
}

pub(super) async fn get(
    pool: &SqlitePool,
    ns: &Namespace,
    key: &str,
) -> Result<Option<Vec<u8>>, KvError> {
    let row = sqlx::query(GET_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(key)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

pub(super) async fn list_keys(
    pool: &SqlitePool,
    ns: &Namespace,
    range: &KeyRange<'_>,
    fetch: i64,
) -> Result<Vec<String>, KvError> {
    let mut query = sqlx::query(list_sql(range))
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(range.lower);
    if let Some(upper) = &range.upper {
        query = query.bind(upper);
    }
    let rows = query.bind(fetch).fetch_all(pool).await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?)
}

pub(super) async fn usage(pool: &SqlitePool, ns: &Namespace) -> Result<KvUsage, KvError> {
    let row = sqlx::query(USAGE_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .fetch_optional(pool)
        .await?;
    Ok(row
        .map(|row| usage_from(&row))
        .transpose()?
        .unwrap_or_default())
}

fn usage_from(row: &SqliteRow) -> Result<KvUsage, sqlx::Error> {
    Ok(KvUsage {
        bytes: from_db(row.try_get("bytes")?),
        keys: from_db(row.try_get("keys")?),
    })
}
