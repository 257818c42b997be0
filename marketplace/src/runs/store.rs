//! Writing recorded runs: a batch of [`RunRecord`]s becomes, in one transaction, rows of `runs`
//! (secrets redacted), additions to the per-install daily counts (`run_daily`) and to the
//! plugins' failure reports (`failure_reports`).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use plinth_host::RunRecord;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::daily::{bucket_of, day_of};
use super::redact::Redactor;
use super::signature;
use crate::db::{Db, Tx};
use crate::error::Result;
use crate::id::new_id;

/// Rows one `INSERT` writes at most (21 parameters each: within both backends' limits).
const ROWS_PER_INSERT: usize = 64;

/// Kinds of failure a report keeps per plugin version; failures of further kinds are counted
/// under one last kind ([`OVERFLOW_MESSAGE`]), so a plugin that fails with ever new messages
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
struct Row {
    id: String,
    tenant: String,
    plugin: String,
    version: String,
    entry_kind: &'static str,
    entry: String,
    event_id: Option<String>,
    started_at: i64,
    duration_us: i64,
    fuel: Option<i64>,
    memory_bytes: i64,
    outbound_requests: i64,
    kv_bytes_written: i64,
    outcome: String,
    error_message: Option<String>,
    output_bytes: i64,
    logs: String,
    logs_dropped: i64,
    input: Option<Vec<u8>>,
    output: Option<Vec<u8>>,
    capture_truncated: bool,
}

/// A count as the database stores it (BIGINT), saturating.
fn db_count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Key of a daily count: tenant, plugin, day, outcome, duration bucket.
type DayKey = (String, String, String, String, i64);
/// Key of a failure report: plugin, version, signature.
type FailureKey = (String, String, String);

/// A failure report's additions from one batch.
struct FailureSeen {
    code: String,
    template: String,
    failures: i64,
    first_seen: i64,
    last_seen: i64,
}

/// What a batch adds to the three tables.
struct Prepared {
    rows: Vec<Row>,
    daily: HashMap<DayKey, i64>,
    failures: HashMap<FailureKey, FailureSeen>,
}

fn prepare(batch: &[RunRecord]) -> Prepared {
    let mut prepared = Prepared {
        rows: Vec::with_capacity(batch.len()),
        daily: HashMap::new(),
        failures: HashMap::new(),
    };
    for run in batch {
        let redactor = Redactor::new(&run.secrets);
        let started_at = unix_ms(run.started_at);
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
            id: new_id(),
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

/// Stores `batch`: all of it or (on error) none of it. Returns the tenants it wrote runs for,
/// with how many.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub(crate) async fn write(db: &Db, batch: &[RunRecord]) -> Result<HashMap<String, u64>> {
    let prepared = prepare(batch);
    let mut written: HashMap<String, u64> = HashMap::new();
    for row in &prepared.rows {
        *written.entry(row.tenant.clone()).or_default() += 1;
    }
    let mut tx = db.begin().await?;
    for chunk in prepared.rows.chunks(ROWS_PER_INSERT) {
        insert_runs(&mut tx, chunk).await?;
    }
    for ((tenant, plugin, day, outcome, bucket), calls) in &prepared.daily {
        sqlx::query(
            "INSERT INTO run_daily (tenant_id, plugin_id, day, outcome, bucket, calls) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, plugin_id, day, outcome, bucket) \
             DO UPDATE SET calls = run_daily.calls + excluded.calls",
        )
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
        let counted = sqlx::query(
            "SELECT COUNT(*) AS kinds, \
             COALESCE(SUM(CASE WHEN signature = $3 THEN 1 ELSE 0 END), 0) AS known \
             FROM failure_reports WHERE plugin_id = $1 AND version = $2",
        )
        .bind(plugin)
        .bind(version)
        .bind(signature)
        .fetch_one(&mut *tx)
        .await?;
        let kinds: i64 = counted.try_get("kinds")?;
        let known: i64 = counted.try_get("known")?;
        let overflow;
        let (signature, template) = if known == 0 && kinds >= MAX_KINDS_PER_VERSION {
            overflow = signature::of(&seen.code, OVERFLOW_MESSAGE, "");
            (&overflow.0, &overflow.1)
        } else {
            (signature, &seen.template)
        };
        sqlx::query(
            "INSERT INTO failure_reports (plugin_id, version, signature, code, message, \
             failures, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (plugin_id, version, signature) DO UPDATE SET \
             failures = failure_reports.failures + excluded.failures, \
             first_seen = CASE WHEN excluded.first_seen < failure_reports.first_seen \
                THEN excluded.first_seen ELSE failure_reports.first_seen END, \
             last_seen = CASE WHEN excluded.last_seen > failure_reports.last_seen \
                THEN excluded.last_seen ELSE failure_reports.last_seen END",
        )
        .bind(plugin)
        .bind(version)
        .bind(signature)
        .bind(&seen.code)
        .bind(template)
        .bind(seen.failures)
        .bind(seen.first_seen)
        .bind(seen.last_seen)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(written)
}

async fn insert_runs(tx: &mut Tx, rows: &[Row]) -> Result<()> {
    const COLUMNS: usize = 21;
    let mut sql = String::from(
        "INSERT INTO runs (id, tenant_id, plugin_id, version, entry_kind, entry, event_id, \
         started_at, duration_us, fuel, memory_bytes, outbound_requests, kv_bytes_written, \
         outcome, error_message, output_bytes, logs, logs_dropped, input, output, \
         capture_truncated) VALUES ",
    );
    for index in 0..rows.len() {
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
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for row in rows {
        query = query
            .bind(row.id.clone())
            .bind(row.tenant.clone())
            .bind(row.plugin.clone())
            .bind(row.version.clone())
            .bind(row.entry_kind)
            .bind(row.entry.clone())
            .bind(row.event_id.clone())
            .bind(row.started_at)
            .bind(row.duration_us)
            .bind(row.fuel)
            .bind(row.memory_bytes)
            .bind(row.outbound_requests)
            .bind(row.kv_bytes_written)
            .bind(row.outcome.clone())
            .bind(row.error_message.clone())
            .bind(row.output_bytes)
            .bind(row.logs.clone())
            .bind(row.logs_dropped)
            .bind(row.input.clone())
            .bind(row.output.clone())
            .bind(i64::from(row.capture_truncated));
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Drops `tenant_id`'s oldest runs beyond its plan's `max_runs`; returns how many went.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub(crate) async fn enforce_volume(db: &Db, tenant_id: &str) -> Result<u64> {
    let max_runs: Option<i64> = sqlx::query_scalar(
        "SELECT p.max_runs FROM tenants t JOIN plans p ON p.name = t.plan WHERE t.id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(db.pool())
    .await?;
    // A tenant that is gone keeps nothing.
    let max_runs = max_runs.unwrap_or(0).max(0);
    let oldest_kept = sqlx::query(
        "SELECT started_at, id FROM runs WHERE tenant_id = $1 \
         ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET $2",
    )
    .bind(tenant_id)
    .bind(max_runs)
    .fetch_optional(db.pool())
    .await?;
    let Some(first_dropped) = oldest_kept else {
        return Ok(0);
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
    Ok(deleted)
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
        let kinds = usize::try_from(MAX_KINDS_PER_VERSION)? + 20;
        let batch: Vec<RunRecord> = (0..kinds).map(|n| failure(&letters(n))).collect();
        write(&db, &batch).await?;
        // Once more: known kinds keep counting as themselves.
        write(&db, &batch[..1]).await?;
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM failure_reports")
            .fetch_one(db.pool())
            .await?;
        assert_eq!(stored, MAX_KINDS_PER_VERSION + 1);
        let total: i64 = sqlx::query_scalar("SELECT CAST(SUM(failures) AS BIGINT) FROM failure_reports")
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
