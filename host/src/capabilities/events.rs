//! `plinth:plugin/events`: emitting platform events on the topics the manifest declares.
//!
//! Emitted events are collected with the call's outcome; the dispatcher delivers them onward
//! with `depth + 1`, refusing past the depth limit so plugins cannot ping-pong forever.

use std::sync::Arc;

use plinth_package::Permissions;
use serde::Serialize;
use wasmtime::component::Linker;

use super::{CallContext, Capability, HasView, SandboxView, View, view};
use crate::bindings::events::{self as wit, EmitError};

/// The deepest chain of emits the host delivers (an outside event has depth 0).
pub const MAX_EVENT_DEPTH: u32 = 8;

/// An event a plugin emitted during a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmittedEvent {
    /// Its topic (one the manifest declares under `events.emit`).
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Its depth: the handled event's depth plus one.
    pub depth: u32,
}

/// The events capability's per-call state.
#[derive(Debug)]
pub struct EventsState {
    permissions: Arc<Permissions>,
    depth: u32,
    max_events: u32,
    max_payload_bytes: u64,
    emitted: Vec<EmittedEvent>,
}

impl EventsState {
    /// Emission for a call handling an event at `depth`, under the granted `permissions`.
    pub fn new(
        permissions: Arc<Permissions>,
        depth: u32,
        max_events: u32,
        max_payload_bytes: u64,
    ) -> Self {
        EventsState {
            permissions,
            depth,
            max_events,
            max_payload_bytes,
            emitted: Vec::new(),
        }
    }

    fn emit(&mut self, topic: String, payload: Vec<u8>) -> Result<(), EmitError> {
        if !self.permissions.may_emit(&topic) {
            return Err(EmitError::UndeclaredTopic(topic));
        }
        let depth = self.depth.saturating_add(1);
        if depth > MAX_EVENT_DEPTH {
            return Err(EmitError::DepthExceeded(MAX_EVENT_DEPTH));
        }
        if payload.len() as u64 > self.max_payload_bytes {
            return Err(EmitError::PayloadTooLarge(self.max_payload_bytes));
        }
        if self.emitted.len() >= usize::try_from(self.max_events).unwrap_or(usize::MAX) {
            return Err(EmitError::RateLimited);
        }
        self.emitted.push(EmittedEvent {
            topic,
            payload,
            depth,
        });
        Ok(())
    }

    /// The events emitted during the call.
    pub(crate) fn finish(self) -> Vec<EmittedEvent> {
        self.emitted
    }
}

/// The events capability: granted by a non-empty `events.emit`, its state the call's
/// [`EventsState`].
#[derive(Debug)]
pub struct Events;

impl Capability for Events {
    type State = EventsState;

    fn granted(permissions: &Permissions) -> bool {
        permissions
            .events
            .as_ref()
            .is_some_and(|events| !events.emit.is_empty())
    }

    fn link<T: SandboxView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, HasView<Events>>(linker, view::<Events, T>)
    }

    fn prepare(call: &CallContext<'_>) -> EventsState {
        EventsState::new(
            Arc::clone(call.grants),
            call.depth,
            call.limits.max_emitted_events,
            call.limits.max_event_payload_bytes,
        )
    }
}

impl wit::Host for View<'_, EventsState> {
    async fn emit(
        &mut self,
        topic: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), EmitError>> {
        Ok(self.state.emit(topic, payload))
    }
}
