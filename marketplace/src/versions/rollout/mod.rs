//! Staged rollouts: a new version reaches auto-updating installs a share of tenants at a time.
//!
//! A member of the plugin's publisher (or an operator) gives a version's schedule before it is
//! approved, e.g. 5% → 25% → 100% with a soak time after each stage ([`stages`]). When the
//! version is approved, only the installs of tenants in the first stage follow it
//! ([`super::updates::after_approval`] asks `begin`); [`tick`] starts each next stage once the
//! soak has passed (the server calls it every minute with the time; tests with the time they
//! choose). A tenant's place in line is a stable hash of tenant and plugin ([`stages::place`]).
//!
//! The rollout pauses by itself when the host's breaker rolls an updated install back (the
//! breaker's rollout policy: more than its share of calls failed after the update); a steward
//! may pause and resume it, and **halt** it: the kill switch stops it for good and rolls every
//! install it updated back to the version it had. Manual updates and new installs are not
//! held back. Every change is audited and the publisher notified.

pub mod stages;

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

pub use stages::Stage;

use super::hooks::Hooks;
use super::installable;
use super::moves::{self, Choice, Loader, Outcome, Previous};
use super::{Steward, find_version, lock_plugin, plugin_row, steward_of, version_rows};
use crate::audit::Actor;
use crate::auth::Principal;
use crate::clock::{now_ms, rfc3339};
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::installs;
use crate::notifications::notify;
use crate::state::AppState;

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Scheduled; the version is not approved yet.
    Pending,
    /// Updating the current stage's installs; the next stage starts after its soak.
    Active,
    /// Stopped at its stage until resumed (by a steward, or by itself after a rollback).
    Paused,
    /// Stopped for good by the kill switch; its updates were rolled back.
    Halted,
    /// Every stage applied.
    Complete,
}

impl State {
    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Active => "active",
            State::Paused => "paused",
            State::Halted => "halted",
            State::Complete => "complete",
        }
    }

    fn parse(text: &str) -> Result<State> {
        Ok(match text {
            "pending" => State::Pending,
            "active" => State::Active,
            "paused" => State::Paused,
            "halted" => State::Halted,
            "complete" => State::Complete,
            other => return Err(Error::Internal(format!("unknown rollout state {other:?}"))),
        })
    }
}

/// A rollout as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// The plugin.
    pub plugin_id: String,
    /// The version rolled out.
    pub version: String,
    /// The schedule.
    pub stages: Vec<Stage>,
    /// The index of the current stage.
    pub stage: usize,
    /// Where it stands.
    pub state: State,
    /// Whether its approval was the full review after a change of control (its updates are
    /// held for the tenants to apply by hand).
    pub held: bool,
    /// When the current stage started (Unix ms).
    pub stage_started_at: Option<i64>,
    /// Why it was paused or halted.
    pub reason: Option<String>,
}

impl Rollout {
    /// The share of tenants the current stage reaches, in percent (0 before it starts).
    pub fn percent(&self) -> u8 {
        match self.state {
            State::Pending => 0,
            _ => self.stages.get(self.stage).map_or(100, |s| s.percent),
        }
    }

    /// When the next stage is due (Unix ms), while active with a stage after this one.
    pub fn next_stage_at(&self) -> Option<i64> {
        let started = self.stage_started_at?;
        (self.state == State::Active && self.stage + 1 < self.stages.len())
            .then(|| started.saturating_add(self.stages[self.stage].soak_ms()))
    }
}

const COLUMNS: &str = "plugin_id, version, stages, stage, state, held, stage_started_at, reason";

fn from_row(row: &AnyRow) -> Result<Rollout> {
    let stages: String = row.try_get(2)?;
    let stage: i64 = row.try_get(3)?;
    let state: String = row.try_get(4)?;
    Ok(Rollout {
        plugin_id: row.try_get(0)?,
        version: row.try_get(1)?,
        stages: serde_json::from_str(&stages)
            .map_err(|e| Error::Internal(format!("stored rollout stages: {e}")))?,
        stage: usize::try_from(stage).unwrap_or(0),
        state: State::parse(&state)?,
        held: row.try_get::<i64, _>(5)? != 0,
        stage_started_at: row.try_get(6)?,
        reason: row.try_get(7)?,
    })
}

/// The rollout of `plugin_id` `version`, read in `tx`.
async fn load(tx: &mut Tx, plugin_id: &str, version: &str) -> Result<Option<Rollout>> {
    let sql = format!("SELECT {COLUMNS} FROM rollouts WHERE plugin_id = $1 AND version = $2");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(plugin_id)
        .bind(version)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// A rollout as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RolloutView {
    /// The plugin id.
    pub plugin: String,
    /// The version rolled out.
    pub version: String,
    /// `pending`, `active`, `paused`, `halted` or `complete`.
    pub state: String,
    /// The schedule.
    pub stages: Vec<Stage>,
    /// The current stage, from 1 (0 while pending).
    pub stage: usize,
    /// The share of tenants it reaches now, in percent.
    pub percent: u8,
    /// When the current stage started (RFC 3339).
    pub stage_started_at: Option<String>,
    /// When the next stage is due (RFC 3339), while active.
    pub next_stage_at: Option<String>,
    /// Why it was paused or halted.
    pub reason: Option<String>,
    /// How many installs it has updated (and that still have the plugin).
    pub updated_installs: i64,
}

async fn view(tx: &mut Tx, rollout: &Rollout) -> Result<RolloutView> {
    let updated: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM rollout_updates WHERE plugin_id = $1 AND version = $2",
    )
    .bind(&rollout.plugin_id)
    .bind(&rollout.version)
    .fetch_one(&mut **tx)
    .await?;
    Ok(RolloutView {
        plugin: rollout.plugin_id.clone(),
        version: rollout.version.clone(),
        state: rollout.state.as_str().to_owned(),
        stages: rollout.stages.clone(),
        stage: if rollout.state == State::Pending {
            0
        } else {
            rollout.stage + 1
        },
        percent: rollout.percent(),
        stage_started_at: rollout.stage_started_at.map(rfc3339),
        next_stage_at: rollout.next_stage_at().map(rfc3339),
        reason: rollout.reason.clone(),
        updated_installs: updated,
    })
}

/// The version text as stored (`1.2.0`), or 400 naming the path's version.
fn version_key(version: &str) -> Result<String> {
    semver::Version::parse(version)
        .map(|v| v.to_string())
        .map_err(|_| {
            Error::bad_request(
                "invalid_version",
                format!("{version:?} is not a semantic version such as 1.2.0"),
            )
        })
}

fn unknown_rollout(plugin_id: &str, version: &str) -> Error {
    Error::not_found(format!("rollout of {plugin_id} {version}"))
}

/// Audits a rollout change and tells the publisher, in `tx`.
async fn record(
    tx: &mut Tx,
    actor: Actor,
    publisher_id: &str,
    action: &'static str,
    rollout: &Rollout,
    message: &str,
    mut details: Value,
) -> Result<()> {
    details["plugin"] = Value::String(rollout.plugin_id.clone());
    details["version"] = Value::String(rollout.version.clone());
    details["state"] = Value::String(rollout.state.as_str().to_owned());
    details["percent"] = json!(rollout.percent());
    crate::audit::record(
        tx,
        crate::audit::Entry {
            actor,
            action,
            tenant_id: None,
            subject: format!("plugin:{}@{}", rollout.plugin_id, rollout.version),
            details: details.clone(),
        },
    )
    .await?;
    notify(tx, "publisher", publisher_id, "rollout", message, details).await
}

/// Schedules the rollout of `plugin_id` `version` (not yet approved) in `stages`, as a member
/// of its publisher or an operator; replaces a schedule not yet started. Audited.
///
/// # Errors
///
/// 404 for a plugin the caller may not manage; 400 `invalid_version`, `invalid_rollout`
/// (naming the stage and field); 409 `version_published` once the version is approved.
pub async fn schedule(
    db: &Db,
    principal: &Principal,
    plugin_id: &str,
    version: &str,
    stages: Vec<Stage>,
) -> Result<RolloutView> {
    let (_, publisher_id) = steward_of(db, principal, plugin_id).await?;
    let version = version_key(version)?;
    stages::check(&stages)?;
    let text = serde_json::to_string(&stages)
        .map_err(|e| Error::Internal(format!("rollout stages: {e}")))?;
    let now = now_ms();
    let mut tx = db.begin().await?;
    lock_plugin(&mut tx, plugin_id).await?;
    let published: Option<String> =
        sqlx::query_scalar("SELECT version FROM versions WHERE plugin_id = $1 AND version = $2")
            .bind(plugin_id)
            .bind(&version)
            .fetch_optional(&mut *tx)
            .await?;
    if published.is_some() {
        return Err(Error::conflict(
            "version_published",
            format!(
                "{plugin_id} {version} is approved already; a rollout is scheduled before its approval"
            ),
        ));
    }
    sqlx::query("DELETE FROM rollouts WHERE plugin_id = $1 AND version = $2")
        .bind(plugin_id)
        .bind(&version)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO rollouts (plugin_id, version, stages, stage, state, held, created_by, \
         created_at, updated_at) VALUES ($1, $2, $3, 0, 'pending', 0, $4, $5, $5)",
    )
    .bind(plugin_id)
    .bind(&version)
    .bind(&text)
    .bind(Actor::from(principal).id().unwrap_or("system"))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let rollout = load(&mut tx, plugin_id, &version)
        .await?
        .ok_or_else(|| Error::Internal("rollout vanished".into()))?;
    let plan: Vec<String> = stages.iter().map(|s| format!("{}%", s.percent)).collect();
    record(
        &mut tx,
        Actor::from(principal),
        &publisher_id,
        "rollout.scheduled",
        &rollout,
        &format!(
            "{plugin_id} {version} will roll out in stages: {}.",
            plan.join(" → ")
        ),
        json!({"stages": stages}),
    )
    .await?;
    let shown = view(&mut tx, &rollout).await?;
    tx.commit().await?;
    Ok(shown)
}

/// The rollout of `plugin_id` `version` (members of its publisher, operators).
///
/// # Errors
///
/// 404 for anyone else, or when the version has no rollout.
pub async fn get(
    db: &Db,
    principal: &Principal,
    plugin_id: &str,
    version: &str,
) -> Result<RolloutView> {
    steward_of(db, principal, plugin_id).await?;
    let version = version_key(version)?;
    let mut tx = db.begin_read().await?;
    let rollout = load(&mut tx, plugin_id, &version)
        .await?
        .ok_or_else(|| unknown_rollout(plugin_id, &version))?;
    view(&mut tx, &rollout).await
}

/// Most rollouts a list shows.
pub const LIST_LIMIT: i64 = 50;

/// The rollouts of publisher `publisher_id`'s plugins, most recently changed first (at most
/// [`LIST_LIMIT`]); for its members' console page. The caller has checked membership.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn of_publisher(db: &Db, publisher_id: &str) -> Result<Vec<RolloutView>> {
    let columns = COLUMNS
        .split(", ")
        .map(|column| format!("r.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {columns} FROM rollouts r JOIN plugins p ON p.id = r.plugin_id \
         WHERE p.publisher_id = $1 ORDER BY r.updated_at DESC LIMIT $2"
    );
    listed(
        db,
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(publisher_id)
            .bind(LIST_LIMIT),
    )
    .await
}

/// The rollouts under way (active or paused) across the platform, most recently changed
/// first (at most [`LIST_LIMIT`]); for operators' console page. The caller is an operator.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn under_way(db: &Db) -> Result<Vec<RolloutView>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM rollouts WHERE state IN ('active', 'paused') \
         ORDER BY updated_at DESC LIMIT $1"
    );
    listed(db, sqlx::query(sqlx::AssertSqlSafe(sql)).bind(LIST_LIMIT)).await
}

async fn listed(
    db: &Db,
    query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
) -> Result<Vec<RolloutView>> {
    let mut tx = db.begin_read().await?;
    let rows = query.fetch_all(&mut *tx).await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in &rows {
        views.push(view(&mut tx, &from_row(row)?).await?);
    }
    Ok(views)
}

/// Which installs an approval's automatic updates reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Every install (no rollout).
    Everyone,
    /// The tenants in the first `percent` percent; what is updated is recorded for the kill
    /// switch.
    Stage(u8),
    /// None (a halted rollout).
    Nobody,
}

impl Gate {
    /// Whether tenant `tenant_id`'s install of `plugin_id` is reached.
    pub(crate) fn reaches(self, tenant_id: &str, plugin_id: &str) -> bool {
        match self {
            Gate::Everyone => true,
            Gate::Stage(percent) => stages::includes(percent, tenant_id, plugin_id),
            Gate::Nobody => false,
        }
    }
}

/// Starts the rollout of `plugin_id` `version` as it is approved at `now` (`held`: the
/// approval was a full review after a change of control), and says which installs its
/// automatic updates reach.
///
/// # Errors
///
/// [`Error::Database`].
pub(crate) async fn begin(
    db: &Db,
    plugin_id: &str,
    version: &str,
    held: bool,
    now: i64,
) -> Result<Gate> {
    let mut tx = db.begin().await?;
    let Some(mut rollout) = load(&mut tx, plugin_id, version).await? else {
        return Ok(Gate::Everyone);
    };
    match rollout.state {
        State::Pending => {}
        State::Halted => return Ok(Gate::Nobody),
        State::Active | State::Paused | State::Complete => {
            return Ok(Gate::Stage(rollout.percent()));
        }
    }
    let state = if rollout.stages.len() == 1 {
        State::Complete
    } else {
        State::Active
    };
    sqlx::query(
        "UPDATE rollouts SET state = $1, stage = 0, held = $2, stage_started_at = $3, \
         updated_at = $3 WHERE plugin_id = $4 AND version = $5 AND state = 'pending'",
    )
    .bind(state.as_str())
    .bind(i64::from(held))
    .bind(now)
    .bind(plugin_id)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    rollout.state = state;
    rollout.held = held;
    rollout.stage_started_at = Some(now);
    let plugin = plugin_row(&mut tx, plugin_id).await?;
    record(
        &mut tx,
        Actor::System,
        &plugin.publisher_id,
        "rollout.started",
        &rollout,
        &format!(
            "{plugin_id} {version} is approved and rolling out to {}% of tenants.",
            rollout.percent()
        ),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        plugin = plugin_id,
        version,
        percent = rollout.percent(),
        "rollout started"
    );
    Ok(Gate::Stage(rollout.percent()))
}

/// Records that the rollout of `plugin_id` `version` updated install `install_id`, in the
/// update's transaction.
pub(crate) async fn record_update(
    tx: &mut Tx,
    plugin_id: &str,
    version: &str,
    install_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO rollout_updates (plugin_id, version, install_id, updated_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(plugin_id)
    .bind(version)
    .bind(install_id)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Starts the next stage of every active rollout whose soak has passed at `now`, and applies
/// it (the new stage's installs follow the version, each in its own transaction). Returns how
/// many stages started.
///
/// # Errors
///
/// [`Error::Database`] reading the rollouts; a failing stage is logged and tried again at the
/// next tick.
pub async fn tick(state: &AppState, now: i64) -> Result<usize> {
    let sql = format!("SELECT {COLUMNS} FROM rollouts WHERE state = 'active'");
    let active: Vec<Rollout> = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(state.db().pool())
        .await?
        .iter()
        .map(from_row)
        .collect::<Result<_>>()?;
    let mut started = 0;
    for rollout in active {
        if rollout.next_stage_at().is_none_or(|due| due > now) {
            continue;
        }
        match advance(state.db(), &rollout, now).await {
            Ok(Some(next)) => {
                started += 1;
                let gate = Gate::Stage(next.percent());
                super::updates::apply(state, &next.plugin_id, &next.version, next.held, gate).await;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(plugin = %rollout.plugin_id, version = %rollout.version, %error, "cannot start a rollout's next stage; will retry");
            }
        }
    }
    Ok(started)
}

/// How often the server starts the stages that are due.
pub const TICK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Calls [`tick`] every [`TICK_EVERY`] with the time, in a control-plane process with a host
/// (where approvals update installs); `None` elsewhere. Abort the handle to stop it.
pub fn spawn_ticker(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    state.runtime().ok()?;
    if !state.settings().role.serves_control_plane() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK_EVERY);
        loop {
            interval.tick().await;
            match tick(&state, now_ms()).await {
                Ok(0) => {}
                Ok(started) => tracing::info!(started, "rollout stages started"),
                Err(error) => tracing::warn!(%error, "checking rollouts failed; will retry"),
            }
        }
    }))
}

/// Moves `rollout` to its next stage at `now` if it still stands where it was read.
async fn advance(db: &Db, rollout: &Rollout, now: i64) -> Result<Option<Rollout>> {
    let mut next = rollout.clone();
    next.stage += 1;
    next.stage_started_at = Some(now);
    if next.stage + 1 >= next.stages.len() {
        next.state = State::Complete;
    }
    let mut tx = db.begin().await?;
    let moved = sqlx::query(
        "UPDATE rollouts SET stage = $1, state = $2, stage_started_at = $3, updated_at = $3 \
         WHERE plugin_id = $4 AND version = $5 AND stage = $6 AND state = 'active'",
    )
    .bind(i64::try_from(next.stage).unwrap_or(i64::MAX))
    .bind(next.state.as_str())
    .bind(now)
    .bind(&rollout.plugin_id)
    .bind(&rollout.version)
    .bind(i64::try_from(rollout.stage).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        return Ok(None);
    }
    let plugin = plugin_row(&mut tx, &rollout.plugin_id).await?;
    record(
        &mut tx,
        Actor::System,
        &plugin.publisher_id,
        if next.state == State::Complete {
            "rollout.completed"
        } else {
            "rollout.advanced"
        },
        &next,
        &format!(
            "{} {} now rolls out to {}% of tenants (stage {} of {}).",
            next.plugin_id,
            next.version,
            next.percent(),
            next.stage + 1,
            next.stages.len()
        ),
        json!({"stage": next.stage + 1}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(plugin = %next.plugin_id, version = %next.version, percent = next.percent(), "rollout stage started");
    Ok(Some(next))
}

/// Sets the state of the rollout of `plugin_id` `version` from one of `from` to `to`, with
/// `reason`, audited as `action` by `actor`. Returns the rollout as it is after.
#[allow(clippy::too_many_arguments, reason = "one transition, spelled out")]
async fn transition(
    db: &Db,
    actor: Actor,
    plugin_id: &str,
    version: &str,
    from: &[State],
    to: State,
    reason: Option<&str>,
    action: &'static str,
) -> Result<RolloutView> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    lock_plugin(&mut tx, plugin_id).await?;
    let mut rollout = load(&mut tx, plugin_id, version)
        .await?
        .ok_or_else(|| unknown_rollout(plugin_id, version))?;
    if !from.contains(&rollout.state) {
        return Err(Error::conflict(
            "rollout_state",
            format!(
                "the rollout of {plugin_id} {version} is {}; this needs it {}",
                rollout.state.as_str(),
                from.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ));
    }
    // Resuming restarts the stage's soak.
    let started = if to == State::Active {
        Some(now)
    } else {
        rollout.stage_started_at
    };
    sqlx::query(
        "UPDATE rollouts SET state = $1, reason = $2, stage_started_at = $3, updated_at = $4 \
         WHERE plugin_id = $5 AND version = $6",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(started)
    .bind(now)
    .bind(plugin_id)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    rollout.state = to;
    rollout.reason = reason.map(str::to_owned);
    rollout.stage_started_at = started;
    let plugin = plugin_row(&mut tx, plugin_id).await?;
    let message = match (to, reason) {
        (State::Active, _) => format!("The rollout of {plugin_id} {version} resumed."),
        (_, Some(reason)) => format!(
            "The rollout of {plugin_id} {version} is {}: {reason}",
            to.as_str()
        ),
        (_, None) => format!("The rollout of {plugin_id} {version} is {}.", to.as_str()),
    };
    record(
        &mut tx,
        actor,
        &plugin.publisher_id,
        action,
        &rollout,
        &message,
        json!({"reason": reason}),
    )
    .await?;
    let shown = view(&mut tx, &rollout).await?;
    tx.commit().await?;
    tracing::info!(
        plugin = plugin_id,
        version,
        state = to.as_str(),
        "rollout state changed"
    );
    Ok(shown)
}

/// Pauses an active rollout (a steward's call): no next stage starts until it is resumed.
///
/// # Errors
///
/// 404 for a plugin the caller may not manage or a version without a rollout; 400
/// `reason_required`; 409 `rollout_state` unless it is active.
pub async fn pause(
    db: &Db,
    principal: &Principal,
    plugin_id: &str,
    version: &str,
    reason: Option<&str>,
) -> Result<RolloutView> {
    steward_of(db, principal, plugin_id).await?;
    let reason = super::check_text("reason", reason)?;
    let version = version_key(version)?;
    transition(
        db,
        Actor::from(principal),
        plugin_id,
        &version,
        &[State::Active],
        State::Paused,
        Some(&reason),
        "rollout.paused",
    )
    .await
}

/// Resumes a paused rollout (a steward's call); the current stage soaks again from now.
///
/// # Errors
///
/// 404 as [`pause`]; 409 `rollout_state` unless it is paused.
pub async fn resume(
    db: &Db,
    principal: &Principal,
    plugin_id: &str,
    version: &str,
) -> Result<RolloutView> {
    steward_of(db, principal, plugin_id).await?;
    let version = version_key(version)?;
    transition(
        db,
        Actor::from(principal),
        plugin_id,
        &version,
        &[State::Paused],
        State::Active,
        None,
        "rollout.resumed",
    )
    .await
}

/// Pauses the active rollout of `plugin_id` `version` because the host's breaker rolled an
/// updated install back (`why`). Nothing happens when there is no such rollout.
///
/// # Errors
///
/// [`Error::Database`].
pub(crate) async fn pause_after_rollback(
    db: &Db,
    plugin_id: &str,
    version: &str,
    why: &str,
) -> Result<()> {
    let paused = transition(
        db,
        Actor::System,
        plugin_id,
        version,
        &[State::Active],
        State::Paused,
        Some(why),
        "rollout.paused",
    )
    .await;
    match paused {
        Ok(_) => {
            tracing::warn!(plugin = plugin_id, version, why, "rollout paused by itself");
            Ok(())
        }
        Err(Error::NotFound(_) | Error::Conflict { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

/// What the kill switch did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Halted {
    /// The rollout as it is now.
    pub rollout: RolloutView,
    /// Per install rolled back: `{tenant, from, to, status, reason?}`.
    #[schema(value_type = Vec<Object>)]
    pub installs: Vec<Value>,
}

/// The kill switch (a steward's call): stops the rollout of `plugin_id` `version` for good and
/// rolls every install it updated, and that is still on the version, back to the version it
/// had (with the grant and configuration it had there; an install whose earlier version was
/// yanked since is disabled instead). One transaction after the hooks ran. Audited; tenants
/// and publisher are notified.
///
/// # Errors
///
/// 404 for a plugin the caller may not manage or a version without a rollout; 400
/// `reason_required`; 409 `rollout_state` when it is halted already.
pub async fn halt(
    state: &AppState,
    principal: &Principal,
    plugin_id: &str,
    version: &str,
    reason: Option<&str>,
) -> Result<Halted> {
    let (steward, _) = steward_of(state.db(), principal, plugin_id).await?;
    let reason = super::check_text("reason", reason)?;
    let version = version_key(version)?;
    let actor = Actor::from(principal);
    let mut loader = Loader::default();
    let mut hooks = Hooks::default();
    let mut attempt = 1;
    loop {
        let once = HaltOnce {
            state,
            actor: &actor,
            steward,
            plugin_id,
            version: &version,
            reason: &reason,
        };
        match once.run(&mut loader, &mut hooks).await {
            Err(error) if moves::retry(&error, attempt) => attempt += 1,
            done => return done,
        }
    }
}

/// One attempt at the kill switch: hooks first, then one transaction.
struct HaltOnce<'a> {
    state: &'a AppState,
    actor: &'a Actor,
    steward: Steward,
    plugin_id: &'a str,
    version: &'a str,
    reason: &'a str,
}

impl HaltOnce<'_> {
    async fn run(&self, loader: &mut Loader, hooks: &mut Hooks) -> Result<Halted> {
        let (state, plugin_id, version, reason) =
            (self.state, self.plugin_id, self.version, self.reason);
        let runtime = state.runtime().ok();
        let first = {
            let mut tx = state.db().begin_read().await?;
            self.choices(&mut tx).await?
        };
        let mut planned = Vec::with_capacity(first.len());
        for choice in first {
            planned.push(moves::plan_forced(state, loader, choice).await);
        }
        if let Some(runtime) = runtime {
            hooks.run(&runtime.host, &planned, true).await?;
        }

        let now = now_ms();
        let mut tx = state.db().begin().await?;
        lock_plugin(&mut tx, plugin_id).await?;
        let mut rollout = load(&mut tx, plugin_id, version)
            .await?
            .ok_or_else(|| unknown_rollout(plugin_id, version))?;
        if rollout.state == State::Halted {
            return Err(Error::conflict(
                "rollout_state",
                format!("the rollout of {plugin_id} {version} is halted already"),
            ));
        }
        let choices = self.choices(&mut tx).await?;
        moves::check_unchanged(&planned, &choices)?;
        let moves = match runtime {
            Some(runtime) => moves::stage(&mut tx, &runtime.host, planned, hooks).await?,
            None if planned.is_empty() => moves::Moves::none(),
            None => return Err(Error::Internal("no host to roll installs back in".into())),
        };
        sqlx::query(
            "UPDATE rollouts SET state = 'halted', reason = $1, updated_at = $2 \
             WHERE plugin_id = $3 AND version = $4",
        )
        .bind(reason)
        .bind(now)
        .bind(plugin_id)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        rollout.state = State::Halted;
        rollout.reason = Some(reason.to_owned());
        let by = match self.steward {
            Steward::Operator => "operator",
            Steward::Publisher => "publisher",
        };
        let mut summaries = Vec::new();
        for step in moves.steps() {
            let mut details = step.summary();
            details["by"] = Value::String(format!("{by} (rollout halted)"));
            details["reason"] = Value::String(reason.to_owned());
            installs::audit(
                &mut tx,
                self.actor,
                step.audit_action(),
                &step.install.tenant_id,
                plugin_id,
                details.clone(),
            )
            .await?;
            let message = match &step.outcome {
                Outcome::Moved => format!(
                    "The rollout of {plugin_id} {version} was halted; your install went back from {} to {}: {reason}",
                    step.from, step.install.version
                ),
                Outcome::Disabled(why) => format!(
                    "The rollout of {plugin_id} {version} was halted; your install was disabled because {why}. Reason: {reason}"
                ),
            };
            details["plugin"] = Value::String(plugin_id.to_owned());
            notify(
                &mut tx,
                "tenant",
                &step.install.tenant_id,
                "install_rolled_back",
                &message,
                details,
            )
            .await?;
            let mut summary = step.summary();
            summary["tenant"] = Value::String(
                super::rollback::tenant_slug(&mut tx, &step.install.tenant_id).await?,
            );
            summaries.push(summary);
        }
        let plugin = plugin_row(&mut tx, plugin_id).await?;
        record(
            &mut tx,
            self.actor.clone(),
            &plugin.publisher_id,
            "rollout.halted",
            &rollout,
            &format!(
                "The rollout of {plugin_id} {version} was halted and {} install(s) rolled back: {reason}",
                summaries.len()
            ),
            json!({"reason": reason, "installs": summaries}),
        )
        .await?;
        let shown = view(&mut tx, &rollout).await?;
        moves.commit(tx).await?;
        tracing::warn!(
            plugin = plugin_id,
            version,
            installs = summaries.len(),
            "rollout halted"
        );
        Ok(Halted {
            rollout: shown,
            installs: summaries,
        })
    }

    /// For every install the rollout updated that is still on its version: the return to the
    /// version it had, or its disabling when that version is gone or yanked.
    async fn choices(&self, tx: &mut Tx) -> Result<Vec<Choice>> {
        let (plugin_id, version) = (self.plugin_id, self.version);
        let updated: std::collections::HashSet<String> = sqlx::query_scalar(
            "SELECT install_id FROM rollout_updates WHERE plugin_id = $1 AND version = $2",
        )
        .bind(plugin_id)
        .bind(version)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
        if updated.is_empty() {
            return Ok(Vec::new());
        }
        let rows = version_rows(tx, plugin_id).await?;
        let mut choices = Vec::new();
        for install in moves::installs_of(tx, plugin_id, Some(version)).await? {
            if !updated.contains(&install.id) {
                continue;
            }
            let back = install
                .previous_version
                .as_deref()
                .and_then(|previous| find_version(&rows, plugin_id, previous).ok())
                .filter(|row| installable::may_move_to(*row));
            choices.push(match back {
                Some(to) => Choice::move_to(&install, to, Previous::Clear),
                None => Choice::disable(
                    &install,
                    format!("the version it had before {version} is no longer installable"),
                ),
            });
        }
        Ok(choices)
    }
}
