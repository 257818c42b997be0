//! Storing runs on SQLite: a thread with a connection of its own writes each prepared batch in
//! one `BEGIN IMMEDIATE` transaction with cached statements.
//!
//! Through the pool, every value of every run crossed sqlx's driver-neutral layer and was
//! handed to a connection thread and back; the `run_log` benchmark's profile showed those
//! conversions, allocations and hand-offs costing more than SQLite's own work, on the same
//! cores as the event path. Here a batch crosses once. It is the kv store's way too
//! (`plinth_host::kv`). Other writers of the marketplace database keep using the pool; the
//! busy timeout orders this connection's transactions among theirs, and readers never wait
//! (WAL).

use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, named_params, params};
use sqlx::sqlite::SqliteConnectOptions;
use tokio::sync::{mpsc, oneshot};

use super::store::{
    INSERT_BATCH_SQL, KINDS_SQL, Prepared, UPSERT_DAILY_SQL, UPSERT_FAILURES_SQL, kind_to_count,
};
use crate::error::{Error, Result};

/// How long a write waits for another writer's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Batches waiting for the thread; the recorder's writer sends one at a time.
const QUEUE: usize = 4;

type Job = (Arc<Prepared>, oneshot::Sender<Result<()>>);

/// The handle of the writer thread; the thread ends when the handle is dropped.
#[derive(Debug)]
pub(super) struct SqliteRunWriter {
    jobs: mpsc::Sender<Job>,
}

impl SqliteRunWriter {
    /// Opens the database at `url` (as [`crate::Db::connect`] takes it) and starts the thread.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the URL does not name a SQLite database or it does not open.
    pub(super) fn start(url: &str) -> Result<SqliteRunWriter> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Internal(format!("the run log's database {url:?}: {e}")))?;
        let filename: &Path = options.get_filename();
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // sqlx names an in-memory database `file:sqlx-in-memory-<n>`, shared by its pool.
        if filename
            .to_str()
            .is_some_and(|name| name.starts_with("file:sqlx-in-memory-"))
        {
            flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        let connection = Connection::open_with_flags(filename, flags).map_err(internal)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(internal)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(internal)?;
        let (jobs, queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("plinth-run-writer".to_owned())
            .spawn(move || run(connection, queue))
            .map_err(|e| Error::Internal(format!("cannot start the run log's writer: {e}")))?;
        Ok(SqliteRunWriter { jobs })
    }

    /// Stores `prepared` in one transaction: all of it, or (on error) none of it.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] with SQLite's error.
    pub(super) async fn write(&self, prepared: Arc<Prepared>) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        let stopped = || Error::Internal("the run log's writer stopped".to_owned());
        self.jobs
            .send((prepared, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn internal(err: rusqlite::Error) -> Error {
    Error::Internal(format!("the run log's SQLite writer: {err}"))
}

fn run(mut connection: Connection, mut queue: mpsc::Receiver<Job>) {
    while let Some((prepared, reply)) = queue.blocking_recv() {
        let _ = reply.send(apply(&mut connection, &prepared).map_err(internal));
    }
}

fn apply(connection: &mut Connection, prepared: &Prepared) -> rusqlite::Result<()> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(INSERT_BATCH_SQL)?;
        for row in &prepared.batches {
            insert.execute(params![
                row.tenant,
                row.last_at,
                row.id,
                row.first_at,
                row.runs,
                row.failures,
                row.body,
            ])?;
        }
        let mut daily = tx.prepare_cached(UPSERT_DAILY_SQL)?;
        for ((tenant, plugin, day, outcome, bucket), calls) in &prepared.daily {
            daily.execute(params![tenant, plugin, day, outcome, bucket, calls])?;
        }
        let mut kinds = tx.prepare_cached(KINDS_SQL)?;
        let mut failures = tx.prepare_cached(UPSERT_FAILURES_SQL)?;
        for ((plugin, version, signature), seen) in &prepared.failures {
            // By name: SQLite numbers `$N` parameters in the order they first appear.
            let (count, known): (i64, i64) = kinds.query_row(
                named_params! {"$1": plugin, "$2": version, "$3": signature},
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let (signature, message) = kind_to_count(signature, seen, count, known > 0);
            failures.execute(params![
                plugin,
                version,
                signature,
                seen.code,
                message,
                seen.failures,
                seen.first_seen,
                seen.last_seen,
            ])?;
        }
    }
    tx.commit()
}
