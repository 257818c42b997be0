//! The host's capacity, shared fairly between tenants.
//!
//! Every call holds a [`Footprint`] of the host while it runs: a component instance slot, the
//! core instances, memories and tables its component instantiates (slots of the pooling
//! allocator), and the memory it may grow to (its per-call limit, reserved up front so that no
//! running call can ever be starved of memory by another). A call starts only when its footprint
//! fits both the **host-wide budget** ([`CapacityConfig`], sized to the pool, so the pool itself
//! is never exhausted) and its **tenant's share** ([`TenantShare`], from the tenant's plan).
//!
//! A call that does not fit waits in one FIFO queue of bounded length (host-wide, and per
//! tenant), at most [`CapacityConfig::max_wait`]; past either bound it is refused with a typed
//! [`CapacityError`] that names what was short. Waiters are granted in arrival order as capacity
//! frees up, skipping those whose own tenant is still at its share, so a tenant that saturates
//! its share only ever waits behind itself.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

/// What one call holds while it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Core module instances its component instantiates (pooling allocator slots).
    pub core_instances: u32,
    /// Linear memories.
    pub memories: u32,
    /// Tables.
    pub tables: u32,
    /// The memory the call may grow to (its per-call limit), in bytes.
    pub memory_bytes: u64,
}

/// The host-wide budget all calls share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapacityConfig {
    /// Calls running at once (each holds one component instance slot).
    pub max_calls: u32,
    /// Core instances alive at once.
    pub max_core_instances: u32,
    /// Linear memories alive at once.
    pub max_memories: u32,
    /// Tables alive at once.
    pub max_tables: u32,
    /// Memory all running calls together may grow to, in bytes.
    pub max_memory_bytes: u64,
    /// Calls waiting for capacity at once, over all tenants; more are refused at once.
    pub max_queued: u32,
    /// How long a call waits for capacity before it is refused.
    pub max_wait: Duration,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            max_calls: 256,
            max_core_instances: 4096,
            max_memories: 512,
            max_tables: 4096,
            max_memory_bytes: 4 << 30,
            max_queued: 1024,
            max_wait: Duration::from_secs(2),
        }
    }
}

/// One tenant's share of the host, from its plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantShare {
    /// The tenant's calls running at once.
    pub max_calls: u32,
    /// Core instances the tenant's running calls may hold together ("instance slots").
    pub max_core_instances: u32,
    /// Memory the tenant's running calls may grow to together, in bytes.
    pub max_memory_bytes: u64,
    /// The tenant's calls waiting for capacity at once; more are refused at once.
    pub max_queued: u32,
}

impl TenantShare {
    /// A share with no tenant-level bound: only the host's budget applies.
    pub const UNBOUNDED: TenantShare = TenantShare {
        max_calls: u32::MAX,
        max_core_instances: u32::MAX,
        max_memory_bytes: u64::MAX,
        max_queued: u32::MAX,
    };
}

/// The resource a refused call was short of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// Concurrent calls.
    Calls,
    /// Core instance slots.
    CoreInstances,
    /// Linear memory slots.
    Memories,
    /// Table slots.
    Tables,
    /// Memory, in bytes.
    Memory,
}

impl Resource {
    /// How the resource is named in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Resource::Calls => "concurrent calls",
            Resource::CoreInstances => "instance slots",
            Resource::Memories => "memory slots",
            Resource::Tables => "table slots",
            Resource::Memory => "memory",
        }
    }
}

/// Whose budget was short: the tenant's share or the host's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The tenant's share (its plan).
    Tenant,
    /// The host-wide budget.
    Host,
}

/// Why a call got no capacity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    /// One call needs more than the whole budget: it can never run under this plan or host.
    #[error("one call needs {need} {resource}, more than the {scope_name}'s {limit}", resource = .resource.describe(), scope_name = scope_name(*.scope))]
    TooLarge {
        /// What it needs more of.
        resource: Resource,
        /// Whose budget.
        scope: Scope,
        /// How much one call needs.
        need: u64,
        /// The whole budget.
        limit: u64,
    },
    /// The budget is in use and the queue is full, or the call waited its longest.
    #[error("{detail}; retry in {} ms", .retry_after.as_millis())]
    Busy {
        /// What was short, for people.
        detail: String,
        /// Whose budget.
        scope: Scope,
        /// When trying again makes sense.
        retry_after: Duration,
    },
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Tenant => "tenant's plan",
        Scope::Host => "host",
    }
}

/// Amounts of each resource, as held or needed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Amounts {
    calls: u64,
    core_instances: u64,
    memories: u64,
    tables: u64,
    memory_bytes: u64,
}

impl Amounts {
    fn of(footprint: &Footprint) -> Self {
        Amounts {
            calls: 1,
            core_instances: u64::from(footprint.core_instances),
            memories: u64::from(footprint.memories),
            tables: u64::from(footprint.tables),
            memory_bytes: footprint.memory_bytes,
        }
    }

    fn host_limits(config: &CapacityConfig) -> Self {
        Amounts {
            calls: u64::from(config.max_calls),
            core_instances: u64::from(config.max_core_instances),
            memories: u64::from(config.max_memories),
            tables: u64::from(config.max_tables),
            memory_bytes: config.max_memory_bytes,
        }
    }

    fn tenant_limits(share: &TenantShare) -> Self {
        Amounts {
            calls: u64::from(share.max_calls),
            core_instances: u64::from(share.max_core_instances),
            memories: u64::MAX,
            tables: u64::MAX,
            memory_bytes: share.max_memory_bytes,
        }
    }

    /// The first resource for which `self + need` passes `limits`, if any.
    fn short_of(&self, need: &Amounts, limits: &Amounts) -> Option<Resource> {
        let over = |used: u64, need: u64, limit: u64| used.saturating_add(need) > limit;
        if over(self.calls, need.calls, limits.calls) {
            Some(Resource::Calls)
        } else if over(
            self.core_instances,
            need.core_instances,
            limits.core_instances,
        ) {
            Some(Resource::CoreInstances)
        } else if over(self.memories, need.memories, limits.memories) {
            Some(Resource::Memories)
        } else if over(self.tables, need.tables, limits.tables) {
            Some(Resource::Tables)
        } else if over(self.memory_bytes, need.memory_bytes, limits.memory_bytes) {
            Some(Resource::Memory)
        } else {
            None
        }
    }

    fn amount(&self, resource: Resource) -> u64 {
        match resource {
            Resource::Calls => self.calls,
            Resource::CoreInstances => self.core_instances,
            Resource::Memories => self.memories,
            Resource::Tables => self.tables,
            Resource::Memory => self.memory_bytes,
        }
    }

    fn add(&mut self, other: &Amounts) {
        self.calls = self.calls.saturating_add(other.calls);
        self.core_instances = self.core_instances.saturating_add(other.core_instances);
        self.memories = self.memories.saturating_add(other.memories);
        self.tables = self.tables.saturating_add(other.tables);
        self.memory_bytes = self.memory_bytes.saturating_add(other.memory_bytes);
    }

    fn sub(&mut self, other: &Amounts) {
        self.calls = self.calls.saturating_sub(other.calls);
        self.core_instances = self.core_instances.saturating_sub(other.core_instances);
        self.memories = self.memories.saturating_sub(other.memories);
        self.tables = self.tables.saturating_sub(other.tables);
        self.memory_bytes = self.memory_bytes.saturating_sub(other.memory_bytes);
    }

    fn is_zero(&self) -> bool {
        *self == Amounts::default()
    }
}

/// A tenant's calls running and waiting.
#[derive(Debug, Default)]
struct TenantUse {
    held: Amounts,
    waiting: u32,
}

/// A call waiting for capacity.
#[derive(Debug)]
struct Waiter {
    id: u64,
    tenant: String,
    need: Amounts,
    limits: Amounts,
    grant: oneshot::Sender<()>,
}

#[derive(Debug, Default)]
struct State {
    held: Amounts,
    tenants: HashMap<String, TenantUse>,
    queue: VecDeque<Waiter>,
    next_id: u64,
}

impl State {
    /// The resource and scope that keep `need` from running now, if any.
    fn blocked(
        &self,
        tenant: &str,
        need: &Amounts,
        limits: &Amounts,
        host: &Amounts,
    ) -> Option<(Resource, Scope)> {
        let tenant_held = self.tenants.get(tenant).map(|t| t.held).unwrap_or_default();
        if let Some(resource) = tenant_held.short_of(need, limits) {
            return Some((resource, Scope::Tenant));
        }
        self.held
            .short_of(need, host)
            .map(|resource| (resource, Scope::Host))
    }

    fn take(&mut self, tenant: &str, need: &Amounts) {
        self.held.add(need);
        self.tenants
            .entry(tenant.to_owned())
            .or_default()
            .held
            .add(need);
    }

    fn give_back(&mut self, tenant: &str, need: &Amounts) {
        self.held.sub(need);
        if let Some(used) = self.tenants.get_mut(tenant) {
            used.held.sub(need);
        }
        self.forget_if_idle(tenant);
    }

    fn stop_waiting(&mut self, tenant: &str) {
        if let Some(used) = self.tenants.get_mut(tenant) {
            used.waiting = used.waiting.saturating_sub(1);
        }
        self.forget_if_idle(tenant);
    }

    fn forget_if_idle(&mut self, tenant: &str) {
        if self
            .tenants
            .get(tenant)
            .is_some_and(|used| used.held.is_zero() && used.waiting == 0)
        {
            self.tenants.remove(tenant);
        }
    }

    /// Grants every waiter that fits now, in arrival order.
    fn pump(&mut self, host: &Amounts) {
        let mut index = 0;
        while index < self.queue.len() {
            let waiter = &self.queue[index];
            if waiter.grant.is_closed() {
                if let Some(gone) = self.queue.remove(index) {
                    self.stop_waiting(&gone.tenant);
                }
                continue;
            }
            if self
                .blocked(&waiter.tenant, &waiter.need, &waiter.limits, host)
                .is_some()
            {
                index += 1;
                continue;
            }
            let Some(waiter) = self.queue.remove(index) else {
                break;
            };
            self.stop_waiting(&waiter.tenant);
            self.take(&waiter.tenant, &waiter.need);
            if waiter.grant.send(()).is_err() {
                // It stopped waiting between the check and the grant.
                self.give_back(&waiter.tenant, &waiter.need);
            }
        }
    }
}

/// The host's capacity: budgets, shares, the queue. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Capacity {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: CapacityConfig,
    host: Amounts,
    state: Mutex<State>,
}

/// What is in use now, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapacityUse {
    /// Calls running.
    pub calls: u64,
    /// Core instances held by running calls.
    pub core_instances: u64,
    /// Memory reserved by running calls, in bytes.
    pub memory_bytes: u64,
    /// Calls waiting.
    pub queued: u64,
    /// Tenants with calls running or waiting.
    pub tenants: u64,
}

impl Capacity {
    /// Capacity with this host-wide budget.
    pub fn new(config: CapacityConfig) -> Self {
        let host = Amounts::host_limits(&config);
        Capacity {
            inner: Arc::new(Inner {
                config,
                host,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The host-wide budget.
    pub fn config(&self) -> &CapacityConfig {
        &self.inner.config
    }

    /// What is in use now.
    pub fn in_use(&self) -> CapacityUse {
        let state = self.lock();
        CapacityUse {
            calls: state.held.calls,
            core_instances: state.held.core_instances,
            memory_bytes: state.held.memory_bytes,
            queued: state.queue.len() as u64,
            tenants: state.tenants.len() as u64,
        }
    }

    /// Waits (bounded) until `footprint` fits the host's budget and `tenant`'s `share`, and
    /// holds it until the permit is dropped.
    ///
    /// # Errors
    ///
    /// [`CapacityError::TooLarge`] if one call needs more than the whole budget or share;
    /// [`CapacityError::Busy`] if the queue (host-wide or the tenant's) is full or the wait
    /// passed [`CapacityConfig::max_wait`].
    pub async fn acquire(
        &self,
        tenant: &str,
        footprint: &Footprint,
        share: &TenantShare,
    ) -> Result<CapacityPermit, CapacityError> {
        let need = Amounts::of(footprint);
        let limits = Amounts::tenant_limits(share);
        for (bounds, scope) in [(&limits, Scope::Tenant), (&self.inner.host, Scope::Host)] {
            if let Some(resource) = Amounts::default().short_of(&need, bounds) {
                return Err(CapacityError::TooLarge {
                    resource,
                    scope,
                    need: need.amount(resource),
                    limit: bounds.amount(resource),
                });
            }
        }
        let receiver = {
            let mut state = self.lock();
            let Some((resource, scope)) = state.blocked(tenant, &need, &limits, &self.inner.host)
            else {
                state.take(tenant, &need);
                return Ok(self.permit(tenant, need));
            };
            let waiting = state.tenants.get(tenant).map_or(0, |used| used.waiting);
            if waiting >= share.max_queued {
                return Err(self.busy(resource, Scope::Tenant, "its queue is full"));
            }
            if state.queue.len() >= self.inner.config.max_queued as usize {
                return Err(self.busy(resource, Scope::Host, "the queue is full"));
            }
            let (grant, receiver) = oneshot::channel();
            let id = state.next_id;
            state.next_id = state.next_id.wrapping_add(1);
            state.tenants.entry(tenant.to_owned()).or_default().waiting += 1;
            state.queue.push_back(Waiter {
                id,
                tenant: tenant.to_owned(),
                need,
                limits,
                grant,
            });
            tracing::debug!(tenant, ?resource, ?scope, "call queued for capacity");
            Waiting {
                capacity: self,
                tenant,
                id,
                need,
                receiver,
                blocked: (resource, scope),
                granted: false,
            }
        };
        receiver.wait().await
    }

    fn permit(&self, tenant: &str, need: Amounts) -> CapacityPermit {
        CapacityPermit {
            capacity: self.clone(),
            tenant: tenant.to_owned(),
            need,
        }
    }

    fn busy(&self, resource: Resource, scope: Scope, why: &str) -> CapacityError {
        let whose = match scope {
            Scope::Tenant => "the tenant is using its plan's share of",
            Scope::Host => "the host is using all its",
        };
        CapacityError::Busy {
            detail: format!("{whose} {} and {why}", resource.describe()),
            scope,
            retry_after: self.inner.config.max_wait.max(Duration::from_secs(1)),
        }
    }

    fn release(&self, tenant: &str, need: &Amounts) {
        let mut state = self.lock();
        state.give_back(tenant, need);
        state.pump(&self.inner.host);
    }

    /// Every update leaves the state consistent, so a panic elsewhere while holding the lock
    /// does not make it unusable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A queued call: granted, refused after the longest wait, or (when dropped) taken out of the
/// queue, handing back what was granted meanwhile.
struct Waiting<'c> {
    capacity: &'c Capacity,
    tenant: &'c str,
    id: u64,
    need: Amounts,
    receiver: oneshot::Receiver<()>,
    blocked: (Resource, Scope),
    granted: bool,
}

impl Waiting<'_> {
    async fn wait(mut self) -> Result<CapacityPermit, CapacityError> {
        let max_wait = self.capacity.inner.config.max_wait;
        match tokio::time::timeout(max_wait, &mut self.receiver).await {
            Ok(Ok(())) => {
                // Granted: the permit holds it now, nothing to undo when `self` drops.
                self.granted = true;
                Ok(self.capacity.permit(self.tenant, self.need))
            }
            // The sender is only dropped on a grant or by this waiter's own removal.
            Ok(Err(_)) | Err(_) => {
                let (resource, scope) = self.blocked;
                Err(self
                    .capacity
                    .busy(resource, scope, "the call waited its longest for it"))
            }
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        let mut state = self.capacity.lock();
        if let Some(index) = state.queue.iter().position(|waiter| waiter.id == self.id) {
            state.queue.remove(index);
            state.stop_waiting(self.tenant);
            return;
        }
        // Granted under the lock after the wait ended: hand it back.
        if self.receiver.try_recv().is_ok() {
            state.give_back(self.tenant, &self.need);
            state.pump(&self.capacity.inner.host);
        }
    }
}

/// A call's hold on capacity; released when dropped.
#[derive(Debug)]
pub struct CapacityPermit {
    capacity: Capacity,
    tenant: String,
    need: Amounts,
}

impl Drop for CapacityPermit {
    fn drop(&mut self) {
        self.capacity.release(&self.tenant, &self.need);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    fn footprint(memory_mb: u64) -> Footprint {
        Footprint {
            core_instances: 2,
            memories: 1,
            tables: 1,
            memory_bytes: memory_mb << 20,
        }
    }

    fn share(calls: u32, queued: u32) -> TenantShare {
        TenantShare {
            max_calls: calls,
            max_core_instances: 64,
            max_memory_bytes: 1 << 30,
            max_queued: queued,
        }
    }

    fn config() -> CapacityConfig {
        CapacityConfig {
            max_calls: 4,
            max_core_instances: 100,
            max_memories: 100,
            max_tables: 100,
            max_memory_bytes: 1 << 30,
            max_queued: 8,
            max_wait: Duration::from_millis(200),
        }
    }

    #[tokio::test]
    async fn a_tenant_at_its_share_waits_while_another_runs() {
        let capacity = Capacity::new(config());
        let a = share(2, 4);
        let first = capacity.acquire("a", &footprint(1), &a).await.unwrap();
        let _second = capacity.acquire("a", &footprint(1), &a).await.unwrap();
        // A third call of `a` waits for its own share; `b` runs at once meanwhile.
        let third = {
            let capacity = capacity.clone();
            tokio::spawn(async move { capacity.acquire("a", &footprint(1), &a).await.map(drop) })
        };
        tokio::task::yield_now().await;
        let b = capacity
            .acquire("b", &footprint(1), &share(2, 4))
            .await
            .unwrap();
        assert_eq!(capacity.in_use().calls, 3);
        drop(first);
        third.await.unwrap().unwrap();
        drop(b);
        assert_eq!(
            capacity.in_use(),
            CapacityUse {
                calls: 1,
                core_instances: 2,
                memory_bytes: 1 << 20,
                queued: 0,
                tenants: 1
            }
        );
    }

    #[tokio::test]
    async fn a_full_tenant_queue_is_refused_at_once_and_names_the_tenant() {
        let capacity = Capacity::new(config());
        let a = share(1, 1);
        let _running = capacity.acquire("a", &footprint(1), &a).await.unwrap();
        let waiting = {
            let capacity = capacity.clone();
            tokio::spawn(async move { capacity.acquire("a", &footprint(1), &a).await.map(drop) })
        };
        while capacity.in_use().queued == 0 {
            tokio::task::yield_now().await;
        }
        let refused = capacity.acquire("a", &footprint(1), &a).await.unwrap_err();
        assert!(
            matches!(&refused, CapacityError::Busy { scope: Scope::Tenant, detail, .. } if detail.contains("concurrent calls")),
            "{refused:?}"
        );
        // The waiter gives up after the longest wait.
        let timed_out = waiting.await.unwrap().unwrap_err();
        assert!(
            matches!(timed_out, CapacityError::Busy { .. }),
            "{timed_out:?}"
        );
        assert_eq!(capacity.in_use().queued, 0);
    }

    #[tokio::test]
    async fn the_host_budget_bounds_every_tenant_together() {
        let capacity = Capacity::new(config());
        let mut held = Vec::new();
        for tenant in ["a", "b", "c", "d"] {
            held.push(
                capacity
                    .acquire(tenant, &footprint(1), &share(4, 4))
                    .await
                    .unwrap(),
            );
        }
        let waiting = {
            let capacity = capacity.clone();
            tokio::spawn(async move {
                capacity
                    .acquire("e", &footprint(1), &share(4, 4))
                    .await
                    .map(drop)
            })
        };
        while capacity.in_use().queued == 0 {
            tokio::task::yield_now().await;
        }
        held.pop();
        waiting.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn memory_is_reserved_per_call_against_the_share_and_the_host() {
        let capacity = Capacity::new(config());
        let tenant = TenantShare {
            max_memory_bytes: 100 << 20,
            ..share(8, 0)
        };
        let _one = capacity
            .acquire("a", &footprint(64), &tenant)
            .await
            .unwrap();
        let refused = capacity
            .acquire("a", &footprint(64), &tenant)
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, CapacityError::Busy { scope: Scope::Tenant, detail, .. } if detail.contains("memory")),
            "{refused:?}"
        );
        let too_large = capacity
            .acquire("a", &footprint(200), &tenant)
            .await
            .unwrap_err();
        assert_eq!(
            too_large,
            CapacityError::TooLarge {
                resource: Resource::Memory,
                scope: Scope::Tenant,
                need: 200 << 20,
                limit: 100 << 20
            }
        );
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_the_queue_and_holds_nothing() {
        let capacity = Capacity::new(config());
        let a = share(1, 4);
        let running = capacity.acquire("a", &footprint(1), &a).await.unwrap();
        let waiting = {
            let capacity = capacity.clone();
            tokio::spawn(async move { capacity.acquire("a", &footprint(1), &a).await.map(drop) })
        };
        while capacity.in_use().queued == 0 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(capacity.in_use().queued, 0);
        drop(running);
        assert_eq!(capacity.in_use(), CapacityUse::default());
    }
}
