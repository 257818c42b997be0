//! Webhooks: where a tenant's or publisher's notifications are also delivered.
//!
//! At most one webhook per tenant or publisher. Setting one issues a new signing secret,
//! answered once; it is kept to sign deliveries (see [`super::signature`]). `enqueue` writes
//! the outbox row of a notification in the notification's own transaction; the
//! [`super::delivery`] task sends it. URLs must be `http` or `https` and, unless
//! [`crate::settings::WebhookSettings::egress`] allows private destinations, must not name a
//! private, loopback or link-local address (checked here for literal addresses, and on every
//! delivery for the addresses a name resolves to).

use std::net::IpAddr;

use plinth_host::egress::CheckedResolver;
use reqwest::Url;
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use utoipa::ToSchema;

use super::Notification;
use crate::clock::{now_ms, rfc3339};
use crate::db::{Db, Tx};
use crate::error::{ConflictOnUnique, Error, Result};
use crate::id::new_id;

/// The longest webhook URL accepted.
pub const MAX_URL_CHARS: usize = 2048;
/// How many recent deliveries `GET …/webhook` shows.
pub const RECENT_SHOWN: i64 = 20;

/// Delivery states of an outbox row.
pub mod status {
    /// Waiting for its next attempt.
    pub const PENDING: &str = "pending";
    /// The receiver answered 2xx.
    pub const DELIVERED: &str = "delivered";
    /// Every attempt failed; no more will be made.
    pub const FAILED: &str = "failed";
}

fn invalid_url(why: impl std::fmt::Display) -> Error {
    Error::bad_request("invalid_url", format!("field `url` {why}"))
}

/// Checks a webhook URL: `http` or `https`, a host, no user name or password, at most
/// [`MAX_URL_CHARS`]; unless `egress` allows private destinations, no literal address it
/// refuses and no `localhost`.
///
/// # Errors
///
/// [`Error::BadRequest`] `invalid_url` naming the field `url` and what is wrong.
pub fn check_url(text: &str, egress: &CheckedResolver) -> Result<Url> {
    if text.chars().count() > MAX_URL_CHARS {
        return Err(invalid_url(format!(
            "is longer than {MAX_URL_CHARS} characters"
        )));
    }
    let url = Url::parse(text).map_err(|e| invalid_url(format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid_url(format!(
            "must be http or https, not {:?}",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid_url("must not carry a user name or password"));
    }
    let host = url
        .host_str()
        .ok_or_else(|| invalid_url("has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let refused = match host.parse::<IpAddr>() {
        Ok(ip) => egress.check(&host, ip).is_err(),
        Err(_) => !egress.allows_private() && (host == "localhost" || host.ends_with(".localhost")),
    };
    if refused {
        return Err(invalid_url(
            "points at a private, loopback or link-local address; webhooks go to public addresses",
        ));
    }
    Ok(url)
}

/// A webhook just set: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookCreated {
    /// Where notifications are delivered.
    pub url: String,
    /// Signs every delivery (`Plinth-Signature`); shown only now.
    pub secret: String,
    /// When the webhook was first set (RFC 3339, UTC).
    pub created_at: String,
    /// When it was last set.
    pub updated_at: String,
}

/// Sets the webhook of `owner_kind` `owner_id` to `url` with a new secret, replacing an earlier
/// one (its pending deliveries go to the new URL, signed with the new secret). Returns it and
/// whether it is new.
///
/// # Errors
///
/// [`Error::BadRequest`] for a URL [`check_url`] refuses; [`Error::Database`].
pub async fn set(
    db: &Db,
    owner_kind: &str,
    owner_id: &str,
    url: &str,
    egress: &CheckedResolver,
) -> Result<(WebhookCreated, bool)> {
    let url = check_url(url.trim(), egress)?.to_string();
    let secret = super::signature::new_secret()?;
    let now = now_ms();
    let mut tx = db.begin().await?;
    let replaced = sqlx::query(
        "UPDATE webhooks SET url = $1, secret = $2, updated_at = $3 \
         WHERE owner_kind = $4 AND owner_id = $5 RETURNING created_at",
    )
    .bind(&url)
    .bind(&secret)
    .bind(now)
    .bind(owner_kind)
    .bind(owner_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (created_at, created) = match replaced {
        Some(row) => (row.try_get("created_at")?, false),
        None => {
            sqlx::query(
                "INSERT INTO webhooks (id, owner_kind, owner_id, url, secret, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(new_id())
            .bind(owner_kind)
            .bind(owner_id)
            .bind(&url)
            .bind(&secret)
            .bind(now)
            .execute(&mut *tx)
            .await
            .conflict_on_unique("webhook_changed", || {
                "the webhook was set by another request at the same time; retry".to_owned()
            })?;
            (now, true)
        }
    };
    tx.commit().await?;
    tracing::info!(owner_kind, owner_id, "webhook set");
    Ok((
        WebhookCreated {
            url,
            secret,
            created_at: rfc3339(created_at),
            updated_at: rfc3339(now),
        },
        created,
    ))
}

/// Removes the webhook of `owner_kind` `owner_id` and its deliveries, in `tx`; returns
/// whether there was one.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn forget(tx: &mut Tx, owner_kind: &str, owner_id: &str) -> Result<bool> {
    sqlx::query(
        "DELETE FROM webhook_outbox WHERE webhook_id IN \
         (SELECT id FROM webhooks WHERE owner_kind = $1 AND owner_id = $2)",
    )
    .bind(owner_kind)
    .bind(owner_id)
    .execute(&mut **tx)
    .await?;
    let removed = sqlx::query("DELETE FROM webhooks WHERE owner_kind = $1 AND owner_id = $2")
        .bind(owner_kind)
        .bind(owner_id)
        .execute(&mut **tx)
        .await?;
    Ok(removed.rows_affected() > 0)
}

/// Removes the webhook of `owner_kind` `owner_id`.
///
/// # Errors
///
/// [`Error::NotFound`] if there is none; [`Error::Database`].
pub async fn remove(db: &Db, owner_kind: &str, owner_id: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    if !forget(&mut tx, owner_kind, owner_id).await? {
        return Err(Error::not_found("webhook"));
    }
    tx.commit().await?;
    tracing::info!(owner_kind, owner_id, "webhook removed");
    Ok(())
}

/// The JSON a delivery of `notification` posts, with its delivery id.
fn delivery_body(
    event_id: &str,
    recipient_kind: &str,
    recipient_id: &str,
    notification: &Notification,
) -> Result<String> {
    serde_json::to_string(&json!({
        "id": event_id,
        "type": notification.kind,
        "created_at": notification.created_at,
        "recipient": { "kind": recipient_kind, "id": recipient_id },
        "notification": notification,
    }))
    .map_err(|e| Error::Internal(format!("webhook body: {e}")))
}

/// Queues the delivery of `notification` to the webhook of its recipient, if it has one, in
/// `tx` — the transaction that writes the notification.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] if the body cannot be serialized.
pub(crate) async fn enqueue(
    tx: &mut Tx,
    recipient_kind: &str,
    recipient_id: &str,
    notification: &Notification,
    now: i64,
) -> Result<()> {
    let event_id = new_id();
    let body = delivery_body(&event_id, recipient_kind, recipient_id, notification)?;
    sqlx::query(
        "INSERT INTO webhook_outbox (id, webhook_id, notification_id, kind, body, status, \
                                     attempts, next_attempt_at, created_at) \
         SELECT $1, w.id, $2, $3, $4, $5, 0, $6, $6 FROM webhooks w \
         WHERE w.owner_kind = $7 AND w.owner_id = $8",
    )
    .bind(&event_id)
    .bind(&notification.id)
    .bind(&notification.kind)
    .bind(&body)
    .bind(status::PENDING)
    .bind(now)
    .bind(recipient_kind)
    .bind(recipient_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One delivery as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The delivery's id, sent as `Plinth-Event-Id`.
    pub event_id: String,
    /// The notification's id.
    pub notification_id: String,
    /// The notification's kind.
    pub kind: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// Why the latest attempt failed, if it did.
    pub last_error: Option<String>,
    /// When the latest attempt was made (RFC 3339).
    pub last_attempt_at: Option<String>,
    /// When the next attempt is due (pending deliveries only; RFC 3339).
    pub next_attempt_at: Option<String>,
    /// When it was queued (RFC 3339).
    pub created_at: String,
    /// When the receiver accepted it (RFC 3339).
    pub delivered_at: Option<String>,
}

/// A webhook and how its deliveries fare (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookView {
    /// Where notifications are delivered.
    pub url: String,
    /// When it was first set (RFC 3339).
    pub created_at: String,
    /// When it was last set (RFC 3339).
    pub updated_at: String,
    /// Deliveries waiting for an attempt.
    pub pending: i64,
    /// Deliveries the receiver accepted.
    pub delivered: i64,
    /// Deliveries given up on after every attempt failed.
    pub failed: i64,
    /// The newest delivery that was given up on, with its last error.
    pub last_failure: Option<DeliveryView>,
    /// The newest deliveries, newest first.
    pub recent: Vec<DeliveryView>,
}

fn delivery_from_row(row: &sqlx::any::AnyRow) -> Result<DeliveryView> {
    let status: String = row.try_get("status")?;
    let next: i64 = row.try_get("next_attempt_at")?;
    Ok(DeliveryView {
        event_id: row.try_get("id")?,
        notification_id: row.try_get("notification_id")?,
        kind: row.try_get("kind")?,
        next_attempt_at: (status == status::PENDING).then(|| rfc3339(next)),
        status,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        last_attempt_at: row
            .try_get::<Option<i64>, _>("last_attempt_at")?
            .map(rfc3339),
        created_at: rfc3339(row.try_get("created_at")?),
        delivered_at: row.try_get::<Option<i64>, _>("delivered_at")?.map(rfc3339),
    })
}

const DELIVERY_COLUMNS: &str = "id, notification_id, kind, status, attempts, last_error, \
                                last_attempt_at, next_attempt_at, created_at, delivered_at";

/// The webhook of `owner_kind` `owner_id` with its delivery counts and recent deliveries.
///
/// # Errors
///
/// [`Error::NotFound`] if there is none; [`Error::Database`].
pub async fn show(db: &Db, owner_kind: &str, owner_id: &str) -> Result<WebhookView> {
    let hook = sqlx::query(
        "SELECT id, url, created_at, updated_at FROM webhooks WHERE owner_kind = $1 AND owner_id = $2",
    )
    .bind(owner_kind)
    .bind(owner_id)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| Error::not_found("webhook"))?;
    let id: String = hook.try_get("id")?;
    let counts = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM webhook_outbox WHERE webhook_id = $1 GROUP BY status",
    )
    .bind(&id)
    .fetch_all(db.pool())
    .await?;
    let (mut pending, mut delivered, mut failed) = (0, 0, 0);
    for row in counts {
        let n: i64 = row.try_get("n")?;
        match row.try_get::<String, _>("status")?.as_str() {
            status::PENDING => pending = n,
            status::DELIVERED => delivered = n,
            status::FAILED => failed = n,
            _ => {}
        }
    }
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox WHERE webhook_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    let recent = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&id)
        .bind(RECENT_SHOWN)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(delivery_from_row)
        .collect::<Result<Vec<_>>>()?;
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox WHERE webhook_id = $1 AND status = $2 \
         ORDER BY last_attempt_at DESC, id DESC LIMIT 1"
    );
    let last_failure = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&id)
        .bind(status::FAILED)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(delivery_from_row)
        .transpose()?;
    Ok(WebhookView {
        url: hook.try_get("url")?,
        created_at: rfc3339(hook.try_get("created_at")?),
        updated_at: rfc3339(hook.try_get("updated_at")?),
        pending,
        delivered,
        failed,
        last_failure,
        recent,
    })
}

/// Removes delivered and failed outbox rows queued before `before` (Unix ms); returns how
/// many.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn prune(db: &Db, before: i64) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM webhook_outbox WHERE status IN ($1, $2) AND created_at < $3")
            .bind(status::DELIVERED)
            .bind(status::FAILED)
            .bind(before)
            .execute(db.pool())
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_public_http() {
        let public_only = CheckedResolver::system(false);
        for good in [
            "https://hooks.example.com/plinth",
            "http://203.0.114.9:8080/x",
        ] {
            assert!(check_url(good, &public_only).is_ok(), "{good}");
        }
        for bad in [
            "ftp://example.com/",
            "not a url",
            "https://user:pw@example.com/",
            "http://127.0.0.1:9000/",
            "http://[::1]/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest",
            "http://localhost:8080/",
            "http://api.localhost/",
            &format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS)),
        ] {
            let err = check_url(bad, &public_only).unwrap_err();
            assert_eq!(err.code(), "invalid_url", "{bad}");
            assert!(err.to_string().contains("`url`"), "{err}");
        }
        assert!(check_url("http://127.0.0.1:9000/", &CheckedResolver::system(true)).is_ok());
    }
}
