//! Short-lived read caches for what every tenant request reads: tenant API keys, tenants by
//! slug, plans, and a tenant's stored invocations this month.
//!
//! An entry is used only while it is younger than its time to live **and** no change it may
//! depend on has committed since it was read: every write that could make one stale calls
//! [`Db::changed`](super::Db::changed) with its [`Topic`] after it commits, which moves that
//! topic's generation on and so retires every entry read before. Each entry is stamped with the
//! generation taken *before* it was read, so a value read while a change was committing is
//! never used after that change. Within one process the caches are therefore exact; the
//! time to live bounds how long another process's change can go unseen.

use std::hash::Hash;

use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::auth::Principal;
use crate::tenants::{Plan, Tenant};

/// How long an entry may be used at most.
pub const TIME_TO_LIVE: Duration = Duration::from_secs(2);

/// Most entries one cache holds; a full cache starts again empty.
const CAPACITY: usize = 100_000;

/// What a committed change may have made stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Who may call for which tenant: tenants, their plans and API keys, plans.
    Access,
    /// The stored usage counters.
    Usage,
}

/// A tenant API key as the cache keeps it: who it is, and until when it is valid.
#[derive(Debug, Clone)]
pub struct CachedKey {
    /// The key's principal.
    pub principal: Principal,
    /// When it expires (Unix ms), if it does.
    pub expires_at: Option<i64>,
}

/// A tenant's stored invocations in one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthInvocations {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Invocations persisted for it.
    pub invocations: i64,
}

/// Every cache, and the generations that retire their entries.
#[derive(Default)]
pub struct ReadCache {
    access: AtomicU64,
    usage: AtomicU64,
    /// Token hash → tenant API key.
    pub tenant_keys: Cached<String, CachedKey>,
    /// Slug → live tenant.
    pub tenants: Cached<String, Tenant>,
    /// Plan name → plan.
    pub plans: Cached<String, Plan>,
    /// Tenant id → stored invocations of a month.
    pub invocations: Cached<String, MonthInvocations>,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("access", &self.access)
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

impl ReadCache {
    /// The current generation of `topic`: take it **before** reading what you will put.
    pub fn generation(&self, topic: Topic) -> u64 {
        self.counter(topic).load(Ordering::Acquire)
    }

    /// Retires every entry of `topic` read so far.
    pub fn changed(&self, topic: Topic) {
        self.counter(topic).fetch_add(1, Ordering::AcqRel);
    }

    fn counter(&self, topic: Topic) -> &AtomicU64 {
        match topic {
            Topic::Access => &self.access,
            Topic::Usage => &self.usage,
        }
    }
}

/// One cache: key → value, each entry stamped with the generation it was read at. A sharded
/// map: lookups of different keys rarely wait for each other.
#[derive(Debug)]
pub struct Cached<K: Eq + Hash, V> {
    entries: DashMap<K, Entry<V>>,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    generation: u64,
    read_at: Instant,
}

impl<K: Eq + Hash, V> Default for Cached<K, V> {
    fn default() -> Self {
        Cached {
            entries: DashMap::new(),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Cached<K, V> {
    /// The value under `key` if it was read at generation `current` less than
    /// [`TIME_TO_LIVE`] ago.
    pub fn get(&self, key: &K, current: u64) -> Option<V> {
        let entry = self.entries.get(key)?;
        (entry.generation == current && entry.read_at.elapsed() < TIME_TO_LIVE)
            .then(|| entry.value.clone())
    }

    /// Keeps `value`, read after generation `read_at` was taken; it is used only while that
    /// generation is current.
    pub fn put(&self, key: K, value: V, read_at: u64) {
        if self.entries.len() >= CAPACITY {
            self.entries.clear();
        }
        self.entries.insert(
            key,
            Entry {
                value,
                generation: read_at,
                read_at: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_retires_entries_of_its_topic_only() {
        let cache = ReadCache::default();
        let access = cache.generation(Topic::Access);
        let usage = cache.generation(Topic::Usage);
        cache.plans.put("free".into(), plan("free"), access);
        cache.invocations.put(
            "t".into(),
            MonthInvocations {
                month: "2026-11".into(),
                invocations: 3,
            },
            usage,
        );
        assert_eq!(
            cache.plans.get(&"free".into(), access).map(|p| p.name),
            Some("free".into())
        );

        cache.changed(Topic::Access);
        let access_now = cache.generation(Topic::Access);
        assert_ne!(access, access_now);
        assert!(cache.plans.get(&"free".into(), access_now).is_none());
        assert_eq!(
            cache
                .invocations
                .get(&"t".into(), cache.generation(Topic::Usage))
                .map(|m| m.invocations),
            Some(3)
        );
    }

    #[test]
    fn a_value_read_across_a_change_is_not_kept() {
        let cache = ReadCache::default();
        let before = cache.generation(Topic::Access);
        // ... the read happens here, and meanwhile a change commits:
        cache.changed(Topic::Access);
        let now = cache.generation(Topic::Access);
        cache.plans.put("free".into(), plan("free"), before);
        assert!(cache.plans.get(&"free".into(), now).is_none());
    }

    fn plan(name: &str) -> Plan {
        Plan {
            name: name.into(),
            position: 0,
            max_installs: 1,
            invocations_per_month: 1,
            kv_bytes: 1,
            memory_mb: 1,
            fuel_per_call: None,
            timeout_ms: 1,
            outbound_requests_per_minute: 1,
            api_requests_per_minute: 1,
            paid_plugins: false,
            max_invocations_per_event: 1,
            max_concurrent_calls: 1,
            max_instance_slots: 1,
            memory_share_mb: 1,
            run_retention_days: 1,
            max_runs: 1,
            event_attempts: 1,
            max_queued_events: 1,
            price_monthly: 0,
            currency: "USD".into(),
            trial_days: 0,
        }
    }
}
