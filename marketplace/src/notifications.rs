//! Inboxes of publishers and tenants, written in the transaction of the change they report,
//! and delivered to the webhook the recipient configured.
//!
//! [`notify`] is what every module calls to leave a message. When the recipient has a webhook
//! ([`webhooks`]), the same transaction writes an outbox row for it, so a notification and its
//! delivery exist together or not at all; the [`delivery`] task of a running server sends due
//! rows, signed ([`signature`]), retrying with backoff up to a bound. The routes (`routes`)
//! read the inboxes (`?unread=true`), mark notifications read or unread, and configure webhooks.

pub mod delivery;
mod routes;
pub mod signature;
pub mod webhooks;

pub(crate) use routes::routes;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::clock::{now_ms, rfc3339};
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::id::new_id;

/// The most notifications one listing returns.
pub const MAX_LISTED: i64 = 200;

/// Leaves a notification for `recipient_kind` (`publisher` or `tenant`) `recipient_id`, in the
/// transaction of the change it reports; if the recipient has a webhook, its delivery is
/// queued in the same transaction.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] if `payload` cannot be serialized.
pub async fn notify(
    tx: &mut Tx,
    recipient_kind: &str,
    recipient_id: &str,
    kind: &str,
    message: &str,
    payload: serde_json::Value,
) -> Result<()> {
    let text =
        serde_json::to_string(&payload).map_err(|e| Error::Internal(format!("payload: {e}")))?;
    let now = now_ms();
    let notification = Notification {
        id: new_id(),
        kind: kind.to_owned(),
        message: message.to_owned(),
        payload,
        created_at: rfc3339(now),
        read: false,
    };
    sqlx::query(
        "INSERT INTO notifications (id, recipient_kind, recipient_id, kind, message, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&notification.id)
    .bind(recipient_kind)
    .bind(recipient_id)
    .bind(kind)
    .bind(message)
    .bind(text)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    webhooks::enqueue(tx, recipient_kind, recipient_id, &notification, now).await
}

/// One notification.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Notification {
    /// The notification's id.
    pub id: String,
    /// What happened, e.g. `review_decided`.
    pub kind: String,
    /// A sentence for people.
    pub message: String,
    /// Data for programs (ids, versions, reasons).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Whether it was marked read.
    pub read: bool,
}

/// An inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    /// Newest first.
    pub items: Vec<Notification>,
    /// How many notifications of the inbox are unread (all of them, not only those listed).
    pub unread_count: i64,
}

/// Whose inbox: `publisher`, `tenant` or `operator`, and its id.
#[derive(Debug, Clone, Copy)]
pub struct Inbox<'a> {
    /// `publisher`, `tenant` or `operator`.
    pub kind: &'a str,
    /// The publisher's or tenant's id (`platform` for the operators').
    pub id: &'a str,
}

/// The operators' shared inbox: what the platform needs a person to look at (e.g. a processor
/// event that matches nothing in the ledger).
pub const OPERATORS: Inbox<'static> = Inbox {
    kind: "operator",
    id: "platform",
};

const COLUMNS: &str = "id, kind, message, payload, created_at, read_at";

fn from_row(row: &AnyRow) -> Result<Notification> {
    let payload: String = row.try_get("payload")?;
    Ok(Notification {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        message: row.try_get("message")?,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        created_at: rfc3339(row.try_get("created_at")?),
        read: row.try_get::<Option<i64>, _>("read_at")?.is_some(),
    })
}

/// The newest notifications (at most [`MAX_LISTED`]) of `recipient_kind` `recipient_id`,
/// newest first.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn list(db: &Db, recipient_kind: &str, recipient_id: &str) -> Result<Vec<Notification>> {
    let inbox = Inbox {
        kind: recipient_kind,
        id: recipient_id,
    };
    read_inbox(db, inbox, false).await
}

/// The newest notifications (at most [`MAX_LISTED`]) of `inbox`, newest first; only unread
/// ones if `unread_only`.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn read_inbox(db: &Db, inbox: Inbox<'_>, unread_only: bool) -> Result<Vec<Notification>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications \
         WHERE recipient_kind = $1 AND recipient_id = $2 {} \
         ORDER BY created_at DESC, id DESC LIMIT $3",
        if unread_only {
            "AND read_at IS NULL"
        } else {
            ""
        }
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(inbox.kind)
        .bind(inbox.id)
        .bind(MAX_LISTED)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// How many notifications of `inbox` are unread.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn unread_count(db: &Db, inbox: Inbox<'_>) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications \
         WHERE recipient_kind = $1 AND recipient_id = $2 AND read_at IS NULL",
    )
    .bind(inbox.kind)
    .bind(inbox.id)
    .fetch_one(db.pool())
    .await?)
}

/// Marks notification `id` of `inbox` read (keeping the time it was first read) or unread.
///
/// # Errors
///
/// [`Error::NotFound`] if `inbox` has no such notification; [`Error::Database`].
pub async fn mark(db: &Db, inbox: Inbox<'_>, id: &str, read: bool) -> Result<Notification> {
    // Read: the time it was first read is kept. Unread: the time is cleared.
    let read_at = read.then(now_ms);
    let mut tx = db.begin().await?;
    let changed = sqlx::query(
        "UPDATE notifications SET read_at = CASE WHEN $1 = 1 THEN COALESCE(read_at, $2) END \
         WHERE id = $3 AND recipient_kind = $4 AND recipient_id = $5",
    )
    .bind(i64::from(read))
    .bind(read_at)
    .bind(id)
    .bind(inbox.kind)
    .bind(inbox.id)
    .execute(&mut *tx)
    .await?;
    if changed.rows_affected() == 0 {
        return Err(Error::not_found(format!("notification {id:?}")));
    }
    let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    from_row(&row)
}

/// Marks every unread notification of `inbox` read; returns how many were.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn mark_all_read(db: &Db, inbox: Inbox<'_>) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE notifications SET read_at = $1 \
         WHERE recipient_kind = $2 AND recipient_id = $3 AND read_at IS NULL",
    )
    .bind(now_ms())
    .bind(inbox.kind)
    .bind(inbox.id)
    .execute(db.pool())
    .await?
    .rows_affected())
}
