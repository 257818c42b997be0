//! Writing recorded runs: a batch of [`RunRecord`]s becomes, in one transaction, rows of `runs`
//! (secrets redacted), additions to the per-install daily counts (`run_daily`) and to the
//! plugins' failure reports (`failure_reports`). The batch is prepared here; PostgreSQL stores
//! it through the pool, SQLite through a writer thread of its own (module `sqlite_writer`).

use std::collections::HashMap;

use plinth_host::RunRecord;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::daily::{bucket_of, day_of};
use super::redact::Redactor;
use super::run_id;
use super::signature;
use super::sqlite_writer::SqliteRunWriter;
use crate::db::{Backend, Db, Tx};
use crate::error::Result;
use crate::usage::db_count;

/// Rows one `INSERT` writes at most on PostgreSQL (21 parameters each): one round trip for
/// many rows.
const ROWS_PER_INSERT: usize = 64;

/// Kinds of failure a report keeps per plugin version; failures of further kinds are counted
/// under one last kind ("more kinds of failure than a report keeps"), so a plugin that fails with ever new messages
/// cannot grow the reports without bound.
pub const MAX_KINDS_PER_VERSION: i64 = 500;

/// The message of the kind further kinds are counted under.
const OVERFLOW_MESSAGE: &str = "(more kinds of failure than a report keeps)";

/// The most bytes of a run's error message, and of its entry, kept.
const MAX_TEXT_BYTES: usize = 4096;

/// `text` cut to at most `max` bytes, at a character boundary, marked with `…` when cut.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max.saturating_sub('…'.len_utf8());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// One log line as stored (a JSON array of these per run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message (secrets redacted).
    pub message: String,
    /// Structured fields, as `[key, value]` pairs (secrets redacted).
    pub fields: Vec<(String, String)>,
    /// Whether the host cut the line to fit its caps.
    pub truncated: bool,
}

/// A run ready to insert.
pub(super) struct Row {
    pub(super) id: String,
    pub(super) tenant: String,
    pub(super) plugin: String,
    pub(super) version: String,
    pub(super) entry_kind: &'static str,
    pub(super) entry: String,
    pub(super) event_id: Option<String>,
    pub(super) started_at: i64,
    pub(super) duration_us: i64,
    pub(super) fuel: Option<i64>,
    pub(super) memory_bytes: i64,
    pub(super) outbound_requests: i64,
    pub(super) kv_bytes_written: i64,
    pub(super) outcome: String,
    pub(super) error_message: Option<String>,
    pub(super) output_bytes: i64,
    pub(super) logs: String,
    pub(super) logs_dropped: i64,
    pub(super) input: Option<Vec<u8>>,
    pub(super) output: Option<Vec<u8>>,
    pub(super) capture_truncated: bool,
}

/// Key of a daily count: tenant, plugin, day, outcome, duration bucket.
pub(super) type DayKey = (String, String, String, String, i64);
/// Key of a failure report: plugin, version, signature.
pub(super) type FailureKey = (String, String, String);

/// A failure report's additions from one batch.
pub(super) struct FailureSeen {
    pub(super) code: String,
    pub(super) template: String,
    pub(super) failures: i64,
    pub(super) first_seen: i64,
    pub(super) last_seen: i64,
}

/// What a batch adds to the three tables.
pub(super) struct Prepared {
    pub(super) rows: Vec<Row>,
    pub(super) daily: HashMap<DayKey, i64>,
    pub(super) failures: HashMap<FailureKey, FailureSeen>,
}

fn prepare(batch: &[RunRecord]) -> Prepared {
    let mut prepared = Prepared {
        rows: Vec::with_capacity(batch.len()),
        daily: HashMap::new(),
        failures: HashMap::new(),
    };
    for run in batch {
        let redactor = Redactor::new(&run.secrets);
        let (id, started_at) = run_id::new(run.started_at);
        let duration_us = u64::try_from(run.usage.wall.as_micros()).unwrap_or(u64::MAX);
        let (outcome, error_message, output_bytes) = match &run.outcome {
            Ok(bytes) => ("ok".to_owned(), None, db_count(*bytes)),
            Err(error) => (
                error.code().to_owned(),
                Some(cut(redactor.text(&error.to_string()), MAX_TEXT_BYTES)),
                0,
            ),
        };
        *prepared
            .daily
            .entry((
                run.tenant.clone(),
                run.plugin.clone(),
                day_of(started_at),
                outcome.clone(),
                bucket_of(duration_us),
            ))
            .or_default() += 1;
        // A refusal (capacity, quota, breaker) says nothing about the plugin's code.
        if let (Err(error), Some(message)) = (&run.outcome, &error_message)
            && !error.is_refusal()
        {
            let (signature, template) = signature::of(&outcome, message, &run.tenant);
            let seen = prepared
                .failures
                .entry((run.plugin.clone(), run.version.clone(), signature))
                .or_insert(FailureSeen {
                    code: outcome.clone(),
                    template,
                    failures: 0,
                    first_seen: started_at,
                    last_seen: started_at,
                });
            seen.failures += 1;
            seen.first_seen = seen.first_seen.min(started_at);
            seen.last_seen = seen.last_seen.max(started_at);
        }
        let logs: Vec<StoredLine> = run
            .logs
            .iter()
            .map(|line| StoredLine {
                level: line.level.to_owned(),
                message: redactor.text(&line.message),
                fields: line
                    .fields
                    .iter()
                    .map(|(key, value)| (redactor.text(key), redactor.text(value)))
                    .collect(),
                truncated: line.truncated,
            })
            .collect();
        let event_id = match &run.entry {
            plinth_host::RunEntry::Event { id, .. } => Some(id.clone()),
            _ => None,
        };
        let captured = run.captured.as_ref();
        prepared.rows.push(Row {
            id,
            entry_kind: run.entry.kind(),
            entry: cut(redactor.text(&run.entry.describe()), MAX_TEXT_BYTES),
            event_id,
            started_at,
            duration_us: db_count(duration_us),
            fuel: run.usage.fuel.map(db_count),
            memory_bytes: db_count(run.usage.memory_bytes),
            outbound_requests: i64::from(run.usage.outbound_requests),
            kv_bytes_written: db_count(run.usage.kv_bytes_written),
            outcome,
            error_message,
            output_bytes,
            logs: serde_json::to_string(&logs).unwrap_or_else(|_| "[]".to_owned()),
            logs_dropped: i64::from(run.logs_dropped),
            input: captured.map(|c| redactor.bytes(&c.input)),
            output: captured.map(|c| redactor.bytes(&c.output)),
            capture_truncated: captured.is_some_and(|c| c.truncated),
            tenant: run.tenant.clone(),
            plugin: run.plugin.clone(),
            version: run.version.clone(),
        });
    }
    prepared
}

/// Adds one day's calls of an install (parameters: tenant, plugin, day, outcome, bucket, calls).
pub(super) const UPSERT_DAILY_SQL: &str = "INSERT INTO run_daily (tenant_id, plugin_id, day, outcome, bucket, calls) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (tenant_id, plugin_id, day, outcome, bucket) \
     DO UPDATE SET calls = run_daily.calls + excluded.calls";

/// How many kinds a plugin version's report has, and whether `$3` is one of them
/// (parameters: plugin, version, signature).
pub(super) const KINDS_SQL: &str = "SELECT COUNT(*) AS kinds, \
     COALESCE(SUM(CASE WHEN signature = $3 THEN 1 ELSE 0 END), 0) AS known \
     FROM failure_reports WHERE plugin_id = $1 AND version = $2";

/// Adds failures of one kind (parameters: plugin, version, signature, code, message,
/// failures, first seen, last seen).
pub(super) const UPSERT_FAILURES_SQL: &str = "INSERT INTO failure_reports (plugin_id, version, signature, code, message, \
     failures, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (plugin_id, version, signature) DO UPDATE SET \
     failures = failure_reports.failures + excluded.failures, \
     first_seen = CASE WHEN excluded.first_seen < failure_reports.first_seen \
        THEN excluded.first_seen ELSE failure_reports.first_seen END, \
     last_seen = CASE WHEN excluded.last_seen > failure_reports.last_seen \
        THEN excluded.last_seen ELSE failure_reports.last_seen END";

/// The columns a run is inserted with, in the order rows bind them.
const INSERT_COLUMNS: &str = "INSERT INTO runs (id, tenant_id, plugin_id, version, entry_kind, \
     entry, event_id, started_at, duration_us, fuel, memory_bytes, outbound_requests, \
     kv_bytes_written, outcome, error_message, output_bytes, logs, logs_dropped, input, output, \
     capture_truncated) VALUES ";

/// Columns of [`INSERT_COLUMNS`].
const COLUMNS: usize = 21;

/// An `INSERT` of `rows` runs with parameters `$1`… in [`INSERT_COLUMNS`] order.
pub(super) fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(INSERT_COLUMNS);
    for index in 0..rows {
        if index > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..COLUMNS {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(index * COLUMNS + column + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// The kind failures of `seen` are counted under, given that their version's report has
/// `kinds` kinds and `known` says whether `signature` is one: itself, or past
/// [`MAX_KINDS_PER_VERSION`] the overflow kind. Returns the signature and message.
pub(super) fn kind_to_count(
    signature: &str,
    seen: &FailureSeen,
    kinds: i64,
    known: bool,
) -> (String, String) {
    if !known && kinds >= MAX_KINDS_PER_VERSION {
        signature::of(&seen.code, OVERFLOW_MESSAGE, "")
    } else {
        (signature.to_owned(), seen.template.clone())
    }
}

/// Where runs are stored: on SQLite a writer thread with a connection of its own
/// ([`super::sqlite_writer`]), on PostgreSQL the pool.
#[derive(Debug)]
pub(super) enum Store {
    /// SQLite.
    Sqlite(SqliteRunWriter),
    /// PostgreSQL.
    Postgres(Db),
}

impl Store {
    /// The store of `db`'s runs.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Internal`] if SQLite's writer cannot open the database.
    pub(super) fn open(db: &Db) -> Result<Store> {
        Ok(match db.backend() {
            Backend::Sqlite => Store::Sqlite(SqliteRunWriter::start(db.url())?),
            Backend::Postgres => Store::Postgres(db.clone()),
        })
    }

    /// Stores `batch`: all of it or (on error) none of it. Returns the tenants it wrote runs
    /// for, with how many.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Database`] (or, on SQLite, [`crate::Error::Internal`] with SQLite's
    /// error); nothing of the batch is stored then.
    pub(super) async fn write(&self, batch: &[RunRecord]) -> Result<HashMap<String, u64>> {
        let prepared = prepare(batch);
        let mut written: HashMap<String, u64> = HashMap::new();
        for row in &prepared.rows {
            *written.entry(row.tenant.clone()).or_default() += 1;
        }
        match self {
            Store::Sqlite(writer) => writer.write(prepared).await?,
            Store::Postgres(db) => write_postgres(db, &prepared).await?,
        }
        Ok(written)
    }
}

/// Stores `prepared` through the pool, in one transaction.
async fn write_postgres(db: &Db, prepared: &Prepared) -> Result<()> {
    let mut tx = db.begin().await?;
    for chunk in prepared.rows.chunks(ROWS_PER_INSERT) {
        insert_runs(&mut tx, chunk).await?;
    }
    for ((tenant, plugin, day, outcome, bucket), calls) in &prepared.daily {
        sqlx::query(UPSERT_DAILY_SQL)
            .bind(tenant)
            .bind(plugin)
            .bind(day)
            .bind(outcome)
            .bind(*bucket)
            .bind(*calls)
            .execute(&mut *tx)
            .await?;
    }
    for ((plugin, version, signature), seen) in &prepared.failures {
        let counted = sqlx::query(KINDS_SQL)
            .bind(plugin)
            .bind(version)
            .bind(signature)
            .fetch_one(&mut *tx)
            .await?;
        let kinds: i64 = counted.try_get("kinds")?;
        let known: i64 = counted.try_get("known")?;
        let (signature, message) = kind_to_count(signature, seen, kinds, known > 0);
        sqlx::query(UPSERT_FAILURES_SQL)
            .bind(plugin)
            .bind(version)
            .bind(signature)
            .bind(&seen.code)
            .bind(message)
            .bind(seen.failures)
            .bind(seen.first_seen)
            .bind(seen.last_seen)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Inserts `rows` in one statement.
async fn insert_runs(tx: &mut Tx, rows: &[Row]) -> Result<()> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(insert_sql(rows.len())));
    for row in rows {
        query = query
            .bind(row.id.as_str())
            .bind(row.tenant.as_str())
            .bind(row.plugin.as_str())
            .bind(row.version.as_str())
            .bind(row.entry_kind)
            .bind(row.entry.as_str())
            .bind(row.event_id.as_deref())
            .bind(row.started_at)
            .bind(row.duration_us)
            .bind(row.fuel)
            .bind(row.memory_bytes)
            .bind(row.outbound_requests)
            .bind(row.kv_bytes_written)
            .bind(row.outcome.as_str())
            .bind(row.error_message.as_deref())
            .bind(row.output_bytes)
            .bind(row.logs.as_str())
            .bind(row.logs_dropped)
            .bind(row.input.as_deref())
            .bind(row.output.as_deref())
            .bind(i64::from(row.capture_truncated));
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// A tenant's run log after [`enforce_volume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Volume {
    /// Runs it keeps now.
    pub(crate) runs: u64,
    /// The most its plan keeps.
    pub(crate) max_runs: u64,
    /// Runs dropped to get there.
    pub(crate) dropped: u64,
}

/// Counts `tenant_id`'s runs and drops its oldest beyond its plan's `max_runs`.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub(crate) async fn enforce_volume(db: &Db, tenant_id: &str) -> Result<Volume> {
    let max_runs: Option<i64> = sqlx::query_scalar(
        "SELECT p.max_runs FROM tenants t JOIN plans p ON p.name = t.plan WHERE t.id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(db.pool())
    .await?;
    // A tenant that is gone keeps nothing.
    let max_runs = max_runs.unwrap_or(0).max(0);
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_one(db.pool())
        .await?;
    let volume = |runs: i64, dropped: u64| Volume {
        runs: u64::try_from(runs).unwrap_or(0),
        max_runs: u64::try_from(max_runs).unwrap_or(0),
        dropped,
    };
    if runs <= max_runs {
        return Ok(volume(runs, 0));
    }
    let oldest_kept = sqlx::query(
        "SELECT started_at, id FROM runs WHERE tenant_id = $1 \
         ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET $2",
    )
    .bind(tenant_id)
    .bind(max_runs)
    .fetch_optional(db.pool())
    .await?;
    let Some(first_dropped) = oldest_kept else {
        return Ok(volume(runs, 0));
    };
    let started_at: i64 = first_dropped.try_get("started_at")?;
    let id: String = first_dropped.try_get("id")?;
    let mut tx = db.begin().await?;
    let deleted = sqlx::query(
        "DELETE FROM runs WHERE tenant_id = $1 \
         AND (started_at < $2 OR (started_at = $2 AND id <= $3))",
    )
    .bind(tenant_id)
    .bind(started_at)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(volume(
        runs.saturating_sub(i64::try_from(deleted).unwrap_or(i64::MAX)),
        deleted,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use plinth_host::{InvokeError, RunEntry, Usage};
    use plinth_test_support::TestDatabase;

    use super::*;

    #[test]
    fn long_texts_are_cut_at_a_character() {
        assert_eq!(cut("short".to_owned(), 10), "short");
        let cut_text = cut("é".repeat(10), 8);
        assert!(cut_text.len() <= 8 && cut_text.ends_with('…'), "{cut_text}");
    }

    /// A failed run of `labs.flaky` 1.0.0 whose message is `kind`.
    fn failure(kind: &str) -> RunRecord {
        RunRecord {
            tenant: "t1".into(),
            plugin: "labs.flaky".into(),
            version: "1.0.0".into(),
            entry: RunEntry::Hook { name: "on-install" },
            started_at: SystemTime::now(),
            usage: Usage::default(),
            outcome: Err(InvokeError::PluginError {
                kind: "failed".into(),
                message: format!("failure of kind {kind}"),
            }),
            logs: Vec::new(),
            logs_dropped: 0,
            captured: None,
            secrets: Arc::from(Vec::<String>::new()),
        }
    }

    /// `n` as letters: a word the failure templates keep as it is.
    fn letters(mut n: usize) -> String {
        let mut word = String::new();
        loop {
            word.push(char::from(b'a' + (n % 26) as u8));
            n /= 26;
            if n == 0 {
                return word;
            }
        }
    }

    async fn failure_kinds_are_bounded(database: TestDatabase) -> anyhow::Result<()> {
        let db = Db::connect(&database.url()).await?;
        let store = Store::open(&db)?;
        let kinds = usize::try_from(MAX_KINDS_PER_VERSION)? + 20;
        let batch: Vec<RunRecord> = (0..kinds).map(|n| failure(&letters(n))).collect();
        store.write(&batch).await?;
        // Once more: known kinds keep counting as themselves.
        store.write(&batch[..1]).await?;
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM failure_reports")
            .fetch_one(db.pool())
            .await?;
        assert_eq!(stored, MAX_KINDS_PER_VERSION + 1);
        let total: i64 =
            sqlx::query_scalar("SELECT CAST(SUM(failures) AS BIGINT) FROM failure_reports")
                .fetch_one(db.pool())
                .await?;
        assert_eq!(total, i64::try_from(kinds)? + 1);
        let overflow: i64 =
            sqlx::query_scalar("SELECT failures FROM failure_reports WHERE message = $1")
                .bind(OVERFLOW_MESSAGE)
                .fetch_one(db.pool())
                .await?;
        assert!(overflow >= 20, "{overflow}");
        Ok(())
    }

    #[tokio::test]
    async fn failure_kinds_are_bounded_on_sqlite() -> anyhow::Result<()> {
        failure_kinds_are_bounded(TestDatabase::sqlite()?).await
    }

    #[tokio::test]
    async fn failure_kinds_are_bounded_on_postgres() -> anyhow::Result<()> {
        failure_kinds_are_bounded(TestDatabase::postgres("failure_kinds").await?).await
    }
}
