//! Installs through their lifecycle: install, dispatch, enable/disable, upgrade (atomic, with
//! in-flight calls finishing on the old version), manual and automatic rollback, the circuit
//! breaker, uninstall (kv data removed) and metering.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use plinth_host::breaker::{BreakerPolicy, RolloutPolicy};
use plinth_host::kv::KvStore;
use plinth_host::trust::TrustPolicy;
use plinth_host::{
    BreakerStateName, Delivery, EngineConfig, Error, Event, EventBudget, Host, HostConfig,
    HostEvent, InstallSpec, InvokeError, Limits, LoadedPlugin, Metering,
};
use plinth_package::Package;
use plinth_test_artifacts::{COUNTER, HELLO, HTTP_ECHO, PING_PONG, SPIN_FOREVER, TRAP, TestPlugin};

struct Fixture {
    host: Arc<Host>,
    _dir: tempfile::TempDir,
}

async fn fixture(policies: impl FnOnce(&mut HostConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kv = KvStore::connect(&format!("sqlite://{}", dir.path().join("kv.db").display()))
        .await
        .unwrap_or_else(|e| panic!("kv: {e}"));
    let mut config = HostConfig::new(dir.path().join("cache"), TrustPolicy::development());
    config.engine = EngineConfig {
        max_instances: 32,
        ..EngineConfig::default()
    };
    config.kv = Some(kv);
    policies(&mut config);
    let host = Arc::new(Host::new(config).unwrap_or_else(|e| panic!("host: {e}")));
    Fixture { host, _dir: dir }
}

/// A package of `plugin`'s component under its own manifest.
fn package(plugin: &TestPlugin) -> Package {
    let manifest = std::fs::read_to_string(format!("{}/plinth.toml", plugin.dir))
        .unwrap_or_else(|e| panic!("manifest: {e}"));
    package_with(plugin, &manifest)
}

/// A package of `plugin`'s component under the given manifest: lets a test make "versions"
/// of one plugin id out of different components.
fn package_with(plugin: &TestPlugin, manifest: &str) -> Package {
    let wasm = std::fs::read(plugin.wasm).unwrap_or_else(|e| panic!("wasm: {e}"));
    Package::new(manifest.to_string(), wasm, None, None).unwrap_or_else(|e| panic!("package: {e}"))
}

/// A manifest for `id`@`version` subscribing to `topic`.
fn manifest(id: &str, version: &str, topic: &str) -> String {
    format!(
        r#"[plugin]
id = "{id}"
version = "{version}"
name = "Test"
description = "A test version."
license = "Apache-2.0"
api = "^0.1"

[permissions]
events = {{ subscribe = ["{topic}"] }}
"#
    )
}

impl Fixture {
    fn load(&self, package: &Package) -> Arc<LoadedPlugin> {
        self.host
            .load(package)
            .unwrap_or_else(|e| panic!("load: {e}"))
    }

    async fn install(&self, tenant: &str, package: &Package) -> Arc<LoadedPlugin> {
        let loaded = self.load(package);
        self.host
            .install(tenant, &loaded, spec(package, Limits::default()))
            .await
            .unwrap_or_else(|e| panic!("install: {e}"));
        loaded
    }

    async fn dispatch(&self, tenant: &str, topic: &str, payload: &str) -> Vec<Delivery> {
        self.host
            .dispatch(
                tenant,
                Event {
                    id: "evt".to_string(),
                    topic: topic.to_string(),
                    payload: payload.as_bytes().to_vec(),
                    depth: 0,
                },
                &Arc::new(EventBudget::new(1000)),
            )
            .await
    }
}

fn spec(package: &Package, limits: Limits) -> InstallSpec {
    InstallSpec {
        grants: package.manifest.permissions.clone(),
        config: Arc::new(BTreeMap::new()),
        limits,
        metering: Metering::Epoch,
        runs: Default::default(),
    }
}

fn output(delivery: &Delivery) -> serde_json::Value {
    match &delivery.invocation.result {
        Ok(Some(bytes)) => serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("json: {e}")),
        other => panic!("expected output from {}, got {other:?}", delivery.plugin),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_reaches_only_the_tenants_subscribed_enabled_installs() {
    let f = fixture(|_| {}).await;
    f.install("alpha", &package(&HELLO)).await;
    f.install("alpha", &package(&COUNTER)).await;

    let greet = f.dispatch("alpha", "greet", "\"Ada\"").await;
    assert_eq!(greet.len(), 1, "only hello subscribes to greet");
    assert_eq!(greet[0].plugin, "examples.hello");
    assert_eq!(output(&greet[0]), serde_json::json!("Hello, Ada!"));

    assert!(
        f.dispatch("beta", "greet", "\"Ada\"").await.is_empty(),
        "another tenant's installs never see alpha's events"
    );
    assert!(f.dispatch("alpha", "nobody-listens", "1").await.is_empty());

    f.host
        .set_enabled("alpha", "examples.hello", false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(f.dispatch("alpha", "greet", "\"Ada\"").await.is_empty());
    f.host
        .set_enabled("alpha", "examples.hello", true)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.dispatch("alpha", "greet", "\"Ada\"").await.len(), 1);

    let installs = f.host.installs("alpha");
    let ids: Vec<&str> = installs.iter().map(|i| i.plugin.as_str()).collect();
    assert_eq!(ids, ["examples.counter", "examples.hello"]);
}

#[tokio::test]
async fn installing_twice_and_unknown_installs_are_refused() {
    let f = fixture(|_| {}).await;
    let hello = package(&HELLO);
    let loaded = f.install("alpha", &hello).await;
    let again = f
        .host
        .install("alpha", &loaded, spec(&hello, Limits::default()))
        .await;
    assert!(
        matches!(again, Err(Error::AlreadyInstalled { .. })),
        "{again:?}"
    );
    assert!(matches!(
        f.host.set_enabled("alpha", "examples.nope", false),
        Err(Error::NotInstalled { .. })
    ));
    assert!(matches!(
        f.host.rollback("alpha", "examples.hello").await,
        Err(Error::NothingToRollBack { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_swaps_versions_and_rollback_returns() {
    let f = fixture(|_| {}).await;
    f.install("alpha", &package(&HELLO)).await;
    let v2_package = package_with(&HELLO, &manifest("examples.hello", "0.2.0", "greet"));
    let v2 = f.load(&v2_package);
    let info = f
        .host
        .upgrade("alpha", &v2, spec(&v2_package, Limits::default()))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e}"));
    assert_eq!(info.version, "0.2.0");
    assert_eq!(info.previous_version.as_deref(), Some("0.1.0"));
    assert_eq!(
        f.dispatch("alpha", "greet", "\"Ada\"").await[0].version,
        "0.2.0"
    );

    let rolled = f
        .host
        .rollback("alpha", "examples.hello")
        .await
        .unwrap_or_else(|e| panic!("rollback: {e}"));
    assert_eq!(
        (rolled.from.as_str(), rolled.to.as_str()),
        ("0.2.0", "0.1.0")
    );
    let delivered = f.dispatch("alpha", "greet", "\"Ada\"").await;
    assert_eq!(delivered[0].version, "0.1.0");
    assert_eq!(output(&delivered[0]), serde_json::json!("Hello, Ada!"));
}

/// The hook halves change nothing; the swap halves run no hook, refuse an install that
/// changed since its hook ran, and are undone by `revert`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_apart_from_swaps_that_refuse_a_changed_install() {
    let f = fixture(|_| {}).await;
    let v1_package = package(&COUNTER);
    f.install("alpha", &v1_package).await;
    let v2_manifest = std::fs::read_to_string(format!("{}/plinth.toml", COUNTER.dir))
        .unwrap_or_else(|e| panic!("manifest: {e}"))
        .replace("version = \"0.1.0\"", "version = \"0.2.0\"");
    let v2_package = package_with(&COUNTER, &v2_manifest);
    let v2 = f.load(&v2_package);
    let version = |f: &Fixture| {
        let installs = f.host.installs("alpha");
        (
            installs[0].version.clone(),
            installs[0].previous_version.clone(),
        )
    };

    let ready = f
        .host
        .run_upgrade_hook("alpha", &v2, spec(&v2_package, Limits::default()))
        .await
        .unwrap_or_else(|e| panic!("upgrade hook: {e}"));
    assert_eq!(
        (ready.from_version(), ready.to_version()),
        ("0.1.0".into(), "0.2.0".into())
    );
    assert_eq!(
        version(&f),
        ("0.1.0".into(), None),
        "the hook changed nothing"
    );
    f.host
        .reconfigure(
            "alpha",
            "examples.counter",
            spec(&v1_package, Limits::default()),
        )
        .unwrap_or_else(|e| panic!("reconfigure: {e}"));
    assert!(!ready.is_current());
    assert!(matches!(
        f.host.finish_upgrade(&ready),
        Err(Error::InstallChanged { .. })
    ));
    assert_eq!(version(&f), ("0.1.0".into(), None));

    let ready = f
        .host
        .run_upgrade_hook("alpha", &v2, spec(&v2_package, Limits::default()))
        .await
        .unwrap_or_else(|e| panic!("upgrade hook: {e}"));
    let swapped = f
        .host
        .finish_upgrade(&ready)
        .unwrap_or_else(|e| panic!("finish upgrade: {e}"));
    assert_eq!(swapped.info.version, "0.2.0");
    assert_eq!(version(&f), ("0.2.0".into(), Some("0.1.0".into())));
    f.host
        .revert(&swapped)
        .unwrap_or_else(|e| panic!("revert: {e}"));
    assert_eq!(version(&f), ("0.1.0".into(), None), "reverted");
    assert_eq!(
        f.dispatch("alpha", "count", "null").await[0].version,
        "0.1.0"
    );
    assert!(matches!(
        f.host.revert(&swapped),
        Err(Error::InstallChanged { .. })
    ));

    f.host
        .finish_upgrade(&ready)
        .unwrap_or_else(|e| panic!("finish upgrade again: {e}"));
    let back = f
        .host
        .run_rollback_hook("alpha", "examples.counter")
        .await
        .unwrap_or_else(|e| panic!("rollback hook: {e}"));
    assert_eq!(back.to_version(), "0.1.0");
    assert_eq!(version(&f), ("0.2.0".into(), Some("0.1.0".into())));
    f.host
        .finish_rollback(&back)
        .unwrap_or_else(|e| panic!("finish rollback: {e}"));
    assert_eq!(version(&f), ("0.1.0".into(), None));
    assert!(matches!(
        f.host.finish_rollback(&back),
        Err(Error::InstallChanged { .. })
    ));

    assert_eq!(
        output(&f.dispatch("alpha", "count", "null").await[0])["count"],
        2
    );
    f.host
        .run_uninstall_hook("alpha", "examples.counter")
        .await
        .unwrap_or_else(|e| panic!("uninstall hook: {e}"));
    assert_eq!(
        f.host.installs("alpha").len(),
        1,
        "the hook removed nothing"
    );
    assert!(
        f.host
            .remove_install("alpha", "examples.counter")
            .await
            .unwrap_or_else(|e| panic!("remove: {e}"))
    );
    assert!(f.host.installs("alpha").is_empty());
    f.install("alpha", &v1_package).await;
    assert_eq!(
        output(&f.dispatch("alpha", "count", "null").await[0])["count"],
        1,
        "kv data went with the removal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_calls_finish_on_the_version_they_started_with() {
    let f = fixture(|_| {}).await;
    // v1 is slow (it spins until its 400 ms deadline); v2 answers at once.
    let v1_package = package_with(&SPIN_FOREVER, &manifest("examples.slow", "1.0.0", "work"));
    let v1 = f.load(&v1_package);
    let limits = Limits::default().with_timeout(Duration::from_millis(400));
    f.host
        .install("alpha", &v1, spec(&v1_package, limits.clone()))
        .await
        .unwrap_or_else(|e| panic!("install: {e}"));

    let host = Arc::clone(&f.host);
    let in_flight = tokio::spawn(async move {
        host.dispatch(
            "alpha",
            Event {
                id: "slow".into(),
                topic: "work".into(),
                payload: b"null".to_vec(),
                depth: 0,
            },
            &Arc::new(EventBudget::new(1000)),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let v2_package = package_with(&HELLO, &manifest("examples.slow", "2.0.0", "work"));
    let v2 = f.load(&v2_package);
    f.host
        .upgrade("alpha", &v2, spec(&v2_package, limits))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e}"));

    let old = in_flight.await.unwrap_or_else(|e| panic!("task: {e}"));
    assert_eq!(old[0].version, "1.0.0");
    assert!(matches!(
        old[0].invocation.result,
        Err(InvokeError::Timeout { .. })
    ));
    let new = f.dispatch("alpha", "work", "\"Ada\"").await;
    assert_eq!(new[0].version, "2.0.0");
    assert_eq!(output(&new[0]), serde_json::json!("Hello, Ada!"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_upgrade_is_rolled_back_automatically_and_reported() {
    let f = fixture(|config| {
        config.policies.rollout = RolloutPolicy {
            observe_for: Duration::from_secs(600),
            min_calls: 3,
            max_failure_rate: 0.5,
        };
    })
    .await;
    let mut events = f.host.subscribe();
    f.install("alpha", &package(&HELLO)).await;
    // "0.2.0" of hello is the trap component: it panics on every event.
    let bad_package = package_with(&TRAP, &manifest("examples.hello", "0.2.0", "greet"));
    let bad = f.load(&bad_package);
    f.host
        .upgrade("alpha", &bad, spec(&bad_package, Limits::default()))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e}"));

    for _ in 0..3 {
        let delivered = f.dispatch("alpha", "greet", "\"Ada\"").await;
        assert_eq!(delivered[0].version, "0.2.0");
        assert!(matches!(
            delivered[0].invocation.result,
            Err(InvokeError::Trap { .. })
        ));
    }
    let event = events
        .try_recv()
        .unwrap_or_else(|e| panic!("no host event: {e}"));
    assert_eq!(
        event,
        HostEvent::AutoRolledBack {
            tenant: "alpha".into(),
            plugin: "examples.hello".into(),
            from: "0.2.0".into(),
            to: "0.1.0".into(),
            failures: 3,
            calls: 3,
        }
    );
    let delivered = f.dispatch("alpha", "greet", "\"Ada\"").await;
    assert_eq!(delivered[0].version, "0.1.0");
    assert_eq!(output(&delivered[0]), serde_json::json!("Hello, Ada!"));
}

#[tokio::test]
async fn repeated_failures_open_the_circuit_breaker() {
    let f = fixture(|config| {
        config.policies.breaker = BreakerPolicy {
            failure_threshold: 2,
            window: Duration::from_secs(60),
            cool_down: Duration::from_secs(60),
        };
    })
    .await;
    let mut events = f.host.subscribe();
    let broken = package_with(&TRAP, &manifest("examples.broken", "1.0.0", "run"));
    f.install("alpha", &broken).await;
    for _ in 0..2 {
        let delivered = f.dispatch("alpha", "run", "null").await;
        assert!(matches!(
            delivered[0].invocation.result,
            Err(InvokeError::Trap { .. })
        ));
    }
    let refused = f.dispatch("alpha", "run", "null").await;
    assert!(
        matches!(
            refused[0].invocation.result,
            Err(InvokeError::CircuitOpen { .. })
        ),
        "{:?}",
        refused[0].invocation.result
    );
    assert!(matches!(
        events.try_recv(),
        Ok(HostEvent::CircuitOpened { ref plugin, .. }) if plugin == "examples.broken"
    ));

    // The breaker's state, reason and recent failures are visible, and a reset closes it.
    let status = f
        .host
        .breaker_status("alpha", "examples.broken")
        .unwrap_or_else(|| panic!("no breaker status"));
    assert_eq!(status.state, BreakerStateName::Open);
    assert!(status.opened_at.is_some() && status.retry_after.is_some());
    assert!(
        status
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("2 failures")),
        "{status:?}"
    );
    assert_eq!(status.last_errors.len(), 2);
    assert!(status.last_errors.iter().all(|e| e.code == "trap"));
    assert!(f.host.breaker_status("beta", "examples.broken").is_none());
    let reset = f
        .host
        .reset_breaker("alpha", "examples.broken")
        .unwrap_or_else(|e| panic!("reset: {e}"));
    assert_eq!(reset.state, BreakerStateName::Closed);
    assert_eq!((reset.reason, reset.opened_at), (None, None));
    assert_eq!(reset.last_errors.len(), 2, "recent failures are kept");
    let ran = f.dispatch("alpha", "run", "null").await;
    assert!(matches!(
        ran[0].invocation.result,
        Err(InvokeError::Trap { .. })
    ));
    assert!(matches!(
        f.host.reset_breaker("beta", "examples.broken"),
        Err(Error::NotInstalled { .. })
    ));
}

#[tokio::test]
async fn uninstall_removes_the_install_and_its_kv_data() {
    let f = fixture(|_| {}).await;
    let counter = package(&COUNTER);
    let loaded = f.install("alpha", &counter).await;
    f.dispatch("alpha", "count", "null").await;
    let second = f.dispatch("alpha", "count", "null").await;
    assert_eq!(output(&second[0])["count"], 2);

    f.host
        .uninstall("alpha", "examples.counter")
        .await
        .unwrap_or_else(|e| panic!("uninstall: {e}"));
    assert!(f.dispatch("alpha", "count", "null").await.is_empty());
    assert!(f.host.installs("alpha").is_empty());

    f.host
        .install("alpha", &loaded, spec(&counter, Limits::default()))
        .await
        .unwrap_or_else(|e| panic!("reinstall: {e}"));
    let fresh = f.dispatch("alpha", "count", "null").await;
    assert_eq!(
        output(&fresh[0])["count"],
        1,
        "kv data went with the uninstall"
    );
}

/// Every install of one version shares one loaded copy of it (compiled code, prepared forms),
/// however often its package is read and loaded; the copy goes when nothing holds it.
#[tokio::test]
async fn installs_of_one_version_share_it_until_none_is_left() {
    let f = fixture(|_| {}).await;
    let alpha = f.install("alpha", &package(&HELLO)).await;
    // Read again, as the marketplace does for each install.
    let beta = f.install("beta", &package(&HELLO)).await;
    assert!(Arc::ptr_eq(&alpha, &beta), "two copies of one version");
    assert_eq!(f.host.loaded_versions(), 1);

    let other = package_with(&HELLO, &manifest("examples.hello", "9.0.0", "greet"));
    let gamma = f.install("gamma", &other).await;
    assert!(!Arc::ptr_eq(&alpha, &gamma), "another version is its own");
    assert_eq!(f.host.loaded_versions(), 2);
    assert_eq!(
        output(&f.dispatch("beta", "greet", "\"Ada\"").await[0]),
        "Hello, Ada!"
    );

    for tenant in ["alpha", "beta"] {
        f.host
            .uninstall(tenant, "examples.hello")
            .await
            .unwrap_or_else(|e| panic!("uninstall: {e}"));
    }
    drop((alpha, beta));
    assert_eq!(f.host.loaded_versions(), 1, "the unused version is freed");
    drop(gamma);
    assert_eq!(
        f.host.loaded_versions(),
        1,
        "gamma's install still holds it"
    );
}

#[tokio::test]
async fn dispatched_calls_are_metered_per_tenant_plugin_and_version() {
    let f = fixture(|_| {}).await;
    f.install("alpha", &package(&HELLO)).await;
    f.dispatch("alpha", "greet", "\"Ada\"").await;
    f.dispatch("alpha", "greet", "not json").await;
    let records = f.host.meter().snapshot();
    let hello = records
        .iter()
        .find(|record| record.key.plugin == "examples.hello")
        .unwrap_or_else(|| panic!("no usage for hello: {records:?}"));
    assert_eq!(hello.key.tenant, "alpha");
    assert_eq!(hello.key.version, "0.1.0");
    assert_eq!(hello.counters.invocations, 2);
    assert_eq!(hello.counters.failures.get("plugin_error"), Some(&1));
    assert!(hello.counters.wall_time_us > 0);
}

fn echo_request(body: &'static str) -> http::Request<bytes::Bytes> {
    http::Request::builder()
        .method("POST")
        .uri("/orders?status=new")
        .header("content-type", "text/plain")
        .body(bytes::Bytes::from_static(body.as_bytes()))
        .unwrap_or_else(|e| panic!("request: {e}"))
}

/// What alpha's `examples.http-echo` answers to a POST of `body`: its JSON, which must come
/// with a 200.
async fn echoed(f: &Fixture, body: &'static str) -> serde_json::Value {
    let served = f
        .host
        .serve_http("alpha", "examples.http-echo", echo_request(body), None)
        .await
        .unwrap_or_else(|e| panic!("serve: {e}"));
    let response = served
        .response
        .unwrap_or_else(|e| panic!("the call failed: {e}"));
    assert_eq!(response.status(), 200);
    serde_json::from_slice(response.body()).unwrap_or_else(|e| panic!("json: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_serves_http_through_its_incoming_handler() {
    let f = fixture(|_| {}).await;
    f.install("alpha", &package(&HTTP_ECHO)).await;
    let echo = echoed(&f, "hello there").await;
    assert_eq!(
        echo,
        serde_json::json!({"method": "POST", "path": "/orders?status=new", "body": "hello there"})
    );
    let usage = f.host.meter().snapshot();
    assert_eq!(usage[0].counters.invocations, 1, "HTTP calls are metered");
}

/// `component` with every `wasi:http/incoming-handler@0.2.12` name rewritten to `@0.2.10`
/// (the same length, so the binary stays valid): what StarlingMonkey exports.
fn exporting_incoming_handler_0_2_10(component: &[u8]) -> Vec<u8> {
    let from = b"wasi:http/incoming-handler@0.2.12";
    let to = b"wasi:http/incoming-handler@0.2.10";
    let mut patched = component.to_vec();
    let mut found = 0;
    let mut at = 0;
    while let Some(offset) = patched[at..].windows(from.len()).position(|w| w == from) {
        patched[at + offset..at + offset + to.len()].copy_from_slice(to);
        at += offset + to.len();
        found += 1;
    }
    assert!(
        found > 0,
        "the echo component exports no incoming handler @0.2.12"
    );
    patched
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_handler_of_another_wasi_0_2_version_serves_http() {
    let f = fixture(|_| {}).await;
    let mut echo = package(&HTTP_ECHO);
    echo = Package::new(
        echo.manifest_toml.clone(),
        exporting_incoming_handler_0_2_10(&echo.wasm),
        None,
        None,
    )
    .unwrap_or_else(|e| panic!("package: {e}"));
    let exports = plinth_package::wasm::inspect(&echo.wasm)
        .unwrap_or_else(|e| panic!("inspect: {e}"))
        .exports;
    assert!(
        exports.contains(&"wasi:http/incoming-handler@0.2.10".to_owned()),
        "{exports:?}"
    );
    f.install("alpha", &echo).await;
    assert_eq!(echoed(&f, "older").await["body"], "older");
}

#[tokio::test]
async fn http_to_a_plugin_without_a_handler_or_install_is_refused() {
    let f = fixture(|_| {}).await;
    f.install("alpha", &package(&HELLO)).await;
    let result = f
        .host
        .serve_http("alpha", "examples.hello", echo_request(""), None)
        .await;
    assert!(
        matches!(result, Err(Error::NotServingHttp { .. })),
        "{result:?}"
    );
    let result = f
        .host
        .serve_http("beta", "examples.http-echo", echo_request(""), None)
        .await;
    assert!(
        matches!(result, Err(Error::NotInstalled { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_http_response_past_the_output_limit_is_refused() {
    let f = fixture(|_| {}).await;
    let echo = package(&HTTP_ECHO);
    let loaded = f.load(&echo);
    f.host
        .install(
            "alpha",
            &loaded,
            spec(&echo, Limits::default().with_max_output_bytes(16)),
        )
        .await
        .unwrap_or_else(|e| panic!("install: {e}"));
    let served = f
        .host
        .serve_http(
            "alpha",
            "examples.http-echo",
            echo_request("a body long enough"),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("serve: {e}"));
    assert!(
        matches!(
            served.response,
            Err(InvokeError::OutputTooLarge { limit: 16, .. })
        ),
        "{:?}",
        served.response
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_events_are_dispatched_onward_until_the_depth_limit() {
    let f = fixture(|_| {}).await;
    f.install("alpha", &package(&PING_PONG)).await;
    let deliveries = f.dispatch("alpha", "ping", "\"ball\"").await;
    let depths: Vec<u32> = deliveries.iter().map(|d| d.depth).collect();
    let limit = plinth_host::capabilities::events::MAX_EVENT_DEPTH;
    assert_eq!(depths, (0..=limit).collect::<Vec<_>>());
    for delivery in &deliveries[..deliveries.len() - 1] {
        assert_eq!(output(delivery)["emitted"], true);
    }
    let last = deliveries.last().unwrap_or_else(|| panic!("no deliveries"));
    assert_eq!(
        output(last),
        serde_json::json!({"depth": limit, "emitted": false}),
        "the emit past the limit is refused"
    );
    assert!(
        f.dispatch("beta", "ping", "1").await.is_empty(),
        "emits stay within the tenant"
    );
}

#[tokio::test]
async fn an_install_whose_on_install_hook_fails_does_not_happen() {
    let f = fixture(|_| {}).await;
    let hello = package(&HELLO);
    let loaded = f.load(&hello);
    // No memory at all: the on-install call cannot even instantiate.
    let result = f
        .host
        .install(
            "alpha",
            &loaded,
            spec(&hello, Limits::default().with_memory_mb(0)),
        )
        .await;
    match result {
        Err(Error::Lifecycle { hook, error, .. }) => {
            assert_eq!(hook, "on-install");
            assert!(
                matches!(error, InvokeError::MemoryLimit { .. }),
                "{error:?}"
            );
        }
        other => panic!("expected a lifecycle error, got {other:?}"),
    }
    assert!(f.host.installs("alpha").is_empty(), "nothing was installed");
}

#[tokio::test]
async fn restore_reattaches_without_the_install_hook_and_keeps_the_status() {
    let f = fixture(|_| {}).await;
    let hello = package(&HELLO);
    let loaded = f.load(&hello);
    // With no memory the on-install hook could not run (see the test above); restore runs no
    // hook, so it succeeds, and the install is there, disabled as stored.
    f.host
        .restore(
            "alpha",
            &loaded,
            spec(&hello, Limits::default().with_memory_mb(0)),
            false,
        )
        .unwrap_or_else(|e| panic!("restore: {e}"));
    let installs = f.host.installs("alpha");
    assert_eq!(installs.len(), 1);
    assert!(!installs[0].enabled);
    assert!(f.dispatch("alpha", "greet", "\"Ada\"").await.is_empty());
    assert!(matches!(
        f.host
            .restore("alpha", &loaded, spec(&hello, Limits::default()), true),
        Err(Error::AlreadyInstalled { .. })
    ));
}

#[tokio::test]
async fn reconfigure_changes_the_limits_of_the_running_version() {
    let f = fixture(|_| {}).await;
    let hello = package(&HELLO);
    f.install("alpha", &hello).await;
    f.host
        .reconfigure(
            "alpha",
            "examples.hello",
            spec(&hello, Limits::default().with_memory_mb(0)),
        )
        .unwrap_or_else(|e| panic!("reconfigure: {e}"));
    let starved = f.dispatch("alpha", "greet", "\"Ada\"").await;
    assert!(
        matches!(
            starved[0].invocation.result,
            Err(InvokeError::MemoryLimit { .. })
        ),
        "{:?}",
        starved[0].invocation.result
    );
    f.host
        .reconfigure("alpha", "examples.hello", spec(&hello, Limits::default()))
        .unwrap_or_else(|e| panic!("reconfigure: {e}"));
    let fed = f.dispatch("alpha", "greet", "\"Ada\"").await;
    assert!(
        fed[0].invocation.result.is_ok(),
        "{:?}",
        fed[0].invocation.result
    );
    assert!(matches!(
        f.host
            .reconfigure("beta", "examples.hello", spec(&hello, Limits::default())),
        Err(Error::NotInstalled { .. })
    ));
}

/// Keeps every run the host records, except while paused.
#[derive(Debug, Default)]
struct Runs(
    std::sync::Mutex<Vec<plinth_host::RunRecord>>,
    std::sync::atomic::AtomicBool,
);

impl plinth_host::RunRecorder for Runs {
    fn record(&self, run: plinth_host::RunRecord) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(run);
    }

    fn recording(&self) -> bool {
        !self.1.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Runs {
    fn take(&self) -> Vec<plinth_host::RunRecord> {
        std::mem::take(
            &mut self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn pause(&self, paused: bool) {
        self.1.store(paused, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_recorder_is_handed_no_runs() {
    let f = fixture(|_| {}).await;
    let runs = Arc::new(Runs::default());
    assert!(f.host.set_run_recorder(runs.clone()));
    let hello = package(&HELLO);
    f.install("acme", &hello).await;
    // The install's lifecycle hook ran while recording.
    runs.take();
    runs.pause(true);
    let fed = f.dispatch("acme", "greet", "\"Ada\"").await;
    assert!(
        fed[0].invocation.result.is_ok(),
        "{:?}",
        fed[0].invocation.result
    );
    assert!(runs.take().is_empty(), "paused: nothing recorded");
    runs.pause(false);
    f.dispatch("acme", "greet", "\"Ada\"").await;
    let recorded = runs.take();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].tenant, "acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_through_an_install_is_recorded_and_captured_only_when_asked() {
    use plinth_host::{RunEntry, RunLogging};
    let f = fixture(|_| {}).await;
    let runs = Arc::new(Runs::default());
    assert!(f.host.set_run_recorder(runs.clone()));
    assert!(
        !f.host.set_run_recorder(Arc::new(Runs::default())),
        "one recorder"
    );
    let hello = package(&HELLO);
    let loaded = f.load(&hello);
    let mut capturing = spec(&hello, Limits::default());
    capturing.runs = RunLogging {
        capture_bytes: Some(5),
        secrets: Arc::from(vec!["Ada".to_string()]),
    };
    f.host
        .install("acme", &loaded, capturing)
        .await
        .unwrap_or_else(|e| panic!("install: {e}"));
    f.install("globex", &hello).await;
    f.dispatch("acme", "greet", "\"Ada\"").await;
    f.dispatch("globex", "greet", "42").await;

    let mut recorded = runs.take();
    recorded.sort_by_key(|run| (run.tenant.clone(), run.entry.kind()));
    let kinds: Vec<(&str, &str)> = recorded
        .iter()
        .map(|run| (run.tenant.as_str(), run.entry.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("acme", "event"),
            ("acme", "hook"),
            ("globex", "event"),
            ("globex", "hook")
        ]
    );
    let acme = &recorded[0];
    assert_eq!(
        acme.entry,
        RunEntry::Event {
            id: "evt".into(),
            topic: "greet".into(),
            depth: 0
        }
    );
    assert_eq!(acme.outcome, Ok("\"Hello, Ada!\"".len() as u64));
    assert!(acme.logs.iter().any(|line| line.message == "greeting"));
    let captured = acme.captured.clone().unwrap_or_default();
    assert_eq!(
        (captured.input.as_slice(), captured.output.as_slice()),
        (&b"\"Ada\""[..], &b"\"Hell"[..])
    );
    assert!(captured.truncated);
    assert_eq!(&*acme.secrets, ["Ada".to_string()]);
    assert_eq!(recorded[1].entry, RunEntry::Hook { name: "on-install" });
    // globex captures nothing, and its failure is typed.
    let globex = &recorded[2];
    assert_eq!(globex.captured, None);
    assert!(
        matches!(&globex.outcome, Err(InvokeError::PluginError { kind, .. }) if kind == "invalid-payload"),
        "{:?}",
        globex.outcome
    );
}
