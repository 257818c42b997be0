//! The limits one call runs under: the tenant's plan, capped by what the manifest asks for.

use std::time::Duration;

use plinth_package::Manifest;

use crate::capacity::TenantShare;

/// Limits for one invocation. Build it from the tenant's plan with [`Limits::default`] and the
/// `with_*` setters, then cap it by the plugin's manifest with [`Limits::capped_by`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory plus tables, in bytes, over all of the instance's memories and tables.
    pub memory_bytes: u64,
    /// Wall-clock time for the whole call, host calls included.
    pub timeout: Duration,
    /// Fuel for the call; `None` runs without fuel metering (CPU is bounded by `timeout`).
    pub fuel: Option<u64>,
    /// Largest output the plugin may return, in bytes.
    pub max_output_bytes: u64,
    /// Outbound HTTP requests the call may send.
    pub max_outbound_requests: u32,
    /// Events the call may emit.
    pub max_emitted_events: u32,
    /// Largest payload of one emitted event, in bytes.
    pub max_event_payload_bytes: u64,
    /// Log lines kept per call (stdout and stderr lines included); further lines are dropped
    /// and counted.
    pub max_log_lines: u32,
    /// Longest log line kept, in bytes: its message and every field key and value together.
    /// What does not fit is cut and the line marked truncated.
    pub max_log_line_bytes: u32,
    /// Fields kept per log line; further fields are dropped and the line marked truncated.
    pub max_log_fields: u32,
    /// Bytes of log kept per call, over every kept line's message, keys and values; a line
    /// that would pass it is dropped and counted, like lines past `max_log_lines`.
    pub max_log_bytes: u64,
    /// Outbound HTTP requests all of the tenant's calls together may send per minute (the
    /// plan's rate, shared by its installs); `None`: no tenant-wide rate.
    pub tenant_outbound_per_minute: Option<u32>,
    /// Bytes all of the tenant's installs together may hold in kv (the plan's quota, shared by
    /// its installs; each install is also held to its own grant); `None`: no tenant-wide quota.
    pub tenant_kv_bytes: Option<u64>,
    /// The tenant's share of the host (concurrent calls, instance slots, memory), from its
    /// plan; `None`: only the host-wide budget applies.
    pub share: Option<TenantShare>,
}

impl Default for Limits {
    /// The free plan's limits.
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(5),
            fuel: None,
            max_output_bytes: 1 << 20,
            max_outbound_requests: 10,
            max_emitted_events: 16,
            max_event_payload_bytes: 256 << 10,
            max_log_lines: 100,
            max_log_line_bytes: 4 << 10,
            max_log_fields: 16,
            max_log_bytes: 64 << 10,
            tenant_outbound_per_minute: None,
            tenant_kv_bytes: None,
            share: None,
        }
    }
}

impl Limits {
    /// Sets the memory limit in MiB.
    pub fn with_memory_mb(mut self, mb: u64) -> Self {
        self.memory_bytes = mb.saturating_mul(1 << 20);
        self
    }

    /// Sets the wall-clock timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Turns fuel metering on with this much fuel per call.
    pub fn with_fuel(mut self, fuel: u64) -> Self {
        self.fuel = Some(fuel);
        self
    }

    /// Sets the largest output in bytes.
    pub fn with_max_output_bytes(mut self, bytes: u64) -> Self {
        self.max_output_bytes = bytes;
        self
    }

    /// Sets the tenant-wide rate of outbound HTTP requests per minute.
    pub fn with_tenant_outbound_per_minute(mut self, per_minute: u32) -> Self {
        self.tenant_outbound_per_minute = Some(per_minute);
        self
    }

    /// Sets the tenant-wide kv quota in bytes.
    pub fn with_tenant_kv_bytes(mut self, bytes: u64) -> Self {
        self.tenant_kv_bytes = Some(bytes);
        self
    }

    /// Sets the tenant's share of the host.
    pub fn with_share(mut self, share: TenantShare) -> Self {
        self.share = Some(share);
        self
    }

    /// Caps these (plan) limits by what the manifest's `[limits]` asks for: a plugin never gets
    /// more than it declared, nor more than the plan allows.
    pub fn capped_by(mut self, manifest: &Manifest) -> Self {
        let asked = &manifest.limits;
        if let Some(mb) = asked.memory_mb {
            self.memory_bytes = self.memory_bytes.min(mb.saturating_mul(1 << 20));
        }
        if let Some(ms) = asked.timeout_ms {
            self.timeout = self.timeout.min(Duration::from_millis(ms));
        }
        if let (Some(plan), Some(asked)) = (self.fuel, asked.fuel) {
            self.fuel = Some(plan.min(asked));
        }
        self
    }
}
