//! Durable asynchronous events: `POST /v1/tenants/{tenant}/events` with `"delivery":
//! "async"` (or `Prefer: respond-async`) is answered 202 once the event is stored, and any
//! host process delivers it, at least once.
//!
//! - **Accepting** ([`accept`]): after the admission gate, the event is written to
//!   `queued_events`; an `Idempotency-Key` makes a retried request return the event it first
//!   created. A tenant has at most its plan's `max_queued_events` waiting (429 `queue_full`).
//! - **Claiming** ([`store::claim`]): a worker of every host process ([`worker`]) claims due
//!   events with a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so hosts share the work and
//!   never hold one event at once). At most a few of one tenant's events are claimed per
//!   round and a tenant with its share in flight is skipped, so one tenant's flood waits
//!   behind its own events, not in front of everyone's. A host that dies loses its leases when
//!   they end, and its events are delivered again.
//! - **Delivering**: the first attempt fans the event out to the subscribed installs (or to the
//!   one install whose schedule it is), within what is left of the budget of the event tree
//!   it belongs to (the plan's `max_invocations_per_event`, shared by every event plugins emit
//!   from it), and each attempt calls the plugins still pending, one hop, with the month's
//!   quota checked per attempt. No transaction is open while plugins run.
//! - **Recording** ([`store::record`]): one transaction writes each plugin's result, queues
//!   what the plugins emitted as events of their own (ids derived from the parent's id, the
//!   plugin and the emit's place, so the same on every redelivery: [`store::emitted_id`]), and either finishes the event (`delivered`, or `dead` when a plugin
//!   failed for good) or schedules the plugins that failed again after an exponential back-off
//!   with jitter ([`backoff`]); after the plan's `event_attempts` they fail for good. A worker
//!   whose lease another took over records nothing.
//! - **Reading and replaying** ([`routes`]): the event's status, attempts and each plugin's
//!   result; dead letters listed and replayed.
//!
//! The plugin receives the event's id and can de-duplicate on it: a plugin sees one event
//! twice only when a host died (or its lease ran out) between the call and the record.

pub mod accept;
pub mod backoff;
pub mod routes;
pub mod store;
pub mod view;
pub mod worker;

use std::time::Duration;

/// An event waiting for (another) attempt.
pub const QUEUED: &str = "queued";
/// Every plugin got the event (or was skipped by the budget, or is no longer installed).
pub const DELIVERED: &str = "delivered";
/// At least one plugin's delivery failed for good: a dead letter, which can be replayed.
pub const DEAD: &str = "dead";

/// How this process works the queue.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// How long a claim lasts before another host may take the event over; renewed while
    /// the attempt runs.
    pub lease: Duration,
    /// How often an idle worker looks for due events (it is also woken when this process
    /// queues one).
    pub poll_every: Duration,
    /// Events this process delivers at once.
    pub concurrency: usize,
    /// Of those, events of one tenant at once.
    pub per_tenant: usize,
    /// The wait before the second attempt; each later wait doubles (with jitter).
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// How long finished events (delivered or dead) stay readable, with their results.
    pub keep_finished: Duration,
    /// Whether the server runs the worker and the schedule ticker in the background (tests
    /// turn them off and drive [`worker::work_due`] and [`crate::schedules::tick`] with the
    /// time they choose).
    pub background: bool,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            lease: Duration::from_secs(60),
            poll_every: Duration::from_millis(250),
            concurrency: 16,
            per_tenant: 4,
            retry_base: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60 * 60),
            keep_finished: Duration::from_secs(7 * 24 * 60 * 60),
            background: true,
        }
    }
}
