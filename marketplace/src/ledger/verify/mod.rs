//! The ledger's invariants, checked over everything stored (`plinth ledger verify`,
//! `GET /v1/ledger/verify`).
//!
//! In order, the first violation found is answered:
//!
//! 1. `balanced`: every transaction's postings sum to zero per currency;
//! 2. `not_empty`: every transaction has postings;
//! 3. `no_orphans`: every posting names an existing transaction and account, in the account's
//!    currency;
//! 4. `cached_balance`: every account's cached balance equals the sum of its postings;
//! 5. `payouts_within_available`: no payout took a publisher's available balance below zero,
//!    every payout's amount is what its transaction moved, and each publisher's in-transit
//!    balance is the sum of its payouts still in transit;
//! 6. `split`: every charge's split is the one its policy version gives at the lifetime gross
//!    it records, and those lifetimes follow one another (each charge's is the sum of the gross
//!    of the publisher's charges before it);
//! 7. `charge_state`: every charge's fee, refunds, chargebacks, the platform's part of them
//!    (the cumulative rounding rule) and its disputes agree with one another;
//! 8. `charge_events`: where processor events of a charge were applied, the charge says what
//!    they said (the amount paid, the largest refunded total, each dispute's state);
//! 9. `charge_postings`: every account's postings in each charge's transactions sum to what
//!    [`super::derivation`] derives from the charge — a balanced move inside one charge, or a
//!    refund posted twice, shows here, naming the charge, the account, and both amounts;
//! 10. `payout_postings`: each payout and its settlement moved exactly its amount between the
//!     right accounts; `invoice_postings`: each paid platform invoice moved its plan part from
//!     processor clearing to platform revenue, and each credit note moved its amount back;
//! 11. `unattached`: every transaction belongs to a charge, a payout or an invoice;
//! 12. `derived_balance`: every account's balance is what the charges and payouts derive.
//!
//! Checks 1 to 5 are in `structure`, 6 to 9 in `charges`, 10 and 11 in `payouts`.

mod charges;
mod invoices;
mod payouts;
mod structure;

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::derivation::Movements;
use crate::db::Db;
use crate::error::Result;

/// A sound ledger: what was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Report {
    /// Transactions checked.
    pub transactions: i64,
    /// Postings checked.
    pub postings: i64,
    /// Accounts checked.
    pub accounts: i64,
    /// Charges checked.
    pub charges: i64,
    /// Payouts checked.
    pub payouts: i64,
}

/// The first invariant found broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Violation {
    /// Which invariant (see the module docs), e.g. `balanced`.
    pub invariant: String,
    /// What breaks it, e.g. `transaction 0190…`.
    pub subject: String,
    /// What is wrong, as a sentence.
    pub problem: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.invariant, self.subject, self.problem)
    }
}

pub(super) fn violation(invariant: &str, subject: String, problem: String) -> Violation {
    Violation {
        invariant: invariant.to_owned(),
        subject,
        problem,
    }
}

async fn count(db: &Db, table: &'static str) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(db.pool())
        .await?
        .try_get("n")?)
}

/// Checks every invariant; the outer error is a storage failure, the inner the first violation.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn verify(db: &Db) -> Result<std::result::Result<Report, Violation>> {
    let checks = [
        structure::balanced(db).await?,
        structure::not_empty(db).await?,
        structure::no_orphans(db).await?,
    ];
    if let Some(v) = checks.into_iter().flatten().next() {
        return Ok(Err(v));
    }
    if let Some(v) = structure::cached_balances(db).await? {
        return Ok(Err(v));
    }
    if let Some(v) = structure::payouts_within_available(db).await? {
        return Ok(Err(v));
    }
    if let Some(v) = derived(db).await? {
        return Ok(Err(v));
    }
    Ok(Ok(Report {
        transactions: count(db, "ledger_transactions").await?,
        postings: count(db, "ledger_postings").await?,
        accounts: count(db, "ledger_accounts").await?,
        charges: count(db, "ledger_charges").await?,
        payouts: count(db, "payouts").await?,
    }))
}

/// The first account whose movement differs between `expected` and `actual`:
/// (account, expected, actual).
pub(super) fn first_difference(
    expected: &Movements,
    actual: &Movements,
) -> Option<(String, i64, i64)> {
    expected
        .keys()
        .chain(actual.keys())
        .map(|account| {
            let want = expected.get(account).copied().unwrap_or(0);
            let got = actual.get(account).copied().unwrap_or(0);
            (account.clone(), want, got)
        })
        .find(|(_, want, got)| want != got)
}

/// Every account's cached balance against what the charges and payouts derive.
async fn derived_balances(db: &Db, total: &Movements) -> Result<Option<Violation>> {
    let mut actual = Movements::new();
    for row in sqlx::query("SELECT id, balance FROM ledger_accounts ORDER BY id")
        .fetch_all(db.pool())
        .await?
    {
        actual.insert(row.try_get("id")?, row.try_get("balance")?);
    }
    Ok(
        first_difference(total, &actual).map(|(account, want, got)| {
            violation(
                "derived_balance",
                format!("account {account}"),
                format!("the charges and payouts derive a balance of {want}, but it is {got}"),
            )
        }),
    )
}
/// The checks that re-derive the ledger from what is recorded (6 to 12 of the module docs).
async fn derived(db: &Db) -> Result<Option<Violation>> {
    let recorded = charges::recorded(db).await?;
    if let Some(v) = charges::splits(&recorded) {
        return Ok(Some(v));
    }
    let frozen_by = match charges::charge_states(&recorded) {
        Ok(frozen_by) => frozen_by,
        Err(v) => return Ok(Some(v)),
    };
    if let Some(v) = charges::charge_events(db, &recorded).await? {
        return Ok(Some(v));
    }
    let mut total = match charges::charge_postings(&recorded, &frozen_by) {
        Ok(total) => total,
        Err(v) => return Ok(Some(v)),
    };
    if let Some(v) = payouts::payout_postings(db, &mut total).await? {
        return Ok(Some(v));
    }
    derived_balances(db, &total).await
}
