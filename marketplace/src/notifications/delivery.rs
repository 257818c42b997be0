//! The deliverer: a task of the running server that sends due outbox rows to their webhooks.
//!
//! Every [`WebhookSettings::poll_every`] it claims up to as many due rows as it has free
//! delivery slots ([`WebhookSettings::concurrency`]) and posts each, signed, with a timeout.
//! Claiming moves a row's `next_attempt_at` forward by a lease and counts the attempt in one
//! conditional update, so servers sharing a PostgreSQL database never send one row twice at
//! once, and a row whose server died mid-attempt is picked up again when the lease ends. A 2xx
//! answer marks the row delivered; anything else (another status, a timeout, a refused or
//! private address) schedules the next attempt after an exponential backoff, and after
//! [`WebhookSettings::max_attempts`] marks it failed with the last error.
//!
//! Deliveries go through an [`EgressClient`] on [`WebhookSettings::egress`], the resolver
//! plugins' outbound HTTP uses too: the URL's name is looked up once per connection, every
//! address is checked (unless private addresses are allowed, a name with any private, loopback
//! or link-local address is refused) and only checked addresses are connected to, so a name
//! cannot rebind between the check and the connection. Redirects are not followed and proxies
//! are not used.

use std::sync::Arc;
use std::time::Duration;

use plinth_host::egress::{EgressClient, EgressError, EgressOptions};
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use sqlx::Row;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use super::signature::{EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, header_value};
use super::webhooks::{check_url, status};
use crate::clock::now_ms;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::settings::WebhookSettings;
use crate::state::AppState;

/// The longest error text kept for a failed attempt.
const MAX_ERROR_CHARS: usize = 500;

/// The wait after the `attempts`-th failed attempt: `backoff · 2^(attempts-1)`, at most
/// `max_backoff`.
pub fn backoff(settings: &WebhookSettings, attempts: u32) -> Duration {
    crate::queue::backoff::exponential(settings.backoff, settings.max_backoff, attempts)
}

/// Starts the deliverer of `state`'s server; abort the handle to stop it (deliveries in
/// flight stop with it and are retried after their lease).
pub(crate) fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let settings = state.settings().webhooks.clone();
        let client = match client(&settings) {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "webhook deliveries are off: no HTTP client");
                return;
            }
        };
        let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        let mut in_flight = JoinSet::new();
        let mut interval = tokio::time::interval(settings.poll_every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            while in_flight.try_join_next().is_some() {}
            let free = slots.available_permits();
            if free == 0 {
                continue;
            }
            let due = match claim_due(state.db(), &settings, free).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, "cannot read due webhook deliveries; will retry");
                    continue;
                }
            };
            for delivery in due {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let db = state.db().clone();
                let client = client.clone();
                let settings = settings.clone();
                in_flight.spawn(async move {
                    let outcome = send(&client, &settings, &delivery).await;
                    if let Err(error) = finish(&db, &settings, &delivery, outcome).await {
                        tracing::warn!(%error, event = %delivery.id, "cannot record a webhook delivery");
                    }
                    drop(slot);
                });
            }
        }
    })
}

/// The HTTP client deliveries use: a timeout, connections kept between deliveries, the
/// settings' checked resolver (no redirects, no proxy).
fn client(settings: &WebhookSettings) -> Result<EgressClient> {
    EgressClient::new(
        settings.egress.clone(),
        EgressOptions {
            connect_timeout: settings.timeout,
            timeout: Some(settings.timeout),
            reuse_connections: true,
            user_agent: Some(concat!("plinth-webhooks/", env!("CARGO_PKG_VERSION"))),
        },
    )
    .map_err(|e| Error::Internal(format!("webhook client: {e}")))
}

/// A claimed delivery.
#[derive(Debug, Clone)]
struct Due {
    id: String,
    kind: String,
    body: String,
    attempts: i64,
    url: String,
    secret: String,
}

/// Claims up to `most` due deliveries: each claim counts the attempt and leases the row until
/// the attempt must have ended.
async fn claim_due(db: &Db, settings: &WebhookSettings, most: usize) -> Result<Vec<Due>> {
    let now = now_ms();
    let candidates: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM webhook_outbox WHERE status = $1 AND next_attempt_at <= $2 \
         ORDER BY next_attempt_at, id LIMIT $3",
    )
    .bind(status::PENDING)
    .bind(now)
    .bind(i64::try_from(most).unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await?;
    let lease = i64::try_from((settings.timeout * 2).as_millis()).unwrap_or(i64::MAX);
    let mut claimed = Vec::with_capacity(candidates.len());
    for id in candidates {
        let row = sqlx::query(
            "UPDATE webhook_outbox SET next_attempt_at = $1, attempts = attempts + 1, \
                                       last_attempt_at = $2 \
             WHERE id = $3 AND status = $4 AND next_attempt_at <= $2 \
             RETURNING webhook_id, kind, body, attempts",
        )
        .bind(now.saturating_add(lease))
        .bind(now)
        .bind(&id)
        .bind(status::PENDING)
        .fetch_optional(db.pool())
        .await?;
        let Some(row) = row else {
            continue; // another deliverer claimed it first
        };
        let webhook_id: String = row.try_get("webhook_id")?;
        let Some(hook) = sqlx::query("SELECT url, secret FROM webhooks WHERE id = $1")
            .bind(&webhook_id)
            .fetch_optional(db.pool())
            .await?
        else {
            continue; // removed meanwhile, with its deliveries
        };
        claimed.push(Due {
            id,
            kind: row.try_get("kind")?,
            body: row.try_get("body")?,
            attempts: row.try_get("attempts")?,
            url: hook.try_get("url")?,
            secret: hook.try_get("secret")?,
        });
    }
    Ok(claimed)
}

/// Posts one delivery; `Ok` on a 2xx answer, else why not.
async fn send(
    client: &EgressClient,
    settings: &WebhookSettings,
    delivery: &Due,
) -> Result<(), String> {
    let url = check_url(&delivery.url, &settings.egress).map_err(|e| e.to_string())?;
    let unix_secs = now_ms() / 1000;
    let signature = header_value(&delivery.secret, unix_secs, delivery.body.as_bytes());
    let mut request = reqwest::Request::new(reqwest::Method::POST, url);
    let headers = [
        (CONTENT_TYPE, "application/json"),
        (
            HeaderName::from_static(SIGNATURE_HEADER),
            signature.as_str(),
        ),
        (
            HeaderName::from_static(EVENT_ID_HEADER),
            delivery.id.as_str(),
        ),
        (
            HeaderName::from_static(EVENT_TYPE_HEADER),
            delivery.kind.as_str(),
        ),
    ];
    for (name, value) in headers {
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("the {name} header cannot carry {value:?}"))?;
        request.headers_mut().insert(name, value);
    }
    *request.body_mut() = Some(delivery.body.clone().into());
    let response = client.execute(request).await.map_err(|e| describe(&e))?;
    let code = response.status();
    if code.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered HTTP {}", code.as_u16()))
    }
}

/// A sentence for a failed request, with its causes and without the URL.
fn describe(error: &EgressError) -> String {
    let error = match error {
        EgressError::Resolve(refused) => return format!("could not connect: {refused}"),
        EgressError::Request(error) | EgressError::Client(error) => error,
    };
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Records the outcome of an attempt: delivered, failed for good, or due again after the
/// backoff.
async fn finish(
    db: &Db,
    settings: &WebhookSettings,
    delivery: &Due,
    outcome: Result<(), String>,
) -> Result<()> {
    let now = now_ms();
    match outcome {
        Ok(()) => {
            sqlx::query(
                "UPDATE webhook_outbox SET status = $1, delivered_at = $2, last_error = NULL \
                 WHERE id = $3",
            )
            .bind(status::DELIVERED)
            .bind(now)
            .bind(&delivery.id)
            .execute(db.pool())
            .await?;
            tracing::debug!(event = %delivery.id, "webhook delivered");
        }
        Err(error) => {
            let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
            let attempts = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
            let (state, next) = if attempts >= settings.max_attempts {
                (status::FAILED, now)
            } else {
                let wait =
                    i64::try_from(backoff(settings, attempts).as_millis()).unwrap_or(i64::MAX);
                (status::PENDING, now.saturating_add(wait))
            };
            sqlx::query(
                "UPDATE webhook_outbox SET status = $1, next_attempt_at = $2, last_error = $3 \
                 WHERE id = $4",
            )
            .bind(state)
            .bind(next)
            .bind(&error)
            .bind(&delivery.id)
            .execute(db.pool())
            .await?;
            tracing::info!(event = %delivery.id, attempts, status = state, %error, "webhook attempt failed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let settings = WebhookSettings {
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(300),
            ..WebhookSettings::default()
        };
        let waits: Vec<u64> = (1..=7)
            .map(|attempt| backoff(&settings, attempt).as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 300, 300, 300]);
        assert_eq!(backoff(&settings, u32::MAX), Duration::from_secs(300));
    }
}
