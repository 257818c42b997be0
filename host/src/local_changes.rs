//! [`LocalChanges`]: when this process last changed each install itself (installed, upgraded,
//! rolled back, reconfigured, enabled or disabled, uninstalled), as opposed to bringing it in
//! line with storage ([`crate::runtime::Host::apply`], [`crate::runtime::Host::detach`]).
//!
//! A process that synchronises its whole host from storage reads every install first and
//! applies them after; a change this process made meanwhile must not be undone by that older
//! read. The synchroniser asks [`LocalChanges::within`] and leaves recently changed installs
//! alone: the process that changed them knows their state best.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a change is remembered; older ones are forgotten as new ones come.
const REMEMBER: Duration = Duration::from_secs(600);

/// How many remembered changes trigger forgetting the old ones.
const PRUNE_ABOVE: usize = 1024;

/// When each (tenant, plugin) install was last changed by this process.
#[derive(Debug, Default)]
pub struct LocalChanges {
    at: Mutex<HashMap<(String, String), Instant>>,
}

impl LocalChanges {
    /// Records a change of `tenant`'s install of `plugin`, now.
    pub fn touch(&self, tenant: &str, plugin: &str) {
        let now = Instant::now();
        let mut at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        if at.len() >= PRUNE_ABOVE {
            at.retain(|_, when| now.duration_since(*when) < REMEMBER);
        }
        at.insert((tenant.to_owned(), plugin.to_owned()), now);
    }

    /// Whether this process changed `tenant`'s install of `plugin` in the last `window`.
    pub fn within(&self, tenant: &str, plugin: &str, window: Duration) -> bool {
        let at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        at.get(&(tenant.to_owned(), plugin.to_owned()))
            .is_some_and(|when| when.elapsed() <= window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_recent_only_for_its_own_install_and_window() {
        let changes = LocalChanges::default();
        assert!(!changes.within("t1", "acme.a", Duration::from_secs(30)));
        changes.touch("t1", "acme.a");
        assert!(changes.within("t1", "acme.a", Duration::from_secs(30)));
        assert!(!changes.within("t1", "acme.b", Duration::from_secs(30)));
        assert!(!changes.within("t2", "acme.a", Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!changes.within("t1", "acme.a", Duration::from_millis(5)));
    }

    #[test]
    fn old_changes_are_forgotten_but_recent_ones_kept() {
        let changes = LocalChanges::default();
        for n in 0..PRUNE_ABOVE + 10 {
            changes.touch("t", &format!("acme.p{n}"));
        }
        assert!(changes.within("t", "acme.p0", REMEMBER));
        assert!(changes.within("t", &format!("acme.p{}", PRUNE_ABOVE + 9), REMEMBER));
    }
}
