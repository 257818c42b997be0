//! Issuing an invoice and collecting it.
//!
//! [`issue`] numbers and stores the month's invoice in one transaction (with its lines, the
//! coupon's use, the tenant's notification and e-mail, and the audit entry), then — outside any
//! transaction — creates it at the processor and collects it ([`collect`]). Every processor
//! call carries a key derived from the invoice and the attempt, so a crash between the calls
//! and the next run's retry repeat nothing.

use sqlx::Row;

use crate::audit::{self, Actor, Entry};
use crate::billing::processor::{Collection, NewInvoice, ProcessorError, ProcessorLine};
use crate::billing::{account, coupons, outbox};
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::id::new_id;
use crate::ledger::money;
use crate::month::MonthRange;
use crate::state::AppState;

/// How long collection waits after the processor could not be reached.
const UNREACHABLE_RETRY_MS: i64 = 60 * 60 * 1000;

/// Issues tenant `tenant_id`'s invoices for `month` (which must have ended by `now`) — one per
/// currency it owes something in — and collects them; answers their ids (none when the tenant
/// owes nothing). An invoice issued before is answered as it is (and collected if it waits for
/// a first attempt).
///
/// # Errors
///
/// 400 `month_not_ended`; 409 `billing_not_configured`; [`Error::Database`]. A processor that
/// cannot be reached is not an error: the invoice stays open and a later run collects it.
pub async fn issue(
    state: &AppState,
    tenant_id: &str,
    month: &MonthRange,
    now: i64,
) -> Result<Vec<String>> {
    if now < month.end_ms {
        return Err(Error::bad_request(
            "month_not_ended",
            format!(
                "`month` {} has not ended; it is invoiced after it ends",
                month.key
            ),
        ));
    }
    let Some(tenant) = crate::tenants::by_id(state.db(), tenant_id).await? else {
        return Ok(Vec::new());
    };
    let mut issued = Vec::new();
    for currency in super::build::currencies(state.db(), tenant_id, month).await? {
        if let Some(id) = issue_in(state, &tenant, month, &currency, now).await? {
            issued.push(id);
        }
    }
    if !issued.is_empty() {
        report_usage(state, &tenant, month).await;
    }
    Ok(issued)
}

/// Issues and collects the tenant's invoice in `currency` for `month`, as [`issue`].
async fn issue_in(
    state: &AppState,
    tenant: &crate::tenants::Tenant,
    month: &MonthRange,
    currency: &str,
    now: i64,
) -> Result<Option<String>> {
    let db = state.db();
    let tenant_id = tenant.id.as_str();
    let existing = sqlx::query(
        "SELECT id FROM invoices WHERE tenant_id = $1 AND period = $2 AND currency = $3",
    )
    .bind(tenant_id)
    .bind(&month.key)
    .bind(currency)
    .fetch_optional(db.pool())
    .await?;
    if let Some(row) = existing {
        let id: String = row.try_get("id")?;
        first_collection(state, &id, now).await?;
        return Ok(Some(id));
    }
    let draft = super::build(db, tenant_id, month, currency).await?;
    if draft.lines.is_empty() || draft.total < 0 {
        return Ok(None);
    }
    let id = new_id();
    let mut tx = db.begin().await?;
    let next: i64 = sqlx::query(
        "UPDATE invoice_numbers SET next = next + 1 WHERE id = 'invoices' RETURNING next",
    )
    .fetch_one(&mut *tx)
    .await?
    .try_get("next")?;
    let number = format!("PL-{:06}", next - 1);
    let status = if draft.total > 0 { "open" } else { "paid" };
    let inserted = sqlx::query(
        "INSERT INTO invoices (id, tenant_id, number, period, currency, subtotal, discount, total, \
         status, coupon_id, issued_at, paid_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(&number)
    .bind(&month.key)
    .bind(&draft.currency)
    .bind(draft.subtotal)
    .bind(draft.discount)
    .bind(draft.total)
    .bind(status)
    .bind(draft.coupon.as_ref().map(|held| held.coupon.id.clone()))
    .bind(now)
    .bind((status == "paid").then_some(now))
    .execute(&mut *tx)
    .await;
    if let Err(e) = inserted {
        let e = Error::from(e);
        // Issued meanwhile by another run: that run collects it.
        return if e.is_unique_violation() {
            Ok(None)
        } else {
            Err(e)
        };
    }
    for (n, line) in draft.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO invoice_lines (invoice_id, line, kind, description, amount, plugin_id, \
             subscription_id, usage_charge_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(i64::try_from(n).unwrap_or(i64::MAX) + 1)
        .bind(line.kind)
        .bind(&line.description)
        .bind(line.amount)
        .bind(line.plugin_id.as_deref())
        .bind(line.subscription_id.as_deref())
        .bind(line.usage_charge_id.as_deref())
        .execute(&mut *tx)
        .await?;
    }
    if let Some(held) = &draft.coupon {
        coupons::applied(&mut tx, tenant_id, held, now).await?;
    }
    audit::record(
        &mut tx,
        Entry {
            actor: Actor::System,
            action: "invoice.issued",
            tenant_id: Some(tenant_id),
            subject: format!("invoice:{number}"),
            details: serde_json::json!({
                "period": month.key, "total": draft.total, "currency": draft.currency,
                "lines": draft.lines.len(),
            }),
        },
    )
    .await?;
    let total = money::format(draft.total, &draft.currency);
    let settings = &state.settings().billing;
    let (subject, text) = crate::billing::mail::templates::invoice_issued(
        &tenant.name,
        &number,
        &month.key,
        &total,
        &outbox::console_link(settings, &tenant.slug),
    );
    outbox::tell(
        &mut tx,
        tenant_id,
        outbox::Notice {
            kind: "invoice_issued",
            template: "invoice",
            subject: &subject,
            text: &text,
            payload: serde_json::json!({"invoice": id, "number": number, "total": draft.total,
            "currency": draft.currency, "period": month.key}),
            dedupe: format!("invoice:{id}"),
            invoice_id: Some(&id),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant = %tenant.slug, invoice = %number, total = draft.total, "invoice issued");
    if draft.total > 0 {
        first_collection(state, &id, now).await?;
    }
    Ok(Some(id))
}

/// Reports the tenant's invocations of `month` to the processor's meter `plinth_invocations`
/// (for the processor's own dashboards: the invoice has priced them already). A failure is
/// logged, not retried: nothing is billed from it.
async fn report_usage(state: &AppState, tenant: &crate::tenants::Tenant, month: &MonthRange) {
    let reported = async {
        let used: i64 = sqlx::query(
            "SELECT COALESCE(CAST(SUM(invocations) AS BIGINT), 0) AS n FROM usage_counters \
             WHERE tenant_id = $1 AND month = $2",
        )
        .bind(&tenant.id)
        .bind(&month.key)
        .fetch_one(state.db().pool())
        .await?
        .try_get("n")?;
        let Ok(value) = u64::try_from(used) else {
            return Ok(());
        };
        if value == 0 {
            return Ok(());
        }
        let customer = account::customer(state, tenant).await?;
        let identifier = format!("{}:{}", tenant.id, month.key);
        state
            .settings()
            .billing
            .processor()?
            .report_usage(
                crate::billing::processor::UsageReport {
                    customer: &customer,
                    event_name: "plinth_invocations",
                    value,
                    identifier: &identifier,
                    timestamp: (month.end_ms - 1) / 1000,
                },
                &format!("plinth-usage-{identifier}"),
            )
            .await?;
        Ok::<(), Error>(())
    };
    if let Err(e) = reported.await {
        tracing::warn!(tenant = %tenant.slug, month = %month.key, error = %e, "usage not reported to the processor");
    }
}

/// Collects invoice `id` if nothing has tried yet.
async fn first_collection(state: &AppState, id: &str, now: i64) -> Result<()> {
    let row = sqlx::query("SELECT status, attempts FROM invoices WHERE id = $1")
        .bind(id)
        .fetch_one(state.db().pool())
        .await?;
    let status: String = row.try_get("status")?;
    let attempts: i64 = row.try_get("attempts")?;
    if status == "open" && attempts == 0 {
        match collect(state, id, now).await {
            Ok(_) | Err(Error::ProcessorUnavailable(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Issues every tenant's invoices for `month`, once: a month whose run finished is skipped
/// (each invoice's collection goes on through [`crate::billing::dunning`]); answers the ids
/// issued (or found).
///
/// # Errors
///
/// As [`issue`]; one tenant's failure stops the run (the next run picks up where it stopped).
pub async fn issue_month(state: &AppState, month: &MonthRange, now: i64) -> Result<Vec<String>> {
    state.settings().billing.processor()?;
    if now < month.end_ms {
        return Err(Error::bad_request(
            "month_not_ended",
            format!(
                "`month` {} has not ended; it is invoiced after it ends",
                month.key
            ),
        ));
    }
    let finished = sqlx::query("SELECT invoices FROM billing_runs WHERE month = $1")
        .bind(&month.key)
        .fetch_optional(state.db().pool())
        .await?;
    if finished.is_some() {
        // Invoiced already: every tick of the month would otherwise walk every tenant.
        return Ok(Vec::new());
    }
    // Usage-priced plugins are billed per tenant and month first (idempotent).
    crate::ledger::usage_charges::run(state.db(), &state.settings().ledger, month, now).await?;
    let rows = sqlx::query(
        "SELECT tenant_id FROM plan_periods WHERE price_monthly > 0 AND trial = 0 \
           AND starts_at < $1 AND (ends_at IS NULL OR ends_at > $2) \
         UNION SELECT tenant_id FROM ledger_subscriptions WHERE model = 'monthly' \
           AND started_at < $1 AND (ended_at IS NULL OR ended_at > $2) \
         UNION SELECT tenant_id FROM ledger_charges WHERE source = 'usage' AND period = $3 \
         ORDER BY tenant_id",
    )
    .bind(month.end_ms)
    .bind(month.start_ms)
    .bind(&month.key)
    .fetch_all(state.db().pool())
    .await?;
    let mut out = Vec::new();
    for row in rows {
        let tenant_id: String = row.try_get("tenant_id")?;
        out.extend(issue(state, &tenant_id, month, now).await?);
    }
    sqlx::query(
        "INSERT INTO billing_runs (month, invoices, finished_at) VALUES ($1, $2, $3) \
         ON CONFLICT (month) DO NOTHING",
    )
    .bind(&month.key)
    .bind(i64::try_from(out.len()).unwrap_or(i64::MAX))
    .bind(now)
    .execute(state.db().pool())
    .await?;
    Ok(out)
}

/// Creates invoice `id` at the processor if it is not there yet; answers the processor's id.
async fn at_processor(state: &AppState, id: &str) -> Result<String> {
    let db = state.db();
    let invoice = super::by_id(db, id).await?;
    let row = sqlx::query("SELECT processor_invoice FROM invoices WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await?;
    if let Some(existing) = row.try_get::<Option<String>, _>("processor_invoice")? {
        return Ok(existing);
    }
    let tenant = crate::tenants::by_id(db, &invoice.tenant_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("tenant of invoice {}", invoice.number)))?;
    let customer = account::customer(state, &tenant).await?;
    let lines: Vec<ProcessorLine> = invoice
        .lines
        .iter()
        .map(|line| ProcessorLine {
            description: line.description.clone(),
            amount: line.amount,
        })
        .collect();
    let created = state
        .settings()
        .billing
        .processor()?
        .create_invoice(
            NewInvoice {
                invoice_id: id,
                number: &invoice.number,
                tenant_id: &tenant.id,
                customer: &customer,
                currency: &invoice.currency,
                lines: &lines,
            },
            &format!("plinth-invoice-{id}"),
        )
        .await?;
    if created.amount_due != invoice.total {
        return Err(Error::Internal(format!(
            "the processor's invoice {} is due {} but invoice {} totals {}",
            created.id, created.amount_due, invoice.number, invoice.total
        )));
    }
    sqlx::query(
        "UPDATE invoices SET processor_invoice = $1 WHERE id = $2 AND processor_invoice IS NULL",
    )
    .bind(&created.id)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(created.id)
}

/// What one collection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    /// Paid now (or before).
    Paid,
    /// Declined: the tenant is past due.
    Declined,
    /// Not open: paid or void before.
    NotOpen,
}

/// Tries to collect open invoice `id` at `now` from the tenant's payment method.
///
/// # Errors
///
/// 502 `processor_unavailable` when the processor cannot be reached (the invoice is tried
/// again an hour later); [`Error::Database`].
pub async fn collect(state: &AppState, id: &str, now: i64) -> Result<Collected> {
    let db = state.db();
    let processor_invoice = match at_processor(state, id).await {
        Ok(found) => found,
        Err(e @ Error::ProcessorUnavailable(_)) => {
            postpone(state, id, now).await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let attempt: Option<i64> = sqlx::query(
        "UPDATE invoices SET attempts = attempts + 1, last_attempt_at = $1 WHERE id = $2 \
         AND status = 'open' RETURNING attempts",
    )
    .bind(now)
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .map(|row| row.try_get("attempts"))
    .transpose()?;
    let Some(attempt) = attempt else {
        return Ok(Collected::NotOpen);
    };
    let processor = state.settings().billing.processor()?;
    let outcome = processor
        .collect(
            &processor_invoice,
            &format!("plinth-invoice-{id}-pay-{attempt}"),
        )
        .await;
    match outcome {
        Ok(Collection::Paid { charge }) => {
            let mut tx = crate::ledger::lock::begin(db).await?;
            let paid = super::paid_in(
                &mut tx,
                &state.settings().ledger,
                id,
                charge.as_deref(),
                now,
            )
            .await?;
            tx.commit().await?;
            if let Some(paid) = paid
                && paid.restored
            {
                crate::billing::subscription::applied(state, &paid.tenant_id).await;
            }
            Ok(Collected::Paid)
        }
        Ok(Collection::Declined { code, .. }) | Err(ProcessorError::Declined { code, .. }) => {
            let mut tx = crate::ledger::lock::begin(db).await?;
            super::failed_in(&mut tx, &state.settings().billing, id, attempt, &code, now).await?;
            tx.commit().await?;
            Ok(Collected::Declined)
        }
        Err(e) => {
            // The attempt did not happen as far as anyone knows: give it back, try later.
            sqlx::query(
                "UPDATE invoices SET attempts = attempts - 1 WHERE id = $1 AND attempts = $2",
            )
            .bind(id)
            .bind(attempt)
            .execute(db.pool())
            .await?;
            postpone(state, id, now).await?;
            Err(Error::from(e))
        }
    }
}

async fn postpone(state: &AppState, id: &str, now: i64) -> Result<()> {
    let at = now.saturating_add(UNREACHABLE_RETRY_MS);
    sqlx::query("UPDATE invoices SET next_attempt_at = $1 WHERE id = $2 AND status = 'open'")
        .bind(at)
        .bind(id)
        .execute(state.db().pool())
        .await?;
    tracing::warn!(invoice = %id, retry_at = %rfc3339(at), "the processor could not be reached; collection postponed");
    Ok(())
}
