//! How much of the host's pooling allocator one instantiation of a component holds.
//!
//! The pool has fixed numbers of core instance, memory and table slots; a component built by
//! a language runtime (componentize-py links a dozen or more core modules) holds many of each.
//! The host reads the component once, at load, so that admission can reserve exactly what a
//! call will take and the pool is never asked for more than it has.

use wasmparser::{Instance, Parser, Payload};
use wasmtime::component::Component;

use crate::capacity::Footprint;

/// The core instances, memories and tables one instantiation of `component` (whose binary is
/// `wasm`) allocates; `memory_bytes` is left 0 (it is the call's limit, not the component's).
///
/// Core instances are the core module instantiations in the binary, nested components counted
/// as instantiated once. Memories and tables come from wasmtime's own count; for a component
/// it cannot count, every memory and table a module defines is counted once per module.
pub(crate) fn of(component: &Component, wasm: &[u8]) -> Footprint {
    let mut core_instances: u32 = 0;
    let mut memories: u32 = 0;
    let mut tables: u32 = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        // The component compiled, so it parses; a payload that does not is simply not counted.
        match payload {
            Ok(Payload::InstanceSection(reader)) => {
                let instantiations = reader
                    .into_iter()
                    .filter(|instance| matches!(instance, Ok(Instance::Instantiate { .. })))
                    .count();
                core_instances = core_instances
                    .saturating_add(u32::try_from(instantiations).unwrap_or(u32::MAX));
            }
            Ok(Payload::MemorySection(reader)) => {
                memories = memories.saturating_add(reader.count())
            }
            Ok(Payload::TableSection(reader)) => tables = tables.saturating_add(reader.count()),
            _ => {}
        }
    }
    if let Some(required) = component.resources_required() {
        memories = required.num_memories;
        tables = required.num_tables;
    }
    Footprint {
        core_instances: core_instances.max(1),
        memories,
        tables,
        memory_bytes: 0,
    }
}
