//! What the platform's own invoices should have posted (part of 10 and 11 of [`super`]): each
//! paid invoice's plan part (its plan lines less the discount) from processor clearing to
//! platform revenue, and each credit note back from refunds to clearing. The invoices' plugin
//! and usage lines are charges, checked with the charges.

use sqlx::Row;

use crate::db::Db;
use crate::error::Result;
use crate::ledger::accounts::{AccountKey, AccountKind};
use crate::ledger::derivation::Movements;

/// A transaction an invoice should have posted.
pub(super) struct Expected {
    /// Its idempotency key.
    pub key: String,
    /// What it is, for the report: `invoice PL-000001`.
    pub subject: String,
    /// The movements it should make.
    pub movements: Movements,
}

fn moves(currency: &str, debit: AccountKind, credit: AccountKind, amount: i64) -> Movements {
    let mut movements = Movements::new();
    movements.insert(AccountKey::platform(debit, currency).id(), amount);
    movements.insert(AccountKey::platform(credit, currency).id(), -amount);
    movements
}

/// Every transaction the invoices derive, in invoice order.
pub(super) async fn expected(db: &Db) -> Result<Vec<Expected>> {
    let mut out = Vec::new();
    for row in sqlx::query(
        "SELECT i.id, i.number, i.currency, COALESCE(CAST(SUM(l.amount) AS BIGINT), 0) AS platform \
         FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id \
         WHERE i.status = 'paid' AND l.kind IN ('plan', 'discount') \
         GROUP BY i.id, i.number, i.currency ORDER BY i.id",
    )
    .fetch_all(db.pool())
    .await?
    {
        let platform: i64 = row.try_get("platform")?;
        if platform <= 0 {
            continue;
        }
        let id: String = row.try_get("id")?;
        let currency: String = row.try_get("currency")?;
        out.push(Expected {
            key: format!("invoice:{id}:platform"),
            subject: format!("invoice {}", row.try_get::<String, _>("number")?),
            movements: moves(
                &currency,
                AccountKind::ProcessorClearing,
                AccountKind::PlatformRevenue,
                platform,
            ),
        });
    }
    for row in sqlx::query(
        "SELECT n.id, n.invoice_id, n.amount, i.number, i.currency FROM credit_notes n \
         JOIN invoices i ON i.id = n.invoice_id ORDER BY n.id",
    )
    .fetch_all(db.pool())
    .await?
    {
        let id: String = row.try_get("id")?;
        let invoice: String = row.try_get("invoice_id")?;
        let currency: String = row.try_get("currency")?;
        out.push(Expected {
            key: format!("invoice:{invoice}:credit:{id}"),
            subject: format!(
                "credit note {id} of invoice {}",
                row.try_get::<String, _>("number")?
            ),
            movements: moves(
                &currency,
                AccountKind::Refunds,
                AccountKind::ProcessorClearing,
                row.try_get("amount")?,
            ),
        });
    }
    Ok(out)
}
