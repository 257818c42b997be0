//! Adversarial fixture: returns a 100 MiB output. The host must refuse an output that large.

use plinth_sdk::{Event, Plugin, PluginError};

/// The size of the output.
const OUTPUT_BYTES: usize = 100 * 1024 * 1024;

/// The plugin type.
struct HugeOutput;

impl Plugin for HugeOutput {
    fn on_event(_event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        Ok(Some(vec![b'x'; OUTPUT_BYTES]))
    }
}

plinth_sdk::export!(HugeOutput);
