//! Adversarial fixture: loops forever. The host must end the call at its deadline.

use std::hint::black_box;

use plinth_sdk::{Event, Plugin, PluginError};

/// The plugin type.
struct SpinForever;

impl Plugin for SpinForever {
    fn on_event(_event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        let mut n: u64 = 0;
        loop {
            // `black_box` keeps the optimizer from proving the loop useless and removing it.
            n = black_box(n.wrapping_add(1));
        }
    }
}

plinth_sdk::export!(SpinForever);
