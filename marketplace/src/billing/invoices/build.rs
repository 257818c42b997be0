//! What a tenant owes for a month: the lines of its invoice, before it is issued.

use sqlx::Row;

use crate::billing::coupons::{self, Held};
use crate::billing::periods::{self, prorate};
use crate::db::Db;
use crate::error::Result;
use crate::ledger::money;
use crate::month::MonthRange;

/// One line of a draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftLine {
    /// `plan`, `plugin`, `usage` or `discount`.
    pub kind: &'static str,
    /// What it is for.
    pub description: String,
    /// Minor units; negative for the discount.
    pub amount: i64,
    /// The plugin, for plugin and usage lines.
    pub plugin_id: Option<String>,
    /// The plugin subscription, for plugin and usage lines.
    pub subscription_id: Option<String>,
    /// The usage charge a usage line bills.
    pub usage_charge_id: Option<String>,
}

/// An invoice as it would be issued.
#[derive(Debug, Clone)]
pub struct Draft {
    /// ISO 4217.
    pub currency: String,
    /// The lines, discount last.
    pub lines: Vec<DraftLine>,
    /// The lines before the discount.
    pub subtotal: i64,
    /// The coupon's part (0 or more).
    pub discount: i64,
    /// subtotal − discount.
    pub total: i64,
    /// The coupon applied, if one took something off.
    pub coupon: Option<Held>,
}

/// The currencies tenant `tenant_id` owes something in for `month`: its plans' and its paid
/// plugins', each billed on an invoice of its own.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn currencies(db: &Db, tenant_id: &str, month: &MonthRange) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT currency FROM plan_periods WHERE tenant_id = $1 AND price_monthly > 0 \
           AND trial = 0 AND starts_at < $2 AND (ends_at IS NULL OR ends_at > $3) \
         UNION SELECT currency FROM ledger_subscriptions WHERE tenant_id = $1 \
           AND model = 'monthly' AND started_at < $2 AND (ended_at IS NULL OR ended_at > $3) \
         UNION SELECT currency FROM ledger_charges WHERE tenant_id = $1 AND source = 'usage' \
           AND period = $4 ORDER BY currency",
    )
    .bind(tenant_id)
    .bind(month.end_ms)
    .bind(month.start_ms)
    .bind(&month.key)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| row.try_get("currency").map_err(Into::into))
        .collect()
}

/// The draft of tenant `tenant_id`'s invoice in `currency` for `month` as of now (the month
/// need not have ended: the console's estimate of the next invoice reads the same). What the
/// tenant owes in other currencies is on their own invoices.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn build(db: &Db, tenant_id: &str, month: &MonthRange, currency: &str) -> Result<Draft> {
    let spans = periods::overlapping(db, tenant_id, month.start_ms, month.end_ms).await?;
    let currency = currency.to_owned();
    let mut lines = Vec::new();
    let mut plan_total: i64 = 0;
    for span in &spans {
        let to = span.ends_at.unwrap_or(month.end_ms);
        let (from, to) = (span.starts_at.max(month.start_ms), to.min(month.end_ms));
        if span.trial || span.price_monthly <= 0 || from >= to {
            continue;
        }
        if span.currency != currency {
            continue;
        }
        let amount = prorate(span.price_monthly, from, to, month.start_ms, month.end_ms);
        if amount <= 0 {
            continue;
        }
        plan_total += amount;
        lines.push(DraftLine {
            kind: "plan",
            description: format!(
                "{} plan, {} to {} ({} a month)",
                span.plan,
                crate::clock::date(from),
                crate::clock::date(to - 1),
                money::format(span.price_monthly, &span.currency)
            ),
            amount,
            plugin_id: None,
            subscription_id: None,
            usage_charge_id: None,
        });
    }
    let subscriptions = sqlx::query(
        "SELECT id, plugin_id, amount, currency, started_at, ended_at FROM ledger_subscriptions \
         WHERE tenant_id = $1 AND model = 'monthly' AND started_at < $2 \
         AND (ended_at IS NULL OR ended_at > $3) ORDER BY started_at, id",
    )
    .bind(tenant_id)
    .bind(month.end_ms)
    .bind(month.start_ms)
    .fetch_all(db.pool())
    .await?;
    for row in &subscriptions {
        let plugin: String = row.try_get("plugin_id")?;
        let price: i64 = row.try_get("amount")?;
        let plugin_currency: String = row.try_get("currency")?;
        let started: i64 = row.try_get("started_at")?;
        let ended: Option<i64> = row.try_get("ended_at")?;
        let (from, to) = (
            started.max(month.start_ms),
            ended.unwrap_or(month.end_ms).min(month.end_ms),
        );
        if plugin_currency != currency {
            continue;
        }
        let amount = prorate(price, from, to, month.start_ms, month.end_ms);
        if amount <= 0 {
            continue;
        }
        lines.push(DraftLine {
            kind: "plugin",
            description: format!(
                "Plugin {plugin}, {} to {} ({} a month)",
                crate::clock::date(from),
                crate::clock::date(to - 1),
                money::format(price, &plugin_currency)
            ),
            amount,
            plugin_id: Some(plugin),
            subscription_id: Some(row.try_get("id")?),
            usage_charge_id: None,
        });
    }
    let usage = sqlx::query(
        "SELECT id, plugin_id, subscription_id, gross, currency FROM ledger_charges \
         WHERE tenant_id = $1 AND source = 'usage' AND period = $2 ORDER BY plugin_id, id",
    )
    .bind(tenant_id)
    .bind(&month.key)
    .fetch_all(db.pool())
    .await?;
    for row in &usage {
        let plugin: String = row.try_get("plugin_id")?;
        let charge_currency: String = row.try_get("currency")?;
        if charge_currency != currency {
            continue;
        }
        let invocations: i64 = sqlx::query(
            "SELECT COALESCE(CAST(SUM(invocations) AS BIGINT), 0) AS n FROM usage_counters \
             WHERE tenant_id = $1 AND plugin_id = $2 AND month = $3",
        )
        .bind(tenant_id)
        .bind(&plugin)
        .bind(&month.key)
        .fetch_one(db.pool())
        .await?
        .try_get("n")?;
        lines.push(DraftLine {
            kind: "usage",
            description: format!(
                "Plugin {plugin} usage, {invocations} invocations in {}",
                month.key
            ),
            amount: row.try_get("gross")?,
            plugin_id: Some(plugin),
            subscription_id: row.try_get("subscription_id")?,
            usage_charge_id: Some(row.try_get("id")?),
        });
    }
    let subtotal: i64 = lines.iter().map(|l| l.amount).sum();
    let held = coupons::held(db, tenant_id).await?;
    let discount = held
        .as_ref()
        .map_or(0, |h| h.discount(plan_total, &currency));
    let coupon = held.filter(|_| discount > 0);
    if let Some(held) = &coupon {
        lines.push(DraftLine {
            kind: "discount",
            description: format!("Coupon {}: {}", held.coupon.code, held.coupon.description),
            amount: -discount,
            plugin_id: None,
            subscription_id: None,
            usage_charge_id: None,
        });
    }
    Ok(Draft {
        currency,
        subtotal,
        discount,
        total: subtotal - discount,
        lines,
        coupon,
    })
}
