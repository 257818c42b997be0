//! The payment processor's webhook: the `Stripe-Signature` header and the event body.
//!
//! - A header that verifies carries a `v1` signature equal to the HMAC-SHA256 of
//!   `"<t>.<body>"` under the secret (computed here independently) and a `t` within the
//!   tolerance of now; a header the processor would send for that body verifies at its own
//!   time, and never under another secret; no header, of any shape, makes the check panic.
//! - An event body either is refused as `invalid_event` or has an id of 1 to 255 bytes.
//!
//! Input: `<now>\n<Stripe-Signature header>\n<body>` (the seeds are real deliveries signed
//! with [`SECRET`]); a `now` that is not a number is taken as the header's `t`, and an empty
//! header line as no header.
#![no_main]

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use plinth_marketplace::fuzzing::parse_processor_event;
use plinth_marketplace::ledger::webhook::{signature_header, verify_signature};
use sha2::Sha256;

/// The webhook secret the seeds are signed with.
const SECRET: &str = "whsec_fuzz";

/// The tolerance the marketplace runs with by default, in seconds.
const TOLERANCE: u16 = 300;

struct Input<'a> {
    secret: &'a str,
    header: Option<&'a str>,
    body: &'a [u8],
    now: i64,
    signed_at: i64,
    tolerance: u16,
}

fn input(data: &[u8]) -> Option<Input<'_>> {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let now = std::str::from_utf8(parts.next()?).ok()?;
    let header = std::str::from_utf8(parts.next()?).ok()?;
    let body = parts.next().unwrap_or_default();
    let signed_at = header
        .split(',')
        .find_map(|part| part.trim().strip_prefix("t=")?.parse::<i64>().ok())
        .unwrap_or(0);
    Some(Input {
        secret: SECRET,
        header: (!header.is_empty()).then_some(header),
        body,
        now: now.trim().parse().unwrap_or(signed_at),
        signed_at,
        tolerance: TOLERANCE,
    })
}

fn expected(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(e) => panic!("HMAC takes any key: {e}"),
    };
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = input(data) else {
        return;
    };
    let tolerance = i64::from(input.tolerance);
    let header = input.header;
    if verify_signature(input.secret, header, input.body, input.now, tolerance).is_ok() {
        let header = header.unwrap_or_default();
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
                Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
                _ => {}
            }
        }
        let Some(timestamp) = timestamp else {
            panic!("verified without a timestamp: {header:?}");
        };
        let mac = expected(input.secret, timestamp, input.body);
        assert!(
            signatures.contains(&mac),
            "verified without the MAC: {header:?}"
        );
        assert!(input.now.abs_diff(timestamp) <= tolerance.unsigned_abs());
    }

    // What the processor sends verifies at its own time and, within tolerance, later.
    let Ok(sent) = signature_header(input.secret, input.signed_at, input.body) else {
        panic!("signing failed");
    };
    let result = verify_signature(input.secret, Some(&sent), input.body, input.now, tolerance);
    let in_time = input.now.abs_diff(input.signed_at) <= tolerance.unsigned_abs();
    assert_eq!(
        result.is_ok(),
        in_time,
        "{sent} at {}: {result:?}",
        input.now
    );
    let other = format!("{}x", input.secret);
    assert!(verify_signature(&other, Some(&sent), input.body, input.signed_at, tolerance).is_err());

    if let Ok((id, _kind, _created, _object)) = parse_processor_event(input.body) {
        assert!(!id.is_empty() && id.len() <= 255);
    }
});
