//! Split policies as stored: each version's tiers, written when a charge is first split by it,
//! so that a version always names one policy and `plinth ledger verify` can re-derive every
//! charge's split from the version it records.

use std::collections::BTreeMap;

use sqlx::Row;

use super::split::{SplitPolicy, Tier};
use crate::clock::now_ms;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};

fn tiers_text(policy: &SplitPolicy) -> Result<String> {
    serde_json::to_string(&policy.tiers)
        .map_err(|e| Error::Internal(format!("split policy tiers: {e}")))
}

fn tiers_of(version: i64, text: &str) -> Result<Vec<Tier>> {
    serde_json::from_str(text).map_err(|e| {
        Error::Internal(format!(
            "the stored tiers of split policy version {version} are not readable: {e}"
        ))
    })
}

/// Stores `policy` under its version if that version is new; fails if the version was stored
/// with other tiers.
///
/// # Errors
///
/// [`Error::Internal`] when the version names another policy (a changed policy needs a new
/// version); [`Error::Database`].
pub async fn register(tx: &mut Tx, policy: &SplitPolicy) -> Result<()> {
    sqlx::query(
        "INSERT INTO ledger_split_policies (version, tiers, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (version) DO NOTHING",
    )
    .bind(policy.version)
    .bind(tiers_text(policy)?)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    let stored: String = sqlx::query("SELECT tiers FROM ledger_split_policies WHERE version = $1")
        .bind(policy.version)
        .fetch_one(&mut **tx)
        .await?
        .try_get("tiers")?;
    if tiers_of(policy.version, &stored)? != policy.tiers {
        return Err(Error::Internal(format!(
            "split policy version {} was first used with other tiers ({stored}); a changed \
             policy needs a new version",
            policy.version
        )));
    }
    Ok(())
}

/// Every stored policy, by version.
///
/// # Errors
///
/// [`Error::Internal`] if stored tiers cannot be read; [`Error::Database`].
pub async fn all(db: &Db) -> Result<BTreeMap<i64, SplitPolicy>> {
    let rows = sqlx::query("SELECT version, tiers FROM ledger_split_policies")
        .fetch_all(db.pool())
        .await?;
    let mut out = BTreeMap::new();
    for row in &rows {
        let version: i64 = row.try_get("version")?;
        let tiers: String = row.try_get("tiers")?;
        out.insert(
            version,
            SplitPolicy {
                version,
                tiers: tiers_of(version, &tiers)?,
            },
        );
    }
    Ok(out)
}
