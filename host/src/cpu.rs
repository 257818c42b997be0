//! Fair shares of the slots that run guest code, between tenants.
//!
//! A call runs guest code only while it holds one of a fixed number of CPU slots (by default
//! one per plugin thread, when no call can ever wait and the host leaves them out; an operator
//! may set fewer, down to keeping cores free for the API).
//! It gives its slot back every time it stops to wait: at every epoch tick (a busy call yields,
//! see [`crate::invoke`]) and while a host call it made is pending (a sleep, a kv query, an
//! outbound request). To go on it waits for a slot again.
//!
//! A freed slot goes to the tenant with the fewest calls holding slots among those waiting,
//! and of those to the one served longest ago (first come first served between one tenant's
//! calls). So a tenant alone may use every slot, but however many busy calls one tenant keeps
//! running, another tenant's call gets the next slot that frees, within about a tick.
//!
//! Measured on 2 cores, one slot per core made a neighbour's short calls slower than leaving
//! the sharing to the operating system: work a call cannot yield in (filling 56 MiB of memory
//! in one instruction, its page faults) holds its slot however long it takes.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// The CPU slots of a host. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub(crate) struct CpuSlots {
    state: Arc<Mutex<Slots>>,
}

/// Who holds and who waits for the slots.
///
/// Invariant: when a slot is free, nobody waits (a freed slot is handed on at once).
#[derive(Debug)]
struct Slots {
    free: usize,
    /// The tenants holding or waiting for slots.
    tenants: HashMap<Arc<str>, TenantSlots>,
    /// Tickets handed a slot that their call has not taken yet.
    granted: HashMap<u64, Arc<str>>,
    next_ticket: u64,
    /// Counts the slots handed out, to know which tenant was served last.
    turns: u64,
}

/// One tenant's slots.
#[derive(Debug, Default)]
struct TenantSlots {
    held: usize,
    /// When the tenant was last handed a slot.
    last_turn: u64,
    /// Its waiting calls in arrival order: (ticket, waker).
    waiting: VecDeque<(u64, Waker)>,
}

impl CpuSlots {
    /// `slots` slots (at least one).
    pub(crate) fn new(slots: usize) -> Self {
        CpuSlots {
            state: Arc::new(Mutex::new(Slots::new(slots))),
        }
    }

    /// `call` of `tenant`, polled only while it holds a slot, giving the slot back whenever it
    /// is pending.
    pub(crate) fn fair<F: Future>(&self, tenant: &str, call: F) -> Fair<F> {
        Fair {
            call: Box::pin(call),
            tenant: Arc::from(tenant),
            slots: self.clone(),
            ticket: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn free(&self) -> usize {
        self.lock().free
    }
}

impl Slots {
    /// `slots` free slots (at least one).
    fn new(slots: usize) -> Self {
        Slots {
            free: slots.max(1),
            tenants: HashMap::new(),
            granted: HashMap::new(),
            next_ticket: 0,
            turns: 0,
        }
    }

    /// Takes a free slot for `tenant`, if one is free.
    fn try_take(&mut self, tenant: &Arc<str>) -> bool {
        if self.free == 0 {
            return false;
        }
        self.free -= 1;
        self.turns += 1;
        let slots = self.tenants.entry(Arc::clone(tenant)).or_default();
        slots.held += 1;
        slots.last_turn = self.turns;
        true
    }

    /// Queues a call of `tenant` for a slot; its ticket.
    fn wait(&mut self, tenant: &Arc<str>, waker: &Waker) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.tenants
            .entry(Arc::clone(tenant))
            .or_default()
            .waiting
            .push_back((ticket, waker.clone()));
        ticket
    }

    /// Gives `tenant`'s slot back and hands free slots on.
    fn give_back(&mut self, tenant: &Arc<str>) {
        if let Some(slots) = self.tenants.get_mut(tenant) {
            slots.held = slots.held.saturating_sub(1);
        }
        self.forget_if_idle(tenant);
        self.free += 1;
        self.hand_on();
    }

    /// While a slot is free and someone waits: the oldest call of the waiting tenant that
    /// holds fewest slots, and of those the one served longest ago (a tenant new to the
    /// slots first), gets it.
    fn hand_on(&mut self) {
        while self.free > 0 {
            let next = self
                .tenants
                .iter()
                .filter(|(_, slots)| !slots.waiting.is_empty())
                .min_by_key(|(_, slots)| (slots.held, slots.last_turn))
                .map(|(tenant, _)| Arc::clone(tenant));
            let Some(tenant) = next else { return };
            let Some(slots) = self.tenants.get_mut(&tenant) else {
                return;
            };
            let Some((ticket, waker)) = slots.waiting.pop_front() else {
                return;
            };
            self.free -= 1;
            self.turns += 1;
            slots.held += 1;
            slots.last_turn = self.turns;
            self.granted.insert(ticket, tenant);
            waker.wake();
        }
    }

    /// Forgets `ticket` of `tenant`: out of the queue, or its slot given back if it had one.
    fn cancel(&mut self, tenant: &Arc<str>, ticket: u64) {
        if self.granted.remove(&ticket).is_some() {
            self.give_back(tenant);
        } else if let Some(slots) = self.tenants.get_mut(tenant) {
            slots.waiting.retain(|(queued, _)| *queued != ticket);
            self.forget_if_idle(tenant);
        }
    }

    /// Drops what is known of `tenant` once it neither holds nor waits for a slot.
    fn forget_if_idle(&mut self, tenant: &Arc<str>) {
        if self
            .tenants
            .get(tenant)
            .is_some_and(|slots| slots.held == 0 && slots.waiting.is_empty())
        {
            self.tenants.remove(tenant);
        }
    }
}

/// A call that runs only while it holds a CPU slot ([`CpuSlots::fair`]).
pub(crate) struct Fair<F> {
    call: Pin<Box<F>>,
    tenant: Arc<str>,
    slots: CpuSlots,
    /// The place in the queue of a call waiting for a slot.
    ticket: Option<u64>,
}

impl<F: Future> Future for Fair<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        {
            let mut slots = this.slots.lock();
            match this.ticket {
                Some(ticket) if slots.granted.remove(&ticket).is_some() => this.ticket = None,
                Some(ticket) => {
                    // Still waiting: make sure the latest waker is the one woken.
                    if let Some(tenant) = slots.tenants.get_mut(&this.tenant)
                        && let Some(entry) = tenant.waiting.iter_mut().find(|(t, _)| *t == ticket)
                    {
                        entry.1.clone_from(cx.waker());
                    }
                    return Poll::Pending;
                }
                None if slots.try_take(&this.tenant) => {}
                None => {
                    this.ticket = Some(slots.wait(&this.tenant, cx.waker()));
                    return Poll::Pending;
                }
            }
        }
        let polled = this.call.as_mut().poll(cx);
        // Waiting (at a tick or on a host call) or done: the slot goes to the next in line.
        this.slots.lock().give_back(&this.tenant);
        polled
    }
}

impl<F> Drop for Fair<F> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            self.slots.lock().cancel(&self.tenant, ticket);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Busy for `busy` (holding the slot), then a yield that frees it; `rounds` times.
    async fn work(
        rounds: usize,
        busy: Duration,
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    ) {
        for _ in 0..rounds {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(busy);
            running.fetch_sub(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_calls_run_at_once_than_there_are_slots_and_waiting_frees_a_slot() {
        let slots = CpuSlots::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let calls: Vec<_> = (0..8)
            .map(|i| {
                let call = work(
                    20,
                    Duration::from_micros(200),
                    running.clone(),
                    most.clone(),
                );
                tokio::spawn(slots.fair(&format!("t{}", i % 3), call))
            })
            .collect();
        // A call that only waits holds no slot meanwhile: it finishes while the others run.
        let sleeper = tokio::spawn(slots.fair("t0", tokio::time::sleep(Duration::from_millis(1))));
        for call in calls {
            call.await.unwrap();
        }
        sleeper.await.unwrap();
        assert!(
            most.load(Ordering::SeqCst) <= 2,
            "{}",
            most.load(Ordering::SeqCst)
        );
        assert_eq!(slots.free(), 2);
    }

    #[test]
    fn a_freed_slot_goes_to_a_waiting_tenant_before_a_busy_tenants_queued_calls() {
        let mut slots = Slots::new(1);
        let (a, b, c) = (Arc::from("a"), Arc::from("b"), Arc::from("c"));
        assert!(slots.try_take(&a));
        let a_waiting: Vec<_> = (0..5).map(|_| slots.wait(&a, Waker::noop())).collect();
        let b_first = slots.wait(&b, Waker::noop());
        let b_second = slots.wait(&b, Waker::noop());
        // A's running call yields: B, which has not run yet, goes before A's five older calls.
        slots.give_back(&a);
        assert_eq!(slots.granted.get(&b_first), Some(&b));
        // Then turns alternate: A (served longer ago than B), B, then A's calls in order.
        slots.granted.clear();
        slots.give_back(&b);
        assert_eq!(slots.granted.get(&a_waiting[0]), Some(&a));
        slots.give_back(&a);
        assert_eq!(slots.granted.get(&b_second), Some(&b));
        // A newcomer goes first again; A's calls keep their order.
        let c_only = slots.wait(&c, Waker::noop());
        slots.give_back(&b);
        assert_eq!(slots.granted.get(&c_only), Some(&c));
        slots.give_back(&c);
        assert_eq!(slots.granted.get(&a_waiting[1]), Some(&a));
        // B and C neither hold nor wait any more: nothing is kept of them.
        assert!(!slots.tenants.contains_key(&b) && !slots.tenants.contains_key(&c));
    }

    #[tokio::test]
    async fn a_call_dropped_while_waiting_or_granted_leaves_no_slot_taken() {
        let slots = CpuSlots::new(1);
        let mut holder = Box::pin(slots.fair("a", std::future::pending::<()>()));
        // Taking the slot, then pending: gives it back at once.
        assert!(futures_poll(&mut holder).is_pending());
        assert_eq!(slots.free(), 1);
        // Two waiters queue behind a held slot; dropping them frees everything.
        let mut first = Box::pin(slots.fair("b", std::future::pending::<()>()));
        {
            let mut state = slots.lock();
            assert!(state.try_take(&Arc::from("x")));
        }
        assert!(futures_poll(&mut first).is_pending());
        let mut second = Box::pin(slots.fair("c", std::future::pending::<()>()));
        assert!(futures_poll(&mut second).is_pending());
        // The held slot comes back and is granted to `first`, which is dropped before it runs.
        slots.lock().give_back(&Arc::from("x"));
        assert_eq!(slots.free(), 0);
        drop(first);
        // The slot went on to `second`; dropping it too frees the slot.
        assert_eq!(slots.free(), 0);
        drop(second);
        assert_eq!(slots.free(), 1);
        let state = slots.lock();
        assert!(state.tenants.is_empty() && state.granted.is_empty());
    }

    fn futures_poll<F: Future + ?Sized>(future: &mut Pin<Box<F>>) -> Poll<F::Output> {
        let waker = Waker::noop();
        future.as_mut().poll(&mut Context::from_waker(waker))
    }
}
