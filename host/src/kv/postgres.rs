//! The PostgreSQL backend of the kv store.
//!
//! Every write first locks the namespace's `kv_usage` row, then reads and changes entries, then
//! updates the row, all in one transaction; a set is one statement (the `kv_set` function of
//! `migrations/postgres/0002_kv_set.sql`), so it holds the lock for no round trip to the client.
//! Writers of one namespace therefore queue on that row (and always take locks in the same
//! order, so they cannot deadlock), and each one's reads, taken after the lock under READ
//! COMMITTED, see everything the previous writer committed. Writers of different namespaces
//! never wait for each other.

use sqlx::postgres::{PgDatabaseError, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};

use super::{
    DELETE_ENTRIES_SQL, DELETE_USAGE_SQL, GET_SQL, KeyRange, KvError, KvQuota, KvUsage, Namespace,
    RELEASE_SQL, USAGE_SQL, entry_bytes, from_db, list_sql, to_db,
};

/// The PostgreSQL migrations: every file of `host/migrations/postgres/`, embedded.
pub(super) fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("migrations/postgres")
}

/// One write, its quota check and its usage in one statement (migration `0002_kv_set.sql`).
const SET_SQL: &str = "SELECT kv_set($1, $2, $3, $4, $5, $6, $7)";

/// The SQLSTATE `kv_set` raises when a quota refuses the write.
const REFUSED: &str = "PK001";

/// Locks the namespace's usage row if it exists (writers that only remove).
const LOCK_EXISTING_USAGE_SQL: &str =
    "SELECT 1 FROM kv_usage WHERE tenant = $1 AND plugin = $2 FOR UPDATE";

const DELETE_ENTRY_SQL: &str = "DELETE FROM kv_entries WHERE tenant = $1 AND plugin = $2 \
     AND key = $3 RETURNING octet_length(value)::BIGINT";

pub(super) async fn connect(url: &str) -> Result<PgPool, KvError> {
    Ok(PgPoolOptions::new().connect(url).await?)
}

pub(super) async fn get(
    pool: &PgPool,
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
    pool: &PgPool,
    ns: &Namespace,
    key: &str,
    value: &[u8],
    quota: &KvQuota,
) -> Result<(), KvError> {
    let written = sqlx::query(SET_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(key)
        .bind(value)
        .bind(to_db(quota.max_bytes))
        .bind(quota.max_keys.map(to_db))
        .bind(quota.tenant_max_bytes.map(to_db))
        .execute(pool)
        .await;
    match written {
        Ok(_) => Ok(()),
        Err(error) => Err(refusal(&error).unwrap_or_else(|| error.into())),
    }
}

/// The quota refusal `kv_set` raised (SQLSTATE [`REFUSED`]), if that is what `error` is.
fn refusal(error: &sqlx::Error) -> Option<KvError> {
    let raised = error
        .as_database_error()?
        .try_downcast_ref::<PgDatabaseError>()?;
    if raised.code() != REFUSED {
        return None;
    }
    let quota = match raised.message() {
        "bytes" => "bytes",
        "keys" => "keys",
        "tenant bytes" => "tenant bytes",
        _ => return None,
    };
    let (limit, would_use) = raised.detail()?.split_once(' ')?;
    Some(KvError::QuotaExceeded {
        quota,
        limit: limit.parse().ok()?,
        would_use: would_use.parse().ok()?,
    })
}

pub(super) async fn delete(pool: &PgPool, ns: &Namespace, key: &str) -> Result<bool, KvError> {
    let mut tx = pool.begin().await?;
    // No usage row means no entries: `set` creates the row before its entry, and
    // `delete_namespace` removes both together.
    let locked = sqlx::query(LOCK_EXISTING_USAGE_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .fetch_optional(&mut *tx)
        .await?;
    if locked.is_none() {
        tx.rollback().await?;
        return Ok(false);
    }
    let removed: Option<i64> = sqlx::query(DELETE_ENTRY_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    let Some(value_len) = removed else {
        tx.rollback().await?;
        return Ok(false);
    };
    sqlx::query(RELEASE_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(to_db(entry_bytes(key, from_db(value_len))))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn list_keys(
    pool: &PgPool,
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

pub(super) async fn usage(pool: &PgPool, ns: &Namespace) -> Result<KvUsage, KvError> {
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

pub(super) async fn delete_namespace(pool: &PgPool, ns: &Namespace) -> Result<u64, KvError> {
    let mut tx = pool.begin().await?;
    sqlx::query(LOCK_EXISTING_USAGE_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .fetch_optional(&mut *tx)
        .await?;
    let removed = sqlx::query(DELETE_ENTRIES_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query(DELETE_USAGE_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(removed)
}

fn usage_from(row: &PgRow) -> Result<KvUsage, sqlx::Error> {
    Ok(KvUsage {
        bytes: from_db(row.try_get("bytes")?),
        keys: from_db(row.try_get("keys")?),
    })
}
