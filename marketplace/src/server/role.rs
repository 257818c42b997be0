//! What one `plinth serve` process does when several share a PostgreSQL database.

use std::fmt;
use std::str::FromStr;

/// The part of the platform a server process plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Everything on one port: the API, review, catalog, installs, ledger, and the data plane
    /// (events and plugin HTTP). The default, and the only role on SQLite.
    #[default]
    All,
    /// The control plane: every API route but events and plugin HTTP, and the background work
    /// (housekeeping, payouts, notification delivery). It still runs a host for plugins'
    /// install, upgrade and uninstall hooks.
    Marketplace,
    /// The data plane: events and plugin HTTP only, from a host that follows the database's
    /// installs through change notifications.
    Host,
}

impl Role {
    /// Whether this process serves events and plugin HTTP.
    pub fn serves_data_plane(self) -> bool {
        matches!(self, Role::All | Role::Host)
    }

    /// Whether this process serves the API and runs the marketplace's background work.
    pub fn serves_control_plane(self) -> bool {
        matches!(self, Role::All | Role::Marketplace)
    }

    /// `all`, `marketplace` or `host`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Marketplace => "marketplace",
            Role::Host => "host",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of `all`, `marketplace` and `host`.
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}; the roles are \"all\", \"marketplace\" and \"host\"")]
pub struct UnknownRole(String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(name: &str) -> Result<Role, UnknownRole> {
        match name {
            "all" => Ok(Role::All),
            "marketplace" => Ok(Role::Marketplace),
            "host" => Ok(Role::Host),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_split_the_planes() {
        for role in [Role::All, Role::Marketplace, Role::Host] {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
        }
        assert!("hosts".parse::<Role>().is_err());
        assert!(Role::All.serves_data_plane() && Role::All.serves_control_plane());
        assert!(Role::Host.serves_data_plane() && !Role::Host.serves_control_plane());
        assert!(!Role::Marketplace.serves_data_plane() && Role::Marketplace.serves_control_plane());
    }
}
