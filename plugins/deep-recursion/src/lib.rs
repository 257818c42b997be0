//! Adversarial fixture: recurses without bound. The host must survive the stack overflow.

use std::hint::black_box;

use plinth_sdk::{Event, Plugin, PluginError};

/// The plugin type.
struct DeepRecursion;

/// Recurses forever. The addition after the call makes it non-tail, and `black_box` keeps the
/// optimizer from turning it into a loop.
#[allow(
    unconditional_recursion,
    reason = "this fixture exists to overflow the stack; the host must survive it"
)]
fn descend(depth: u64) -> u64 {
    let below = descend(black_box(depth + 1));
    black_box(below.wrapping_add(depth))
}

impl Plugin for DeepRecursion {
    fn on_event(_event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        let total = descend(black_box(0));
        Ok(Some(total.to_le_bytes().to_vec()))
    }
}

plinth_sdk::export!(DeepRecursion);
