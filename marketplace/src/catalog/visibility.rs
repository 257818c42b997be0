//! Who sees which plugins: the one home of "operators see blocked plugins" and "a private
//! plugin is seen only by its audience, its publisher and operators".
//!
//! Every catalog read (search, detail, versions, downloads, ratings) and every install path
//! asks a [`Visibility`] for the SQL condition a plugins row `p` must meet; a plugin outside
//! it is a 404, exactly as one that does not exist.

use crate::auth::{Caller, Principal};

/// Who is looking at the catalog, for private plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Viewer {
    /// Someone who is not signed in: public plugins only.
    Stranger,
    /// A user: also the private plugins of the tenants they belong to and of the publishers
    /// they are members of.
    User(String),
    /// A tenant (its API key, or an install made for it): also the private plugins whose
    /// audience it is in.
    Tenant(String),
    /// A publisher's API key: also that publisher's own private plugins.
    Publisher(String),
}

/// What part of the catalog a caller sees. Made only from the caller (or the tenant an
/// install is for), so no page or route decides it on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    /// `None`: everything, blocked and private plugins included.
    viewer: Option<Viewer>,
}

impl Visibility {
    /// What the public sees: plugins that are neither blocked nor private.
    pub const PUBLIC: Visibility = Visibility {
        viewer: Some(Viewer::Stranger),
    };

    /// Everything, blocked and private plugins included: for operators, for a publisher
    /// looking at its own plugins (the caller has checked that they are its own) and for
    /// loading a package into the host.
    pub const ALL: Visibility = Visibility { viewer: None };

    /// What `caller` (none for a stranger) sees.
    pub fn of(caller: Option<&Principal>) -> Visibility {
        let viewer = match caller.map(|principal| &principal.caller) {
            None => Viewer::Stranger,
            Some(Caller::User(user)) if user.is_operator() => return Visibility::ALL,
            Some(Caller::User(user)) => Viewer::User(user.id.clone()),
            Some(Caller::TenantKey { tenant_id }) => Viewer::Tenant(tenant_id.clone()),
            Some(Caller::PublisherKey { publisher_id, .. }) => {
                Viewer::Publisher(publisher_id.clone())
            }
        };
        Visibility {
            viewer: Some(viewer),
        }
    }

    /// What tenant `tenant_id` may install: the public plugins and the private ones whose
    /// audience it is in (whoever acts for it, operators included).
    pub fn tenant(tenant_id: &str) -> Visibility {
        Visibility {
            viewer: Some(Viewer::Tenant(tenant_id.to_owned())),
        }
    }

    /// Whether a plugin blocked at `blocked_at` (if it is) is shown.
    pub fn shows(&self, blocked_at: Option<i64>) -> bool {
        self.viewer.is_none() || blocked_at.is_none()
    }

    /// The SQL condition a plugins row aliased `p` meets when it is shown, with its
    /// placeholders numbered from `$first`, and the values to bind to them in order.
    pub fn condition(&self, first: usize) -> (String, Vec<String>) {
        let Some(viewer) = &self.viewer else {
            return ("1 = 1".to_owned(), Vec::new());
        };
        let public = "p.blocked_at IS NULL AND (p.private = 0";
        let (audience, args) = match viewer {
            Viewer::Stranger => (String::new(), Vec::new()),
            Viewer::Tenant(tenant_id) => (
                format!(
                    " OR EXISTS (SELECT 1 FROM plugin_audience a \
                     WHERE a.plugin_id = p.id AND a.tenant_id = ${first})"
                ),
                vec![tenant_id.clone()],
            ),
            Viewer::User(user_id) => (
                format!(
                    " OR EXISTS (SELECT 1 FROM plugin_audience a \
                     JOIN tenant_members m ON m.tenant_id = a.tenant_id \
                     JOIN tenants t ON t.id = a.tenant_id AND t.deleted_at IS NULL \
                     WHERE a.plugin_id = p.id AND m.user_id = ${first}) \
                     OR EXISTS (SELECT 1 FROM publisher_members pm \
                     WHERE pm.publisher_id = p.publisher_id AND pm.user_id = ${})",
                    first + 1
                ),
                vec![user_id.clone(), user_id.clone()],
            ),
            Viewer::Publisher(publisher_id) => (
                format!(" OR p.publisher_id = ${first}"),
                vec![publisher_id.clone()],
            ),
        };
        (format!("({public}{audience}))"), args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_number_their_placeholders_from_first() {
        let (all, args) = Visibility::ALL.condition(3);
        assert_eq!((all.as_str(), args.len()), ("1 = 1", 0));
        let (public, args) = Visibility::PUBLIC.condition(3);
        assert!(public.contains("blocked_at IS NULL") && !public.contains('$'));
        assert!(args.is_empty());
        let (tenant, args) = Visibility::tenant("t1").condition(3);
        assert!(tenant.contains("a.tenant_id = $3") && !tenant.contains("$4"));
        assert_eq!(args, ["t1"]);
        let user = Visibility {
            viewer: Some(Viewer::User("u1".to_owned())),
        };
        let (text, args) = user.condition(2);
        assert!(text.contains("m.user_id = $2") && text.contains("pm.user_id = $3"));
        assert_eq!(args, ["u1", "u1"]);
    }

    #[test]
    fn only_everything_shows_blocked_plugins() {
        assert!(Visibility::ALL.shows(Some(1)));
        assert!(!Visibility::PUBLIC.shows(Some(1)));
        assert!(!Visibility::tenant("t").shows(Some(1)));
        assert!(Visibility::tenant("t").shows(None));
    }
}
