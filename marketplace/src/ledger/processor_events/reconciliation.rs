//! Stored events listed, and reconciliation: waiting events tried again, those past the
//! deadline marked unmatched, and unmatched events reported to operators.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{Applied, Status, apply_waiting, try_again};
use crate::audit::{self, Actor};
use crate::clock::rfc3339;
use crate::db::Db;
use crate::error::Result;
use crate::ledger::{LedgerSettings, lock};

/// The most events one listing returns.
pub const MAX_LISTED: i64 = 500;

/// A stored event as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StoredEvent {
    /// The processor's event id.
    pub id: String,
    /// Its type, e.g. `charge.refunded`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the processor created it, Unix seconds.
    pub created: i64,
    /// `applied`, `pending`, `unmatched` or `ignored`.
    pub status: String,
    /// What was done, or what it waits for.
    pub note: String,
    /// The processor charge it concerns, if it names one.
    pub charge: Option<String>,
    /// The processor invoice it concerns, if it names one.
    pub invoice: Option<String>,
    /// RFC 3339: when it first arrived.
    pub received_at: String,
    /// RFC 3339: when it was applied, if it was.
    pub applied_at: Option<String>,
    /// RFC 3339: when operators were told it is unmatched, if they were.
    pub reported_at: Option<String>,
}

const COLUMNS: &str = "id, type, created, payload, status, note, charge_ref, invoice_ref, \
    received_at, applied_at, reported_at";

fn stored_from_row(row: &AnyRow) -> Result<StoredEvent> {
    Ok(StoredEvent {
        id: row.try_get("id")?,
        kind: row.try_get("type")?,
        created: row.try_get("created")?,
        status: row.try_get("status")?,
        note: row.try_get("note")?,
        charge: row.try_get("charge_ref")?,
        invoice: row.try_get("invoice_ref")?,
        received_at: rfc3339(row.try_get("received_at")?),
        applied_at: row.try_get::<Option<i64>, _>("applied_at")?.map(rfc3339),
        reported_at: row.try_get::<Option<i64>, _>("reported_at")?.map(rfc3339),
    })
}

/// What a reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReconcileReport {
    /// Waiting events applied now.
    pub applied: i64,
    /// Events still pending (within the deadline).
    pub pending: i64,
    /// Events newly reported to operators as unmatched.
    pub reported: i64,
    /// Every unmatched event, oldest first (at most [`MAX_LISTED`]).
    pub unmatched: Vec<StoredEvent>,
}

/// Tries every pending event again in the processor's order, one transaction each; marks those
/// still pending `settings.unmatched_after_ms` after they arrived unmatched, and reports every
/// unmatched event not reported yet to operators (inbox and audit log).
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn reconcile(db: &Db, settings: &LedgerSettings, now: i64) -> Result<ReconcileReport> {
    let mut report = ReconcileReport::default();
    let ids: Vec<String> =
        sqlx::query("SELECT id FROM billing_events WHERE status = 'pending' ORDER BY created, id")
            .fetch_all(db.pool())
            .await?
            .iter()
            .map(|row| row.try_get("id"))
            .collect::<Result<_, _>>()?;
    for id in ids {
        let mut tx = lock::begin(db).await?;
        let row =
            sqlx::query("SELECT payload, status, received_at FROM billing_events WHERE id = $1")
                .bind(&id)
                .fetch_one(&mut *tx)
                .await?;
        if row.try_get::<String, _>("status")? != Status::Pending.as_str() {
            continue;
        }
        let payload: String = row.try_get("payload")?;
        let received_at: i64 = row.try_get("received_at")?;
        match try_again(&mut tx, settings, &id, payload.as_bytes(), now).await? {
            Applied::Done { charge, .. } => {
                report.applied += 1;
                if let Some(charge) = charge {
                    apply_waiting(&mut tx, settings, &charge, now).await?;
                }
            }
            Applied::Waiting(_)
                if now.saturating_sub(received_at) >= settings.unmatched_after_ms =>
            {
                sqlx::query(
                    "UPDATE billing_events SET status = 'unmatched', reported_at = NULL \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            }
            Applied::Waiting(_) => report.pending += 1,
            Applied::Unmatched(_) | Applied::Ignored(_) => {}
        }
        tx.commit().await?;
    }
    report.reported = report_unmatched(db, now).await?;
    report.unmatched = list(db, Some(Status::Unmatched), MAX_LISTED).await?;
    Ok(report)
}

/// Tells operators of every unmatched event not reported yet: one inbox notification and one
/// audit entry each. Answers how many.
async fn report_unmatched(db: &Db, now: i64) -> Result<i64> {
    let mut tx = lock::begin(db).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM billing_events WHERE status = 'unmatched' AND reported_at IS NULL \
         ORDER BY created, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *tx)
        .await?;
    let mut reported = 0;
    for row in &rows {
        let event = stored_from_row(row)?;
        let details = json!({"event": event.id, "type": event.kind, "note": event.note,
                             "charge": event.charge, "invoice": event.invoice});
        crate::notifications::notify(
            &mut tx,
            crate::notifications::OPERATORS.kind,
            crate::notifications::OPERATORS.id,
            "billing_event_unmatched",
            &format!(
                "Processor event {} ({}) matches nothing in the ledger: {}",
                event.id, event.kind, event.note
            ),
            details.clone(),
        )
        .await?;
        audit::record(
            &mut tx,
            audit::Entry {
                actor: Actor::System,
                action: "billing.event_unmatched",
                tenant_id: None,
                subject: format!("billing_event:{}", event.id),
                details,
            },
        )
        .await?;
        sqlx::query("UPDATE billing_events SET reported_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&event.id)
            .execute(&mut *tx)
            .await?;
        reported += 1;
    }
    tx.commit().await?;
    Ok(reported)
}

/// Stored events, in the processor's order (`created`, then id); only those in `status` if
/// given; at most `limit` (capped at [`MAX_LISTED`]).
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn list(db: &Db, status: Option<Status>, limit: i64) -> Result<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM billing_events WHERE ($1 IS NULL OR status = $1) \
         ORDER BY created, id LIMIT $2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(status.map(Status::as_str))
        .bind(limit.clamp(1, MAX_LISTED))
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(stored_from_row).collect()
}

/// How many stored events wait (`pending`) or were reported (`unmatched`): what the operator's
/// console shows.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn waiting_counts(db: &Db) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS BIGINT) \
         AS pending, CAST(COALESCE(SUM(CASE WHEN status = 'unmatched' THEN 1 ELSE 0 END), 0) \
         AS BIGINT) AS unmatched FROM billing_events",
    )
    .fetch_one(db.pool())
    .await?;
    Ok((row.try_get("pending")?, row.try_get("unmatched")?))
}
