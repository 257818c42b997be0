//! Which versions an install may be on: the one home of "a yanked version is refused", "the
//! default version is the newest that is not yanked" and "an install consents to exactly the
//! permission set it was shown" (by its digest, [`plinth_package::Permissions::digest`]).
//!
//! Installs, updates, rollbacks, the catalog's `latest_version` and the console's version picker
//! all ask here. (A blocked plugin is another matter: it is hidden from the catalog, see
//! [`crate::catalog::Visibility`], and its installs are stopped.)

use serde_json::json;

use crate::catalog::{PermissionView, VersionInfo};
use crate::error::{Error, Result};
use crate::versions::VersionRow;

/// A published version as these rules see it.
pub trait Candidate {
    /// The version's text, e.g. `1.2.0`.
    fn version_text(&self) -> &str;
    /// Whether it was yanked.
    fn is_yanked(&self) -> bool;
    /// The digest of its permission set (`sha256:<hex>`).
    fn permissions_digest(&self) -> &str;
    /// Its permissions as the API shows them.
    fn permissions(&self) -> Vec<PermissionView>;
}

impl Candidate for VersionInfo {
    fn version_text(&self) -> &str {
        &self.version
    }

    fn is_yanked(&self) -> bool {
        self.yanked
    }

    fn permissions_digest(&self) -> &str {
        &self.permissions_digest
    }

    fn permissions(&self) -> Vec<PermissionView> {
        self.permissions.clone()
    }
}

impl Candidate for VersionRow {
    fn version_text(&self) -> &str {
        &self.version
    }

    fn is_yanked(&self) -> bool {
        self.yanked()
    }

    fn permissions_digest(&self) -> &str {
        &self.permissions_digest
    }

    fn permissions(&self) -> Vec<PermissionView> {
        self.manifest
            .permissions
            .describe()
            .into_iter()
            .map(PermissionView::from)
            .collect()
    }
}

/// What an install is being moved to a version for; it only changes the advice in a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// A new install.
    Install,
    /// An update, by hand or automatic.
    Update,
    /// A rollback to an earlier version.
    Rollback,
}

/// Whether an install may be put on `candidate` (installed, updated or rolled back to it).
pub fn may_move_to(candidate: &impl Candidate) -> bool {
    !candidate.is_yanked()
}

/// Refuses `candidate` as the version an install moves to if it may not be moved to.
///
/// # Errors
///
/// 409 `version_yanked`.
pub fn refuse_yanked(plugin_id: &str, candidate: &impl Candidate, purpose: Move) -> Result<()> {
    if may_move_to(candidate) {
        return Ok(());
    }
    let advice = match purpose {
        Move::Install => "install another version",
        Move::Update => "choose another version",
        Move::Rollback => "roll back to a good version",
    };
    Err(Error::conflict(
        "version_yanked",
        format!(
            "{plugin_id} {} is yanked; {advice}",
            candidate.version_text()
        ),
    ))
}

/// Refuses to put an install on `candidate` unless `consented` is the digest of its permission
/// set: installing or updating is consenting to exactly the permissions shown, so a set that
/// changed since (or a digest never shown) is refused with the current ones to review.
///
/// # Errors
///
/// 409 `permissions_changed`, with the current `permissions` and `permissions_digest` in its
/// details.
pub fn refuse_without_consent(
    plugin_id: &str,
    candidate: &impl Candidate,
    consented: &str,
) -> Result<()> {
    if consented == candidate.permissions_digest() {
        return Ok(());
    }
    Err(Error::Conflict {
        code: "permissions_changed",
        message: format!(
            "the permissions you consented to ({consented}) are not those of {plugin_id} {}; \
             review the current ones and send their digest",
            candidate.version_text()
        ),
        details: Some(json!({
            "permissions": candidate.permissions(),
            "permissions_digest": candidate.permissions_digest(),
        })),
    })
}

/// The versions an install may be put on, in the order given (newest first, as stored).
pub fn installable<C: Candidate>(versions: &[C]) -> impl Iterator<Item = &C> {
    versions.iter().filter(|v| may_move_to(*v))
}

/// The newest version an install may be put on, given versions newest first.
pub fn newest<C: Candidate>(versions: &[C]) -> Option<&C> {
    installable(versions).next()
}

/// The version a new install gets when none is named: the newest that is not yanked.
///
/// # Errors
///
/// 409 `no_installable_version` when every version is yanked.
pub fn default_version<C: Candidate>(plugin_id: &str, versions: Vec<C>) -> Result<C> {
    versions.into_iter().find(may_move_to).ok_or_else(|| {
        Error::conflict(
            "no_installable_version",
            format!("{plugin_id} has no version that is not yanked"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct V(&'static str, bool);

    impl Candidate for V {
        fn version_text(&self) -> &str {
            self.0
        }
        fn is_yanked(&self) -> bool {
            self.1
        }
        fn permissions_digest(&self) -> &str {
            "sha256:aa"
        }
        fn permissions(&self) -> Vec<PermissionView> {
            Vec::new()
        }
    }

    #[test]
    fn the_default_is_the_newest_not_yanked() {
        let versions = vec![V("2.0.0", true), V("1.1.0", false), V("1.0.0", false)];
        assert_eq!(newest(&versions).map(|v| v.0), Some("1.1.0"));
        assert_eq!(
            installable(&versions).map(|v| v.0).collect::<Vec<_>>(),
            ["1.1.0", "1.0.0"]
        );
        let chosen = default_version("acme.x", versions).map(|v| v.0);
        assert!(matches!(chosen, Ok("1.1.0")));
    }

    #[test]
    fn every_version_yanked_leaves_nothing_to_install() {
        let versions = vec![V("1.0.0", true)];
        assert!(newest(&versions).is_none());
        let refused = default_version("acme.x", versions).err();
        assert!(matches!(
            refused,
            Some(Error::Conflict {
                code: "no_installable_version",
                ..
            })
        ));
    }

    #[test]
    fn a_yanked_target_is_refused_whatever_the_move() {
        for purpose in [Move::Install, Move::Update, Move::Rollback] {
            assert!(refuse_yanked("acme.x", &V("1.0.0", false), purpose).is_ok());
            let refused = refuse_yanked("acme.x", &V("1.0.0", true), purpose).err();
            assert!(matches!(
                refused,
                Some(Error::Conflict { code: "version_yanked", ref message, .. })
                    if message.starts_with("acme.x 1.0.0 is yanked")
            ));
        }
    }

    #[test]
    fn consent_is_to_the_digest_shown() {
        assert!(refuse_without_consent("acme.x", &V("1.0.0", false), "sha256:aa").is_ok());
        let refused = refuse_without_consent("acme.x", &V("1.0.0", false), "sha256:bb").err();
        assert!(matches!(
            refused,
            Some(Error::Conflict { code: "permissions_changed", details: Some(ref d), .. })
                if d["permissions_digest"] == "sha256:aa"
        ));
    }
}
