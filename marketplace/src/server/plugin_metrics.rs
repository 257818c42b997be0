//! Metrics of the plugins the host runs and of the work waiting in queues: per-plugin calls,
//! failures by kind, latency, fuel (counted as each call is metered), and circuit breakers and
//! queue depths (read when `/metrics` is scraped).
//!
//! Labels are the plugin and its version, not the tenant: the number of series grows with the
//! catalog, not with the customers. An operator may turn on per-tenant call counters
//! ([`crate::Settings::metrics_per_tenant`]) where there are few tenants.

use std::sync::Arc;

use plinth_host::Host;
use plinth_host::metering::{CallObserver, CallRecord};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::db::Db;
use crate::error::Result;
use crate::notifications::webhooks::status;

/// A plugin version.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
    version: String,
}

/// A plugin version and how its calls failed (`trap`, `timeout`, `out_of_fuel`, …).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    plugin: String,
    version: String,
    kind: String,
}

/// A plugin and a circuit-breaker state (`closed`, `open`, `half_open`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    plugin: String,
    state: String,
}

/// A tenant and whether its calls succeeded (`ok`) or failed (`failed`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
    outcome: &'static str,
}

/// A queue's name.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

/// Plugin-call counters, fed by the host's meter as calls are recorded.
#[derive(Debug, Clone)]
pub struct PluginCalls {
    invocations: Family<PluginLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    latency: Family<PluginLabels, Histogram>,
    fuel: Family<PluginLabels, Counter>,
    /// Calls per tenant, when the operator turned them on.
    tenants: Option<Family<TenantLabels, Counter>>,
}

impl CallObserver for PluginCalls {
    fn observe(&self, (tenant, plugin, version): (&str, &str, &str), call: &CallRecord<'_>) {
        if let Some(tenants) = &self.tenants {
            tenants
                .get_or_create(&TenantLabels {
                    tenant: tenant.to_owned(),
                    outcome: if call.error_code.is_some() {
                        "failed"
                    } else {
                        "ok"
                    },
                })
                .inc();
        }
        let labels = PluginLabels {
            plugin: plugin.to_owned(),
            version: version.to_owned(),
        };
        self.invocations.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(call.wall.as_secs_f64());
        if let Some(fuel) = call.fuel {
            self.fuel.get_or_create(&labels).inc_by(fuel);
        }
        if let Some(kind) = call.error_code {
            self.failures
                .get_or_create(&FailureLabels {
                    plugin: labels.plugin,
                    version: labels.version,
                    kind: kind.to_owned(),
                })
                .inc();
        }
    }
}

/// Gauges set from the host and the database when `/metrics` is scraped.
#[derive(Debug, Clone, Default)]
struct Snapshots {
    breakers: Family<BreakerLabels, Gauge>,
    queues: Family<QueueLabels, Gauge>,
    capacity: Family<CapacityLabels, Gauge>,
}

/// What of the host's capacity a gauge counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CapacityLabels {
    resource: &'static str,
}

/// The plugin and queue metrics of one server.
#[derive(Debug, Clone)]
pub(crate) struct PluginMetrics {
    calls: Arc<PluginCalls>,
    snapshots: Snapshots,
}

impl PluginMetrics {
    /// The metrics, registered in `registry`; with per-tenant call counters if `per_tenant`.
    pub(crate) fn register(registry: &mut Registry, per_tenant: bool) -> PluginMetrics {
        let calls = PluginCalls {
            invocations: Family::default(),
            failures: Family::default(),
            // 100 µs to ~6.5 s.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 17))
            }),
            fuel: Family::default(),
            tenants: per_tenant.then(Family::default),
        };
        if let Some(tenants) = &calls.tenants {
            registry.register(
                "tenant_plugin_invocations",
                "Plugin calls per tenant and outcome (`ok` or `failed`); on only where the \
                 operator turned per-tenant metrics on",
                tenants.clone(),
            );
        }
        let snapshots = Snapshots::default();
        registry.register(
            "plugin_invocations",
            "Plugin calls, failed ones included, by plugin and version",
            calls.invocations.clone(),
        );
        registry.register(
            "plugin_failures",
            "Failed plugin calls by plugin, version and kind (the call's error code)",
            calls.failures.clone(),
        );
        registry.register(
            "plugin_call_duration_seconds",
            "Wall-clock time of plugin calls, by plugin and version",
            calls.latency.clone(),
        );
        registry.register(
            "plugin_fuel",
            "Fuel consumed by plugin calls that ran with fuel metering, by plugin and version",
            calls.fuel.clone(),
        );
        registry.register(
            "plugin_breakers",
            "Installs of each plugin whose circuit breaker is in each state",
            snapshots.breakers.clone(),
        );
        registry.register(
            "queue_depth",
            "Work waiting: webhook notifications to deliver, submissions to review, \
             usage records to store, runs to write to the run log",
            snapshots.queues.clone(),
        );
        registry.register(
            "host_capacity_in_use",
            "The host's capacity held by running calls (calls, core instance slots, reserved \
             memory bytes), calls waiting for it, and tenants running or waiting",
            snapshots.capacity.clone(),
        );
        PluginMetrics {
            calls: Arc::new(calls),
            snapshots,
        }
    }

    /// The observer to give the host's meter.
    pub(crate) fn calls(&self) -> Arc<PluginCalls> {
        Arc::clone(&self.calls)
    }

    /// Sets the breaker and queue gauges to what `host` and `db` hold now.
    ///
    /// # Errors
    ///
    /// A database error.
    pub(crate) async fn refresh(
        &self,
        db: &Db,
        host: Option<&Host>,
        queued_runs: Option<usize>,
    ) -> Result<()> {
        let pending_webhooks: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_outbox WHERE status = $1")
                .bind(status::PENDING)
                .fetch_one(db.pool())
                .await?;
        let in_review: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM submissions WHERE status = $1")
                .bind(crate::submissions::IN_REVIEW)
                .fetch_one(db.pool())
                .await?;
        // Counted through the partial index of due events; across tenants (the pool's scope).
        let queued_events: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM queued_events WHERE status = $1")
                .bind(crate::queue::QUEUED)
                .fetch_one(db.pool())
                .await?;
        let queues = &self.snapshots.queues;
        queues
            .get_or_create(&QueueLabels {
                queue: "webhook_deliveries",
            })
            .set(pending_webhooks);
        queues
            .get_or_create(&QueueLabels {
                queue: "queued_events",
            })
            .set(queued_events);
        queues
            .get_or_create(&QueueLabels { queue: "review" })
            .set(in_review);
        if let Some(queued) = queued_runs {
            queues
                .get_or_create(&QueueLabels {
                    queue: "run_records",
                })
                .set(i64::try_from(queued).unwrap_or(i64::MAX));
        }
        let Some(host) = host else {
            return Ok(());
        };
        let unflushed = host.meter().snapshot().len();
        queues
            .get_or_create(&QueueLabels {
                queue: "usage_records",
            })
            .set(i64::try_from(unflushed).unwrap_or(i64::MAX));
        let in_use = host.capacity().in_use();
        for (resource, value) in [
            ("calls", in_use.calls),
            ("core_instances", in_use.core_instances),
            ("memory_bytes", in_use.memory_bytes),
            ("queued_calls", in_use.queued),
            ("tenants", in_use.tenants),
        ] {
            self.snapshots
                .capacity
                .get_or_create(&CapacityLabels { resource })
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        // Plugins no longer installed drop out rather than keep their last count.
        self.snapshots.breakers.clear();
        for ((plugin, state), installs) in host.breaker_states() {
            self.snapshots
                .breakers
                .get_or_create(&BreakerLabels {
                    plugin,
                    state: state.as_str().to_owned(),
                })
                .set(i64::try_from(installs).unwrap_or(i64::MAX));
        }
        Ok(())
    }
}
