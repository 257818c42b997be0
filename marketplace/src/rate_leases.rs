//! The store of deployment-wide tenant rates: [`DbLeases`] implements the host's
//! [`RateLeases`] over the marketplace's database, so every process sharing a PostgreSQL
//! database holds each tenant to one API rate and one outbound rate between them
//! ([`plinth_host::rates::shared`] states the bound).
//!
//! A lease is one statement: an `INSERT … ON CONFLICT DO UPDATE … RETURNING` on the row of
//! (tenant, kind, window) in the UNLOGGED `rate_leases` table, which grants
//! [`grant`]`(leased, slice, limit)` and adds it to
//! `leased` under the row's lock, so concurrent leases from any number of processes never
//! grant past the limit. The same SQL runs on SQLite (where `plinth serve` keeps rates in
//! memory, one process being the whole deployment), so the store is tested on both backends.
//! Rows of ended windows are deleted by the housekeeping ([`prune`]).

use plinth_host::rates::leases::{LeaseError, LeaseFuture, LeaseKey, RateLeases};
use plinth_host::rates::window::grant;

use crate::db::Db;
use crate::error::Result;

/// One lease. What it grants when `rate_leases.leased` of `$5` (the limit) are leased is `$6`
/// (the slice) or what is left of the limit, the SQL form of [`grant`]; a first lease inserts
/// `$4`, computed by [`grant`] itself.
const LEASE: &str = "INSERT INTO rate_leases (tenant_id, kind, window_start, leased, last_grant) \
     VALUES ($1, $2, $3, $4, $4) \
     ON CONFLICT (tenant_id, kind, window_start) DO UPDATE SET \
     leased = rate_leases.leased + CASE WHEN rate_leases.leased >= $5 THEN 0 \
         WHEN $5 - rate_leases.leased < $6 THEN $5 - rate_leases.leased ELSE $6 END, \
     last_grant = CASE WHEN rate_leases.leased >= $5 THEN 0 \
         WHEN $5 - rate_leases.leased < $6 THEN $5 - rate_leases.leased ELSE $6 END \
     RETURNING last_grant";

/// [`RateLeases`] in the `rate_leases` table of the marketplace's database.
#[derive(Debug, Clone)]
pub struct DbLeases {
    db: Db,
}

impl DbLeases {
    /// Leases in `db`.
    pub fn new(db: Db) -> DbLeases {
        DbLeases { db }
    }
}

/// `n` as a BIGINT (saturating: no limit comes near it).
fn bigint(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl RateLeases for DbLeases {
    fn lease<'a>(&'a self, key: &'a LeaseKey, slice: u64, limit: u64) -> LeaseFuture<'a, u64> {
        Box::pin(async move {
            let granted: i64 = sqlx::query_scalar(LEASE)
                .bind(&key.tenant)
                .bind(key.kind.as_str())
                .bind(key.window)
                .bind(bigint(grant(0, slice, limit)))
                .bind(bigint(limit))
                .bind(bigint(slice))
                .fetch_one(self.db.pool())
                .await
                .map_err(|e| LeaseError::with_source("leasing failed", e))?;
            Ok(u64::try_from(granted).unwrap_or(0))
        })
    }

    fn give_back<'a>(&'a self, key: &'a LeaseKey, unused: u64) -> LeaseFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE rate_leases \
                 SET leased = CASE WHEN leased > $4 THEN leased - $4 ELSE 0 END \
                 WHERE tenant_id = $1 AND kind = $2 AND window_start = $3",
            )
            .bind(&key.tenant)
            .bind(key.kind.as_str())
            .bind(key.window)
            .bind(bigint(unused))
            .execute(self.db.pool())
            .await
            .map_err(|e| LeaseError::with_source("giving back failed", e))?;
            Ok(())
        })
    }
}

/// Deletes the rows of windows that started before `before_ms`; returns how many.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn prune(db: &Db, before_ms: i64) -> Result<u64> {
    let deleted = sqlx::query("DELETE FROM rate_leases WHERE window_start < $1")
        .bind(before_ms)
        .execute(db.pool())
        .await?;
    Ok(deleted.rows_affected())
}
