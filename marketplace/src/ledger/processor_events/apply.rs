//! Applying one processor event to the ledger, or finding that it must wait for its object.

use serde_json::{Map, Value};

use super::Status;
use super::event::{Event, amount, currency, required_text, text};
use crate::audit::Actor;
use crate::db::Tx;
use crate::error::Result;
use crate::ledger::LedgerSettings;
use crate::ledger::charges::{self, Charge, NewCharge};
use crate::ledger::disputes::Closing;

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The ledger changed (or was found to have the change already); the charge it concerns.
    Done {
        note: String,
        charge: Option<String>,
    },
    /// It waits for its object.
    Waiting(String),
    /// It matches nothing known and never will as it stands.
    Unmatched(String),
    /// The ledger does not use it.
    Ignored(String),
}

impl Applied {
    pub(super) fn status(&self) -> Status {
        match self {
            Applied::Done { .. } => Status::Applied,
            Applied::Waiting(_) => Status::Pending,
            Applied::Unmatched(_) => Status::Unmatched,
            Applied::Ignored(_) => Status::Ignored,
        }
    }

    pub(super) fn note(&self) -> &str {
        match self {
            Applied::Done { note, .. }
            | Applied::Waiting(note)
            | Applied::Unmatched(note)
            | Applied::Ignored(note) => note,
        }
    }
}

fn done(note: String, charge: &Charge) -> Applied {
    Applied::Done {
        note,
        charge: Some(charge.id.clone()),
    }
}

/// Applies `event` in `tx` (which holds the ledger lock) at `now`.
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_event`) for a malformed event; [`Error::Conflict`] for one
/// the ledger refuses; [`Error::Database`].
pub(crate) async fn apply(
    tx: &mut Tx,
    settings: &LedgerSettings,
    event: &Event,
    now: i64,
) -> Result<Applied> {
    let object = &event.object;
    match event.kind.as_str() {
        "invoice.paid" => invoice_paid(tx, settings, object, now).await,
        "charge.refunded" => {
            let charge_id = required_text(object, "id")?;
            let total = amount(object, "amount_refunded")?;
            let charge = match charges::by_processor_charge(tx, charge_id).await? {
                Some(charge) => Some(charge),
                None => match text(object, "invoice")? {
                    Some(invoice) => charges::by_invoice(tx, invoice).await?,
                    None => None,
                },
            };
            let Some(charge) = charge else {
                return Ok(Applied::Waiting(format!(
                    "waits for the payment of charge {charge_id}"
                )));
            };
            match crate::ledger::refunds::refund_to(tx, &charge.id, total, Actor::System).await {
                Ok(refunded) if refunded.amount == 0 => Ok(done(
                    format!("charge {charge_id} refunded {total} already; nothing new"),
                    &charge,
                )),
                Ok(refunded) => Ok(done(
                    format!(
                        "refunded {} of charge {charge_id} (platform {}, publisher {})",
                        refunded.amount, refunded.platform, refunded.publisher
                    ),
                    &charge,
                )),
                Err(e) if e.code() == "charge_disputed" => Ok(Applied::Waiting(format!(
                    "waits for the dispute of charge {charge_id} to close"
                ))),
                Err(e) => Err(e),
            }
        }
        "charge.dispute.created" | "charge.dispute.closed" => {
            let dispute_id = required_text(object, "id")?;
            let charge_id = required_text(object, "charge")?;
            let disputed = amount(object, "amount")?;
            let lost = text(object, "status")? == Some("lost");
            let Some(charge) = charges::by_processor_charge(tx, charge_id).await? else {
                return Ok(Applied::Waiting(format!(
                    "waits for the payment of charge {charge_id}"
                )));
            };
            if event.kind == "charge.dispute.created" {
                let note =
                    if crate::ledger::disputes::open(tx, &charge.id, dispute_id, disputed).await? {
                        format!("dispute {dispute_id} froze the publisher's part")
                    } else {
                        format!("dispute {dispute_id} was opened before")
                    };
                return Ok(done(note, &charge));
            }
            Ok(
                match crate::ledger::disputes::close(tx, &charge.id, dispute_id, lost).await? {
                    Closing::Closed => done(
                        format!("dispute {dispute_id} closed (lost: {lost})"),
                        &charge,
                    ),
                    Closing::ClosedBefore => {
                        done(format!("dispute {dispute_id} was closed before"), &charge)
                    }
                    Closing::NotOpened => {
                        Applied::Waiting(format!("waits for dispute {dispute_id} to be opened"))
                    }
                },
            )
        }
        other => Ok(Applied::Ignored(format!(
            "events of type {other} are not used"
        ))),
    }
}

async fn invoice_paid(
    tx: &mut Tx,
    settings: &LedgerSettings,
    object: &Map<String, Value>,
    now: i64,
) -> Result<Applied> {
    let invoice = required_text(object, "id")?;
    let paid = amount(object, "amount_paid")?;
    let currency = currency(object)?;
    let processor_charge = text(object, "charge")?;
    if paid == 0 {
        return Ok(Applied::Ignored(format!("invoice {invoice} paid nothing")));
    }
    let usage_charge = match object.get("metadata").and_then(Value::as_object) {
        Some(metadata) => text(metadata, "plinth_charge")?,
        None => None,
    };
    if let Some(charge_id) = usage_charge {
        let Some(charge) = charges::by_id(tx, charge_id).await? else {
            return Ok(Applied::Waiting(format!(
                "waits for usage charge {charge_id}"
            )));
        };
        if charge.gross != paid || charge.currency != currency {
            return Ok(Applied::Unmatched(format!(
                "invoice {invoice} paid {paid} {currency} but charge {charge_id} is {} {}",
                charge.gross, charge.currency
            )));
        }
        let charge =
            charges::settle(tx, settings, &charge.id, processor_charge, invoice, now).await?;
        return Ok(done(format!("usage charge {charge_id} paid"), &charge));
    }
    let Some(subscription_id) = text(object, "subscription")? else {
        return Ok(Applied::Unmatched(format!(
            "invoice {invoice} names no subscription"
        )));
    };
    let Some(subscription) = crate::ledger::subscriptions::by_id(tx, subscription_id).await? else {
        return Ok(Applied::Waiting(format!(
            "waits for subscription {subscription_id}"
        )));
    };
    let (charge, new) = charges::record(
        tx,
        settings,
        NewCharge {
            reference: invoice,
            processor_charge,
            processor_invoice: Some(invoice),
            source: "subscription",
            subscription_id: Some(&subscription.id),
            tenant_id: &subscription.tenant_id,
            plugin_id: &subscription.plugin_id,
            publisher_id: &subscription.publisher_id,
            currency: &currency,
            gross: paid,
            paid: true,
            period: None,
        },
        now,
    )
    .await?;
    let note = if new {
        format!(
            "charge {} of {paid} {currency}: platform {}, publisher {}",
            charge.id, charge.platform_share, charge.publisher_share
        )
    } else {
        format!("invoice {invoice} was recorded before")
    };
    Ok(done(note, &charge))
}
