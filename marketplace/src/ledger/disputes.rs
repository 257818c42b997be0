//! Disputes (chargebacks): an open dispute freezes the publisher's remaining part of the
//! charge; closing it unfreezes that part back where it came from, and a lost dispute is then
//! reversed like a refund of the disputed amount ([`super::refunds::charge_back`]).
//!
//! A charge has at most one open dispute. While it is open the charge is neither released nor
//! refunded, so the frozen part stays what it was when frozen. Both changes run in a
//! transaction holding the ledger lock and start from the charge as it is then.

use serde_json::json;
use sqlx::Row;

use super::accounts::{AccountKey, AccountKind};
use super::charges;
use super::lock::one_row;
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

/// Opens dispute `dispute_id` of `amount` on charge `charge_id`: freezes the publisher's
/// remaining part. Answers `false` for a dispute opened before (nothing changes).
///
/// # Errors
///
/// [`Error::Conflict`] `dispute_exceeds_charge` for an amount of 0 or less or above the gross,
/// `dispute_open` while another dispute of the charge is open, `dispute_of_another_charge`;
/// [`Error::Internal`] without the ledger lock; [`Error::Database`].
pub async fn open(tx: &mut Tx, charge_id: &str, dispute_id: &str, amount: i64) -> Result<bool> {
    let charge = charges::current(tx, charge_id).await?;
    let known = sqlx::query("SELECT charge_id FROM ledger_disputes WHERE id = $1")
        .bind(dispute_id)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(row) = known {
        let of: String = row.try_get("charge_id")?;
        return if of == charge.id {
            Ok(false)
        } else {
            Err(of_another_charge(dispute_id, &charge.reference))
        };
    }
    if amount <= 0 || amount > charge.gross {
        return Err(Error::conflict(
            "dispute_exceeds_charge",
            format!(
                "dispute {dispute_id} of {amount} is not within charge {} of {}",
                charge.reference, charge.gross
            ),
        ));
    }
    if let Some((open, _, _)) = open_for(tx, &charge.id).await? {
        return Err(Error::conflict(
            "dispute_open",
            format!(
                "charge {} already has dispute {open} open",
                charge.reference
            ),
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
    .await?;
    Ok(true)
}

fn of_another_charge(dispute_id: &str, reference: &str) -> Error {
    Error::conflict(
        "dispute_of_another_charge",
        format!("dispute {dispute_id} belongs to another charge than {reference}"),
    )
}

/// What closing a dispute did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Closed now: unfrozen, and reversed if lost.
    Closed,
    /// It was closed before: nothing changed.
    ClosedBefore,
    /// It was never opened (its opening has not arrived yet): nothing changed.
    NotOpened,
}

/// Closes dispute `dispute_id` of charge `charge_id`: unfreezes, then, if `lost`, reverses the
/// disputed amount like a refund.
///
/// # Errors
///
/// [`Error::Conflict`] `dispute_of_another_charge`, or as
/// [`super::refunds::charge_back`]; [`Error::Internal`] without the ledger lock;
/// [`Error::Database`].
pub async fn close(tx: &mut Tx, charge_id: &str, dispute_id: &str, lost: bool) -> Result<Closing> {
    let charge = charges::current(tx, charge_id).await?;
    let row = sqlx::query(
        "SELECT charge_id, amount, frozen, frozen_from, status FROM ledger_disputes WHERE id = $1",
    )
    .bind(dispute_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(Closing::NotOpened);
    };
    if row.try_get::<String, _>("charge_id")? != charge.id {
        return Err(of_another_charge(dispute_id, &charge.reference));
    }
    if row.try_get::<String, _>("status")? != "open" {
        return Ok(Closing::ClosedBefore);
    }
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
    let closed = sqlx::query(
        "UPDATE ledger_disputes SET status = $1, closed_at = $2 WHERE id = $3 AND status = 'open'",
    )
    .bind(if lost { "lost" } else { "won" })
    .bind(now_ms())
    .bind(dispute_id)
    .execute(&mut **tx)
    .await?;
    one_row(&closed, &format!("closing dispute {dispute_id}"))?;
    if lost {
        super::refunds::charge_back(tx, &charge.id, dispute_id, amount).await?;
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
    Ok(Closing::Closed)
}
