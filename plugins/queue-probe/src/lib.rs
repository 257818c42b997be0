//! Test fixture for asynchronous events. Every delivery counts, in kv, how often this plugin
//! saw the event's id (`seen` in its answer), so a test can tell a redelivery from a new event.
//!
//! - `job` `{"fail_times": N, "emit": K, "always_fail": bool}`: fails while it has seen the
//!   event N times or fewer (or always), else emits K `job.step` events and answers.
//! - `job.step`: answers.
//! - `job.tick` (its schedule, every 5 minutes): answers with the tick it got.

use plinth_sdk::{Event, Plugin, PluginError, events, kv};
use serde::Deserialize;

/// The plugin type; its state lives in kv.
struct QueueProbe;

/// What a `job` payload may ask for.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Job {
    fail_times: u64,
    emit: u32,
    always_fail: bool,
}

impl Plugin for QueueProbe {
    fn on_event(event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        let seen = count(&format!("seen/{}", event.id))?;
        match event.topic.as_str() {
            "job" => {
                let job: Job = event.json()?;
                if job.always_fail || seen <= job.fail_times {
                    return Err(PluginError::failed(format!(
                        "failing on purpose (delivery {seen} of event {})",
                        event.id
                    )));
                }
                for step in 0..job.emit {
                    events::emit_json("job.step", &serde_json::json!({ "step": step }))
                        .map_err(|e| PluginError::failed(format!("emit: {e:?}")))?;
                }
                plinth_sdk::json(&serde_json::json!({
                    "id": event.id, "seen": seen, "depth": event.depth,
                }))
            }
            "job.step" | "job.tick" => {
                let payload: serde_json::Value = event.json()?;
                plinth_sdk::json(&serde_json::json!({
                    "id": event.id, "seen": seen, "depth": event.depth, "payload": payload,
                }))
            }
            other => Err(PluginError::invalid_payload(format!(
                "unknown topic {other:?}"
            ))),
        }
    }
}

/// Adds one to the counter under `key` and returns it.
fn count(key: &str) -> Result<u64, PluginError> {
    let now = kv::get(key)?
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    kv::set(key, now.to_string())?;
    Ok(now)
}

plinth_sdk::export!(QueueProbe);
