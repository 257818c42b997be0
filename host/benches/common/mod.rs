//! What the benchmarks share: a host like a production one (default engine sizing, kv on
//! SQLite in a temporary directory, development trust so test packages load unsigned) and the
//! calls they send.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use plinth_host::kv::KvStore;
use plinth_host::trust::TrustPolicy;
use plinth_host::{Call, EngineConfig, Event, Host, HostConfig, Limits, Metering, PreparedPlugin};
use plinth_package::Package;
use plinth_test_artifacts::TestPlugin;

/// A host whose compiled cache and kv database live in a temporary directory.
pub struct Bed {
    /// The host under test.
    pub host: Arc<Host>,
    /// Keeps the directory alive as long as the host.
    _dir: tempfile::TempDir,
}

impl Bed {
    /// A host with the default engine configuration (the one `plinth` runs with).
    pub async fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let url = format!("sqlite://{}", dir.path().join("kv.db").display());
        let kv = KvStore::connect(&url)
            .await
            .context("opening the kv store")?;
        let host = Arc::new(
            Host::new(HostConfig {
                engine: EngineConfig::default(),
                kv: Some(kv),
                ..HostConfig::new(dir.path().join("cache"), TrustPolicy::development())
            })
            .context("starting the host")?,
        );
        Ok(Bed { host, _dir: dir })
    }

    /// Loads `plugin` and prepares it with every permission its manifest asks for.
    pub fn prepare(
        &self,
        plugin: &TestPlugin,
        metering: Metering,
    ) -> anyhow::Result<Arc<PreparedPlugin>> {
        let package = package(plugin)?;
        let loaded = self
            .host
            .load(&package)
            .with_context(|| format!("loading {}", plugin.name))?;
        self.host
            .prepare(&loaded, &package.manifest.permissions, metering)
            .with_context(|| format!("preparing {}", plugin.name))
    }
}

/// The unsigned package of a built test plugin.
pub fn package(plugin: &TestPlugin) -> anyhow::Result<Package> {
    let manifest = std::fs::read_to_string(format!("{}/plinth.toml", plugin.dir))
        .with_context(|| format!("reading the manifest of {}", plugin.name))?;
    let wasm = std::fs::read(plugin.wasm)
        .with_context(|| format!("reading the component of {}", plugin.name))?;
    Package::new(manifest, wasm, None, None).with_context(|| format!("packaging {}", plugin.name))
}

/// A call of `topic` with `payload` for tenant `acme`.
pub fn call(topic: &str, payload: &str, limits: Limits) -> Call {
    Call {
        tenant: "acme".to_string(),
        event: Event {
            id: "evt-bench".to_string(),
            topic: topic.to_string(),
            payload: payload.as_bytes().to_vec(),
            depth: 0,
        },
        config: Arc::new(BTreeMap::new()),
        limits,
    }
}
