//! The audit log: who did what, append-only, hash-chained and sealed.
//!
//! Every module that changes something worth proving (keys, submissions, review decisions,
//! installs and grants, configuration, updates, rollbacks, yanks, blocks, rating moderation,
//! paid invoices, refunds, disputes, payouts) calls [`record`] in the transaction of the
//! change, so an entry exists exactly when the change does. Entries never hold a secret value.
//! Each entry's hash covers its fields and the previous entry's hash ([`chain`]); its seal, an
//! HMAC of that hash under a key kept outside the database ([`key`]), makes a rewritten tail
//! show even when every hash was recomputed. [`chain::verify`] (and `plinth audit verify`)
//! proves the stored log is the one written; `GET /v1/audit` lists it.

pub mod chain;
pub mod key;
mod routes;

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::auth::{Caller, Principal};
use crate::clock::{now_ms, rfc3339};
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::id::new_id;

pub(crate) use routes::routes;

/// The most entries one listing returns.
pub const MAX_LISTED: i64 = 500;

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A user, by id (also a publisher API key, which acts for the user who made it).
    User(String),
    /// A tenant's API key, by tenant id.
    TenantKey(String),
    /// The platform itself: automatic updates and rollbacks, housekeeping.
    System,
}

impl Actor {
    fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::TenantKey(_) => "tenant_key",
            Actor::System => "system",
        }
    }

    pub(crate) fn id(&self) -> Option<&str> {
        match self {
            Actor::User(id) | Actor::TenantKey(id) => Some(id),
            Actor::System => None,
        }
    }
}

impl From<&Actor> for Actor {
    fn from(actor: &Actor) -> Actor {
        actor.clone()
    }
}

impl From<&Principal> for Actor {
    fn from(principal: &Principal) -> Actor {
        match &principal.caller {
            Caller::User(user) => Actor::User(user.id.clone()),
            Caller::PublisherKey { user_id, .. } => Actor::User(user_id.clone()),
            Caller::TenantKey { tenant_id } => Actor::TenantKey(tenant_id.clone()),
        }
    }
}

/// What to record.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Who did it.
    pub actor: Actor,
    /// What was done, `noun.verb`: e.g. `install.created`, `version.yanked`.
    pub action: &'a str,
    /// The tenant it concerns, if one: tenant owners see the entries of their tenant.
    pub tenant_id: Option<&'a str>,
    /// What it was done to, `kind:name`: e.g. `plugin:acme/hello@1.0.0`.
    pub subject: String,
    /// Particulars (versions, digests, reasons); never a secret value.
    pub details: serde_json::Value,
}

/// Appends `entry` to the log in `tx`, the transaction of the change it records, sealed with
/// the audit key of the transaction's [`Db`].
///
/// Appends are serialized: on SQLite by the database's write lock, which `tx` took at its start
/// ([`Db::begin`]), on PostgreSQL by the log's head row, locked until `tx` ends.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] if the database handle has no audit key
/// ([`Db::with_audit_key`]), the details cannot be serialized or the head row is missing.
pub async fn record(tx: &mut Tx, entry: Entry<'_>) -> Result<()> {
    if tx.audit_key().is_none() {
        return Err(Error::Internal(
            "this database handle has no audit key, so it cannot append to the audit log"
                .to_owned(),
        ));
    }
    let details = serde_json::to_string(&entry.details)
        .map_err(|e| Error::Internal(format!("audit details: {e}")))?;
    let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::Internal("the audit log's head row is missing".to_owned()))?;
    let seq: i64 = head.try_get("seq")?;
    let prev_hash: String = head.try_get("hash")?;
    let id = new_id();
    let at = now_ms();
    let hashed = chain::Hashed {
        seq,
        id: &id,
        at,
        actor_kind: entry.actor.kind(),
        actor_id: entry.actor.id(),
        action: entry.action,
        tenant_id: entry.tenant_id,
        subject: &entry.subject,
        details: &details,
        prev_hash: &prev_hash,
    };
    let hash = hashed.hash();
    let (seal, head_seal) = match tx.audit_key() {
        Some(key) => (key.seal_entry(&hash)?, key.seal_head(seq, &hash)?),
        None => return Err(Error::Internal("the audit key vanished".to_owned())),
    };
    sqlx::query(
        "INSERT INTO audit_log (seq, id, at, actor_kind, actor_id, action, tenant_id, subject, \
                                details, prev_hash, hash, seal) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(seq)
    .bind(&id)
    .bind(at)
    .bind(hashed.actor_kind)
    .bind(hashed.actor_id)
    .bind(entry.action)
    .bind(entry.tenant_id)
    .bind(&entry.subject)
    .bind(&details)
    .bind(&prev_hash)
    .bind(&hash)
    .bind(&seal)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1, seal = $2 WHERE id = 1")
        .bind(&hash)
        .bind(&head_seal)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Seals a log written before entries were sealed: when the log has entries but its head no
/// seal, appends an `audit.sealed` entry, whose seal vouches through its hash for every entry
/// before it. `plinth serve` calls it at start; answers whether it appended.
///
/// # Errors
///
/// As [`record`].
pub async fn seal_unsealed_log(db: &Db) -> Result<bool> {
    let mut tx = db.begin().await?;
    let head = sqlx::query("SELECT seq, seal FROM audit_head WHERE id = 1")
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::Internal("the audit log's head row is missing".to_owned()))?;
    let seq: i64 = head.try_get("seq")?;
    let seal: Option<String> = head.try_get("seal")?;
    if seq == 0 || seal.is_some() {
        return Ok(false);
    }
    record(
        &mut tx,
        Entry {
            actor: Actor::System,
            action: "audit.sealed",
            tenant_id: None,
            subject: "audit:log".to_owned(),
            details: serde_json::json!({ "unsealed_entries": seq }),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        unsealed_entries = seq,
        "sealed an audit log written before seals"
    );
    Ok(true)
}

/// One entry as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: i64,
    /// The entry's id.
    pub id: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// `user`, `tenant_key` or `system`.
    pub actor_kind: String,
    /// The user's (or tenant's) id; null for the system.
    pub actor_id: Option<String>,
    /// What was done, e.g. `install.created`.
    pub action: String,
    /// The tenant it concerns, if one.
    pub tenant_id: Option<String>,
    /// What it was done to.
    pub subject: String,
    /// Particulars.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this tenant's entries.
    pub tenant_id: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only entries after this sequence number (the cursor).
    pub after: Option<i64>,
    /// At most this many (capped at [`MAX_LISTED`]).
    pub limit: i64,
}

/// Entries matching `filter`, oldest first.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn list(db: &Db, filter: &Filter) -> Result<Vec<AuditEntry>> {
    let rows = sqlx::query(
        "SELECT seq, id, at, actor_kind, actor_id, action, tenant_id, subject, details, \
                prev_hash, hash \
         FROM audit_log \
         WHERE seq > $1 AND ($2 IS NULL OR tenant_id = $2) AND ($3 IS NULL OR action = $3) \
         ORDER BY seq LIMIT $4",
    )
    .bind(filter.after.unwrap_or(0))
    .bind(filter.tenant_id.as_deref())
    .bind(filter.action.as_deref())
    .bind(filter.limit.clamp(1, MAX_LISTED))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let details: String = row.try_get("details")?;
            Ok(AuditEntry {
                seq: row.try_get("seq")?,
                id: row.try_get("id")?,
                at: rfc3339(row.try_get("at")?),
                actor_kind: row.try_get("actor_kind")?,
                actor_id: row.try_get("actor_id")?,
                action: row.try_get("action")?,
                tenant_id: row.try_get("tenant_id")?,
                subject: row.try_get("subject")?,
                details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                prev_hash: row.try_get("prev_hash")?,
                hash: row.try_get("hash")?,
            })
        })
        .collect()
}
