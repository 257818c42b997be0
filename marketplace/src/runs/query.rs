//! Reading a tenant's run log: listing with filters (install, outcome, time range, text in the
//! log lines), one run whole, and the export. Who may read is decided here: any member of the
//! tenant lists and opens runs; exporting is for its admins.

use serde::Serialize;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::store::StoredLine;
use crate::auth::Principal;
use crate::clock::rfc3339;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tenants::{self, Tenant, TenantRole};

/// The most runs one page lists.
pub const MAX_PAGE: i64 = 100;
/// The longest text searched for.
const MAX_TEXT_CHARS: usize = 200;

/// The columns of a run summary, in SQL.
const SUMMARY_COLUMNS: &str = "id, tenant_id, plugin_id, version, entry_kind, entry, event_id, \
    started_at, duration_us, outcome, error_message, shared_at";
/// The further columns of a whole run.
const DETAIL_COLUMNS: &str = "fuel, memory_bytes, outbound_requests, kv_bytes_written, \
    output_bytes, logs, logs_dropped, input, output, capture_truncated";

/// Which runs to list; every `Some` narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only this install's (plugin id).
    pub plugin: Option<String>,
    /// `ok`, `failed` (any error), or one error code (`timeout`, `trap`, `plugin`, …).
    pub outcome: Option<String>,
    /// Only runs started at or after this time (RFC 3339, or a day: its start in UTC).
    pub since: Option<String>,
    /// Only runs started before this time (RFC 3339, or a day: that day included).
    pub until: Option<String>,
    /// Only runs whose log lines or error contain this text (case-insensitive for ASCII).
    pub text: Option<String>,
    /// The `next_cursor` of the previous page.
    pub before: Option<String>,
    /// At most this many (1 to [`MAX_PAGE`]; default 50).
    pub limit: Option<i64>,
}

/// A failed run's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RunError {
    /// The error's code, e.g. `timeout` or `plugin`.
    pub code: String,
    /// The error's message (secrets redacted).
    pub message: String,
}

/// A run as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RunSummary {
    /// The run's id.
    pub id: String,
    /// The plugin (the install) that ran.
    pub plugin: String,
    /// The version that ran.
    pub version: String,
    /// `event`, `http` or `hook`.
    pub entry_kind: String,
    /// The event's topic, `METHOD /path`, or the hook's name.
    pub entry: String,
    /// The event's id, for events.
    pub event_id: Option<String>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// How long it took, in microseconds.
    pub duration_us: i64,
    /// `ok`, or the error's code.
    pub outcome: String,
    /// The error, when it failed.
    pub error: Option<RunError>,
    /// Whether the tenant shared it with the plugin's publisher.
    pub shared: bool,
}

/// What a captured run took in and gave back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RunCapture {
    /// The event's payload or the request's body (UTF-8, invalid bytes replaced).
    pub input: String,
    /// The output or the response's body.
    pub output: String,
    /// Whether either was cut to the capture limit.
    pub truncated: bool,
}

/// A run, whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RunDetail {
    /// What the list shows.
    #[serde(flatten)]
    pub summary: RunSummary,
    /// Fuel burnt, when the call was metered by fuel.
    pub fuel: Option<i64>,
    /// Peak bytes of memories and tables.
    pub memory_bytes: i64,
    /// Outbound HTTP requests sent.
    pub outbound_requests: i64,
    /// Bytes of keys and values written to kv.
    pub kv_bytes_written: i64,
    /// Bytes of output (successful runs).
    pub output_bytes: i64,
    /// The plugin's log lines (secrets redacted).
    pub logs: Vec<StoredLine>,
    /// Lines dropped past the per-call caps.
    pub logs_dropped: i64,
    /// Payload and output, when the install captured them.
    pub capture: Option<RunCapture>,
}

/// A page of runs, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunPage {
    /// Newest first.
    pub items: Vec<RunSummary>,
    /// Pass as `before` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A run's position in the newest-first order: `<started_at ms>.<id>`.
fn cursor_of(summary_row: &AnyRow) -> Result<String> {
    let started_at: i64 = summary_row.try_get("started_at")?;
    let id: String = summary_row.try_get("id")?;
    Ok(format!("{started_at}.{id}"))
}

fn bad(message: impl Into<String>) -> Error {
    Error::bad_request("invalid_query", message)
}

/// Unix milliseconds of an RFC 3339 time in field `field`.
/// A day alone (`2026-12-01`) is that day's start in UTC, or with `day_end` the next day's
/// start, so that `until` a day includes it.
fn parse_time(field: &str, value: &str, day_end: bool) -> Result<i64> {
    let wrong = || {
        bad(format!(
            "{field} must be an RFC 3339 time such as 2026-12-01T00:00:00Z or a day such as \
             2026-12-01, not {value:?}"
        ))
    };
    let at = match OffsetDateTime::parse(value, &Rfc3339) {
        Ok(at) => at,
        Err(_) => {
            let format = time::format_description::parse_borrowed::<2>("[year]-[month]-[day]")
                .map_err(|e| Error::Internal(format!("the day format: {e}")))?;
            let day = time::Date::parse(value, &format).map_err(|_| wrong())?;
            let day = if day_end {
                day.next_day().ok_or_else(wrong)?
            } else {
                day
            };
            day.midnight().assume_utc()
        }
    };
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| bad(format!("{field} is out of range")))
}

/// A value bound to a query.
enum Bind {
    Text(String),
    Int(i64),
}

/// `WHERE` conditions and their values, numbered from `$1`.
struct Conditions {
    sql: String,
    binds: Vec<Bind>,
}

impl Conditions {
    fn new() -> Self {
        Conditions {
            sql: String::new(),
            binds: Vec::new(),
        }
    }

    /// Adds `condition`, whose `?`s stand for `binds`' placeholders, in order.
    fn and(&mut self, condition: &str, binds: impl IntoIterator<Item = Bind>) {
        self.sql.push_str(if self.sql.is_empty() {
            " WHERE "
        } else {
            " AND "
        });
        let mut binds = binds.into_iter();
        for c in condition.chars() {
            if c == '?'
                && let Some(bind) = binds.next()
            {
                self.binds.push(bind);
                self.sql.push_str(&format!("${}", self.binds.len()));
            } else {
                self.sql.push(c);
            }
        }
    }
}

impl RunFilter {
    /// The filter's conditions for runs of `tenant_id`, and its page size.
    fn conditions(&self, tenant_id: &str) -> Result<(Conditions, i64)> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(bad(format!(
                "limit must be between 1 and {MAX_PAGE}, not {limit}"
            )));
        }
        let mut conditions = Conditions::new();
        conditions.and("tenant_id = ?", [Bind::Text(tenant_id.to_owned())]);
        if let Some(plugin) = &self.plugin {
            conditions.and("plugin_id = ?", [Bind::Text(plugin.clone())]);
        }
        match self.outcome.as_deref() {
            None => {}
            Some("failed") => conditions.and("outcome <> ?", [Bind::Text("ok".to_owned())]),
            Some(code)
                if !code.is_empty()
                    && code.len() <= 64
                    && code.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
            {
                conditions.and("outcome = ?", [Bind::Text(code.to_owned())]);
            }
            Some(other) => {
                return Err(bad(format!(
                    "outcome must be `ok`, `failed` or an error code such as `timeout`, not {other:?}"
                )));
            }
        }
        if let Some(since) = &self.since {
            conditions.and(
                "started_at >= ?",
                [Bind::Int(parse_time("since", since, false)?)],
            );
        }
        if let Some(until) = &self.until {
            conditions.and(
                "started_at < ?",
                [Bind::Int(parse_time("until", until, true)?)],
            );
        }
        if let Some(text) = self.text.as_deref().filter(|text| !text.is_empty()) {
            if text.chars().count() > MAX_TEXT_CHARS {
                return Err(bad(format!(
                    "q must be at most {MAX_TEXT_CHARS} characters"
                )));
            }
            let mut pattern = String::from("%");
            for c in text.to_lowercase().chars() {
                if matches!(c, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('%');
            conditions.and(
                "(LOWER(logs) LIKE ? ESCAPE '\\' \
                 OR LOWER(COALESCE(error_message, '')) LIKE ? ESCAPE '\\')",
                [Bind::Text(pattern.clone()), Bind::Text(pattern)],
            );
        }
        if let Some(before) = &self.before {
            let (started_at, id) = before
                .split_once('.')
                .and_then(|(ms, id)| Some((ms.parse::<i64>().ok()?, id)))
                .ok_or_else(|| bad("before must be a next_cursor this API returned"))?;
            conditions.and(
                "(started_at < ? OR (started_at = ? AND id < ?))",
                [
                    Bind::Int(started_at),
                    Bind::Int(started_at),
                    Bind::Text(id.to_owned()),
                ],
            );
        }
        Ok((conditions, limit))
    }
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text.as_str()),
            Bind::Int(value) => query.bind(*value),
        };
    }
    query
}

fn summary_of(row: &AnyRow) -> Result<RunSummary> {
    let outcome: String = row.try_get("outcome")?;
    let message: Option<String> = row.try_get("error_message")?;
    let error = (outcome != "ok").then(|| RunError {
        code: outcome.clone(),
        message: message.unwrap_or_default(),
    });
    let shared_at: Option<i64> = row.try_get("shared_at")?;
    Ok(RunSummary {
        id: row.try_get("id")?,
        plugin: row.try_get("plugin_id")?,
        version: row.try_get("version")?,
        entry_kind: row.try_get("entry_kind")?,
        entry: row.try_get("entry")?,
        event_id: row.try_get("event_id")?,
        started_at: rfc3339(row.try_get("started_at")?),
        duration_us: row.try_get("duration_us")?,
        outcome,
        error,
        shared: shared_at.is_some(),
    })
}

pub(crate) fn detail_of(row: &AnyRow) -> Result<RunDetail> {
    let logs: String = row.try_get("logs")?;
    let input: Option<Vec<u8>> = row.try_get("input")?;
    let output: Option<Vec<u8>> = row.try_get("output")?;
    let capture = input.map(|input| RunCapture {
        input: String::from_utf8_lossy(&input).into_owned(),
        output: String::from_utf8_lossy(output.as_deref().unwrap_or_default()).into_owned(),
        truncated: row
            .try_get::<i64, _>("capture_truncated")
            .is_ok_and(|t| t != 0),
    });
    Ok(RunDetail {
        summary: summary_of(row)?,
        fuel: row.try_get("fuel")?,
        memory_bytes: row.try_get("memory_bytes")?,
        outbound_requests: row.try_get("outbound_requests")?,
        kv_bytes_written: row.try_get("kv_bytes_written")?,
        output_bytes: row.try_get("output_bytes")?,
        logs: serde_json::from_str(&logs)
            .map_err(|e| Error::Internal(format!("a stored run's log lines: {e}")))?,
        logs_dropped: row.try_get("logs_dropped")?,
        capture,
    })
}

/// A page of `tenant`'s runs matching `filter`, newest first, with the columns `columns`.
async fn page(
    db: &Db,
    tenant: &Tenant,
    filter: &RunFilter,
    columns: &str,
) -> Result<(Vec<AnyRow>, Option<String>)> {
    let (conditions, limit) = filter.conditions(&tenant.id)?;
    let sql = format!(
        "SELECT {columns} FROM runs{} ORDER BY started_at DESC, id DESC LIMIT {}",
        conditions.sql,
        limit + 1
    );
    let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &conditions.binds)
        .fetch_all(db.pool())
        .await?;
    let mut rows = rows;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = match (more, rows.last()) {
        (true, Some(last)) => Some(cursor_of(last)?),
        _ => None,
    };
    Ok((rows, next))
}

/// Waits for this process's queued runs to be written, so what a caller just did is listed.
pub(crate) async fn settle(state: &AppState) {
    if let Some(recorder) = state.run_recorder() {
        recorder.flush().await;
    }
}

/// A page of tenant `slug`'s runs (any member).
///
/// # Errors
///
/// 404 for a tenant the caller may not see; 400 `invalid_query` naming the bad filter.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    filter: &RunFilter,
) -> Result<RunPage> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Readonly).await?;
    settle(state).await;
    let (rows, next_cursor) = page(state.db(), &tenant, filter, SUMMARY_COLUMNS).await?;
    Ok(RunPage {
        items: rows.iter().map(summary_of).collect::<Result<_>>()?,
        next_cursor,
    })
}

/// Run `id` of tenant `slug`, whole (any member).
///
/// # Errors
///
/// 404 for a tenant the caller may not see or a run it does not have.
pub async fn get(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    id: &str,
) -> Result<RunDetail> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Readonly).await?;
    settle(state).await;
    let not_found = || Error::not_found(format!("run {id:?}"));
    let started_at = super::run_id::started_at_of(id).ok_or_else(not_found)?;
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, {DETAIL_COLUMNS} FROM runs \
         WHERE tenant_id = $1 AND started_at = $2 AND id = $3"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&tenant.id)
        .bind(started_at)
        .bind(id)
        .fetch_optional(state.db().pool())
        .await?
        .ok_or_else(not_found)?;
    detail_of(&row)
}

/// The whole columns of a run, for [`detail_of`].
pub(crate) fn all_columns() -> String {
    format!("{SUMMARY_COLUMNS}, {DETAIL_COLUMNS}")
}

/// Tenant `slug`'s runs matching `filter` (its `before` and `limit` are the export's own), as
/// an export would page through them (tenant admin): checks access and the filter, then
/// returns the tenant and the validated filter.
///
/// # Errors
///
/// 404 for a tenant the caller may not see; 403 below admin; 400 for a bad filter.
pub async fn start_export(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    filter: RunFilter,
) -> Result<(Tenant, RunFilter)> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Admin).await?;
    let filter = RunFilter {
        before: None,
        limit: Some(MAX_PAGE),
        ..filter
    };
    filter.conditions(&tenant.id)?;
    settle(state).await;
    Ok((tenant, filter))
}

/// One page of an export started with [`start_export`]: NDJSON lines of whole runs, and the
/// filter for the next page (`None` after the last).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn export_page(
    db: &Db,
    tenant: &Tenant,
    filter: RunFilter,
) -> Result<(Vec<u8>, Option<RunFilter>)> {
    let (rows, next) = page(db, tenant, &filter, &all_columns()).await?;
    let mut lines = Vec::new();
    for row in &rows {
        let detail = detail_of(row)?;
        serde_json::to_writer(&mut lines, &detail)
            .map_err(|e| Error::Internal(format!("writing a run as JSON: {e}")))?;
        lines.push(b'\n');
    }
    Ok((
        lines,
        next.map(|cursor| RunFilter {
            before: Some(cursor),
            ..filter
        }),
    ))
}
