//! What the host's sandbox and fairness tests share: packages of the test plugins and calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use plinth_host::{Call, Event, Limits};
use plinth_package::Package;
use plinth_test_artifacts::TestPlugin;

/// `plugin` packaged as it is in `plugins/`, unsigned (the tests' hosts run in development
/// mode).
pub fn package(plugin: &TestPlugin) -> Package {
    let manifest = std::fs::read_to_string(format!("{}/plinth.toml", plugin.dir))
        .unwrap_or_else(|e| panic!("manifest of {}: {e}", plugin.name));
    let wasm =
        std::fs::read(plugin.wasm).unwrap_or_else(|e| panic!("wasm of {}: {e}", plugin.name));
    Package::new(manifest, wasm, None, None)
        .unwrap_or_else(|e| panic!("package {}: {e}", plugin.name))
}

/// An event on `topic` with `payload` for `tenant`, with no configuration, under `limits`.
pub fn call(tenant: &str, topic: &str, payload: &str, limits: Limits) -> Call {
    Call {
        tenant: tenant.to_string(),
        event: Event {
            id: format!("evt-{tenant}-{topic}"),
            topic: topic.to_string(),
            payload: payload.as_bytes().to_vec(),
            depth: 0,
        },
        config: Arc::new(BTreeMap::new()),
        limits,
    }
}
