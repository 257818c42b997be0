//! A tenant's plan subscription: trial, upgrade, downgrade and cancellation, as a tenant admin
//! asks for them; and what the end of a trial or of a month does ([`end_trials`],
//! [`apply_pending`]).
//!
//! - A **trial** of a paid plan with `trial_days`, once per tenant, from a free plan.
//! - An **upgrade** (to a dearer plan) applies at once; the invoice prorates both plans over
//!   the month ([`super::periods`]). A paid plan needs a payment method unless it is the plan
//!   being trialled.
//! - A **downgrade** (to a cheaper plan, `free` included: a cancellation) applies at the start
//!   of next month. It is refused with every reason while the tenant would not fit the smaller
//!   plan: more installs than it allows, more kv data, paid plugins on a plan without them.
//! - Every change is audited and reaches the tenant's sandboxes at once.

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::account::{self, Status};
use super::periods;
use crate::audit::{self, Actor, Entry};
use crate::auth::Principal;
use crate::clock::{now_ms, rfc3339};
use crate::db::Tx;
use crate::db::cache::Topic;
use crate::error::{Error, Result};
use crate::installs::sync::{self, PlanScope};
use crate::state::AppState;
use crate::tenants::plans::plan_in;
use crate::tenants::{self, DEFAULT_PLAN, Plan, Tenant, TenantRole};

/// What a plan change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PlanChanged {
    /// The plan the tenant is on now.
    pub plan: String,
    /// The plan it moves to at the start of next month, if a downgrade was scheduled.
    pub pending_plan: Option<String>,
    /// When the pending plan applies (RFC 3339).
    pub effective_at: Option<String>,
    /// `upgraded`, `downgrade_scheduled`, `trial_started`, `unchanged` or `pending_cleared`.
    pub outcome: String,
}

/// One reason a downgrade is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Misfit {
    /// `installs`, `kv_bytes` or `paid_plugins`.
    pub quota: String,
    /// What the tenant has.
    pub used: i64,
    /// What the plan allows.
    pub limit: i64,
    /// A sentence saying what to do.
    pub message: String,
}

/// What moving from plan `current` to `target` is: the one rule [`change_plan`] follows and
/// pages word their buttons by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Applies at once: a dearer plan (or, at the same price, a higher one), or the plan being
    /// trialled (the trial converts).
    Upgrade,
    /// Applies at the start of next month, if the tenant fits.
    Downgrade,
    /// The plan the tenant is on: choosing it clears a scheduled downgrade.
    Same,
}

/// See [`ChangeKind`]; `trialling` when the tenant is on `current`'s trial.
pub fn change_kind(current: &Plan, target: &Plan, trialling: bool) -> ChangeKind {
    if target.name == current.name {
        return if trialling {
            ChangeKind::Upgrade
        } else {
            ChangeKind::Same
        };
    }
    if target.price_monthly > current.price_monthly
        || (target.price_monthly == current.price_monthly && target.position > current.position)
    {
        ChangeKind::Upgrade
    } else {
        ChangeKind::Downgrade
    }
}

/// Starts tenant `slug`'s trial of `plan_name` as `principal` (admin), redeeming `coupon` if
/// given.
///
/// # Errors
///
/// 400 `unknown_plan`; 409 `no_trial` (a plan without one), `trial_used`, `already_paid`
/// (the tenant is on a paid plan), and the coupon's errors ([`super::coupons::redeem`]).
pub async fn start_trial(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    plan_name: &str,
    coupon: Option<&str>,
) -> Result<PlanChanged> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Admin).await?;
    let plan = known_plan(state, plan_name).await?;
    if plan.trial_days <= 0 || plan.price_monthly <= 0 {
        return Err(Error::conflict(
            "no_trial",
            format!("plan {:?} has no trial", plan.name),
        ));
    }
    let now = now_ms();
    let mut tx = state.db().begin_tenant(&tenant.id).await?;
    tenants::lock_tenant(&mut tx, &tenant).await?;
    let current = current_plan(&mut tx, &tenant.id).await?;
    let acct = account::ensure(&mut tx, &tenant.id).await?;
    if acct.trial_used {
        return Err(Error::conflict(
            "trial_used",
            format!(
                "tenant {slug:?} has had its trial; upgrade to {:?} instead",
                plan.name
            ),
        ));
    }
    if current.price_monthly > 0 {
        return Err(Error::conflict(
            "already_paid",
            format!(
                "tenant {slug:?} is on the paid plan {:?}; a trial starts from a free plan",
                current.name
            ),
        ));
    }
    if let Some(code) = coupon {
        super::coupons::redeem(
            &mut tx,
            Actor::from(principal),
            &tenant.id,
            code,
            &plan,
            now,
        )
        .await?;
    }
    let ends = now.saturating_add(plan.trial_days.saturating_mul(crate::clock::DAY_MS));
    sqlx::query(
        "UPDATE billing_accounts SET status = 'trialing', trial_used = 1, trial_ends_at = $1, \
         trial_warned = 0, pending_plan = NULL, pending_plan_at = NULL, updated_at = $2 \
         WHERE tenant_id = $3",
    )
    .bind(ends)
    .bind(now)
    .bind(&tenant.id)
    .execute(&mut *tx)
    .await?;
    move_to(&mut tx, &tenant, &plan, true, now).await?;
    record(
        &mut tx,
        Actor::from(principal),
        &tenant,
        "billing.trial_started",
        serde_json::json!({"plan": plan.name, "from": current.name, "ends_at": rfc3339(ends)}),
    )
    .await?;
    crate::notifications::notify(
        &mut tx,
        "tenant",
        &tenant.id,
        "trial_started",
        &format!(
            "Your {}-day trial of the {} plan has started; it ends {}.",
            plan.trial_days,
            plan.name,
            rfc3339(ends)
        ),
        serde_json::json!({"plan": plan.name, "trial_ends_at": rfc3339(ends)}),
    )
    .await?;
    tx.commit().await?;
    applied(state, &tenant.id).await;
    Ok(PlanChanged {
        plan: plan.name,
        pending_plan: None,
        effective_at: None,
        outcome: "trial_started".to_owned(),
    })
}

/// Moves tenant `slug` to `plan_name` as `principal` (admin): at once for a dearer plan (or the
/// trialled plan: the trial converts), at the start of next month for a cheaper one; choosing
/// the current plan clears a scheduled downgrade. `coupon` is redeemed with an upgrade.
///
/// # Errors
///
/// 400 `unknown_plan`; 409 `downgrade_blocked` with `details.reasons` ([`Misfit`]s), 409
/// `payment_method_required` for a paid plan without one, 409 `billing_not_configured`, and the
/// coupon's errors.
pub async fn change_plan(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    plan_name: &str,
    coupon: Option<&str>,
) -> Result<PlanChanged> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Admin).await?;
    let target = known_plan(state, plan_name).await?;
    let now = now_ms();
    let mut tx = state.db().begin_tenant(&tenant.id).await?;
    tenants::lock_tenant(&mut tx, &tenant).await?;
    let current = current_plan(&mut tx, &tenant.id).await?;
    let acct = account::ensure(&mut tx, &tenant.id).await?;
    let trialling = acct.status == Status::Trialing;
    if target.name == current.name && !trialling {
        if let Some(code) = coupon {
            super::coupons::redeem(
                &mut tx,
                Actor::from(principal),
                &tenant.id,
                code,
                &target,
                now,
            )
            .await?;
        }
        let cleared = acct.pending_plan.is_some();
        sqlx::query(
            "UPDATE billing_accounts SET pending_plan = NULL, pending_plan_at = NULL, \
             updated_at = $1 WHERE tenant_id = $2",
        )
        .bind(now)
        .bind(&tenant.id)
        .execute(&mut *tx)
        .await?;
        if cleared {
            record(
                &mut tx,
                Actor::from(principal),
                &tenant,
                "billing.downgrade_cancelled",
                serde_json::json!({"plan": current.name}),
            )
            .await?;
        }
        tx.commit().await?;
        return Ok(PlanChanged {
            plan: current.name,
            pending_plan: None,
            effective_at: None,
            outcome: if cleared {
                "pending_cleared"
            } else {
                "unchanged"
            }
            .to_owned(),
        });
    }
    if change_kind(&current, &target, trialling) == ChangeKind::Upgrade {
        if target.price_monthly > 0 {
            state.settings().billing.processor()?;
            if acct.payment_method.is_none() {
                return Err(Error::conflict(
                    "payment_method_required",
                    format!(
                        "plan {:?} costs {} a month: add a payment method first",
                        target.name,
                        crate::ledger::money::format(target.price_monthly, &target.currency)
                    ),
                ));
            }
        }
        if let Some(code) = coupon {
            super::coupons::redeem(
                &mut tx,
                Actor::from(principal),
                &tenant.id,
                code,
                &target,
                now,
            )
            .await?;
        }
        let status = if target.price_monthly > 0 {
            Status::Active
        } else {
            Status::Free
        };
        let status = if acct.status == Status::PastDue {
            Status::PastDue
        } else {
            status
        };
        sqlx::query(
            "UPDATE billing_accounts SET status = $1, trial_ends_at = NULL, pending_plan = NULL, \
             pending_plan_at = NULL, updated_at = $2 WHERE tenant_id = $3",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(&tenant.id)
        .execute(&mut *tx)
        .await?;
        move_to(&mut tx, &tenant, &target, false, now).await?;
        record(&mut tx, Actor::from(principal),
            &tenant,
            "billing.plan_upgraded",
            serde_json::json!({"from": current.name, "to": target.name, "trial_converted": trialling}),
        )
        .await?;
        tx.commit().await?;
        applied(state, &tenant.id).await;
        return Ok(PlanChanged {
            plan: target.name,
            pending_plan: None,
            effective_at: None,
            outcome: "upgraded".to_owned(),
        });
    }
    // A downgrade: refused while the tenant does not fit.
    let misfits = misfits(state, &mut tx, &tenant, &target).await?;
    if !misfits.is_empty() {
        let message = misfits
            .iter()
            .map(|m| m.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::Conflict {
            code: "downgrade_blocked",
            message: format!(
                "tenant {slug:?} does not fit plan {:?}: {message}",
                target.name
            ),
            details: Some(serde_json::json!({ "reasons": misfits })),
        });
    }
    if trialling {
        // Nothing was paid for the trial: leaving it is immediate.
        sqlx::query(
            "UPDATE billing_accounts SET status = $1, trial_ends_at = NULL, pending_plan = NULL, \
             pending_plan_at = NULL, updated_at = $2 WHERE tenant_id = $3",
        )
        .bind(if target.price_monthly > 0 {
            "active"
        } else {
            "free"
        })
        .bind(now)
        .bind(&tenant.id)
        .execute(&mut *tx)
        .await?;
        move_to(&mut tx, &tenant, &target, false, now).await?;
        record(
            &mut tx,
            Actor::from(principal),
            &tenant,
            "billing.trial_ended",
            serde_json::json!({"from": current.name, "to": target.name}),
        )
        .await?;
        tx.commit().await?;
        applied(state, &tenant.id).await;
        return Ok(PlanChanged {
            plan: target.name,
            pending_plan: None,
            effective_at: None,
            outcome: "downgraded".to_owned(),
        });
    }
    sqlx::query(
        "UPDATE billing_accounts SET pending_plan = $1, pending_plan_at = $2, updated_at = $2 \
         WHERE tenant_id = $3",
    )
    .bind(&target.name)
    .bind(now)
    .bind(&tenant.id)
    .execute(&mut *tx)
    .await?;
    let effective = crate::month::of(now)?.end_ms;
    record(&mut tx, Actor::from(principal),
        &tenant,
        "billing.downgrade_scheduled",
        serde_json::json!({"from": current.name, "to": target.name, "effective_at": rfc3339(effective)}),
    )
    .await?;
    tx.commit().await?;
    Ok(PlanChanged {
        plan: current.name,
        pending_plan: Some(target.name),
        effective_at: Some(rfc3339(effective)),
        outcome: "downgrade_scheduled".to_owned(),
    })
}

/// Cancels tenant `slug`'s paid plan at the end of the month: a downgrade to [`DEFAULT_PLAN`].
///
/// # Errors
///
/// As [`change_plan`].
pub async fn cancel(state: &AppState, principal: &Principal, slug: &str) -> Result<PlanChanged> {
    change_plan(state, principal, slug, DEFAULT_PLAN, None).await
}

/// Why tenant `tenant` does not fit `plan`, every reason (none: it fits).
async fn misfits(
    state: &AppState,
    tx: &mut Tx,
    tenant: &Tenant,
    plan: &Plan,
) -> Result<Vec<Misfit>> {
    let mut out = Vec::new();
    let installs: i64 = sqlx::query("SELECT COUNT(*) AS n FROM installs WHERE tenant_id = $1")
        .bind(&tenant.id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("n")?;
    if installs > plan.max_installs {
        out.push(Misfit {
            quota: "installs".to_owned(),
            used: installs,
            limit: plan.max_installs,
            message: format!(
                "{installs} plugins are installed and plan {:?} allows {}: uninstall {}",
                plan.name,
                plan.max_installs,
                installs - plan.max_installs
            ),
        });
    }
    if let Ok(runtime) = state.runtime()
        && let Some(kv) = runtime.host.kv_store()
    {
        let bytes = kv
            .tenant_bytes(&tenant.id)
            .await
            .map_err(|e| Error::Internal(format!("kv usage: {e}")))?;
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        if bytes > plan.kv_bytes {
            out.push(Misfit {
                quota: "kv_bytes".to_owned(),
                used: bytes,
                limit: plan.kv_bytes,
                message: format!(
                    "plugins store {bytes} bytes of kv data and plan {:?} allows {}",
                    plan.name, plan.kv_bytes
                ),
            });
        }
    }
    if !plan.paid_plugins {
        let rows = sqlx::query(
            "SELECT plugin_id FROM ledger_subscriptions WHERE tenant_id = $1 \
             AND status = 'active' ORDER BY plugin_id",
        )
        .bind(&tenant.id)
        .fetch_all(&mut **tx)
        .await?;
        let paid: Vec<String> = rows
            .iter()
            .map(|row| row.try_get("plugin_id"))
            .collect::<std::result::Result<_, _>>()?;
        if !paid.is_empty() {
            out.push(Misfit {
                quota: "paid_plugins".to_owned(),
                used: i64::try_from(paid.len()).unwrap_or(i64::MAX),
                limit: 0,
                message: format!(
                    "plan {:?} has no paid plugins: uninstall {}",
                    plan.name,
                    paid.join(", ")
                ),
            });
        }
    }
    Ok(out)
}

/// The plan named `name` (what a request's field `plan` names), as a 400 `unknown_plan` if
/// there is none.
///
/// # Errors
///
/// 400 `unknown_plan`; [`Error::Database`].
pub async fn known_plan(state: &AppState, name: &str) -> Result<Plan> {
    tenants::plan(state.db(), name).await.map_err(|e| match e {
        Error::NotFound(_) => Error::bad_request(
            "unknown_plan",
            format!("field `plan`: there is no plan {name:?}"),
        ),
        other => other,
    })
}

/// The plan the tenant is on, read in `tx`.
async fn current_plan(tx: &mut Tx, tenant_id: &str) -> Result<Plan> {
    let name: String = sqlx::query("SELECT plan FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("plan")?;
    plan_in(tx, &name).await
}

/// Puts `tenant` on `plan` at `at` in `tx`: its row and its span.
pub(crate) async fn move_to(
    tx: &mut Tx,
    tenant: &Tenant,
    plan: &Plan,
    trial: bool,
    at: i64,
) -> Result<()> {
    sqlx::query("UPDATE tenants SET plan = $1 WHERE id = $2")
        .bind(&plan.name)
        .bind(&tenant.id)
        .execute(&mut **tx)
        .await?;
    periods::switch(tx, &tenant.id, plan, trial, at).await
}

async fn record(
    tx: &mut Tx,
    actor: Actor,
    tenant: &Tenant,
    action: &str,
    details: serde_json::Value,
) -> Result<()> {
    audit::record(
        tx,
        Entry {
            actor,
            action,
            tenant_id: Some(&tenant.id),
            subject: format!("tenant:{}", tenant.slug),
            details,
        },
    )
    .await
}

/// After a committed plan change of tenant `tenant_id`: caches forget the old plan, and the
/// host's sandboxes take the new limits for their next calls.
pub(crate) async fn applied(state: &AppState, tenant_id: &str) {
    state.db().changed(Topic::Access);
    sync::apply_plan(state, PlanScope::Tenant(tenant_id)).await;
}

/// Ends every trial that ended by `now`: with a payment method the tenant stays on the plan and
/// pays from the trial's end; without one it returns to [`DEFAULT_PLAN`]. Returns how many ended.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn end_trials(state: &AppState, now: i64) -> Result<usize> {
    let db = state.db();
    let rows = sqlx::query(
        "SELECT tenant_id, trial_ends_at, payment_method FROM billing_accounts \
         WHERE status = 'trialing' AND trial_ends_at <= $1 ORDER BY tenant_id LIMIT 500",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    let mut ended = 0;
    for row in rows {
        let tenant_id: String = row.try_get("tenant_id")?;
        let at: i64 = row.try_get("trial_ends_at")?;
        let paying = row
            .try_get::<Option<String>, _>("payment_method")?
            .is_some();
        let Some(tenant) = tenants::by_id(db, &tenant_id).await? else {
            continue;
        };
        let mut tx = db.begin_tenant(&tenant.id).await?;
        tenants::lock_tenant(&mut tx, &tenant).await?;
        let current = current_plan(&mut tx, &tenant.id).await?;
        let (next, status, message) = if paying {
            (
                current.clone(),
                Status::Active,
                format!(
                    "Your trial of the {} plan ended; the plan continues, paid monthly.",
                    current.name
                ),
            )
        } else {
            (
                plan_in(&mut tx, DEFAULT_PLAN).await?,
                Status::Free,
                format!(
                    "Your trial of the {} plan ended without a payment method; you are back on the {} plan.",
                    current.name, DEFAULT_PLAN
                ),
            )
        };
        let changed = sqlx::query(
            "UPDATE billing_accounts SET status = $1, trial_ends_at = NULL, updated_at = $2 \
             WHERE tenant_id = $3 AND status = 'trialing'",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(&tenant.id)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            continue;
        }
        move_to(&mut tx, &tenant, &next, false, at).await?;
        record(
            &mut tx,
            Actor::System,
            &tenant,
            "billing.trial_ended",
            serde_json::json!({"from": current.name, "to": next.name}),
        )
        .await?;
        crate::notifications::notify(
            &mut tx,
            "tenant",
            &tenant.id,
            "trial_ended",
            &message,
            serde_json::json!({"plan": next.name}),
        )
        .await?;
        tx.commit().await?;
        applied(state, &tenant.id).await;
        ended += 1;
    }
    Ok(ended)
}

/// Tells each tenant whose trial ends within the warning period, once (inbox and e-mail).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn warn_trials(state: &AppState, now: i64) -> Result<usize> {
    let settings = &state.settings().billing;
    let db = state.db();
    let rows = sqlx::query(
        "SELECT tenant_id, trial_ends_at FROM billing_accounts WHERE status = 'trialing' \
         AND trial_warned = 0 AND trial_ends_at <= $1 ORDER BY tenant_id LIMIT 500",
    )
    .bind(now.saturating_add(settings.trial_warning_ms))
    .fetch_all(db.pool())
    .await?;
    let mut warned = 0;
    for row in rows {
        let tenant_id: String = row.try_get("tenant_id")?;
        let ends: i64 = row.try_get("trial_ends_at")?;
        let Some(tenant) = tenants::by_id(db, &tenant_id).await? else {
            continue;
        };
        let mut tx = db.begin_tenant(&tenant.id).await?;
        let marked = sqlx::query(
            "UPDATE billing_accounts SET trial_warned = 1 WHERE tenant_id = $1 AND trial_warned = 0",
        )
        .bind(&tenant.id)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() == 0 {
            continue;
        }
        let left_ms = u64::try_from((ends - now).max(0)).unwrap_or(0);
        let days_left = u32::try_from(left_ms.div_ceil(crate::clock::DAY_MS.unsigned_abs()))
            .unwrap_or(u32::MAX);
        let ends_on = crate::clock::date(ends);
        let (subject, text) = super::mail::templates::trial_ending(
            &tenant.name,
            &tenant.plan,
            &ends_on,
            days_left,
            &super::outbox::console_link(settings, &tenant.slug),
        );
        super::outbox::tell(
            &mut tx,
            &tenant.id,
            super::outbox::Notice {
                kind: "trial_ending",
                template: "trial_ending",
                subject: &subject,
                text: &text,
                payload: serde_json::json!({"plan": tenant.plan, "trial_ends_at": rfc3339(ends)}),
                dedupe: format!("trial_ending:{ends}"),
                invoice_id: None,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        warned += 1;
    }
    Ok(warned)
}

/// Applies the downgrades asked for before the month of `now` began, at that month's start.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn apply_pending(state: &AppState, now: i64) -> Result<usize> {
    let db = state.db();
    let month_start = crate::month::of(now)?.start_ms;
    let rows = sqlx::query(
        "SELECT tenant_id, pending_plan FROM billing_accounts WHERE pending_plan IS NOT NULL \
         AND pending_plan_at < $1 ORDER BY tenant_id LIMIT 500",
    )
    .bind(month_start)
    .fetch_all(db.pool())
    .await?;
    let mut applied_count = 0;
    for row in rows {
        let tenant_id: String = row.try_get("tenant_id")?;
        let pending: String = row.try_get("pending_plan")?;
        let Some(tenant) = tenants::by_id(db, &tenant_id).await? else {
            continue;
        };
        let mut tx = db.begin_tenant(&tenant.id).await?;
        tenants::lock_tenant(&mut tx, &tenant).await?;
        let target = plan_in(&mut tx, &pending).await?;
        let cleared = sqlx::query(
            "UPDATE billing_accounts SET pending_plan = NULL, pending_plan_at = NULL, \
             status = CASE WHEN status = 'past_due' THEN status WHEN $1 > 0 THEN 'active' \
             ELSE 'free' END, updated_at = $2 WHERE tenant_id = $3 AND pending_plan = $4",
        )
        .bind(target.price_monthly)
        .bind(now)
        .bind(&tenant.id)
        .bind(&pending)
        .execute(&mut *tx)
        .await?;
        if cleared.rows_affected() == 0 {
            continue;
        }
        move_to(&mut tx, &tenant, &target, false, month_start).await?;
        record(
            &mut tx,
            Actor::System,
            &tenant,
            "billing.plan_downgraded",
            serde_json::json!({"from": tenant.plan, "to": target.name}),
        )
        .await?;
        crate::notifications::notify(
            &mut tx,
            "tenant",
            &tenant.id,
            "plan_changed",
            &format!("You are on the {} plan from today.", target.name),
            serde_json::json!({"plan": target.name}),
        )
        .await?;
        tx.commit().await?;
        applied(state, &tenant.id).await;
        applied_count += 1;
    }
    Ok(applied_count)
}
