//! The SQLite backend of the kv store.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock before
//! the first read: the quota is checked against usage no other writer can change until commit.
//! SQLite has one writer at a time, and writers that find the lock taken sleep in its busy
//! handler for growing intervals, so under load they form a convoy with long tails. Writers of
//! this process therefore take turns in one first-come-first-served queue ([`SqliteKv`]) and
//! meet the lock free; the busy timeout is left for other processes on the same file. Reads
//! never queue: in WAL mode they see the last commit without waiting for the writer.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{
    DELETE_ENTRIES_SQL, DELETE_TENANT_ENTRIES_SQL, DELETE_TENANT_USAGE_SQL, DELETE_USAGE_SQL,
    GET_SQL, KeyRange, KvError, KvQuota, KvUsage, Namespace, RELEASE_SQL, TENANT_OTHERS_SQL,
    USAGE_SQL, charge, charge_tenant, entry_bytes, from_db, len_u64, list_sql, to_db,
};

/// The SQLite migrations: every file of `host/migrations/sqlite/`, embedded.
pub(super) fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("migrations/sqlite")
}

/// How long a writer waits for another writer's lock before giving up as unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const OLD_VALUE_LEN_SQL: &str =
    "SELECT length(value) FROM kv_entries WHERE tenant = $1 AND plugin = $2 AND key = $3";

const UPSERT_ENTRY_SQL: &str = "INSERT INTO kv_entries (tenant, plugin, key, value) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (tenant, plugin, key) DO UPDATE SET value = excluded.value";

const UPSERT_USAGE_SQL: &str = "INSERT INTO kv_usage (tenant, plugin, bytes, keys) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (tenant, plugin) DO UPDATE SET bytes = excluded.bytes, keys = excluded.keys";

const DELETE_ENTRY_SQL: &str = "DELETE FROM kv_entries WHERE tenant = $1 AND plugin = $2 \
     AND key = $3 RETURNING length(value)";

/// A SQLite kv database: its pool, and the queue its writers take turns in.
#[derive(Clone, Debug)]
pub struct SqliteKv {
    pool: SqlitePool,
    writers: Arc<Mutex<()>>,
}

/// A write transaction, holding this writer's turn until it ends.
struct Write {
    /// Declared first, so it ends (rolls back, if not committed) before the turn is given up.
    tx: Transaction<'static, Sqlite>,
    _turn: OwnedMutexGuard<()>,
}

impl Write {
    async fn commit(self) -> Result<(), sqlx::Error> {
        let Write { tx, _turn } = self;
        tx.commit().await
    }
}

impl SqliteKv {
    /// The kv store over `pool` (WAL, with a busy timeout, as [`connect`] opens it).
    pub(super) fn new(pool: SqlitePool) -> SqliteKv {
        SqliteKv {
            pool,
            writers: Arc::new(Mutex::new(())),
        }
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Begins a write transaction once the writers before it are done (tokio's mutex is
    /// first come, first served).
    async fn write(&self) -> Result<Write, sqlx::Error> {
        let turn = Arc::clone(&self.writers).lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Write { tx, _turn: turn })
    }
}

pub(super) async fn connect(url: &str) -> Result<SqlitePool, KvError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT);
    Ok(SqlitePoolOptions::new().connect_with(options).await?)
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

pub(super) async fn set(
    kv: &SqliteKv,
    ns: &Namespace,
    key: &str,
    value: &[u8],
    quota: &KvQuota,
) -> Result<(), KvError> {
    let mut write = kv.write().await?;
    let current = sqlx::query(USAGE_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .fetch_optional(&mut *write.tx)
        .await?
        .map(|row| usage_from(&row))
        .transpose()?
        .unwrap_or_default();
    let old_value_len: Option<i64> = sqlx::query(OLD_VALUE_LEN_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(key)
        .fetch_optional(&mut *write.tx)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    let old = old_value_len.map(|len| entry_bytes(key, from_db(len)));
    // On refusal the transaction is dropped, which rolls it back: nothing is written.
    let after = charge(current, old, entry_bytes(key, len_u64(value.len())), quota)?;
    if quota.tenant_max_bytes.is_some() && after.bytes > current.bytes {
        let others: i64 = sqlx::query_scalar(TENANT_OTHERS_SQL)
            .bind(&ns.tenant)
            .bind(&ns.plugin)
            .fetch_one(&mut *write.tx)
            .await?;
        charge_tenant(from_db(others), after.bytes, quota)?;
    }

    sqlx::query(UPSERT_ENTRY_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(key)
        .bind(value)
        .execute(&mut *write.tx)
        .await?;
    sqlx::query(UPSERT_USAGE_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(to_db(after.bytes))
        .bind(to_db(after.keys))
        .execute(&mut *write.tx)
        .await?;
    write.commit().await?;
    Ok(())
}

pub(super) async fn delete(kv: &SqliteKv, ns: &Namespace, key: &str) -> Result<bool, KvError> {
    let mut write = kv.write().await?;
    let removed: Option<i64> = sqlx::query(DELETE_ENTRY_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(key)
        .fetch_optional(&mut *write.tx)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    let Some(value_len) = removed else {
        drop(write);
        return Ok(false);
    };
    sqlx::query(RELEASE_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(to_db(entry_bytes(key, from_db(value_len))))
        .execute(&mut *write.tx)
        .await?;
    write.commit().await?;
    Ok(true)
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

pub(super) async fn delete_namespace(kv: &SqliteKv, ns: &Namespace) -> Result<u64, KvError> {
    let mut write = kv.write().await?;
    let removed = sqlx::query(DELETE_ENTRIES_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .execute(&mut *write.tx)
        .await?
        .rows_affected();
    sqlx::query(DELETE_USAGE_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .execute(&mut *write.tx)
        .await?;
    write.commit().await?;
    Ok(removed)
}

pub(super) async fn delete_tenant(kv: &SqliteKv, tenant: &str) -> Result<u64, KvError> {
    let mut write = kv.write().await?;
    let removed = sqlx::query(DELETE_TENANT_ENTRIES_SQL)
        .bind(tenant)
        .execute(&mut *write.tx)
        .await?
        .rows_affected();
    sqlx::query(DELETE_TENANT_USAGE_SQL)
        .bind(tenant)
        .execute(&mut *write.tx)
        .await?;
    write.commit().await?;
    Ok(removed)
}

fn usage_from(row: &SqliteRow) -> Result<KvUsage, sqlx::Error> {
    Ok(KvUsage {
        bytes: from_db(row.try_get("bytes")?),
        keys: from_db(row.try_get("keys")?),
    })
}
