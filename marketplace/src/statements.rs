//! Signed state statements: the freeze and rollback defence of hosts.
//!
//! The control plane [`issue`]s a statement (signed by the marketplace key) at a fixed cadence
//! ([`ISSUE_EVERY`], valid for [`VALID_FOR`]) and after every change of what must not run (a
//! security yank, a block, an unblock: [`after_change`]). A statement revokes every
//! security-yanked version and every blocked plugin, and carries the digest of those
//! revocations and of the install set. `GET /v1/state` serves the newest to operators (it
//! names private plugins).
//!
//! Every process with a host hands the newest stored statement to it ([`deliver`]): at start,
//! after issuing one, on PostgreSQL when another process issued one (a change notification),
//! and every [`FOLLOW_EVERY`] in host-only processes. The host verifies it
//! and refuses one older than the newest it has seen ([`plinth_host::statements`]); storage is
//! not trusted for that, which is the point. A refusal is logged as an error and counted.

use std::time::Duration;

use plinth_host::statements::{Observed, StatementRefused};
use plinth_package::signing::statement::{Revoked, SignedStatement, StateStatement};
use plinth_package::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::task::JoinHandle;

use crate::clock::now_ms;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::state::AppState;

/// How often the control plane issues a statement even when nothing changed.
pub const ISSUE_EVERY: Duration = Duration::from_secs(10 * 60);

/// How long a statement is valid: a host that has nothing newer by then raises the alarm.
/// Several cadences, so one missed issue does not raise it.
pub const VALID_FOR: Duration = Duration::from_secs(60 * 60);

/// How often a host-only process reads the newest statement from storage.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(30);

/// How many statements are kept: the newest, and enough before it (a week at the cadence)
/// for a host that was away to follow a key rotation statement by statement.
const KEPT: i64 = 1_000;

/// What must not run now: security-yanked versions and blocked plugins.
async fn revocations(db: &Db) -> Result<Vec<Revoked>> {
    let mut revoked = Vec::new();
    for row in sqlx::query(
        "SELECT plugin_id, version FROM versions WHERE yanked_at IS NOT NULL AND yank_security <> 0",
    )
    .fetch_all(db.pool())
    .await?
    {
        revoked.push(Revoked {
            plugin: row.try_get(0)?,
            version: Some(row.try_get(1)?),
        });
    }
    for row in sqlx::query("SELECT id FROM plugins WHERE blocked_at IS NOT NULL")
        .fetch_all(db.pool())
        .await?
    {
        revoked.push(Revoked {
            plugin: row.try_get(0)?,
            version: None,
        });
    }
    Ok(revoked)
}

/// `sha256:<hex>` of the install set: one line `tenant\tplugin\tversion` per install of a live
/// tenant, sorted.
async fn installs_digest(db: &Db) -> Result<String> {
    let rows = sqlx::query(
        "SELECT i.tenant_id, i.plugin_id, i.version FROM installs i \
         JOIN tenants t ON t.id = i.tenant_id WHERE t.deleted_at IS NULL \
         ORDER BY i.tenant_id, i.plugin_id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut hash = Sha256::new();
    for row in rows {
        let (tenant, plugin, version): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        hash.update(format!("{tenant}\t{plugin}\t{version}\n"));
    }
    Ok(format!("sha256:{}", hex::encode(hash.finalize())))
}

/// The marketplace keys a statement made at `now_ms` names: those a key rotation recorded that
/// are neither retired nor revoked, or (before any rotation) `signer`'s alone.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] for a stored key that does not parse.
pub async fn keys_at(db: &Db, signer: &PublicKey, now_ms: i64) -> Result<Vec<PublicKey>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT public_key FROM marketplace_keys \
         WHERE revoked = 0 AND (retire_at IS NULL OR retire_at > $1) ORDER BY added_at DESC",
    )
    .bind(now_ms)
    .fetch_all(db.pool())
    .await?;
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM marketplace_keys")
        .fetch_one(db.pool())
        .await?;
    if recorded == 0 {
        return Ok(vec![*signer]);
    }
    let keys = rows
        .iter()
        .map(|text| {
            PublicKey::parse(text)
                .map_err(|e| Error::Internal(format!("stored marketplace key {text:?}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(keys)
}

/// Issues the next statement at `now_ms`, signed by the marketplace key, and stores it.
/// Concurrent issuers (several control-plane processes) each get their own sequence.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn issue(state: &AppState, now_ms: i64) -> Result<SignedStatement> {
    let signed = issue_as(state.db(), state.signing_key(), now_ms).await?;
    if !signed.statement.keys.contains(&state.public_key()) {
        tracing::error!(key = %state.public_key().fingerprint(), "this server signs with a retired or revoked marketplace key: hosts refuse what it signs; restart it with the current key file");
    }
    Ok(signed)
}

/// [`issue`], signed by `signer` (a key rotation signs with the old key: see
/// [`crate::key_rotation`]).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn issue_as(db: &Db, signer: &SecretKey, now_ms: i64) -> Result<SignedStatement> {
    let keys = keys_at(db, &signer.public_key(), now_ms).await?;
    let revoked = revocations(db).await?;
    let installs = installs_digest(db).await?;
    let valid_for = i64::try_from(VALID_FOR.as_secs()).unwrap_or(i64::MAX);
    for _ in 0..5 {
        let mut tx = db.begin().await?;
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(sequence) FROM state_statements")
            .fetch_one(&mut *tx)
            .await?;
        let sequence = last.unwrap_or(0).saturating_add(1);
        let signed = StateStatement::new(
            u64::try_from(sequence).unwrap_or(0),
            now_ms / 1000,
            valid_for,
            revoked.clone(),
            installs.clone(),
            keys.clone(),
        )
        .sign(signer);
        let body = serde_json::to_string(&signed)
            .map_err(|e| Error::Internal(format!("state statement: {e}")))?;
        let inserted = sqlx::query(
            "INSERT INTO state_statements (sequence, issued_at, expires_at, body) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(sequence)
        .bind(signed.statement.issued_at)
        .bind(signed.statement.expires_at)
        .bind(&body)
        .execute(&mut *tx)
        .await
        .map_err(Error::from);
        match inserted {
            Err(e) if e.is_unique_violation() => continue,
            other => {
                other?;
            }
        }
        sqlx::query("DELETE FROM state_statements WHERE sequence <= $1")
            .bind(sequence - KEPT)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            sequence,
            revoked = signed.statement.revoked.len(),
            "state statement issued"
        );
        return Ok(signed);
    }
    Err(Error::Internal(
        "could not take a statement sequence after 5 tries".into(),
    ))
}

/// A stored statement's body; one that does not read is the server's fault.
fn parse(body: &str) -> Result<SignedStatement> {
    serde_json::from_str(body).map_err(|e| Error::Internal(format!("stored state statement: {e}")))
}

/// The newest stored statement, as stored (a host verifies it; storage is not trusted).
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] for a stored statement that does not read.
pub async fn latest(db: &Db) -> Result<Option<SignedStatement>> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM state_statements ORDER BY sequence DESC LIMIT 1")
            .fetch_optional(db.pool())
            .await?;
    body.as_deref().map(parse).transpose()
}

/// Hands `signed` to this process's host, if it has one: logs (and counts) a refusal, which
/// means storage served an older or forged state.
pub fn deliver(
    state: &AppState,
    signed: &SignedStatement,
) -> Option<Result<Observed, StatementRefused>> {
    let runtime = state.runtime().ok()?;
    let observed = runtime.host.observe_statement(signed);
    if let Err(refused) = &observed {
        state.metrics().count_refused_statement();
        tracing::error!(sequence = signed.statement.sequence, %refused, "the host refused a state statement from storage");
    }
    Some(observed)
}

/// Issues a statement now and hands it to this process's host: after a change of what must
/// not run. Never fails the change: a failure is logged, and the next cadence issues one.
pub async fn after_change(state: &AppState) {
    match issue(state, now_ms()).await {
        Ok(signed) => {
            deliver(state, &signed);
        }
        Err(error) => {
            tracing::error!(%error, "cannot issue a state statement after a change; the next cadence will");
        }
    }
}

/// Reads the newest stored statement and hands it to this process's host (on a change
/// notification, at catch-up, and every [`FOLLOW_EVERY`] in host-only processes).
///
/// A host that was away (or starts afresh) takes the statements it missed in order, so that it
/// follows a key rotation (each signed by a key the one before named), at most [`KEPT`]; only
/// the newest one's refusal is an alarm (an earlier one may be signed by a key this host has
/// not reached yet). With nothing newer than what the host holds, the newest stored one is
/// handed over anyway: storage serving an older state than the host has seen is the alarm.
pub(crate) async fn follow(state: &AppState) {
    let Ok(runtime) = state.runtime() else {
        return;
    };
    let seen = runtime.host.newest_statement().map_or(0, |s| s.sequence);
    let newer = match since(state.db(), seen).await {
        Ok(newer) => newer,
        Err(error) => {
            tracing::warn!(%error, "cannot read the newest state statements");
            return;
        }
    };
    let newest = match newer.split_last() {
        Some((newest, missed)) => {
            for signed in missed {
                if let Err(refused) = runtime.host.observe_statement(signed) {
                    tracing::debug!(sequence = signed.statement.sequence, %refused, "an earlier state statement was not taken");
                }
            }
            Some(newest.clone())
        }
        None => match latest(state.db()).await {
            Ok(newest) => newest,
            Err(error) => {
                tracing::warn!(%error, "cannot read the newest state statement");
                return;
            }
        },
    };
    let before = runtime.host.newest_statement();
    if let Some(newest) = newest {
        deliver(state, &newest);
    }
    lifted(state, before.as_ref()).await;
}

/// Brings back in line with storage the plugins a statement the host held revoked and its
/// newest one no longer does (an unblock, a reversed yank made by another process): the
/// host refused to load them until now.
async fn lifted(state: &AppState, before: Option<&StateStatement>) {
    let (Ok(runtime), Some(before)) = (state.runtime(), before) else {
        return;
    };
    let Some(now) = runtime.host.newest_statement() else {
        return;
    };
    if now.sequence == before.sequence {
        return;
    }
    let mut plugins: Vec<&str> = before
        .revoked
        .iter()
        .filter(|item| !now.revoked.contains(item))
        .map(|item| item.plugin.as_str())
        .collect();
    plugins.dedup();
    for plugin in plugins {
        if let Err(error) = crate::installs::sync::sync(state, None, Some(plugin)).await {
            tracing::warn!(plugin, %error, "cannot bring back a plugin a state statement no longer revokes");
        }
    }
}

/// The stored statements after `sequence`, oldest first, at most [`KEPT`].
async fn since(db: &Db, sequence: u64) -> Result<Vec<SignedStatement>> {
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM state_statements WHERE sequence > $1 ORDER BY sequence LIMIT $2",
    )
    .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
    .bind(KEPT)
    .fetch_all(db.pool())
    .await?;
    bodies.iter().map(|body| parse(body)).collect()
}

/// Starts the statement loop: a control-plane process issues one now and every
/// [`ISSUE_EVERY`] (and hands it to its host); a host-only process follows the stored ones
/// every [`FOLLOW_EVERY`]. Abort the handle to stop.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    let issues = state.settings().role.serves_control_plane();
    tokio::spawn(async move {
        let every = if issues { ISSUE_EVERY } else { FOLLOW_EVERY };
        let mut interval = tokio::time::interval(every);
        loop {
            interval.tick().await;
            if issues {
                after_change(&state).await;
            } else {
                follow(&state).await;
            }
        }
    })
}

/// `GET /v1/state`.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(newest))
}

/// The newest signed state statement (operators): what no host may run (security-yanked
/// versions, blocked plugins) and the install set's digest, with its sequence and expiry,
/// signed by the marketplace key. Operators only: it names private plugins. Hosts read it
/// from storage and verify it.
#[utoipa::path(get, path = "/v1/state", tag = "operations", security(("bearer" = [])),
    responses((status = 200, description = "The signed statement", body = Object),
        (status = 401, body = crate::error::ApiError), (status = 403, body = crate::error::ApiError),
        (status = 404, body = crate::error::ApiError)))]
async fn newest(
    axum::extract::State(state): axum::extract::State<AppState>,
    principal: crate::auth::Principal,
) -> Result<axum::Json<SignedStatement>> {
    principal.operator()?;
    latest(state.db())
        .await?
        .map(axum::Json)
        .ok_or_else(|| Error::not_found("state statement (none issued yet)".to_owned()))
}
