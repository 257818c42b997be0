//! Schedules: every install whose grant has `[[permissions.schedules]]` gets an event on each
//! tick, through the queue ([`crate::queue`]), for that install only.
//!
//! Every host process ticks (once a second, in the background; tests call [`tick`] with the time
//! they choose). A tick is queued once across all hosts: `schedule_ticks` keeps each
//! schedule's last queued tick, and moving it forward is a compare-and-set in the transaction
//! that queues the event.
//!
//! **Policy for missed ticks**: after downtime only the latest tick that is due is delivered
//! (late); the ones before it are dropped. A schedule starts with the first tick after a host
//! first sees it (an install made while no host ran starts when one does). The event's payload
//! is `{"schedule": "every 15m", "tick": <Unix ms>}`; its id is what the plugin de-duplicates on.

use std::collections::HashMap;
use std::time::Duration;

use plinth_package::Schedule;
use tokio::task::JoinHandle;

use crate::clock::now_ms;
use crate::db::Tx;
use crate::error::Result;
use crate::id::new_id;
use crate::queue::QUEUED;
use crate::state::AppState;
use crate::tenants;

/// How often a host looks for due ticks.
const EVERY: Duration = Duration::from_secs(1);

/// One schedule of one install, as `schedule_ticks` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: String,
    plugin: String,
    schedule: String,
}

/// What a ticker remembers between rounds: when each schedule is next due, so a round does
/// no work for schedules that are not.
#[derive(Debug, Default)]
pub struct Ticker {
    due_at: HashMap<Key, i64>,
}

impl Ticker {
    /// A ticker that has seen nothing yet.
    pub fn new() -> Ticker {
        Ticker::default()
    }

    /// Queues every tick due at `now` that no host queued yet; returns how many this call
    /// queued.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Database`]; the schedules not reached are tried next round.
    pub async fn tick(&mut self, state: &AppState, now: i64) -> Result<usize> {
        let runtime = state.runtime()?;
        let scheduled = runtime.host.scheduled();
        let mut queued = 0;
        let mut live = HashMap::with_capacity(self.due_at.len());
        for (tenant, plugin, schedules) in scheduled {
            for schedule in schedules {
                let key = Key {
                    tenant: tenant.clone(),
                    plugin: plugin.clone(),
                    schedule: format!("{} {}", schedule.detail(), schedule.topic),
                };
                let due_at = self.due_at.get(&key).copied().unwrap_or(i64::MIN);
                if now < due_at {
                    live.insert(key, due_at);
                    continue;
                }
                let Some(latest) = schedule.latest_tick(now) else {
                    continue;
                };
                if queue_if_first(state, &key, &schedule, latest, now).await? {
                    queued += 1;
                }
                let next = schedule.next_tick(latest).unwrap_or(i64::MAX);
                live.insert(key, next);
            }
        }
        // Schedules of installs that went away are forgotten.
        self.due_at = live;
        if queued > 0 {
            crate::queue::worker::wake(state);
        }
        Ok(queued)
    }
}

/// Queues the ticks due at `now` with a fresh [`Ticker`]: what one host that just started
/// does. Returns how many it queued.
///
/// # Errors
///
/// As [`Ticker::tick`].
pub async fn tick(state: &AppState, now: i64) -> Result<usize> {
    Ticker::new().tick(state, now).await
}

/// Queues `tick` of the schedule unless a host did: one transaction moves the schedule's last
/// tick forward (compare-and-set) and queues the event. The first sighting of a schedule only
/// records the tick. `true` when this call queued it.
async fn queue_if_first(
    state: &AppState,
    key: &Key,
    schedule: &Schedule,
    tick: i64,
    now: i64,
) -> Result<bool> {
    let Some(tenant) = tenants::by_id(state.db(), &key.tenant).await? else {
        return Ok(false);
    };
    if tenant.suspended_at.is_some() {
        // A suspended tenant's schedules do not fire (its plugins do not run).
        return Ok(false);
    }
    let plan = tenants::plan(state.db(), &tenant.plan).await?;
    let mut tx = state.db().begin_tenant(&key.tenant).await?;
    if !advance(&mut tx, key, tick).await? {
        // A first sighting's row is kept.
        tx.commit().await?;
        return Ok(false);
    }
    let payload = serde_json::json!({ "schedule": schedule.detail(), "tick": tick }).to_string();
    let id = new_id();
    sqlx::query(
        "INSERT INTO queued_events (id, tenant_id, root_id, topic, payload, depth, target_plugin, \
             schedule_key, status, max_attempts, budget, next_attempt_at, created_at) \
         VALUES ($1, $2, $1, $3, $4, 0, $5, $6, $7, $8, $9, $10, $10)",
    )
    .bind(&id)
    .bind(&key.tenant)
    .bind(schedule.topic.as_str())
    .bind(payload.as_bytes())
    .bind(&key.plugin)
    .bind(format!(
        "{}|{}|{}|{tick}",
        key.tenant, key.plugin, key.schedule
    ))
    .bind(QUEUED)
    .bind(plan.event_attempts.max(1))
    .bind(plan.max_invocations_per_event.max(1))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::debug!(tenant = %key.tenant, plugin = %key.plugin, tick, "schedule tick queued");
    Ok(true)
}

/// Moves the schedule's last tick to `tick` in `tx`; `true` when this call did. The first
/// sighting only records the tick.
async fn advance(tx: &mut Tx, key: &Key, tick: i64) -> Result<bool> {
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT last_tick FROM schedule_ticks \
         WHERE tenant_id = $1 AND plugin_id = $2 AND schedule = $3",
    )
    .bind(&key.tenant)
    .bind(&key.plugin)
    .bind(&key.schedule)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(last) = last else {
        sqlx::query(
            "INSERT INTO schedule_ticks (tenant_id, plugin_id, schedule, last_tick) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&key.tenant)
        .bind(&key.plugin)
        .bind(&key.schedule)
        .bind(tick)
        .execute(&mut **tx)
        .await?;
        return Ok(false);
    };
    if last >= tick {
        return Ok(false);
    }
    let moved = sqlx::query(
        "UPDATE schedule_ticks SET last_tick = $1 \
         WHERE tenant_id = $2 AND plugin_id = $3 AND schedule = $4 AND last_tick = $5",
    )
    .bind(tick)
    .bind(&key.tenant)
    .bind(&key.plugin)
    .bind(&key.schedule)
    .bind(last)
    .execute(&mut **tx)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// Starts the ticker of a process with a host; `None` without one (or with the queue's
/// `background` off).
pub(crate) fn spawn_ticker(state: AppState) -> Option<JoinHandle<()>> {
    state.runtime().ok()?;
    if !state.settings().queue.background {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticker = Ticker::new();
        let mut interval = tokio::time::interval(EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(error) = ticker.tick(&state, now_ms()).await {
                tracing::warn!(%error, "cannot queue schedule ticks; will retry");
            }
        }
    }))
}
