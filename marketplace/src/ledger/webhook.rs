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
//! How a verified event is stored and applied — duplicates, events arriving before what they
//! concern, reconciliation — is [`super::processor_events`].

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::LedgerSettings;
use super::processor_events::{self, Outcome};
use crate::clock::now_ms;
use crate::db::Db;
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
    // `abs_diff`: a signed timestamp may be any i64, and `now - t` overflows for the extremes.
    if now_secs.abs_diff(timestamp) > u64::try_from(tolerance_secs).unwrap_or(0) {
        return Err(Error::bad_request(
            "signature_expired",
            format!(
                "the webhook's signed timestamp {timestamp} is more than {tolerance_secs} s from now"
            ),
        ));
    }
    Ok(())
}

/// Verifies one webhook delivery, then stores and applies it
/// ([`super::processor_events`]).
///
/// # Errors
///
/// [`Error::Unavailable`] without a webhook secret; the errors of [`verify_signature`];
/// [`Error::BadRequest`] (`invalid_event`) naming the field of a malformed event;
/// [`Error::Conflict`] for an event the ledger refuses; [`Error::Database`].
pub async fn receive(
    db: &Db,
    settings: &LedgerSettings,
    billing: &crate::billing::BillingSettings,
    signature: Option<&str>,
    payload: &[u8],
) -> Result<Outcome> {
    let secret = settings
        .webhook_secret
        .as_deref()
        .ok_or(Error::Unavailable(
            "billing is not configured: no webhook secret",
        ))?;
    let now = now_ms();
    verify_signature(
        secret,
        signature,
        payload,
        now / 1000,
        settings.webhook_tolerance_secs,
    )?;
    let event = processor_events::parse(payload)?;
    processor_events::deliver(db, settings, billing, &event, payload, now).await
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

    /// Found by `fuzz/run.sh` (target `billing_webhook`): a correctly signed header whose `t`
    /// is far from now overflowed `now - t` (a panic in debug builds, a wrapped comparison
    /// that could accept it in release builds).
    #[test]
    fn extreme_signed_timestamps_are_expired_not_overflowed() {
        let body = b"{}";
        for (signed_at, now) in [(i64::MIN, 1_000), (i64::MAX, -1_000), (i64::MIN, i64::MAX)] {
            let header = signature_header("whsec", signed_at, body).unwrap();
            let err = verify_signature("whsec", Some(&header), body, now, 300).unwrap_err();
            assert_eq!(err.code(), "signature_expired", "t={signed_at} now={now}");
        }
        let header = signature_header("whsec", i64::MIN, body).unwrap();
        verify_signature("whsec", Some(&header), body, i64::MIN + 300, 300).unwrap();
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
