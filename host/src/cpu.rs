//! Fair shares of the cores between running calls.
//!
//! A call runs guest code only while it holds one of a fixed number of CPU slots (one per core
//! by default). It gives its slot back every time it stops to wait: at every epoch tick (a
//! busy call yields, see [`crate::invoke`]) and while a host call it made is pending (a sleep,
//! a kv query, an outbound request). To go on it queues for a slot again, behind every call
//! already waiting, first come first served. So a call that just arrived runs within about a
//! tick of a busy call's next yield, however many busy calls another tenant keeps running, and
//! the operating system never has more plugin threads to share the cores between than there
//! are cores.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// The CPU slots of a host. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub(crate) struct CpuSlots {
    slots: Arc<Semaphore>,
}

impl CpuSlots {
    /// `slots` slots (at least one).
    pub(crate) fn new(slots: usize) -> Self {
        CpuSlots {
            slots: Arc::new(Semaphore::new(slots.max(1))),
        }
    }

    /// `call`, polled only while it holds a slot, giving the slot back whenever it is pending.
    pub(crate) fn fair<F: Future>(&self, call: F) -> Fair<F> {
        Fair {
            call: Box::pin(call),
            slots: Arc::clone(&self.slots),
            held: None,
            queued: None,
        }
    }
}

type Acquiring = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A call that runs only while it holds a CPU slot ([`CpuSlots::fair`]).
pub(crate) struct Fair<F> {
    call: Pin<Box<F>>,
    slots: Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
    queued: Option<Acquiring>,
}

impl<F: Future> Future for Fair<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if this.held.is_none() {
            let queued = this
                .queued
                .get_or_insert_with(|| Box::pin(Arc::clone(&this.slots).acquire_owned()));
            match queued.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                // The semaphore is never closed; were it, the call would run without a slot.
                Poll::Ready(permit) => {
                    this.held = permit.ok();
                    this.queued = None;
                }
            }
        }
        let polled = this.call.as_mut().poll(cx);
        // Waiting (at a tick or on a host call) or done: the slot goes to the next in line.
        this.held = None;
        polled
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_calls_run_at_once_than_there_are_slots_and_waiting_frees_a_slot() {
        let slots = CpuSlots::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let (running, most) = (Arc::clone(&running), Arc::clone(&most));
                tokio::spawn(slots.fair(async move {
                    for _ in 0..20 {
                        // Busy for a moment (holding the slot), then a yield that frees it.
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(200));
                        running.fetch_sub(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                    }
                }))
            })
            .collect();
        // A call that only waits holds no slot meanwhile: it finishes while the others run.
        let sleeper = tokio::spawn(slots.fair(tokio::time::sleep(Duration::from_millis(1))));
        for call in calls {
            call.await.unwrap();
        }
        sleeper.await.unwrap();
        assert!(
            most.load(Ordering::SeqCst) <= 2,
            "{}",
            most.load(Ordering::SeqCst)
        );
        assert_eq!(slots.slots.available_permits(), 2);
    }
}
