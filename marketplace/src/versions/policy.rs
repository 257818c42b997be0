//! Update policies: which new versions an install follows automatically.
//!
//! The rules follow semver as Cargo reads it (the leftmost non-zero component is the one whose
//! change may break):
//!
//! | policy | `1.2.3` follows | `0.2.3` follows | `0.0.3` follows |
//! |---|---|---|---|
//! | `manual` | nothing | nothing | nothing |
//! | `patch` | `1.2.x` | `0.2.x` | nothing |
//! | `minor` | `1.x.y` | `0.2.x` | nothing |
//! | `any` | every higher version | every higher version | every higher version |
//!
//! Before 1.0 a minor bump (`0.2` → `0.3`) is breaking, so `patch` and `minor` both stay
//! within `0.2.x`; a `0.0.x` version is never followed except by `any`. Only higher versions
//! are followed, and never a pre-release (`1.3.0-beta.1`): those are installed by hand.

use semver::Version;

use crate::error::{Error, Result};

/// How an install follows new versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdatePolicy {
    /// Only by hand.
    Manual,
    /// Bug fixes: the same `major.minor` (`0.minor` before 1.0).
    Patch,
    /// Compatible versions: the same major (`0.minor` before 1.0).
    Minor,
    /// Every higher version.
    Any,
}

impl UpdatePolicy {
    /// The policy called `name`.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] (`invalid_body`) naming the field `update_policy`.
    pub fn parse(name: &str) -> Result<UpdatePolicy> {
        match name {
            "manual" => Ok(UpdatePolicy::Manual),
            "patch" => Ok(UpdatePolicy::Patch),
            "minor" => Ok(UpdatePolicy::Minor),
            "any" => Ok(UpdatePolicy::Any),
            other => Err(Error::bad_request(
                "invalid_body",
                format!(
                    "field `update_policy` must be \"manual\", \"patch\", \"minor\" or \"any\", not {other:?}"
                ),
            )),
        }
    }

    /// Whether an install on `from` follows `to` automatically.
    pub fn allows(self, from: &Version, to: &Version) -> bool {
        if to <= from || !to.pre.is_empty() {
            return false;
        }
        match self {
            UpdatePolicy::Manual => false,
            UpdatePolicy::Any => true,
            UpdatePolicy::Patch => {
                (from.major > 0 || from.minor > 0)
                    && to.major == from.major
                    && to.minor == from.minor
            }
            UpdatePolicy::Minor => {
                if from.major > 0 {
                    to.major == from.major
                } else {
                    from.minor > 0 && to.major == 0 && to.minor == from.minor
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(policy: &str, from: &str, to: &str) -> bool {
        UpdatePolicy::parse(policy)
            .unwrap()
            .allows(&Version::parse(from).unwrap(), &Version::parse(to).unwrap())
    }

    #[test]
    fn minor_follows_the_same_major() {
        assert!(allows("minor", "1.0.0", "1.1.0"));
        assert!(allows("minor", "1.0.0", "1.0.1"));
        assert!(!allows("minor", "1.0.0", "2.0.0"));
        assert!(!allows("minor", "1.1.0", "1.0.5"));
        assert!(!allows("minor", "1.1.0", "1.1.0"));
    }

    #[test]
    fn patch_follows_the_same_minor() {
        assert!(allows("patch", "1.2.3", "1.2.4"));
        assert!(!allows("patch", "1.2.3", "1.3.0"));
        assert!(!allows("patch", "1.2.3", "2.0.0"));
    }

    #[test]
    fn before_one_the_minor_is_breaking() {
        assert!(allows("minor", "0.2.0", "0.2.5"));
        assert!(!allows("minor", "0.2.0", "0.3.0"));
        assert!(allows("patch", "0.2.0", "0.2.1"));
        assert!(!allows("minor", "0.0.1", "0.0.2"));
        assert!(!allows("patch", "0.0.1", "0.0.2"));
        assert!(allows("any", "0.0.1", "0.0.2"));
    }

    #[test]
    fn manual_any_and_prereleases() {
        assert!(!allows("manual", "1.0.0", "1.0.1"));
        assert!(allows("any", "1.0.0", "7.0.0"));
        assert!(!allows("any", "1.0.0", "1.1.0-beta.1"));
        assert!(!allows("any", "2.0.0", "1.0.0"));
        assert_eq!(
            UpdatePolicy::parse("sometimes").unwrap_err().code(),
            "invalid_body"
        );
    }
}
