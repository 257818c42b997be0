//! The processor's events about the platform's own invoices (those whose metadata carries
//! `plinth_invoice`): `invoice.paid`, `invoice.payment_failed` and `invoice.finalized`, applied
//! through [`crate::billing::invoices`] — the same functions the collection's own answer goes
//! through, so whichever comes second changes nothing. Events about the customers and
//! subscriptions the platform does not bill through (`customer.*`, `customer.subscription.*`,
//! `checkout.session.completed`, `credit_note.*`) are stored and ignored: the platform's records
//! are the source of those facts.

use serde_json::Value;

use super::apply::Applied;
use super::event::{Event, text};
use crate::billing::BillingSettings;
use crate::db::Tx;
use crate::error::Result;
use crate::ledger::LedgerSettings;

/// Whether `event` concerns a platform invoice (one whose settling may restore a suspended
/// tenant: caches of tenants must forget theirs once it commits).
pub(crate) fn concerns_platform_invoice(event: &Event) -> bool {
    event
        .object
        .get("metadata")
        .and_then(Value::as_object)
        .is_some_and(|metadata| metadata.contains_key("plinth_invoice"))
}

/// Applies `event` if it concerns a platform invoice (or is one of the kinds the platform
/// ignores); `None` for the ledger's own events.
///
/// # Errors
///
/// [`crate::Error::BadRequest`] (`invalid_event`) for a malformed field; [`crate::Error::Database`].
pub(crate) async fn apply(
    tx: &mut Tx,
    ledger: &LedgerSettings,
    billing: &BillingSettings,
    event: &Event,
    now: i64,
) -> Result<Option<Applied>> {
    if event.kind.starts_with("customer.")
        || event.kind == "checkout.session.completed"
        || event.kind.starts_with("credit_note.")
    {
        return Ok(Some(Applied::Ignored(format!(
            "{} is recorded by the platform itself",
            event.kind
        ))));
    }
    let object = &event.object;
    let invoice = match object.get("metadata").and_then(Value::as_object) {
        Some(metadata) => text(metadata, "plinth_invoice")?.map(str::to_owned),
        None => None,
    };
    let Some(invoice) = invoice else {
        return Ok(None);
    };
    let known = sqlx::query("SELECT id FROM invoices WHERE id = $1")
        .bind(&invoice)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if !known {
        return Ok(Some(Applied::Unmatched(format!(
            "platform invoice {invoice} is not known here"
        ))));
    }
    let done = |note: String| Some(Applied::Done { note, charge: None });
    Ok(match event.kind.as_str() {
        "invoice.paid" => {
            let charge = text(object, "charge")?;
            match crate::billing::invoices::paid_in(tx, ledger, &invoice, charge, now).await? {
                Some(paid) if paid.restored => {
                    done(format!("invoice {} paid; tenant restored", paid.number))
                }
                Some(paid) => done(format!("invoice {} paid", paid.number)),
                None => done(format!("invoice {invoice} was paid before")),
            }
        }
        "invoice.payment_failed" => {
            let attempt = object
                .get("attempt_count")
                .and_then(Value::as_i64)
                .filter(|n| *n > 0)
                .unwrap_or(1);
            let code = object
                .get("last_finalization_error")
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("payment_failed");
            if crate::billing::invoices::failed_in(tx, billing, &invoice, attempt, code, now)
                .await?
            {
                done(format!("invoice {invoice}: attempt {attempt} declined"))
            } else {
                done(format!(
                    "invoice {invoice}: attempt {attempt} was recorded before"
                ))
            }
        }
        "invoice.finalized" => {
            let processor_invoice = text(object, "id")?.unwrap_or_default();
            if crate::billing::invoices::finalized_in(tx, &invoice, processor_invoice).await? {
                done(format!(
                    "invoice {invoice} is {processor_invoice} at the processor"
                ))
            } else {
                done(format!("invoice {invoice} was finalized before"))
            }
        }
        other => Some(Applied::Ignored(format!(
            "events of type {other} about platform invoices are not used"
        ))),
    })
}
