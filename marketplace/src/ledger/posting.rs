//! Transactions of postings: balanced per currency, immutable, idempotent.
//!
//! [`post`] writes one transaction: it refuses postings that do not sum to zero per currency
//! (debits positive, credits negative) and any posting in a database transaction that does not
//! hold the ledger lock ([`super::lock`]), drops zero postings, and updates each account's
//! cached balance in the same database transaction. Every transaction carries a unique idempotency
//! key: posting a key again writes nothing and answers the transaction posted first. Nothing
//! here updates or deletes a posting; a correction is a new, reversing transaction.

use std::collections::BTreeMap;

use sqlx::Row;

use super::accounts::{self, AccountKey};
use crate::clock::now_ms;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::id::new_id;

/// One line of a transaction: `amount` minor units on `account` (debit positive, credit
/// negative), in the account's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// The account.
    pub account: AccountKey,
    /// Signed minor units.
    pub amount: i64,
}

impl Posting {
    /// A debit of `amount` (may be negative, which is a credit).
    pub fn debit(account: AccountKey, amount: i64) -> Posting {
        Posting { account, amount }
    }

    /// A credit of `amount`.
    pub fn credit(account: AccountKey, amount: i64) -> Posting {
        Posting {
            account,
            amount: -amount,
        }
    }
}

/// A transaction to post.
#[derive(Debug, Clone, Default)]
pub struct NewTransaction {
    /// Unique per transaction: a retry with the same key posts nothing new.
    pub idempotency_key: String,
    /// What it records: `charge`, `usage_charge`, `settlement`, `release`, `refund`,
    /// `dispute_freeze`, `dispute_release`, `payout`, `payout_paid`, `payout_failed`, `invoice`
    /// (a platform invoice's plan part), `invoice_credit` (a credit note of one).
    pub kind: &'static str,
    /// The publisher it concerns, if one.
    pub publisher_id: Option<String>,
    /// The tenant it concerns, if one.
    pub tenant_id: Option<String>,
    /// The plugin it concerns, if one.
    pub plugin_id: Option<String>,
    /// The charge it concerns, if one.
    pub charge_id: Option<String>,
    /// The transaction it reverses, if it is a reversal.
    pub reverses: Option<String>,
    /// A sentence for people.
    pub memo: String,
    /// The postings.
    pub postings: Vec<Posting>,
}

/// What [`post`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// Posted now, with this transaction id.
    New(String),
    /// The key was posted before, as this transaction: nothing new was written.
    Existing(String),
}

impl Posted {
    /// The transaction's id.
    pub fn id(&self) -> &str {
        match self {
            Posted::New(id) | Posted::Existing(id) => id,
        }
    }
}

/// Checks that `postings` balance per currency, and that each amount is in range.
///
/// # Errors
///
/// [`Error::Internal`] naming the currency that does not balance: a bug in the caller.
pub fn check_balanced(postings: &[Posting]) -> Result<()> {
    let mut sums: BTreeMap<&str, i128> = BTreeMap::new();
    for posting in postings {
        *sums.entry(posting.account.currency.as_str()).or_default() += i128::from(posting.amount);
    }
    match sums.into_iter().find(|(_, sum)| *sum != 0) {
        Some((currency, sum)) => Err(Error::Internal(format!(
            "a ledger transaction does not balance: {currency} postings sum to {sum}"
        ))),
        None => Ok(()),
    }
}

/// Posts `transaction` in `tx`, or finds the one posted before under its idempotency key.
///
/// # Errors
///
/// [`Error::Internal`] if `tx` does not hold the ledger lock, the postings do not balance or
/// none is left after dropping zeros; [`Error::Database`].
pub async fn post(tx: &mut Tx, transaction: NewTransaction) -> Result<Posted> {
    super::lock::held(tx)?;
    if let Some(existing) = find(tx, &transaction.idempotency_key).await? {
        return Ok(Posted::Existing(existing));
    }
    let postings: Vec<Posting> = transaction
        .postings
        .into_iter()
        .filter(|p| p.amount != 0)
        .collect();
    check_balanced(&postings)?;
    if postings.is_empty() {
        return Err(Error::Internal(format!(
            "ledger transaction {} has no postings",
            transaction.idempotency_key
        )));
    }
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO ledger_transactions (id, idempotency_key, kind, publisher_id, tenant_id, \
         plugin_id, charge_id, reverses, memo, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(&transaction.idempotency_key)
    .bind(transaction.kind)
    .bind(transaction.publisher_id.as_deref())
    .bind(transaction.tenant_id.as_deref())
    .bind(transaction.plugin_id.as_deref())
    .bind(transaction.charge_id.as_deref())
    .bind(transaction.reverses.as_deref())
    .bind(&transaction.memo)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    // Each account is created on first use and its cached balance moved in one statement;
    // then every posting is inserted in one more.
    for posting in &postings {
        accounts::add_to_balance(tx, &posting.account, posting.amount, now).await?;
    }
    let values: Vec<String> = (0..postings.len())
        .map(|i| format!("($1, ${}, ${}, ${}, $2)", 3 * i + 3, 3 * i + 4, 3 * i + 5))
        .collect();
    let sql = format!(
        "INSERT INTO ledger_postings (transaction_id, account_id, currency, amount, created_at) \
         VALUES {}",
        values.join(", ")
    );
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&id).bind(now);
    for posting in &postings {
        insert = insert
            .bind(posting.account.id())
            .bind(&posting.account.currency)
            .bind(posting.amount);
    }
    insert.execute(&mut **tx).await?;
    Ok(Posted::New(id))
}

/// The id of the transaction posted under `idempotency_key`, if any.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn find(tx: &mut Tx, idempotency_key: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT id FROM ledger_transactions WHERE idempotency_key = $1")
        .bind(idempotency_key)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("id")?),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::accounts::AccountKind;

    #[test]
    fn postings_must_balance_per_currency() {
        let usd = |kind, amount| Posting::debit(AccountKey::platform(kind, "USD"), amount);
        let eur = |kind, amount| Posting::debit(AccountKey::platform(kind, "EUR"), amount);
        assert!(
            check_balanced(&[
                usd(AccountKind::ProcessorClearing, 100),
                usd(AccountKind::PlatformRevenue, -100)
            ])
            .is_ok()
        );
        // Balanced in total but not per currency.
        assert!(
            check_balanced(&[
                usd(AccountKind::ProcessorClearing, 100),
                eur(AccountKind::PlatformRevenue, -100)
            ])
            .is_err()
        );
        assert!(check_balanced(&[usd(AccountKind::ProcessorClearing, 1)]).is_err());
        assert!(
            check_balanced(&[
                usd(AccountKind::ProcessorClearing, i64::MAX),
                usd(AccountKind::ProcessorFees, i64::MAX),
                usd(AccountKind::PlatformRevenue, -i64::MAX),
                usd(AccountKind::Refunds, -i64::MAX),
            ])
            .is_ok()
        );
    }
}
