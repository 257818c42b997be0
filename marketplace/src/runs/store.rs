//! Writing recorded runs: a batch of [`RunRecord`]s becomes, in one transaction, rows of
//! `run_batches` (one per tenant and minute, see [`super::batch`]; secrets redacted),
//! additions to the per-install daily counts (`run_daily`) and to the plugins' failure reports
//! (`failure_reports`), written through the pool.

use std::collections::HashMap;

use plinth_host::RunRecord;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::batch::{self, BatchRow, StoredRun};
use super::daily::{bucket_of, day_of};
use super::signature;
use super::view::RunView;
use crate::clock::DAY_MS;
use crate::db::{Backend, Db, Tx};
use crate::error::{Error, Result};

/// Kinds of failure a report keeps per plugin version; failures of further kinds are counted
/// under one last kind ("more kinds of failure than a report keeps"), so a plugin that fails with ever new messages
/// cannot grow the reports without bound.
pub const MAX_KINDS_PER_VERSION: i64 = 500;

/// The message of the kind further kinds are counted under.
const OVERFLOW_MESSAGE: &str = "(more kinds of failure than a report keeps)";

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

/// What a write adds to the three tables.
pub(super) struct Prepared {
    /// The runs, in batches of one tenant each.
    pub(super) batches: Vec<BatchRow>,
    pub(super) daily: HashMap<DayKey, i64>,
    pub(super) failures: HashMap<FailureKey, FailureSeen>,
}

/// The three tables' additions from `batch`: the runs are serialised from their records as
/// they are ([`RunView`]), redacted where a secret appears, without a copy of each, and
/// encoded in `scratch`.
///
/// # Errors
///
/// [`crate::Error::Internal`] if the runs cannot be serialised.
pub(super) fn prepare(batch: &[RunRecord], scratch: &mut batch::Scratch) -> Result<Prepared> {
    let runs: Vec<RunView<'_>> = batch.iter().map(RunView::of).collect();
    let mut failures: HashMap<FailureKey, FailureSeen> = HashMap::new();
    // Counted under borrowed keys (tenant, plugin, day's start, outcome, bucket): a run adds
    // to a count without allocating.
    let mut calls: HashMap<(&str, &str, i64, &str, i64), i64> = HashMap::new();
    let mut per_tenant: HashMap<&str, Vec<&RunView<'_>>> = HashMap::new();
    for run in &runs {
        let tenant = run.tenant();
        // A refusal (capacity, quota, breaker) says nothing about the plugin's code.
        if let Some(message) = &run.error_message
            && !run.refused()
        {
            let (signature, template) = signature::of(run.outcome, message, tenant);
            let seen = failures
                .entry((run.plugin().to_owned(), run.version().to_owned(), signature))
                .or_insert(FailureSeen {
                    code: run.outcome.to_owned(),
                    template,
                    failures: 0,
                    first_seen: run.started_at,
                    last_seen: run.started_at,
                });
            seen.failures += 1;
            seen.first_seen = seen.first_seen.min(run.started_at);
            seen.last_seen = seen.last_seen.max(run.started_at);
        }
        let day_start = run.started_at - run.started_at.rem_euclid(DAY_MS);
        let bucket = bucket_of(u64::try_from(run.duration_us).unwrap_or(0));
        *calls
            .entry((tenant, run.plugin(), day_start, run.outcome, bucket))
            .or_default() += 1;
        per_tenant.entry(tenant).or_default().push(run);
    }
    let mut daily: HashMap<DayKey, i64> = HashMap::with_capacity(calls.len());
    for ((tenant, plugin, day_start, outcome, bucket), count) in calls {
        let key = (
            tenant.to_owned(),
            plugin.to_owned(),
            day_of(day_start),
            outcome.to_owned(),
            bucket,
        );
        *daily.entry(key).or_default() += count;
    }
    let mut batches = Vec::new();
    for (tenant, mut runs) in per_tenant {
        batches.extend(batch::batches(tenant, &mut runs, scratch)?);
    }
    Ok(Prepared {
        batches,
        daily,
        failures,
    })
}

/// Adds a write's daily counts in one statement, whatever their number: `$1` is a JSON array
/// of `[tenant, plugin, day, outcome, bucket, calls]` rows with distinct keys. One statement
/// rather than one a count: on PostgreSQL each statement is a round trip whose cost (the
/// server's process woken, the protocol on both sides) the `run_log` benchmark measured at
/// more than the upsert itself.
const UPSERT_DAILY_SQLITE: &str = "INSERT INTO run_daily (tenant_id, plugin_id, day, outcome, bucket, calls) \
     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), \
     json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]') \
     FROM json_each($1) WHERE true \
     ON CONFLICT (tenant_id, plugin_id, day, outcome, bucket) \
     DO UPDATE SET calls = run_daily.calls + excluded.calls";

/// [`UPSERT_DAILY_SQLITE`] for PostgreSQL.
const UPSERT_DAILY_POSTGRES: &str = "INSERT INTO run_daily (tenant_id, plugin_id, day, outcome, bucket, calls) \
     SELECT d.v ->> 0, d.v ->> 1, d.v ->> 2, d.v ->> 3, CAST(d.v ->> 4 AS BIGINT), \
     CAST(d.v ->> 5 AS BIGINT) \
     FROM jsonb_array_elements(CAST($1 AS JSONB)) AS d(v) \
     ON CONFLICT (tenant_id, plugin_id, day, outcome, bucket) \
     DO UPDATE SET calls = run_daily.calls + excluded.calls";

/// How many kinds a plugin version's report has, and whether `$3` is one of them
/// (parameters: plugin, version, signature).
const KINDS_SQL: &str = "SELECT COUNT(*) AS kinds, \
     COALESCE(SUM(CASE WHEN signature = $3 THEN 1 ELSE 0 END), 0) AS known \
     FROM failure_reports WHERE plugin_id = $1 AND version = $2";

/// Adds failures of one kind (parameters: plugin, version, signature, code, message,
/// failures, first seen, last seen).
const UPSERT_FAILURES_SQL: &str = "INSERT INTO failure_reports (plugin_id, version, signature, code, message, \
     failures, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (plugin_id, version, signature) DO UPDATE SET \
     failures = failure_reports.failures + excluded.failures, \
     first_seen = CASE WHEN excluded.first_seen < failure_reports.first_seen \
        THEN excluded.first_seen ELSE failure_reports.first_seen END, \
     last_seen = CASE WHEN excluded.last_seen > failure_reports.last_seen \
        THEN excluded.last_seen ELSE failure_reports.last_seen END";

/// Inserts a batch (parameters: tenant, last at, id, first at, runs, failures, body).
const INSERT_BATCH_SQL: &str = "INSERT INTO run_batches \
     (tenant_id, last_at, id, first_at, runs, failures, body) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The kind failures of `seen` are counted under, given that their version's report has
/// `kinds` kinds and `known` says whether `signature` is one: itself, or past
/// [`MAX_KINDS_PER_VERSION`] the overflow kind. Returns the signature and message.
fn kind_to_count(signature: &str, seen: &FailureSeen, kinds: i64, known: bool) -> (String, String) {
    if !known && kinds >= MAX_KINDS_PER_VERSION {
        signature::of(&seen.code, OVERFLOW_MESSAGE, "")
    } else {
        (signature.to_owned(), seen.template.clone())
    }
}

/// Stores `prepared` (see [`prepare`]) in one transaction: all of it or (on error) none of it.
///
/// # Errors
///
/// [`crate::Error::Database`]; nothing of it is stored then.
pub(super) async fn write(db: &Db, prepared: &Prepared) -> Result<()> {
    let mut tx = db.begin().await?;
    for row in &prepared.batches {
        sqlx::query(INSERT_BATCH_SQL)
            .bind(&row.tenant)
            .bind(row.last_at)
            .bind(&row.id)
            .bind(row.first_at)
            .bind(row.runs)
            .bind(row.failures)
            .bind(row.body.as_slice())
            .execute(&mut *tx)
            .await?;
    }
    if !prepared.daily.is_empty() {
        let rows: Vec<_> = prepared
            .daily
            .iter()
            .map(|((tenant, plugin, day, outcome, bucket), calls)| {
                (tenant, plugin, day, outcome, bucket, calls)
            })
            .collect();
        let rows = serde_json::to_string(&rows)
            .map_err(|e| Error::Internal(format!("cannot serialise the daily counts: {e}")))?;
        let upsert = match db.backend() {
            Backend::Sqlite => UPSERT_DAILY_SQLITE,
            Backend::Postgres => UPSERT_DAILY_POSTGRES,
        };
        sqlx::query(upsert).bind(rows).execute(&mut *tx).await?;
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

/// Counts `tenant_id`'s runs and drops its oldest beyond its plan's `max_runs`: whole batches,
/// then the oldest runs of the next (see [`trim`]). Its runs shared with publishers go with
/// them.
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
    let runs: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(runs), 0) AS BIGINT) FROM run_batches WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_one(db.pool())
    .await?;
    let volume = |runs: i64, dropped: i64| Volume {
        runs: u64::try_from(runs).unwrap_or(0),
        max_runs: u64::try_from(max_runs).unwrap_or(0),
        dropped: u64::try_from(dropped).unwrap_or(0),
    };
    let mut excess = runs - max_runs;
    if excess <= 0 {
        return Ok(volume(runs, 0));
    }
    // The oldest batches, as many as the excess reaches into.
    let mut dropped = 0;
    let mut whole: Option<(i64, String)> = None;
    let mut partial: Option<(i64, String)> = None;
    let mut after = (i64::MIN, String::new());
    'batches: while excess > 0 {
        let oldest = sqlx::query(
            "SELECT last_at, id, runs FROM run_batches WHERE tenant_id = $1 \
             AND (last_at > $2 OR (last_at = $2 AND id > $3)) \
             ORDER BY last_at, id LIMIT 256",
        )
        .bind(tenant_id)
        .bind(after.0)
        .bind(&after.1)
        .fetch_all(db.pool())
        .await?;
        if oldest.is_empty() {
            break;
        }
        for row in &oldest {
            let key: (i64, String) = (row.try_get("last_at")?, row.try_get("id")?);
            let batch_runs: i64 = row.try_get("runs")?;
            if batch_runs > excess {
                partial = Some(key);
                break 'batches;
            }
            excess -= batch_runs;
            dropped += batch_runs;
            whole = Some(key.clone());
            after = key;
            if excess == 0 {
                break 'batches;
            }
        }
    }
    let mut tx = db.begin().await?;
    if let Some((last_at, id)) = &whole {
        sqlx::query(
            "DELETE FROM run_batches WHERE tenant_id = $1 \
             AND (last_at < $2 OR (last_at = $2 AND id <= $3))",
        )
        .bind(tenant_id)
        .bind(*last_at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(key) = &partial {
        let excess = usize::try_from(excess).unwrap_or(usize::MAX);
        dropped += trim(&mut tx, tenant_id, key, |runs| {
            runs.iter().skip(excess).cloned().collect()
        })
        .await?;
    }
    // Shared runs older than the oldest run kept go too.
    let oldest_kept: Option<i64> =
        sqlx::query_scalar("SELECT MIN(first_at) FROM run_batches WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query("DELETE FROM shared_runs WHERE tenant_id = $1 AND started_at < $2")
        .bind(tenant_id)
        .bind(oldest_kept.unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(volume(runs - dropped, dropped))
}

/// Rewrites `tenant_id`'s batch `key` (`last_at`, id) with the runs `keep` keeps of it
/// (given oldest first), or deletes it if none are kept. Returns how many runs it removed:
/// none if the batch is gone or was changed meanwhile (its run count no longer the one read).
///
/// # Errors
///
/// [`crate::Error::Database`], or [`crate::Error::Internal`] for a batch that does not decode.
pub(super) async fn trim(
    tx: &mut Tx,
    tenant_id: &str,
    key: &(i64, String),
    keep: impl FnOnce(&[StoredRun]) -> Vec<StoredRun>,
) -> Result<i64> {
    let Some(row) = sqlx::query(
        "SELECT runs, body FROM run_batches WHERE tenant_id = $1 AND last_at = $2 AND id = $3",
    )
    .bind(tenant_id)
    .bind(key.0)
    .bind(&key.1)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(0);
    };
    let runs_before: i64 = row.try_get("runs")?;
    let body: Vec<u8> = row.try_get("body")?;
    let runs = batch::decode(&body)?;
    let kept = keep(&runs);
    let removed = i64::try_from(runs.len() - kept.len().min(runs.len())).unwrap_or(0);
    let changed = if kept.is_empty() {
        sqlx::query(
            "DELETE FROM run_batches WHERE tenant_id = $1 AND last_at = $2 AND id = $3 \
             AND runs = $4",
        )
        .bind(tenant_id)
        .bind(key.0)
        .bind(&key.1)
        .bind(runs_before)
        .execute(&mut **tx)
        .await?
    } else {
        let rewritten = batch::row_of(
            tenant_id,
            &kept.iter().collect::<Vec<_>>(),
            &mut batch::Scratch::default(),
        )?;
        sqlx::query(
            "UPDATE run_batches SET last_at = $1, id = $2, first_at = $3, runs = $4, \
             failures = $5, body = $6 \
             WHERE tenant_id = $7 AND last_at = $8 AND id = $9 AND runs = $10",
        )
        .bind(rewritten.last_at)
        .bind(&rewritten.id)
        .bind(rewritten.first_at)
        .bind(rewritten.runs)
        .bind(rewritten.failures)
        .bind(rewritten.body.as_slice())
        .bind(tenant_id)
        .bind(key.0)
        .bind(&key.1)
        .bind(runs_before)
        .execute(&mut **tx)
        .await?
    }
    .rows_affected();
    Ok(if changed > 0 { removed } else { 0 })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use plinth_host::{InvokeError, RunEntry, Usage};
    use plinth_test_support::TestDatabase;

    use super::*;

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
        let once_more = batch[..1].to_vec();
        write(&db, &prepare(&batch, &mut Default::default())?).await?;
        // Once more: known kinds keep counting as themselves.
        write(&db, &prepare(&once_more, &mut Default::default())?).await?;
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

    /// Noon of one day: every run of the daily counts' test starts then.
    fn noon() -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(20_000 * 86_400 + 43_200)
    }

    /// A failed run of `t1` at [`noon`].
    fn failure_at_noon(kind: &str) -> RunRecord {
        RunRecord {
            started_at: noon(),
            ..failure(kind)
        }
    }

    /// A successful run for `tenant` at [`noon`] that took `micros`.
    fn success(tenant: &str, micros: u64) -> RunRecord {
        RunRecord {
            tenant: tenant.into(),
            started_at: noon(),
            usage: Usage {
                wall: std::time::Duration::from_micros(micros),
                ..Usage::default()
            },
            outcome: Ok(1),
            ..failure("none")
        }
    }

    async fn daily_counts_add_up_across_writes(database: TestDatabase) -> anyhow::Result<()> {
        let db = Db::connect(&database.url()).await?;
        // One write: two tenants, two duration buckets, a failure.
        let first = vec![
            success("t1", 5),
            success("t1", 5),
            success("t1", 900),
            failure_at_noon("a"),
            success("t2", 5),
        ];
        write(&db, &prepare(&first, &mut Default::default())?).await?;
        // Another: keys the first wrote add to their counts; a new one is a row of its own.
        let second = vec![
            success("t1", 5),
            failure_at_noon("b"),
            success("t2", 70_000),
        ];
        write(&db, &prepare(&second, &mut Default::default())?).await?;
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT tenant_id, outcome, bucket, calls FROM run_daily WHERE day = $1 \
             ORDER BY tenant_id, outcome, bucket",
        )
        .bind(day_of(20_000 * DAY_MS))
        .fetch_all(db.pool())
        .await?;
        let mut expected = vec![
            ("t1".to_owned(), "ok".to_owned(), bucket_of(5), 3),
            ("t1".to_owned(), "ok".to_owned(), bucket_of(900), 1),
            ("t1".to_owned(), "plugin_error".to_owned(), bucket_of(0), 2),
            ("t2".to_owned(), "ok".to_owned(), bucket_of(5), 1),
            ("t2".to_owned(), "ok".to_owned(), bucket_of(70_000), 1),
        ];
        expected.sort();
        assert_eq!(rows, expected);
        Ok(())
    }

    #[tokio::test]
    async fn daily_counts_add_up_across_writes_on_sqlite() -> anyhow::Result<()> {
        daily_counts_add_up_across_writes(TestDatabase::sqlite()?).await
    }

    #[tokio::test]
    async fn daily_counts_add_up_across_writes_on_postgres() -> anyhow::Result<()> {
        daily_counts_add_up_across_writes(TestDatabase::postgres("daily_counts").await?).await
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
