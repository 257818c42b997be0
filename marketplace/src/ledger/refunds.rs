//! Refunds (and lost disputes): the split reversed in proportion, by the rounding rule of
//! [`super::split`].
//!
//! The processor reports the cumulative amount refunded of a charge (Stripe's
//! `amount_refunded`), so a refund event is applied as "bring the charge's refunded total to
//! `T`": a `T` not above what is recorded changes nothing (a late or repeated event), a `T`
//! above the charge's gross is refused, and anything in between posts the difference: the
//! platform's part debited to *refunds*, the publisher's part to the account where its share
//! sits (held or available), the whole credited to processor clearing. A charge with an open
//! dispute cannot be refunded (the processor does not allow it either).

use serde_json::json;

use super::accounts::{AccountKey, AccountKind};
use super::charges::Charge;
use super::posting::{self, NewTransaction, Posting};
use super::split::reversal;
use crate::audit::{self, Actor};
use crate::db::Tx;
use crate::error::{Error, Result};

/// What a refund did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refunded {
    /// The amount refunded now (0 when nothing changed).
    pub amount: i64,
    /// Taken back from the platform.
    pub platform: i64,
    /// Taken back from the publisher.
    pub publisher: i64,
    /// The ledger transaction, when one was posted.
    pub transaction_id: Option<String>,
}

/// Brings `charge`'s refunded total to `total`, posting the reversal of the difference in
/// `tx`; `kind` is `refund` or `chargeback`.
///
/// # Errors
///
/// [`Error::Conflict`] `refund_exceeds_charge` when `total` is above the gross,
/// `charge_not_paid` for a charge not paid yet, `charge_disputed` while a dispute is open (for
/// a refund); [`Error::Database`].
pub async fn refund_to(
    tx: &mut Tx,
    charge: &Charge,
    total: i64,
    kind: &'static str,
    actor: Actor,
) -> Result<Refunded> {
    if total > charge.gross {
        return Err(Error::conflict(
            "refund_exceeds_charge",
            format!(
                "a refund of {total} {} in total is more than charge {} of {} {}",
                charge.currency, charge.reference, charge.gross, charge.currency
            ),
        ));
    }
    if total <= charge.refunded {
        return Ok(Refunded {
            amount: 0,
            platform: 0,
            publisher: 0,
            transaction_id: None,
        });
    }
    if charge.status != "paid" {
        return Err(Error::conflict(
            "charge_not_paid",
            format!(
                "charge {} was not paid; nothing to refund",
                charge.reference
            ),
        ));
    }
    if kind == "refund" && super::disputes::open_for(tx, &charge.id).await?.is_some() {
        return Err(Error::conflict(
            "charge_disputed",
            format!(
                "charge {} has an open dispute; it cannot be refunded",
                charge.reference
            ),
        ));
    }
    let amount = total - charge.refunded;
    let parts = reversal(charge.gross, charge.platform_share, charge.refunded, total);
    let cur = charge.currency.as_str();
    let posted = posting::post(
        tx,
        NewTransaction {
            idempotency_key: format!("{kind}:{}:{total}", charge.reference),
            kind,
            publisher_id: Some(charge.publisher_id.clone()),
            tenant_id: Some(charge.tenant_id.clone()),
            plugin_id: Some(charge.plugin_id.clone()),
            charge_id: Some(charge.id.clone()),
            reverses: None,
            memo: format!(
                "{kind} of {amount} {cur} of charge {} (platform {}, publisher {})",
                charge.reference, parts.platform, parts.publisher
            ),
            postings: vec![
                Posting::debit(
                    AccountKey::platform(AccountKind::Refunds, cur),
                    parts.platform,
                ),
                Posting::debit(charge.publisher_account(), parts.publisher),
                Posting::credit(
                    AccountKey::platform(AccountKind::ProcessorClearing, cur),
                    amount,
                ),
            ],
        },
    )
    .await?;
    sqlx::query(
        "UPDATE ledger_charges SET refunded = $1, refunded_platform = refunded_platform + $2 \
         WHERE id = $3 AND refunded = $4",
    )
    .bind(total)
    .bind(parts.platform)
    .bind(&charge.id)
    .bind(charge.refunded)
    .execute(&mut **tx)
    .await?;
    audit::record(
        tx,
        audit::Entry {
            actor,
            action: if kind == "refund" {
                "ledger.refunded"
            } else {
                "ledger.charged_back"
            },
            tenant_id: Some(&charge.tenant_id),
            subject: format!("charge:{}", charge.reference),
            details: json!({
                "plugin": charge.plugin_id,
                "currency": cur,
                "amount": amount,
                "refunded_total": total,
                "platform": parts.platform,
                "publisher": parts.publisher,
                "transaction": posted.id(),
            }),
        },
    )
    .await?;
    Ok(Refunded {
        amount,
        platform: parts.platform,
        publisher: parts.publisher,
        transaction_id: Some(posted.id().to_owned()),
    })
}
