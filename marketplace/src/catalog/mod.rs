//! The catalog. PLACEHOLDER (developer branch): only [`publish_version`], the minimal write the
//! review workflow needs; the catalog module replaces this file at merge.

use plinth_package::Package;
use utoipa_axum::router::OpenApiRouter;

use crate::db::Tx;
use crate::error::Result;
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}

/// Publishes an approved `package` (whose countersigned bytes are artifact
/// `artifact_sha256`): upserts its `plugins` row and inserts its `versions` row, in `tx`.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn publish_version(
    tx: &mut Tx,
    package: &Package,
    publisher_id: &str,
    submission_id: &str,
    artifact_sha256: &str,
    now: i64,
) -> Result<()> {
    let plugin = &package.manifest.plugin;
    let categories = serde_json::to_string(&plugin.categories)
        .map_err(|e| crate::Error::Internal(format!("categories: {e}")))?;
    let pricing = serde_json::to_value(package.manifest.pricing.model)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "free".to_owned());
    sqlx::query(
        "INSERT INTO plugins (id, publisher_id, name, description, categories, pricing_model, \
             latest_version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description, \
             categories = excluded.categories, pricing_model = excluded.pricing_model, \
             latest_version = excluded.latest_version, updated_at = excluded.updated_at",
    )
    .bind(plugin.id.as_str())
    .bind(publisher_id)
    .bind(&plugin.name)
    .bind(&plugin.description)
    .bind(categories)
    .bind(pricing)
    .bind(plugin.version.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO versions (plugin_id, version, digest, artifact_sha256, manifest, \
             permissions_digest, changelog, readme, submission_id, published_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(plugin.id.as_str())
    .bind(plugin.version.to_string())
    .bind(package.digest().to_string())
    .bind(artifact_sha256)
    .bind(&package.manifest_toml)
    .bind(package.manifest.permissions.digest().to_string())
    .bind(package.changelog.clone())
    .bind(package.readme.clone())
    .bind(submission_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
