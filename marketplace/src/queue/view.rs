//! A queued event as its tenant reads it: status, attempts and each plugin's result.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::db::Db;
use crate::error::{Error, Result};

/// The most events one page lists.
pub const MAX_PAGE: i64 = 100;

/// One plugin's result in one attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResult {
    /// The plugin.
    pub plugin: String,
    /// The attempt (1 for the first).
    pub attempt: i64,
    /// The version that handled it (empty when none did).
    pub version: String,
    /// `ok`, `retry` (failed; tried again), `failed` (for good) or `skipped` (the event's
    /// budget did not allow it, or the install is gone).
    pub outcome: String,
    /// The plugin's output: its JSON, or its text when it is not JSON (the first 16 KiB).
    #[schema(value_type = Object)]
    pub output: Value,
    /// `{code, message}` when it failed or was skipped, else null.
    #[schema(value_type = Object)]
    pub error: Value,
    /// When it was recorded (Unix ms).
    pub at: i64,
}

/// A queued event.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedEventView {
    /// The event's id (what the plugin receives as the event's id).
    pub id: String,
    /// Its topic.
    pub topic: String,
    /// `queued`, `delivered` or `dead`.
    pub status: String,
    /// Attempts made (each counts once it is claimed).
    pub attempts: i64,
    /// Attempts it may have (the plan's `event_attempts`).
    pub max_attempts: i64,
    /// Emit hops that led to it (0 for an event sent from outside).
    pub depth: i64,
    /// The event whose plugin emitted it, if one did.
    pub parent_id: Option<String>,
    /// The event its tree started from.
    pub root_id: String,
    /// The one plugin it is for (a schedule's tick), if it is not for every subscriber.
    pub plugin: Option<String>,
    /// When it is (or was last) due (Unix ms).
    pub next_attempt_at: i64,
    /// When it was accepted (Unix ms).
    pub created_at: i64,
    /// When it was delivered or dead-lettered (Unix ms).
    pub finished_at: Option<i64>,
    /// The last failure, `code: message`.
    pub last_error: Option<String>,
    /// Every plugin's result in every attempt, oldest first (only in a single event's view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<AttemptResult>>,
}

/// The columns of a [`QueuedEventView`], in SQL.
macro_rules! columns {
    () => {
        "id, topic, status, attempts, max_attempts, depth, parent_id, root_id, target_plugin, \
         next_attempt_at, created_at, finished_at, last_error"
    };
}

fn from_row(row: &AnyRow) -> Result<QueuedEventView> {
    Ok(QueuedEventView {
        id: row.try_get("id")?,
        topic: row.try_get("topic")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        depth: row.try_get("depth")?,
        parent_id: row.try_get("parent_id")?,
        root_id: row.try_get("root_id")?,
        plugin: row.try_get("target_plugin")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
        last_error: row.try_get("last_error")?,
        results: None,
    })
}

/// Event `id` of tenant `tenant_id`, with its results (read in the tenant's scope).
///
/// # Errors
///
/// [`Error::NotFound`] when the tenant has no such event; [`Error::Database`].
pub async fn event(db: &Db, tenant_id: &str, id: &str) -> Result<QueuedEventView> {
    let mut tx = db.begin_tenant_read(tenant_id).await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM queued_events WHERE id = $1 AND tenant_id = $2"
    ))
    .bind(id)
    .bind(tenant_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found(format!("event {id:?}")))?;
    let mut view = from_row(&row)?;
    let results = sqlx::query(
        "SELECT plugin, attempt, version, outcome, output, error_code, error_message, at \
         FROM queued_event_results WHERE event_id = $1 ORDER BY attempt, plugin",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    view.results = Some(
        results
            .iter()
            .map(|row| {
                let output: Option<Vec<u8>> = row.try_get("output")?;
                let code: Option<String> = row.try_get("error_code")?;
                let message: Option<String> = row.try_get("error_message")?;
                Ok(AttemptResult {
                    plugin: row.try_get("plugin")?,
                    attempt: row.try_get("attempt")?,
                    version: row.try_get("version")?,
                    outcome: row.try_get("outcome")?,
                    output: output.map_or(Value::Null, |bytes| shown(&bytes)),
                    error: code.map_or(
                        Value::Null,
                        |code| serde_json::json!({ "code": code, "message": message }),
                    ),
                    at: row.try_get("at")?,
                })
            })
            .collect::<Result<_>>()?,
    );
    Ok(view)
}

/// Output bytes as JSON when they are, else as text.
fn shown(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// The tenant's events (read in its scope) with `status` (any when `None`), newest first, created before `before`
/// (Unix ms) when given, at most `limit` (capped at [`MAX_PAGE`]).
///
/// # Errors
///
/// [`Error::BadRequest`] for an unknown status; [`Error::Database`].
pub async fn list(
    db: &Db,
    tenant_id: &str,
    status: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<QueuedEventView>> {
    if let Some(status) = status
        && ![super::QUEUED, super::DELIVERED, super::DEAD].contains(&status)
    {
        return Err(Error::bad_request(
            "invalid_query",
            format!("parameter `status` must be queued, delivered or dead, not {status:?}"),
        ));
    }
    let mut tx = db.begin_tenant_read(tenant_id).await?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM queued_events \
         WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) AND created_at < $3 \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(tenant_id)
    .bind(status)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit.clamp(1, MAX_PAGE))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter().map(from_row).collect()
}
