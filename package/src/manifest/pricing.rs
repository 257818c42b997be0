//! `[pricing]` and `[limits]`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::InvalidValue;

/// `[pricing]`: how a tenant pays for the plugin. Absent means free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Pricing {
    /// `free`, `monthly` or `per-1000-invocations`.
    pub model: PricingModel,
    /// Price in integer minor units of `currency` (500 = 5.00 USD); more than 0 for paid
    /// models, absent or 0 for free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// ISO 4217 currency code, e.g. `USD`; required for paid models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            model: PricingModel::Free,
            amount: None,
            currency: None,
        }
    }
}

impl Pricing {
    /// Whether tenants pay for the plugin.
    pub fn is_paid(&self) -> bool {
        self.model != PricingModel::Free
    }
}

/// A pricing model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PricingModel {
    /// No charge.
    Free,
    /// `amount` per install per month.
    Monthly,
    /// `amount` per 1000 invocations, billed monthly from metered usage.
    #[serde(rename = "per-1000-invocations")]
    Per1000Invocations,
}

impl PricingModel {
    /// `free`, `monthly` or `per-1000-invocations`.
    pub fn as_str(self) -> &'static str {
        match self {
            PricingModel::Free => "free",
            PricingModel::Monthly => "monthly",
            PricingModel::Per1000Invocations => "per-1000-invocations",
        }
    }
}

impl fmt::Display for PricingModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ISO 4217 currency code: three uppercase ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    /// The code, e.g. `USD`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Currency {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Currency(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "currency",
                s,
                "expected three uppercase letters, e.g. USD",
            ))
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = InvalidValue;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[limits]`: resources the plugin asks for per call. A host caps them by the tenant's plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Linear memory per instance, in MiB; more than 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Wall-clock time per call, in milliseconds; more than 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Fuel (instructions, roughly) per call; more than 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}
