//! Processor webhooks: Stripe's signature scheme and event handling.
//!
//! # Signature
//!
//! The `Stripe-Signature` header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…]` (other schemes
//! such as `v0` are ignored). The expected signature is HMAC-SHA256, keyed with the webhook
//! secret, over `"<t>.<raw body>"`; it is compared with each `v1` in constant time
//! ([`hmac::Mac::verify_slice`]), and accepted if any matches (several are sent while a
//! secret is rolled). A matching signature whose `t` is more than the tolerance (default 300 s)
//! away from now is refused too, so a captured request cannot be replayed later.
//!
//! # Events
//!
//! Stripe's shape, `{id, type, created, data: {object: {…}}}`; the fields read are:
//!
//! - `invoice.paid`: `object.id` (invoice), `object.amount_paid`, `object.currency`,
//!   `object.charge` (optional), and either `object.metadata.plinth_charge` (a billed usage
//!   charge's id: the charge is settled) or `object.subscription` (a subscription id from
//!   [`super::subscriptions`]: a charge of `amount_paid` is recorded, referenced by the invoice
//!   id).
//! - `charge.refunded`: `object.id` (charge), `object.invoice` (optional),
//!   `object.amount_refunded` (the cumulative total refunded).
//! - `charge.dispute.created` / `charge.dispute.closed`: `object.id` (dispute),
//!   `object.charge`, `object.amount`, `object.status` (`lost` means lost; anything else on
//!   close means the publisher keeps its part).
//!
//! Every verified event is stored by its id in `billing_events` in the transaction that applies
//! it: a duplicate (the same id again, even concurrently) changes nothing; an event that names
//! no known subscription or charge is stored as `unmatched` for reconciliation; other types are
//! stored as `ignored`. An event that would break the ledger (a refund above the charge) is
//! refused with a 409 and nothing is stored.

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use sqlx::Row;
use utoipa::ToSchema;

use super::LedgerSettings;
use super::charges::{self, NewCharge};
use crate::audit::Actor;
use crate::clock::now_ms;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// The most bytes of an event body the webhook accepts.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

fn mac(secret: &str, timestamp: i64, payload: &[u8]) -> Result<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .map_err(|e| Error::Internal(format!("webhook secret: {e}")))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    Ok(mac)
}

/// The `Stripe-Signature` header the processor would send for `payload` at `timestamp` (for
/// tests and simulators).
///
/// # Errors
///
/// [`Error::Internal`] if the secret cannot key the MAC (never, for HMAC).
pub fn signature_header(secret: &str, timestamp: i64, payload: &[u8]) -> Result<String> {
    let signature = hex::encode(mac(secret, timestamp, payload)?.finalize().into_bytes());
    Ok(format!("t={timestamp},v1={signature}"))
}

/// Checks `header` against `payload` at `now_secs`.
///
/// # Errors
///
/// [`Error::BadRequest`] `missing_signature` / `invalid_signature_header` for no or a
/// malformed header, `signature_expired` for a timestamp outside the tolerance;
/// [`Error::Unauthenticated`] when no `v1` signature matches.
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    payload: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<()> {
    let header = header.ok_or_else(|| {
        Error::bad_request(
            "missing_signature",
            "the `Stripe-Signature` header is required",
        )
    })?;
    let malformed = || {
        Error::bad_request(
            "invalid_signature_header",
            "the `Stripe-Signature` header must be `t=<unix seconds>,v1=<hex signature>`",
        )
    };
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => {
                timestamp = Some(value.parse::<i64>().map_err(|_| malformed())?);
            }
            Some(("v1", value)) => signatures.push(hex::decode(value).map_err(|_| malformed())?),
            Some(_) => {}
            None => return Err(malformed()),
        }
    }
    let timestamp = timestamp.ok_or_else(malformed)?;
    if signatures.is_empty() {
        return Err(malformed());
    }
    let expected = mac(secret, timestamp, payload)?;
    if !signatures
        .iter()
        .any(|signature| expected.clone().verify_slice(signature).is_ok())
    {
        return Err(Error::Unauthenticated(
            "the webhook signature does not match the payload".to_owned(),
        ));
    }
    if (now_secs - timestamp).abs() > tolerance_secs {
        return Err(Error::bad_request(
            "signature_expired",
            format!(
                "the webhook's signed timestamp {timestamp} is more than {tolerance_secs} s from now"
            ),
        ));
    }
    Ok(())
}

/// What the webhook did with an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Outcome {
    /// The event's id.
    pub event: String,
    /// `applied`, `duplicate`, `unmatched` (stored for reconciliation) or `ignored`.
    pub status: String,
    /// What was done.
    pub note: String,
}

fn invalid(field: &str, what: &str) -> Error {
    Error::bad_request("invalid_event", format!("field `{field}` {what}"))
}

fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => Ok(Some(s)),
        Some(_) => Err(invalid(
            &format!("data.object.{field}"),
            "must be a string of 1 to 255 characters",
        )),
    }
}

fn required_text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a str> {
    text(object, field)?.ok_or_else(|| invalid(&format!("data.object.{field}"), "is required"))
}

fn amount(object: &Map<String, Value>, field: &str) -> Result<i64> {
    object
        .get(field)
        .and_then(Value::as_i64)
        .filter(|a| *a >= 0)
        .ok_or_else(|| {
            invalid(
                &format!("data.object.{field}"),
                "must be a non-negative integer of minor units",
            )
        })
}

fn currency(object: &Map<String, Value>) -> Result<String> {
    let code = required_text(object, "currency")?.to_ascii_uppercase();
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(invalid(
            "data.object.currency",
            "must be an ISO 4217 code such as usd",
        ))
    }
}

/// A verified event, parsed.
struct Event {
    id: String,
    kind: String,
    created: i64,
    object: Map<String, Value>,
}

fn parse(payload: &[u8]) -> Result<Event> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| Error::bad_request("invalid_event", format!("the event is not JSON: {e}")))?;
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 255)
        .ok_or_else(|| invalid("id", "must be a string of 1 to 255 characters"))?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("type", "is required"))?;
    let created = value
        .get("created")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("created", "must be an integer of Unix seconds"))?;
    let object = value
        .get("data")
        .and_then(|data| data.get("object"))
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("data.object", "must be an object"))?;
    Ok(Event {
        id: id.to_owned(),
        kind: kind.to_owned(),
        created,
        object: object.clone(),
    })
}

/// Verifies, stores and applies one webhook delivery.
///
/// # Errors
///
/// [`Error::Unavailable`] without a webhook secret; the errors of [`verify_signature`];
/// [`Error::BadRequest`] (`invalid_event`) naming the field of a malformed event;
/// [`Error::Conflict`] for an event the ledger refuses; [`Error::Database`].
pub async fn receive(
    db: &Db,
    settings: &LedgerSettings,
    signature: Option<&str>,
    payload: &[u8],
) -> Result<Outcome> {
    let secret = settings
        .webhook_secret
        .as_deref()
        .ok_or(Error::Unavailable(
            "billing is not configured: no webhook secret",
        ))?;
    verify_signature(
        secret,
        signature,
        payload,
        now_ms() / 1000,
        settings.webhook_tolerance_secs,
    )?;
    let event = parse(payload)?;
    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO billing_events (id, type, created, payload, status, note, received_at) \
         VALUES ($1, $2, $3, $4, 'received', '', $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&event.id)
    .bind(&event.kind)
    .bind(event.created)
    .bind(String::from_utf8_lossy(payload).into_owned())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        let row = sqlx::query("SELECT status FROM billing_events WHERE id = $1")
            .bind(&event.id)
            .fetch_one(&mut *tx)
            .await?;
        let status: String = row.try_get("status")?;
        tx.commit().await?;
        return Ok(Outcome {
            event: event.id,
            status: "duplicate".to_owned(),
            note: format!("event received before ({status}); nothing changed"),
        });
    }
    let (status, note) = apply(&mut tx, settings, &event).await?;
    sqlx::query("UPDATE billing_events SET status = $1, note = $2 WHERE id = $3")
        .bind(status)
        .bind(&note)
        .bind(&event.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(event = %event.id, kind = %event.kind, status, %note, "billing event");
    Ok(Outcome {
        event: event.id,
        status: status.to_owned(),
        note,
    })
}

async fn apply(
    tx: &mut Tx,
    settings: &LedgerSettings,
    event: &Event,
) -> Result<(&'static str, String)> {
    let object = &event.object;
    let now = now_ms();
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
                return Ok(("unmatched", format!("no charge {charge_id} is known")));
            };
            let refunded =
                super::refunds::refund_to(tx, &charge, total, "refund", Actor::System).await?;
            Ok(if refunded.amount == 0 {
                (
                    "applied",
                    format!("charge {charge_id} refunded {total} already; nothing new"),
                )
            } else {
                (
                    "applied",
                    format!(
                        "refunded {} of charge {charge_id} (platform {}, publisher {})",
                        refunded.amount, refunded.platform, refunded.publisher
                    ),
                )
            })
        }
        "charge.dispute.created" | "charge.dispute.closed" => {
            let dispute_id = required_text(object, "id")?;
            let charge_id = required_text(object, "charge")?;
            let Some(charge) = charges::by_processor_charge(tx, charge_id).await? else {
                return Ok(("unmatched", format!("no charge {charge_id} is known")));
            };
            if event.kind == "charge.dispute.created" {
                let disputed = amount(object, "amount")?;
                super::disputes::open(tx, &charge, dispute_id, disputed).await?;
                Ok((
                    "applied",
                    format!("dispute {dispute_id} froze the publisher's part"),
                ))
            } else {
                let lost = text(object, "status")? == Some("lost");
                if super::disputes::close(tx, &charge, dispute_id, lost).await? {
                    Ok((
                        "applied",
                        format!("dispute {dispute_id} closed (lost: {lost})"),
                    ))
                } else {
                    Ok((
                        "unmatched",
                        format!("no open dispute {dispute_id} is known"),
                    ))
                }
            }
        }
        other => Ok(("ignored", format!("events of type {other} are not used"))),
    }
}

async fn invoice_paid(
    tx: &mut Tx,
    settings: &LedgerSettings,
    object: &Map<String, Value>,
    now: i64,
) -> Result<(&'static str, String)> {
    let invoice = required_text(object, "id")?;
    let paid = amount(object, "amount_paid")?;
    let currency = currency(object)?;
    let processor_charge = text(object, "charge")?;
    if paid == 0 {
        return Ok(("ignored", format!("invoice {invoice} paid nothing")));
    }
    let usage_charge = match object.get("metadata").and_then(Value::as_object) {
        Some(metadata) => text(metadata, "plinth_charge")?,
        None => None,
    };
    if let Some(charge_id) = usage_charge {
        let Some(charge) = charges::by_id(tx, charge_id).await? else {
            return Ok(("unmatched", format!("no usage charge {charge_id} is known")));
        };
        if charge.gross != paid || charge.currency != currency {
            return Ok((
                "unmatched",
                format!(
                    "invoice {invoice} paid {paid} {currency} but charge {charge_id} is {} {}",
                    charge.gross, charge.currency
                ),
            ));
        }
        charges::settle(tx, settings, &charge, processor_charge, invoice, now).await?;
        return Ok(("applied", format!("usage charge {charge_id} paid")));
    }
    let Some(subscription_id) = text(object, "subscription")? else {
        return Ok((
            "unmatched",
            format!("invoice {invoice} names no subscription"),
        ));
    };
    let Some(subscription) = super::subscriptions::by_id(tx, subscription_id).await? else {
        return Ok((
            "unmatched",
            format!("no subscription {subscription_id} is known"),
        ));
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
    Ok((
        "applied",
        if new {
            format!(
                "charge {} of {paid} {currency}: platform {}, publisher {}",
                charge.id, charge.platform_share, charge.publisher_share
            )
        } else {
            format!("invoice {invoice} was recorded before")
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_within_tolerance_only() {
        let body = br#"{"id":"evt_1"}"#;
        let header = signature_header("whsec", 1_000, body).unwrap();
        verify_signature("whsec", Some(&header), body, 1_000, 300).unwrap();
        verify_signature("whsec", Some(&header), body, 1_300, 300).unwrap();
        let late = verify_signature("whsec", Some(&header), body, 1_301, 300).unwrap_err();
        assert_eq!(late.code(), "signature_expired");
        let forged = verify_signature("other", Some(&header), body, 1_000, 300).unwrap_err();
        assert_eq!(forged.code(), "unauthenticated");
        let tampered = verify_signature("whsec", Some(&header), b"{}", 1_000, 300).unwrap_err();
        assert_eq!(tampered.code(), "unauthenticated");
        assert_eq!(
            verify_signature("whsec", None, body, 1_000, 300)
                .unwrap_err()
                .code(),
            "missing_signature"
        );
        for bad in ["", "v1=00", "t=x,v1=00", "t=1000", "t=1000,v1=zz"] {
            assert_eq!(
                verify_signature("whsec", Some(bad), body, 1_000, 300)
                    .unwrap_err()
                    .code(),
                "invalid_signature_header",
                "{bad}"
            );
        }
    }

    #[test]
    fn any_of_several_v1_signatures_may_match() {
        let body = b"{}";
        let good = signature_header("new", 5, body).unwrap();
        let old = signature_header("old", 5, body).unwrap();
        let old_sig = old.split_once(",v1=").unwrap().1;
        let both = format!("{good},v1={old_sig},v0=ignored");
        verify_signature("new", Some(&both), body, 5, 300).unwrap();
        verify_signature("old", Some(&both), body, 5, 300).unwrap();
    }
}
