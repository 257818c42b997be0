//! Coupons: operator-made codes that take a percentage or an amount off a tenant's plan.
//!
//! A coupon lasts `once` (the next invoice), `repeating` (`duration_months` invoices) or
//! `forever`; it may expire, be limited to some redemptions and to some plans. A tenant holds
//! one coupon at a time; redeeming the coupon it holds again changes nothing (idempotent), and
//! the redemption count is guarded so concurrent redemptions never pass the limit. The discount
//! applies to the plan's lines of an invoice only — plugins are the publishers' prices.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::audit::{self, Actor, Entry};
use crate::auth::Principal;
use crate::clock::{now_ms, rfc3339};
use crate::db::{Db, Tx};
use crate::error::{ConflictOnUnique, Error, Result};
use crate::id::new_id;
use crate::state::AppState;
use crate::tenants::Plan;

/// The most coupons kept (active or not).
pub const MAX_COUPONS: i64 = 10_000;

/// A coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Coupon {
    /// Its id.
    pub id: String,
    /// The code tenants enter, uppercase.
    pub code: String,
    /// Percent off the plan (1–100), or
    pub percent_off: Option<i64>,
    /// an amount off the plan, in minor units of `currency`.
    pub amount_off: Option<i64>,
    /// ISO 4217 of `amount_off`.
    pub currency: Option<String>,
    /// `once`, `repeating` or `forever`.
    pub duration: String,
    /// Invoices a `repeating` coupon applies to.
    pub duration_months: Option<i64>,
    /// After when it cannot be redeemed (RFC 3339).
    pub expires_at: Option<String>,
    /// How many tenants may redeem it.
    pub max_redemptions: Option<i64>,
    /// How many have.
    pub redemptions: i64,
    /// The plans it may be redeemed for (empty: every paid plan).
    pub plans: Vec<String>,
    /// Whether it can still be redeemed.
    pub active: bool,
    /// What it gives, for people.
    pub description: String,
}

/// A coupon to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCoupon {
    /// 3–32 of `A-Z 0-9 - _` (lowercase is raised).
    pub code: String,
    /// Percent off (1–100); give this or `amount_off`.
    pub percent_off: Option<i64>,
    /// Minor units off; give this or `percent_off`, with `currency`.
    pub amount_off: Option<i64>,
    /// ISO 4217 of `amount_off`.
    pub currency: Option<String>,
    /// `once`, `repeating` (with `duration_months`) or `forever`.
    pub duration: String,
    /// 1–120, for `repeating`.
    pub duration_months: Option<i64>,
    /// RFC 3339; after it the code is refused.
    pub expires_at: Option<String>,
    /// 1 or more.
    pub max_redemptions: Option<i64>,
    /// Plans it applies to; empty or absent: every paid plan.
    #[serde(default)]
    pub plans: Vec<String>,
}

macro_rules! select {
    ($where:literal) => {
        concat!(
            "SELECT id, code, percent_off, amount_off, currency, duration, duration_months, \
             expires_at, max_redemptions, redemptions, plans, active FROM coupons ",
            $where
        )
    };
}

struct Stored {
    coupon: Coupon,
    expires_at: Option<i64>,
}

fn from_row(row: &AnyRow) -> Result<Stored> {
    let plans: String = row.try_get("plans")?;
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    let mut coupon = Coupon {
        id: row.try_get("id")?,
        code: row.try_get("code")?,
        percent_off: row.try_get("percent_off")?,
        amount_off: row.try_get("amount_off")?,
        currency: row.try_get("currency")?,
        duration: row.try_get("duration")?,
        duration_months: row.try_get("duration_months")?,
        expires_at: expires_at.map(rfc3339),
        max_redemptions: row.try_get("max_redemptions")?,
        redemptions: row.try_get("redemptions")?,
        plans: plans
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        active: row.try_get::<i64, _>("active")? != 0,
        description: String::new(),
    };
    coupon.description = describe(&coupon);
    Ok(Stored { coupon, expires_at })
}

/// What `coupon` gives, e.g. `20% off the plan for 3 months`.
pub fn describe(coupon: &Coupon) -> String {
    let off = match (coupon.percent_off, coupon.amount_off, &coupon.currency) {
        (Some(percent), _, _) => format!("{percent}% off the plan"),
        (None, Some(amount), Some(currency)) => {
            format!(
                "{} off the plan",
                crate::ledger::money::format(amount, currency)
            )
        }
        _ => "nothing off".to_owned(),
    };
    match (coupon.duration.as_str(), coupon.duration_months) {
        ("once", _) => format!("{off} on the next invoice"),
        ("repeating", Some(1)) => format!("{off} for 1 month"),
        ("repeating", Some(months)) => format!("{off} for {months} months"),
        _ => format!("{off}, every month"),
    }
}

fn invalid(field: &str, why: impl std::fmt::Display) -> Error {
    Error::bad_request("invalid_coupon", format!("field `{field}` {why}"))
}

/// Creates a coupon (operators).
///
/// # Errors
///
/// 403 for anyone but an operator; 400 `invalid_coupon` naming the field; 409 `coupon_exists`;
/// 409 `too_many_coupons` past [`MAX_COUPONS`].
pub async fn create(state: &AppState, principal: &Principal, new: &NewCoupon) -> Result<Coupon> {
    principal.operator()?;
    let code = new.code.trim().to_ascii_uppercase();
    if !(3..=32).contains(&code.len())
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid("code", "must be 3 to 32 of A-Z, 0-9, `-` and `_`"));
    }
    match (new.percent_off, new.amount_off) {
        (Some(p), None) if (1..=100).contains(&p) => {}
        (Some(_), None) => return Err(invalid("percent_off", "must be from 1 to 100")),
        (None, Some(a)) if a > 0 && a <= 100_000_000 => {
            let currency = new.currency.as_deref().unwrap_or("");
            if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(invalid(
                    "currency",
                    "must be an ISO 4217 code such as \"USD\" with `amount_off`",
                ));
            }
        }
        (None, Some(_)) => {
            return Err(invalid(
                "amount_off",
                "must be from 1 to 100000000 minor units",
            ));
        }
        _ => return Err(invalid("percent_off", "or `amount_off`: give exactly one")),
    }
    let months = match (new.duration.as_str(), new.duration_months) {
        ("once" | "forever", None) => None,
        ("repeating", Some(m)) if (1..=120).contains(&m) => Some(m),
        ("repeating", _) => {
            return Err(invalid(
                "duration_months",
                "must be from 1 to 120 for a repeating coupon",
            ));
        }
        ("once" | "forever", Some(_)) => {
            return Err(invalid("duration_months", "is only for `repeating`"));
        }
        (other, _) => {
            return Err(invalid(
                "duration",
                format!("must be \"once\", \"repeating\" or \"forever\", not {other:?}"),
            ));
        }
    };
    let expires_at = new
        .expires_at
        .as_deref()
        .map(|text| {
            crate::clock::parse_rfc3339(text).ok_or_else(|| {
                invalid(
                    "expires_at",
                    format!("must be an RFC 3339 time, not {text:?}"),
                )
            })
        })
        .transpose()?;
    if let Some(max) = new.max_redemptions
        && max < 1
    {
        return Err(invalid("max_redemptions", "must be 1 or more"));
    }
    if new.plans.len() > 20 {
        return Err(invalid("plans", "may name at most 20 plans"));
    }
    for plan in &new.plans {
        let known = crate::tenants::plan(state.db(), plan).await;
        if known.is_err() {
            return Err(invalid("plans", format!("names no plan {plan:?}")));
        }
    }
    let db = state.db();
    let mut tx = db.begin().await?;
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM coupons")
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    if count >= MAX_COUPONS {
        return Err(Error::conflict(
            "too_many_coupons",
            format!("there are {count} coupons, the most kept; deactivate some first"),
        ));
    }
    let id = new_id();
    sqlx::query(
        "INSERT INTO coupons (id, code, percent_off, amount_off, currency, duration, \
         duration_months, expires_at, max_redemptions, redemptions, plans, active, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, 1, $11)",
    )
    .bind(&id)
    .bind(&code)
    .bind(new.percent_off)
    .bind(new.amount_off)
    .bind(new.amount_off.and(new.currency.clone()))
    .bind(&new.duration)
    .bind(months)
    .bind(expires_at)
    .bind(new.max_redemptions)
    .bind(new.plans.join(","))
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .conflict_on_unique("coupon_exists", || {
        format!("a coupon {code:?} exists already")
    })?;
    audit::record(
        &mut tx,
        Entry {
            actor: Actor::from(principal),
            action: "coupon.created",
            tenant_id: None,
            subject: format!("coupon:{code}"),
            details: serde_json::json!({
                "percent_off": new.percent_off, "amount_off": new.amount_off,
                "duration": new.duration, "duration_months": months,
                "max_redemptions": new.max_redemptions, "plans": new.plans,
            }),
        },
    )
    .await?;
    let row = sqlx::query(select!("WHERE id = $1"))
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(from_row(&row)?.coupon)
}

/// Every coupon, newest first (operators).
///
/// # Errors
///
/// 403 for anyone but an operator; [`Error::Database`].
pub async fn list(state: &AppState, principal: &Principal) -> Result<Vec<Coupon>> {
    principal.operator()?;
    let rows = sqlx::query(select!("ORDER BY created_at DESC, id DESC LIMIT 10000"))
        .fetch_all(state.db().pool())
        .await?;
    rows.iter()
        .map(|row| from_row(row).map(|s| s.coupon))
        .collect()
}

/// Deactivates coupon `code` (operators): it is refused from now on; tenants holding it keep it.
///
/// # Errors
///
/// 403; 404 for an unknown code; [`Error::Database`].
pub async fn deactivate(state: &AppState, principal: &Principal, code: &str) -> Result<Coupon> {
    principal.operator()?;
    let code = code.to_ascii_uppercase();
    let mut tx = state.db().begin().await?;
    let changed = sqlx::query("UPDATE coupons SET active = 0 WHERE code = $1")
        .bind(&code)
        .execute(&mut *tx)
        .await?;
    if changed.rows_affected() == 0 {
        return Err(Error::not_found(format!("coupon {code:?}")));
    }
    audit::record(
        &mut tx,
        Entry {
            actor: Actor::from(principal),
            action: "coupon.deactivated",
            tenant_id: None,
            subject: format!("coupon:{code}"),
            details: serde_json::json!({}),
        },
    )
    .await?;
    let row = sqlx::query(select!("WHERE code = $1"))
        .bind(&code)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(from_row(&row)?.coupon)
}

/// Coupon `code` if it may be redeemed for `plan` at `now`, as checkout shows it.
///
/// # Errors
///
/// 404 `unknown coupon`; 409 `coupon_inactive`, `coupon_expired`, `coupon_exhausted`,
/// `coupon_not_for_plan`.
pub async fn check(db: &Db, code: &str, plan: &Plan, now: i64) -> Result<Coupon> {
    let row = sqlx::query(select!("WHERE code = $1"))
        .bind(code.trim().to_ascii_uppercase())
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| Error::not_found(format!("coupon {code:?}")))?;
    let stored = from_row(&row)?;
    usable(&stored, plan, now)?;
    Ok(stored.coupon)
}

fn usable(stored: &Stored, plan: &Plan, now: i64) -> Result<()> {
    let coupon = &stored.coupon;
    let code = &coupon.code;
    if !coupon.active {
        return Err(Error::conflict(
            "coupon_inactive",
            format!("coupon {code:?} is no longer offered"),
        ));
    }
    if stored.expires_at.is_some_and(|at| at <= now) {
        return Err(Error::conflict(
            "coupon_expired",
            format!("coupon {code:?} has expired"),
        ));
    }
    if coupon
        .max_redemptions
        .is_some_and(|max| coupon.redemptions >= max)
    {
        return Err(Error::conflict(
            "coupon_exhausted",
            format!("coupon {code:?} has been redeemed as often as it may be"),
        ));
    }
    if (!coupon.plans.is_empty() && !coupon.plans.contains(&plan.name)) || plan.price_monthly <= 0 {
        return Err(Error::conflict(
            "coupon_not_for_plan",
            format!("coupon {code:?} does not apply to plan {:?}", plan.name),
        ));
    }
    if let Some(currency) = &coupon.currency
        && *currency != plan.currency
    {
        return Err(Error::conflict(
            "coupon_not_for_plan",
            format!(
                "coupon {code:?} is in {currency}, plan {:?} in {}",
                plan.name, plan.currency
            ),
        ));
    }
    Ok(())
}

/// Redeems coupon `code` for the tenant on `plan`, in `tx`. The coupon the tenant holds
/// already answers `Ok` and changes nothing.
///
/// # Errors
///
/// As [`check`]; 409 `coupon_in_use` when the tenant holds another coupon.
pub async fn redeem(
    tx: &mut Tx,
    actor: Actor,
    tenant_id: &str,
    code: &str,
    plan: &Plan,
    now: i64,
) -> Result<Coupon> {
    let row = sqlx::query(select!("WHERE code = $1"))
        .bind(code.trim().to_ascii_uppercase())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::not_found(format!("coupon {code:?}")))?;
    let stored = from_row(&row)?;
    let held = sqlx::query(
        "SELECT coupon_id FROM coupon_redemptions WHERE tenant_id = $1 AND ended_at IS NULL",
    )
    .bind(tenant_id)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(held) = held {
        let held: String = held.try_get("coupon_id")?;
        if held == stored.coupon.id {
            return Ok(stored.coupon);
        }
        return Err(Error::conflict(
            "coupon_in_use",
            "the tenant holds another coupon; one applies at a time".to_owned(),
        ));
    }
    let before = sqlx::query(
        "SELECT 1 AS one FROM coupon_redemptions WHERE tenant_id = $1 AND coupon_id = $2",
    )
    .bind(tenant_id)
    .bind(&stored.coupon.id)
    .fetch_optional(&mut **tx)
    .await?;
    if before.is_some() {
        return Err(Error::conflict(
            "coupon_used",
            format!(
                "the tenant has redeemed coupon {:?} before",
                stored.coupon.code
            ),
        ));
    }
    usable(&stored, plan, now)?;
    let counted = sqlx::query(
        "UPDATE coupons SET redemptions = redemptions + 1 WHERE id = $1 AND active = 1 \
         AND (max_redemptions IS NULL OR redemptions < max_redemptions)",
    )
    .bind(&stored.coupon.id)
    .execute(&mut **tx)
    .await?;
    if counted.rows_affected() == 0 {
        return Err(Error::conflict(
            "coupon_exhausted",
            format!(
                "coupon {:?} has been redeemed as often as it may be",
                stored.coupon.code
            ),
        ));
    }
    sqlx::query(
        "INSERT INTO coupon_redemptions (id, coupon_id, tenant_id, redeemed_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(new_id())
    .bind(&stored.coupon.id)
    .bind(tenant_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    audit::record(
        tx,
        Entry {
            actor,
            action: "coupon.redeemed",
            tenant_id: Some(tenant_id),
            subject: format!("coupon:{}", stored.coupon.code),
            details: serde_json::json!({"plan": plan.name}),
        },
    )
    .await?;
    Ok(stored.coupon)
}

/// The coupon the tenant holds, if one, as an invoice applies it.
#[derive(Debug, Clone)]
pub struct Held {
    /// The coupon.
    pub coupon: Coupon,
    /// Invoices it applied to so far.
    pub months_applied: i64,
}

impl Held {
    /// What it takes off `plan_amount` (minor units of `currency`) on the next invoice,
    /// rounded down; 0 once used up.
    pub fn discount(&self, plan_amount: i64, currency: &str) -> i64 {
        let coupon = &self.coupon;
        let left = match coupon.duration.as_str() {
            "once" => self.months_applied < 1,
            "repeating" => self.months_applied < coupon.duration_months.unwrap_or(0),
            _ => true,
        };
        if !left || plan_amount <= 0 {
            return 0;
        }
        match (
            coupon.percent_off,
            coupon.amount_off,
            coupon.currency.as_deref(),
        ) {
            (Some(percent), _, _) => {
                let off = i128::from(plan_amount) * i128::from(percent) / 100;
                i64::try_from(off).unwrap_or(plan_amount).min(plan_amount)
            }
            (None, Some(amount), Some(c)) if c == currency => amount.min(plan_amount),
            _ => 0,
        }
    }
}

/// The coupon tenant `tenant_id` holds, if one.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn held(db: &Db, tenant_id: &str) -> Result<Option<Held>> {
    let row = sqlx::query(
        "SELECT c.id, c.code, c.percent_off, c.amount_off, c.currency, c.duration, \
         c.duration_months, c.expires_at, c.max_redemptions, c.redemptions, c.plans, c.active, \
         r.months_applied FROM coupon_redemptions r JOIN coupons c ON c.id = r.coupon_id \
         WHERE r.tenant_id = $1 AND r.ended_at IS NULL",
    )
    .bind(tenant_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Held {
        coupon: from_row(&row)?.coupon,
        months_applied: row.try_get("months_applied")?,
    }))
}

/// Counts one more invoice against the tenant's coupon in `tx`; a coupon used up ends.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn applied(tx: &mut Tx, tenant_id: &str, held: &Held, now: i64) -> Result<()> {
    let months = held.months_applied + 1;
    let ends = match held.coupon.duration.as_str() {
        "once" => true,
        "repeating" => months >= held.coupon.duration_months.unwrap_or(0),
        _ => false,
    };
    sqlx::query(
        "UPDATE coupon_redemptions SET months_applied = $1, ended_at = $2 \
         WHERE tenant_id = $3 AND coupon_id = $4 AND ended_at IS NULL",
    )
    .bind(months)
    .bind(ends.then_some(now))
    .bind(tenant_id)
    .bind(&held.coupon.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coupon(
        duration: &str,
        months: Option<i64>,
        percent: Option<i64>,
        amount: Option<i64>,
    ) -> Held {
        let mut coupon = Coupon {
            id: "c".into(),
            code: "X".into(),
            percent_off: percent,
            amount_off: amount,
            currency: amount.map(|_| "USD".into()),
            duration: duration.into(),
            duration_months: months,
            expires_at: None,
            max_redemptions: None,
            redemptions: 0,
            plans: vec![],
            active: true,
            description: String::new(),
        };
        coupon.description = describe(&coupon);
        Held {
            coupon,
            months_applied: 0,
        }
    }

    #[test]
    fn discounts_round_down_and_end_with_their_duration() {
        let mut twenty = coupon("repeating", Some(2), Some(20), None);
        assert_eq!(twenty.coupon.description, "20% off the plan for 2 months");
        // 20% of 29.99 = 5.998 → 5.99.
        assert_eq!(twenty.discount(2999, "USD"), 599);
        twenty.months_applied = 2;
        assert_eq!(twenty.discount(2999, "USD"), 0);
        let five = coupon("once", None, None, Some(500));
        assert_eq!(five.discount(2900, "USD"), 500);
        assert_eq!(five.discount(300, "USD"), 300, "never more than the plan");
        assert_eq!(five.discount(2900, "EUR"), 0, "another currency");
        let forever = Held {
            months_applied: 99,
            ..coupon("forever", None, Some(100), None)
        };
        assert_eq!(forever.discount(2900, "USD"), 2900);
    }
}
