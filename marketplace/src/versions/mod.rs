//! Versions: how installs follow, leave and return to a plugin's versions.
//!
//! - [`installable`]: which versions an install may be put on (never a yanked one) and which
//!   it gets by default.
//! - [`policy`]: which new versions an install's update policy accepts.
//! - [`updates`]: automatic updates when a version is approved (only within the permissions
//!   the tenant granted; otherwise the tenant is asked to consent), and manual updates.
//! - [`rollback`]: a tenant's rollback to the previous version, an operator's rollback of every
//!   install, and recording the host's automatic rollbacks.
//! - [`yank`] and [`block`]: pulling a version (a security yank moves every install off it) or
//!   a whole plugin, with a reason code and evidence; [`appeals`] against them.
//! - [`rollout`]: a new version reaches auto-updating installs stage by stage, pauses by
//!   itself when an updated install fails, and can be halted (its updates rolled back).
//! - [`deprecation`]: a publisher retires a plugin (or a range of its versions) in favour of
//!   another; an operator may make it refuse new installs.
//! - [`control`]: a publisher's change of control (new owner or signing key) makes the next
//!   version of each of its plugins need a full review and pauses automatic updates.
//!
//! Every change is one transaction that first locks the plugin's row (SQLite: the write lock of
//! [`Db::begin`](crate::db::Db::begin)), so an approval, a yank and an update of
//! the same plugin never interleave. The plugins' `on-upgrade` hooks run before that
//! transaction opens (no plugin code runs while a transaction or lock is held); the
//! transaction reads again what the hooks were run for and refuses with `install_changed` if
//! it changed (automatic updates, security yanks and operator rollbacks try again a few
//! times). Host changes (no plugin code) are applied inside the transaction, after the storage
//! writes, and undone if it does not commit (see `moves`).

pub mod appeals;
pub mod block;
pub mod control;
pub mod deprecation;
mod hooks;
pub mod installable;
mod moves;
pub mod policy;
pub mod rollback;
pub mod rollout;
mod routes;
pub mod updates;
pub mod yank;

pub(crate) use routes::routes;

use plinth_package::Manifest;
use semver::Version;
use sqlx::Row;

use crate::auth::Principal;
use crate::catalog::Visibility;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};

/// Locks the plugin's row for the rest of `tx` (an update that changes nothing). Returns
/// whether the plugin exists.
///
/// # Errors
///
/// [`Error::Database`].
pub(crate) async fn lock_plugin(tx: &mut Tx, plugin_id: &str) -> Result<bool> {
    let locked = sqlx::query("UPDATE plugins SET updated_at = updated_at WHERE id = $1")
        .bind(plugin_id)
        .execute(&mut **tx)
        .await?;
    Ok(locked.rows_affected() == 1)
}

/// Who may manage a plugin's deprecation and rollouts: a member of its publisher or an
/// operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Steward {
    /// An operator.
    Operator,
    /// A member of the plugin's publisher (or its API key).
    Publisher,
}

/// The caller's standing for published plugin `plugin_id`, and the plugin's publisher id.
///
/// # Errors
///
/// 404 for a plugin the caller may not see, or whose publisher it is not a member of.
pub(crate) async fn steward_of(
    db: &Db,
    principal: &Principal,
    plugin_id: &str,
) -> Result<(Steward, String)> {
    let unknown = || Error::not_found(format!("plugin {plugin_id:?}"));
    if !crate::catalog::shows(db, plugin_id, &Visibility::of(Some(principal))).await? {
        return Err(unknown());
    }
    let (publisher_id, namespace) = crate::catalog::publisher_of(db, plugin_id).await?;
    if principal.is_operator() {
        return Ok((Steward::Operator, publisher_id));
    }
    match crate::publishers::membership(db, principal, &namespace).await {
        Ok(_) => Ok((Steward::Publisher, publisher_id)),
        Err(Error::NotFound(_)) => Err(unknown()),
        Err(other) => Err(other),
    }
}

/// A plugin's row, as the versions module needs it.
#[derive(Debug, Clone)]
pub(crate) struct PluginRow {
    pub(crate) publisher_id: String,
    pub(crate) blocked_at: Option<i64>,
    pub(crate) blocked_by: Option<String>,
    pub(crate) full_review_reason: Option<String>,
}

/// The plugin's row, read in `tx`; [`Error::NotFound`] for an unknown plugin.
pub(crate) async fn plugin_row(tx: &mut Tx, plugin_id: &str) -> Result<PluginRow> {
    let row = sqlx::query(
        "SELECT publisher_id, blocked_at, blocked_by, full_review_reason FROM plugins \
         WHERE id = $1",
    )
    .bind(plugin_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found(format!("plugin {plugin_id:?}")))?;
    Ok(PluginRow {
        publisher_id: row.try_get("publisher_id")?,
        blocked_at: row.try_get("blocked_at")?,
        blocked_by: row.try_get("blocked_by")?,
        full_review_reason: row.try_get("full_review_reason")?,
    })
}

/// Whether the plugin is blocked, read in `tx` (an unknown plugin is not).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn is_blocked(tx: &mut Tx, plugin_id: &str) -> Result<bool> {
    let blocked: Option<Option<i64>> =
        sqlx::query_scalar("SELECT blocked_at FROM plugins WHERE id = $1")
            .bind(plugin_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(matches!(blocked, Some(Some(_))))
}

/// Whether the plugin is blocked (an unknown plugin is not).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn plugin_blocked(db: &Db, plugin_id: &str) -> Result<bool> {
    let blocked: Option<Option<i64>> =
        sqlx::query_scalar("SELECT blocked_at FROM plugins WHERE id = $1")
            .bind(plugin_id)
            .fetch_optional(db.pool())
            .await?;
    Ok(matches!(blocked, Some(Some(_))))
}

/// One published version with its parsed manifest.
#[derive(Debug, Clone)]
pub(crate) struct VersionRow {
    pub(crate) version: String,
    pub(crate) semver: Version,
    pub(crate) manifest: Manifest,
    pub(crate) permissions_digest: String,
    pub(crate) yanked_at: Option<i64>,
    pub(crate) yanked_by: Option<String>,
}

impl VersionRow {
    pub(crate) fn yanked(&self) -> bool {
        self.yanked_at.is_some()
    }
}

/// Every published version of the plugin whose text parses as semver, newest first, read in
/// `tx`.
pub(crate) async fn version_rows(tx: &mut Tx, plugin_id: &str) -> Result<Vec<VersionRow>> {
    let rows = sqlx::query(
        "SELECT version, manifest, permissions_digest, yanked_at, yanked_by FROM versions \
         WHERE plugin_id = $1",
    )
    .bind(plugin_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut versions = Vec::with_capacity(rows.len());
    for row in rows {
        let version: String = row.try_get("version")?;
        let Ok(semver) = Version::parse(&version) else {
            continue;
        };
        let manifest: String = row.try_get("manifest")?;
        let manifest = Manifest::parse(&manifest).map_err(|e| {
            Error::Internal(format!("stored manifest of {plugin_id} {version}: {e}"))
        })?;
        versions.push(VersionRow {
            version,
            semver,
            manifest,
            permissions_digest: row.try_get("permissions_digest")?,
            yanked_at: row.try_get("yanked_at")?,
            yanked_by: row.try_get("yanked_by")?,
        });
    }
    versions.sort_by(|a, b| b.semver.cmp(&a.semver));
    Ok(versions)
}

/// The version called `version` among `rows` (compared as semver, so `1.0` style spellings
/// that parse the same match); [`Error::NotFound`] if there is none.
pub(crate) fn find_version<'a>(
    rows: &'a [VersionRow],
    plugin_id: &str,
    version: &str,
) -> Result<&'a VersionRow> {
    let wanted = Version::parse(version.trim()).ok();
    rows.iter()
        .find(|row| Some(&row.semver) == wanted.as_ref())
        .ok_or_else(|| Error::not_found(format!("version {version:?} of plugin {plugin_id:?}")))
}

/// Sets the plugin's `latest_version` to its highest non-yanked version (left as it is when
/// every version is yanked), in `tx`.
pub(crate) async fn refresh_latest(tx: &mut Tx, plugin_id: &str) -> Result<()> {
    let rows = version_rows(tx, plugin_id).await?;
    if let Some(latest) = installable::newest(&rows) {
        sqlx::query("UPDATE plugins SET latest_version = $1 WHERE id = $2")
            .bind(&latest.version)
            .bind(plugin_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The ids of the live tenants with an install of the plugin (on `version` if given).
pub(crate) async fn tenants_with_installs(
    tx: &mut Tx,
    plugin_id: &str,
    version: Option<&str>,
) -> Result<Vec<String>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT i.tenant_id FROM installs i JOIN tenants t ON t.id = i.tenant_id \
         WHERE i.plugin_id = $1 AND ($2 IS NULL OR i.version = $2) AND t.deleted_at IS NULL \
         ORDER BY i.tenant_id",
    )
    .bind(plugin_id)
    .bind(version)
    .fetch_all(&mut **tx)
    .await?;
    Ok(ids)
}

/// Checks a reason (evidence text for yanks and blocks, a sentence for decisions): trimmed,
/// not empty, at most 10000 characters.
///
/// # Errors
///
/// [`Error::BadRequest`]: `reason_required` or `invalid_body`, naming `field`.
pub(crate) fn check_text(field: &str, text: Option<&str>) -> Result<String> {
    let text = text.map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Err(Error::bad_request(
            "reason_required",
            format!("field `{field}` is required and must not be empty"),
        ));
    }
    if text.chars().count() > 10_000 {
        return Err(Error::bad_request(
            "invalid_body",
            format!("field `{field}` must be at most 10000 characters"),
        ));
    }
    Ok(text.to_owned())
}

/// The reason codes a yank or a block may carry.
pub const REASON_CODES: [&str; 6] = [
    "security",
    "malicious",
    "broken",
    "legal",
    "policy",
    "publisher_request",
];

/// Checks a yank's or block's `reason_code` (one of [`REASON_CODES`]) and `reason` (the
/// evidence).
///
/// # Errors
///
/// [`Error::BadRequest`]: `invalid_reason_code` naming the field and the codes;
/// `reason_required` / `invalid_body` for the reason.
pub fn check_reason(reason_code: Option<&str>, reason: Option<&str>) -> Result<(String, String)> {
    let code = reason_code.map(str::trim).unwrap_or_default();
    if !REASON_CODES.contains(&code) {
        return Err(Error::bad_request(
            "invalid_reason_code",
            format!(
                "field `reason_code` must be one of {}, not {code:?}",
                REASON_CODES.join(", ")
            ),
        ));
    }
    Ok((code.to_owned(), check_text("reason", reason)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_checked() {
        assert_eq!(
            check_reason(Some("nope"), Some("x")).unwrap_err().code(),
            "invalid_reason_code"
        );
        assert_eq!(
            check_reason(None, Some("x")).unwrap_err().code(),
            "invalid_reason_code"
        );
        assert_eq!(
            check_reason(Some("security"), Some("  "))
                .unwrap_err()
                .code(),
            "reason_required"
        );
        assert_eq!(
            check_reason(Some("security"), Some(&"x".repeat(10_001)))
                .unwrap_err()
                .code(),
            "invalid_body"
        );
        let (code, reason) = check_reason(Some(" broken "), Some(" crashes ")).unwrap();
        assert_eq!((code.as_str(), reason.as_str()), ("broken", "crashes"));
    }
}
