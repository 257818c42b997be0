//! [`Risk`]: how much one grant exposes a tenant, the label tenants and reviewers scan.

use serde::{Deserialize, Serialize};

/// How much a grant exposes the tenant that gives it. The consent screen, the review queue and
/// the API show it beside each grant's sentence; the reviewer's guide explains the levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// It reads what the tenant sends or sets for it, or keeps data private to the install.
    Low,
    /// It acts on the tenant's other plugins (what it emits, they act on).
    Medium,
    /// Tenant data can leave the platform.
    High,
}

impl Risk {
    /// `low`, `medium` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

impl std::fmt::Display for Risk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
