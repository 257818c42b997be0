//! The kv capability's storage.
//!
//! Each install of a plugin gets its own key space, a [`Namespace`] of (tenant, plugin). The
//! host derives the namespace from the sandbox's identity, never from anything the guest says, so
//! a guest can name only its own keys: tenant A's `"count"` and tenant B's `"count"` are two
//! different rows that no query of one can reach from the other.
//!
//! Writes are bounded by a [`KvQuota`]: a byte budget (the sum over all entries of key bytes plus
//! value bytes) and an optional key count. [`KvStore::set`] checks the quota and writes in one
//! transaction that first takes the namespace's usage row, so concurrent writers cannot together
//! pass the quota.
//!
//! Two backends sit behind the one [`KvStore`] type: SQLite (the embedded default) and
//! PostgreSQL (production, several hosts on one database). Each backend has its own migrations
//! under `host/migrations/<backend>/`, tracked in their own table ([`MIGRATIONS_TABLE`]) so that
//! they never collide with the migrations of other components sharing the database.
//!
//! # Examples
//!
//! ```no_run
//! use plinth_host::kv::{KvQuota, KvStore, Namespace};
//!
//! # async fn demo() -> Result<(), plinth_host::kv::KvError> {
//! let store = KvStore::connect("sqlite://plinth-data/kv.db").await?;
//! let ns = Namespace::new("acme", "com.example.counter");
//! let quota = KvQuota { max_bytes: 1 << 20, max_keys: Some(1000), tenant_max_bytes: None };
//!
//! store.set(&ns, "visits", b"41", &quota).await?;
//! assert_eq!(store.get(&ns, "visits").await?, Some(b"41".to_vec()));
//!
//! let page = store.list_keys(&ns, "vis", None, 100).await?;
//! assert_eq!(page.keys, ["visits"]);
//! # Ok(())
//! # }
//! ```

mod postgres;
mod sqlite;
mod sqlite_writer;

use sqlx::PgPool;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;

use sqlite_writer::{Done, Write};

/// The longest key accepted, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 512;

/// The largest value accepted, in bytes (1 MiB).
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// The most keys one [`KvStore::list_keys`] call returns.
pub const MAX_PAGE: u32 = 1000;

/// The table in which the kv migrations record what they applied.
///
/// Not sqlx's default `_sqlx_migrations`: the marketplace runs its own migrations against the
/// same database, and two migrators sharing one table would each see the other's versions as
/// unknown.
pub const MIGRATIONS_TABLE: &str = "_plinth_kv_migrations";

/// The key space of one install: a tenant and a plugin.
///
/// Built by the host from the sandbox's identity; a guest never chooses it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Namespace {
    /// The tenant the install belongs to.
    pub tenant: String,
    /// The plugin's id.
    pub plugin: String,
}

impl Namespace {
    /// The namespace of `plugin` installed for `tenant`.
    pub fn new(tenant: impl Into<String>, plugin: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            plugin: plugin.into(),
        }
    }
}

/// The limits a namespace's writes are held to.
///
/// A write that would take usage past a limit is refused, unless it does not grow that usage:
/// an install that is already over quota (say, after its plan was lowered) may still replace
/// values with smaller ones and delete keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvQuota {
    /// The most bytes (sum of key and value lengths over all entries) the namespace may hold.
    pub max_bytes: u64,
    /// The most keys the namespace may hold, if limited.
    pub max_keys: Option<u64>,
    /// The most bytes all namespaces of the tenant may hold together, if limited (the plan's
    /// quota). Checked only by writes that grow the namespace.
    pub tenant_max_bytes: Option<u64>,
}

/// What a namespace holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvUsage {
    /// Sum over all entries of key bytes plus value bytes.
    pub bytes: u64,
    /// Number of keys.
    pub keys: u64,
}

/// One page of keys from [`KvStore::list_keys`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// The keys, in ascending byte order.
    pub keys: Vec<String>,
    /// When more keys match, the cursor to pass to the next call (the last key of this page).
    pub next_cursor: Option<String>,
}

/// Why a kv operation failed.
///
/// The first four variants mirror the WIT `kv-error`: they are the guest's to see. `Database`,
/// `Migrate` and `UnsupportedUrl` are host faults.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The write would take the namespace past a quota; nothing was written.
    #[error("the kv {quota} quota of {limit} would be exceeded: the write would use {would_use}")]
    QuotaExceeded {
        /// Which quota: `"bytes"` or `"keys"`.
        quota: &'static str,
        /// The quota's limit.
        limit: u64,
        /// What the namespace would hold had the write gone through.
        would_use: u64,
    },
    /// The key (or a prefix or cursor) is not acceptable; the text says why.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The value is larger than [`MAX_VALUE_BYTES`].
    #[error("the value is {size} bytes; the largest value accepted is {limit} bytes")]
    ValueTooLarge {
        /// The value's size in bytes.
        size: u64,
        /// The largest size accepted.
        limit: u64,
    },
    /// The store cannot be reached or is busy right now; the operation had no effect and may be
    /// retried.
    #[error("the kv store is unavailable: {0}")]
    Unavailable(String),
    /// Any other database failure.
    #[error("kv database error: {0}")]
    Database(#[source] sqlx::Error),
    /// The SQLite writer's database failed (not a "not now": those are [`KvError::Unavailable`]).
    #[error("kv database error: {0}")]
    Storage(String),
    /// Applying the kv migrations failed.
    #[error("kv migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// [`KvStore::connect`] was given a URL of neither `sqlite:` nor `postgres:` (the scheme is
    /// carried; the rest of the URL is not, as it may hold a password).
    #[error("unsupported kv database URL scheme {0:?}: expected sqlite: or postgres:")]
    UnsupportedUrl(String),
}

/// Sorts database errors: the ones that say "not now" (pool exhausted or closed, connection
/// lost, lock contention, deadlock, server shutting down) become [`KvError::Unavailable`]; the
/// rest stay [`KvError::Database`].
impl From<sqlx::Error> for KvError {
    fn from(err: sqlx::Error) -> Self {
        if is_transient(&err) {
            KvError::Unavailable(err.to_string())
        } else {
            KvError::Database(err)
        }
    }
}

fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                let code = pg.code();
                // serialization_failure, deadlock_detected, too_many_connections,
                // admin_shutdown, crash_shutdown, cannot_connect_now, connection exceptions.
                matches!(
                    code,
                    "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03"
                ) || code.starts_with("08")
            } else if let Some(lite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code.
                lite.code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(|code| matches!(code & 0xff, 5 | 6))
            } else {
                false
            }
        }
        _ => false,
    }
}

/// The kv store: a connection pool of one of the two backends.
///
/// Cloning is cheap and shares the pool.
#[derive(Clone, Debug)]
pub enum KvStore {
    /// SQLite, the embedded default.
    Sqlite(sqlite::SqliteKv),
    /// PostgreSQL.
    Postgres(PgPool),
}

impl KvStore {
    /// Connects to `url` and applies the kv migrations.
    ///
    /// `sqlite:…` URLs create the file if it is missing and use WAL journaling;
    /// `postgres://…` (or `postgresql://…`) URLs connect to an existing database. The tables
    /// are created in the connection's default schema (PostgreSQL's `search_path`).
    ///
    /// # Errors
    ///
    /// [`KvError::UnsupportedUrl`] for another scheme, [`KvError::Unavailable`] or
    /// [`KvError::Database`] if the database cannot be opened, [`KvError::Migrate`] if the
    /// migrations fail.
    pub async fn connect(url: &str) -> Result<Self, KvError> {
        let store = if url.starts_with("sqlite:") {
            Self::Sqlite(sqlite::connect(url).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Self::Postgres(postgres::connect(url).await?)
        } else {
            let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
            return Err(KvError::UnsupportedUrl(scheme.to_owned()));
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A store over an existing PostgreSQL pool. Does not migrate: call [`KvStore::migrate`].
    pub fn postgres(pool: PgPool) -> Self {
        Self::Postgres(pool)
    }

    /// Applies the kv migrations that are not applied yet (recorded in [`MIGRATIONS_TABLE`]).
    ///
    /// # Errors
    ///
    /// [`KvError::Migrate`] if a migration fails or an applied one was changed since.
    pub async fn migrate(&self) -> Result<(), KvError> {
        match self {
            Self::Sqlite(kv) => named(sqlite::migrator()).run(kv.pool()).await?,
            Self::Postgres(pool) => named(postgres::migrator()).run(pool).await?,
        }
        Ok(())
    }

    /// Closes the pool: waits for connections in use to be returned, then closes them all.
    /// Every later call fails with [`KvError::Unavailable`].
    pub async fn close(&self) {
        match self {
            Self::Sqlite(kv) => kv.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }

    /// The value stored under `key`, if any.
    ///
    /// # Errors
    ///
    /// [`KvError::InvalidKey`] if `key` breaks the key rules (see [`KvStore::set`]); database
    /// errors.
    pub async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        validate_key(key)?;
        match self {
            Self::Sqlite(kv) => sqlite::get(kv.pool(), ns, key).await,
            Self::Postgres(pool) => postgres::get(pool, ns, key).await,
        }
    }

    /// Stores `value` under `key`, replacing any previous value, if the quota allows it.
    ///
    /// Keys are 1 to [`MAX_KEY_BYTES`] bytes of UTF-8 without NUL; values are at most
    /// [`MAX_VALUE_BYTES`]. Replacing a value counts the new entry's size minus the old one's.
    /// The quota check and the write are one transaction that holds the namespace's usage lock,
    /// so concurrent writers can never together pass the quota.
    ///
    /// # Errors
    ///
    /// [`KvError::InvalidKey`], [`KvError::ValueTooLarge`], [`KvError::QuotaExceeded`] (bytes
    /// checked first, then keys; nothing is written), database errors.
    pub async fn set(
        &self,
        ns: &Namespace,
        key: &str,
        value: &[u8],
        quota: &KvQuota,
    ) -> Result<(), KvError> {
        validate_key(key)?;
        validate_value(value)?;
        let result = match self {
            Self::Sqlite(kv) => kv
                .write(Write::Set {
                    ns: ns.clone(),
                    key: key.to_owned(),
                    value: value.to_vec(),
                    quota: *quota,
                })
                .await
                .map(drop),
            Self::Postgres(pool) => postgres::set(pool, ns, key, value, quota).await,
        };
        if let Err(KvError::QuotaExceeded {
            quota,
            limit,
            would_use,
        }) = &result
        {
            tracing::debug!(
                tenant = %ns.tenant,
                plugin = %ns.plugin,
                quota,
                limit,
                would_use,
                "kv write refused: quota"
            );
        }
        result
    }

    /// What all of `tenant`'s namespaces hold together, in bytes: what the tenant-wide quota
    /// ([`KvQuota::tenant_max_bytes`]) is checked against.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub async fn tenant_bytes(&self, tenant: &str) -> Result<u64, KvError> {
        let bytes: i64 = match self {
            Self::Sqlite(kv) => {
                sqlx::query_scalar(TENANT_BYTES_SQL)
                    .bind(tenant)
                    .fetch_one(kv.pool())
                    .await?
            }
            Self::Postgres(pool) => {
                sqlx::query_scalar(TENANT_BYTES_SQL)
                    .bind(tenant)
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(from_db(bytes))
    }

    /// Deletes `key`; returns whether it was there.
    ///
    /// # Errors
    ///
    /// [`KvError::InvalidKey`]; database errors.
    pub async fn delete(&self, ns: &Namespace, key: &str) -> Result<bool, KvError> {
        validate_key(key)?;
        match self {
            Self::Sqlite(kv) => match kv
                .write(Write::Delete {
                    ns: ns.clone(),
                    key: key.to_owned(),
                })
                .await?
            {
                Done::Deleted(existed) => Ok(existed),
                other => Err(unexpected(&other)),
            },
            Self::Postgres(pool) => postgres::delete(pool, ns, key).await,
        }
    }

    /// One page of the namespace's keys that start with `prefix`, in ascending byte order.
    ///
    /// `prefix` is matched literally (`%` and `_` are ordinary characters); an empty prefix
    /// lists every key. `cursor` is the previous page's [`KeyPage::next_cursor`]: the page
    /// starts after it. `limit` is capped at [`MAX_PAGE`]; `0` means "no preference" and also
    /// gets [`MAX_PAGE`]. `next_cursor` is set only when more keys match.
    ///
    /// # Errors
    ///
    /// [`KvError::InvalidKey`] if `prefix` or `cursor` is longer than [`MAX_KEY_BYTES`] or
    /// contains NUL; database errors.
    pub async fn list_keys(
        &self,
        ns: &Namespace,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, KvError> {
        validate_bound("prefix", prefix)?;
        if let Some(cursor) = cursor {
            validate_bound("cursor", cursor)?;
        }
        let range = KeyRange::new(prefix, cursor);
        let limit = page_limit(limit);
        // One row more than the page, to learn whether another page follows.
        let fetch = i64::from(limit) + 1;
        let keys = match self {
            Self::Sqlite(kv) => sqlite::list_keys(kv.pool(), ns, &range, fetch).await?,
            Self::Postgres(pool) => postgres::list_keys(pool, ns, &range, fetch).await?,
        };
        Ok(KeyPage::from_rows(keys, limit))
    }

    /// What the namespace holds now.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub async fn usage(&self, ns: &Namespace) -> Result<KvUsage, KvError> {
        match self {
            Self::Sqlite(kv) => sqlite::usage(kv.pool(), ns).await,
            Self::Postgres(pool) => postgres::usage(pool, ns).await,
        }
    }

    /// Removes every key of the namespace (on uninstall); returns how many there were. Other
    /// namespaces, including the same plugin for other tenants, are untouched.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub async fn delete_namespace(&self, ns: &Namespace) -> Result<u64, KvError> {
        match self {
            Self::Sqlite(kv) => match kv.write(Write::DeleteNamespace { ns: ns.clone() }).await? {
                Done::Removed(removed) => Ok(removed),
                other => Err(unexpected(&other)),
            },
            Self::Postgres(pool) => postgres::delete_namespace(pool, ns).await,
        }
    }

    /// Deletes every entry of every namespace of `tenant`, with their usage; returns how many
    /// entries were deleted. For a tenant that is gone for good.
    ///
    /// # Errors
    ///
    /// Database errors; nothing is deleted then.
    pub async fn delete_tenant(&self, tenant: &str) -> Result<u64, KvError> {
        let removed = match self {
            Self::Sqlite(kv) => match kv
                .write(Write::DeleteTenant {
                    tenant: tenant.to_owned(),
                })
                .await?
            {
                Done::Removed(removed) => removed,
                other => return Err(unexpected(&other)),
            },
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let removed = sqlx::query(DELETE_TENANT_ENTRIES_SQL)
                    .bind(tenant)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(DELETE_TENANT_USAGE_SQL)
                    .bind(tenant)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                removed
            }
        };
        Ok(removed)
    }
}

/// `migrator`, recording into [`MIGRATIONS_TABLE`].
fn named(mut migrator: Migrator) -> Migrator {
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}

/// The writer answered a write with what another kind of write does: a bug.
fn unexpected(done: &Done) -> KvError {
    KvError::Storage(format!(
        "the kv writer answered {done:?} to another kind of write"
    ))
}

fn validate_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::InvalidKey("the key is empty".to_owned()));
    }
    validate_bound("key", key)
}

/// The rules every key-like string obeys: not too long, no NUL.
fn validate_bound(what: &str, text: &str) -> Result<(), KvError> {
    if text.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidKey(format!(
            "the {what} is {} bytes; the limit is {MAX_KEY_BYTES}",
            text.len()
        )));
    }
    if text.contains('\0') {
        return Err(KvError::InvalidKey(format!(
            "the {what} contains a NUL character"
        )));
    }
    Ok(())
}

fn validate_value(value: &[u8]) -> Result<(), KvError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(KvError::ValueTooLarge {
            size: len_u64(value.len()),
            limit: len_u64(MAX_VALUE_BYTES),
        });
    }
    Ok(())
}

fn page_limit(limit: u32) -> u32 {
    if limit == 0 {
        MAX_PAGE
    } else {
        limit.min(MAX_PAGE)
    }
}

fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// A count or size as the database stores it (BIGINT / INTEGER).
fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count or size read back from the database; the schema's CHECKs keep them non-negative.
fn from_db(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The bytes an entry counts against the quota.
fn entry_bytes(key: &str, value_len: u64) -> u64 {
    len_u64(key.len()).saturating_add(value_len)
}

/// Decides a write against the quota. `current` is the namespace's usage (read under its lock),
/// `old` the size of the entry being replaced (if any), `new` the size of the new entry.
/// Returns the usage after the write.
fn charge(
    current: KvUsage,
    old: Option<u64>,
    new: u64,
    quota: &KvQuota,
) -> Result<KvUsage, KvError> {
    let after = KvUsage {
        bytes: current
            .bytes
            .saturating_sub(old.unwrap_or(0))
            .saturating_add(new),
        keys: current.keys + u64::from(old.is_none()),
    };
    if after.bytes > quota.max_bytes && after.bytes > current.bytes {
        return Err(KvError::QuotaExceeded {
            quota: "bytes",
            limit: quota.max_bytes,
            would_use: after.bytes,
        });
    }
    if let Some(max_keys) = quota.max_keys
        && after.keys > max_keys
        && after.keys > current.keys
    {
        return Err(KvError::QuotaExceeded {
            quota: "keys",
            limit: max_keys,
            would_use: after.keys,
        });
    }
    Ok(after)
}

/// Decides a write that grows a namespace against the tenant-wide quota, if there is one.
/// `others` is what the tenant's other namespaces hold, `after` what this one would hold.
fn charge_tenant(others: u64, after: u64, quota: &KvQuota) -> Result<(), KvError> {
    match quota.tenant_max_bytes {
        Some(limit) if others.saturating_add(after) > limit => Err(KvError::QuotaExceeded {
            quota: "tenant bytes",
            limit,
            would_use: others.saturating_add(after),
        }),
        _ => Ok(()),
    }
}

/// The keys a `list_keys` call may return, as a range in byte order: from `lower` (inclusive or
/// not) up to `upper` (exclusive; `None` = unbounded).
///
/// Ranges rather than `LIKE`, so that `%` and `_` in a prefix are literal and the primary key
/// index serves the scan.
#[derive(Debug)]
struct KeyRange<'a> {
    lower: &'a str,
    lower_inclusive: bool,
    upper: Option<String>,
}

impl<'a> KeyRange<'a> {
    fn new(prefix: &'a str, cursor: Option<&'a str>) -> Self {
        let upper = prefix_successor(prefix);
        match cursor {
            Some(cursor) if cursor >= prefix => Self {
                lower: cursor,
                lower_inclusive: false,
                upper,
            },
            _ => Self {
                lower: prefix,
                lower_inclusive: true,
                upper,
            },
        }
    }
}

/// The least string greater than every string that starts with `prefix`, or `None` if there is
/// none (the prefix is empty or made only of `char::MAX`).
///
/// UTF-8 byte order is code point order, so this is the prefix with its last character
/// incremented, after dropping trailing characters that cannot be.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = next_char(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The next Unicode scalar value after `c`, skipping the surrogate range.
fn next_char(c: char) -> Option<char> {
    match c {
        '\u{D7FF}' => Some('\u{E000}'),
        char::MAX => None,
        _ => char::from_u32(u32::from(c) + 1),
    }
}

impl KeyPage {
    /// A page from up to `limit + 1` keys in order: the extra key, if present, only says that
    /// another page follows.
    fn from_rows(mut keys: Vec<String>, limit: u32) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next_cursor = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().cloned()
        } else {
            None
        };
        Self { keys, next_cursor }
    }
}

// SQL that both backends run as is. Backend-specific statements (upserts, row locks, length
// functions) live in `sqlite.rs` and `postgres.rs`.

const GET_SQL: &str = "SELECT value FROM kv_entries WHERE tenant = $1 AND plugin = $2 AND key = $3";

const USAGE_SQL: &str = "SELECT bytes, keys FROM kv_usage WHERE tenant = $1 AND plugin = $2";

/// What the tenant's other namespaces hold (a `BIGINT` on both backends).
const TENANT_OTHERS_SQL: &str = "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM kv_usage \
     WHERE tenant = $1 AND plugin <> $2";

/// What all of the tenant's namespaces hold.
const TENANT_BYTES_SQL: &str =
    "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM kv_usage WHERE tenant = $1";

const DELETE_ENTRIES_SQL: &str = "DELETE FROM kv_entries WHERE tenant = $1 AND plugin = $2";

const DELETE_USAGE_SQL: &str = "DELETE FROM kv_usage WHERE tenant = $1 AND plugin = $2";

const DELETE_TENANT_ENTRIES_SQL: &str = "DELETE FROM kv_entries WHERE tenant = $1";

const DELETE_TENANT_USAGE_SQL: &str = "DELETE FROM kv_usage WHERE tenant = $1";

const RELEASE_SQL: &str = "UPDATE kv_usage SET bytes = bytes - $3, keys = keys - 1 \
     WHERE tenant = $1 AND plugin = $2";

/// The `list_keys` query for a range's shape. Parameters: tenant, plugin, lower, [upper,] limit.
fn list_sql(range: &KeyRange<'_>) -> &'static str {
    match (range.lower_inclusive, range.upper.is_some()) {
        (true, true) => {
            "SELECT key FROM kv_entries WHERE tenant = $1 AND plugin = $2 \
             AND key >= $3 AND key < $4 ORDER BY key LIMIT $5"
        }
        (false, true) => {
            "SELECT key FROM kv_entries WHERE tenant = $1 AND plugin = $2 \
             AND key > $3 AND key < $4 ORDER BY key LIMIT $5"
        }
        (true, false) => {
            "SELECT key FROM kv_entries WHERE tenant = $1 AND plugin = $2 \
             AND key >= $3 ORDER BY key LIMIT $4"
        }
        (false, false) => {
            "SELECT key FROM kv_entries WHERE tenant = $1 AND plugin = $2 \
             AND key > $3 ORDER BY key LIMIT $4"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_increments_the_last_character() {
        assert_eq!(prefix_successor("ab"), Some("ac".to_owned()));
        assert_eq!(prefix_successor("a%"), Some("a&".to_owned()));
        assert_eq!(prefix_successor("\u{D7FF}"), Some("\u{E000}".to_owned()));
        assert_eq!(
            prefix_successor("a\u{10FFFF}\u{10FFFF}"),
            Some("b".to_owned())
        );
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        assert_eq!(prefix_successor(""), None);
    }

    #[test]
    fn successor_bounds_exactly_the_strings_with_the_prefix() {
        let prefix = "k\u{7F}";
        let Some(upper) = prefix_successor(prefix) else {
            panic!("a successor exists");
        };
        for key in ["k\u{7F}", "k\u{7F}\u{10FFFF}", "k\u{7F}zz"] {
            assert!(key >= prefix && key < upper.as_str(), "{key:?} in range");
        }
        for key in ["k\u{80}", "k~", "l"] {
            assert!(
                !(key >= prefix && key < upper.as_str()),
                "{key:?} not in range"
            );
        }
    }

    #[test]
    fn charge_refuses_growth_past_a_limit_only() {
        let quota = KvQuota {
            max_bytes: 10,
            max_keys: Some(2),
            tenant_max_bytes: None,
        };
        let current = KvUsage { bytes: 8, keys: 2 };
        assert!(matches!(
            charge(current, None, 1, &quota),
            Err(KvError::QuotaExceeded { quota: "keys", .. })
        ));
        assert!(matches!(
            charge(current, Some(4), 7, &quota),
            Err(KvError::QuotaExceeded {
                quota: "bytes",
                limit: 10,
                would_use: 11
            })
        ));
        assert_eq!(
            charge(current, Some(4), 6, &quota).ok(),
            Some(KvUsage { bytes: 10, keys: 2 })
        );
        // Already over the limit: shrinking is still allowed.
        let over = KvUsage { bytes: 20, keys: 2 };
        assert_eq!(
            charge(over, Some(5), 3, &quota).ok(),
            Some(KvUsage { bytes: 18, keys: 2 })
        );
    }
}
