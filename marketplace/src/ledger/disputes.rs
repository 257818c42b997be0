//! Disputes (chargebacks): an open dispute freezes the publisher's remaining part of the
//! charge; closing it unfreezes that part back where it came from, and a lost dispute is then
//! reversed like a refund of the disputed amount ([`super::refunds`], kind `chargeback`).

use serde_json::json;
use sqlx::Row;

use super::accounts::{AccountKey, AccountKind};
use super::charges::Charge;
use super::posting::{self, NewTransaction, Posting};
use crate::audit::{self, Actor};
use crate::clock::now_ms;
use crate::db::Tx;
use crate::error::{Error, Result};

/// The open dispute of `charge_id`, if any: (dispute id, frozen amount, frozen from).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn open_for(tx: &mut Tx, charge_id: &str) -> Result<Option<(String, i64, String)>> {
    let row = sqlx::query(
        "SELECT id, frozen, frozen_from FROM ledger_disputes WHERE charge_id = $1 AND status = 'open'",
    )
    .bind(charge_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        Some(row) => Some((
            row.try_get("id")?,
            row.try_get("frozen")?,
            row.try_get("frozen_from")?,
        )),
        None => None,
    })
}

/// Opens dispute `dispute_id` of `amount` on `charge`: freezes the publisher's remaining part.
/// A dispute opened before changes nothing.
///
/// # Errors
///
/// [`Error::Conflict`] `dispute_exceeds_charge` when the amount is more than the charge not yet
/// refunded; [`Error::Database`].
pub async fn open(tx: &mut Tx, charge: &Charge, dispute_id: &str, amount: i64) -> Result<()> {
    let known = sqlx::query("SELECT id FROM ledger_disputes WHERE id = $1")
        .bind(dispute_id)
        .fetch_optional(&mut **tx)
        .await?;
    if known.is_some() {
        return Ok(());
    }
    if amount <= 0 || amount > charge.gross - charge.refunded {
        return Err(Error::conflict(
            "dispute_exceeds_charge",
            format!(
                "dispute {dispute_id} of {amount} is not within what charge {} has not refunded ({})",
                charge.reference,
                charge.gross - charge.refunded
            ),
        ));
    }
    if open_for(tx, &charge.id).await?.is_some() {
        return Err(Error::conflict(
            "dispute_open",
            format!("charge {} already has an open dispute", charge.reference),
        ));
    }
    let from = charge.publisher_account();
    let frozen = charge.publisher_remaining().max(0);
    let cur = charge.currency.as_str();
    if frozen > 0 {
        posting::post(
            tx,
            NewTransaction {
                idempotency_key: format!("dispute:{dispute_id}:open"),
                kind: "dispute_freeze",
                publisher_id: Some(charge.publisher_id.clone()),
                tenant_id: Some(charge.tenant_id.clone()),
                plugin_id: Some(charge.plugin_id.clone()),
                charge_id: Some(charge.id.clone()),
                reverses: None,
                memo: format!("dispute {dispute_id} on charge {} opened", charge.reference),
                postings: vec![
                    Posting::debit(from.clone(), frozen),
                    Posting::credit(
                        AccountKey::owned(AccountKind::PublisherFrozen, &charge.publisher_id, cur),
                        frozen,
                    ),
                ],
            },
        )
        .await?;
    }
    sqlx::query(
        "INSERT INTO ledger_disputes (id, charge_id, amount, frozen, frozen_from, status, opened_at) \
         VALUES ($1, $2, $3, $4, $5, 'open', $6)",
    )
    .bind(dispute_id)
    .bind(&charge.id)
    .bind(amount)
    .bind(frozen)
    .bind(from.kind.as_str())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    audit::record(
        tx,
        audit::Entry {
            actor: Actor::System,
            action: "ledger.dispute_opened",
            tenant_id: Some(&charge.tenant_id),
            subject: format!("charge:{}", charge.reference),
            details: json!({"dispute": dispute_id, "amount": amount, "frozen": frozen}),
        },
    )
    .await
}

/// Closes dispute `dispute_id`: unfreezes, then, if `lost`, reverses the disputed amount like
/// a refund. A dispute closed before (or unknown) changes nothing and answers `false`.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn close(tx: &mut Tx, charge: &Charge, dispute_id: &str, lost: bool) -> Result<bool> {
    let row = sqlx::query(
        "SELECT amount, frozen, frozen_from FROM ledger_disputes WHERE id = $1 AND status = 'open'",
    )
    .bind(dispute_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let amount: i64 = row.try_get("amount")?;
    let frozen: i64 = row.try_get("frozen")?;
    let from: String = row.try_get("frozen_from")?;
    let from = AccountKind::parse(&from)
        .ok_or_else(|| Error::Internal(format!("dispute {dispute_id}: unknown account {from}")))?;
    let cur = charge.currency.as_str();
    if frozen > 0 {
        let opened = posting::find(tx, &format!("dispute:{dispute_id}:open")).await?;
        posting::post(
            tx,
            NewTransaction {
                idempotency_key: format!("dispute:{dispute_id}:close"),
                kind: "dispute_release",
                publisher_id: Some(charge.publisher_id.clone()),
                tenant_id: Some(charge.tenant_id.clone()),
                plugin_id: Some(charge.plugin_id.clone()),
                charge_id: Some(charge.id.clone()),
                reverses: opened,
                memo: format!(
                    "dispute {dispute_id} closed ({})",
                    if lost { "lost" } else { "won" }
                ),
                postings: vec![
                    Posting::debit(
                        AccountKey::owned(AccountKind::PublisherFrozen, &charge.publisher_id, cur),
                        frozen,
                    ),
                    Posting::credit(AccountKey::owned(from, &charge.publisher_id, cur), frozen),
                ],
            },
        )
        .await?;
    }
    sqlx::query("UPDATE ledger_disputes SET status = $1, closed_at = $2 WHERE id = $3")
        .bind(if lost { "lost" } else { "won" })
        .bind(now_ms())
        .bind(dispute_id)
        .execute(&mut **tx)
        .await?;
    if lost {
        let total = (charge.refunded + amount).min(charge.gross);
        super::refunds::refund_to(tx, charge, total, "chargeback", Actor::System).await?;
    }
    audit::record(
        tx,
        audit::Entry {
            actor: Actor::System,
            action: "ledger.dispute_closed",
            tenant_id: Some(&charge.tenant_id),
            subject: format!("charge:{}", charge.reference),
            details: json!({"dispute": dispute_id, "lost": lost, "amount": amount}),
        },
    )
    .await?;
    Ok(true)
}
