//! What a tenant sees of its subscription (plan, status, trial, payment method, coupon,
//! suspension, the next invoice so far) and the pricing calculator of the plan comparison.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::account::{self, Status};
use crate::auth::Principal;
use crate::clock::{now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tenants::{self, TenantRole};

/// A line of an estimate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EstimateLine {
    /// What it is for.
    pub description: String,
    /// Minor units.
    pub amount: i64,
}

/// An estimate of a month's invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Estimate {
    /// ISO 4217.
    pub currency: String,
    /// The lines.
    pub lines: Vec<EstimateLine>,
    /// Their sum, in minor units.
    pub total: i64,
}

/// A tenant's subscription as it stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Overview {
    /// The plan it is on.
    pub plan: String,
    /// Where the subscription stands.
    pub status: Status,
    /// When the trial ends (RFC 3339), while trialing.
    pub trial_ends_at: Option<String>,
    /// Whether it may still start a trial.
    pub trial_available: bool,
    /// The plan it moves to at the start of next month, if one.
    pub pending_plan: Option<String>,
    /// The card on file, e.g. `visa ending 4242`.
    pub payment_method: Option<String>,
    /// The coupon it holds, described.
    pub coupon: Option<String>,
    /// Why it is suspended, if it is.
    pub suspended: Option<String>,
    /// This month's invoice so far.
    pub next_invoice: Estimate,
    /// Whether the platform bills through a processor.
    pub billing_configured: bool,
}

/// Tenant `slug`'s subscription (members).
///
/// # Errors
///
/// As [`tenants::access`]; [`Error::Database`].
pub async fn overview(state: &AppState, principal: &Principal, slug: &str) -> Result<Overview> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Readonly).await?;
    let db = state.db();
    let acct = account::load(db, &tenant.id).await?;
    let month = crate::month::of(now_ms())?;
    let plan = tenants::plan(db, &tenant.plan).await?;
    let draft = super::invoices::build(db, &tenant.id, &month, &plan.currency).await?;
    Ok(Overview {
        plan: tenant.plan.clone(),
        status: acct.status,
        trial_ends_at: acct.trial_ends_at.map(rfc3339),
        trial_available: !acct.trial_used,
        pending_plan: acct.pending_plan,
        payment_method: acct.payment_method.as_ref().map(|_| {
            format!(
                "{} ending {}",
                acct.payment_brand.as_deref().unwrap_or("card"),
                acct.payment_last4.as_deref().unwrap_or("????")
            )
        }),
        coupon: super::coupons::held(db, &tenant.id)
            .await?
            .map(|held| format!("{}: {}", held.coupon.code, held.coupon.description)),
        suspended: super::suspension::refusal(&tenant).map(|e| e.to_string()),
        next_invoice: Estimate {
            currency: draft.currency,
            lines: draft
                .lines
                .into_iter()
                .map(|l| EstimateLine {
                    description: l.description,
                    amount: l.amount,
                })
                .collect(),
            total: draft.total,
        },
        billing_configured: state.settings().billing.processor.is_some(),
    })
}

/// What the pricing calculator is asked.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Calculation {
    /// The plan.
    pub plan: String,
    /// Paid plugins (catalog ids) to price.
    #[serde(default)]
    pub plugins: Vec<String>,
    /// Invocations expected a month (for usage-priced plugins and the quota check).
    #[serde(default)]
    pub invocations: i64,
}

/// The most plugins one calculation prices.
pub const MAX_PLUGINS: usize = 50;

/// A month's estimate for `calculation`: the plan, each chosen plugin's monthly price or its
/// usage at the expected invocations; plugins in another currency than the plan's are refused.
///
/// # Errors
///
/// 400 `unknown_plan`, `invalid_calculation` (naming the field), `unknown_plugin`.
pub async fn calculate(state: &AppState, calculation: &Calculation) -> Result<Estimate> {
    let plan = super::subscription::known_plan(state, &calculation.plan).await?;
    if calculation.plugins.len() > MAX_PLUGINS {
        return Err(Error::bad_request(
            "invalid_calculation",
            format!("field `plugins` may name at most {MAX_PLUGINS}"),
        ));
    }
    if !(0..=1_000_000_000_000).contains(&calculation.invocations) {
        return Err(Error::bad_request(
            "invalid_calculation",
            "field `invocations` must be from 0 to 10^12",
        ));
    }
    let mut lines = vec![EstimateLine {
        description: format!("{} plan", plan.name),
        amount: plan.price_monthly,
    }];
    if calculation.invocations > plan.invocations_per_month {
        lines.push(EstimateLine {
            description: format!(
                "note: {} invocations exceed the plan's {} a month; calls past the quota are refused",
                calculation.invocations, plan.invocations_per_month
            ),
            amount: 0,
        });
    }
    for plugin in &calculation.plugins {
        let pricing = crate::catalog::pricing_of(state.db(), plugin)
            .await?
            .ok_or_else(|| {
                Error::bad_request(
                    "unknown_plugin",
                    format!("field `plugins`: there is no plugin {plugin:?}"),
                )
            })?;
        let (model, amount, currency) = pricing;
        if amount > 0 && currency != plan.currency {
            return Err(Error::bad_request(
                "invalid_calculation",
                format!(
                    "plugin {plugin:?} is priced in {currency}, the plan in {}",
                    plan.currency
                ),
            ));
        }
        let (description, amount) = match model.as_str() {
            "monthly" => (format!("{plugin}, monthly"), amount),
            "per-1000-invocations" => {
                let share = i128::from(calculation.invocations.min(plan.invocations_per_month))
                    * i128::from(amount)
                    / 1000;
                (
                    format!(
                        "{plugin}, {} per 1000 invocations",
                        crate::ledger::money::format(amount, &currency)
                    ),
                    i64::try_from(share).unwrap_or(i64::MAX),
                )
            }
            _ => (format!("{plugin}, free"), 0),
        };
        lines.push(EstimateLine {
            description,
            amount,
        });
    }
    let total = lines.iter().map(|l| l.amount).sum();
    Ok(Estimate {
        currency: plan.currency,
        lines,
        total,
    })
}
