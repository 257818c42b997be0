//! Credit notes: an operator's correction of a paid invoice, refunded to the tenant's payment
//! method. Finalized invoices never change; a credit note says what was given back, and the
//! ledger reverses the platform's revenue by as much. A credit note covers the plan's part of
//! an invoice (what the platform earned); a plugin's charge is refunded through the ledger's
//! refunds, which reverse the publisher's split.

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::audit::{self, Actor, Entry};
use crate::auth::Principal;
use crate::billing::processor::NewCreditNote;
use crate::clock::{now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::id::new_id;
use crate::ledger::accounts::{AccountKey, AccountKind};
use crate::ledger::money;
use crate::ledger::posting::{self, NewTransaction, Posting};
use crate::state::AppState;

/// A credit note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CreditNote {
    /// Its id.
    pub id: String,
    /// The invoice it corrects.
    pub invoice_id: String,
    /// Minor units given back.
    pub amount: i64,
    /// Why.
    pub reason: String,
    /// RFC 3339.
    pub created_at: String,
}

/// Credits `amount` of tenant `slug`'s paid invoice `invoice` back to it, for `reason`
/// (operators).
///
/// # Errors
///
/// 403; 404 for an unknown invoice; 400 `invalid_amount` above what is left of the plan's part
/// or not positive, `invalid_reason`; 409 `invoice_not_paid`; 502 `processor_unavailable`.
pub async fn credit(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    invoice: &str,
    amount: i64,
    reason: &str,
) -> Result<CreditNote> {
    principal.operator()?;
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Err(Error::bad_request(
            "invalid_reason",
            "field `reason` must be 1 to 500 bytes",
        ));
    }
    let shown = super::show(state, principal, slug, invoice).await?;
    if shown.status != "paid" {
        return Err(Error::conflict(
            "invoice_not_paid",
            format!(
                "invoice {} is {}; only a paid invoice is credited",
                shown.number, shown.status
            ),
        ));
    }
    let db = state.db();
    let processor_invoice: Option<String> =
        sqlx::query("SELECT processor_invoice FROM invoices WHERE id = $1")
            .bind(&shown.id)
            .fetch_one(db.pool())
            .await?
            .try_get("processor_invoice")?;
    let mut check = db.begin_read().await?;
    let platform = super::settle::platform_part(&mut check, &shown.id).await?;
    check.commit().await?;
    let left = platform - shown.credited;
    if amount <= 0 || amount > left {
        return Err(Error::bad_request(
            "invalid_amount",
            format!(
                "field `amount` must be from 1 to {left} ({} of the plan's part is left to credit)",
                money::format(left, &shown.currency)
            ),
        ));
    }
    let id = new_id();
    let processor_note = match &processor_invoice {
        Some(processor_invoice) => Some(
            state
                .settings()
                .billing
                .processor()?
                .credit_note(
                    NewCreditNote {
                        credit_note_id: &id,
                        invoice: processor_invoice,
                        amount,
                        memo: reason,
                        refund: true,
                    },
                    &format!("plinth-credit-{id}"),
                )
                .await?,
        ),
        None => None,
    };
    let now = now_ms();
    let mut tx = crate::ledger::lock::begin(db).await?;
    let raised = sqlx::query(
        "UPDATE invoices SET credited = credited + $1 WHERE id = $2 AND credited + $1 <= $3",
    )
    .bind(amount)
    .bind(&shown.id)
    .bind(platform)
    .execute(&mut *tx)
    .await?;
    if raised.rows_affected() == 0 {
        return Err(Error::conflict(
            "invalid_amount",
            "another credit note took what was left",
        ));
    }
    sqlx::query(
        "INSERT INTO credit_notes (id, invoice_id, tenant_id, amount, reason, processor_note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(&shown.id)
    .bind(&shown.tenant_id)
    .bind(amount)
    .bind(reason)
    .bind(processor_note.as_deref())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    posting::post(
        &mut tx,
        NewTransaction {
            idempotency_key: format!("invoice:{}:credit:{id}", shown.id),
            kind: "invoice_credit",
            tenant_id: Some(shown.tenant_id.clone()),
            memo: format!("credit note on invoice {}: {reason}", shown.number),
            postings: vec![
                Posting::debit(
                    AccountKey::platform(AccountKind::Refunds, &shown.currency),
                    amount,
                ),
                Posting::credit(
                    AccountKey::platform(AccountKind::ProcessorClearing, &shown.currency),
                    amount,
                ),
            ],
            ..NewTransaction::default()
        },
    )
    .await?;
    audit::record(
        &mut tx,
        Entry {
            actor: Actor::from(principal),
            action: "invoice.credited",
            tenant_id: Some(&shown.tenant_id),
            subject: format!("invoice:{}", shown.number),
            details: serde_json::json!({"amount": amount, "reason": reason, "credit_note": id}),
        },
    )
    .await?;
    crate::notifications::notify(
        &mut tx,
        "tenant",
        &shown.tenant_id,
        "invoice_credited",
        &format!(
            "{} of invoice {} was credited back: {reason}",
            money::format(amount, &shown.currency),
            shown.number
        ),
        serde_json::json!({"invoice": shown.id, "amount": amount}),
    )
    .await?;
    tx.commit().await?;
    Ok(CreditNote {
        id,
        invoice_id: shown.id,
        amount,
        reason: reason.to_owned(),
        created_at: rfc3339(now),
    })
}
