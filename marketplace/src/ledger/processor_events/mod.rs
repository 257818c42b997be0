//! The payment processor's events: stored by id, applied to the ledger, and — when they arrive
//! before what they concern — kept pending and applied later, in the processor's order.
//!
//! Stripe delivers each event at least once, in no guaranteed order, and retries a delivery
//! that was not answered 2xx for up to three days. So:
//!
//! - every event is stored by its id in `billing_events` in the transaction that applies it; a
//!   delivery of an id stored before changes nothing (`duplicate`) unless that event is still
//!   waiting, in which case it is tried again;
//! - an event whose object is not known yet — a refund or dispute of a charge whose payment has
//!   not arrived, a dispute closed before it was opened, a refund of a charge under dispute, an
//!   invoice of a subscription not known — is stored as **pending** and answered 202: it is
//!   durable, so the processor need not retry it. When an event changes a charge, the events
//!   waiting on that charge (by its processor charge or invoice id) are tried again at once, in
//!   the processor's order (`created`, then id), until none of them moves (a closing waits for
//!   its opening). [`reconcile`] tries every pending event again periodically, and marks those
//!   still pending after [`super::LedgerSettings::unmatched_after_ms`] **unmatched**;
//! - an event that can never apply as it stands (an invoice naming no subscription, one paying
//!   another amount than its usage charge, or a waiting event refused when tried again) is
//!   stored as **unmatched** at once; unmatched events are reported to operators (their inbox
//!   and the audit log) and listed by `GET /v1/billing/events`, and still applied should their
//!   object arrive;
//! - an event the ledger refuses on arrival (a refund above the charge) is answered 409 and not
//!   stored, so that the processor's retries show it failing; one that could not be stored for
//!   a fault is answered 5xx, and the processor's retry brings it again.
//!
//! All of this runs under the ledger lock ([`super::lock`]), so an event and the one creating
//! its charge are never applied side by side, and none is left waiting for a charge that exists.
//!
//! `event` reads an event, `apply` applies one, this module stores deliveries and tries
//! waiting events again, and `reconciliation` lists, reconciles and reports them.

mod apply;
mod event;
mod invoices;
mod reconciliation;

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

pub(crate) use apply::{Applied, apply};
pub(crate) use event::{Event, parse};
pub(crate) use invoices::concerns_platform_invoice;
pub use reconciliation::{
    MAX_LISTED, ReconcileReport, StoredEvent, list, reconcile, waiting_counts,
};

use super::LedgerSettings;
use super::charges;
use super::lock;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};

/// Where a stored event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Applied to the ledger (or found to change nothing).
    Applied,
    /// Waits for its object; tried again when it arrives and by [`reconcile`].
    Pending,
    /// Matches nothing known and was reported to operators (or will be at the next
    /// [`reconcile`]); still applied if its object arrives.
    Unmatched,
    /// Of a type the ledger does not use, or paying nothing.
    Ignored,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Pending => "pending",
            Status::Unmatched => "unmatched",
            Status::Ignored => "ignored",
        }
    }

    /// The status called `name`.
    pub fn parse(name: &str) -> Option<Status> {
        [
            Status::Applied,
            Status::Pending,
            Status::Unmatched,
            Status::Ignored,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Whether an event in this status still waits to be applied.
    fn waiting(self) -> bool {
        matches!(self, Status::Pending | Status::Unmatched)
    }
}

/// What a delivery did, as answered to the processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Outcome {
    /// The event's id.
    pub event: String,
    /// `applied`, `pending` (stored; applied when its object arrives), `unmatched` (stored and
    /// reported), `ignored` or `duplicate`.
    pub status: String,
    /// What was done.
    pub note: String,
}

/// Stores and applies a verified delivery of `event` (raw JSON `payload`) at `now`.
///
/// # Errors
///
/// As [`apply`]; on an error nothing is stored.
pub(crate) async fn deliver(
    db: &Db,
    settings: &LedgerSettings,
    billing: &crate::billing::BillingSettings,
    event: &Event,
    payload: &[u8],
    now: i64,
) -> Result<Outcome> {
    let mut tx = lock::begin(db).await?;
    let (charge_ref, invoice_ref) = event.refs();
    let inserted = sqlx::query(
        "INSERT INTO billing_events (id, type, created, payload, status, note, received_at, \
         charge_ref, invoice_ref) VALUES ($1, $2, $3, $4, 'received', '', $5, $6, $7) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&event.id)
    .bind(&event.kind)
    .bind(event.created)
    .bind(String::from_utf8_lossy(payload).into_owned())
    .bind(now)
    .bind(charge_ref)
    .bind(invoice_ref)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let mut before = None;
    if inserted == 0 {
        let stored: String = sqlx::query("SELECT status FROM billing_events WHERE id = $1")
            .bind(&event.id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("status")?;
        before = Status::parse(&stored);
        if !before.is_some_and(Status::waiting) {
            tx.commit().await?;
            return Ok(Outcome {
                event: event.id.clone(),
                status: "duplicate".to_owned(),
                note: format!("event received before ({stored}); nothing changed"),
            });
        }
    }
    let applied_now = match invoices::apply(&mut tx, settings, billing, event, now).await? {
        Some(applied) => applied,
        None => apply(&mut tx, settings, event, now).await?,
    };
    let applied = match (before, applied_now) {
        // Reported unmatched already and still waiting: it stays as reported.
        (Some(Status::Unmatched), Applied::Waiting(note)) => {
            sqlx::query("UPDATE billing_events SET note = $1 WHERE id = $2")
                .bind(&note)
                .bind(&event.id)
                .execute(&mut *tx)
                .await?;
            Applied::Unmatched(note)
        }
        (_, applied) => {
            settle_event(&mut tx, &event.id, &applied, now).await?;
            applied
        }
    };
    if let Applied::Done {
        charge: Some(charge),
        ..
    } = &applied
    {
        apply_waiting(&mut tx, settings, charge, now).await?;
    }
    tx.commit().await?;
    if invoices::concerns_platform_invoice(event) {
        db.changed(crate::db::cache::Topic::Access);
    }
    tracing::info!(event = %event.id, kind = %event.kind, status = applied.status().as_str(),
        note = applied.note(), "billing event");
    Ok(Outcome {
        event: event.id.clone(),
        status: applied.status().as_str().to_owned(),
        note: applied.note().to_owned(),
    })
}

/// Records what applying event `id` did.
async fn settle_event(tx: &mut Tx, id: &str, applied: &Applied, now: i64) -> Result<()> {
    let status = applied.status();
    sqlx::query(
        "UPDATE billing_events SET status = $1, note = $2, \
         applied_at = CASE WHEN $3 = 1 THEN $4 ELSE applied_at END WHERE id = $5",
    )
    .bind(status.as_str())
    .bind(applied.note())
    .bind(i64::from(status == Status::Applied))
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Tries again, in `tx`, every event waiting on charge `charge_id` (by its processor charge
/// or invoice id), in the processor's order, until a pass applies none; each of them that is
/// applied may unblock another (a closing after its opening).
async fn apply_waiting(
    tx: &mut Tx,
    settings: &LedgerSettings,
    charge_id: &str,
    now: i64,
) -> Result<()> {
    let charge = charges::current(tx, charge_id).await?;
    loop {
        let rows = sqlx::query(
            "SELECT id, payload FROM billing_events WHERE status IN ('pending', 'unmatched') \
             AND (charge_ref = $1 OR invoice_ref = $2) ORDER BY created, id",
        )
        .bind(charge.processor_charge.as_deref())
        .bind(charge.processor_invoice.as_deref())
        .fetch_all(&mut **tx)
        .await?;
        let mut moved = false;
        for row in &rows {
            let payload: String = row.try_get("payload")?;
            let id: String = row.try_get("id")?;
            let retried = try_again(tx, settings, &id, payload.as_bytes(), now).await?;
            moved |= matches!(retried, Applied::Done { .. });
        }
        if !moved {
            return Ok(());
        }
    }
}

/// Tries stored event `id` again inside a savepoint, and answers what that did. Applied, it is
/// recorded so; still waiting, nothing changes but its note; refused by the ledger, its changes
/// are undone and it is marked unmatched with the reason, to be reported.
async fn try_again(
    tx: &mut Tx,
    settings: &LedgerSettings,
    id: &str,
    payload: &[u8],
    now: i64,
) -> Result<Applied> {
    let event = parse(payload)?;
    sqlx::query("SAVEPOINT waiting_event")
        .execute(&mut **tx)
        .await?;
    let applied = match apply(tx, settings, &event, now).await {
        Ok(Applied::Waiting(note)) => {
            sqlx::query("ROLLBACK TO SAVEPOINT waiting_event")
                .execute(&mut **tx)
                .await?;
            sqlx::query("UPDATE billing_events SET note = $1 WHERE id = $2")
                .bind(&note)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            Applied::Waiting(note)
        }
        Ok(applied) => {
            settle_event(tx, id, &applied, now).await?;
            applied
        }
        Err(e @ (Error::Conflict { .. } | Error::BadRequest { .. })) => {
            sqlx::query("ROLLBACK TO SAVEPOINT waiting_event")
                .execute(&mut **tx)
                .await?;
            let refused = Applied::Unmatched(format!("refused when tried again: {e}"));
            settle_event(tx, id, &refused, now).await?;
            sqlx::query("UPDATE billing_events SET reported_at = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
            refused
        }
        Err(e) => return Err(e),
    };
    sqlx::query("RELEASE SAVEPOINT waiting_event")
        .execute(&mut **tx)
        .await?;
    Ok(applied)
}
