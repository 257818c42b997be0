//! The queue's storage: claiming due events under a lease, fanning an event out within its
//! tree's budget, and recording an attempt. Every write that follows a claim checks the
//! claim's lease token, so a worker that lost its lease changes nothing.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DEAD, DELIVERED, QUEUED};
use crate::db::{Backend, Db, Tx};
use crate::error::{Error, Result};

/// The longest output of one plugin kept with its result; longer ones are cut.
pub const MAX_OUTPUT_KEPT: usize = 16 * 1024;

/// The longest error message kept.
const MAX_ERROR_CHARS: usize = 500;

/// An event a worker holds under a lease.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The event's id.
    pub id: String,
    /// Whose event it is.
    pub tenant_id: String,
    /// The event its tree started from (itself for an event sent from outside).
    pub root_id: String,
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Emit hops that led to it.
    pub depth: u32,
    /// The one plugin it is for (a schedule's tick), or every subscriber.
    pub target_plugin: Option<String>,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    /// Attempts it may have.
    pub max_attempts: u32,
    /// The plugins still to deliver to; `None` before the first attempt fanned it out.
    pub pending: Option<Vec<String>>,
    /// The claim's token: later writes happen only while it still holds the lease.
    pub lease_token: String,
}

/// Claims up to `most` due events, at most `per_tenant` of one tenant, none of `busy`
/// tenants, until `lease_until`. Each claim counts an attempt.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn claim(
    db: &Db,
    token: &str,
    now: i64,
    lease_until: i64,
    most: usize,
    per_tenant: usize,
    busy: &[String],
) -> Result<Vec<Claimed>> {
    if most == 0 {
        return Ok(Vec::new());
    }
    let mut busy_clause = String::new();
    for index in 0..busy.len() {
        busy_clause.push_str(if index == 0 {
            " AND tenant_id NOT IN ("
        } else {
            ", "
        });
        busy_clause.push_str(&format!("${}", index + 6));
    }
    if !busy.is_empty() {
        busy_clause.push(')');
    }
    // The middle query repeats the due conditions: on PostgreSQL a row locked after another
    // claimer committed is checked again against its new version, and skipped.
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let due = "status = 'queued' AND next_attempt_at <= $3 \
               AND (lease_until IS NULL OR lease_until < $3)";
    let sql = format!(
        "UPDATE queued_events SET lease_token = $1, lease_until = $2, attempts = attempts + 1 \
         WHERE {due} AND id IN ( \
             SELECT id FROM queued_events WHERE {due} AND id IN ( \
                 SELECT id FROM ( \
                     SELECT id, next_attempt_at, ROW_NUMBER() OVER ( \
                         PARTITION BY tenant_id ORDER BY next_attempt_at, id) AS place \
                     FROM queued_events WHERE {due}{busy_clause} \
                 ) ranked WHERE place <= $4 ORDER BY next_attempt_at, id LIMIT $5 \
             ){lock} \
         ) \
         RETURNING id, tenant_id, root_id, topic, payload, depth, target_plugin, attempts, \
                   max_attempts, pending"
    );
    // Built from constants and numbered placeholders only.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(token)
        .bind(lease_until)
        .bind(now)
        .bind(i64::try_from(per_tenant.max(1)).unwrap_or(i64::MAX))
        .bind(i64::try_from(most).unwrap_or(i64::MAX));
    for tenant in busy {
        query = query.bind(tenant);
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter().map(|row| claimed(row, token)).collect()
}

fn claimed(row: &AnyRow, token: &str) -> Result<Claimed> {
    let pending: Option<String> = row.try_get("pending")?;
    Ok(Claimed {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        root_id: row.try_get("root_id")?,
        topic: row.try_get("topic")?,
        payload: row.try_get("payload")?,
        depth: u32::try_from(row.try_get::<i64, _>("depth")?).unwrap_or(u32::MAX),
        target_plugin: row.try_get("target_plugin")?,
        attempt: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        max_attempts: u32::try_from(row.try_get::<i64, _>("max_attempts")?).unwrap_or(1),
        pending: pending.map(|text| plugins(&text)).transpose()?,
        lease_token: token.to_owned(),
    })
}

fn plugins(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(format!("a queued event's plugin list: {e}")))
}

fn plugin_list(plugins: &[String]) -> String {
    serde_json::Value::from(plugins.to_vec()).to_string()
}

/// Extends the lease of `event` to `until`; `false` when another worker holds it now.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn renew(db: &Db, event: &Claimed, until: i64) -> Result<bool> {
    let renewed =
        sqlx::query("UPDATE queued_events SET lease_until = $1 WHERE id = $2 AND lease_token = $3")
            .bind(until)
            .bind(&event.id)
            .bind(&event.lease_token)
            .execute(db.pool())
            .await?;
    Ok(renewed.rows_affected() == 1)
}

/// The first attempt's fan-out: of `targets`, those the tree's budget still allows are
/// stored as the event's pending plugins (and returned); the rest are recorded as skipped.
/// `None` when the lease was lost.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn fan_out(
    db: &Db,
    event: &Claimed,
    targets: &[String],
    now: i64,
) -> Result<Option<Vec<String>>> {
    let mut tx = db.begin_tenant(&event.tenant_id).await?;
    let wanted = i64::try_from(targets.len()).unwrap_or(i64::MAX);
    let granted = reserve(&mut tx, &event.root_id, wanted).await?;
    let granted = usize::try_from(granted).unwrap_or(0).min(targets.len());
    let (allowed, skipped) = targets.split_at(granted);
    let stored =
        sqlx::query("UPDATE queued_events SET pending = $1 WHERE id = $2 AND lease_token = $3")
            .bind(plugin_list(allowed))
            .bind(&event.id)
            .bind(&event.lease_token)
            .execute(&mut *tx)
            .await?;
    if stored.rows_affected() == 0 {
        return Ok(None);
    }
    for plugin in skipped {
        insert_result(
            &mut tx,
            &event.id,
            event.attempt,
            &Outcome {
                plugin: plugin.clone(),
                version: String::new(),
                kind: OutcomeKind::Skipped,
                output: None,
                error: Some((
                    "event_budget_exhausted".to_owned(),
                    "the event's tree used its plan's invocations per event".to_owned(),
                )),
                emitted: Vec::new(),
                retry_after: None,
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Some(allowed.to_vec()))
}

/// Takes up to `wanted` invocations from the budget of the tree rooted at `root_id`;
/// returns how many it got (0 when the root is gone).
async fn reserve(tx: &mut Tx, root_id: &str, wanted: i64) -> Result<i64> {
    // Compare-and-set: PostgreSQL's transactions may interleave here.
    for _ in 0..16 {
        let Some(row) = sqlx::query("SELECT budget, budget_used FROM queued_events WHERE id = $1")
            .bind(root_id)
            .fetch_optional(&mut **tx)
            .await?
        else {
            return Ok(0);
        };
        let (budget, used): (i64, i64) = (row.try_get("budget")?, row.try_get("budget_used")?);
        let granted = wanted.min(budget.saturating_sub(used)).max(0);
        if granted == 0 {
            return Ok(0);
        }
        let taken = sqlx::query(
            "UPDATE queued_events SET budget_used = budget_used + $1 \
             WHERE id = $2 AND budget_used = $3",
        )
        .bind(granted)
        .bind(root_id)
        .bind(used)
        .execute(&mut **tx)
        .await?;
        if taken.rows_affected() == 1 {
            return Ok(granted);
        }
    }
    Err(Error::Internal(format!(
        "the budget of event {root_id} kept changing under this reservation"
    )))
}

/// How one plugin's delivery in an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// It ran and returned.
    Ok,
    /// It failed and will be tried again.
    Retry,
    /// It failed for good (its attempts are used, or trying again cannot help).
    Failed,
    /// It was not made: the budget did not allow it, or the install is gone.
    Skipped,
}

impl OutcomeKind {
    /// `ok`, `retry`, `failed` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Ok => "ok",
            OutcomeKind::Retry => "retry",
            OutcomeKind::Failed => "failed",
            OutcomeKind::Skipped => "skipped",
        }
    }
}

/// One plugin's delivery in an attempt.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The plugin.
    pub plugin: String,
    /// The version that handled it (empty when none did).
    pub version: String,
    /// How it ended.
    pub kind: OutcomeKind,
    /// Its output, if it returned one.
    pub output: Option<Vec<u8>>,
    /// `(code, message)` when it failed or was skipped.
    pub error: Option<(String, String)>,
    /// What it emitted: `(topic, payload, depth)`, queued as events of their own.
    pub emitted: Vec<(String, Vec<u8>, u32)>,
    /// The least wait before trying again, when a refusal said how long.
    pub retry_after: Option<std::time::Duration>,
}

/// Where an attempt leaves the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Try the pending plugins again at this time.
    RetryAt(i64),
    /// Finished.
    Finished,
}

/// Records an attempt of `event`: each plugin's outcome, the events they emitted, and the
/// event's new state (`next` for what is left to retry). Returns that state (`queued`,
/// `delivered` or `dead`), or `None` when the lease was lost: nothing is written then.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn record(
    db: &Db,
    event: &Claimed,
    outcomes: &[Outcome],
    next: &Next,
    now: i64,
) -> Result<Option<&'static str>> {
    let retry: Vec<String> = outcomes
        .iter()
        .filter(|o| o.kind == OutcomeKind::Retry)
        .map(|o| o.plugin.clone())
        .collect();
    let newly_failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.kind == OutcomeKind::Failed)
        .map(|o| o.plugin.clone())
        .collect();
    let last_error = outcomes
        .iter()
        .rev()
        .filter(|o| matches!(o.kind, OutcomeKind::Retry | OutcomeKind::Failed))
        .find_map(|o| o.error.as_ref())
        .map(|(code, message)| format!("{code}: {message}"));
    let mut tx = db.begin_tenant(&event.tenant_id).await?;
    let previous: Option<String> =
        sqlx::query_scalar("SELECT failed FROM queued_events WHERE id = $1 AND lease_token = $2")
            .bind(&event.id)
            .bind(&event.lease_token)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
    let mut failed = previous
        .as_deref()
        .map(plugins)
        .transpose()?
        .unwrap_or_default();
    failed.extend(newly_failed);
    let (status, next_attempt_at, finished_at) = match next {
        Next::RetryAt(at) if !retry.is_empty() => (QUEUED, *at, None),
        _ if failed.is_empty() => (DELIVERED, now, Some(now)),
        _ => (DEAD, now, Some(now)),
    };
    let updated = sqlx::query(
        "UPDATE queued_events SET status = $1, pending = $2, failed = $3, next_attempt_at = $4, \
                                  finished_at = $5, last_error = COALESCE($6, last_error), \
                                  lease_token = NULL, lease_until = NULL \
         WHERE id = $7 AND lease_token = $8",
    )
    .bind(status)
    .bind(plugin_list(&retry))
    .bind((!failed.is_empty()).then(|| plugin_list(&failed)))
    .bind(next_attempt_at)
    .bind(finished_at)
    .bind(last_error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect::<String>()))
    .bind(&event.id)
    .bind(&event.lease_token)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    for outcome in outcomes {
        insert_result(&mut tx, &event.id, event.attempt, outcome, now).await?;
        for (index, (topic, payload, depth)) in outcome.emitted.iter().enumerate() {
            sqlx::query(
                "INSERT INTO queued_events (id, tenant_id, root_id, parent_id, topic, payload, \
                     depth, status, max_attempts, budget, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(emitted_id(&event.id, &outcome.plugin, index))
            .bind(&event.tenant_id)
            .bind(&event.root_id)
            .bind(&event.id)
            .bind(topic)
            .bind(payload)
            .bind(i64::from(*depth))
            .bind(QUEUED)
            .bind(i64::from(event.max_attempts))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Some(status))
}

/// The id of the `index`-th event `plugin` emitted while handling `parent`: the same on every
/// redelivery of the parent (a UUIDv8 made of their SHA-256), so a plugin sees one id for it.
pub fn emitted_id(parent: &str, plugin: &str, index: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in [parent.as_bytes(), plugin.as_bytes()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update((index as u64).to_be_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

async fn insert_result(
    tx: &mut Tx,
    event_id: &str,
    attempt: u32,
    outcome: &Outcome,
    now: i64,
) -> Result<()> {
    let output = outcome
        .output
        .as_ref()
        .map(|bytes| bytes[..bytes.len().min(MAX_OUTPUT_KEPT)].to_vec());
    let (code, message) = match &outcome.error {
        Some((code, message)) => (
            Some(code.clone()),
            Some(message.chars().take(MAX_ERROR_CHARS).collect::<String>()),
        ),
        None => (None, None),
    };
    sqlx::query(
        "INSERT INTO queued_event_results (event_id, plugin, attempt, version, outcome, output, \
             error_code, error_message, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event_id)
    .bind(&outcome.plugin)
    .bind(i64::from(attempt))
    .bind(&outcome.version)
    .bind(outcome.kind.as_str())
    .bind(output)
    .bind(code)
    .bind(message)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes events finished before `before` with their results; returns how many.
/// Roots whose tree still has queued events are kept (their budget is still in use).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn prune(db: &Db, before: i64) -> Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM queued_events WHERE finished_at IS NOT NULL AND finished_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM queued_events waiting \
                         WHERE waiting.root_id = queued_events.id AND waiting.status = 'queued')",
    )
    .bind(before)
    .execute(db.pool())
    .await?;
    Ok(deleted.rows_affected())
}
