//! Signatures of webhook deliveries.
//!
//! Each delivery carries `Plinth-Signature: t=<unix seconds>,v1=<hex>` where the hex is
//! HMAC-SHA256, keyed with the webhook's whole secret text (`whsec_…`), over
//! `"<t>.<body>"`. A receiver recomputes it, compares in constant time and refuses a `t` too
//! far from its clock (replays); `Plinth-Event-Id` is the same on every retry of one delivery,
//! so a receiver can drop duplicates.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "plinth-signature";
/// The header carrying the delivery's id (the same on every retry).
pub const EVENT_ID_HEADER: &str = "plinth-event-id";
/// The header carrying the notification's kind, e.g. `rating_created`.
pub const EVENT_TYPE_HEADER: &str = "plinth-event-type";
/// What every secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new random signing secret: `whsec_` and 64 hex digits (32 random bytes).
///
/// # Errors
///
/// [`Error::Internal`] if the system's random source fails.
pub fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("random: {e}")))?;
    Ok(format!("{SECRET_PREFIX}{}", hex::encode(bytes)))
}

/// The value of the signature header for `body` sent at `unix_secs`, keyed by `secret`.
pub fn header_value(secret: &str, unix_secs: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={unix_secs},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_hmac_sha256_over_t_dot_body() {
        // Computed independently (Python's hmac module).
        assert_eq!(
            header_value("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn secrets_are_random_and_prefixed() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert!(a.starts_with(SECRET_PREFIX) && a.len() == SECRET_PREFIX.len() + 64);
        assert_ne!(a, b);
    }
}
