//! The catalog: approved plugins and their versions, full-text search, detail and downloads.
//!
//! The review module calls [`publish_version`] inside its approval transaction; it writes the
//! `versions` row, the `plugins` row (whose name, description, categories, pricing and
//! capabilities follow the newest non-yanked version) and keeps full-text search in step
//! (SQLite: the FTS5 table `plugin_search`; PostgreSQL: the generated `plugins.search`
//! column). [`search()`] answers `GET /v1/plugins`; [`plugin_detail`], [`versions`],
//! [`version`] and [`package_bytes`] answer the other public routes.

pub mod audience;
mod routes;
pub mod search;
mod visibility;

pub(crate) use routes::routes;
pub use search::{Cursor, SearchPage, SearchQuery, Sort, search};
pub use visibility::Visibility;

use std::collections::BTreeMap;

use plinth_package::{GrantDescription, Manifest, Package, Permissions, Risk};
use semver::Version;
use serde::Serialize;
use sqlx::{Any, Executor, Row};
use utoipa::ToSchema;

use crate::clock::rfc3339;
use crate::db::{Backend, Db, Tx};
use crate::error::{Error, Result};
use crate::versions::deprecation::{self, Deprecation, DeprecationView};

/// One plugin in a search result.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PluginSummary {
    /// The plugin id, `<namespace>.<name>`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// One-paragraph description.
    pub description: String,
    /// The highest non-yanked version.
    pub latest_version: String,
    /// Average stars (1 to 5), or null before the first rating.
    pub rating: Option<f64>,
    /// Tenants that have it installed.
    pub installs: i64,
    /// Categories, lowercase.
    pub categories: Vec<String>,
    /// Pricing model: `free`, `monthly` or `per-1000-invocations`.
    pub pricing: String,
    /// Whether the whole plugin is deprecated (it is ranked after every other match).
    pub deprecated: bool,
}

/// A plugin's publisher as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PublisherRef {
    /// The publisher's namespace (the first part of its plugin ids).
    pub namespace: String,
    /// The publisher's display name.
    pub name: String,
}

/// Stars given to a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RatingSummary {
    /// Average stars, or null before the first rating.
    pub average: Option<f64>,
    /// How many ratings.
    pub count: i64,
    /// How many ratings gave each number of stars, keyed `"1"` to `"5"`.
    pub histogram: BTreeMap<String, i64>,
}

/// One granted permission as shown to a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PermissionView {
    /// `kv`, `http`, `events.subscribe`, `events.emit` or `config`.
    pub capability: String,
    /// What exactly: a quota, a host, a topic.
    pub detail: String,
    /// The sentence a tenant consents to.
    pub sentence: String,
    /// How much it exposes the tenant: `low`, `medium` (it emits events other plugins act
    /// on) or `high` (outbound HTTP: data can leave the platform).
    #[schema(value_type = String, example = "high")]
    pub risk: Risk,
}

impl From<GrantDescription> for PermissionView {
    fn from(grant: GrantDescription) -> Self {
        PermissionView {
            capability: grant.capability,
            detail: grant.detail,
            sentence: grant.sentence,
            risk: grant.risk,
        }
    }
}

/// One published version of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VersionInfo {
    /// The semantic version.
    pub version: String,
    /// The package's `CHANGELOG.md`, if it has one.
    pub changelog: Option<String>,
    /// When it was approved, RFC 3339 (UTC).
    pub published_at: String,
    /// Whether it was yanked (refused for new installs).
    pub yanked: bool,
    /// The permissions it requests.
    pub permissions: Vec<PermissionView>,
    /// The digest of that permission set (`sha256:<hex>`); an install consents to it.
    pub permissions_digest: String,
    /// Whether the plugin's deprecation covers this version.
    pub deprecated: bool,
}

/// A plugin with its publisher, ratings and versions.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PluginDetail {
    /// The plugin id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// One-paragraph description.
    pub description: String,
    /// Categories, lowercase.
    pub categories: Vec<String>,
    /// Pricing model.
    pub pricing: String,
    /// Who publishes it.
    pub publisher: PublisherRef,
    /// The highest non-yanked version.
    pub latest_version: String,
    /// Tenants that have it installed.
    pub installs: i64,
    /// Stars given to it.
    pub rating: RatingSummary,
    /// Every published version, newest first.
    pub versions: Vec<VersionInfo>,
    /// Whether only the tenants its publisher named see it.
    pub private: bool,
    /// The plugin's deprecation (of every version, or of the range it names), if any.
    pub deprecation: Option<DeprecationView>,
}

/// Capability names recorded for filtering: each grant's capability (`events.subscribe`) and
/// its family (`events`).
fn capability_names(permissions: &Permissions) -> Vec<String> {
    let mut names: Vec<String> = permissions
        .describe()
        .into_iter()
        .flat_map(|grant| {
            let family = grant
                .capability
                .split_once('.')
                .map(|(family, _)| family.to_owned());
            std::iter::once(grant.capability).chain(family)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Categories as stored: trimmed, lowercase, without duplicates, in the manifest's order.
fn normalize_categories(categories: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for category in categories {
        let category = category.trim().to_lowercase();
        if !category.is_empty() && !out.contains(&category) {
            out.push(category);
        }
    }
    out
}

/// Publishes an approved version: inserts its `versions` row and brings the `plugins` row,
/// its categories and capabilities, and full-text search up to date — all inside `tx`, the
/// approval transaction. The package bytes must already be stored in `artifacts` under
/// `artifact_sha256`, and `submission_id` must name the approved submission.
///
/// The plugin's name, description, categories, pricing and capabilities follow its newest
/// non-yanked version, so publishing a patch of an older line leaves them as they are.
///
/// # Errors
///
/// [`Error::Conflict`] `version_exists` if this version is published already, or
/// `plugin_owned_elsewhere` if the plugin belongs to another publisher;
/// [`Error::Database`] otherwise.
pub async fn publish_version(
    tx: &mut Tx,
    package: &Package,
    publisher_id: &str,
    submission_id: &str,
    artifact_sha256: &str,
    now: i64,
) -> Result<()> {
    let info = &package.manifest.plugin;
    let plugin_id = info.id.as_str();
    let version = info.version.to_string();

    let owner: Option<String> = sqlx::query("SELECT publisher_id FROM plugins WHERE id = $1")
        .bind(plugin_id)
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    if owner.as_deref().is_some_and(|owner| owner != publisher_id) {
        return Err(Error::conflict(
            "plugin_owned_elsewhere",
            format!("plugin {plugin_id} belongs to another publisher"),
        ));
    }

    if owner.is_some() {
        // Held until the approval commits: a yank or an update of this plugin waits for it.
        crate::versions::lock_plugin(tx, plugin_id).await?;
    }
    let categories = normalize_categories(&info.categories);
    let joined_categories = categories.join(" ");
    let pricing = package.manifest.pricing.model.as_str();
    if owner.is_none() {
        sqlx::query(
            "INSERT INTO plugins (id, publisher_id, name, description, categories, pricing_model, \
             latest_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(plugin_id)
        .bind(publisher_id)
        .bind(&info.name)
        .bind(&info.description)
        .bind(&joined_categories)
        .bind(pricing)
        .bind(&version)
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        // A plugin declared private before its first version is private from its first row.
        audience::mark(tx, plugin_id).await?;
    }

    let inserted = sqlx::query(
        "INSERT INTO versions (plugin_id, version, digest, artifact_sha256, manifest, \
         permissions_digest, changelog, readme, submission_id, published_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(plugin_id)
    .bind(&version)
    .bind(package.digest().to_string())
    .bind(artifact_sha256)
    .bind(&package.manifest_toml)
    .bind(package.manifest.permissions.digest().to_string())
    .bind(package.changelog.as_deref())
    .bind(package.readme.as_deref())
    .bind(submission_id)
    .bind(now)
    .execute(&mut **tx)
    .await;
    match inserted.map_err(Error::from) {
        Err(e) if e.is_unique_violation() => {
            return Err(Error::conflict(
                "version_exists",
                format!("version {version} of {plugin_id} is published already"),
            ));
        }
        other => {
            other?;
        }
    }

    let rows = crate::versions::version_rows(tx, plugin_id).await?;
    let latest = crate::versions::installable::newest(&rows)
        .map_or_else(|| info.version.clone(), |row| row.semver.clone());
    let latest_text = latest.to_string();

    if latest != info.version {
        // An older line: the plugin keeps the newest version's metadata.
        sqlx::query("UPDATE plugins SET latest_version = $1, updated_at = $2 WHERE id = $3")
            .bind(&latest_text)
            .bind(now)
            .bind(plugin_id)
            .execute(&mut **tx)
            .await?;
        tracing::info!(plugin = plugin_id, %version, latest = %latest_text, "older version published");
        return Ok(());
    }

    sqlx::query(
        "UPDATE plugins SET name = $1, description = $2, categories = $3, pricing_model = $4, \
         latest_version = $5, updated_at = $6 WHERE id = $7",
    )
    .bind(&info.name)
    .bind(&info.description)
    .bind(&joined_categories)
    .bind(pricing)
    .bind(&latest_text)
    .bind(now)
    .bind(plugin_id)
    .execute(&mut **tx)
    .await?;

    sqlx::query("DELETE FROM plugin_categories WHERE plugin_id = $1")
        .bind(plugin_id)
        .execute(&mut **tx)
        .await?;
    for category in &categories {
        sqlx::query("INSERT INTO plugin_categories (plugin_id, category) VALUES ($1, $2)")
            .bind(plugin_id)
            .bind(category)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("DELETE FROM plugin_capabilities WHERE plugin_id = $1")
        .bind(plugin_id)
        .execute(&mut **tx)
        .await?;
    for capability in capability_names(&package.manifest.permissions) {
        sqlx::query("INSERT INTO plugin_capabilities (plugin_id, capability) VALUES ($1, $2)")
            .bind(plugin_id)
            .bind(capability)
            .execute(&mut **tx)
            .await?;
    }

    if backend_of(tx) == Backend::Sqlite {
        crate::db::sqlite::search::sync_plugin(
            tx,
            plugin_id,
            &info.name,
            &info.description,
            &joined_categories,
        )
        .await?;
    }
    tracing::info!(plugin = plugin_id, %version, "version published");
    Ok(())
}

/// Which backend a transaction runs on.
fn backend_of(tx: &Tx) -> Backend {
    if tx.backend_name().eq_ignore_ascii_case("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

/// The newest published version of `plugin_id` (yanked ones included: they were approved) and
/// the permissions it requests — what the review queue diffs a new submission against. `None`
/// when the plugin has no published version.
///
/// Takes any executor: `db.pool()` or `&mut *tx`.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] if the stored manifest no longer parses.
pub async fn latest_permissions<'e, E>(
    executor: E,
    plugin_id: &str,
) -> Result<Option<(Version, Permissions)>>
where
    E: Executor<'e, Database = Any>,
{
    let rows = sqlx::query("SELECT version, manifest FROM versions WHERE plugin_id = $1")
        .bind(plugin_id)
        .fetch_all(executor)
        .await?;
    let mut newest: Option<(Version, String)> = None;
    for row in rows {
        let text: String = row.try_get(0)?;
        let Ok(version) = Version::parse(&text) else {
            continue;
        };
        if newest.as_ref().is_none_or(|(best, _)| version > *best) {
            newest = Some((version, row.try_get(1)?));
        }
    }
    newest
        .map(|(version, manifest)| Ok((version, parse_manifest(plugin_id, &manifest)?.permissions)))
        .transpose()
}

/// The price of public plugin `plugin_id`'s newest version: `(model, amount, currency)` (amount
/// 0 and an empty currency for a free plugin); `None` for a plugin the public does not see.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] if the stored manifest no longer parses.
pub async fn pricing_of(db: &Db, plugin_id: &str) -> Result<Option<(String, i64, String)>> {
    if !shows(db, plugin_id, &Visibility::PUBLIC).await? {
        return Ok(None);
    }
    let rows = sqlx::query("SELECT version, manifest FROM versions WHERE plugin_id = $1")
        .bind(plugin_id)
        .fetch_all(db.pool())
        .await?;
    let mut newest: Option<(Version, String)> = None;
    for row in rows {
        let text: String = row.try_get(0)?;
        let Ok(version) = Version::parse(&text) else {
            continue;
        };
        if newest.as_ref().is_none_or(|(best, _)| version > *best) {
            newest = Some((version, row.try_get(1)?));
        }
    }
    let Some((_, manifest)) = newest else {
        return Ok(None);
    };
    let pricing = parse_manifest(plugin_id, &manifest)?.pricing;
    Ok(Some((
        pricing.model.as_str().to_owned(),
        pricing.amount.unwrap_or(0),
        pricing.currency.map(|c| c.to_string()).unwrap_or_default(),
    )))
}

/// Parses a stored manifest; a failure is the server's fault.
fn parse_manifest(plugin_id: &str, manifest: &str) -> Result<Manifest> {
    Manifest::parse(manifest).map_err(|e| {
        Error::Internal(format!(
            "stored manifest of {plugin_id} does not parse: {e}"
        ))
    })
}

/// Average stars, rounded to two decimals; `None` before the first rating.
pub(crate) fn average(sum: i64, count: i64) -> Option<f64> {
    #[allow(
        clippy::cast_precision_loss,
        reason = "star sums and counts are far below 2^52"
    )]
    (count > 0).then(|| ((sum as f64 / count as f64) * 100.0).round() / 100.0)
}

/// The plugin row as `visibility` sees it: `None` if unknown, or hidden from it (blocked, or
/// private to an audience it is not in).
async fn plugin_row(
    db: &Db,
    plugin_id: &str,
    visibility: &Visibility,
) -> Result<Option<sqlx::any::AnyRow>> {
    let (shown, args) = visibility.condition(2);
    let sql = format!(
        "SELECT p.id, p.name, p.description, p.pricing_model, p.latest_version, p.installs, \
         p.rating_sum, p.rating_count, p.blocked_at, pub.namespace, pub.name \
         FROM plugins p JOIN publishers pub ON pub.id = p.publisher_id WHERE p.id = $1 AND {shown}"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(plugin_id);
    for arg in args {
        query = query.bind(arg);
    }
    Ok(query.fetch_optional(db.pool()).await?)
}

/// Whether `visibility` shows `plugin_id` (an unknown plugin is not shown).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn shows(db: &Db, plugin_id: &str, visibility: &Visibility) -> Result<bool> {
    Ok(plugin_row(db, plugin_id, visibility).await?.is_some())
}

/// The publisher (id, namespace) of published plugin `plugin_id`, with no visibility check:
/// the caller has made its own.
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown plugin; [`Error::Database`].
pub(crate) async fn publisher_of(db: &Db, plugin_id: &str) -> Result<(String, String)> {
    let row = sqlx::query(
        "SELECT p.publisher_id, pub.namespace FROM plugins p \
         JOIN publishers pub ON pub.id = p.publisher_id WHERE p.id = $1",
    )
    .bind(plugin_id)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| unknown_plugin(plugin_id))?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

fn unknown_plugin(plugin_id: &str) -> Error {
    Error::not_found(format!("plugin {plugin_id:?}"))
}

/// The categories of `plugin_id`, in stored order.
async fn categories_of(db: &Db, plugin_id: &str) -> Result<Vec<String>> {
    sqlx::query("SELECT category FROM plugin_categories WHERE plugin_id = $1 ORDER BY category")
        .bind(plugin_id)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
}

/// A plugin's detail page. Blocked plugins are hidden unless `visibility` shows them (operators).
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown (or hidden) plugin; [`Error::Database`].
pub async fn plugin_detail(
    db: &Db,
    plugin_id: &str,
    visibility: &Visibility,
) -> Result<PluginDetail> {
    let row = plugin_row(db, plugin_id, visibility)
        .await?
        .ok_or_else(|| unknown_plugin(plugin_id))?;
    let rating_sum: i64 = row.try_get(6)?;
    let rating_count: i64 = row.try_get(7)?;
    let histogram = rating_histogram(db, plugin_id).await?;
    let deprecation = deprecation::of(db, plugin_id).await?;
    Ok(PluginDetail {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        description: row.try_get(2)?,
        categories: categories_of(db, plugin_id).await?,
        pricing: row.try_get(3)?,
        publisher: PublisherRef {
            namespace: row.try_get(9)?,
            name: row.try_get(10)?,
        },
        latest_version: row.try_get(4)?,
        installs: row.try_get(5)?,
        rating: RatingSummary {
            average: average(rating_sum, rating_count),
            count: rating_count,
            histogram,
        },
        versions: load_versions(db, plugin_id, deprecation.as_ref()).await?,
        private: audience::private(db.pool(), plugin_id).await?,
        deprecation: deprecation.as_ref().map(DeprecationView::from),
    })
}

/// Ratings per number of stars (see [`crate::ratings::histogram`]).
async fn rating_histogram(db: &Db, plugin_id: &str) -> Result<BTreeMap<String, i64>> {
    crate::ratings::histogram(db, plugin_id).await
}

/// Every version of a known plugin, newest first, marked as `deprecation` covers them.
async fn load_versions(
    db: &Db,
    plugin_id: &str,
    deprecation: Option<&Deprecation>,
) -> Result<Vec<VersionInfo>> {
    let rows = sqlx::query(
        "SELECT version, changelog, published_at, yanked_at, manifest, permissions_digest \
         FROM versions WHERE plugin_id = $1",
    )
    .bind(plugin_id)
    .fetch_all(db.pool())
    .await?;
    let mut versions = rows
        .iter()
        .map(|row| version_info(plugin_id, row, deprecation))
        .collect::<Result<Vec<_>>>()?;
    versions.sort_by(|a, b| {
        let a = (Version::parse(&a.0).ok(), &a.0);
        let b = (Version::parse(&b.0).ok(), &b.0);
        b.cmp(&a)
    });
    Ok(versions.into_iter().map(|(_, info)| info).collect())
}

/// A `versions` row (version, changelog, published_at, yanked_at, manifest,
/// permissions_digest) as a [`VersionInfo`], with its version text for sorting.
fn version_info(
    plugin_id: &str,
    row: &sqlx::any::AnyRow,
    deprecation: Option<&Deprecation>,
) -> Result<(String, VersionInfo)> {
    let version: String = row.try_get(0)?;
    let manifest: String = row.try_get(4)?;
    let permissions = parse_manifest(plugin_id, &manifest)?
        .permissions
        .describe()
        .into_iter()
        .map(PermissionView::from)
        .collect();
    let published_at: i64 = row.try_get(2)?;
    let yanked_at: Option<i64> = row.try_get(3)?;
    Ok((
        version.clone(),
        VersionInfo {
            changelog: row.try_get(1)?,
            published_at: rfc3339(published_at),
            yanked: yanked_at.is_some(),
            permissions,
            permissions_digest: row.try_get(5)?,
            deprecated: deprecation.is_some_and(|d| d.covers(&version)),
            version,
        },
    ))
}

/// Every version of a plugin, newest first.
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown (or hidden) plugin; [`Error::Database`].
pub async fn versions(
    db: &Db,
    plugin_id: &str,
    visibility: &Visibility,
) -> Result<Vec<VersionInfo>> {
    plugin_row(db, plugin_id, visibility)
        .await?
        .ok_or_else(|| unknown_plugin(plugin_id))?;
    let deprecation = deprecation::of(db, plugin_id).await?;
    load_versions(db, plugin_id, deprecation.as_ref()).await
}

/// The stored text of a version: the version as given if it parses (`1.0.0`), normalised.
fn version_key(plugin_id: &str, version: &str) -> Result<String> {
    Version::parse(version)
        .map(|v| v.to_string())
        .map_err(|_| unknown_version(plugin_id, version))
}

fn unknown_version(plugin_id: &str, version: &str) -> Error {
    Error::not_found(format!("version {version:?} of plugin {plugin_id:?}"))
}

/// The version called `version` among `versions` (one plugin's, as [`versions`] lists them),
/// found as [`version`] finds it, without reading again.
///
/// # Errors
///
/// [`Error::NotFound`] for a version that is not among them.
pub fn version_among(
    versions: Vec<VersionInfo>,
    plugin_id: &str,
    version: &str,
) -> Result<VersionInfo> {
    let key = version_key(plugin_id, version)?;
    versions
        .into_iter()
        .find(|v| v.version == key)
        .ok_or_else(|| unknown_version(plugin_id, version))
}

/// One version of a plugin.
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown plugin or version; [`Error::Database`].
pub async fn version(
    db: &Db,
    plugin_id: &str,
    version: &str,
    visibility: &Visibility,
) -> Result<VersionInfo> {
    plugin_row(db, plugin_id, visibility)
        .await?
        .ok_or_else(|| unknown_plugin(plugin_id))?;
    let key = version_key(plugin_id, version)?;
    let row = sqlx::query(
        "SELECT version, changelog, published_at, yanked_at, manifest, permissions_digest \
         FROM versions WHERE plugin_id = $1 AND version = $2",
    )
    .bind(plugin_id)
    .bind(&key)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| unknown_version(plugin_id, version))?;
    let deprecation = deprecation::of(db, plugin_id).await?;
    Ok(version_info(plugin_id, &row, deprecation.as_ref())?.1)
}

/// A stored package, ready to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    /// `<id>-<version>.plinth`.
    pub file_name: String,
    /// The countersigned package bytes.
    pub bytes: Vec<u8>,
}

/// The stored (countersigned) package of a version.
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown plugin or version; [`Error::Database`].
pub async fn package_bytes(
    db: &Db,
    plugin_id: &str,
    version: &str,
    visibility: &Visibility,
) -> Result<PackageFile> {
    plugin_row(db, plugin_id, visibility)
        .await?
        .ok_or_else(|| unknown_plugin(plugin_id))?;
    let key = version_key(plugin_id, version)?;
    let row = sqlx::query(
        "SELECT a.bytes FROM versions v JOIN artifacts a ON a.sha256 = v.artifact_sha256 \
         WHERE v.plugin_id = $1 AND v.version = $2",
    )
    .bind(plugin_id)
    .bind(&key)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| unknown_version(plugin_id, version))?;
    Ok(PackageFile {
        file_name: format!("{plugin_id}-{key}.plinth"),
        bytes: row.try_get(0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_trimmed_lowercased_and_deduplicated() {
        let given = [
            "Chat ".to_owned(),
            "chat".to_owned(),
            String::new(),
            "Dev Tools".to_owned(),
        ];
        assert_eq!(normalize_categories(&given), ["chat", "dev tools"]);
    }

    #[test]
    fn averages_round_to_two_decimals() {
        assert_eq!(average(0, 0), None);
        assert_eq!(average(14, 3), Some(4.67));
    }
}
