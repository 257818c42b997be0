//! Plans: named sets of quotas and feature gates, stored as data in table `plans`.
//!
//! The migration seeds `free`, `pro` and `enterprise`; an operator tunes their quotas with
//! [`update_plan`]. Every tenant is on exactly one plan.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::cache::Topic;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::installs::sync::{self, PlanScope};
use crate::state::AppState;

/// The plan a tenant gets unless an operator chooses another.
pub const DEFAULT_PLAN: &str = "free";

/// A plan: quotas and feature gates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The plan's name, e.g. `free`.
    pub name: String,
    /// Where the plan sorts among plans (cheapest first).
    pub position: i64,
    /// How many plugins a tenant may have installed at once.
    pub max_installs: i64,
    /// How many plugin invocations a tenant may make per calendar month.
    pub invocations_per_month: i64,
    /// How many bytes of key-value data a tenant's plugins may store.
    pub kv_bytes: i64,
    /// Linear memory a plugin instance may grow to, in MiB.
    pub memory_mb: i64,
    /// Fuel one call may burn; `None` is the host's default.
    pub fuel_per_call: Option<i64>,
    /// Wall-clock time one call may take, in milliseconds.
    pub timeout_ms: i64,
    /// Outbound HTTP requests a tenant's plugins may make per minute.
    pub outbound_requests_per_minute: i64,
    /// API requests a tenant may make per minute.
    pub api_requests_per_minute: i64,
    /// Feature gate: whether the tenant may install paid plugins.
    pub paid_plugins: bool,
    /// Invocations one inbound event may start across all its emit hops.
    pub max_invocations_per_event: i64,
    /// The tenant's plugin calls running at once on a host.
    pub max_concurrent_calls: i64,
    /// Core instance slots of a host's pool the tenant's running calls may hold together.
    pub max_instance_slots: i64,
    /// Memory the tenant's running calls may reserve together on a host, in MiB (each call
    /// reserves its own memory limit).
    pub memory_share_mb: i64,
    /// Days a tenant's run log keeps each run.
    pub run_retention_days: i64,
    /// Runs a tenant's run log keeps at most; the oldest go first.
    pub max_runs: i64,
    /// Attempts a queued event gets before it is dead-lettered.
    pub event_attempts: i64,
    /// The tenant's events that may wait in the queue at once.
    pub max_queued_events: i64,
    /// What the plan costs a month, in minor units of [`Plan::currency`] (0: free).
    pub price_monthly: i64,
    /// ISO 4217 currency of the price.
    pub currency: String,
    /// Days of the trial a tenant may take once (0: no trial).
    pub trial_days: i64,
}

/// A change to a plan: each `Some` field replaces the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanChange {
    /// New [`Plan::max_installs`].
    pub max_installs: Option<i64>,
    /// New [`Plan::invocations_per_month`].
    pub invocations_per_month: Option<i64>,
    /// New [`Plan::kv_bytes`].
    pub kv_bytes: Option<i64>,
    /// New [`Plan::memory_mb`].
    pub memory_mb: Option<i64>,
    /// New [`Plan::fuel_per_call`]; `Some(None)` returns to the host's default.
    pub fuel_per_call: Option<Option<i64>>,
    /// New [`Plan::timeout_ms`].
    pub timeout_ms: Option<i64>,
    /// New [`Plan::outbound_requests_per_minute`].
    pub outbound_requests_per_minute: Option<i64>,
    /// New [`Plan::api_requests_per_minute`].
    pub api_requests_per_minute: Option<i64>,
    /// New [`Plan::paid_plugins`].
    pub paid_plugins: Option<bool>,
    /// New [`Plan::max_invocations_per_event`].
    pub max_invocations_per_event: Option<i64>,
    /// New [`Plan::max_concurrent_calls`].
    pub max_concurrent_calls: Option<i64>,
    /// New [`Plan::max_instance_slots`].
    pub max_instance_slots: Option<i64>,
    /// New [`Plan::memory_share_mb`].
    pub memory_share_mb: Option<i64>,
    /// New [`Plan::run_retention_days`].
    pub run_retention_days: Option<i64>,
    /// New [`Plan::max_runs`].
    pub max_runs: Option<i64>,
    /// New [`Plan::event_attempts`].
    pub event_attempts: Option<i64>,
    /// New [`Plan::max_queued_events`].
    pub max_queued_events: Option<i64>,
    /// New [`Plan::price_monthly`] (0 or more).
    pub price_monthly: Option<i64>,
    /// New [`Plan::trial_days`] (0 or more).
    pub trial_days: Option<i64>,
}

impl PlanChange {
    /// Checks every quota given is a positive integer, naming the first field that is not.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] with code `invalid_quota`.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("max_installs", self.max_installs),
            ("invocations_per_month", self.invocations_per_month),
            ("kv_bytes", self.kv_bytes),
            ("memory_mb", self.memory_mb),
            ("fuel_per_call", self.fuel_per_call.flatten()),
            ("timeout_ms", self.timeout_ms),
            (
                "outbound_requests_per_minute",
                self.outbound_requests_per_minute,
            ),
            ("api_requests_per_minute", self.api_requests_per_minute),
            ("max_invocations_per_event", self.max_invocations_per_event),
            ("max_concurrent_calls", self.max_concurrent_calls),
            ("max_instance_slots", self.max_instance_slots),
            ("memory_share_mb", self.memory_share_mb),
            ("run_retention_days", self.run_retention_days),
            ("max_runs", self.max_runs),
            ("event_attempts", self.event_attempts),
            ("max_queued_events", self.max_queued_events),
        ];
        for (field, value) in fields {
            if let Some(value) = value
                && value <= 0
            {
                return Err(Error::bad_request(
                    "invalid_quota",
                    format!("field `{field}` must be a positive integer, not {value}"),
                ));
            }
        }
        for (field, value, most) in [
            ("price_monthly", self.price_monthly, 100_000_000_i64),
            ("trial_days", self.trial_days, 365),
        ] {
            if let Some(value) = value
                && !(0..=most).contains(&value)
            {
                return Err(Error::bad_request(
                    "invalid_price",
                    format!("field `{field}` must be from 0 to {most}, not {value}"),
                ));
            }
        }
        Ok(())
    }

    fn apply(&self, plan: &mut Plan) {
        let set = |target: &mut i64, value: Option<i64>| {
            if let Some(value) = value {
                *target = value;
            }
        };
        set(&mut plan.max_installs, self.max_installs);
        set(&mut plan.invocations_per_month, self.invocations_per_month);
        set(&mut plan.kv_bytes, self.kv_bytes);
        set(&mut plan.memory_mb, self.memory_mb);
        set(&mut plan.timeout_ms, self.timeout_ms);
        set(
            &mut plan.outbound_requests_per_minute,
            self.outbound_requests_per_minute,
        );
        set(
            &mut plan.api_requests_per_minute,
            self.api_requests_per_minute,
        );
        set(
            &mut plan.max_invocations_per_event,
            self.max_invocations_per_event,
        );
        set(&mut plan.max_concurrent_calls, self.max_concurrent_calls);
        set(&mut plan.max_instance_slots, self.max_instance_slots);
        set(&mut plan.memory_share_mb, self.memory_share_mb);
        set(&mut plan.run_retention_days, self.run_retention_days);
        set(&mut plan.max_runs, self.max_runs);
        set(&mut plan.event_attempts, self.event_attempts);
        set(&mut plan.max_queued_events, self.max_queued_events);
        set(&mut plan.price_monthly, self.price_monthly);
        set(&mut plan.trial_days, self.trial_days);
        if let Some(fuel) = self.fuel_per_call {
            plan.fuel_per_call = fuel;
        }
        if let Some(paid) = self.paid_plugins {
            plan.paid_plugins = paid;
        }
    }
}

/// The columns of `plans`, in SQL.
macro_rules! columns {
    () => {
        "name, position, max_installs, invocations_per_month, kv_bytes, memory_mb, \
         fuel_per_call, timeout_ms, outbound_requests_per_minute, api_requests_per_minute, \
         paid_plugins, max_invocations_per_event, max_concurrent_calls, max_instance_slots, \
         memory_share_mb, run_retention_days, max_runs, event_attempts, max_queued_events, \
         price_monthly, currency, trial_days"
    };
}

fn from_row(row: &AnyRow) -> Result<Plan> {
    Ok(Plan {
        name: row.try_get("name")?,
        position: row.try_get("position")?,
        max_installs: row.try_get("max_installs")?,
        invocations_per_month: row.try_get("invocations_per_month")?,
        kv_bytes: row.try_get("kv_bytes")?,
        memory_mb: row.try_get("memory_mb")?,
        fuel_per_call: row.try_get("fuel_per_call")?,
        timeout_ms: row.try_get("timeout_ms")?,
        outbound_requests_per_minute: row.try_get("outbound_requests_per_minute")?,
        api_requests_per_minute: row.try_get("api_requests_per_minute")?,
        paid_plugins: row.try_get::<i64, _>("paid_plugins")? != 0,
        max_invocations_per_event: row.try_get("max_invocations_per_event")?,
        max_concurrent_calls: row.try_get("max_concurrent_calls")?,
        max_instance_slots: row.try_get("max_instance_slots")?,
        memory_share_mb: row.try_get("memory_share_mb")?,
        run_retention_days: row.try_get("run_retention_days")?,
        max_runs: row.try_get("max_runs")?,
        event_attempts: row.try_get("event_attempts")?,
        max_queued_events: row.try_get("max_queued_events")?,
        price_monthly: row.try_get("price_monthly")?,
        currency: row.try_get("currency")?,
        trial_days: row.try_get("trial_days")?,
    })
}

/// The plan called `name`.
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown plan; [`Error::Database`].
pub async fn plan(db: &Db, name: &str) -> Result<Plan> {
    let generation = db.cache().generation(Topic::Access);
    if let Some(plan) = db.cache().plans.get(&name.to_owned(), generation) {
        return Ok(plan);
    }
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM plans WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| Error::not_found(format!("plan {name:?}")))?;
    let plan = from_row(&row)?;
    db.cache()
        .plans
        .put(name.to_owned(), plan.clone(), generation);
    Ok(plan)
}

/// The plan called `name` as transaction `tx` sees it (not through the cache).
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown plan; [`Error::Database`].
pub async fn plan_in(tx: &mut Tx, name: &str) -> Result<Plan> {
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM plans WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found(format!("plan {name:?}")))?;
    from_row(&row)
}

/// Whether a plan called `name` exists, within transaction `tx`.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn plan_exists(tx: &mut Tx, name: &str) -> Result<bool> {
    let row = sqlx::query("SELECT name FROM plans WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

/// Every plan, cheapest first.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn plans(db: &Db) -> Result<Vec<Plan>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM plans ORDER BY position, name"
    ))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Applies `change` to plan `name` and returns the plan as it now is. The change reaches the
/// running installs of the plan's tenants at once: their next calls run under the new limits
/// ([`crate::installs::sync::apply_plan`]).
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_quota`) naming a quota that is not a positive integer;
/// [`Error::NotFound`] for an unknown plan; [`Error::Database`].
pub async fn update_plan(state: &AppState, name: &str, change: &PlanChange) -> Result<Plan> {
    let db = state.db();
    change.validate()?;
    let mut tx = db.begin().await?;
    // Take the row's write lock first, so concurrent partial updates do not undo each other.
    let locked = sqlx::query("UPDATE plans SET position = position WHERE name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    if locked.rows_affected() == 0 {
        return Err(Error::not_found(format!("plan {name:?}")));
    }
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM plans WHERE name = $1"
    ))
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    let mut plan = from_row(&row)?;
    change.apply(&mut plan);
    sqlx::query(
        "UPDATE plans SET max_installs = $1, invocations_per_month = $2, kv_bytes = $3, \
             memory_mb = $4, fuel_per_call = $5, timeout_ms = $6, \
             outbound_requests_per_minute = $7, api_requests_per_minute = $8, paid_plugins = $9, \
             max_invocations_per_event = $10, max_concurrent_calls = $11, \
             max_instance_slots = $12, memory_share_mb = $13, run_retention_days = $14, \
             max_runs = $15, event_attempts = $16, max_queued_events = $17, \
             price_monthly = $18, trial_days = $19 \
         WHERE name = $20",
    )
    .bind(plan.max_installs)
    .bind(plan.invocations_per_month)
    .bind(plan.kv_bytes)
    .bind(plan.memory_mb)
    .bind(plan.fuel_per_call)
    .bind(plan.timeout_ms)
    .bind(plan.outbound_requests_per_minute)
    .bind(plan.api_requests_per_minute)
    .bind(i64::from(plan.paid_plugins))
    .bind(plan.max_invocations_per_event)
    .bind(plan.max_concurrent_calls)
    .bind(plan.max_instance_slots)
    .bind(plan.memory_share_mb)
    .bind(plan.run_retention_days)
    .bind(plan.max_runs)
    .bind(plan.event_attempts)
    .bind(plan.max_queued_events)
    .bind(plan.price_monthly)
    .bind(plan.trial_days)
    .bind(name)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    db.changed(Topic::Access);
    sync::apply_plan(state, PlanScope::Plan(name)).await;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_must_be_positive_and_the_error_names_the_field() {
        let change = PlanChange {
            max_installs: Some(3),
            kv_bytes: Some(0),
            ..PlanChange::default()
        };
        let err = change.validate().unwrap_err();
        assert_eq!(err.code(), "invalid_quota");
        assert!(err.to_string().contains("`kv_bytes`"), "{err}");
        let fuel = PlanChange {
            fuel_per_call: Some(Some(-1)),
            ..PlanChange::default()
        };
        assert!(
            fuel.validate()
                .unwrap_err()
                .to_string()
                .contains("fuel_per_call")
        );
        let unlimited_fuel = PlanChange {
            fuel_per_call: Some(None),
            ..PlanChange::default()
        };
        unlimited_fuel.validate().unwrap();
    }
}
