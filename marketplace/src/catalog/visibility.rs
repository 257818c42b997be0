//! Who sees which plugins: the one home of "operators see blocked plugins".

use crate::auth::Principal;

/// What part of the catalog a caller sees: every plugin but the blocked ones, or (operators)
/// blocked ones too. Made only from the caller, so no page or route decides it on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visibility {
    blocked: bool,
}

impl Visibility {
    /// What the public (and every caller but operators) sees: no blocked plugins.
    pub const PUBLIC: Visibility = Visibility { blocked: false };

    /// Everything, blocked plugins included: for a publisher looking at its own plugins (the
    /// caller has checked that they are its own) and for loading a package into the host.
    pub const ALL: Visibility = Visibility { blocked: true };

    /// What `caller` (none for a stranger) sees.
    pub fn of(caller: Option<&Principal>) -> Visibility {
        Visibility {
            blocked: caller.is_some_and(Principal::is_operator),
        }
    }

    /// Whether a plugin blocked at `blocked_at` (if it is) is shown.
    pub fn shows(self, blocked_at: Option<i64>) -> bool {
        self.blocked || blocked_at.is_none()
    }
}
