//! Blocks: the kill switch. A blocked plugin is disabled in the host for every tenant, hidden
//! from the catalog (search, detail, versions, downloads) and so refused for installs (404, as
//! for an unknown plugin). Installs keep their own enabled/disabled choice in storage; the
//! host runs them again when the plugin is unblocked (by an operator, or an upheld appeal).

use serde_json::json;

use super::{check_reason, lock_plugin, plugin_row};
use crate::audit::Actor;
use crate::clock::{now_ms, rfc3339};
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::installs::Install;
use crate::notifications::notify;
use crate::state::{AppState, Runtime};

/// A block as it stands.
#[derive(Debug, Clone)]
pub struct Blocked {
    /// When it was blocked (RFC 3339), or null when it is not blocked.
    pub blocked_at: Option<String>,
    /// How many installs were switched off (or on).
    pub installs: usize,
}

/// Blocks `plugin_id` everywhere (an operator's call).
///
/// # Errors
///
/// 400 `invalid_reason_code` / `reason_required`; 404 for an unknown plugin; 409
/// `already_blocked`.
pub async fn block(
    state: &AppState,
    actor: &Actor,
    plugin_id: &str,
    reason_code: Option<&str>,
    reason: Option<&str>,
) -> Result<Blocked> {
    let (reason_code, reason) = check_reason(reason_code, reason)?;
    let runtime = state.runtime().ok();
    let mut tx = state.db().begin().await?;
    if !lock_plugin(&mut tx, plugin_id).await? {
        return Err(Error::not_found(format!("plugin {plugin_id:?}")));
    }
    let plugin = plugin_row(&mut tx, plugin_id).await?;
    if plugin.blocked_at.is_some() {
        return Err(Error::conflict(
            "already_blocked",
            format!("{plugin_id} is blocked already"),
        ));
    }
    let now = now_ms();
    let by = match actor {
        Actor::User(id) => Some(id.as_str()),
        _ => None,
    };
    sqlx::query(
        "UPDATE plugins SET blocked_at = $1, block_reason_code = $2, block_reason = $3, \
         blocked_by = $4 WHERE id = $5",
    )
    .bind(now)
    .bind(&reason_code)
    .bind(&reason)
    .bind(by)
    .bind(plugin_id)
    .execute(&mut *tx)
    .await?;
    let installs = super::moves::installs_of(&mut tx, plugin_id, None).await?;
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor: actor.clone(),
            action: "plugin.blocked",
            tenant_id: None,
            subject: format!("plugin:{plugin_id}"),
            details: json!({"reason_code": reason_code, "reason": reason, "installs": installs.len()}),
        },
    )
    .await?;
    let payload = json!({"plugin": plugin_id, "reason_code": reason_code, "reason": reason});
    notify(
        &mut tx,
        "publisher",
        &plugin.publisher_id,
        "plugin_blocked",
        &format!("{plugin_id} was blocked ({reason_code}): {reason}. You may appeal once."),
        payload.clone(),
    )
    .await?;
    for install in &installs {
        notify(
            &mut tx,
            "tenant",
            &install.tenant_id,
            "plugin_blocked",
            &format!(
                "{plugin_id} was blocked by the operator ({reason_code}): {reason}. It no longer runs for you."
            ),
            payload.clone(),
        )
        .await?;
    }
    if let Some(runtime) = runtime {
        switch(runtime, &installs, false);
    }
    if let Err(e) = tx.commit().await {
        if let Some(runtime) = runtime {
            switch(runtime, &installs, true);
        }
        return Err(e.into());
    }
    tracing::warn!(plugin = plugin_id, reason_code, "plugin blocked");
    crate::statements::after_change(state).await;
    Ok(Blocked {
        blocked_at: Some(rfc3339(now)),
        installs: installs.len(),
    })
}

/// Turns the host side of `installs` off, or back to their stored choice.
fn switch(runtime: &Runtime, installs: &[Install], on: bool) {
    for install in installs {
        match runtime.host.set_enabled(
            &install.tenant_id,
            &install.plugin_id,
            on && install.enabled,
        ) {
            Ok(()) | Err(plinth_host::Error::NotInstalled { .. }) => {}
            // Until the next state statement (see `after_unblock`), the host's newest one
            // still revokes a plugin that was just unblocked.
            Err(plinth_host::Error::Trust(plinth_host::trust::TrustError::Revoked { .. })) => {
                tracing::debug!(tenant = %install.tenant_id, plugin = %install.plugin_id, "waiting for the next state statement to switch an install on");
            }
            Err(error) => {
                tracing::error!(tenant = %install.tenant_id, plugin = %install.plugin_id, %error, "cannot switch an install");
            }
        }
    }
}

/// Unblocks `plugin_id` (an operator's call).
///
/// # Errors
///
/// 400 for a missing reason; 404 for an unknown plugin; 409 `not_blocked`.
pub async fn unblock(
    state: &AppState,
    actor: &Actor,
    plugin_id: &str,
    reason: Option<&str>,
) -> Result<Blocked> {
    let reason = super::check_text("reason", reason)?;
    let runtime = state.runtime().ok();
    let mut tx = state.db().begin().await?;
    if !lock_plugin(&mut tx, plugin_id).await? {
        return Err(Error::not_found(format!("plugin {plugin_id:?}")));
    }
    let plugin = plugin_row(&mut tx, plugin_id).await?;
    let Some(blocked_at) = plugin.blocked_at else {
        return Err(Error::conflict(
            "not_blocked",
            format!("{plugin_id} is not blocked"),
        ));
    };
    let installs = unblock_in(&mut tx, actor, plugin_id, blocked_at, &reason)
        .await?
        .unwrap_or_default();
    if let Some(runtime) = runtime {
        switch(runtime, &installs, true);
    }
    if let Err(e) = tx.commit().await {
        if let Some(runtime) = runtime {
            switch(runtime, &installs, false);
        }
        return Err(e.into());
    }
    tracing::info!(plugin = plugin_id, "plugin unblocked");
    after_unblock(state, &installs).await;
    Ok(Blocked {
        blocked_at: None,
        installs: installs.len(),
    })
}

/// Lifts the block of `plugin_id` made at `blocked_at`, in `tx`: audits and notifies, and
/// returns the installs to switch back on in the host (`None` if that block no longer
/// stands).
pub(crate) async fn unblock_in(
    tx: &mut Tx,
    actor: &Actor,
    plugin_id: &str,
    blocked_at: i64,
    reason: &str,
) -> Result<Option<Vec<Install>>> {
    let updated = sqlx::query(
        "UPDATE plugins SET blocked_at = NULL, block_reason_code = NULL, block_reason = NULL, \
         blocked_by = NULL WHERE id = $1 AND blocked_at = $2",
    )
    .bind(plugin_id)
    .bind(blocked_at)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(None);
    }
    let plugin = plugin_row(tx, plugin_id).await?;
    let installs = super::moves::installs_of(tx, plugin_id, None).await?;
    crate::audit::record(
        tx,
        crate::audit::Entry {
            actor: actor.clone(),
            action: "plugin.unblocked",
            tenant_id: None,
            subject: format!("plugin:{plugin_id}"),
            details: json!({"reason": reason, "installs": installs.len()}),
        },
    )
    .await?;
    let payload = json!({"plugin": plugin_id, "reason": reason});
    notify(
        tx,
        "publisher",
        &plugin.publisher_id,
        "plugin_unblocked",
        &format!("{plugin_id} was unblocked: {reason}"),
        payload.clone(),
    )
    .await?;
    for install in &installs {
        notify(
            tx,
            "tenant",
            &install.tenant_id,
            "plugin_unblocked",
            &format!("{plugin_id} was unblocked and runs again as you set it: {reason}"),
            payload.clone(),
        )
        .await?;
    }
    Ok(Some(installs))
}

/// After an unblock committed: issues a state statement that no longer revokes the plugin,
/// hands it to the host, then switches `installs` back on as stored.
pub(crate) async fn after_unblock(state: &AppState, installs: &[Install]) {
    crate::statements::after_change(state).await;
    if let Ok(runtime) = state.runtime() {
        switch(runtime, installs, true);
    }
}

/// Switches the host side of `installs` back on (as stored) after an unblock commits, or off
/// again when it does not.
pub(crate) fn switch_on(runtime: &Runtime, installs: &[Install], on: bool) {
    switch(runtime, installs, on);
}
