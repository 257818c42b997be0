//! The ledger lock: every money change takes it first, so money changes happen one at a time.
//!
//! A money change reads before it writes (what a charge has refunded, whether a dispute is
//! open, a publisher's lifetime gross or available balance) and its writes are right only while
//! what it read stays true. SQLite's write lock (`BEGIN IMMEDIATE`) already makes writers take
//! turns; on PostgreSQL two transactions could read the same starting point and both write from
//! it. So every money change starts with [`begin`] (or calls [`lock`] first in a transaction it
//! was given), which locks the one row of `ledger_lock` until the transaction ends: what it
//! reads afterwards is what every earlier money change committed, on both backends alike.
//! [`super::posting::post`] refuses to post in a transaction that does not hold the lock.
//!
//! One lock rather than a lock per charge: money changes are few (processor events, usage
//! statements, payout runs), each is a short transaction that runs no plugin code, and every
//! one already queues on the audit log's head row, so finer locks would buy no throughput. In
//! return there is no lock order to keep between charges, accounts and payout runs (hence no
//! deadlock), and an event whose charge does not exist yet is serialized with the event that
//! creates it, so an event that has to wait is never left waiting after its charge arrived.

use sqlx::any::AnyQueryResult;

use crate::db::{Db, Tx};
use crate::error::{Error, Result};

/// Starts a write transaction holding the ledger lock.
///
/// # Errors
///
/// [`Error::Database`] if no connection or lock can be had.
pub async fn begin(db: &Db) -> Result<Tx> {
    let mut tx = db.begin().await?;
    lock(&mut tx).await?;
    Ok(tx)
}

/// Takes the ledger lock in `tx` (again is harmless), held until `tx` ends.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] if the lock's row is missing.
pub async fn lock(tx: &mut Tx) -> Result<()> {
    if tx.holds_ledger_lock() {
        return Ok(());
    }
    let locked = sqlx::query("UPDATE ledger_lock SET taken = taken + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    one_row(&locked, "the ledger lock's row")?;
    tx.note_ledger_lock();
    Ok(())
}

/// Fails unless `tx` holds the ledger lock.
///
/// # Errors
///
/// [`Error::Internal`]: a money change without the lock is a bug.
pub(crate) fn held(tx: &Tx) -> Result<()> {
    if tx.holds_ledger_lock() {
        Ok(())
    } else {
        Err(Error::Internal(
            "a money change was made without the ledger lock".to_owned(),
        ))
    }
}

/// Fails unless the guarded statement `done` changed exactly one row: a guarded `UPDATE` that
/// changed nothing lost to another change, and its transaction must not commit.
///
/// # Errors
///
/// [`Error::Internal`] naming `what`.
pub(crate) fn one_row(done: &AnyQueryResult, what: &str) -> Result<()> {
    match done.rows_affected() {
        1 => Ok(()),
        n => Err(Error::Internal(format!(
            "{what}: a guarded change touched {n} rows instead of 1; the transaction is abandoned"
        ))),
    }
}
