//! The e-mail outbox: messages written in the transaction of what they report (one row per
//! recipient: the tenant's owners and admins), delivered over SMTP by [`deliver_due`] with
//! retries, and never sent twice for one event (a unique key per event and recipient).
//!
//! Without an SMTP server configured, messages wait in the outbox: nothing is lost, and they
//! leave once one is.

use std::collections::HashMap;

use sqlx::Row;

use super::BillingSettings;
use super::mail::{Attachment, MailError, Mailer, OutgoingMail};
use crate::db::Tx;
use crate::error::Result;
use crate::id::new_id;
use crate::state::AppState;

/// Attempts per message before it is recorded as failed.
pub const MAX_ATTEMPTS: i64 = 8;

/// The most messages one delivery round sends.
const BATCH: i64 = 50;

/// The console's subscription page of tenant `slug`.
pub fn console_link(settings: &BillingSettings, slug: &str) -> String {
    format!("{}/tenants/{slug}/billing", settings.public_url)
}

/// Queues `subject`/`text` (template `template`) to every owner and admin of the tenant, in
/// `tx`, once per `dedupe` key and recipient; `invoice_id` attaches that invoice's PDF.
///
/// # Errors
///
/// [`crate::Error::Database`].
#[allow(clippy::too_many_arguments, reason = "one row's columns")]
async fn queue(
    tx: &mut Tx,
    tenant_id: &str,
    dedupe: &str,
    template: &str,
    subject: &str,
    text: &str,
    invoice_id: Option<&str>,
    now: i64,
) -> Result<usize> {
    let rows = sqlx::query(
        "SELECT DISTINCT u.email FROM tenant_members m JOIN users u ON u.id = m.user_id \
         WHERE m.tenant_id = $1 AND m.role IN ('owner', 'admin') ORDER BY u.email LIMIT 20",
    )
    .bind(tenant_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut queued = 0;
    for row in rows {
        let email: String = row.try_get("email")?;
        let done = sqlx::query(
            "INSERT INTO email_outbox (id, tenant_id, dedupe_key, recipient, template, subject, \
             body, invoice_id, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, $9, $9) \
             ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(new_id())
        .bind(tenant_id)
        .bind(format!("{dedupe}:{email}"))
        .bind(&email)
        .bind(template)
        .bind(subject)
        .bind(text)
        .bind(invoice_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        queued += usize::try_from(done.rows_affected()).unwrap_or(0);
    }
    Ok(queued)
}

/// What a tenant is told of a billing event: in its inbox (and its webhook) as `kind` with
/// `payload`, and by e-mail with template `template`, once per `dedupe` key.
#[derive(Debug)]
pub struct Notice<'a> {
    /// The notification's kind, e.g. `payment_failed`.
    pub kind: &'a str,
    /// The e-mail's template, e.g. `payment_failed`.
    pub template: &'a str,
    /// The subject line, also the notification's message.
    pub subject: &'a str,
    /// The e-mail's text.
    pub text: &'a str,
    /// The notification's payload.
    pub payload: serde_json::Value,
    /// One e-mail per key and recipient.
    pub dedupe: String,
    /// The invoice whose PDF the e-mail carries, if one.
    pub invoice_id: Option<&'a str>,
}

/// Tells the tenant `notice` in `tx`: the notification and the e-mail commit with the change
/// they report, or neither does.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn tell(tx: &mut Tx, tenant_id: &str, notice: Notice<'_>, now: i64) -> Result<()> {
    crate::notifications::notify(
        tx,
        "tenant",
        tenant_id,
        notice.kind,
        notice.subject,
        notice.payload,
    )
    .await?;
    queue(
        tx,
        tenant_id,
        &notice.dedupe,
        notice.template,
        notice.subject,
        notice.text,
        notice.invoice_id,
        now,
    )
    .await?;
    Ok(())
}

/// What a delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Messages sent.
    pub sent: usize,
    /// Messages to try again later.
    pub deferred: usize,
    /// Messages given up on.
    pub failed: usize,
}

/// Sends the messages due at `now` (at most a batch), if an SMTP server is configured.
///
/// # Errors
///
/// [`crate::Error::Database`]; an unusable SMTP setting is logged and leaves messages queued.
pub async fn deliver_due(state: &AppState, now: i64) -> Result<Delivered> {
    let mut out = Delivered::default();
    let Some(settings) = &state.settings().billing.mail else {
        return Ok(out);
    };
    let mailer = match Mailer::new(settings) {
        Ok(mailer) => mailer,
        Err(e) => {
            tracing::warn!(error = %e, "billing e-mail is not sent: the SMTP setting is unusable");
            return Ok(out);
        }
    };
    let db = state.db();
    let rows = sqlx::query(
        "SELECT id, recipient, subject, body, invoice_id, attempts FROM email_outbox \
         WHERE status = 'queued' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
    )
    .bind(now)
    .bind(BATCH)
    .fetch_all(db.pool())
    .await?;
    // An invoice's PDF is rendered once a round, however many of its recipients are due.
    let mut pdfs: HashMap<String, Attachment> = HashMap::new();
    for row in rows {
        let id: String = row.try_get("id")?;
        let attempts: i64 = row.try_get::<i64, _>("attempts")? + 1;
        let invoice_id: Option<String> = row.try_get("invoice_id")?;
        let attachment = match invoice_id {
            Some(invoice_id) => {
                if !pdfs.contains_key(&invoice_id) {
                    let invoice = super::invoices::by_id(db, &invoice_id).await?;
                    let (filename, bytes) = super::invoices::render(db, &invoice).await?;
                    let pdf = Attachment {
                        filename,
                        content_type: "application/pdf".to_owned(),
                        bytes,
                    };
                    pdfs.insert(invoice_id.clone(), pdf);
                }
                pdfs.get(&invoice_id).cloned()
            }
            None => None,
        };
        let message = OutgoingMail {
            to: row.try_get("recipient")?,
            subject: row.try_get("subject")?,
            text: row.try_get("body")?,
            attachment,
        };
        let (status, next, error) = match mailer.send(&message).await {
            Ok(()) => {
                out.sent += 1;
                ("sent", now, None)
            }
            Err(MailError::Transient(why)) if attempts < MAX_ATTEMPTS => {
                out.deferred += 1;
                let wait = 60_000_i64.saturating_mul(1 << attempts.min(6));
                ("queued", now.saturating_add(wait), Some(why))
            }
            Err(e) => {
                out.failed += 1;
                ("failed", now, Some(e.to_string()))
            }
        };
        sqlx::query(
            "UPDATE email_outbox SET status = $1, attempts = $2, next_attempt_at = $3, \
             last_error = $4, sent_at = CASE WHEN $1 = 'sent' THEN $5 ELSE sent_at END WHERE id = $6",
        )
        .bind(status)
        .bind(attempts)
        .bind(next)
        .bind(error.as_deref())
        .bind(now)
        .bind(&id)
        .execute(db.pool())
        .await?;
    }
    Ok(out)
}

/// Removes messages sent or given up on before `before` (Unix ms); answers how many.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn prune(db: &crate::db::Db, before: i64) -> Result<u64> {
    let pruned = sqlx::query(
        "DELETE FROM email_outbox WHERE status IN ('sent', 'failed') AND created_at < $1",
    )
    .bind(before)
    .execute(db.pool())
    .await?;
    Ok(pruned.rows_affected())
}
