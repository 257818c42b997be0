//! The one writer of a SQLite kv database: a thread that owns a connection of its own and
//! applies every write of this process.
//!
//! SQLite has one writer at a time. Writers that each take the lock through a pooled
//! connection hand every statement to a connection thread and back, and when they find the
//! lock taken they sleep in SQLite's busy handler for growing intervals: under load, most of a
//! `counter` event went to those hand-offs and waits. Here a call hands its write over once and
//! waits for its answer once. The thread takes every write queued since its last commit (up to
//! [`MAX_BATCH`]) into one `BEGIN IMMEDIATE` transaction (group commit), applies them in the
//! order they came, each in a savepoint with prepared statements, so each is checked against
//! its quota as if alone and a failed one leaves the others be, then commits once and answers
//! them all. An answer means the write is committed (or was refused, with nothing written).
//! The busy timeout still covers other processes on the same file; reads go through the pool
//! and never wait for the writer (WAL).

use std::path::Path;
use std::time::Duration;

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, named_params,
};
use tokio::sync::{mpsc, oneshot};

use super::{
    DELETE_ENTRIES_SQL, DELETE_TENANT_ENTRIES_SQL, DELETE_TENANT_USAGE_SQL, DELETE_USAGE_SQL,
    KvError, KvQuota, KvUsage, Namespace, RELEASE_SQL, TENANT_OTHERS_SQL, USAGE_SQL, charge,
    charge_tenant, entry_bytes, from_db, len_u64, to_db,
};

/// Most writes applied in one transaction.
const MAX_BATCH: usize = 256;
/// Most writes waiting for the writer; a call beyond waits for room.
const QUEUE: usize = 4096;

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

/// One write.
#[derive(Debug)]
pub(super) enum Write {
    /// Sets `key` to `value` within `quota`.
    Set {
        ns: Namespace,
        key: String,
        value: Vec<u8>,
        quota: KvQuota,
    },
    /// Deletes `key`.
    Delete { ns: Namespace, key: String },
    /// Deletes every key of a namespace.
    DeleteNamespace { ns: Namespace },
    /// Deletes every key of a tenant.
    DeleteTenant { tenant: String },
}

/// What a write did.
#[derive(Debug)]
pub(super) enum Done {
    /// The value was set.
    Set,
    /// Whether the key existed.
    Deleted(bool),
    /// How many keys were removed.
    Removed(u64),
}

enum Job {
    Write(Write, oneshot::Sender<Result<Done, KvError>>),
    /// Stop taking writes (the store was closed).
    Stop,
}

/// The handle calls send their writes through; cheap to clone.
#[derive(Clone, Debug)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Opens a connection to the database file `filename` (an in-memory database shared with
    /// the pool if `in_memory`) and starts the writer thread.
    pub(super) fn start(
        filename: &Path,
        in_memory: bool,
        busy_timeout: Duration,
    ) -> Result<Writer, KvError> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if in_memory {
            flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        let connection = Connection::open_with_flags(filename, flags).map_err(storage)?;
        connection.busy_timeout(busy_timeout).map_err(storage)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(storage)?;
        let (jobs, queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("plinth-kv-writer".to_owned())
            .spawn(move || run(connection, queue))
            .map_err(|e| KvError::Unavailable(format!("cannot start the kv writer: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Applies `write` and answers once it is committed (or refused).
    pub(super) async fn write(&self, write: Write) -> Result<Done, KvError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Write(write, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Stops the writer: later writes fail as unavailable.
    pub(super) async fn stop(&self) {
        // A writer already gone is stopped already.
        let _ = self.jobs.send(Job::Stop).await;
    }
}

fn stopped() -> KvError {
    KvError::Unavailable("the kv store is closed".to_owned())
}

/// Sorts a SQLite error as the pool's are sorted: busy and locked are "not now".
fn storage(err: rusqlite::Error) -> KvError {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            KvError::Unavailable(err.to_string())
        }
        _ => KvError::Storage(err.to_string()),
    }
}

/// The writer thread: batches until every handle is gone or the store is closed.
fn run(mut connection: Connection, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.blocking_recv() {
        let mut batch = Vec::new();
        let mut stop = false;
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Write(write, reply) => batch.push((write, reply)),
                Job::Stop => {
                    stop = true;
                    break;
                }
            }
            next = if batch.len() < MAX_BATCH {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            apply(&mut connection, batch);
        }
        if stop {
            queue.close();
            // Writes queued behind the stop are answered "closed" as their replies drop.
            return;
        }
    }
}

/// Applies `batch` in one transaction and answers each write.
fn apply(connection: &mut Connection, batch: Vec<(Write, oneshot::Sender<Result<Done, KvError>>)>) {
    let mut tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(err) => {
            let error = storage(err);
            for (_, reply) in batch {
                let _ = reply.send(Err(again(&error)));
            }
            return;
        }
    };
    let answers: Vec<_> = batch
        .into_iter()
        .map(|(write, reply)| (one(&mut tx, write), reply))
        .collect();
    let failed = tx.commit().err().map(storage);
    for (answer, reply) in answers {
        // A caller that stopped waiting (its call timed out) has its write applied all the
        // same, as a pooled write would be.
        let answer = match (&failed, answer) {
            (Some(error), Ok(_)) => Err(again(error)),
            (_, answer) => answer,
        };
        let _ = reply.send(answer);
    }
}

/// The same failure again, for the next write of a batch that failed as a whole.
fn again(error: &KvError) -> KvError {
    match error {
        KvError::Unavailable(message) => KvError::Unavailable(message.clone()),
        other => KvError::Storage(other.to_string()),
    }
}

/// One write in its own savepoint: released if it succeeds, rolled back if not.
fn one(tx: &mut Transaction<'_>, write: Write) -> Result<Done, KvError> {
    let savepoint = tx.savepoint().map_err(storage)?;
    let done = match write {
        Write::Set {
            ns,
            key,
            value,
            quota,
        } => set(&savepoint, &ns, &key, &value, &quota).map(|()| Done::Set),
        Write::Delete { ns, key } => delete(&savepoint, &ns, &key).map(Done::Deleted),
        Write::DeleteNamespace { ns } => delete_namespace(&savepoint, &ns).map(Done::Removed),
        Write::DeleteTenant { tenant } => delete_tenant(&savepoint, &tenant).map(Done::Removed),
    }?;
    savepoint.commit().map_err(storage)?;
    Ok(done)
}

fn usage(db: &Connection, ns: &Namespace) -> Result<KvUsage, KvError> {
    Ok(db
        .prepare_cached(USAGE_SQL)
        .map_err(storage)?
        .query_row(named_params! {"$1": ns.tenant, "$2": ns.plugin}, |row| {
            Ok(KvUsage {
                bytes: from_db(row.get(0)?),
                keys: from_db(row.get(1)?),
            })
        })
        .optional()
        .map_err(storage)?
        .unwrap_or_default())
}

/// The value length `sql` (parameters: tenant, plugin, key) answers for `key`, if it has one:
/// the entry's old length before a set, the removed entry's after a delete.
fn value_len(
    db: &Connection,
    sql: &str,
    ns: &Namespace,
    key: &str,
) -> Result<Option<i64>, KvError> {
    db.prepare_cached(sql)
        .map_err(storage)?
        .query_row(
            named_params! {"$1": ns.tenant, "$2": ns.plugin, "$3": key},
            |row| row.get(0),
        )
        .optional()
        .map_err(storage)
}

fn set(
    db: &Connection,
    ns: &Namespace,
    key: &str,
    value: &[u8],
    quota: &KvQuota,
) -> Result<(), KvError> {
    let current = usage(db, ns)?;
    let old_value_len = value_len(db, OLD_VALUE_LEN_SQL, ns, key)?;
    let old = old_value_len.map(|len| entry_bytes(key, from_db(len)));
    // A refusal returns before anything is written.
    let after = charge(current, old, entry_bytes(key, len_u64(value.len())), quota)?;
    if quota.tenant_max_bytes.is_some() && after.bytes > current.bytes {
        let others: i64 = db
            .prepare_cached(TENANT_OTHERS_SQL)
            .map_err(storage)?
            .query_row(named_params! {"$1": ns.tenant, "$2": ns.plugin}, |row| {
                row.get(0)
            })
            .map_err(storage)?;
        charge_tenant(from_db(others), after.bytes, quota)?;
    }
    db.prepare_cached(UPSERT_ENTRY_SQL)
        .map_err(storage)?
        .execute(named_params! {"$1": ns.tenant, "$2": ns.plugin, "$3": key, "$4": value})
        .map_err(storage)?;
    db.prepare_cached(UPSERT_USAGE_SQL)
        .map_err(storage)?
        .execute(named_params! {
            "$1": ns.tenant, "$2": ns.plugin, "$3": to_db(after.bytes), "$4": to_db(after.keys)
        })
        .map_err(storage)?;
    Ok(())
}

fn delete(db: &Connection, ns: &Namespace, key: &str) -> Result<bool, KvError> {
    let removed = value_len(db, DELETE_ENTRY_SQL, ns, key)?;
    let Some(value_len) = removed else {
        return Ok(false);
    };
    db.prepare_cached(RELEASE_SQL)
        .map_err(storage)?
        .execute(named_params! {
            "$1": ns.tenant, "$2": ns.plugin, "$3": to_db(entry_bytes(key, from_db(value_len)))
        })
        .map_err(storage)?;
    Ok(true)
}

fn delete_namespace(db: &Connection, ns: &Namespace) -> Result<u64, KvError> {
    delete_all(
        db,
        (DELETE_ENTRIES_SQL, DELETE_USAGE_SQL),
        named_params! {"$1": ns.tenant, "$2": ns.plugin},
    )
}

fn delete_tenant(db: &Connection, tenant: &str) -> Result<u64, KvError> {
    delete_all(
        db,
        (DELETE_TENANT_ENTRIES_SQL, DELETE_TENANT_USAGE_SQL),
        named_params! {"$1": tenant},
    )
}

/// Deletes entries and usage rows with the same parameters; returns how many entries went.
fn delete_all(
    db: &Connection,
    (entries, usage): (&str, &str),
    params: &[(&str, &dyn rusqlite::ToSql)],
) -> Result<u64, KvError> {
    let removed = db
        .prepare_cached(entries)
        .map_err(storage)?
        .execute(params)
        .map_err(storage)?;
    db.prepare_cached(usage)
        .map_err(storage)?
        .execute(params)
        .map_err(storage)?;
    Ok(len_u64(removed))
}
