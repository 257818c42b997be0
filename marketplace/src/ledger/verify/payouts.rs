//! Each payout re-derived (10 of [`super`]), and every transaction attached to a charge or a
//! payout (11).

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Violation, first_difference, violation};
use crate::db::Db;
use crate::error::Result;
use crate::ledger::derivation::Movements;

/// A transaction as [`payout_postings`] reads it.
#[derive(Default)]
struct Posted {
    id: String,
    movements: Movements,
}

/// Each payout's transactions against the derivation (adding what they derive to `total`),
/// then every transaction that belongs to no recorded charge: each must be a payout's.
pub(super) async fn payout_postings(db: &Db, total: &mut Movements) -> Result<Option<Violation>> {
    // Transactions of no recorded charge, by idempotency key.
    let mut by_key: BTreeMap<String, Posted> = BTreeMap::new();
    for row in sqlx::query(
        "SELECT t.id, t.idempotency_key, p.account_id, p.amount \
         FROM ledger_transactions t JOIN ledger_postings p ON p.transaction_id = t.id \
         WHERE NOT EXISTS (SELECT 1 FROM ledger_charges c WHERE c.id = t.charge_id)",
    )
    .fetch_all(db.pool())
    .await?
    {
        let posted = by_key.entry(row.try_get("idempotency_key")?).or_default();
        posted.id = row.try_get("id")?;
        *posted
            .movements
            .entry(row.try_get("account_id")?)
            .or_default() += row.try_get::<i64, _>("amount")?;
    }
    let mut of_payouts: Vec<String> = Vec::new();
    let payouts = sqlx::query(
        "SELECT id, run_id, publisher_id, currency, amount, status FROM payouts ORDER BY id",
    )
    .fetch_all(db.pool())
    .await?;
    let none = Posted::default();
    for row in &payouts {
        let id: String = row.try_get("id")?;
        let run: String = row.try_get("run_id")?;
        let publisher: String = row.try_get("publisher_id")?;
        let currency: String = row.try_get("currency")?;
        let status: String = row.try_get("status")?;
        let facts = crate::ledger::derivation::PayoutFacts {
            publisher_id: &publisher,
            currency: &currency,
            amount: row.try_get("amount")?,
            status: &status,
        };
        for (step, expected) in crate::ledger::derivation::payout(&facts) {
            let key = if step == "payout" {
                format!("payout:{run}:{publisher}:{currency}")
            } else {
                format!("payout:{id}:{step}")
            };
            let actual = by_key.get(&key).unwrap_or(&none);
            if let Some((account, want, got)) = first_difference(&expected, &actual.movements) {
                return Ok(Some(violation(
                    "payout_postings",
                    format!("payout {id}"),
                    format!(
                        "its {step} transaction ({key}) should move {want} on account \
                         {account}, but its postings sum to {got}"
                    ),
                )));
            }
            of_payouts.push(key);
            for (account, amount) in expected {
                *total.entry(account).or_default() += amount;
            }
        }
    }
    for expected in super::invoices::expected(db).await? {
        let actual = by_key.get(&expected.key).unwrap_or(&none);
        if let Some((account, want, got)) = first_difference(&expected.movements, &actual.movements)
        {
            return Ok(Some(violation(
                "invoice_postings",
                expected.subject,
                format!(
                    "its transaction ({}) should move {want} on account {account}, but its \
                     postings sum to {got}",
                    expected.key
                ),
            )));
        }
        for (account, amount) in expected.movements {
            *total.entry(account).or_default() += amount;
        }
        of_payouts.push(expected.key);
    }
    for key in &of_payouts {
        by_key.remove(key);
    }
    Ok(by_key.iter().next().map(|(key, posted)| {
        violation(
            "unattached",
            format!("transaction {}", posted.id),
            format!("it ({key}) belongs to no recorded charge, payout or invoice"),
        )
    }))
}
