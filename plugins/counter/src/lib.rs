//! Counts `count` events in the plugin's private key-value store.
//!
//! Every `count` event adds one to a counter kept per tenant (the host namespaces the store by
//! tenant and plugin) and answers `{"count": n}`.

use plinth_sdk::{Event, Plugin, PluginError, kv, log};

/// The kv key the counter lives under.
const KEY: &str = "count";

/// The plugin type; its state lives in kv, not in memory.
struct Counter;

impl Plugin for Counter {
    fn on_event(_event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        // A kv failure (quota, unavailable) becomes a `capability` error through `?`.
        let count = read_count()? + 1;
        kv::set(KEY, count.to_string())?;
        log::debug(format!("count is now {count}"));
        plinth_sdk::json(&serde_json::json!({ "count": count }))
    }

    fn on_install() -> Result<(), PluginError> {
        // Start from zero on a fresh install.
        kv::set(KEY, "0")?;
        Ok(())
    }
}

/// The stored count, `0` when nothing is stored yet.
fn read_count() -> Result<u64, PluginError> {
    let Some(bytes) = kv::get(KEY)? else {
        return Ok(0);
    };
    let text = String::from_utf8_lossy(&bytes);
    text.parse()
        .map_err(|err| PluginError::failed(format!("the stored count `{text}` is corrupt: {err}")))
}

plinth_sdk::export!(Counter);
