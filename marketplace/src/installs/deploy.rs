//! Between storage and the host: loading approved versions, the spec an install runs with,
//! and rebuilding the host's installs from storage at start.

use std::sync::Arc;

use plinth_host::{InstallSpec, Limits, LoadedPlugin, Metering, RunLogging, TenantShare};
use plinth_package::{Manifest, Package, PricingModel};

use super::config;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tenants::Plan;

/// The spec an install of `manifest` runs with for a tenant on `plan`: every permission the
/// version asks for (the tenant consented to exactly that set), its configuration, and the
/// plan's limits capped by what the manifest asks for, and the plan's tenant-wide outbound
/// request rate and kv quota (shared by all of the tenant's installs). Fuel is counted when the plan sets a
/// per-call budget or the plugin is priced per invocation. Its runs are recorded with their
/// payload and output when `capture_runs`, and with its secret values to redact.
pub fn spec_for(
    plan: &Plan,
    manifest: &Manifest,
    values: config::Values,
    capture_runs: bool,
) -> InstallSpec {
    let mut limits = Limits::default()
        .with_memory_mb(u64::try_from(plan.memory_mb).unwrap_or(0))
        .with_timeout(std::time::Duration::from_millis(
            u64::try_from(plan.timeout_ms).unwrap_or(0),
        ));
    let per_invocation = matches!(manifest.pricing.model, PricingModel::Per1000Invocations);
    let metering = match plan.fuel_per_call {
        Some(fuel) => {
            limits = limits.with_fuel(u64::try_from(fuel).unwrap_or(0));
            Metering::Fuel
        }
        None if per_invocation => {
            limits = limits.with_fuel(plinth_host::invoke::DEFAULT_FUEL);
            Metering::Fuel
        }
        None => Metering::Epoch,
    };
    limits = limits
        .with_tenant_outbound_per_minute(
            u32::try_from(plan.outbound_requests_per_minute.max(0)).unwrap_or(u32::MAX),
        )
        .with_tenant_kv_bytes(u64::try_from(plan.kv_bytes.max(0)).unwrap_or(0))
        .with_share(share_of(plan));
    let secrets: Vec<String> = values
        .iter()
        .filter(|(key, value)| {
            !value.is_empty() && manifest.config.get(*key).is_some_and(|field| field.secret)
        })
        .map(|(_, value)| value.clone())
        .collect();
    InstallSpec {
        grants: manifest.permissions.clone(),
        config: Arc::new(values),
        limits: limits.capped_by(manifest),
        metering,
        runs: RunLogging {
            capture_bytes: capture_runs.then_some(crate::runs::MAX_CAPTURED_BYTES),
            secrets: Arc::from(secrets),
        },
    }
}

/// How many of a tenant's calls may wait for capacity, per call it may run at once.
const QUEUED_PER_CONCURRENT_CALL: u32 = 4;

/// The tenant's share of a host under `plan`: its concurrent calls, instance slots and memory,
/// and a queue of [`QUEUED_PER_CONCURRENT_CALL`] waiting calls per concurrent one.
pub fn share_of(plan: &Plan) -> TenantShare {
    let positive = |value: i64| u32::try_from(value.max(1)).unwrap_or(u32::MAX);
    let max_calls = positive(plan.max_concurrent_calls);
    TenantShare {
        max_calls,
        max_core_instances: positive(plan.max_instance_slots),
        max_memory_bytes: u64::try_from(plan.memory_share_mb.max(1))
            .unwrap_or(u64::MAX)
            .saturating_mul(1 << 20),
        max_queued: max_calls.saturating_mul(QUEUED_PER_CONCURRENT_CALL),
    }
}

/// The approved package of `plugin_id` `version`, loaded into the host (compiled, or from the
/// compiled cache).
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown version; [`Error::Internal`] if the stored package
/// does not read or the host refuses it.
pub async fn load(
    state: &AppState,
    plugin_id: &str,
    version: &str,
) -> Result<(Package, Arc<LoadedPlugin>)> {
    let runtime = state.runtime()?;
    let file = crate::catalog::package_bytes(
        state.db(),
        plugin_id,
        version,
        &crate::catalog::Visibility::ALL,
    )
    .await?;
    let host = Arc::clone(&runtime.host);
    tokio::task::spawn_blocking(move || {
        let package = Package::from_bytes(&file.bytes)
            .map_err(|e| Error::Internal(format!("stored package {}: {e}", file.file_name)))?;
        let loaded = host.load(&package).map_err(host_error)?;
        Ok((package, loaded))
    })
    .await
    .map_err(|e| Error::Internal(format!("loading a plugin: {e}")))?
}

/// The marketplace's answer to a host error.
pub(crate) fn host_error(error: plinth_host::Error) -> Error {
    match error {
        plinth_host::Error::Lifecycle {
            plugin,
            hook,
            error,
        } => match crate::admission::refusal(&error) {
            // A hook the host had no capacity for did not run: the plugin refused nothing.
            Some(refused) => refused,
            None => Error::conflict(
                "lifecycle_failed",
                format!(
                    "the plugin refused: {}",
                    plinth_host::Error::Lifecycle {
                        plugin,
                        hook,
                        error
                    }
                ),
            ),
        },
        plinth_host::Error::AlreadyInstalled { .. } => {
            Error::conflict("already_installed", error.to_string())
        }
        plinth_host::Error::NotInstalled { .. } => Error::not_found(error.to_string()),
        plinth_host::Error::NothingToRollBack { .. } => {
            Error::conflict("nothing_to_roll_back", error.to_string())
        }
        // The host's newest state statement revokes it, whatever storage says.
        plinth_host::Error::Trust(plinth_host::trust::TrustError::Revoked { .. }) => {
            Error::conflict("version_revoked", error.to_string())
        }
        plinth_host::Error::InstallChanged { .. } => {
            Error::conflict("install_changed", format!("{error}; try again"))
        }
        other => Error::Internal(format!("host: {other}")),
    }
}
