//! Deprecation: a publisher (or an operator) retires a plugin, or a range of its versions,
//! with a message and optionally the plugin that replaces it.
//!
//! The catalog shows it (detail, versions, search results), search ranks a wholly deprecated
//! plugin below every other match (`plugins.deprecated_at`, written only here), installing a
//! deprecated version answers with the deprecation (the install form shows a banner), and the
//! tenants whose installs it covers are notified. An operator may make it block new installs
//! (409 `plugin_deprecated`); only an operator lifts such a deprecation. Audited.

use semver::{Version, VersionReq};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{Steward, lock_plugin, steward_of};
use crate::audit::Actor;
use crate::auth::Principal;
use crate::catalog::Visibility;
use crate::clock::{now_ms, rfc3339};
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::notifications::notify;

/// Most characters of a deprecation message.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Most characters of a version range.
pub const MAX_RANGE_CHARS: usize = 100;

/// A plugin's deprecation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    /// The plugin.
    pub plugin_id: String,
    /// The versions it covers (a semver requirement such as `<2.0.0`); `None`: every version.
    pub versions: Option<String>,
    /// What tenants are told.
    pub message: String,
    /// The plugin to use instead.
    pub replacement: Option<String>,
    /// Whether new installs of a covered version are refused (set by an operator).
    pub blocks_installs: bool,
    /// When it was made (Unix ms).
    pub deprecated_at: i64,
}

impl Deprecation {
    /// Whether it covers `version` (text as stored); a version that does not parse is covered
    /// only by a deprecation of every version.
    pub fn covers(&self, version: &str) -> bool {
        match &self.versions {
            None => true,
            Some(range) => match (VersionReq::parse(range), Version::parse(version)) {
                (Ok(range), Ok(version)) => range.matches(&version),
                _ => false,
            },
        }
    }

    /// The sentence shown to tenants: the message and the replacement.
    pub fn notice(&self) -> String {
        let what = match &self.versions {
            None => format!("{} is deprecated", self.plugin_id),
            Some(range) => format!("{} {range} is deprecated", self.plugin_id),
        };
        match &self.replacement {
            Some(replacement) => format!("{what}: {} Use {replacement} instead.", self.message),
            None => format!("{what}: {}", self.message),
        }
    }
}

/// A deprecation as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeprecationView {
    /// The versions it covers (a semver requirement); null: every version.
    pub versions: Option<String>,
    /// The publisher's message.
    pub message: String,
    /// The plugin to use instead, if any.
    pub replacement: Option<String>,
    /// Whether new installs of a covered version are refused.
    pub blocks_installs: bool,
    /// When it was made, RFC 3339 (UTC).
    pub deprecated_at: String,
    /// The message with the replacement, as the console's banner says it.
    pub notice: String,
}

impl From<&Deprecation> for DeprecationView {
    fn from(deprecation: &Deprecation) -> Self {
        DeprecationView {
            versions: deprecation.versions.clone(),
            message: deprecation.message.clone(),
            replacement: deprecation.replacement.clone(),
            blocks_installs: deprecation.blocks_installs,
            deprecated_at: rfc3339(deprecation.deprecated_at),
            notice: deprecation.notice(),
        }
    }
}

/// What a publisher or an operator asks for.
#[derive(Debug, Clone, Default)]
pub struct NewDeprecation {
    /// The message (required, at most [`MAX_MESSAGE_CHARS`]).
    pub message: String,
    /// The replacement plugin id.
    pub replacement: Option<String>,
    /// A semver requirement; `None`: every version.
    pub versions: Option<String>,
    /// `Some` only from an operator: whether new installs are refused. `None` keeps what was
    /// set before (false for a new deprecation).
    pub blocks_installs: Option<bool>,
}

const COLUMNS: &str = "plugin_id, versions, message, replacement, blocks_installs, created_at";

fn from_row(row: &AnyRow) -> Result<Deprecation> {
    Ok(Deprecation {
        plugin_id: row.try_get(0)?,
        versions: row.try_get(1)?,
        message: row.try_get(2)?,
        replacement: row.try_get(3)?,
        blocks_installs: row.try_get::<i64, _>(4)? != 0,
        deprecated_at: row.try_get(5)?,
    })
}

/// The deprecation of `plugin_id`, if it has one.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn of(db: &Db, plugin_id: &str) -> Result<Option<Deprecation>> {
    let sql = format!("SELECT {COLUMNS} FROM deprecations WHERE plugin_id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(plugin_id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// The deprecations of the plugins tenant `tenant_id` has installed.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn of_installs(db: &Db, tenant_id: &str) -> Result<Vec<Deprecation>> {
    let sql = format!(
        "SELECT {} FROM deprecations d JOIN installs i ON i.plugin_id = d.plugin_id \
         WHERE i.tenant_id = $1",
        COLUMNS
            .split(", ")
            .map(|column| format!("d.{column}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// The deprecation of `plugin_id` that covers `version`, if any.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn covering(db: &Db, plugin_id: &str, version: &str) -> Result<Option<Deprecation>> {
    Ok(of(db, plugin_id)
        .await?
        .filter(|deprecation| deprecation.covers(version)))
}

/// Refuses installing `version` of a plugin whose deprecation blocks new installs of it.
///
/// # Errors
///
/// 409 `plugin_deprecated`, naming the replacement.
pub fn refuse_blocked(deprecation: Option<&Deprecation>) -> Result<()> {
    match deprecation {
        Some(deprecation) if deprecation.blocks_installs => Err(Error::conflict(
            "plugin_deprecated",
            format!(
                "{}; the operator has closed it to new installs",
                deprecation.notice()
            ),
        )),
        _ => Ok(()),
    }
}

/// Checks a request's fields; returns the trimmed message, replacement and range.
async fn check(
    db: &Db,
    plugin_id: &str,
    request: &NewDeprecation,
) -> Result<(String, Option<String>, Option<String>)> {
    let message = request.message.trim();
    if message.is_empty() {
        return Err(Error::bad_request(
            "invalid_body",
            "field `message` is required and must not be empty",
        ));
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(Error::bad_request(
            "invalid_body",
            format!("field `message` must be at most {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    let versions = match request.versions.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(range) if range.chars().count() > MAX_RANGE_CHARS => {
            return Err(Error::bad_request(
                "invalid_body",
                format!("field `versions` must be at most {MAX_RANGE_CHARS} characters"),
            ));
        }
        Some(range) => {
            VersionReq::parse(range).map_err(|e| {
                Error::bad_request(
                    "invalid_version_range",
                    format!("field `versions` is not a semver requirement such as \"<2.0.0\": {e}"),
                )
            })?;
            Some(range.to_owned())
        }
    };
    let replacement = match request.replacement.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(replacement) if replacement == plugin_id => {
            return Err(Error::bad_request(
                "invalid_replacement",
                "field `replacement` names the deprecated plugin itself",
            ));
        }
        Some(replacement) => {
            // Every tenant must be able to follow the advice: the replacement is public.
            if !crate::catalog::shows(db, replacement, &Visibility::PUBLIC).await? {
                return Err(Error::bad_request(
                    "invalid_replacement",
                    format!(
                        "field `replacement`: {replacement:?} is not a published public plugin"
                    ),
                ));
            }
            Some(replacement.to_owned())
        }
    };
    Ok((message.to_owned(), replacement, versions))
}

/// Deprecates `plugin_id` (or the versions `request.versions` names) as `principal`: a member
/// of its publisher or an operator; only an operator may set `blocks_installs`. Replaces an
/// earlier deprecation. Audited; the tenants whose installs it covers, and the publisher when
/// an operator made it, are notified.
///
/// # Errors
///
/// 404 for a plugin the caller may not see or act for; 403 `operator_required` for
/// `blocks_installs` from anyone else; 400 `invalid_body`, `invalid_version_range`,
/// `invalid_replacement`.
pub async fn deprecate(
    db: &Db,
    principal: &Principal,
    plugin_id: &str,
    request: NewDeprecation,
) -> Result<Deprecation> {
    let (steward, publisher_id) = steward_of(db, principal, plugin_id).await?;
    if request.blocks_installs.is_some() && steward != Steward::Operator {
        return Err(Error::forbidden(
            "operator_required",
            "only an operator may set `blocks_installs`",
        ));
    }
    let (message, replacement, versions) = check(db, plugin_id, &request).await?;
    let actor = Actor::from(principal);
    let now = now_ms();

    let mut tx = db.begin().await?;
    if !lock_plugin(&mut tx, plugin_id).await? {
        return Err(Error::not_found(format!("plugin {plugin_id:?}")));
    }
    let before: Option<bool> =
        sqlx::query_scalar("SELECT blocks_installs FROM deprecations WHERE plugin_id = $1")
            .bind(plugin_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|blocks: i64| blocks != 0);
    let deprecation = Deprecation {
        plugin_id: plugin_id.to_owned(),
        versions,
        message,
        replacement,
        blocks_installs: request.blocks_installs.or(before).unwrap_or(false),
        deprecated_at: now,
    };
    sqlx::query("DELETE FROM deprecations WHERE plugin_id = $1")
        .bind(plugin_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO deprecations (plugin_id, versions, message, replacement, blocks_installs, \
         deprecated_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(plugin_id)
    .bind(&deprecation.versions)
    .bind(&deprecation.message)
    .bind(&deprecation.replacement)
    .bind(i64::from(deprecation.blocks_installs))
    .bind(actor.id().unwrap_or("system"))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    set_ranked_down(
        &mut tx,
        plugin_id,
        deprecation.versions.is_none().then_some(now),
    )
    .await?;
    let payload = json!({
        "plugin": plugin_id,
        "versions": deprecation.versions,
        "message": deprecation.message,
        "replacement": deprecation.replacement,
        "blocks_installs": deprecation.blocks_installs,
    });
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor: actor.clone(),
            action: "plugin.deprecated",
            tenant_id: None,
            subject: format!("plugin:{plugin_id}"),
            details: payload.clone(),
        },
    )
    .await?;
    let notice = deprecation.notice();
    for tenant_id in covered_tenants(&mut tx, &deprecation).await? {
        notify(
            &mut tx,
            "tenant",
            &tenant_id,
            "plugin_deprecated",
            &notice,
            payload.clone(),
        )
        .await?;
    }
    if steward == Steward::Operator {
        notify(
            &mut tx,
            "publisher",
            &publisher_id,
            "plugin_deprecated",
            &format!("An operator deprecated your plugin. {notice}"),
            payload,
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(plugin = plugin_id, versions = ?deprecation.versions, blocks = deprecation.blocks_installs, "plugin deprecated");
    Ok(deprecation)
}

/// Lifts the deprecation of `plugin_id` as `principal` (a member of its publisher or an
/// operator; only an operator when it blocks installs). Audited.
///
/// # Errors
///
/// 404 for a plugin the caller may not see or act for; 409 `not_deprecated`; 403
/// `operator_required` for a deprecation that blocks installs.
pub async fn undeprecate(db: &Db, principal: &Principal, plugin_id: &str) -> Result<()> {
    let (steward, _) = steward_of(db, principal, plugin_id).await?;
    let mut tx = db.begin().await?;
    if !lock_plugin(&mut tx, plugin_id).await? {
        return Err(Error::not_found(format!("plugin {plugin_id:?}")));
    }
    let blocks: Option<i64> =
        sqlx::query_scalar("SELECT blocks_installs FROM deprecations WHERE plugin_id = $1")
            .bind(plugin_id)
            .fetch_optional(&mut *tx)
            .await?;
    match blocks {
        None => {
            return Err(Error::conflict(
                "not_deprecated",
                format!("{plugin_id} is not deprecated"),
            ));
        }
        Some(blocks) if blocks != 0 && steward != Steward::Operator => {
            return Err(Error::forbidden(
                "operator_required",
                format!(
                    "an operator closed {plugin_id} to new installs; only an operator may lift its deprecation"
                ),
            ));
        }
        Some(_) => {}
    }
    sqlx::query("DELETE FROM deprecations WHERE plugin_id = $1")
        .bind(plugin_id)
        .execute(&mut *tx)
        .await?;
    set_ranked_down(&mut tx, plugin_id, None).await?;
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor: Actor::from(principal),
            action: "plugin.undeprecated",
            tenant_id: None,
            subject: format!("plugin:{plugin_id}"),
            details: json!({"plugin": plugin_id}),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(plugin = plugin_id, "plugin deprecation lifted");
    Ok(())
}

/// Sets (or clears) `plugins.deprecated_at`, by which search ranks a wholly deprecated plugin
/// last.
async fn set_ranked_down(tx: &mut Tx, plugin_id: &str, at: Option<i64>) -> Result<()> {
    sqlx::query("UPDATE plugins SET deprecated_at = $1 WHERE id = $2")
        .bind(at)
        .bind(plugin_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The tenants with an install on a version `deprecation` covers.
async fn covered_tenants(tx: &mut Tx, deprecation: &Deprecation) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT tenant_id, version FROM installs WHERE plugin_id = $1")
        .bind(&deprecation.plugin_id)
        .fetch_all(&mut **tx)
        .await?;
    let mut tenants = Vec::new();
    for row in rows {
        let version: String = row.try_get(1)?;
        if deprecation.covers(&version) {
            tenants.push(row.try_get(0)?);
        }
    }
    Ok(tenants)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deprecation(versions: Option<&str>, replacement: Option<&str>) -> Deprecation {
        Deprecation {
            plugin_id: "acme.old".to_owned(),
            versions: versions.map(str::to_owned),
            message: "No longer maintained.".to_owned(),
            replacement: replacement.map(str::to_owned),
            blocks_installs: false,
            deprecated_at: 0,
        }
    }

    #[test]
    fn a_range_covers_only_its_versions() {
        let all = deprecation(None, None);
        assert!(all.covers("1.0.0") && all.covers("not semver"));
        let old = deprecation(Some("<2.0.0"), None);
        assert!(old.covers("1.9.3"));
        assert!(!old.covers("2.0.0"));
        assert!(!old.covers("not semver"));
    }

    #[test]
    fn the_notice_names_the_range_and_the_replacement() {
        assert_eq!(
            deprecation(Some("<2.0.0"), Some("acme.new")).notice(),
            "acme.old <2.0.0 is deprecated: No longer maintained. Use acme.new instead."
        );
        assert_eq!(
            deprecation(None, None).notice(),
            "acme.old is deprecated: No longer maintained."
        );
    }

    #[test]
    fn only_a_blocking_deprecation_refuses_installs() {
        let mut blocking = deprecation(None, Some("acme.new"));
        assert!(refuse_blocked(Some(&blocking)).is_ok());
        blocking.blocks_installs = true;
        let refused = refuse_blocked(Some(&blocking));
        assert_eq!(
            refused.err().map(|e| e.code().to_owned()).as_deref(),
            Some("plugin_deprecated")
        );
        assert!(refuse_blocked(None).is_ok());
    }
}
