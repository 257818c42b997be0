//! Quota alerts: a tenant is told (inbox, its webhook, e-mail) when its month's invocations
//! reach 80% and 100% of its plan's quota — once per threshold and month, however many
//! servers look (a unique row per tenant, quota, month and threshold).

use sqlx::Row;

use crate::error::Result;
use crate::state::AppState;

/// The thresholds, in percent of the quota.
pub const THRESHOLDS: [i64; 2] = [80, 100];

/// Alerts every tenant that crossed a threshold of its monthly invocations by `now`; answers
/// how many alerts were raised.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn check(state: &AppState, now: i64) -> Result<usize> {
    let db = state.db();
    let month = crate::usage::month_key(now)?;
    let rows = sqlx::query(
        "SELECT u.tenant_id, CAST(SUM(u.invocations) AS BIGINT) AS used, p.invocations_per_month, \
         t.slug, t.name FROM usage_counters u JOIN tenants t ON t.id = u.tenant_id \
         JOIN plans p ON p.name = t.plan WHERE u.month = $1 AND t.deleted_at IS NULL \
         GROUP BY u.tenant_id, p.invocations_per_month, t.slug, t.name \
         HAVING CAST(SUM(u.invocations) AS BIGINT) * 100 >= p.invocations_per_month * 80",
    )
    .bind(&month)
    .fetch_all(db.pool())
    .await?;
    let mut raised = 0;
    for row in rows {
        let tenant_id: String = row.try_get("tenant_id")?;
        let used: i64 = row.try_get("used")?;
        let limit: i64 = row.try_get("invocations_per_month")?;
        let slug: String = row.try_get("slug")?;
        let name: String = row.try_get("name")?;
        for threshold in THRESHOLDS {
            if used.saturating_mul(100) < limit.saturating_mul(threshold) {
                continue;
            }
            let mut tx = db.begin_tenant(&tenant_id).await?;
            let new = sqlx::query(
                "INSERT INTO quota_alerts (tenant_id, quota, month, threshold, at) \
                 VALUES ($1, 'invocations', $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(&tenant_id)
            .bind(&month)
            .bind(threshold)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if new.rows_affected() == 0 {
                continue;
            }
            let (subject, text) = super::mail::templates::quota_alert(
                &name,
                "invocations",
                u8::try_from(threshold).unwrap_or(100),
                used,
                limit,
                &month,
                &super::outbox::console_link(&state.settings().billing, &slug),
            );
            let payload = serde_json::json!({
                "quota": "invocations",
                "threshold": threshold,
                "used": used,
                "limit": limit,
                "month": month,
            });
            super::outbox::tell(
                &mut tx,
                &tenant_id,
                super::outbox::Notice {
                    kind: "quota_alert",
                    template: "quota_alert",
                    subject: &subject,
                    text: &text,
                    payload,
                    dedupe: format!("quota:invocations:{month}:{threshold}"),
                    invoice_id: None,
                },
                now,
            )
            .await?;
            tx.commit().await?;
            raised += 1;
        }
    }
    Ok(raised)
}
