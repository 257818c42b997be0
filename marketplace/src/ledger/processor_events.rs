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

use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::LedgerSettings;
use super::charges::{self, Charge, NewCharge};
use super::disputes::Closing;
use super::lock;
use crate::audit::{self, Actor};
use crate::clock::rfc3339;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};

/// The most events one listing returns.
pub const MAX_LISTED: i64 = 500;

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

/// A verified event, parsed: Stripe's `{id, type, created, data: {object}}`.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) created: i64,
    pub(crate) object: Map<String, Value>,
}

fn invalid(field: &str, what: &str) -> Error {
    Error::bad_request("invalid_event", format!("field `{field}` {what}"))
}

/// Parses an event's JSON.
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_event`) naming the field that is missing or wrong.
pub(crate) fn parse(payload: &[u8]) -> Result<Event> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| Error::bad_request("invalid_event", format!("the event is not JSON: {e}")))?;
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 255)
        .ok_or_else(|| invalid("id", "must be a string of 1 to 255 characters"))?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("type", "is required"))?;
    let created = value
        .get("created")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("created", "must be an integer of Unix seconds"))?;
    let object = value
        .get("data")
        .and_then(|data| data.get("object"))
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("data.object", "must be an object"))?;
    Ok(Event {
        id: id.to_owned(),
        kind: kind.to_owned(),
        created,
        object: object.clone(),
    })
}

fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => Ok(Some(s)),
        Some(_) => Err(invalid(
            &format!("data.object.{field}"),
            "must be a string of 1 to 255 characters",
        )),
    }
}

fn required_text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a str> {
    text(object, field)?.ok_or_else(|| invalid(&format!("data.object.{field}"), "is required"))
}

fn amount(object: &Map<String, Value>, field: &str) -> Result<i64> {
    object
        .get(field)
        .and_then(Value::as_i64)
        .filter(|a| *a >= 0)
        .ok_or_else(|| {
            invalid(
                &format!("data.object.{field}"),
                "must be a non-negative integer of minor units",
            )
        })
}

fn currency(object: &Map<String, Value>) -> Result<String> {
    let code = required_text(object, "currency")?.to_ascii_uppercase();
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(invalid(
            "data.object.currency",
            "must be an ISO 4217 code such as usd",
        ))
    }
}

impl Event {
    /// The processor charge (`ch_…`) and invoice (`in_…`) the event concerns, as far as it names
    /// them: what a waiting event is found by when its charge changes.
    fn refs(&self) -> (Option<&str>, Option<&str>) {
        let field = |name: &str| self.object.get(name).and_then(Value::as_str);
        match self.kind.as_str() {
            "invoice.paid" => (field("charge"), field("id")),
            "charge.refunded" => (field("id"), field("invoice")),
            "charge.dispute.created" | "charge.dispute.closed" => (field("charge"), None),
            _ => (None, None),
        }
    }
}

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The ledger changed (or was found to have the change already); the charge it concerns.
    Done {
        note: String,
        charge: Option<String>,
    },
    /// It waits for its object.
    Waiting(String),
    /// It matches nothing known and never will as it stands.
    Unmatched(String),
    /// The ledger does not use it.
    Ignored(String),
}

impl Applied {
    fn status(&self) -> Status {
        match self {
            Applied::Done { .. } => Status::Applied,
            Applied::Waiting(_) => Status::Pending,
            Applied::Unmatched(_) => Status::Unmatched,
            Applied::Ignored(_) => Status::Ignored,
        }
    }

    fn note(&self) -> &str {
        match self {
            Applied::Done { note, .. }
            | Applied::Waiting(note)
            | Applied::Unmatched(note)
            | Applied::Ignored(note) => note,
        }
    }
}

fn done(note: String, charge: &Charge) -> Applied {
    Applied::Done {
        note,
        charge: Some(charge.id.clone()),
    }
}

/// Applies `event` in `tx` (which holds the ledger lock) at `now`.
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_event`) for a malformed event; [`Error::Conflict`] for one
/// the ledger refuses; [`Error::Database`].
pub(crate) async fn apply(
    tx: &mut Tx,
    settings: &LedgerSettings,
    event: &Event,
    now: i64,
) -> Result<Applied> {
    let object = &event.object;
    match event.kind.as_str() {
        "invoice.paid" => invoice_paid(tx, settings, object, now).await,
        "charge.refunded" => {
            let charge_id = required_text(object, "id")?;
            let total = amount(object, "amount_refunded")?;
            let charge = match charges::by_processor_charge(tx, charge_id).await? {
                Some(charge) => Some(charge),
                None => match text(object, "invoice")? {
                    Some(invoice) => charges::by_invoice(tx, invoice).await?,
                    None => None,
                },
            };
            let Some(charge) = charge else {
                return Ok(Applied::Waiting(format!(
                    "waits for the payment of charge {charge_id}"
                )));
            };
            match super::refunds::refund_to(tx, &charge.id, total, Actor::System).await {
                Ok(refunded) if refunded.amount == 0 => Ok(done(
                    format!("charge {charge_id} refunded {total} already; nothing new"),
                    &charge,
                )),
                Ok(refunded) => Ok(done(
                    format!(
                        "refunded {} of charge {charge_id} (platform {}, publisher {})",
                        refunded.amount, refunded.platform, refunded.publisher
                    ),
                    &charge,
                )),
                Err(e) if e.code() == "charge_disputed" => Ok(Applied::Waiting(format!(
                    "waits for the dispute of charge {charge_id} to close"
                ))),
                Err(e) => Err(e),
            }
        }
        "charge.dispute.created" | "charge.dispute.closed" => {
            let dispute_id = required_text(object, "id")?;
            let charge_id = required_text(object, "charge")?;
            let disputed = amount(object, "amount")?;
            let lost = text(object, "status")? == Some("lost");
            let Some(charge) = charges::by_processor_charge(tx, charge_id).await? else {
                return Ok(Applied::Waiting(format!(
                    "waits for the payment of charge {charge_id}"
                )));
            };
            if event.kind == "charge.dispute.created" {
                let note = if super::disputes::open(tx, &charge.id, dispute_id, disputed).await? {
                    format!("dispute {dispute_id} froze the publisher's part")
                } else {
                    format!("dispute {dispute_id} was opened before")
                };
                return Ok(done(note, &charge));
            }
            Ok(
                match super::disputes::close(tx, &charge.id, dispute_id, lost).await? {
                    Closing::Closed => done(
                        format!("dispute {dispute_id} closed (lost: {lost})"),
                        &charge,
                    ),
                    Closing::ClosedBefore => {
                        done(format!("dispute {dispute_id} was closed before"), &charge)
                    }
                    Closing::NotOpened => {
                        Applied::Waiting(format!("waits for dispute {dispute_id} to be opened"))
                    }
                },
            )
        }
        other => Ok(Applied::Ignored(format!(
            "events of type {other} are not used"
        ))),
    }
}

async fn invoice_paid(
    tx: &mut Tx,
    settings: &LedgerSettings,
    object: &Map<String, Value>,
    now: i64,
) -> Result<Applied> {
    let invoice = required_text(object, "id")?;
    let paid = amount(object, "amount_paid")?;
    let currency = currency(object)?;
    let processor_charge = text(object, "charge")?;
    if paid == 0 {
        return Ok(Applied::Ignored(format!("invoice {invoice} paid nothing")));
    }
    let usage_charge = match object.get("metadata").and_then(Value::as_object) {
        Some(metadata) => text(metadata, "plinth_charge")?,
        None => None,
    };
    if let Some(charge_id) = usage_charge {
        let Some(charge) = charges::by_id(tx, charge_id).await? else {
            return Ok(Applied::Waiting(format!(
                "waits for usage charge {charge_id}"
            )));
        };
        if charge.gross != paid || charge.currency != currency {
            return Ok(Applied::Unmatched(format!(
                "invoice {invoice} paid {paid} {currency} but charge {charge_id} is {} {}",
                charge.gross, charge.currency
            )));
        }
        let charge =
            charges::settle(tx, settings, &charge.id, processor_charge, invoice, now).await?;
        return Ok(done(format!("usage charge {charge_id} paid"), &charge));
    }
    let Some(subscription_id) = text(object, "subscription")? else {
        return Ok(Applied::Unmatched(format!(
            "invoice {invoice} names no subscription"
        )));
    };
    let Some(subscription) = super::subscriptions::by_id(tx, subscription_id).await? else {
        return Ok(Applied::Waiting(format!(
            "waits for subscription {subscription_id}"
        )));
    };
    let (charge, new) = charges::record(
        tx,
        settings,
        NewCharge {
            reference: invoice,
            processor_charge,
            processor_invoice: Some(invoice),
            source: "subscription",
            subscription_id: Some(&subscription.id),
            tenant_id: &subscription.tenant_id,
            plugin_id: &subscription.plugin_id,
            publisher_id: &subscription.publisher_id,
            currency: &currency,
            gross: paid,
            paid: true,
            period: None,
        },
        now,
    )
    .await?;
    let note = if new {
        format!(
            "charge {} of {paid} {currency}: platform {}, publisher {}",
            charge.id, charge.platform_share, charge.publisher_share
        )
    } else {
        format!("invoice {invoice} was recorded before")
    };
    Ok(done(note, &charge))
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
    let applied = match (before, apply(&mut tx, settings, event, now).await?) {
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
        let sql = format!(
            "SELECT {COLUMNS} FROM billing_events WHERE status IN ('pending', 'unmatched') \
             AND (charge_ref = $1 OR invoice_ref = $2) ORDER BY created, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
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
/// [`Error::Database`].
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
/// [`Error::Database`].
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
/// [`Error::Database`].
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
