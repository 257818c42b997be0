//! Refunds and chargebacks (lost disputes): the split reversed in proportion, by the rounding
//! rule of [`super::split`], applied to the charge's cumulative reversed total.
//!
//! The processor reports the cumulative amount refunded of a charge (Stripe's
//! `amount_refunded`, which does not count disputes), so a refund event is applied as "bring the
//! charge's refunded total to `T`": a `T` not above what is recorded changes nothing (a late or
//! repeated event), and anything above it reverses the difference. A lost dispute reverses its
//! amount once ([`charge_back`]). Either way the refunds and the chargebacks together may not
//! pass the charge's gross. A reversal debits the platform's part to *refunds*, the publisher's
//! part to the account where its share sits (held or available), and credits the whole to
//! processor clearing. A charge with an open dispute is not refunded until the dispute closes
//! (the processor does not refund a disputed charge either, so such an event is one delivered
//! out of order).
//!
//! Both run in a transaction holding the ledger lock and start from the charge as it is then.

use serde_json::json;

use super::accounts::{AccountKey, AccountKind};
use super::charges::{self, Charge};
use super::lock::one_row;
use super::posting::{self, NewTransaction, Posting};
use super::split::reversal;
use crate::audit::{self, Actor};
use crate::db::Tx;
use crate::error::{Error, Result};

/// What a refund or chargeback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refunded {
    /// The amount reversed now (0 when nothing changed).
    pub amount: i64,
    /// Taken back from the platform.
    pub platform: i64,
    /// Taken back from the publisher.
    pub publisher: i64,
    /// The ledger transaction, when one was posted.
    pub transaction_id: Option<String>,
}

impl Refunded {
    fn nothing() -> Refunded {
        Refunded {
            amount: 0,
            platform: 0,
            publisher: 0,
            transaction_id: None,
        }
    }
}

/// Brings charge `charge_id`'s refunded total to `total`, posting the reversal of the
/// difference in `tx`.
///
/// # Errors
///
/// [`Error::Conflict`] `refund_exceeds_charge` when `total` and the chargebacks together pass
/// the gross, `charge_not_paid` for a charge not paid yet, `charge_disputed` while a dispute is
/// open; [`Error::Internal`] without the ledger lock; [`Error::Database`].
pub async fn refund_to(tx: &mut Tx, charge_id: &str, total: i64, actor: Actor) -> Result<Refunded> {
    let charge = charges::current(tx, charge_id).await?;
    if total <= charge.refunded {
        return Ok(Refunded::nothing());
    }
    if total.saturating_add(charge.charged_back) > charge.gross {
        return Err(Error::conflict(
            "refund_exceeds_charge",
            format!(
                "a refund of {total} {cur} in total (with {} {cur} lost in disputes) is more than \
                 charge {} of {} {cur}",
                charge.charged_back,
                charge.reference,
                charge.gross,
                cur = charge.currency
            ),
        ));
    }
    check_paid(&charge)?;
    if super::disputes::open_for(tx, &charge.id).await?.is_some() {
        return Err(Error::conflict(
            "charge_disputed",
            format!(
                "charge {} has an open dispute; it is refunded once the dispute closes",
                charge.reference
            ),
        ));
    }
    let amount = total - charge.refunded;
    let done = reverse(
        tx,
        &charge,
        Reversal {
            kind: "refund",
            idempotency_key: format!("refund:{}:{total}", charge.reference),
            amount,
            actor,
            cause: json!({"refunded_total": total}),
        },
    )
    .await?;
    let updated = sqlx::query(
        "UPDATE ledger_charges SET refunded = $1, reversed_platform = reversed_platform + $2 \
         WHERE id = $3 AND refunded = $4 AND charged_back = $5",
    )
    .bind(total)
    .bind(done.platform)
    .bind(&charge.id)
    .bind(charge.refunded)
    .bind(charge.charged_back)
    .execute(&mut **tx)
    .await?;
    one_row(&updated, &format!("refunding charge {}", charge.reference))?;
    Ok(done)
}

/// Reverses `amount` of charge `charge_id` for lost dispute `dispute_id`, in `tx`; once per
/// dispute.
///
/// # Errors
///
/// [`Error::Conflict`] `chargeback_exceeds_charge` when the refunds and chargebacks together
/// would pass the gross, `charge_not_paid` for a charge not paid yet; [`Error::Internal`]
/// without the ledger lock; [`Error::Database`].
pub async fn charge_back(
    tx: &mut Tx,
    charge_id: &str,
    dispute_id: &str,
    amount: i64,
) -> Result<Refunded> {
    let charge = charges::current(tx, charge_id).await?;
    let key = format!("chargeback:{dispute_id}");
    if amount <= 0 || posting::find(tx, &key).await?.is_some() {
        return Ok(Refunded::nothing());
    }
    check_paid(&charge)?;
    if charge.reversed().saturating_add(amount) > charge.gross {
        return Err(Error::conflict(
            "chargeback_exceeds_charge",
            format!(
                "dispute {dispute_id} lost {amount} {cur}, but charge {} has only {} {cur} not \
                 reversed yet",
                charge.reference,
                charge.gross - charge.reversed(),
                cur = charge.currency
            ),
        ));
    }
    let done = reverse(
        tx,
        &charge,
        Reversal {
            kind: "chargeback",
            idempotency_key: key,
            amount,
            actor: Actor::System,
            cause: json!({"dispute": dispute_id}),
        },
    )
    .await?;
    let updated = sqlx::query(
        "UPDATE ledger_charges SET charged_back = charged_back + $1, \
         reversed_platform = reversed_platform + $2 \
         WHERE id = $3 AND refunded = $4 AND charged_back = $5",
    )
    .bind(amount)
    .bind(done.platform)
    .bind(&charge.id)
    .bind(charge.refunded)
    .bind(charge.charged_back)
    .execute(&mut **tx)
    .await?;
    one_row(
        &updated,
        &format!("charging back charge {}", charge.reference),
    )?;
    Ok(done)
}

fn check_paid(charge: &Charge) -> Result<()> {
    if charge.status == "paid" {
        Ok(())
    } else {
        Err(Error::conflict(
            "charge_not_paid",
            format!(
                "charge {} was not paid; nothing to reverse",
                charge.reference
            ),
        ))
    }
}

/// One reversal to post.
struct Reversal {
    kind: &'static str,
    idempotency_key: String,
    amount: i64,
    actor: Actor,
    cause: serde_json::Value,
}

/// Posts the reversal of `reversal.amount` more of `charge` and records it in the audit log.
async fn reverse(tx: &mut Tx, charge: &Charge, what: Reversal) -> Result<Refunded> {
    let before = charge.reversed();
    let after = before + what.amount;
    let parts = reversal(charge.gross, charge.platform_share, before, after);
    let cur = charge.currency.as_str();
    let kind = what.kind;
    let posted = posting::post(
        tx,
        NewTransaction {
            idempotency_key: what.idempotency_key,
            kind,
            publisher_id: Some(charge.publisher_id.clone()),
            tenant_id: Some(charge.tenant_id.clone()),
            plugin_id: Some(charge.plugin_id.clone()),
            charge_id: Some(charge.id.clone()),
            reverses: None,
            memo: format!(
                "{kind} of {} {cur} of charge {} (platform {}, publisher {})",
                what.amount, charge.reference, parts.platform, parts.publisher
            ),
            postings: vec![
                Posting::debit(
                    AccountKey::platform(AccountKind::Refunds, cur),
                    parts.platform,
                ),
                Posting::debit(charge.publisher_account(), parts.publisher),
                Posting::credit(
                    AccountKey::platform(AccountKind::ProcessorClearing, cur),
                    what.amount,
                ),
            ],
        },
    )
    .await?;
    let mut details = json!({
        "plugin": charge.plugin_id,
        "currency": cur,
        "amount": what.amount,
        "reversed_total": after,
        "platform": parts.platform,
        "publisher": parts.publisher,
        "transaction": posted.id(),
    });
    if let (Some(details), Some(cause)) = (details.as_object_mut(), what.cause.as_object()) {
        details.extend(cause.clone());
    }
    audit::record(
        tx,
        audit::Entry {
            actor: what.actor,
            action: if kind == "refund" {
                "ledger.refunded"
            } else {
                "ledger.charged_back"
            },
            tenant_id: Some(&charge.tenant_id),
            subject: format!("charge:{}", charge.reference),
            details,
        },
    )
    .await?;
    Ok(Refunded {
        amount: what.amount,
        platform: parts.platform,
        publisher: parts.publisher,
        transaction_id: Some(posted.id().to_owned()),
    })
}
