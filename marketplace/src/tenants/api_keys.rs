//! A tenant's API keys: bearer tokens of kind [`TokenKind::TenantKey`], shown once, stored as
//! their sha256 in `tokens` with the tenant's id. A key acts as a member of its tenant.

use sqlx::Row;

use super::{Tenant, lock_tenant};
use crate::audit::Actor;
use crate::auth::token::{self, TokenKind};
use crate::db::cache::Topic;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::id::new_id;

/// An API key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key's id.
    pub id: String,
    /// The name it was given.
    pub name: String,
    /// When it was made (Unix ms).
    pub created_at: i64,
    /// When it was revoked (Unix ms), if it was.
    pub revoked_at: Option<i64>,
}

/// Checks and trims a key's name (field `name`, 1 to 100 characters).
///
/// # Errors
///
/// [`Error::BadRequest`] with code `invalid_name`.
pub fn validate_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::bad_request(
            "invalid_name",
            "field `name` must be 1 to 100 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Makes an API key for `tenant`; returns it and its secret (to be shown once).
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_name`); [`Error::NotFound`] if the tenant was deleted
/// meanwhile.
pub async fn create(
    db: &Db,
    actor: &Actor,
    tenant: &Tenant,
    name: &str,
    now: i64,
) -> Result<(ApiKey, String)> {
    let name = validate_name(name)?;
    let (secret, hash) = token::generate(TokenKind::TenantKey)?;
    let key = ApiKey {
        id: new_id(),
        name,
        created_at: now,
        revoked_at: None,
    };
    let mut tx = db.begin_tenant(&tenant.id).await?;
    lock_tenant(&mut tx, tenant).await?;
    sqlx::query(
        "INSERT INTO tokens (id, token_hash, kind, tenant_id, name, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.id)
    .bind(hash)
    .bind(TokenKind::TenantKey.as_str())
    .bind(&tenant.id)
    .bind(&key.name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit_key(&mut tx, actor, tenant, "tenant_key.created", &key.id).await?;
    tx.commit().await?;
    Ok((key, secret))
}

/// The API keys of `tenant`, oldest first, revoked ones included.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn list(db: &Db, tenant: &Tenant) -> Result<Vec<ApiKey>> {
    let mut tx = db.begin_tenant_read(&tenant.id).await?;
    let rows = sqlx::query(
        "SELECT id, name, created_at, revoked_at FROM tokens \
         WHERE tenant_id = $1 AND kind = $2 ORDER BY created_at, id",
    )
    .bind(&tenant.id)
    .bind(TokenKind::TenantKey.as_str())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter()
        .map(|row| {
            Ok(ApiKey {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// Revokes API key `key_id` of `tenant` (revoking a revoked key changes nothing).
///
/// # Errors
///
/// [`Error::NotFound`] if `tenant` has no such key.
pub async fn revoke(db: &Db, actor: &Actor, tenant: &Tenant, key_id: &str, now: i64) -> Result<()> {
    let mut tx = db.begin_tenant(&tenant.id).await?;
    let found =
        sqlx::query("SELECT revoked_at FROM tokens WHERE id = $1 AND tenant_id = $2 AND kind = $3")
            .bind(key_id)
            .bind(&tenant.id)
            .bind(TokenKind::TenantKey.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!("API key {key_id} of tenant {:?}", tenant.slug))
            })?;
    if found.try_get::<Option<i64>, _>("revoked_at")?.is_none() {
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        audit_key(&mut tx, actor, tenant, "tenant_key.revoked", key_id).await?;
    }
    tx.commit().await?;
    db.changed(Topic::Access);
    Ok(())
}

/// Records an API key change in the audit log.
async fn audit_key(
    tx: &mut Tx,
    actor: &Actor,
    tenant: &Tenant,
    action: &str,
    key_id: &str,
) -> Result<()> {
    crate::audit::record(
        tx,
        crate::audit::Entry {
            actor: actor.clone(),
            action,
            tenant_id: Some(&tenant.id),
            subject: format!("tenant_key:{key_id}"),
            details: serde_json::json!({"tenant": tenant.slug}),
        },
    )
    .await
}
