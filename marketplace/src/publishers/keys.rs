//! A publisher's signing keys: registered with a proof of possession (see
//! [`super::possession`]), listed, revoked; a revoked key signs nothing new.

use plinth_package::PublicKey;
use sqlx::{FromRow, Row};

use super::Publisher;
use super::possession::{Proof, parse_key};
use crate::audit::Actor;
use crate::clock::now_ms;
use crate::db::{Db, Tx};
use crate::error::{ConflictOnUnique, Error, Result};
use crate::id::new_id;

/// A signing key registered to a publisher.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKey {
    /// The key's id.
    pub id: String,
    /// `ed25519:<base64>`.
    pub public_key: String,
    /// First 16 hex digits of the sha256 of the key bytes.
    pub fingerprint: String,
    /// When it was added (Unix ms).
    pub created_at: i64,
    /// When it was revoked (Unix ms), if it was.
    pub revoked_at: Option<i64>,
    /// When its possession was proven (Unix ms); `None` for a key registered before proofs
    /// were asked, which gives way to a publisher that proves it holds the key.
    pub proven_at: Option<i64>,
}

/// The columns of a [`SigningKey`].
const KEY_COLUMNS: &str = "id, public_key, fingerprint, created_at, revoked_at, proven_at";

/// Registers `public_key` (`ed25519:<base64>`) as a signing key of `publisher`, on `proof`
/// that the registrant holds it (see `super::possession`).
///
/// A key belongs to one publisher, and possession decides: a key another publisher registered
/// without proof (before proofs were asked) is taken from it, and that publisher is told and
/// the release audited; the same key registered unproven by this publisher becomes proven.
///
/// # Errors
///
/// [`Error::BadRequest`] `invalid_public_key`, `invalid_challenge`, `invalid_body`,
/// `bad_proof` (see `super::possession`); [`Error::Conflict`] `key_exists` if the key is
/// registered already with a proof (to any publisher), or revoked by this one.
pub async fn add_key(
    db: &Db,
    actor: &Actor,
    publisher: &Publisher,
    public_key: &str,
    proof: Proof<'_>,
) -> Result<SigningKey> {
    let parsed = parse_key(public_key)?;
    let now = now_ms();
    let mut key = SigningKey {
        id: new_id(),
        public_key: parsed.to_string(),
        fingerprint: parsed.fingerprint(),
        created_at: now,
        revoked_at: None,
        proven_at: Some(now),
    };
    let mut tx = db.begin().await?;
    super::possession::redeem(&mut tx, publisher, &parsed, proof).await?;
    let sql =
        format!("SELECT {KEY_COLUMNS}, publisher_id FROM publisher_keys WHERE public_key = $1");
    let held = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&key.public_key)
        .fetch_optional(&mut *tx)
        .await?;
    let exists = || {
        Error::conflict(
            "key_exists",
            format!("the key {} is registered already", key.fingerprint),
        )
    };
    if let Some(row) = held {
        let holder: String = row.try_get("publisher_id")?;
        let existing = SigningKey::from_row(&row)?;
        if existing.proven_at.is_some() || (holder == publisher.id && existing.revoked_at.is_some())
        {
            return Err(exists());
        }
        if holder == publisher.id {
            sqlx::query("UPDATE publisher_keys SET proven_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&existing.id)
                .execute(&mut *tx)
                .await?;
            key = SigningKey {
                proven_at: Some(now),
                ..existing
            };
            audit_key(&mut tx, actor, &publisher.id, "publisher_key.proven", &key).await?;
            tx.commit().await?;
            return Ok(key);
        }
        release(&mut tx, actor, &holder, &existing).await?;
    }
    sqlx::query(
        "INSERT INTO publisher_keys (id, publisher_id, public_key, fingerprint, created_at, \
         proven_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&key.id)
    .bind(&publisher.id)
    .bind(&key.public_key)
    .bind(&key.fingerprint)
    .bind(key.created_at)
    .execute(&mut *tx)
    .await
    .conflict_on_unique("key_exists", || {
        format!("the key {} is registered already", key.fingerprint)
    })?;
    audit_key(&mut tx, actor, &publisher.id, "publisher_key.added", &key).await?;
    crate::versions::control::changed(
        &mut tx,
        actor,
        &publisher.id,
        crate::versions::control::Change::NewSigningKey,
    )
    .await?;
    tx.commit().await?;
    Ok(key)
}

/// Takes the unproven key `key` from publisher `holder`, in `tx`: another publisher proved it
/// holds it. Audited; `holder` is notified.
async fn release(tx: &mut Tx, actor: &Actor, holder: &str, key: &SigningKey) -> Result<()> {
    sqlx::query("DELETE FROM publisher_keys WHERE id = $1")
        .bind(&key.id)
        .execute(&mut **tx)
        .await?;
    audit_key(tx, actor, holder, "publisher_key.released", key).await?;
    crate::notifications::notify(
        tx,
        "publisher",
        holder,
        "key_released",
        &format!(
            "Signing key {} was removed from your publisher: it was registered without proof \
             of possession, and another publisher proved it holds the key. Packages it signs \
             are refused from now on.",
            key.fingerprint
        ),
        serde_json::json!({ "fingerprint": key.fingerprint }),
    )
    .await
}

/// Every signing key of the publisher, revoked ones included, oldest first.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn keys(db: &Db, publisher_id: &str) -> Result<Vec<SigningKey>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM publisher_keys WHERE publisher_id = $1 \
             ORDER BY created_at, id"
    )))
    .bind(publisher_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| Ok(SigningKey::from_row(row)?))
        .collect()
}

/// Revokes the publisher's key whose id or fingerprint is `key` (idempotent); a revoked key
/// signs no new submission.
///
/// # Errors
///
/// [`Error::NotFound`] if the publisher has no such key.
pub async fn revoke_key(
    db: &Db,
    actor: &Actor,
    publisher_id: &str,
    key: &str,
) -> Result<SigningKey> {
    let mut tx = db.begin().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM publisher_keys \
             WHERE publisher_id = $1 AND (id = $2 OR fingerprint = $2)"
    )))
    .bind(publisher_id)
    .bind(key)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found(format!("key {key:?}")))?;
    let mut found = SigningKey::from_row(&row)?;
    if found.revoked_at.is_none() {
        let now = now_ms();
        sqlx::query(
            "UPDATE publisher_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&found.id)
        .execute(&mut *tx)
        .await?;
        found.revoked_at = Some(now);
        audit_key(
            &mut tx,
            actor,
            publisher_id,
            "publisher_key.revoked",
            &found,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(found)
}

/// A registered key's text and whether it was revoked.
#[derive(sqlx::FromRow)]
struct KeyState {
    public_key: String,
    revoked_at: Option<i64>,
}

/// The publisher's keys: those in force, and those it revoked.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] if a stored key does not parse.
pub async fn keys_by_state(
    db: &Db,
    publisher_id: &str,
) -> Result<(Vec<PublicKey>, Vec<PublicKey>)> {
    let rows: Vec<KeyState> =
        sqlx::query_as("SELECT public_key, revoked_at FROM publisher_keys WHERE publisher_id = $1")
            .bind(publisher_id)
            .fetch_all(db.pool())
            .await?;
    let (mut active, mut revoked) = (Vec::new(), Vec::new());
    for row in rows {
        let key = PublicKey::parse(&row.public_key)
            .map_err(|e| Error::Internal(format!("stored key: {e}")))?;
        match row.revoked_at {
            None => active.push(key),
            Some(_) => revoked.push(key),
        }
    }
    Ok((active, revoked))
}

/// Records a key change in the audit log.
async fn audit_key(
    tx: &mut Tx,
    actor: &Actor,
    publisher_id: &str,
    action: &str,
    key: &SigningKey,
) -> Result<()> {
    crate::audit::record(
        tx,
        crate::audit::Entry {
            actor: actor.clone(),
            action,
            tenant_id: None,
            subject: format!("publisher_key:{}", key.fingerprint),
            details: serde_json::json!({
                "publisher_id": publisher_id,
                "key_id": key.id,
                "public_key": key.public_key,
            }),
        },
    )
    .await
}
