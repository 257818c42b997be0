//! Dunning: retrying declined invoices on the schedule, and suspending tenants that stay past
//! due beyond the grace period. A decline itself is recorded by
//! [`super::invoices::failed_in`]; a payment restores the tenant in
//! [`super::invoices::paid_in`].

use sqlx::Row;

use crate::audit::{self, Actor, Entry};
use crate::error::{Error, Result};
use crate::ledger::money;
use crate::state::AppState;

/// Collects every open invoice whose next attempt is due at `now`; answers how many were tried.
///
/// # Errors
///
/// [`Error::Database`]; a processor that cannot be reached postpones the invoice instead.
pub async fn retry_due(state: &AppState, now: i64) -> Result<usize> {
    let rows = sqlx::query(
        "SELECT id FROM invoices WHERE status = 'open' AND next_attempt_at IS NOT NULL \
         AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT 200",
    )
    .bind(now)
    .fetch_all(state.db().pool())
    .await?;
    let mut tried = 0;
    for row in rows {
        let id: String = row.try_get("id")?;
        match super::invoices::collect(state, &id, now).await {
            Ok(_) => tried += 1,
            Err(Error::ProcessorUnavailable(why)) => {
                tracing::warn!(invoice = %id, %why, "dunning: the processor is unavailable");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(tried)
}

/// Collects tenant `tenant_id`'s open invoices that were declined before, at once (its payment
/// method just changed).
///
/// # Errors
///
/// 502 `processor_unavailable`; [`Error::Database`].
pub async fn retry_now(state: &AppState, tenant_id: &str, now: i64) -> Result<usize> {
    let rows = sqlx::query(
        "SELECT id FROM invoices WHERE tenant_id = $1 AND status = 'open' AND attempts > 0 \
         ORDER BY issued_at, id LIMIT 24",
    )
    .bind(tenant_id)
    .fetch_all(state.db().pool())
    .await?;
    let mut tried = 0;
    for row in rows {
        let id: String = row.try_get("id")?;
        super::invoices::collect(state, &id, now).await?;
        tried += 1;
    }
    Ok(tried)
}

/// Suspends every tenant past due since before `now` − the grace period; answers how many.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn suspend_overdue(state: &AppState, now: i64) -> Result<usize> {
    let settings = &state.settings().billing;
    let db = state.db();
    let rows = sqlx::query(
        "SELECT a.tenant_id FROM billing_accounts a JOIN tenants t ON t.id = a.tenant_id \
         WHERE a.status = 'past_due' AND a.past_due_since <= $1 AND t.suspended_at IS NULL \
         AND t.deleted_at IS NULL ORDER BY a.tenant_id LIMIT 500",
    )
    .bind(now.saturating_sub(settings.suspend_after_ms))
    .fetch_all(db.pool())
    .await?;
    let mut suspended = 0;
    for row in rows {
        let tenant_id: String = row.try_get("tenant_id")?;
        let mut tx = db.begin_tenant(&tenant_id).await?;
        if !super::suspension::suspend_in(&mut tx, &tenant_id, "payment", now).await? {
            continue;
        }
        let tenant = sqlx::query("SELECT slug, name FROM tenants WHERE id = $1")
            .bind(&tenant_id)
            .fetch_one(&mut *tx)
            .await?;
        let slug: String = tenant.try_get("slug")?;
        let name: String = tenant.try_get("name")?;
        let unpaid = sqlx::query(
            "SELECT number, total, currency FROM invoices WHERE tenant_id = $1 AND status = 'open' \
             ORDER BY issued_at LIMIT 1",
        )
        .bind(&tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (number, total) = match unpaid {
            Some(row) => (
                row.try_get::<String, _>("number")?,
                money::format(
                    row.try_get("total")?,
                    &row.try_get::<String, _>("currency")?,
                ),
            ),
            None => (String::from("-"), String::from("-")),
        };
        audit::record(
            &mut tx,
            Entry {
                actor: Actor::System,
                action: "tenant.suspended",
                tenant_id: Some(&tenant_id),
                subject: format!("tenant:{slug}"),
                details: serde_json::json!({"reason": "payment", "invoice": number}),
            },
        )
        .await?;
        let (subject, text) = super::mail::templates::suspended(
            &name,
            &number,
            &total,
            &super::outbox::console_link(settings, &slug),
        );
        super::outbox::tell(
            &mut tx,
            &tenant_id,
            super::outbox::Notice {
                kind: "suspended",
                template: "suspended",
                subject: &subject,
                text: &text,
                payload: serde_json::json!({"reason": "payment", "invoice": number}),
                dedupe: format!("suspended:{number}:{now}"),
                invoice_id: None,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        suspended += 1;
    }
    if suspended > 0 {
        db.changed(crate::db::cache::Topic::Access);
        tracing::info!(suspended, at = now, "tenants suspended for unpaid invoices");
    }
    Ok(suspended)
}
