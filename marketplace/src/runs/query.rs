//! Reading a tenant's run log: listing with filters (install, outcome, time range, text in the
//! log lines), one run whole, and the export. Who may read is decided here: any member of the
//! tenant lists and opens runs; exporting is for its admins.
//!
//! Runs are kept in batches ([`super::batch`]): a page reads the tenant's batches newest first
//! (those its time range and outcome can reach), decompresses them and keeps the runs that
//! match, until it has a page of runs no unread batch can precede. A search reads
//! [`MAX_SCANNED_RUNS`] runs at most; it then ends its page early, with a cursor to go on.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::batch::{self, MAX_SPAN_MS, StoredRun};
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

/// The most runs one page reads (decompresses and filters) before it ends early.
pub const MAX_SCANNED_RUNS: i64 = 20_000;
/// The most batches one page reads before it ends early.
const MAX_SCANNED_BATCHES: usize = 1_000;
/// Batches fetched per query.
const BATCHES_PER_FETCH: i64 = 32;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
    /// Pass as `before` for the next page; null on the last. A search that has read 20,000
    /// runs without filling its page ends it early, with fewer than `limit` runs (even none)
    /// and a cursor where it stopped.
    pub next_cursor: Option<String>,
}

/// A run's position in the newest-first order: `<started_at ms>.<id>`.
fn cursor_of(run: &StoredRun) -> String {
    format!("{}.{}", run.started_at, run.id)
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

/// Which runs of an outcome a search keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Any,
    Failed,
    Is(String),
}

/// A validated [`RunFilter`] for one tenant.
#[derive(Debug, Clone)]
struct Search {
    tenant_id: String,
    plugin: Option<String>,
    outcome: Outcome,
    since: Option<i64>,
    until: Option<i64>,
    /// Lower-cased.
    text: Option<String>,
    before: Option<(i64, String)>,
    limit: usize,
    /// Runs read at most ([`MAX_SCANNED_RUNS`]).
    budget: i64,
}

impl RunFilter {
    /// The filter checked, for runs of `tenant_id`.
    fn search(&self, tenant_id: &str) -> Result<Search> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(bad(format!(
                "limit must be between 1 and {MAX_PAGE}, not {limit}"
            )));
        }
        let outcome = match self.outcome.as_deref() {
            None => Outcome::Any,
            Some("failed") => Outcome::Failed,
            Some(code)
                if !code.is_empty()
                    && code.len() <= 64
                    && code.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
            {
                Outcome::Is(code.to_owned())
            }
            Some(other) => {
                return Err(bad(format!(
                    "outcome must be `ok`, `failed` or an error code such as `timeout`, not {other:?}"
                )));
            }
        };
        let text = match self.text.as_deref().filter(|text| !text.is_empty()) {
            Some(text) if text.chars().count() > MAX_TEXT_CHARS => {
                return Err(bad(format!(
                    "q must be at most {MAX_TEXT_CHARS} characters"
                )));
            }
            text => text.map(str::to_lowercase),
        };
        let before = match &self.before {
            None => None,
            Some(before) => Some(
                before
                    .split_once('.')
                    .and_then(|(ms, id)| Some((ms.parse::<i64>().ok()?, id.to_owned())))
                    .ok_or_else(|| bad("before must be a next_cursor this API returned"))?,
            ),
        };
        Ok(Search {
            tenant_id: tenant_id.to_owned(),
            plugin: self.plugin.clone(),
            outcome,
            since: self
                .since
                .as_deref()
                .map(|since| parse_time("since", since, false))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|until| parse_time("until", until, true))
                .transpose()?,
            text,
            before,
            limit: usize::try_from(limit).unwrap_or(1),
            budget: MAX_SCANNED_RUNS,
        })
    }
}

impl Search {
    /// Whether `run` is one the search lists.
    fn matches(&self, run: &StoredRun) -> bool {
        self.plugin
            .as_ref()
            .is_none_or(|plugin| run.plugin == *plugin)
            && match &self.outcome {
                Outcome::Any => true,
                Outcome::Failed => run.failed(),
                Outcome::Is(code) => run.outcome == *code,
            }
            && self.since.is_none_or(|since| run.started_at >= since)
            && self.until.is_none_or(|until| run.started_at < until)
            && self.before.as_ref().is_none_or(|(at, id)| {
                run.started_at < *at || (run.started_at == *at && run.id < *id)
            })
            && self.text.as_deref().is_none_or(|text| run.mentions(text))
    }

    /// The batches that may hold runs the search lists, from the newest after `after`.
    fn batches_after(&self, after: Option<&(i64, String)>) -> Conditions {
        let mut conditions = Conditions::new();
        conditions.and("tenant_id = ?", [Bind::Text(self.tenant_id.clone())]);
        let failures_only = match &self.outcome {
            Outcome::Any => false,
            Outcome::Failed => true,
            Outcome::Is(code) => code != "ok",
        };
        if failures_only {
            conditions.and("failures > 0", []);
        }
        if let Some(since) = self.since {
            conditions.and("last_at >= ?", [Bind::Int(since)]);
        }
        // A batch's runs start within MAX_SPAN_MS of each other.
        let upper = [self.until, self.before.as_ref().map(|(at, _)| *at + 1)]
            .into_iter()
            .flatten()
            .min();
        if let Some(upper) = upper {
            conditions.and(
                "first_at < ? AND last_at < ?",
                [
                    Bind::Int(upper),
                    Bind::Int(upper.saturating_add(MAX_SPAN_MS)),
                ],
            );
        }
        if let Some((last_at, id)) = after {
            conditions.and(
                "(last_at < ? OR (last_at = ? AND id < ?))",
                [
                    Bind::Int(*last_at),
                    Bind::Int(*last_at),
                    Bind::Text(id.clone()),
                ],
            );
        }
        conditions
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

impl RunDetail {
    /// `run` as the API shows it.
    pub(crate) fn of(run: StoredRun, shared: bool) -> RunDetail {
        let error = run.failed().then(|| RunError {
            code: run.outcome.clone(),
            message: run.error_message.clone().unwrap_or_default(),
        });
        RunDetail {
            summary: RunSummary {
                id: run.id,
                plugin: run.plugin,
                version: run.version,
                entry_kind: run.entry_kind,
                entry: run.entry,
                event_id: run.event_id,
                started_at: rfc3339(run.started_at),
                duration_us: run.duration_us,
                outcome: run.outcome,
                error,
                shared,
            },
            fuel: run.fuel,
            memory_bytes: run.memory_bytes,
            outbound_requests: run.outbound_requests,
            kv_bytes_written: run.kv_bytes_written,
            output_bytes: run.output_bytes,
            logs: run.logs,
            logs_dropped: run.logs_dropped,
            capture: run.capture,
        }
    }
}

/// The runs of `tenant` matching `search`, newest first, and the cursor of the next page.
async fn page(db: &Db, search: &Search) -> Result<(Vec<RunDetail>, Option<String>)> {
    // The best `limit + 1` runs found so far, newest first.
    let mut found: Vec<StoredRun> = Vec::new();
    let mut after: Option<(i64, String)> = None;
    let mut scanned_runs = 0i64;
    let mut scanned_batches = 0usize;
    // The newest start an unread batch may hold, when the reading stopped before the end.
    let mut frontier: Option<i64> = None;
    let mut ended_early = false;
    'reading: loop {
        let conditions = search.batches_after(after.as_ref());
        let sql = format!(
            "SELECT last_at, id, body FROM run_batches{} \
             ORDER BY last_at DESC, id DESC LIMIT {BATCHES_PER_FETCH}",
            conditions.sql
        );
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &conditions.binds)
            .fetch_all(db.pool())
            .await?;
        let fetched = rows.len();
        for row in rows {
            let last_at: i64 = row.try_get("last_at")?;
            // Runs newer than every unread batch's newest are all found: enough of them ends
            // the page.
            let complete = found.iter().filter(|run| run.started_at > last_at).count();
            if complete > search.limit {
                frontier = Some(last_at);
                break 'reading;
            }
            // Ending early must move the cursor on: the cursor it would return, just after the
            // frontier, must lie before the page's own.
            let spent = scanned_runs >= search.budget || scanned_batches >= MAX_SCANNED_BATCHES;
            let moves_on = search
                .before
                .as_ref()
                .is_none_or(|(at, id)| (last_at.saturating_add(1), "") < (*at, id.as_str()));
            if spent && moves_on {
                frontier = Some(last_at);
                ended_early = true;
                break 'reading;
            }
            let body: Vec<u8> = row.try_get("body")?;
            let runs = batch::decode(&body)?;
            scanned_runs += i64::try_from(runs.len()).unwrap_or(i64::MAX);
            scanned_batches += 1;
            found.extend(runs.into_iter().filter(|run| search.matches(run)));
            found.sort_unstable_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
            found.truncate(search.limit + 1);
            after = Some((last_at, row.try_get("id")?));
        }
        if i64::try_from(fetched).unwrap_or(i64::MAX) < BATCHES_PER_FETCH {
            break;
        }
    }
    if let Some(frontier) = frontier {
        found.retain(|run| run.started_at > frontier);
    }
    let next = if found.len() > search.limit {
        found.truncate(search.limit);
        found.last().map(cursor_of)
    } else if ended_early {
        // Every run not listed yet started at or before the frontier.
        frontier.map(|at| format!("{}.", at.saturating_add(1)))
    } else {
        None
    };
    let shared = shared_among(db, &search.tenant_id, &found).await?;
    let details = found
        .into_iter()
        .map(|run| {
            let is_shared = shared.contains(&run.id);
            RunDetail::of(run, is_shared)
        })
        .collect();
    Ok((details, next))
}

/// Which of `runs` (of `tenant_id`) are shared with their publishers.
async fn shared_among(db: &Db, tenant_id: &str, runs: &[StoredRun]) -> Result<HashSet<String>> {
    let starts = runs.iter().map(|run| run.started_at);
    let (Some(oldest), Some(newest)) = (starts.clone().min(), starts.max()) else {
        return Ok(HashSet::new());
    };
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT run_id FROM shared_runs WHERE tenant_id = $1 AND started_at >= $2 \
         AND started_at <= $3",
    )
    .bind(tenant_id)
    .bind(oldest)
    .bind(newest)
    .fetch_all(db.pool())
    .await?;
    Ok(ids.into_iter().collect())
}

/// Run `id` of tenant `tenant_id`, if it is kept.
///
/// # Errors
///
/// [`Error::Database`], or [`Error::Internal`] for a batch that does not decode.
pub(crate) async fn find(db: &Db, tenant_id: &str, id: &str) -> Result<Option<StoredRun>> {
    let Some(started_at) = super::run_id::started_at_of(id) else {
        return Ok(None);
    };
    let bodies: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT body FROM run_batches WHERE tenant_id = $1 AND last_at >= $2 \
         AND last_at <= $3 AND first_at <= $2",
    )
    .bind(tenant_id)
    .bind(started_at)
    .bind(started_at.saturating_add(MAX_SPAN_MS))
    .fetch_all(db.pool())
    .await?;
    for body in bodies {
        if let Some(run) = batch::decode(&body)?.into_iter().find(|run| run.id == id) {
            return Ok(Some(run));
        }
    }
    Ok(None)
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
    let search = filter.search(&tenant.id)?;
    settle(state).await;
    let (runs, next_cursor) = page(state.db(), &search).await?;
    Ok(RunPage {
        items: runs.into_iter().map(|run| run.summary).collect(),
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
    let run = find(state.db(), &tenant.id, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("run {id:?}")))?;
    let shared = shared_among(state.db(), &tenant.id, std::slice::from_ref(&run))
        .await?
        .contains(&run.id);
    Ok(RunDetail::of(run, shared))
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
    filter.search(&tenant.id)?;
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
    let (runs, next) = page(db, &filter.search(&tenant.id)?).await?;
    let mut lines = Vec::new();
    for run in &runs {
        serde_json::to_writer(&mut lines, run)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use plinth_host::{InvokeError, RunEntry, RunRecord, Usage};
    use plinth_test_support::TestDatabase;

    use super::*;
    use crate::runs::store;

    /// A run of tenant `t1` started at `ms`, failed when `failed`.
    fn run_at(ms: u64, failed: bool) -> RunRecord {
        RunRecord {
            tenant: "t1".into(),
            plugin: "labs.paged".into(),
            version: "1.0.0".into(),
            entry: RunEntry::Hook { name: "on-install" },
            started_at: UNIX_EPOCH + Duration::from_millis(1_795_000_000_000 + ms),
            usage: Usage::default(),
            outcome: if failed {
                Err(InvokeError::PluginError {
                    kind: "failed".into(),
                    message: format!("failed at {ms}"),
                })
            } else {
                Ok(0)
            },
            logs: Vec::new(),
            logs_dropped: 0,
            captured: None,
            secrets: Arc::from(Vec::<String>::new()),
        }
    }

    /// Every run `search` lists, page by page, and how many pages it took.
    async fn every_page(db: &Db, mut search: Search) -> Result<(Vec<RunDetail>, usize)> {
        let mut listed = Vec::new();
        let mut pages = 0;
        loop {
            let (runs, next) = page(db, &search).await?;
            pages += 1;
            assert!(runs.len() <= search.limit);
            listed.extend(runs);
            let Some(next) = next else {
                return Ok((listed, pages));
            };
            search.before = RunFilter {
                before: Some(next),
                ..RunFilter::default()
            }
            .search("t1")?
            .before;
            assert!(pages < 100, "the pages do not end");
        }
    }

    async fn pages_merge_overlapping_batches(database: TestDatabase) -> anyhow::Result<()> {
        let db = Db::connect(&database.url()).await?;
        // Three writes whose batches overlap in time, and one batch a minute apart.
        let writes: [&[(u64, bool)]; 3] = [
            &[(1_000, false), (1_005, true), (1_010, false)],
            &[(1_003, true), (1_007, false), (1_005, false)],
            &[(990, false), (1_020, true), (200_000, false)],
        ];
        let mut all = Vec::new();
        for write in writes {
            let batch: Vec<RunRecord> = write.iter().map(|(ms, f)| run_at(*ms, *f)).collect();
            store::write(&db, &store::prepare(&batch, &mut Default::default())?).await?;
            all.extend(write.iter().copied());
        }
        let newest_first = |runs: &[RunDetail]| -> Vec<String> {
            runs.iter()
                .map(|run| run.summary.started_at.clone())
                .collect()
        };
        let mut expected: Vec<u64> = all.iter().map(|(ms, _)| *ms).collect();
        expected.sort_unstable_by(|a, b| b.cmp(a));
        let expected: Vec<String> = expected
            .iter()
            .map(|ms| rfc3339(1_795_000_000_000 + i64::try_from(*ms).unwrap_or(0)))
            .collect();
        for limit in [1, 2, 3, 50] {
            let search = RunFilter {
                limit: Some(limit),
                ..RunFilter::default()
            }
            .search("t1")?;
            let (listed, _) = every_page(&db, search).await?;
            assert_eq!(newest_first(&listed), expected, "limit {limit}");
            let mut ids: Vec<&str> = listed.iter().map(|run| run.summary.id.as_str()).collect();
            ids.dedup();
            assert_eq!(ids.len(), all.len(), "limit {limit}: a run listed twice");
        }
        // Failures only, two at a time.
        let failed = RunFilter {
            outcome: Some("failed".into()),
            limit: Some(2),
            ..RunFilter::default()
        }
        .search("t1")?;
        let (listed, _) = every_page(&db, failed).await?;
        assert_eq!(listed.len(), 3);
        assert!(listed.iter().all(|run| run.summary.error.is_some()));
        // A search that may read one run per page still lists every run, once, in order.
        let mut tight = RunFilter {
            limit: Some(50),
            ..RunFilter::default()
        }
        .search("t1")?;
        tight.budget = 1;
        let (listed, pages) = every_page(&db, tight).await?;
        assert_eq!(newest_first(&listed), expected);
        assert!(pages > 2, "{pages} pages");
        Ok(())
    }

    #[tokio::test]
    async fn pages_merge_overlapping_batches_on_sqlite() -> anyhow::Result<()> {
        pages_merge_overlapping_batches(TestDatabase::sqlite()?).await
    }

    #[tokio::test]
    async fn pages_merge_overlapping_batches_on_postgres() -> anyhow::Result<()> {
        pages_merge_overlapping_batches(TestDatabase::postgres("run_pages").await?).await
    }
}
