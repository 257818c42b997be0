//! [`PermissionDiff`]: what changed between two versions' permissions.

use serde::Serialize;

use super::{Grant, GrantDescription, Permissions};

/// The grants added and removed between two permission sets, as a reviewer or a tenant asked
/// for consent sees them. A changed kv quota shows as the old quota removed and the new added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionDiff {
    /// Grants in `new` that `old` did not have.
    pub added: Vec<Grant>,
    /// Grants in `old` that `new` no longer has.
    pub removed: Vec<Grant>,
}

/// A [`PermissionDiff`] as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermissionDiffView {
    /// Added grants.
    pub added: Vec<GrantDescription>,
    /// Removed grants.
    pub removed: Vec<GrantDescription>,
}

impl PermissionDiff {
    /// The difference from `old` to `new` (pass [`Permissions::default`] for a first version).
    pub fn between(old: &Permissions, new: &Permissions) -> PermissionDiff {
        let old = old.grants();
        let new = new.grants();
        PermissionDiff {
            added: new.iter().filter(|g| !old.contains(g)).cloned().collect(),
            removed: old.iter().filter(|g| !new.contains(g)).cloned().collect(),
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// The diff with `{capability, detail, sentence}` per grant, for JSON.
    pub fn view(&self) -> PermissionDiffView {
        PermissionDiffView {
            added: self.added.iter().map(Grant::describe).collect(),
            removed: self.removed.iter().map(Grant::describe).collect(),
        }
    }
}
