//! Rotating the marketplace's countersigning key (`plinth admin rotate-key`).
//!
//! 1. The new key is recorded, and the old one given a retirement time (the end of the
//!    overlap) or, when compromised, revoked at once (`marketplace_keys`).
//! 2. A state statement signed by the **old** key names the keys hosts trust from then on:
//!    both during an overlap, the new one alone after a compromise. Hosts take it in as they
//!    take any statement, and trust the new key from that moment
//!    ([`plinth_host::statements`]).
//! 3. Every published version's package is countersigned again with the new key, so it keeps
//!    loading once the old key is out.
//!
//! The servers then restart with the new key file: they countersign and sign statements with
//! it. After the overlap their statements no longer name the old key, and hosts stop trusting
//! it. Audited.

use std::time::Duration;

use plinth_package::{Package, PublicKey, SecretKey};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use crate::audit::Actor;
use crate::db::Db;
use crate::error::{Error, Result};

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotated {
    /// The new key.
    pub new_key: String,
    /// The old key.
    pub old_key: String,
    /// When the old key retires (Unix ms); at once when it was compromised.
    pub old_retires_at: i64,
    /// Whether the old key was revoked as compromised.
    pub compromised: bool,
    /// The statement that introduced the new key.
    pub statement: u64,
    /// Packages countersigned again with the new key.
    pub countersigned: usize,
}

/// How the old key leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retirement {
    /// Trusted beside the new key for this long, then retired.
    Overlap(Duration),
    /// Compromised: revoked at once, never trusted again.
    Compromised,
}

/// Rotates from `old` (the key servers sign with now) to `new` at `now_ms`. See the
/// [module docs](self).
///
/// # Errors
///
/// 409 `key_in_use` when `new` is `old` or was used before; [`Error::Database`]; an
/// [`Error::Internal`] for a stored package that does not read (the rotation stops there; run
/// it again with the same new key file to go on).
pub async fn rotate(
    db: &Db,
    old: &SecretKey,
    new: &SecretKey,
    retirement: Retirement,
    now_ms: i64,
) -> Result<Rotated> {
    let (old_key, new_key) = (old.public_key(), new.public_key());
    if old_key == new_key {
        return Err(Error::conflict(
            "key_in_use",
            "the new marketplace key is the current one",
        ));
    }
    let (retire_at, compromised) = match retirement {
        Retirement::Overlap(overlap) => (
            now_ms.saturating_add(i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX)),
            false,
        ),
        Retirement::Compromised => (now_ms, true),
    };
    record_keys(db, &old_key, &new_key, retire_at, compromised, now_ms).await?;
    let statement = crate::statements::issue_as(db, old, now_ms).await?;
    let countersigned = countersign_all(db, new, now_ms).await?;
    let mut tx = db.begin().await?;
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor: Actor::System,
            action: "marketplace_key.rotated",
            tenant_id: None,
            subject: format!("marketplace_key:{}", new_key.fingerprint()),
            details: json!({
                "old": old_key.to_string(),
                "new": new_key.to_string(),
                "retire_at": retire_at,
                "compromised": compromised,
                "statement": statement.statement.sequence,
                "countersigned": countersigned,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(old = %old_key.fingerprint(), new = %new_key.fingerprint(), compromised, countersigned, "marketplace key rotated");
    Ok(Rotated {
        new_key: new_key.to_string(),
        old_key: old_key.to_string(),
        old_retires_at: retire_at,
        compromised,
        statement: statement.statement.sequence,
        countersigned,
    })
}

/// Records both keys: the old one retiring at `retire_at` (or revoked), the new one current.
async fn record_keys(
    db: &Db,
    old: &PublicKey,
    new: &PublicKey,
    retire_at: i64,
    compromised: bool,
    now_ms: i64,
) -> Result<()> {
    let mut tx = db.begin().await?;
    let known: Option<i64> =
        sqlx::query_scalar("SELECT revoked FROM marketplace_keys WHERE public_key = $1")
            .bind(new.to_string())
            .fetch_optional(&mut *tx)
            .await?;
    if known.is_some() {
        return Err(Error::conflict(
            "key_in_use",
            "the new marketplace key was used before; make a new one",
        ));
    }
    sqlx::query("DELETE FROM marketplace_keys WHERE public_key = $1")
        .bind(old.to_string())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO marketplace_keys (public_key, added_at, retire_at, revoked) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(old.to_string())
    .bind(now_ms)
    .bind(retire_at)
    .bind(i64::from(compromised))
    .execute(&mut *tx)
    .await?;
    if compromised {
        // Nothing older stays trusted either: the new key is the only one from now on.
        sqlx::query("UPDATE marketplace_keys SET revoked = 1")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO marketplace_keys (public_key, added_at, retire_at, revoked) \
         VALUES ($1, $2, NULL, 0)",
    )
    .bind(new.to_string())
    .bind(now_ms.saturating_add(1))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Countersigns every published version's package again with `key`, one version per
/// transaction; returns how many were.
async fn countersign_all(db: &Db, key: &SecretKey, now_ms: i64) -> Result<usize> {
    let rows = sqlx::query("SELECT plugin_id, version, artifact_sha256 FROM versions")
        .fetch_all(db.pool())
        .await?;
    let mut done = 0;
    for row in rows {
        let (plugin, version, sha256): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let bytes = crate::submissions::artifact_bytes(db, &sha256).await?;
        let mut package = Package::from_bytes(&bytes).map_err(|e| {
            Error::Internal(format!(
                "stored package of {plugin} {version} does not read: {e}"
            ))
        })?;
        if package
            .signature
            .marketplace
            .as_ref()
            .is_some_and(|countersignature| countersignature.key == key.public_key())
        {
            continue;
        }
        package.countersign(key, now_ms / 1000);
        let bytes = package.to_bytes().map_err(|e| {
            Error::Internal(format!("writing the package of {plugin} {version}: {e}"))
        })?;
        let mut tx = db.begin().await?;
        let artifact = crate::submissions::store_artifact(&mut tx, &bytes, now_ms).await?;
        sqlx::query(
            "UPDATE versions SET artifact_sha256 = $1 \
             WHERE plugin_id = $2 AND version = $3 AND artifact_sha256 = $4",
        )
        .bind(&artifact)
        .bind(&plugin)
        .bind(&version)
        .bind(&sha256)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        done += 1;
    }
    Ok(done)
}
