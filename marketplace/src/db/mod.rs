//! Storage: one `sqlx` pool over SQLite (the embedded default) or PostgreSQL.
//!
//! Queries are written once in SQL both backends accept (`$1` placeholders, `BIGINT` times,
//! text ids) and run through sqlx's `Any` driver; what differs per backend (migrations,
//! full-text search) lives in [`sqlite`] and [`postgres`], one place each.
//!
//! A transaction that may write starts with [`Db::begin`] (on SQLite it takes the write lock
//! at once, so it waits for another writer instead of failing); one that only reads several
//! times from one snapshot starts with [`Db::begin_read`]; a single read needs neither.

pub mod cache;
pub mod postgres;
pub mod sqlite;

use std::collections::HashSet;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyConnection, AnyPool, Transaction};

use crate::audit::key::AuditKey;
use crate::error::{Error, Result};
use cache::{ReadCache, Topic};

/// The table the marketplace's migrations are recorded in (the host's kv has its own).
pub const MIGRATIONS_TABLE: &str = "_plinth_marketplace_migrations";

/// Which database is behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one file, WAL journaling.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The marketplace's database. Cloning is cheap and shares the pool and the read caches.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    url: String,
    cache: Arc<ReadCache>,
    /// PostgreSQL: the server process ids of this pool's connections, so that this process
    /// can tell its own change notifications from other processes'.
    own_backends: Arc<Mutex<HashSet<u32>>>,
    /// The key audit entries written through this handle are sealed with
    /// ([`Db::with_audit_key`]); without one, appending to the audit log fails.
    audit_key: Option<Arc<AuditKey>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may carry a password.
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// A transaction on the marketplace's database.
///
/// It dereferences to the connection, so `&mut *tx` (or `&mut **tx` through a `&mut Tx`) is
/// what a query executes on, and it carries what writes in it need from their [`Db`]: the key
/// that seals audit entries ([`crate::audit`]) and whether it holds the ledger lock
/// ([`crate::ledger::lock`]). Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    inner: Transaction<'static, Any>,
    audit_key: Option<Arc<AuditKey>>,
    holds_ledger_lock: bool,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("holds_ledger_lock", &self.holds_ledger_lock)
            .finish_non_exhaustive()
    }
}

impl Tx {
    /// Commits the transaction.
    ///
    /// # Errors
    ///
    /// The database's error if the commit fails (nothing was written then).
    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.inner.commit().await
    }

    /// Rolls the transaction back.
    ///
    /// # Errors
    ///
    /// The database's error if the rollback fails.
    pub async fn rollback(self) -> std::result::Result<(), sqlx::Error> {
        self.inner.rollback().await
    }

    /// The key audit entries written in this transaction are sealed with, if its [`Db`] has one.
    pub fn audit_key(&self) -> Option<&AuditKey> {
        self.audit_key.as_deref()
    }

    /// Records that this transaction took the ledger lock.
    pub(crate) fn note_ledger_lock(&mut self) {
        self.holds_ledger_lock = true;
    }

    /// Whether this transaction took the ledger lock.
    pub(crate) fn holds_ledger_lock(&self) -> bool {
        self.holds_ledger_lock
    }
}

impl Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.inner
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }
}

impl Db {
    /// Connects to `url` (`sqlite://FILE?mode=rwc` or `postgres://…`) and applies the
    /// migrations that are not applied yet.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] for another scheme; [`Error::Database`] if the database cannot be
    /// opened; [`Error::Migrate`] if a migration fails.
    pub async fn connect(url: &str) -> Result<Db> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::bad_request(
                "unsupported_database",
                format!("the database URL must start with sqlite: or postgres:, not {url:?}"),
            ));
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let own_backends = Arc::new(Mutex::new(HashSet::new()));
        let pool = match backend {
            Backend::Sqlite => {
                options
                    .max_connections(8)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            sqlx::raw_sql(sqlite::CONNECTION_PRAGMAS)
                                .execute(conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => {
                let backends = Arc::clone(&own_backends);
                options
                    .max_connections(16)
                    .after_connect(move |conn, _meta| {
                        let backends = Arc::clone(&backends);
                        Box::pin(async move {
                            sqlx::query(postgres::scope::CROSS_TENANT)
                                .execute(&mut *conn)
                                .await?;
                            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                                .fetch_one(conn)
                                .await?;
                            // PostgreSQL's process ids are positive.
                            if let Ok(pid) = u32::try_from(pid) {
                                backends
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .insert(pid);
                            }
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
        };
        let db = Db {
            pool,
            backend,
            url: url.to_owned(),
            cache: Arc::default(),
            own_backends,
            audit_key: None,
        };
        db.migrate().await?;
        Ok(db)
    }

    /// The SQLite database under `data_dir` (`marketplace.db`), created on first use.
    ///
    /// # Errors
    ///
    /// As [`Db::connect`], and [`Error::Internal`] if the directory cannot be created.
    pub async fn open_data_dir(data_dir: &Path) -> Result<Db> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Error::Internal(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let file = data_dir.join("marketplace.db");
        Db::connect(&format!("sqlite://{}?mode=rwc", file.display())).await
    }

    /// The pool, for queries outside a transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The URL this database was opened with (it may hold credentials: never log it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether server process `pid` serves one of this pool's connections (PostgreSQL): a
    /// change notification from it is this process's own.
    pub fn is_own_backend(&self, pid: u32) -> bool {
        self.own_backends
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&pid)
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The read caches of the hottest lookups ([`cache`]).
    pub fn cache(&self) -> &ReadCache {
        &self.cache
    }

    /// Says that a change of `topic` has committed: cached reads it may have made stale are
    /// not used again. Call it after the commit.
    pub fn changed(&self, topic: Topic) {
        self.cache.changed(topic);
    }

    /// This handle, sealing the audit entries written through it with `key`
    /// ([`crate::audit::key`]).
    #[must_use]
    pub fn with_audit_key(mut self, key: AuditKey) -> Db {
        self.audit_key = Some(Arc::new(key));
        self
    }

    /// The key audit entries are sealed and verified with, if this handle has one.
    pub fn audit_key(&self) -> Option<&AuditKey> {
        self.audit_key.as_deref()
    }

    fn transaction(&self, inner: Transaction<'static, Any>) -> Tx {
        Tx {
            inner,
            audit_key: self.audit_key.clone(),
            holds_ledger_lock: false,
        }
    }

    /// Starts a transaction that may write: the one way to open a transaction that changes
    /// anything.
    ///
    /// On SQLite it takes the database's write lock at once (`BEGIN IMMEDIATE`), waiting up to
    /// the busy timeout while another writer holds it. A deferred transaction that reads first
    /// and writes later cannot wait like that: when another writer committed in between, SQLite
    /// refuses its first write at once (`database is locked`, whatever the busy timeout), so
    /// every writing transaction starts here. On PostgreSQL it is a plain transaction; rows it
    /// must hold are locked with `FOR UPDATE` or by updating them.
    ///
    /// While the returned [`Tx`] is open, the task holding it must not open another transaction
    /// that may write, nor use [`Db::pool`]: pass the `Tx` to whatever needs the database. On
    /// SQLite a second writing transaction would wait for this one's lock until the busy
    /// timeout, and a read through the pool may wait for a connection that every other writer,
    /// queued behind this one, is holding.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] if no connection can be had or the write lock is not had within the
    /// busy timeout.
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(self.transaction(inner))
    }

    /// Starts a transaction that may write, scoped to tenant `tenant_id`: on PostgreSQL the
    /// row-level security policies ([`postgres::scope`]) let its queries see and write that
    /// tenant's rows only, whatever their `WHERE` says. The one way to open a tenant-scoped
    /// transaction; work across tenants uses [`Db::begin`].
    ///
    /// # Errors
    ///
    /// As [`Db::begin`].
    pub async fn begin_tenant(&self, tenant_id: &str) -> Result<Tx> {
        let tx = self.begin().await?;
        self.scoped(tx, tenant_id).await
    }

    /// Starts a transaction that only reads ([`Db::begin_read`]), scoped to tenant
    /// `tenant_id` as [`Db::begin_tenant`] scopes one that writes: what a tenant's own views
    /// read through.
    ///
    /// # Errors
    ///
    /// As [`Db::begin_read`].
    pub async fn begin_tenant_read(&self, tenant_id: &str) -> Result<Tx> {
        let tx = self.begin_read().await?;
        self.scoped(tx, tenant_id).await
    }

    /// `tx` narrowed to tenant `tenant_id` (PostgreSQL's policies; nothing on SQLite).
    async fn scoped(&self, mut tx: Tx, tenant_id: &str) -> Result<Tx> {
        if self.backend == Backend::Postgres {
            sqlx::query(postgres::scope::TENANT)
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Starts a transaction that only reads: one consistent snapshot for several queries
    /// (a single query needs no transaction: run it on [`Db::pool`]).
    ///
    /// On SQLite it is deferred (`BEGIN`): with WAL journaling a reader never waits for a writer
    /// nor holds one up. On PostgreSQL it is `BEGIN READ ONLY`, which refuses any write in it,
    /// so a write slipped into a read transaction fails the tests, which run on both backends.
    /// Do not write in it on SQLite either: a write there may fail at once when another writer
    /// committed since the snapshot was taken; use [`Db::begin`].
    ///
    /// # Errors
    ///
    /// [`Error::Database`] if no connection can be had.
    pub async fn begin_read(&self) -> Result<Tx> {
        let inner = match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => self.pool.begin_with("BEGIN READ ONLY").await?,
        };
        Ok(self.transaction(inner))
    }

    /// Applies the migrations of this backend that are not applied yet.
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] if one fails or an applied one was changed since.
    pub async fn migrate(&self) -> Result<()> {
        let mut migrator = match self.backend {
            Backend::Sqlite => sqlite::migrator(),
            Backend::Postgres => postgres::migrator(),
        };
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Waits for connections in use to be returned, then closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
