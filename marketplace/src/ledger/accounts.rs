//! Ledger accounts: their kinds and keys.
//!
//! An account is identified by its kind, its owner (a tenant or publisher id, for the kinds
//! that have one) and its currency: `publisher_held:<publisher id>:USD`, `platform_revenue:USD`.
//! Accounts are created on first use. The publisher's payable is kept in three accounts by
//! state — *held* (inside the hold), *available* (payable) and *frozen* (under dispute) — and
//! paid-out money waits in the publisher's *payouts in transit* until the processor confirms.

use sqlx::Row;

use crate::db::Tx;
use crate::error::Result;

/// What an account is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKind {
    /// What a tenant was billed and has not paid yet (asset; per tenant).
    TenantReceivable,
    /// Money held by the payment processor for the platform (asset).
    ProcessorClearing,
    /// A publisher's part of charges still inside the hold (liability; per publisher).
    PublisherHeld,
    /// A publisher's part that may be paid out (liability; per publisher).
    PublisherAvailable,
    /// A publisher's part frozen by an open dispute (liability; per publisher).
    PublisherFrozen,
    /// Paid out to a publisher, not yet confirmed by the processor (liability; per publisher).
    PayoutsInTransit,
    /// The platform's share of charges (revenue).
    PlatformRevenue,
    /// Fees the processor kept (expense).
    ProcessorFees,
    /// The platform's share of refunds and lost disputes (contra-revenue).
    Refunds,
}

impl AccountKind {
    /// Every kind.
    pub const ALL: [AccountKind; 9] = [
        AccountKind::TenantReceivable,
        AccountKind::ProcessorClearing,
        AccountKind::PublisherHeld,
        AccountKind::PublisherAvailable,
        AccountKind::PublisherFrozen,
        AccountKind::PayoutsInTransit,
        AccountKind::PlatformRevenue,
        AccountKind::ProcessorFees,
        AccountKind::Refunds,
    ];

    /// The kind's name in account ids and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::TenantReceivable => "tenant_receivable",
            AccountKind::ProcessorClearing => "processor_clearing",
            AccountKind::PublisherHeld => "publisher_held",
            AccountKind::PublisherAvailable => "publisher_available",
            AccountKind::PublisherFrozen => "publisher_frozen",
            AccountKind::PayoutsInTransit => "payouts_in_transit",
            AccountKind::PlatformRevenue => "platform_revenue",
            AccountKind::ProcessorFees => "processor_fees",
            AccountKind::Refunds => "refunds",
        }
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<AccountKind> {
        AccountKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether accounts of this kind belong to a tenant or publisher.
    pub fn has_owner(self) -> bool {
        matches!(
            self,
            AccountKind::TenantReceivable
                | AccountKind::PublisherHeld
                | AccountKind::PublisherAvailable
                | AccountKind::PublisherFrozen
                | AccountKind::PayoutsInTransit
        )
    }
}

/// One account: kind, owner and currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey {
    /// The kind.
    pub kind: AccountKind,
    /// The tenant or publisher id, for kinds that have an owner.
    pub owner: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
}

impl AccountKey {
    /// An account of `kind` owned by `owner`.
    pub fn owned(kind: AccountKind, owner: &str, currency: &str) -> AccountKey {
        AccountKey {
            kind,
            owner: Some(owner.to_owned()),
            currency: currency.to_owned(),
        }
    }

    /// The platform's account of `kind`.
    pub fn platform(kind: AccountKind, currency: &str) -> AccountKey {
        AccountKey {
            kind,
            owner: None,
            currency: currency.to_owned(),
        }
    }

    /// The account's id: `kind:owner:CUR` or `kind:CUR`.
    pub fn id(&self) -> String {
        match &self.owner {
            Some(owner) => format!("{}:{owner}:{}", self.kind.as_str(), self.currency),
            None => format!("{}:{}", self.kind.as_str(), self.currency),
        }
    }
}

/// Adds `amount` to the account's cached balance, creating the account first if needed, in one
/// statement.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub(crate) async fn add_to_balance(
    tx: &mut Tx,
    key: &AccountKey,
    amount: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ledger_accounts (id, kind, owner_id, currency, balance, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET balance = ledger_accounts.balance + excluded.balance",
    )
    .bind(key.id())
    .bind(key.kind.as_str())
    .bind(key.owner.as_deref())
    .bind(&key.currency)
    .bind(amount)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The account's cached balance (0 for an account not created yet).
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn balance(tx: &mut Tx, key: &AccountKey) -> Result<i64> {
    let row = sqlx::query("SELECT balance FROM ledger_accounts WHERE id = $1")
        .bind(key.id())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(row) => row.try_get("balance")?,
        None => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_kind_owner_and_currency() {
        let held = AccountKey::owned(AccountKind::PublisherHeld, "p1", "USD");
        assert_eq!(held.id(), "publisher_held:p1:USD");
        assert_eq!(
            AccountKey::platform(AccountKind::PlatformRevenue, "EUR").id(),
            "platform_revenue:EUR"
        );
        for kind in AccountKind::ALL {
            assert_eq!(AccountKind::parse(kind.as_str()), Some(kind));
        }
    }
}
