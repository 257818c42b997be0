//! Adversarial fixture: panics (a trap in wasm). The host must report it as a typed error.

use plinth_sdk::{Event, Plugin, PluginError};

/// The plugin type.
struct Trap;

impl Plugin for Trap {
    #[allow(
        clippy::panic,
        reason = "this fixture exists to panic; the host must survive it"
    )]
    fn on_event(event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        panic!("trap fixture: deliberate panic on `{}`", event.topic);
    }
}

plinth_sdk::export!(Trap);
