//! Webhook events, signed as Stripe signs them: `Stripe-Signature: t=<unix seconds>,v1=<hex>`,
//! the hex being HMAC-SHA256 keyed with the webhook secret over `"<t>.<body>"`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::SentEvent;
use crate::store::now;

/// The `Stripe-Signature` header value for `body` at `timestamp`.
pub(crate) fn signature(secret: &str, body: &str, timestamp: i64) -> String {
    // HMAC takes keys of any length: this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return format!("t={timestamp},v1=");
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// POSTs each of `events` to `url`, in order, one after the other; a failure is logged and
/// the next event is sent anyway (tests deliver again with [`crate::ProcessorDouble::events`]).
pub(crate) async fn deliver(http: &reqwest::Client, secret: &str, url: &str, events: &[SentEvent]) {
    for event in events {
        let result = http
            .post(url)
            .header("Stripe-Signature", signature(secret, &event.body, now()))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(event.body.clone())
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(event = %event.id, kind = %event.kind, status = response.status().as_u16(), "webhook delivered");
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let answer = response.text().await.unwrap_or_default();
                tracing::warn!(event = %event.id, kind = %event.kind, status, answer = %answer.chars().take(500).collect::<String>(), "webhook refused");
            }
            Err(error) => {
                tracing::warn!(event = %event.id, kind = %event.kind, %error, "webhook not delivered");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn signs_timestamp_dot_body_with_hmac_sha256() {
        // echo -n '1700000000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test
        let header = signature("whsec_test", r#"{"id":"evt_1"}"#, 1_700_000_000);
        let (t, v1) = header.split_once(',').unwrap();
        assert_eq!(t, "t=1700000000");
        let hex = v1.strip_prefix("v1=").unwrap();
        assert_eq!(
            hex,
            "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
        );
        assert_eq!(
            header,
            signature("whsec_test", r#"{"id":"evt_1"}"#, 1_700_000_000)
        );
        assert_ne!(
            header,
            signature("whsec_other", r#"{"id":"evt_1"}"#, 1_700_000_000)
        );
    }
}
