//! One module per page (or group of pages) of the console.

pub mod billing;
pub mod catalog;
pub mod coupons;
pub mod detail;
pub mod developer;
pub mod install;
pub mod login;
pub mod operator;
pub mod plans;
pub mod review;
pub mod rollouts;
pub mod runs;
pub mod suspension;
pub mod tenant;

use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::auth::Principal;
use plinth_marketplace::tenants::{self, Tenant, TenantRole};
use plinth_package::Risk;

use crate::error::ConsoleError;

/// A permission as its risk level (the package's rule, as the API shows it) and its sentence.
pub fn permission_item(risk: Risk, sentence: &str) -> Markup {
    html! {
        span class=(format!("risk risk-{risk}")) { (risk) " risk" }
        span { (sentence) }
    }
}

/// A rating as text: `★ 4.3` or `no ratings yet`.
pub fn rating_text(average: Option<f64>) -> String {
    average.map_or_else(
        || "no ratings yet".to_owned(),
        |stars| format!("★ {stars:.1} of 5"),
    )
}

/// A pricing model as tenants read it.
pub fn pricing_text(pricing: &str) -> &str {
    match pricing {
        "free" => "Free",
        "monthly" => "Monthly subscription",
        "per-1000-invocations" => "Pay per use",
        other => other,
    }
}

/// The tenants `principal` may administer (the marketplace's own access check, per tenant).
///
/// # Errors
///
/// [`ConsoleError::Marketplace`] for a database failure.
pub async fn admin_tenants(
    state: &AppState,
    principal: &Principal,
) -> Result<Vec<Tenant>, ConsoleError> {
    let mut out = Vec::new();
    for (tenant, _) in visible_tenants(state, principal).await? {
        match tenants::access(state.db(), principal, &tenant.slug, TenantRole::Admin).await {
            Ok(tenant) => out.push(tenant),
            Err(
                plinth_marketplace::Error::Forbidden { .. }
                | plinth_marketplace::Error::NotFound(_),
            ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// The tenants `principal` can see: every tenant for an operator, else those they belong to.
///
/// # Errors
///
/// [`ConsoleError::Marketplace`] for a database failure.
pub async fn visible_tenants(
    state: &AppState,
    principal: &Principal,
) -> Result<Vec<tenants::TenantWithRole>, ConsoleError> {
    if principal.user().is_err() {
        return Ok(Vec::new());
    }
    Ok(tenants::visible(state.db(), principal, false).await?)
}
