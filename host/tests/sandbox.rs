//! The host runs every example and adversarial plugin from `plugins/` in per-tenant sandboxes:
//! each failure ends only its own call, with the right typed error, while other tenants' calls
//! go on succeeding.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{call, package};
use plinth_host::kv::KvStore;
use plinth_host::trust::TrustPolicy;
use plinth_host::{
    EngineConfig, Error, Host, HostConfig, Invocation, InvokeError, Limits, Metering,
    PreparedPlugin,
};
use plinth_package::{Permissions, SecretKey};
use plinth_test_artifacts::{
    BAD_HOST, COUNTER, DEEP_RECURSION, HELLO, HUGE_OUTPUT, LOG_BOMB, MEMORY_HOG, SPIN_FOREVER,
    TRAP, TestPlugin, UNDECLARED_HTTP,
};

/// A host with a small pool, a kv store on SQLite in a temp dir, and the given trust policy.
struct Fixture {
    host: Host,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(trust: TrustPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let url = format!("sqlite://{}", dir.path().join("kv.db").display());
        let kv = KvStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("kv store: {e}"));
        let mut config = HostConfig::new(dir.path().join("cache"), trust);
        config.engine = EngineConfig {
            max_instances: 16,
            ..EngineConfig::default()
        };
        config.kv = Some(kv);
        let host = Host::new(config).unwrap_or_else(|e| panic!("host: {e}"));
        Fixture { host, _dir: dir }
    }

    async fn development() -> Self {
        Self::new(TrustPolicy::development()).await
    }

    /// Loads a plugin and prepares it with everything its manifest asks for.
    fn prepare(&self, plugin: &TestPlugin, metering: Metering) -> Arc<PreparedPlugin> {
        let package = package(plugin);
        let loaded = self
            .host
            .load(&package)
            .unwrap_or_else(|e| panic!("load {}: {e}", plugin.name));
        self.host
            .prepare(&loaded, &package.manifest.permissions, metering)
            .unwrap_or_else(|e| panic!("prepare {}: {e}", plugin.name))
    }
}

fn output_json(invocation: &Invocation) -> serde_json::Value {
    match &invocation.result {
        Ok(Some(bytes)) => {
            serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("output is not JSON: {e}"))
        }
        other => panic!("expected output, got {other:?}"),
    }
}

fn error(invocation: &Invocation) -> &InvokeError {
    match &invocation.result {
        Err(error) => error,
        Ok(output) => panic!("expected an error, got output {output:?}"),
    }
}

#[tokio::test]
async fn hello_greets_and_logs() {
    let fixture = Fixture::development().await;
    let hello = fixture.prepare(&HELLO, Metering::Epoch);
    let invocation = fixture
        .host
        .invoke(&hello, call("acme", "greet", "\"Ada\"", Limits::default()))
        .await;
    assert_eq!(output_json(&invocation), serde_json::json!("Hello, Ada!"));
    assert!(
        invocation
            .logs
            .iter()
            .any(|line| line.message.contains("greeting") && line.level == "info"),
        "logs: {:?}",
        invocation.logs
    );
    assert!(invocation.usage.memory_bytes > 0);
}

#[tokio::test]
async fn a_bad_payload_is_the_plugins_typed_error() {
    let fixture = Fixture::development().await;
    let hello = fixture.prepare(&HELLO, Metering::Epoch);
    let invocation = fixture
        .host
        .invoke(
            &hello,
            call("acme", "greet", "{not json", Limits::default()),
        )
        .await;
    assert!(
        matches!(error(&invocation), InvokeError::PluginError { kind, .. } if kind == "invalid-payload"),
        "{:?}",
        invocation.result
    );
}

#[tokio::test]
async fn a_topic_the_plugin_does_not_subscribe_to_is_refused() {
    let fixture = Fixture::development().await;
    let hello = fixture.prepare(&HELLO, Metering::Epoch);
    let invocation = fixture
        .host
        .invoke(&hello, call("acme", "count", "1", Limits::default()))
        .await;
    assert_eq!(
        error(&invocation),
        &InvokeError::NotSubscribed {
            topic: "count".into()
        }
    );
}

#[tokio::test]
async fn spin_forever_hits_the_deadline() {
    let fixture = Fixture::development().await;
    let spin = fixture.prepare(&SPIN_FOREVER, Metering::Epoch);
    let limits = Limits::default().with_timeout(Duration::from_millis(200));
    let invocation = fixture
        .host
        .invoke(&spin, call("acme", "run", "null", limits))
        .await;
    assert_eq!(error(&invocation), &InvokeError::Timeout { limit_ms: 200 });
}

#[tokio::test]
async fn spin_forever_runs_out_of_fuel_when_metered() {
    let fixture = Fixture::development().await;
    let spin = fixture.prepare(&SPIN_FOREVER, Metering::Fuel);
    let limits = Limits::default()
        .with_timeout(Duration::from_secs(30))
        .with_fuel(5_000_000);
    let invocation = fixture
        .host
        .invoke(&spin, call("acme", "run", "null", limits))
        .await;
    assert_eq!(
        error(&invocation),
        &InvokeError::OutOfFuel { limit: 5_000_000 }
    );
    assert_eq!(invocation.usage.fuel, Some(5_000_000));
}

#[tokio::test]
async fn metered_calls_report_the_fuel_they_used() {
    let fixture = Fixture::development().await;
    let hello = fixture.prepare(&HELLO, Metering::Fuel);
    let invocation = fixture
        .host
        .invoke(&hello, call("acme", "greet", "\"Ada\"", Limits::default()))
        .await;
    assert_eq!(output_json(&invocation), serde_json::json!("Hello, Ada!"));
    assert!(
        invocation.usage.fuel.is_some_and(|fuel| fuel > 0),
        "{:?}",
        invocation.usage
    );
}

#[tokio::test]
async fn memory_hog_hits_the_memory_limit() {
    let fixture = Fixture::development().await;
    let hog = fixture.prepare(&MEMORY_HOG, Metering::Epoch);
    let limits = Limits::default().with_memory_mb(32);
    let invocation = fixture
        .host
        .invoke(&hog, call("acme", "run", "null", limits))
        .await;
    assert_eq!(
        error(&invocation),
        &InvokeError::MemoryLimit {
            limit_bytes: 32 << 20
        }
    );
    assert!(invocation.usage.memory_bytes <= 32 << 20);
}

#[tokio::test]
async fn deep_recursion_traps_with_a_stack_overflow() {
    let fixture = Fixture::development().await;
    let deep = fixture.prepare(&DEEP_RECURSION, Metering::Epoch);
    let invocation = fixture
        .host
        .invoke(&deep, call("acme", "run", "null", Limits::default()))
        .await;
    match error(&invocation) {
        InvokeError::Trap { message } => {
            assert!(message.contains("stack overflow"), "{message}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn a_panic_is_a_trap_carrying_the_panic_message() {
    let fixture = Fixture::development().await;
    let trap = fixture.prepare(&TRAP, Metering::Epoch);
    let invocation = fixture
        .host
        .invoke(&trap, call("acme", "run", "null", Limits::default()))
        .await;
    match error(&invocation) {
        InvokeError::Trap { message } => assert!(message.contains("panicked"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(
        invocation.logs.iter().any(|line| line.level == "warn"),
        "the panic message reaches the log: {:?}",
        invocation.logs
    );
}

#[tokio::test]
async fn huge_output_is_refused_past_the_output_limit() {
    let fixture = Fixture::development().await;
    let huge = fixture.prepare(&HUGE_OUTPUT, Metering::Epoch);
    let limits = Limits::default()
        .with_memory_mb(512)
        .with_max_output_bytes(1 << 20);
    let invocation = fixture
        .host
        .invoke(&huge, call("acme", "run", "null", limits))
        .await;
    match error(&invocation) {
        InvokeError::OutputTooLarge { size, limit } => {
            assert_eq!(*limit, 1 << 20);
            assert!(*size >= 100 << 20, "size {size}");
        }
        other => panic!("expected OutputTooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn huge_output_within_a_small_memory_limit_hits_memory_first() {
    let fixture = Fixture::development().await;
    let huge = fixture.prepare(&HUGE_OUTPUT, Metering::Epoch);
    let limits = Limits::default().with_memory_mb(16);
    let invocation = fixture
        .host
        .invoke(&huge, call("acme", "run", "null", limits))
        .await;
    assert!(
        matches!(error(&invocation), InvokeError::MemoryLimit { .. }),
        "{:?}",
        invocation.result
    );
}

#[tokio::test]
async fn bad_host_is_denied_http_outside_its_allowlist() {
    let fixture = Fixture::development().await;
    let bad = fixture.prepare(&BAD_HOST, Metering::Epoch);
    let invocation = fixture
        .host
        .invoke(&bad, call("acme", "run", "null", Limits::default()))
        .await;
    match error(&invocation) {
        InvokeError::PermissionDenied { capability, detail } => {
            assert_eq!(capability, "http");
            assert!(detail.contains("evil.example.com"), "{detail}");
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    assert_eq!(invocation.usage.outbound_requests, 0, "nothing was sent");
}

#[tokio::test]
async fn undeclared_http_cannot_be_instantiated() {
    let fixture = Fixture::development().await;
    let package = package(&UNDECLARED_HTTP);
    let loaded = fixture
        .host
        .load(&package)
        .unwrap_or_else(|e| panic!("load: {e}"));
    let result = fixture
        .host
        .prepare(&loaded, &package.manifest.permissions, Metering::Epoch);
    match result {
        Err(Error::Link { message, .. }) => {
            assert!(message.contains("wasi:http/outgoing-handler"), "{message}")
        }
        other => panic!("expected a link error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_grant_beyond_the_manifest_is_refused() {
    let fixture = Fixture::development().await;
    let package = package(&HELLO);
    let loaded = fixture
        .host
        .load(&package)
        .unwrap_or_else(|e| panic!("load: {e}"));
    let mut grants = package.manifest.permissions.clone();
    grants.config = true;
    let result = fixture.host.prepare(&loaded, &grants, Metering::Epoch);
    assert!(
        matches!(result, Err(Error::GrantNotRequested { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_narrower_grant_leaves_kv_unlinked() {
    let fixture = Fixture::development().await;
    let package = package(&COUNTER);
    let loaded = fixture
        .host
        .load(&package)
        .unwrap_or_else(|e| panic!("load: {e}"));
    let mut grants: Permissions = package.manifest.permissions.clone();
    grants.kv = None;
    let result = fixture.host.prepare(&loaded, &grants, Metering::Epoch);
    match result {
        Err(Error::Link { message, .. }) => {
            assert!(message.contains("plinth:plugin/kv"), "{message}")
        }
        other => panic!("expected a link error, got {other:?}"),
    }
}

#[tokio::test]
async fn counters_of_different_tenants_never_see_each_other() {
    let fixture = Fixture::development().await;
    let counter = fixture.prepare(&COUNTER, Metering::Epoch);
    let mut counts = Vec::new();
    for tenant in ["alpha", "alpha", "alpha", "beta"] {
        let invocation = fixture
            .host
            .invoke(&counter, call(tenant, "count", "null", Limits::default()))
            .await;
        counts.push(output_json(&invocation)["count"].clone());
        assert!(invocation.usage.kv_bytes_written > 0);
    }
    assert_eq!(counts, [1, 2, 3, 1].map(serde_json::Value::from));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversarial_plugins_do_not_disturb_a_well_behaved_tenant() {
    let fixture = Arc::new(Fixture::development().await);
    let hello = fixture.prepare(&HELLO, Metering::Epoch);
    let hostile = [
        fixture.prepare(&SPIN_FOREVER, Metering::Epoch),
        fixture.prepare(&MEMORY_HOG, Metering::Epoch),
        fixture.prepare(&DEEP_RECURSION, Metering::Epoch),
        fixture.prepare(&TRAP, Metering::Epoch),
    ];
    let limits = Limits::default()
        .with_timeout(Duration::from_millis(300))
        .with_memory_mb(32);
    let mut attacks = Vec::new();
    for prepared in hostile {
        let fixture = Arc::clone(&fixture);
        let limits = limits.clone();
        attacks.push(tokio::spawn(async move {
            fixture
                .host
                .invoke(&prepared, call("mallory", "run", "null", limits))
                .await
        }));
    }
    for round in 0..20 {
        let invocation = fixture
            .host
            .invoke(&hello, call("alice", "greet", "\"Ada\"", Limits::default()))
            .await;
        assert_eq!(
            output_json(&invocation),
            serde_json::json!("Hello, Ada!"),
            "round {round}"
        );
    }
    for attack in attacks {
        let invocation = attack.await.unwrap_or_else(|e| panic!("task: {e}"));
        assert!(invocation.result.is_err(), "{:?}", invocation.result);
    }
}

#[tokio::test]
async fn enforced_trust_loads_only_countersigned_packages() {
    let marketplace = SecretKey::generate().unwrap_or_else(|e| panic!("{e}"));
    let developer = SecretKey::generate().unwrap_or_else(|e| panic!("{e}"));
    let fixture = Fixture::new(TrustPolicy::enforce(vec![marketplace.public_key()])).await;

    let unsigned = package(&HELLO);
    assert!(matches!(fixture.host.load(&unsigned), Err(Error::Trust(_))));

    let mut signed = package(&HELLO);
    signed.sign(&developer);
    assert!(matches!(fixture.host.load(&signed), Err(Error::Trust(_))));

    signed.countersign(&marketplace, 1_700_000_000);
    let loaded = fixture
        .host
        .load(&signed)
        .unwrap_or_else(|e| panic!("a countersigned package loads: {e}"));
    assert_eq!(loaded.digest(), signed.digest());

    let mut tampered = signed.clone();
    tampered.wasm.push(0);
    assert!(matches!(fixture.host.load(&tampered), Err(Error::Trust(_))));
}

/// Everything a test's `tracing` subscriber writes, kept for inspection.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Captures this thread's `tracing` output (plain text, no colours) until the guard drops.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// What the log bomb tries to slip into the server log as a line of its own.
const FORGED: &str = "FORGED-LINE level=INFO operator logged in";

/// The bytes a kept log line counts against the per-call cap.
fn line_bytes(line: &plinth_host::capabilities::log::LogLine) -> usize {
    line.message.len()
        + line
            .fields
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum::<usize>()
}

fn has_raw_controls(text: &str) -> bool {
    text.chars().any(char::is_control)
}

#[tokio::test]
async fn a_log_bomb_keeps_the_call_within_its_log_caps_and_cuts_its_error() {
    let captured = Captured::default();
    let _tracing = captured.install();
    let fixture = Fixture::development().await;
    let bomb = fixture.prepare(&LOG_BOMB, Metering::Epoch);
    let limits = Limits::default();
    let invocation = fixture
        .host
        .invoke(&bomb, call("mallory", "run", "null", limits.clone()))
        .await;

    // The 8 MiB error comes back cut to a few KiB, escaped, with the original size.
    match error(&invocation) {
        InvokeError::PluginError { kind, message } => {
            assert_eq!(kind, "failed");
            assert!(message.len() <= 4096, "{} bytes kept", message.len());
            assert!(
                message.ends_with("… [cut: 8388608 bytes in all]"),
                "{}",
                &message[message.len().saturating_sub(80)..]
            );
            assert!(
                message.starts_with(&format!("failed\\n{FORGED}")),
                "{message:.80}"
            );
            assert!(!has_raw_controls(message));
        }
        other => panic!("expected the plugin's error, got {other:?}"),
    }

    // The log: 100 lines and a stdout and a stderr line were written; what is kept fits the
    // per-call cap, every kept line the per-line caps, and the rest is counted as dropped.
    let kept: usize = invocation.logs.iter().map(line_bytes).sum();
    assert!(kept as u64 <= limits.max_log_bytes, "{kept} bytes kept");
    assert!(!invocation.logs.is_empty());
    assert_eq!(
        invocation.logs.len() + invocation.logs_dropped as usize,
        102,
        "every line is kept or counted"
    );
    for line in &invocation.logs {
        assert!(line_bytes(line) <= limits.max_log_line_bytes as usize);
        assert!(line.fields.len() <= limits.max_log_fields as usize);
        assert!(line.truncated, "the bomb's lines are all over the caps");
        assert!(line.message.starts_with("bomb "), "{}", line.message);
        assert!(
            line.message
                .contains(&format!("\\n{FORGED}\\r\\u{{1b}}[31m"))
        );
        assert!(!has_raw_controls(&line.message));
        assert_eq!(line.fields[0].0, "blob");
    }

    // What reached the server's log: no raw escape, no line of the plugin's making, nothing
    // near the 100 MiB the plugin sent.
    let text = captured.text();
    assert!(text.contains("bomb 0"), "the plugin's lines are logged");
    assert!(!text.contains('\u{1b}'), "a raw escape reached the log");
    assert!(
        !text.contains('\r'),
        "a raw carriage return reached the log"
    );
    for line in text.lines() {
        assert!(
            !line.starts_with(FORGED) && !line.starts_with("failed"),
            "a forged line: {line:.120}"
        );
    }
    assert!(text.len() < 512 << 10, "{} bytes of log", text.len());
    assert!(
        !text.contains(&"x".repeat(4097)),
        "a field passed the line cap"
    );
}

#[tokio::test]
async fn log_caps_come_from_the_limits_and_stdio_lines_are_escaped_too() {
    let fixture = Fixture::development().await;
    let bomb = fixture.prepare(&LOG_BOMB, Metering::Epoch);
    let limits = Limits {
        max_log_line_bytes: 300,
        max_log_fields: 3,
        max_log_lines: 200,
        max_log_bytes: 1 << 20,
        ..Limits::default()
    };
    let invocation = fixture
        .host
        .invoke(&bomb, call("mallory", "run", "null", limits))
        .await;
    assert_eq!(invocation.logs.len(), 102, "all lines fit the per-call cap");
    assert_eq!(invocation.logs_dropped, 0);
    for line in &invocation.logs {
        assert!(line_bytes(line) <= 300, "{line:?}");
        assert!(line.fields.len() <= 3, "{line:?}");
        assert!(
            line.fields
                .iter()
                .all(|(key, value)| !has_raw_controls(key) && !has_raw_controls(value))
        );
    }
    let stdio: Vec<_> = invocation
        .logs
        .iter()
        .filter(|line| line.message.contains("says"))
        .collect();
    assert_eq!(stdio.len(), 2, "{stdio:?}");
    assert_eq!(
        stdio[0].message,
        format!("stdout says\\r{FORGED}\\u{{1b}}[0m")
    );
    assert_eq!(stdio[0].level, "info");
    assert_eq!(stdio[1].message, format!("stderr says\\u{{1b}}[1m{FORGED}"));
    assert_eq!(stdio[1].level, "warn");
}

#[tokio::test]
async fn a_panic_line_is_escaped_and_cut_in_the_trap() {
    let fixture = Fixture::development().await;
    let bomb = fixture.prepare(&LOG_BOMB, Metering::Epoch);
    let invocation = fixture
        .host
        .invoke(&bomb, call("mallory", "panic", "null", Limits::default()))
        .await;
    // The plugin wrote an 8 KiB line holding `panicked`, controls and a forged line to stderr
    // before panicking: the trap quotes it escaped and cut.
    match error(&invocation) {
        InvokeError::Trap { message } => {
            assert!(
                message.contains(&format!("panicked\\r\\u{{1b}}[2J{FORGED}")),
                "{message:.200}"
            );
            assert!(!has_raw_controls(message), "{message:?}");
            assert!(message.len() <= 4096, "{} bytes", message.len());
            assert!(message.contains("… [cut: "), "{message:.200}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}
