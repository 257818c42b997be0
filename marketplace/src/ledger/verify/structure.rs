//! The structural invariants (1 to 5 of [`super`]): balanced, non-empty transactions, no
//! orphans, cached balances, payouts within the available balance.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Violation, violation};
use crate::db::Db;
use crate::error::Result;
use crate::ledger::accounts::AccountKind;

pub(super) async fn balanced(db: &Db) -> Result<Option<Violation>> {
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

pub(super) async fn not_empty(db: &Db) -> Result<Option<Violation>> {
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

pub(super) async fn no_orphans(db: &Db) -> Result<Option<Violation>> {
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

pub(super) async fn cached_balances(db: &Db) -> Result<Option<Violation>> {
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

pub(super) async fn payouts_within_available(db: &Db) -> Result<Option<Violation>> {
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
