//! Adversarial fixture: grows memory without bound. The host must cap its memory.

use std::hint::black_box;

use plinth_sdk::{Event, Plugin, PluginError};

/// How much memory each step takes.
const CHUNK: usize = 1024 * 1024;

/// The plugin type.
struct MemoryHog;

impl Plugin for MemoryHog {
    fn on_event(_event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            // Touch every page so the memory is really used, and keep every chunk alive.
            let chunk = vec![1u8; CHUNK];
            chunks.push(black_box(chunk));
            black_box(&chunks);
        }
    }
}

plinth_sdk::export!(MemoryHog);
