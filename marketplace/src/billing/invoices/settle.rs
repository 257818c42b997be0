//! What the processor says of an invoice, applied once however often it says it: paid (the
//! ledger posts it and a tenant held back by it is restored), declined (dunning), finalized.
//!
//! Each function runs in a transaction that holds the ledger lock
//! ([`crate::ledger::lock::begin`]) — the collection's own answer and the processor's webhook
//! both come here, in either order, and the second finds the work done.

use sqlx::Row;

use crate::audit::{self, Actor, Entry};
use crate::billing::BillingSettings;
use crate::billing::account::Status;
use crate::clock::rfc3339;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::ledger::LedgerSettings;
use crate::ledger::accounts::{AccountKey, AccountKind};
use crate::ledger::charges::{self, NewCharge};
use crate::ledger::money;
use crate::ledger::posting::{self, NewTransaction, Posting};

/// What marking an invoice paid did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    /// The tenant.
    pub tenant_id: String,
    /// The invoice's number.
    pub number: String,
    /// Whether the tenant was past due or suspended for payment and no longer is.
    pub restored: bool,
}

/// The platform's part of a paid invoice: its plan lines less the discount.
pub(crate) async fn platform_part(tx: &mut Tx, invoice_id: &str) -> Result<i64> {
    let row = sqlx::query(
        "SELECT COALESCE(CAST(SUM(amount) AS BIGINT), 0) AS n FROM invoice_lines \
         WHERE invoice_id = $1 AND kind IN ('plan', 'discount')",
    )
    .bind(invoice_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get("n")?)
}

/// Marks invoice `invoice_id` paid (the processor's `charge` if it named one) and posts it:
/// the platform's part to platform revenue, each plugin line as a charge split with its
/// publisher, each usage line's charge settled. `None` when it was paid (or void) before.
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown invoice; [`Error::Internal`] without the ledger lock;
/// [`Error::Database`].
pub async fn paid_in(
    tx: &mut Tx,
    ledger: &LedgerSettings,
    invoice_id: &str,
    charge: Option<&str>,
    now: i64,
) -> Result<Option<Paid>> {
    crate::ledger::lock::held(tx)?;
    let row = sqlx::query(
        "SELECT tenant_id, number, period, currency, total, status FROM invoices WHERE id = $1",
    )
    .bind(invoice_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found(format!("invoice {invoice_id:?}")))?;
    let tenant_id: String = row.try_get("tenant_id")?;
    let number: String = row.try_get("number")?;
    let period: String = row.try_get("period")?;
    let currency: String = row.try_get("currency")?;
    let total: i64 = row.try_get("total")?;
    let marked = sqlx::query(
        "UPDATE invoices SET status = 'paid', paid_at = $1, processor_charge = $2, \
         next_attempt_at = NULL WHERE id = $3 AND status = 'open'",
    )
    .bind(now)
    .bind(charge)
    .bind(invoice_id)
    .execute(&mut **tx)
    .await?;
    if marked.rows_affected() == 0 {
        return Ok(None);
    }
    // The charges name the platform's invoice, not the processor's: the processor's events
    // about the whole invoice are not any one charge's.
    let reference = number.clone();
    let platform = platform_part(tx, invoice_id).await?;
    if platform > 0 {
        posting::post(
            tx,
            NewTransaction {
                idempotency_key: format!("invoice:{invoice_id}:platform"),
                kind: "invoice",
                tenant_id: Some(tenant_id.clone()),
                memo: format!("invoice {number}: the plan, {period}"),
                postings: vec![
                    Posting::debit(
                        AccountKey::platform(AccountKind::ProcessorClearing, &currency),
                        platform,
                    ),
                    Posting::credit(
                        AccountKey::platform(AccountKind::PlatformRevenue, &currency),
                        platform,
                    ),
                ],
                ..NewTransaction::default()
            },
        )
        .await?;
    }
    let lines = sqlx::query(
        "SELECT line, kind, amount, plugin_id, subscription_id, usage_charge_id FROM invoice_lines \
         WHERE invoice_id = $1 AND kind IN ('plugin', 'usage') ORDER BY line",
    )
    .bind(invoice_id)
    .fetch_all(&mut **tx)
    .await?;
    for line in &lines {
        let kind: String = line.try_get("kind")?;
        if kind == "usage" {
            let usage: Option<String> = line.try_get("usage_charge_id")?;
            if let Some(usage) = usage {
                charges::settle(tx, ledger, &usage, None, &reference, now).await?;
            }
            continue;
        }
        let number_of_line: i64 = line.try_get("line")?;
        let subscription: Option<String> = line.try_get("subscription_id")?;
        let Some(subscription) = subscription else {
            continue;
        };
        let Some(sub) = crate::ledger::subscriptions::by_id(tx, &subscription).await? else {
            continue;
        };
        charges::record(
            tx,
            ledger,
            NewCharge {
                reference: &format!("invoice:{invoice_id}:line:{number_of_line}"),
                processor_charge: None,
                processor_invoice: Some(&reference),
                source: "subscription",
                subscription_id: Some(&sub.id),
                tenant_id: &tenant_id,
                plugin_id: &sub.plugin_id,
                publisher_id: &sub.publisher_id,
                currency: &currency,
                gross: line.try_get("amount")?,
                paid: true,
                period: Some(&period),
            },
            now,
        )
        .await?;
    }
    audit::record(
        tx,
        Entry {
            actor: Actor::System,
            action: "invoice.paid",
            tenant_id: Some(&tenant_id),
            subject: format!("invoice:{number}"),
            details: serde_json::json!({"total": total, "currency": currency, "charge": charge}),
        },
    )
    .await?;
    crate::notifications::notify(
        tx,
        "tenant",
        &tenant_id,
        "invoice_paid",
        &format!(
            "Invoice {number} of {} is paid. Thank you.",
            money::format(total, &currency)
        ),
        serde_json::json!({"invoice": invoice_id, "number": number}),
    )
    .await?;
    let restored = restore_if_settled(tx, &tenant_id, &number, now).await?;
    Ok(Some(Paid {
        tenant_id,
        number,
        restored,
    }))
}

/// A tenant past due (or suspended for payment) with no invoice left unpaid after a decline is
/// restored: active (or free) and unsuspended.
async fn restore_if_settled(tx: &mut Tx, tenant_id: &str, number: &str, now: i64) -> Result<bool> {
    let unpaid: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM invoices WHERE tenant_id = $1 AND status = 'open' AND attempts > 0 \
         AND EXISTS (SELECT 1 FROM invoice_attempts a WHERE a.invoice_id = invoices.id)",
    )
    .bind(tenant_id)
    .fetch_one(&mut **tx)
    .await?
    .try_get("n")?;
    if unpaid > 0 {
        return Ok(false);
    }
    let price: i64 = sqlx::query(
        "SELECT p.price_monthly FROM tenants t JOIN plans p ON p.name = t.plan WHERE t.id = $1",
    )
    .bind(tenant_id)
    .fetch_one(&mut **tx)
    .await?
    .try_get("price_monthly")?;
    let status = if price > 0 {
        Status::Active
    } else {
        Status::Free
    };
    let was_past_due = sqlx::query(
        "UPDATE billing_accounts SET status = $1, past_due_since = NULL, updated_at = $2 \
         WHERE tenant_id = $3 AND status = 'past_due'",
    )
    .bind(status.as_str())
    .bind(now)
    .bind(tenant_id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        > 0;
    let was_suspended = crate::billing::suspension::lift_in(tx, tenant_id, "payment").await?;
    if !(was_past_due || was_suspended) {
        return Ok(false);
    }
    let (slug, name): (String, String) = {
        let row = sqlx::query("SELECT slug, name FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_one(&mut **tx)
            .await?;
        (row.try_get("slug")?, row.try_get("name")?)
    };
    audit::record(
        tx,
        Entry {
            actor: Actor::System,
            action: "billing.restored",
            tenant_id: Some(tenant_id),
            subject: format!("tenant:{slug}"),
            details: serde_json::json!({"invoice": number, "was_suspended": was_suspended}),
        },
    )
    .await?;
    let (subject, text) = crate::billing::mail::templates::restored(&name, number);
    crate::billing::outbox::tell(
        tx,
        tenant_id,
        crate::billing::outbox::Notice {
            kind: "billing_restored",
            template: "restored",
            subject: &subject,
            text: &text,
            payload: serde_json::json!({"invoice": number}),
            dedupe: format!("restored:{number}"),
            invoice_id: None,
        },
        now,
    )
    .await?;
    Ok(true)
}

/// Records that attempt `attempt` to collect invoice `invoice_id` was declined (`code`), once:
/// the tenant is past due from its first decline, the next attempt is scheduled by
/// [`BillingSettings::retry_after_ms`], and the tenant is told (inbox, e-mail). `false` when
/// this attempt was recorded before or the invoice is no longer open.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn failed_in(
    tx: &mut Tx,
    billing: &BillingSettings,
    invoice_id: &str,
    attempt: i64,
    code: &str,
    now: i64,
) -> Result<bool> {
    let row = sqlx::query(
        "SELECT tenant_id, number, total, currency, status, last_attempt_at FROM invoices WHERE id = $1",
    )
        .bind(invoice_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::not_found(format!("invoice {invoice_id:?}")))?;
    let status: String = row.try_get("status")?;
    if status != "open" {
        return Ok(false);
    }
    // The decline happened when the attempt was made, however late its news arrives.
    let now = row
        .try_get::<Option<i64>, _>("last_attempt_at")?
        .unwrap_or(now);
    let inserted = sqlx::query(
        "INSERT INTO invoice_attempts (invoice_id, attempt, outcome, code, at) \
         VALUES ($1, $2, 'declined', $3, $4) ON CONFLICT (invoice_id, attempt) DO NOTHING",
    )
    .bind(invoice_id)
    .bind(attempt)
    .bind(code)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    let tenant_id: String = row.try_get("tenant_id")?;
    let number: String = row.try_get("number")?;
    let total: i64 = row.try_get("total")?;
    let currency: String = row.try_get("currency")?;
    let wait = usize::try_from(attempt - 1)
        .ok()
        .and_then(|i| billing.retry_after_ms.get(i))
        .copied();
    let next = wait.map(|wait| now.saturating_add(wait));
    sqlx::query("UPDATE invoices SET next_attempt_at = $1, attempts = CASE WHEN attempts < $2 THEN $2 ELSE attempts END WHERE id = $3")
        .bind(next)
        .bind(attempt)
        .bind(invoice_id)
        .execute(&mut **tx)
        .await?;
    crate::billing::account::ensure(tx, &tenant_id).await?;
    sqlx::query(
        "UPDATE billing_accounts SET status = 'past_due', \
         past_due_since = COALESCE(past_due_since, $1), updated_at = $1 WHERE tenant_id = $2",
    )
    .bind(now)
    .bind(&tenant_id)
    .execute(&mut **tx)
    .await?;
    let since: i64 =
        sqlx::query("SELECT past_due_since FROM billing_accounts WHERE tenant_id = $1")
            .bind(&tenant_id)
            .fetch_one(&mut **tx)
            .await?
            .try_get::<Option<i64>, _>("past_due_since")?
            .unwrap_or(now);
    let suspend_on = since.saturating_add(billing.suspend_after_ms);
    let row = sqlx::query("SELECT slug, name FROM tenants WHERE id = $1")
        .bind(&tenant_id)
        .fetch_one(&mut **tx)
        .await?;
    let slug: String = row.try_get("slug")?;
    let name: String = row.try_get("name")?;
    let (subject, text) = crate::billing::mail::templates::payment_failed(
        &name,
        &number,
        &money::format(total, &currency),
        u32::try_from(attempt).unwrap_or(u32::MAX),
        next.map(crate::clock::date).as_deref(),
        &crate::clock::date(suspend_on),
        &crate::billing::outbox::console_link(billing, &slug),
    );
    audit::record(
        tx,
        Entry {
            actor: Actor::System,
            action: "invoice.payment_failed",
            tenant_id: Some(&tenant_id),
            subject: format!("invoice:{number}"),
            details: serde_json::json!({"attempt": attempt, "code": code, "next_attempt_at": next.map(rfc3339)}),
        },
    )
    .await?;
    crate::billing::outbox::tell(
        tx,
        &tenant_id,
        crate::billing::outbox::Notice {
            kind: "payment_failed",
            template: "payment_failed",
            subject: &subject,
            text: &text,
            payload: serde_json::json!({"invoice": invoice_id, "number": number, "attempt": attempt,
            "next_attempt_at": next.map(rfc3339), "suspend_at": rfc3339(suspend_on)}),
            dedupe: format!("payment_failed:{invoice_id}:{attempt}"),
            invoice_id: None,
        },
        now,
    )
    .await?;
    Ok(true)
}

/// Records the processor's id of invoice `invoice_id` if it was not stored yet (the answer to
/// its creation was lost). `false` when it was.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn finalized_in(tx: &mut Tx, invoice_id: &str, processor_invoice: &str) -> Result<bool> {
    let set = sqlx::query(
        "UPDATE invoices SET processor_invoice = $1 WHERE id = $2 AND processor_invoice IS NULL",
    )
    .bind(processor_invoice)
    .bind(invoice_id)
    .execute(&mut **tx)
    .await?;
    Ok(set.rows_affected() > 0)
}
