//! The PostgreSQL backend of the kv store.
//!
//! Every write first locks the namespace's `kv_usage` row, then reads and changes entries, then
//! updates the row, all in one transaction. Writers of one namespace therefore queue on that
//! row (and always take locks in the same order, so they cannot deadlock), and each one's reads,
//! taken after the lock under READ COMMITTED, see everything the previous writer committed.
//! Writers of different namespaces never wait for each other.

use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};

use super::{
    DELETE_ENTRIES_SQL, DELETE_USAGE_SQL, GET_SQL, KeyRange, KvError, KvQuota, KvUsage, Namespace,
    RELEASE_SQL, TENANT_OTHERS_SQL, USAGE_SQL, charge, charge_tenant, entry_bytes, from_db,
    len_u64, list_sql, to_db,
};

/// The PostgreSQL migrations: every file of `host/migrations/postgres/`, embedded.
pub(super) fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("migrations/postgres")
}

/// Creates the namespace's usage row if missing and locks it either way, returning the usage.
/// (`ON CONFLICT DO UPDATE` locks the existing row and reads its latest committed version; it
/// also copes with a concurrent `delete_namespace` removing the row.)
const LOCK_USAGE_SQL: &str = "INSERT INTO kv_usage (tenant, plugin) VALUES ($1, $2) \
     ON CONFLICT (tenant, plugin) DO UPDATE SET bytes = kv_usage.bytes \
     RETURNING bytes, keys";

/// Serializes the tenant's growing writes until the transaction ends (an advisory lock keyed
/// by the tenant).
const LOCK_TENANT_SQL: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('plinth-kv:' || $1, 0))";

/// Locks the namespace's usage row if it exists (writers that only remove).
const LOCK_EXISTING_USAGE_SQL: &str =
    "SELECT 1 FROM kv_usage WHERE tenant = $1 AND plugin = $2 FOR UPDATE";

const OLD_VALUE_LEN_SQL: &str = "SELECT octet_length(value)::BIGINT FROM kv_entries \
     WHERE tenant = $1 AND plugin = $2 AND key = $3";

const UPSERT_ENTRY_SQL: &str = "INSERT INTO kv_entries (tenant, plugin, key, value) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (tenant, plugin, key) DO UPDATE SET value = EXCLUDED.value";

const STORE_USAGE_SQL: &str =
    "UPDATE kv_usage SET bytes = $3, keys = $4 WHERE tenant = $1 AND plugin = $2";

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
    let mut tx = pool.begin().await?;
    if quota.tenant_max_bytes.is_some() {
        // One tenant-wide writer at a time, so two installs cannot together pass the quota
        // (SQLite's `BEGIN IMMEDIATE` serializes all writers already).
        sqlx::query(LOCK_TENANT_SQL)
            .bind(&ns.tenant)
            .execute(&mut *tx)
            .await?;
    }
    let current = sqlx::query(LOCK_USAGE_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .fetch_one(&mut *tx)
        .await?;
    let current = usage_from(&current)?;
    let old_value_len: Option<i64> = sqlx::query(OLD_VALUE_LEN_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(key)
        .fetch_optional(&mut *tx)
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
            .fetch_one(&mut *tx)
            .await?;
        charge_tenant(from_db(others), after.bytes, quota)?;
    }

    sqlx::query(UPSERT_ENTRY_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    sqlx::query(STORE_USAGE_SQL)
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(to_db(after.bytes))
        .bind(to_db(after.keys))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
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
