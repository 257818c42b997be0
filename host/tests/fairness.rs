//! Tenants cannot hurt each other through the host: busy calls yield, the pool is never
//! exhausted (calls wait for capacity or are refused with a typed error), a tenant's share
//! bounds it alone, and an event's cascade ends at its budget or the tenant's monthly quota.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{call, package};
use plinth_host::trust::TrustPolicy;
use plinth_host::{
    CapacityConfig, Delivery, EngineConfig, Event, EventBudget, Host, HostConfig, InstallSpec,
    InvokeError, Limits, Metering, PreparedPlugin, QuotaGrant, TenantShare,
};
use plinth_test_artifacts::{HELLO, NOISY, TestPlugin};

struct Fixture {
    host: Arc<Host>,
    _dir: tempfile::TempDir,
}

fn fixture(configure: impl FnOnce(&mut HostConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut config = HostConfig::new(dir.path().join("cache"), TrustPolicy::development());
    configure(&mut config);
    let host = Host::new(config).unwrap_or_else(|e| panic!("host: {e}"));
    Fixture {
        host: Arc::new(host),
        _dir: dir,
    }
}

impl Fixture {
    fn prepare(&self, plugin: &TestPlugin) -> Arc<PreparedPlugin> {
        let package = package(plugin);
        let loaded = self
            .host
            .load(&package)
            .unwrap_or_else(|e| panic!("load {}: {e}", plugin.name));
        self.host
            .prepare(&loaded, &package.manifest.permissions, Metering::Epoch)
            .unwrap_or_else(|e| panic!("prepare {}: {e}", plugin.name))
    }

    async fn install(&self, tenant: &str, plugin: &TestPlugin, limits: Limits) {
        let package = package(plugin);
        let loaded = self
            .host
            .load(&package)
            .unwrap_or_else(|e| panic!("load: {e}"));
        let spec = InstallSpec {
            grants: package.manifest.permissions.clone(),
            config: Arc::new(BTreeMap::new()),
            limits,
            metering: Metering::Epoch,
            runs: Default::default(),
        };
        self.host
            .install(tenant, &loaded, spec)
            .await
            .unwrap_or_else(|e| panic!("install: {e}"));
    }

    async fn dispatch(
        &self,
        tenant: &str,
        topic: &str,
        budget: &Arc<EventBudget>,
    ) -> Vec<Delivery> {
        let event = Event {
            id: "evt".into(),
            topic: topic.into(),
            payload: b"{\"pad\": 16}".to_vec(),
            depth: 0,
        };
        self.host.dispatch(tenant, event, budget).await
    }
}

/// Waits until `ready` holds, polling (a guard against hanging, not a timing assertion).
async fn until(what: &str, ready: impl Fn() -> bool) {
    for _ in 0..1000 {
        if ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_calls_yield_so_another_tenants_call_finishes_while_they_run() {
    // One plugin thread: without yielding, a spinning call would hold it to its deadline.
    let f = fixture(|config| config.worker_threads = Some(1));
    let noisy = f.prepare(&NOISY);
    let hello = f.prepare(&HELLO);
    let spinning = Limits::default().with_timeout(Duration::from_secs(20));
    let spinners: Vec<_> = (0..3)
        .map(|_| {
            let host = Arc::clone(&f.host);
            let noisy = Arc::clone(&noisy);
            let limits = spinning.clone();
            tokio::spawn(
                async move { host.invoke(&noisy, call("a", "spin", "null", limits)).await },
            )
        })
        .collect();
    until("three spinners run", || {
        f.host.capacity().in_use().calls == 3
    })
    .await;

    let greeted = f
        .host
        .invoke(&hello, call("b", "greet", "\"Ada\"", Limits::default()))
        .await;
    assert_eq!(
        greeted.result.as_ref().ok().cloned().flatten(),
        Some(b"\"Hello, Ada!\"".to_vec()),
        "{:?}",
        greeted.result
    );
    assert!(
        spinners.iter().all(|spinner| !spinner.is_finished()),
        "the other tenant's call finished while the spinners still ran"
    );
    for spinner in spinners {
        spinner.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_is_never_exhausted_calls_wait_or_are_refused_typed() {
    let f = fixture(|config| {
        config.engine = EngineConfig {
            max_instances: 4,
            ..EngineConfig::default()
        };
        config.capacity = CapacityConfig {
            max_queued: 4,
            max_wait: Duration::from_millis(500),
            ..CapacityConfig::default()
        };
    });
    let noisy = f.prepare(&NOISY);
    assert_eq!(
        f.host.capacity().config().max_calls,
        4,
        "clamped to the pool"
    );
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let host = Arc::clone(&f.host);
            let noisy = Arc::clone(&noisy);
            tokio::spawn(async move {
                let tenant = format!("t{i}");
                host.invoke(
                    &noisy,
                    call(&tenant, "sleep", "{\"ms\": 300}", Limits::default()),
                )
                .await
            })
        })
        .collect();
    let (mut ran, mut refused) = (0, 0);
    for joined in calls {
        let invocation = joined.await.unwrap_or_else(|e| panic!("task: {e}"));
        match &invocation.result {
            Ok(_) => ran += 1,
            Err(InvokeError::Capacity {
                retry_after_ms: Some(_),
                message,
            }) if message.contains("concurrent calls") => refused += 1,
            Err(other) => panic!("only successes and capacity refusals, got {other:?}"),
        }
    }
    assert!(ran >= 4 && refused >= 1, "ran {ran}, refused {refused}");
    assert_eq!(f.host.capacity().in_use().calls, 0);
    assert_eq!(f.host.pool_in_use().component_instances, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_footprint_is_what_the_pool_allocates_for_it() {
    let f = fixture(|_| {});
    let noisy = f.prepare(&NOISY);
    let footprint = noisy.plugin().footprint();
    assert!(
        footprint.core_instances >= 1 && footprint.memories >= 1,
        "{footprint:?}"
    );
    let host = Arc::clone(&f.host);
    let sleeping = {
        let noisy = Arc::clone(&noisy);
        tokio::spawn(async move {
            host.invoke(
                &noisy,
                call("a", "sleep", "{\"ms\": 2000}", Limits::default()),
            )
            .await
        })
    };
    // The pool counts the component instance before its core instances are made: wait for
    // the instantiation to finish (it never does if the footprint under-counts).
    until("the call is instantiated", || {
        let pool = f.host.pool_in_use();
        pool.component_instances == 1
            && pool.core_instances >= u64::from(footprint.core_instances)
            && pool.memories >= u64::from(footprint.memories)
            && pool.tables >= u64::from(footprint.tables)
    })
    .await;
    let pool = f.host.pool_in_use();
    assert_eq!(pool.component_instances, 1);
    assert_eq!(pool.core_instances, u64::from(footprint.core_instances));
    assert_eq!(pool.memories, u64::from(footprint.memories));
    assert_eq!(pool.tables, u64::from(footprint.tables));
    sleeping.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_past_its_share_is_refused_while_another_tenant_runs() {
    let f = fixture(|_| {});
    let noisy = f.prepare(&NOISY);
    let hello = f.prepare(&HELLO);
    let share = TenantShare {
        max_calls: 1,
        max_core_instances: 64,
        max_memory_bytes: 1 << 30,
        max_queued: 0,
    };
    let limits = Limits::default().with_share(share);
    let host = Arc::clone(&f.host);
    let first = {
        let noisy = Arc::clone(&noisy);
        let limits = limits.clone();
        tokio::spawn(async move {
            host.invoke(&noisy, call("a", "sleep", "{\"ms\": 1500}", limits))
                .await
        })
    };
    until("a's call runs", || f.host.capacity().in_use().calls == 1).await;
    let second = f
        .host
        .invoke(&noisy, call("a", "sleep", "{\"ms\": 1}", limits.clone()))
        .await;
    match &second.result {
        Err(InvokeError::Capacity { message, .. }) => {
            assert!(
                message.contains("tenant") && message.contains("concurrent calls"),
                "{message}"
            );
        }
        other => panic!("expected a capacity refusal, got {other:?}"),
    }
    let other = f
        .host
        .invoke(&hello, call("b", "greet", "\"Ada\"", limits.clone()))
        .await;
    assert!(other.result.is_ok(), "{:?}", other.result);

    // Memory is reserved per call: a share smaller than one call's limit never runs it.
    let tiny = Limits::default()
        .with_memory_mb(64)
        .with_share(TenantShare {
            max_memory_bytes: 32 << 20,
            ..share
        });
    let too_large = f
        .host
        .invoke(&hello, call("c", "greet", "\"Ada\"", tiny))
        .await;
    assert!(
        matches!(&too_large.result, Err(InvokeError::Capacity { retry_after_ms: None, message }) if message.contains("memory")),
        "{:?}",
        too_large.result
    );
    assert!(first.await.is_ok_and(|ran| ran.result.is_ok()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_ends_at_the_events_budget_and_only_what_ran_is_metered() {
    let f = fixture(|_| {});
    f.install("acme", &NOISY, Limits::default()).await;
    let budget = Arc::new(EventBudget::new(10));
    let deliveries = f.dispatch("acme", "storm", &budget).await;
    assert_eq!(budget.invocations(), 10);
    assert_eq!(
        deliveries.len(),
        11,
        "ten calls and the entry that ends the cascade"
    );
    assert!(deliveries[..10].iter().all(|d| d.invocation.result.is_ok()));
    let last = &deliveries[10];
    match &last.invocation.result {
        Err(InvokeError::EventBudgetExhausted { budget, skipped }) => {
            assert_eq!(budget, "10 invocations");
            assert!(*skipped > 0);
        }
        other => panic!("expected the budget's end, got {other:?}"),
    }
    assert_eq!(
        (last.plugin.as_str(), last.topic.as_str()),
        ("fixtures.noisy", "storm")
    );
    let metered: u64 = f
        .host
        .meter()
        .snapshot_tenant("acme")
        .iter()
        .map(|record| record.counters.invocations)
        .sum();
    assert_eq!(metered, 10);

    // Bytes of results are bounded too: padded payloads spend the budget before the calls do.
    let padded = Arc::new(EventBudget::new(1000).with_max_bytes(4096));
    let event = Event {
        id: "padded".into(),
        topic: "storm".into(),
        payload: b"{\"pad\": 1024}".to_vec(),
        depth: 0,
    };
    let deliveries = f.host.dispatch("acme", event, &padded).await;
    assert!(padded.bytes() <= 4096 && padded.is_exhausted());
    let ended = deliveries.last().map(|d| d.invocation.result.clone());
    assert!(
        matches!(&ended, Some(Err(InvokeError::EventBudgetExhausted { budget, .. })) if budget == "4096 bytes of results"),
        "{ended:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_counts_against_the_monthly_quota_as_it_starts() {
    let f = fixture(|_| {});
    f.install("acme", &NOISY, Limits::default()).await;
    // 7 a month, 2 used already: a storm runs 5 calls and ends on the quota.
    let quota = QuotaGrant {
        limit: 7,
        stored: 2,
        flushed_mark: 0,
    };
    let budget = Arc::new(EventBudget::new(100).with_quota(quota));
    let deliveries = f.dispatch("acme", "storm", &budget).await;
    let ran = deliveries
        .iter()
        .filter(|d| d.invocation.result.is_ok())
        .count();
    assert_eq!(ran, 5);
    assert!(
        matches!(
            deliveries.last().map(|d| &d.invocation.result),
            Some(Err(InvokeError::QuotaExceeded { used: 7, limit: 7 }))
        ),
        "{:?}",
        deliveries.last().map(|d| &d.invocation.result)
    );
    assert_eq!(f.host.meter().unflushed_invocations("acme"), 5);
    // Another event for the tenant is refused at its first call.
    let again = Arc::new(EventBudget::new(100).with_quota(quota));
    let refused = f.dispatch("acme", "storm", &again).await;
    assert!(refused.iter().all(|d| d.invocation.result.is_err()));
    assert_eq!(f.host.meter().unflushed_invocations("acme"), 5);
}
