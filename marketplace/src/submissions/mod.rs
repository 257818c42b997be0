//! Submissions: a publisher uploads a signed package; it is checked, validated, stored
//! content-addressed, and (when validation finds no error) enters the review queue.
//!
//! A package that cannot be read (400 `invalid_package`) or is not in one of the caller's
//! namespaces (403 `wrong_publisher`) is refused at once. Otherwise it is validated
//! ([`plinth_package::validate()`], with the publisher's keys and live versions), and the
//! report decides: the findings listed in `refusal` (display text, signature, version
//! order) refuse it with nothing stored, under the finding's own code, so an author meets the
//! same codes locally and here; a version taken by a live submission answers that submission
//! (the same package) or 409 `version_exists`. Everything else is recorded in one transaction
//! with its full report: as `in_review` with its package stored, unless that would pass the
//! publisher's limits ([`crate::settings::PublisherLimits`]: 409 `review_limit_reached` or
//! `storage_limit_reached`, nothing stored); or as `rejected_by_validation` with the report
//! only (the package is not kept).

mod refusal;
pub(crate) mod routes;

pub(crate) use routes::routes;

use std::sync::Arc;

use plinth_host::Host;
use plinth_package::{Package, Report, ValidationContext, validate};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::auth::{Caller, Principal};
use crate::clock::{DAY_MS, now_ms};
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::id::new_id;
use crate::publishers::{self, Publisher};
use crate::settings::Settings;
use crate::state::AppState;

/// Waiting for a reviewer.
pub const IN_REVIEW: &str = "in_review";
/// Validation found an error; never reviewed.
pub const REJECTED_BY_VALIDATION: &str = "rejected_by_validation";
/// Approved and published.
pub const APPROVED: &str = "approved";
/// Rejected by a reviewer.
pub const REJECTED: &str = "rejected";
/// A reviewer asked for changes.
pub const CHANGES_REQUESTED: &str = "changes_requested";

/// A submission as stored.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The submission's id.
    pub id: String,
    /// The publisher's id.
    pub publisher_id: String,
    /// The publisher's namespace.
    pub namespace: String,
    /// The plugin id.
    pub plugin_id: String,
    /// The version, as written in the manifest.
    pub version: String,
    /// The package digest, `sha256:<hex>`.
    pub digest: String,
    /// The sha256 of the uploaded bytes (the artifact); `None` for a submission rejected by
    /// validation, whose package is not kept.
    pub artifact_sha256: Option<String>,
    /// `plinth.toml` as uploaded.
    pub manifest: String,
    /// One of [`IN_REVIEW`], [`REJECTED_BY_VALIDATION`], [`APPROVED`], [`REJECTED`],
    /// [`CHANGES_REQUESTED`].
    pub status: String,
    /// The validation report.
    pub report: Report,
    /// The user who submitted (the creator, for a publisher API key).
    pub submitted_by: String,
    /// When it was submitted (Unix ms).
    pub created_at: i64,
    /// When a reviewer decided (Unix ms).
    pub decided_at: Option<i64>,
    /// The reviewer who decided.
    pub decided_by: Option<String>,
    /// The reason code of a rejection.
    pub reason_code: Option<String>,
    /// The reviewer's reason.
    pub reason: Option<String>,
}

impl Submission {
    /// The sha256 of the stored package.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] for a submission rejected by validation (its package is not kept):
    /// only submissions that passed validation are reviewed or published.
    pub fn artifact(&self) -> Result<&str> {
        self.artifact_sha256.as_deref().ok_or_else(|| {
            Error::Internal(format!(
                "submission {} was rejected by validation; its package is not kept",
                self.id
            ))
        })
    }
}

/// `SELECT <every column> FROM submissions s JOIN publishers p … <rest>`, as a `&'static str`.
macro_rules! select_submissions {
    ($rest:literal) => {
        concat!(
            "SELECT s.id, s.publisher_id, p.namespace, s.plugin_id, s.version, s.digest, \
             s.artifact_sha256, s.manifest, s.status, s.report, s.submitted_by, s.created_at, \
             s.decided_at, s.decided_by, s.reason_code, s.reason \
             FROM submissions s JOIN publishers p ON p.id = s.publisher_id ",
            $rest
        )
    };
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Submission> {
    let report: String = row.try_get("report")?;
    Ok(Submission {
        id: row.try_get("id")?,
        publisher_id: row.try_get("publisher_id")?,
        namespace: row.try_get("namespace")?,
        plugin_id: row.try_get("plugin_id")?,
        version: row.try_get("version")?,
        digest: row.try_get("digest")?,
        artifact_sha256: row.try_get("artifact_sha256")?,
        manifest: row.try_get("manifest")?,
        status: row.try_get("status")?,
        report: serde_json::from_str(&report)
            .map_err(|e| Error::Internal(format!("stored report: {e}")))?,
        submitted_by: row.try_get("submitted_by")?,
        created_at: row.try_get("created_at")?,
        decided_at: row.try_get("decided_at")?,
        decided_by: row.try_get("decided_by")?,
        reason_code: row.try_get("reason_code")?,
        reason: row.try_get("reason")?,
    })
}

/// The submission `id`, without an access check.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn get(db: &Db, id: &str) -> Result<Option<Submission>> {
    let row = sqlx::query(select_submissions!("WHERE s.id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The submission `id` if the caller may see it: a member of its publisher (or that
/// publisher's API key), a reviewer or an operator.
///
/// # Errors
///
/// [`Error::NotFound`] otherwise, the same as for an unknown id.
pub async fn visible(db: &Db, principal: &Principal, id: &str) -> Result<Submission> {
    let missing = || Error::not_found(format!("submission {id:?}"));
    let submission = get(db, id).await?.ok_or_else(missing)?;
    let allowed = match &principal.caller {
        Caller::User(user) => {
            user.is_reviewer()
                || publishers::member_role(db, &submission.publisher_id, &user.id)
                    .await?
                    .is_some()
        }
        Caller::PublisherKey { publisher_id, .. } => *publisher_id == submission.publisher_id,
        Caller::TenantKey { .. } => false,
    };
    if allowed {
        Ok(submission)
    } else {
        Err(missing())
    }
}

/// The publisher's submissions, newest first (at most 500).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn list_for_publisher(db: &Db, publisher_id: &str) -> Result<Vec<Submission>> {
    let rows = sqlx::query(select_submissions!(
        "WHERE s.publisher_id = $1 ORDER BY s.created_at DESC, s.id DESC LIMIT 500"
    ))
    .bind(publisher_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// The submissions in review, oldest first (at most `limit`).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn in_review(db: &Db, limit: i64) -> Result<Vec<Submission>> {
    let rows = sqlx::query(select_submissions!(
        "WHERE s.status = 'in_review' ORDER BY s.created_at, s.id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// The 1-based place of `submission` in the review queue (oldest first); `None` when it is not
/// in review.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn queue_position(db: &Db, submission: &Submission) -> Result<Option<i64>> {
    if submission.status != IN_REVIEW {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM submissions WHERE status = 'in_review' \
         AND (created_at < $1 OR (created_at = $1 AND id <= $2))",
    )
    .bind(submission.created_at)
    .bind(&submission.id)
    .fetch_one(db.pool())
    .await?;
    Ok(Some(row.try_get("n")?))
}

/// The median time from submission to decision, in seconds, over decisions of the last 30
/// days; `None` when there were none.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn median_review_seconds(db: &Db) -> Result<Option<i64>> {
    let rows = sqlx::query(
        "SELECT decided_at - created_at AS took FROM submissions \
         WHERE decided_at IS NOT NULL AND decided_at >= $1",
    )
    .bind(now_ms() - 30 * DAY_MS)
    .fetch_all(db.pool())
    .await?;
    let mut took = rows
        .iter()
        .map(|row| row.try_get::<i64, _>("took"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(median(&mut took).map(|ms| (ms + 500) / 1000))
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &mut [i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        values[mid - 1] + (values[mid] - values[mid - 1]) / 2
    })
}

/// The bytes of artifact `sha256`.
///
/// # Errors
///
/// [`Error::NotFound`] if there is no such artifact.
pub async fn artifact_bytes(db: &Db, sha256: &str) -> Result<Vec<u8>> {
    let row = sqlx::query("SELECT bytes FROM artifacts WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| Error::not_found(format!("artifact {sha256}")))?;
    Ok(row.try_get("bytes")?)
}

/// Stores `bytes` content-addressed (idempotent) in `tx`; returns their hex sha256.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn store_artifact(tx: &mut Tx, bytes: &[u8], now: i64) -> Result<String> {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let size = i64::try_from(bytes.len()).map_err(|_| Error::Internal("artifact size".into()))?;
    sqlx::query(
        "INSERT INTO artifacts (sha256, size, bytes, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&sha256)
    .bind(size)
    .bind(bytes.to_vec())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(sha256)
}

/// The size in bytes of artifact `sha256`, if stored.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn artifact_size(db: &Db, sha256: &str) -> Result<Option<i64>> {
    let row = sqlx::query("SELECT size FROM artifacts WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(db.pool())
        .await?;
    row.map(|row| row.try_get("size"))
        .transpose()
        .map_err(Error::from)
}

/// What [`submit`] did.
#[derive(Debug)]
pub enum Submitted {
    /// A new submission was stored.
    Created(Submission),
    /// The same package (same plugin, version and digest) was submitted before: that one.
    Existing(Submission),
}

/// Reads a package with `settings`' limits, off the async threads.
async fn read_package(bytes: Vec<u8>, settings: &Settings) -> Result<Package> {
    let limits = settings.package_limits;
    tokio::task::spawn_blocking(move || Package::from_bytes_with_limits(&bytes, &limits))
        .await
        .map_err(|e| Error::Internal(format!("package reader: {e}")))?
        .map_err(|e| {
            Error::bad_request(
                "invalid_package",
                format!("the upload is not a valid Plinth package: {e}"),
            )
        })
}

/// Reads the stored artifact `sha256` as a package.
///
/// # Errors
///
/// [`Error::NotFound`] if it is not stored; [`Error::Internal`] if it no longer reads.
pub async fn stored_package(db: &Db, settings: &Settings, sha256: &str) -> Result<Package> {
    let bytes = artifact_bytes(db, sha256).await?;
    read_package(bytes, settings)
        .await
        .map_err(|e| Error::Internal(format!("stored artifact {sha256} does not read: {e}")))
}

/// The publisher of namespace `namespace` if the caller may publish there.
async fn publisher_for(db: &Db, principal: &Principal, namespace: &str) -> Result<Publisher> {
    match publishers::membership(db, principal, namespace).await {
        Ok(membership) => Ok(membership.publisher),
        Err(Error::NotFound(_)) => Err(Error::forbidden(
            "wrong_publisher",
            format!(
                "the plugin id is in namespace {namespace:?}, which is not a publisher you are a member of"
            ),
        )),
        Err(e) => Err(e),
    }
}

/// `(id, version, digest, status)` of the live (in review or approved) submissions of a plugin.
async fn live_versions(db: &Db, plugin_id: &str) -> Result<Vec<(String, String, String, String)>> {
    let rows = sqlx::query(
        "SELECT id, version, digest, status FROM submissions \
         WHERE plugin_id = $1 AND status IN ('in_review', 'approved')",
    )
    .bind(plugin_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("id")?,
                row.try_get("version")?,
                row.try_get("digest")?,
                row.try_get("status")?,
            ))
        })
        .collect()
}

/// If the version of `package` is taken by a live submission: the same package (answer it,
/// idempotently) or a 409 `version_exists`.
async fn existing_same_version(
    db: &Db,
    plugin_id: &str,
    version: &semver::Version,
    digest: &str,
) -> Result<Option<Submission>> {
    for (id, live_version, live_digest, _) in live_versions(db, plugin_id).await? {
        if semver::Version::parse(&live_version).ok().as_ref() != Some(version) {
            continue;
        }
        if live_digest == digest {
            return get(db, &id).await;
        }
        return Err(Error::conflict(
            "version_exists",
            format!(
                "{plugin_id} {version} was submitted already with different content; bump the version"
            ),
        ));
    }
    Ok(None)
}

/// Fails if storing `package_bytes` more in review for publisher `publisher` would pass its
/// `limits`. Locks the publisher's row first, so submissions at once count one after another.
async fn check_publisher_limits(
    tx: &mut Tx,
    publisher: &Publisher,
    limits: &crate::settings::PublisherLimits,
    package_bytes: usize,
) -> Result<()> {
    sqlx::query("UPDATE publishers SET name = name WHERE id = $1")
        .bind(&publisher.id)
        .execute(&mut **tx)
        .await?;
    let in_review: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM submissions WHERE publisher_id = $1 AND status = 'in_review'",
    )
    .bind(&publisher.id)
    .fetch_one(&mut **tx)
    .await?
    .try_get("n")?;
    if in_review >= i64::from(limits.max_in_review) {
        return Err(Error::Conflict {
            code: "review_limit_reached",
            message: format!(
                "publisher {:?} has {in_review} submissions in review and the limit is {}; \
                 wait for a decision before submitting more",
                publisher.namespace, limits.max_in_review
            ),
            details: Some(serde_json::json!({
                "limit": limits.max_in_review,
                "in_review": in_review,
            })),
        });
    }
    // Every package the publisher has stored: its submissions' and its published versions'.
    let stored: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS n FROM artifacts WHERE sha256 IN ( \
             SELECT artifact_sha256 FROM submissions \
             WHERE publisher_id = $1 AND artifact_sha256 IS NOT NULL \
             UNION SELECT v.artifact_sha256 FROM versions v \
             JOIN plugins p ON p.id = v.plugin_id WHERE p.publisher_id = $1)",
    )
    .bind(&publisher.id)
    .fetch_one(&mut **tx)
    .await?
    .try_get("n")?;
    let stored = u64::try_from(stored).unwrap_or_default();
    let after = stored.saturating_add(package_bytes as u64);
    if after > limits.max_stored_bytes {
        return Err(Error::Conflict {
            code: "storage_limit_reached",
            message: format!(
                "publisher {:?} stores {stored} bytes of packages and this one of \
                 {package_bytes} bytes would pass its limit of {} bytes",
                publisher.namespace, limits.max_stored_bytes
            ),
            details: Some(serde_json::json!({
                "limit_bytes": limits.max_stored_bytes,
                "stored_bytes": stored,
                "package_bytes": package_bytes,
            })),
        });
    }
    Ok(())
}

/// The plugin ids in use: published, or in review.
async fn taken_ids(db: &Db) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM plugins UNION SELECT plugin_id FROM submissions WHERE status = 'in_review'",
    )
    .fetch_all(db.pool())
    .await?)
}

/// Submits the package `bytes` as `principal`.
///
/// # Errors
///
/// 400 `invalid_package`, `display_text` (every rule of [`plinth_package::display`] broken),
/// `signature_missing`, `signature_invalid`, `signature_digest_mismatch`; 403
/// `wrong_publisher`, `signature_unknown_key`, `signature_key_revoked`; 409
/// `version_not_greater`, `version_exists`,
/// `review_limit_reached`, `storage_limit_reached` — each with nothing stored. A new plugin id
/// that looks like one in use is stored in review with a `lookalike_id` finding. A package
/// that passes validation is compiled by this server's host, if it runs one
/// ([`Host::check_compiles`]); one the host cannot run is stored as rejected with a
/// `does_not_compile` finding.
pub async fn submit(state: &AppState, principal: &Principal, bytes: Vec<u8>) -> Result<Submitted> {
    let db = state.db();
    let settings = state.settings();
    let submitted_by = match &principal.caller {
        Caller::User(user) => user.id.clone(),
        Caller::PublisherKey { user_id, .. } => user_id.clone(),
        Caller::TenantKey { .. } => {
            return Err(Error::forbidden(
                "forbidden",
                "a tenant API key cannot submit packages; use a publisher member's token or a publisher API key",
            ));
        }
    };
    let package = read_package(bytes.clone(), settings).await?;
    let plugin_id = package.manifest.plugin.id.clone();
    let version = package.manifest.plugin.version.clone();
    let publisher = publisher_for(db, principal, plugin_id.publisher()).await?;
    let digest = package.digest().to_string();
    let live = live_versions(db, plugin_id.as_str()).await?;
    // The same version is answered below (the same package, idempotently, or `version_exists`);
    // validation holds this one to the others, approved or in review.
    let others: Vec<semver::Version> = live
        .iter()
        .filter_map(|(_, live_version, _, _)| semver::Version::parse(live_version).ok())
        .filter(|live_version| *live_version != version)
        .collect();
    let (active, revoked) = publishers::keys_by_state(db, &publisher.id).await?;
    let context = ValidationContext {
        publisher: Some(publisher.namespace.clone()),
        published_versions: others,
        developer_keys: Some(active),
        revoked_keys: revoked,
        limits: settings.package_limits,
        taken_ids: taken_ids(db).await?,
    };
    let host = state
        .runtime()
        .ok()
        .map(|runtime| Arc::clone(&runtime.host));
    let (package, report) = tokio::task::spawn_blocking(move || {
        let mut report = validate(&package, &context);
        if let Some(host) = host
            && !report.has_errors()
        {
            compile_check(&host, &package, &mut report);
        }
        (package, report)
    })
    .await
    .map_err(|e| Error::Internal(format!("validation: {e}")))?;
    if let Some(refused) = refusal::refusal(&report) {
        return Err(refused);
    }
    if let Some(existing) = existing_same_version(db, plugin_id.as_str(), &version, &digest).await?
    {
        return Ok(Submitted::Existing(existing));
    }
    let status = if report.has_errors() {
        REJECTED_BY_VALIDATION
    } else {
        IN_REVIEW
    };
    let report_json =
        serde_json::to_string(&report).map_err(|e| Error::Internal(format!("report: {e}")))?;

    let now = now_ms();
    let id = new_id();
    let stored = async {
        let mut tx = db.begin().await?;
        // A package that failed validation is not kept: its report says why.
        let artifact = if status == IN_REVIEW {
            check_publisher_limits(&mut tx, &publisher, &settings.publisher_limits, bytes.len())
                .await?;
            Some(store_artifact(&mut tx, &bytes, now).await?)
        } else {
            None
        };
        sqlx::query(
            "INSERT INTO submissions (id, publisher_id, plugin_id, version, digest, \
                 artifact_sha256, manifest, status, report, submitted_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&id)
        .bind(&publisher.id)
        .bind(plugin_id.as_str())
        .bind(version.to_string())
        .bind(&digest)
        .bind(&artifact)
        .bind(&package.manifest_toml)
        .bind(status)
        .bind(&report_json)
        .bind(&submitted_by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        crate::audit::record(
            &mut tx,
            crate::audit::Entry {
                actor: crate::audit::Actor::User(submitted_by.clone()),
                action: "submission.created",
                tenant_id: None,
                subject: format!("plugin:{plugin_id}@{version}"),
                details: serde_json::json!({
                    "submission": id,
                    "digest": digest,
                    "status": status,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    match stored {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => {
            // Another submission of this version won the race: the same package is that one.
            return match existing_same_version(db, plugin_id.as_str(), &version, &digest).await? {
                Some(existing) => Ok(Submitted::Existing(existing)),
                None => Err(Error::conflict(
                    "version_exists",
                    format!("{plugin_id} {version} was submitted already; bump the version"),
                )),
            };
        }
        Err(e) => return Err(e),
    }
    tracing::info!(submission = %id, plugin = %plugin_id, %version, status, "package submitted");
    let submission = get(db, &id)
        .await?
        .ok_or_else(|| Error::Internal("submission vanished".into()))?;
    Ok(Submitted::Created(submission))
}

/// Compiles `package` with the host's engine settings and links it against its manifest's
/// capabilities ([`Host::check_compiles`]); a failure becomes a `does_not_compile` error in
/// `report`. The compiled component stays in the host's cache, so approving and installing it
/// do not compile it again. Seconds of CPU for a component built by a language runtime: run it
/// off the async runtime.
fn compile_check(host: &Host, package: &Package, report: &mut Report) {
    let started = std::time::Instant::now();
    match host.check_compiles(package) {
        Ok(footprint) => tracing::info!(
            plugin = %package.manifest.plugin.id,
            version = %package.manifest.plugin.version,
            core_instances = footprint.core_instances,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "submission compiles"
        ),
        Err(error) => report.error(
            "does_not_compile",
            format!("the host cannot run this component: {error}"),
        ),
    }
}

/// Submits the package `bytes` as `principal` ([`submit`]), then applies a review waiver to a
/// new submission ([`waive_review`]): what the API and the console both call.
///
/// # Errors
///
/// As [`submit`] and [`waive_review`].
pub async fn submit_package(
    state: &AppState,
    principal: &Principal,
    bytes: Vec<u8>,
) -> Result<Submitted> {
    match submit(state, principal, bytes).await? {
        Submitted::Created(submission) => {
            Ok(Submitted::Created(waive_review(state, submission).await?))
        }
        existing => Ok(existing),
    }
}

/// A new submission as it stands once review waivers apply: a private plugin's version from
/// a publisher whose review an operator waived is approved at once if it passed validation
/// (see [`crate::publishers::waiver`]); any other submission is returned as it is.
///
/// # Errors
///
/// [`Error::Database`]; the approval's errors.
pub async fn waive_review(state: &AppState, submission: Submission) -> Result<Submission> {
    if submission.status != IN_REVIEW
        || !crate::catalog::audience::private(state.db().pool(), &submission.plugin_id).await?
    {
        return Ok(submission);
    }
    let Some(waived_by) =
        crate::publishers::waiver::waived_by(state.db(), &submission.publisher_id).await?
    else {
        return Ok(submission);
    };
    crate::review::approve_waived(state, submission, waived_by).await
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5, 1, 3]), Some(3));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2));
    }
}
