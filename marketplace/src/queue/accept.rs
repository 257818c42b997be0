//! Accepting an asynchronous event: stored durably before the caller hears 202, once per
//! idempotency key, within the tenant's queue bound.

use sha2::{Digest, Sha256};

use super::QUEUED;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::id::new_id;
use crate::tenants::{Plan, Tenant};

/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// An event in the queue, as accepting it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The event's id.
    pub id: String,
    /// Its status now (`queued` for a new event; a replayed request sees the first one's).
    pub status: String,
    /// Whether an earlier request with the same idempotency key created it.
    pub replayed: bool,
}

/// What a caller asks to queue.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// The topic (checked by the caller).
    pub topic: &'a str,
    /// The payload.
    pub payload: &'a [u8],
    /// The caller's `Idempotency-Key`, if it sent one.
    pub idempotency_key: Option<&'a str>,
}

/// Checks an `Idempotency-Key` header value: 1 to [`MAX_IDEMPOTENCY_KEY`] printable ASCII
/// characters.
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_idempotency_key`).
pub fn check_idempotency_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::bad_request(
            "invalid_idempotency_key",
            format!(
                "header `Idempotency-Key` must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII \
                 characters without spaces"
            ),
        ));
    }
    Ok(())
}

/// Queues `event` for `tenant` (already through the admission gate), due at once. With an
/// idempotency key seen before, returns the event it created, if the request was the same.
///
/// # Errors
///
/// [`Error::Conflict`] (`idempotency_key_reused`) when the key came with another topic or
/// payload; [`Error::QueueFull`] when the tenant has its plan's `max_queued_events` waiting;
/// [`Error::Database`].
pub async fn accept(
    db: &Db,
    tenant: &Tenant,
    plan: &Plan,
    event: &NewEvent<'_>,
    now: i64,
) -> Result<Accepted> {
    let digest = request_digest(event.topic, event.payload);
    if let Some(key) = event.idempotency_key {
        check_idempotency_key(key)?;
        if let Some(seen) = earlier(db, &tenant.id, key, &digest).await? {
            return Ok(seen);
        }
    }
    room(db, tenant, plan).await?;
    let id = new_id();
    let inserted = sqlx::query(
        "INSERT INTO queued_events (id, tenant_id, root_id, topic, payload, depth, \
             idempotency_key, request_digest, status, max_attempts, budget, next_attempt_at, \
             created_at) \
         VALUES ($1, $2, $1, $3, $4, 0, $5, $6, $7, $8, $9, $10, $10)",
    )
    .bind(&id)
    .bind(&tenant.id)
    .bind(event.topic)
    .bind(event.payload)
    .bind(event.idempotency_key)
    .bind(&digest)
    .bind(QUEUED)
    .bind(plan.event_attempts.max(1))
    .bind(plan.max_invocations_per_event.max(1))
    .bind(now)
    .execute(db.pool())
    .await
    .map_err(Error::from);
    match (inserted, event.idempotency_key) {
        (Ok(_), _) => Ok(Accepted {
            id,
            status: QUEUED.to_owned(),
            replayed: false,
        }),
        // The same key raced in from another request: that one's event is the answer.
        (Err(e), Some(key)) if e.is_unique_violation() => earlier(db, &tenant.id, key, &digest)
            .await?
            .ok_or_else(|| Error::Internal("an idempotency key's event vanished".to_owned())),
        (Err(e), _) => Err(e),
    }
}

/// Refuses a new event when the tenant has its plan's `max_queued_events` waiting. Requests
/// arriving at the same moment may each pass: the bound holds within the requests in flight.
async fn room(db: &Db, tenant: &Tenant, plan: &Plan) -> Result<()> {
    let waiting: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM queued_events \
                               WHERE tenant_id = $1 AND status = $2 LIMIT $3) waiting",
    )
    .bind(&tenant.id)
    .bind(QUEUED)
    .bind(plan.max_queued_events)
    .fetch_one(db.pool())
    .await?;
    if waiting >= plan.max_queued_events {
        return Err(Error::QueueFull {
            message: format!(
                "tenant {:?} has {waiting} events waiting in the queue, the most plan {:?} \
                 allows (max_queued_events); retry when some are delivered",
                tenant.slug, plan.name
            ),
            retry_after_secs: 1,
        });
    }
    Ok(())
}

/// The event an earlier request with `key` created, if the request was the same.
async fn earlier(db: &Db, tenant_id: &str, key: &str, digest: &str) -> Result<Option<Accepted>> {
    let row: Option<(String, Option<String>, String)> = sqlx::query_as(
        "SELECT id, request_digest, status FROM queued_events \
         WHERE tenant_id = $1 AND idempotency_key = $2",
    )
    .bind(tenant_id)
    .bind(key)
    .fetch_optional(db.pool())
    .await?;
    let Some((id, stored, status)) = row else {
        return Ok(None);
    };
    if stored.as_deref() != Some(digest) {
        return Err(Error::conflict(
            "idempotency_key_reused",
            format!(
                "the Idempotency-Key was used for event {id} with another topic or payload; \
                 use a new key for a new event"
            ),
        ));
    }
    Ok(Some(Accepted {
        id,
        status,
        replayed: true,
    }))
}

/// `sha256:<hex>` of the topic and payload: what makes two requests "the same".
fn request_digest(topic: &str, payload: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update((topic.len() as u64).to_be_bytes());
    hash.update(topic.as_bytes());
    hash.update(payload);
    format!("sha256:{}", hex::encode(hash.finalize()))
}

/// Puts a dead event back in the queue for the plugins whose delivery failed for good, as if
/// it were new (its attempts start again). Returns its id and status.
///
/// # Errors
///
/// [`Error::NotFound`] when the tenant has no such event; [`Error::Conflict`]
/// (`not_dead`) when it is not a dead letter; [`Error::QueueFull`] as [`accept`];
/// [`Error::Database`].
pub async fn replay(db: &Db, tenant: &Tenant, plan: &Plan, id: &str, now: i64) -> Result<Accepted> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM queued_events WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(&tenant.id)
            .fetch_optional(db.pool())
            .await?;
    let status = status.ok_or_else(|| Error::not_found(format!("event {id:?}")))?;
    if status != super::DEAD {
        return Err(Error::conflict(
            "not_dead",
            format!("event {id} is {status}; only dead letters can be replayed"),
        ));
    }
    room(db, tenant, plan).await?;
    let replayed = sqlx::query(
        "UPDATE queued_events SET status = $1, pending = failed, failed = NULL, attempts = 0, \
                                  max_attempts = $2, next_attempt_at = $3, finished_at = NULL, \
                                  lease_token = NULL, lease_until = NULL \
         WHERE id = $4 AND tenant_id = $5 AND status = $6",
    )
    .bind(QUEUED)
    .bind(plan.event_attempts.max(1))
    .bind(now)
    .bind(id)
    .bind(&tenant.id)
    .bind(super::DEAD)
    .execute(db.pool())
    .await?;
    if replayed.rows_affected() == 0 {
        return Err(Error::conflict(
            "not_dead",
            format!("event {id} was replayed by another request"),
        ));
    }
    Ok(Accepted {
        id: id.to_owned(),
        status: QUEUED.to_owned(),
        replayed: false,
    })
}
