//! Adversarial fixture: everything a hostile tenant's plugin can do to its neighbours, one topic
//! each. The host must keep every other tenant's calls unaffected.
//!
//! - `spin`: loops forever.
//! - `burn` `{"ms": N}`: keeps the CPU busy for N ms, then answers how long it burnt.
//! - `sleep` `{"ms": N}`: waits N ms without using the CPU.
//! - `hold` `{"mb": M, "ms": N}`: grows and touches M MiB of memory, then holds it N ms.
//! - `storm` `{"pad": B}`: emits as many `storm` events as it may, each padded to B bytes.
//!
//! Its log bomb is the `log-bomb` fixture's.

use std::hint::black_box;
use std::time::{Duration, Instant};

use plinth_sdk::events::{self, EmitError};
use plinth_sdk::{Event, Plugin, PluginError};
use serde::Deserialize;

/// The plugin type.
struct Noisy;

/// What each topic's payload may say.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Knobs {
    ms: u64,
    mb: usize,
    pad: usize,
}

impl Plugin for Noisy {
    fn on_event(event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        let knobs: Knobs = serde_json::from_slice(&event.payload).unwrap_or_default();
        match event.topic.as_str() {
            "spin" => spin(),
            "burn" => {
                let started = Instant::now();
                let mut n: u64 = 0;
                while started.elapsed() < Duration::from_millis(knobs.ms) {
                    n = black_box(n.wrapping_add(1));
                }
                plinth_sdk::json(&serde_json::json!({"burnt_ms": started.elapsed().as_millis()}))
            }
            "sleep" => {
                std::thread::sleep(Duration::from_millis(knobs.ms));
                plinth_sdk::json(&serde_json::json!({"slept_ms": knobs.ms}))
            }
            "hold" => {
                let held = vec![1u8; knobs.mb << 20];
                std::thread::sleep(Duration::from_millis(knobs.ms));
                plinth_sdk::json(&serde_json::json!({"held_mb": black_box(held).len() >> 20}))
            }
            "storm" => {
                let payload = vec![b' '; knobs.pad.max(2)];
                let mut emitted = 0;
                loop {
                    match events::emit("storm", &payload) {
                        Ok(()) => emitted += 1,
                        Err(EmitError::RateLimited | EmitError::DepthExceeded(_)) => break,
                        Err(other) => return Err(other.into()),
                    }
                }
                plinth_sdk::json(&serde_json::json!({"emitted": emitted, "depth": event.depth}))
            }
            other => Err(PluginError::invalid_payload(format!(
                "unknown topic {other:?}"
            ))),
        }
    }
}

/// Never returns.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

plinth_sdk::export!(Noisy);
