//! Emitting platform events. Requires `permissions.events.emit` topics.
//!
//! An emitted event reaches every active install of the same tenant subscribed to its topic.
//!
//! ```no_run
//! use plinth_sdk::events;
//!
//! events::emit_json("notify.sent", &serde_json::json!({ "order": 42 }))?;
//! # Ok::<(), events::EmitError>(())
//! ```

use std::fmt;

use serde::Serialize;

use crate::PluginError;
use crate::bindings::plugin::plinth::plugin::events as wit;

/// Why an emit was refused. Nothing was emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmitError {
    /// The topic is not listed under `permissions.events.emit` in the manifest.
    UndeclaredTopic(String),
    /// The event would pass the host's emit depth limit (carried).
    DepthExceeded(u32),
    /// The payload is larger than the limit (in bytes, carried).
    PayloadTooLarge(u64),
    /// The plugin emitted more events in this call than the host allows.
    RateLimited,
    /// [`emit_json`] could not serialize the payload; the text says why.
    Serialize(String),
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UndeclaredTopic(topic) => {
                write!(
                    f,
                    "cannot emit on `{topic}`: the manifest does not declare it"
                )
            }
            Self::DepthExceeded(limit) => {
                write!(
                    f,
                    "cannot emit: the event depth limit of {limit} is reached"
                )
            }
            Self::PayloadTooLarge(limit) => {
                write!(f, "cannot emit: the payload is over the {limit}-byte limit")
            }
            Self::RateLimited => write!(f, "cannot emit: too many events in this call"),
            Self::Serialize(why) => write!(f, "cannot serialize the event payload: {why}"),
        }
    }
}

impl std::error::Error for EmitError {}

impl From<wit::EmitError> for EmitError {
    fn from(err: wit::EmitError) -> Self {
        match err {
            wit::EmitError::UndeclaredTopic(topic) => Self::UndeclaredTopic(topic),
            wit::EmitError::DepthExceeded(limit) => Self::DepthExceeded(limit),
            wit::EmitError::PayloadTooLarge(limit) => Self::PayloadTooLarge(limit),
            wit::EmitError::RateLimited => Self::RateLimited,
        }
    }
}

impl From<EmitError> for PluginError {
    fn from(err: EmitError) -> Self {
        PluginError::Capability(err.to_string())
    }
}

/// Emits an event on `topic` with a raw `payload` (by convention UTF-8 JSON).
///
/// # Errors
///
/// [`EmitError`] when the host refuses the event.
pub fn emit(topic: &str, payload: impl AsRef<[u8]>) -> Result<(), EmitError> {
    Ok(wit::emit(topic, payload.as_ref())?)
}

/// Emits an event on `topic` whose payload is `value` serialized as JSON.
///
/// # Errors
///
/// [`EmitError::Serialize`] when `value` cannot be serialized, else as [`emit`].
pub fn emit_json<T: Serialize + ?Sized>(topic: &str, value: &T) -> Result<(), EmitError> {
    let payload = serde_json::to_vec(value).map_err(|err| EmitError::Serialize(err.to_string()))?;
    emit(topic, payload)
}
