//! What a plugin's developers see of its runs: failures aggregated across tenants by signature
//! (no tenant, payload or log line in them), and the runs tenants chose to share.
//!
//! Sharing is a tenant admin's explicit act, audited, and undone the same way; a shared run is
//! visible to the members of the plugin's publisher for as long as it is shared and kept.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use sqlx::Row as _;
use utoipa::ToSchema;

use super::batch::StoredRun;
use super::query::{RunDetail, find, settle};
use crate::auth::Principal;
use crate::clock::{now_ms, rfc3339};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tenants::{self, TenantRole};

/// The most signatures a report lists (the most frequent first).
pub const MAX_SIGNATURES: i64 = 200;
/// The most shared runs listed.
const MAX_SHARED: i64 = 200;

/// One kind of failure of a plugin, across tenants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FailureReport {
    /// Stable id of the kind: a digest of the code and the template.
    pub signature: String,
    /// The error code, e.g. `trap`.
    pub code: String,
    /// The message with its variable parts replaced (`#`, `"…"`, `<email>`, `<id>`).
    pub message: String,
    /// Failures of this kind, all versions together.
    pub failures: i64,
    /// Failures per version, newest version first.
    pub versions: Vec<VersionFailures>,
    /// When it was first seen (RFC 3339).
    pub first_seen: String,
    /// When it was last seen (RFC 3339).
    pub last_seen: String,
}

/// Failures of one kind on one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct VersionFailures {
    /// The version.
    pub version: String,
    /// Failures on it.
    pub failures: i64,
}

/// A run a tenant shared, as the publisher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SharedRun {
    /// The tenant that shared it (its slug), so the publisher can follow up.
    pub tenant: String,
    /// When it was shared (RFC 3339).
    pub shared_at: String,
    /// The run.
    #[serde(flatten)]
    pub run: RunDetail,
}

/// The caller's access to `plugin_id` as a member of its publisher.
///
/// # Errors
///
/// 404 for an unknown plugin or a caller who is not a member of its publisher.
async fn publisher_access(db: &Db, principal: &Principal, plugin_id: &str) -> Result<()> {
    let namespace: Option<String> = sqlx::query_scalar(
        "SELECT pub.namespace FROM plugins p JOIN publishers pub ON pub.id = p.publisher_id \
         WHERE p.id = $1",
    )
    .bind(plugin_id)
    .fetch_optional(db.pool())
    .await?;
    let namespace = namespace.ok_or_else(|| Error::not_found(format!("plugin {plugin_id:?}")))?;
    crate::publishers::access(db, principal, &namespace)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Error::not_found(format!("plugin {plugin_id:?}")),
            other => other,
        })?;
    Ok(())
}

/// The failures of `plugin_id` across every tenant, most frequent first (members of its
/// publisher).
///
/// # Errors
///
/// 404 for an unknown plugin or a caller outside its publisher.
pub async fn failures(
    state: &AppState,
    principal: &Principal,
    plugin_id: &str,
) -> Result<Vec<FailureReport>> {
    let db = state.db();
    publisher_access(db, principal, plugin_id).await?;
    settle(state).await;
    let rows = sqlx::query(
        "SELECT signature, version, code, message, failures, first_seen, last_seen \
         FROM failure_reports WHERE plugin_id = $1 AND signature IN ( \
            SELECT signature FROM failure_reports WHERE plugin_id = $1 \
            GROUP BY signature ORDER BY SUM(failures) DESC, signature LIMIT $2)",
    )
    .bind(plugin_id)
    .bind(MAX_SIGNATURES)
    .fetch_all(db.pool())
    .await?;
    let mut reports: Vec<FailureReport> = Vec::new();
    // Per report (same index): where it is by signature, and when it was first and last seen.
    let mut by_signature: HashMap<String, usize> = HashMap::new();
    let mut seen: Vec<(i64, i64)> = Vec::new();
    for row in rows {
        let signature: String = row.try_get("signature")?;
        let version: String = row.try_get("version")?;
        let failures: i64 = row.try_get("failures")?;
        let first_seen: i64 = row.try_get("first_seen")?;
        let last_seen: i64 = row.try_get("last_seen")?;
        let index = match by_signature.get(&signature) {
            Some(&index) => index,
            None => {
                by_signature.insert(signature.clone(), reports.len());
                reports.push(FailureReport {
                    signature,
                    code: row.try_get("code")?,
                    message: row.try_get("message")?,
                    failures: 0,
                    versions: Vec::new(),
                    first_seen: String::new(),
                    last_seen: String::new(),
                });
                seen.push((first_seen, last_seen));
                reports.len() - 1
            }
        };
        let report = &mut reports[index];
        report.failures += failures;
        report.versions.push(VersionFailures { version, failures });
        let (first, last) = &mut seen[index];
        *first = (*first).min(first_seen);
        *last = (*last).max(last_seen);
    }
    for (report, (first, last)) in reports.iter_mut().zip(seen) {
        report.first_seen = rfc3339(first);
        report.last_seen = rfc3339(last);
    }
    for report in &mut reports {
        report.versions.sort_by(|a, b| {
            let key = |v: &str| semver::Version::parse(v).ok();
            key(&b.version)
                .cmp(&key(&a.version))
                .then_with(|| b.version.cmp(&a.version))
        });
    }
    reports.sort_by(|a, b| {
        b.failures
            .cmp(&a.failures)
            .then_with(|| a.signature.cmp(&b.signature))
    });
    Ok(reports)
}

/// Shares (or, with `shared` false, stops sharing) run `run_id` of tenant `slug` with the
/// publisher of its plugin (tenant admin); audited. Sharing a shared run again changes nothing.
///
/// # Errors
///
/// 404 for a tenant the caller may not see or a run it does not have; 403 below admin.
pub async fn set_shared(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    run_id: &str,
    shared: bool,
) -> Result<()> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Admin).await?;
    settle(state).await;
    let run = find(state.db(), &tenant.id, run_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("run {run_id:?}")))?;
    let mut tx = state.db().begin_tenant(&tenant.id).await?;
    let by = principal.user().ok().map(|user| user.id.clone());
    let changed = if shared {
        let copy = serde_json::to_string(&run)
            .map_err(|e| Error::Internal(format!("writing a run as JSON: {e}")))?;
        sqlx::query(
            "INSERT INTO shared_runs (tenant_id, run_id, plugin_id, started_at, shared_at, \
             shared_by, run) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, run_id) DO NOTHING",
        )
        .bind(&tenant.id)
        .bind(run_id)
        .bind(&run.plugin)
        .bind(run.started_at)
        .bind(now_ms())
        .bind(by)
        .bind(copy)
        .execute(&mut *tx)
        .await?
    } else {
        sqlx::query("DELETE FROM shared_runs WHERE tenant_id = $1 AND run_id = $2")
            .bind(&tenant.id)
            .bind(run_id)
            .execute(&mut *tx)
            .await?
    }
    .rows_affected();
    // Sharing what is shared (or unsharing what is not) changes nothing, and is not audited.
    if changed == 0 {
        return Ok(());
    }
    let plugin_id = run.plugin;
    crate::installs::audit(
        &mut tx,
        principal,
        if shared { "run.shared" } else { "run.unshared" },
        &tenant.id,
        &plugin_id,
        json!({ "run": run_id }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The runs tenants shared with `plugin_id`'s publisher, newest shared first (members of its
/// publisher).
///
/// # Errors
///
/// 404 for an unknown plugin or a caller outside its publisher.
pub async fn shared_runs(
    state: &AppState,
    principal: &Principal,
    plugin_id: &str,
) -> Result<Vec<SharedRun>> {
    publisher_access(state.db(), principal, plugin_id).await?;
    shared(state.db(), plugin_id, None).await
}

/// One run shared with `plugin_id`'s publisher (members of its publisher).
///
/// # Errors
///
/// 404 for an unknown plugin, a caller outside its publisher, or a run not shared (or gone).
pub async fn shared_run(
    state: &AppState,
    principal: &Principal,
    plugin_id: &str,
    run_id: &str,
) -> Result<SharedRun> {
    publisher_access(state.db(), principal, plugin_id).await?;
    shared(state.db(), plugin_id, Some(run_id))
        .await?
        .pop()
        .ok_or_else(|| Error::not_found(format!("shared run {run_id:?}")))
}

async fn shared(db: &Db, plugin_id: &str, run_id: Option<&str>) -> Result<Vec<SharedRun>> {
    let rows = sqlx::query(
        "SELECT run, shared_at, \
         (SELECT slug FROM tenants WHERE tenants.id = shared_runs.tenant_id) AS tenant_slug \
         FROM shared_runs WHERE plugin_id = $1 AND ($2 = '' OR run_id = $2) \
         ORDER BY shared_at DESC LIMIT $3",
    )
    .bind(plugin_id)
    .bind(run_id.unwrap_or_default())
    .bind(MAX_SHARED)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let shared_at: i64 = row.try_get("shared_at")?;
            let run: String = row.try_get("run")?;
            let run: StoredRun = serde_json::from_str(&run)
                .map_err(|e| Error::Internal(format!("a shared run: {e}")))?;
            Ok(SharedRun {
                tenant: row.try_get("tenant_slug")?,
                shared_at: rfc3339(shared_at),
                run: RunDetail::of(run, true),
            })
        })
        .collect()
}
