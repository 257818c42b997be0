//! The `[permissions]` a plugin requests, as atomic [`Grant`]s a tenant consents to.
//!
//! [`Permissions`] is the manifest's table; [`Permissions::grants`] splits it into atomic,
//! sorted grants with human sentences for the consent screen; [`Permissions::is_subset_of`]
//! decides whether an automatic update may proceed; [`PermissionDiff`] is what a reviewer sees;
//! [`Permissions::digest`] is what a tenant consents to.

mod diff;
mod grant;
mod host;
mod risk;
mod schedule;
mod topic;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::canonical::Canonical;
use crate::digest::sha256_digest;

pub use diff::{PermissionDiff, PermissionDiffView};
pub use grant::{Grant, GrantDescription, human_bytes};
pub use host::HostPattern;
pub use risk::Risk;
pub use schedule::{CronPattern, Interval, MIN_PERIOD_SECS, Schedule};
pub use topic::Topic;

/// The `[permissions]` table of `plinth.toml`. Everything is optional: a plugin without
/// permissions can only log and handle events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Permissions {
    /// A private key-value store (`plinth:plugin/kv`) with this quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv: Option<KvPermission>,
    /// Outbound HTTP (`wasi:http/outgoing-handler`) to these hosts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpPermission>,
    /// Events the plugin receives and emits (`plinth:plugin/events`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<EventsPermission>,
    /// Reading the tenant's configuration values (`plinth:plugin/config`).
    pub config: bool,
    /// `[[permissions.schedules]]`: runs on the plugin's own clock, each receiving a topic.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<Schedule>,
}

/// `permissions.kv`: the key-value store quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KvPermission {
    /// Most bytes (keys plus values) the plugin may store per tenant; more than 0.
    pub max_bytes: u64,
    /// Most keys the plugin may store per tenant; unlimited (within bytes) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_keys: Option<u64>,
}

/// `permissions.http`: the outbound HTTP allowlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpPermission {
    /// Hosts the plugin may send requests to; at least one.
    pub hosts: Vec<HostPattern>,
}

/// `permissions.events`: topics received and emitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct EventsPermission {
    /// Topics delivered to the plugin's `handler.on-event`.
    pub subscribe: Vec<Topic>,
    /// Topics the plugin may emit through `plinth:plugin/events`.
    pub emit: Vec<Topic>,
}

sha256_digest!(
    /// The digest of a permission set (`sha256:<hex>`): what a tenant consents to when
    /// installing. It depends only on the set of grants, never on the order they are listed in.
    PermissionsDigest,
    "permissions digest"
);

/// Domain string of [`PermissionsDigest`].
const DIGEST_DOMAIN: &str = "plinth-permissions-digest/v1";

impl Permissions {
    /// The permissions as atomic grants, sorted and without duplicates.
    ///
    /// ```
    /// use plinth_package::{Grant, Manifest};
    /// let m = Manifest::parse(r#"
    /// [plugin]
    /// id = "acme.x"
    /// version = "1.0.0"
    /// name = "X"
    /// description = "X."
    /// license = "MIT"
    /// api = "^0.1"
    /// [permissions]
    /// http = { hosts = ["hooks.slack.com"] }
    /// kv = { max-bytes = 1_048_576 }
    /// "#)?;
    /// let sentences = m.permissions.sentences();
    /// assert_eq!(sentences, [
    ///     "Store up to 1.0 MiB in its own key-value store",
    ///     "Send HTTP requests to hooks.slack.com",
    /// ]);
    /// # Ok::<(), plinth_package::Error>(())
    /// ```
    pub fn grants(&self) -> Vec<Grant> {
        let mut set = BTreeSet::new();
        if let Some(kv) = &self.kv {
            set.insert(Grant::Kv {
                max_bytes: kv.max_bytes,
                max_keys: kv.max_keys,
            });
        }
        if let Some(http) = &self.http {
            set.extend(http.hosts.iter().cloned().map(Grant::HttpHost));
        }
        if let Some(events) = &self.events {
            set.extend(events.subscribe.iter().cloned().map(Grant::Subscribe));
            set.extend(events.emit.iter().cloned().map(Grant::Emit));
        }
        if self.config {
            set.insert(Grant::Config);
        }
        set.extend(self.schedules.iter().cloned().map(Grant::Schedule));
        set.into_iter().collect()
    }

    /// One human sentence per grant, in [`grants`](Self::grants) order.
    pub fn sentences(&self) -> Vec<String> {
        self.grants().iter().map(Grant::sentence).collect()
    }

    /// `{capability, detail, sentence}` per grant, in [`grants`](Self::grants) order.
    pub fn describe(&self) -> Vec<GrantDescription> {
        self.grants().iter().map(Grant::describe).collect()
    }

    /// Whether everything these permissions allow is also allowed by `other`: a kv quota no
    /// larger, every host covered (exactly or by a wildcard), every topic listed, config only
    /// if `other` has it.
    pub fn is_subset_of(&self, other: &Permissions) -> bool {
        self.grants().iter().all(|grant| other.covers(grant))
    }

    /// Whether one grant is allowed by these permissions.
    pub fn covers(&self, grant: &Grant) -> bool {
        match grant {
            Grant::Kv {
                max_bytes,
                max_keys,
            } => self.kv.is_some_and(|kv| {
                *max_bytes <= kv.max_bytes
                    && match (kv.max_keys, max_keys) {
                        (None, _) => true,
                        (Some(limit), Some(keys)) => keys <= &limit,
                        (Some(_), None) => false,
                    }
            }),
            Grant::HttpHost(host) => self
                .http
                .as_ref()
                .is_some_and(|http| http.hosts.iter().any(|h| host.is_covered_by(h))),
            Grant::Subscribe(topic) => self.subscribes(topic.as_str()),
            Grant::Emit(topic) => self.may_emit(topic.as_str()),
            Grant::Config => self.config,
            Grant::Schedule(schedule) => self.schedules.contains(schedule),
        }
    }

    /// Whether an outbound request to `host` on `port` is on the allowlist.
    pub fn allows_host(&self, host: &str, port: u16) -> bool {
        self.http
            .as_ref()
            .is_some_and(|http| http.hosts.iter().any(|h| h.allows(host, port)))
    }

    /// Whether the plugin subscribes to `topic`.
    pub fn subscribes(&self, topic: &str) -> bool {
        self.subscriptions().iter().any(|t| t.as_str() == topic)
    }

    /// Whether the plugin may emit on `topic`.
    pub fn may_emit(&self, topic: &str) -> bool {
        self.events
            .as_ref()
            .is_some_and(|e| e.emit.iter().any(|t| t.as_str() == topic))
    }

    /// The subscribed topics (empty when there is no `events` table).
    pub fn subscriptions(&self) -> &[Topic] {
        self.events.as_ref().map_or(&[], |e| &e.subscribe)
    }

    /// The digest of the grant set; independent of the order hosts and topics are listed in.
    pub fn digest(&self) -> PermissionsDigest {
        let mut c = Canonical::new(DIGEST_DOMAIN);
        let grants = self.grants();
        c.u64(grants.len() as u64);
        for grant in &grants {
            grant.encode(&mut c);
        }
        PermissionsDigest::from_bytes(c.sha256())
    }

    pub(crate) fn encode(&self, c: &mut Canonical) {
        match &self.kv {
            Some(kv) => c.bool(true).u64(kv.max_bytes).opt_u64(kv.max_keys),
            None => c.bool(false),
        };
        match &self.http {
            Some(http) => c.bool(true).strs(
                &http
                    .hosts
                    .iter()
                    .map(HostPattern::as_str)
                    .collect::<Vec<_>>(),
            ),
            None => c.bool(false),
        };
        match &self.events {
            Some(e) => c
                .bool(true)
                .strs(&e.subscribe.iter().map(Topic::as_str).collect::<Vec<_>>())
                .strs(&e.emit.iter().map(Topic::as_str).collect::<Vec<_>>()),
            None => c.bool(false),
        };
        c.bool(self.config);
    }

    /// The schedules' canonical encoding, appended after everything else a manifest encodes
    /// and only when there are schedules: the encoding (and so the digest) of every manifest
    /// without schedules stays what it was before schedules existed.
    pub(crate) fn encode_schedules(&self, c: &mut Canonical) {
        if self.schedules.is_empty() {
            return;
        }
        c.str("schedules").u64(self.schedules.len() as u64);
        for schedule in &self.schedules {
            c.str(&schedule.detail()).str(schedule.topic.as_str());
        }
    }
}
