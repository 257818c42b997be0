//! What one call hands its capabilities: who the call is for ([`CallIdentity`]) and everything
//! a capability builds its per-call state from ([`CallContext`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use plinth_package::{Manifest, Permissions};

use crate::egress::CheckedResolver;
use crate::kv::KvStore;
use crate::limits::Limits;
use crate::rates::TenantRates;

/// Who a call runs for. Every log line and metric of the call carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallIdentity {
    /// The tenant's slug.
    pub tenant: String,
    /// The plugin id.
    pub plugin: String,
    /// The plugin version.
    pub version: String,
}

/// Everything one call gives its capabilities to prepare their state from: the grant, the
/// limits, the identity, and the host's shared services. Built once per call (by the
/// invocation) and handed to every capability's [`prepare`](super::Capability::prepare);
/// the sandbox keeps the identity.
///
/// A capability that needs something for its state that is not here adds a field, filled where
/// the invocation builds the context.
#[derive(Debug)]
pub struct CallContext<'a> {
    /// Who the call runs for.
    pub identity: CallIdentity,
    /// The plugin's manifest.
    pub manifest: &'a Manifest,
    /// The permissions the tenant granted.
    pub grants: &'a Arc<Permissions>,
    /// The call's limits, already capped by the manifest.
    pub limits: &'a Limits,
    /// The install's configuration values.
    pub config: &'a Arc<BTreeMap<String, String>>,
    /// Emit hops that led to the call (0 for an event from outside, a lifecycle hook or an
    /// HTTP request).
    pub depth: u32,
    /// The host's kv storage, if it has one.
    pub kv: Option<&'a KvStore>,
    /// How outbound requests resolve names and which addresses they may reach.
    pub egress: &'a CheckedResolver,
    /// Tenant-wide rates all calls share.
    pub rates: &'a Arc<TenantRates>,
}
