//! Test fixture: every `ping` it receives, it emits again. Left alone this would never stop;
//! the host refuses emits past its depth limit, which this plugin reports in its output.

use plinth_sdk::events::{self, EmitError};
use plinth_sdk::{Event, Plugin, PluginError};

struct PingPong;

impl Plugin for PingPong {
    fn on_event(event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        let emitted = match events::emit("ping", &event.payload) {
            Ok(()) => true,
            Err(EmitError::DepthExceeded(_)) => false,
            Err(other) => return Err(other.into()),
        };
        plinth_sdk::json(&serde_json::json!({ "depth": event.depth, "emitted": emitted }))
    }
}

plinth_sdk::export!(PingPong);
