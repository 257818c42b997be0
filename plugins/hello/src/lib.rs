//! The smallest useful Plinth plugin: it greets whoever a `greet` event names.
//!
//! Send it `{"topic": "greet", "payload": "Ada"}` and it answers `"Hello, Ada!"`.

use plinth_sdk::{Event, Plugin, PluginError, log};

/// The plugin type. It holds no state: every call runs in a fresh instance.
struct Hello;

impl Plugin for Hello {
    fn on_event(event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        // The payload is JSON; a payload that is not a JSON string is the sender's mistake,
        // which `event.json` reports as an `invalid-payload` error.
        let name: String = event.json()?;
        log::write(log::Level::Info, "greeting", &[("name", &name)]);
        // The output is JSON too.
        plinth_sdk::json(&format!("Hello, {name}!"))
    }
}

// Exports `Hello` as the component's `handler` (and no-op `lifecycle` hooks).
plinth_sdk::export!(Hello);
