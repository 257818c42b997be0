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
//! 6. `split`: every charge's parts sum to its gross, refunds stay within the charge and each
//!    party's part, and the publisher bears no more fee than the fee.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::accounts::AccountKind;
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

fn violation(invariant: &str, subject: String, problem: String) -> Violation {
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
        balanced(db).await?,
        not_empty(db).await?,
        no_orphans(db).await?,
    ];
    if let Some(v) = checks.into_iter().flatten().next() {
        return Ok(Err(v));
    }
    if let Some(v) = cached_balances(db).await? {
        return Ok(Err(v));
    }
    if let Some(v) = payouts_within_available(db).await? {
        return Ok(Err(v));
    }
    if let Some(v) = splits(db).await? {
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

async fn balanced(db: &Db) -> Result<Option<Violation>> {
    let rows = sqlx::query(
        "SELECT transaction_id, currency, amount FROM ledger_postings ORDER BY transaction_id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut sums: BTreeMap<(String, String), i128> = BTreeMap::new();
    for row in &rows {
        let amount: i64 = row.try_get("amount")?;
        *sums
            .entry((row.try_get("transaction_id")?, row.try_get("currency")?))
            .or_default() += i128::from(amount);
    }
    Ok(sums
        .into_iter()
        .find(|(_, sum)| *sum != 0)
        .map(|((transaction, currency), sum)| {
            violation(
                "balanced",
                format!("transaction {transaction}"),
                format!("its {currency} postings sum to {sum}, not 0"),
            )
        }))
}

async fn not_empty(db: &Db) -> Result<Option<Violation>> {
    let row = sqlx::query(
        "SELECT t.id FROM ledger_transactions t WHERE NOT EXISTS \
         (SELECT 1 FROM ledger_postings p WHERE p.transaction_id = t.id) ORDER BY t.id LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(row) => Some(violation(
            "not_empty",
            format!("transaction {}", row.try_get::<String, _>("id")?),
            "it has no postings".to_owned(),
        )),
        None => None,
    })
}

async fn no_orphans(db: &Db) -> Result<Option<Violation>> {
    let row = sqlx::query(
        "SELECT p.seq, p.transaction_id, p.account_id, p.currency, t.id AS t_id, a.id AS a_id, \
         a.currency AS a_currency FROM ledger_postings p \
         LEFT JOIN ledger_transactions t ON t.id = p.transaction_id \
         LEFT JOIN ledger_accounts a ON a.id = p.account_id \
         WHERE t.id IS NULL OR a.id IS NULL OR a.currency <> p.currency ORDER BY p.seq LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let seq: i64 = row.try_get("seq")?;
    let problem = if row.try_get::<Option<String>, _>("t_id")?.is_none() {
        format!(
            "its transaction {} does not exist",
            row.try_get::<String, _>("transaction_id")?
        )
    } else if row.try_get::<Option<String>, _>("a_id")?.is_none() {
        format!(
            "its account {} does not exist",
            row.try_get::<String, _>("account_id")?
        )
    } else {
        format!(
            "it is in {} but its account {} is in {}",
            row.try_get::<String, _>("currency")?,
            row.try_get::<String, _>("account_id")?,
            row.try_get::<String, _>("a_currency")?
        )
    };
    Ok(Some(violation(
        "no_orphans",
        format!("posting {seq}"),
        problem,
    )))
}

async fn cached_balances(db: &Db) -> Result<Option<Violation>> {
    let accounts = sqlx::query("SELECT id, balance FROM ledger_accounts ORDER BY id")
        .fetch_all(db.pool())
        .await?;
    let sums = sqlx::query(
        "SELECT account_id, CAST(SUM(amount) AS BIGINT) AS total FROM ledger_postings \
         GROUP BY account_id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut derived: BTreeMap<String, i64> = BTreeMap::new();
    for row in &sums {
        derived.insert(row.try_get("account_id")?, row.try_get("total")?);
    }
    for row in &accounts {
        let id: String = row.try_get("id")?;
        let cached: i64 = row.try_get("balance")?;
        let from_postings = derived.get(&id).copied().unwrap_or(0);
        if cached != from_postings {
            return Ok(Some(violation(
                "cached_balance",
                format!("account {id}"),
                format!("its cached balance is {cached} but its postings sum to {from_postings}"),
            )));
        }
    }
    Ok(None)
}

async fn payouts_within_available(db: &Db) -> Result<Option<Violation>> {
    // Walk every available account in posting order; after a payout it must not be owed less
    // than nothing (liabilities are negative: the balance must stay at or below zero).
    let rows = sqlx::query(
        "SELECT p.account_id, p.amount, t.kind, t.id AS transaction_id FROM ledger_postings p \
         JOIN ledger_accounts a ON a.id = p.account_id \
         JOIN ledger_transactions t ON t.id = p.transaction_id \
         WHERE a.kind = $1 ORDER BY p.account_id, p.seq",
    )
    .bind(AccountKind::PublisherAvailable.as_str())
    .fetch_all(db.pool())
    .await?;
    let mut running: BTreeMap<String, i64> = BTreeMap::new();
    for row in &rows {
        let account: String = row.try_get("account_id")?;
        let amount: i64 = row.try_get("amount")?;
        let kind: String = row.try_get("kind")?;
        let balance = running.entry(account.clone()).or_default();
        *balance = balance.saturating_add(amount);
        if kind == "payout" && *balance > 0 {
            let transaction: String = row.try_get("transaction_id")?;
            return Ok(Some(violation(
                "payouts_within_available",
                format!("transaction {transaction}"),
                format!(
                    "the payout took account {account} to {} below zero",
                    *balance
                ),
            )));
        }
    }
    let payouts = sqlx::query(
        "SELECT py.id, py.amount, py.publisher_id, py.currency, py.status, \
         (SELECT CAST(SUM(p.amount) AS BIGINT) FROM ledger_postings p \
          WHERE p.transaction_id = py.transaction_id AND p.amount > 0) AS moved \
         FROM payouts py ORDER BY py.id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut in_transit: BTreeMap<String, i64> = BTreeMap::new();
    for row in &payouts {
        let id: String = row.try_get("id")?;
        let amount: i64 = row.try_get("amount")?;
        let moved: Option<i64> = row.try_get("moved")?;
        if moved != Some(amount) || amount <= 0 {
            return Ok(Some(violation(
                "payouts_within_available",
                format!("payout {id}"),
                format!(
                    "it is of {amount} but its transaction moved {}",
                    moved.unwrap_or(0)
                ),
            )));
        }
        if row.try_get::<String, _>("status")? == "in_transit" {
            let account = format!(
                "{}:{}:{}",
                AccountKind::PayoutsInTransit.as_str(),
                row.try_get::<String, _>("publisher_id")?,
                row.try_get::<String, _>("currency")?
            );
            *in_transit.entry(account).or_default() += amount;
        }
    }
    let accounts =
        sqlx::query("SELECT id, balance FROM ledger_accounts WHERE kind = $1 ORDER BY id")
            .bind(AccountKind::PayoutsInTransit.as_str())
            .fetch_all(db.pool())
            .await?;
    for row in &accounts {
        let id: String = row.try_get("id")?;
        let balance: i64 = row.try_get("balance")?;
        let expected = in_transit.get(&id).copied().unwrap_or(0);
        if -balance != expected {
            return Ok(Some(violation(
                "payouts_within_available",
                format!("account {id}"),
                format!(
                    "it holds {} but the payouts in transit sum to {expected}",
                    -balance
                ),
            )));
        }
    }
    Ok(None)
}

async fn splits(db: &Db) -> Result<Option<Violation>> {
    for charge in super::charges::all(db.pool()).await? {
        let subject = format!("charge {}", charge.reference);
        let problem = if charge.platform_share + charge.publisher_share != charge.gross {
            Some(format!(
                "platform {} + publisher {} is not the gross {}",
                charge.platform_share, charge.publisher_share, charge.gross
            ))
        } else if charge.platform_share < 0 || charge.publisher_share < 0 {
            Some("a part is negative".to_owned())
        } else if !(0..=charge.gross).contains(&charge.refunded) {
            Some(format!(
                "refunded {} is outside 0..={}",
                charge.refunded, charge.gross
            ))
        } else if !(0..=charge.platform_share).contains(&charge.refunded_platform)
            || charge.refunded - charge.refunded_platform > charge.publisher_share
        {
            Some("a refund took back more than a party's part".to_owned())
        } else if !(0..=charge.fee).contains(&charge.publisher_fee) || charge.fee > charge.gross {
            Some(format!(
                "the publisher bears {} of a fee of {}",
                charge.publisher_fee, charge.fee
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Ok(Some(violation("split", subject, problem)));
        }
    }
    Ok(None)
}
