//! [`PluginError`]: why a plugin could not handle a call.

use std::fmt;

/// Why a plugin could not handle an event or a lifecycle call.
///
/// The host reports it to whoever sent the event as the plugin's error (it is not a fault of
/// the host). Every capability error of this crate converts into it, so `?` works in
/// [`Plugin::on_event`](crate::Plugin::on_event):
///
/// ```no_run
/// use plinth_sdk::{kv, PluginError};
///
/// fn load() -> Result<Vec<u8>, PluginError> {
///     let value = kv::get("state")?.ok_or_else(|| PluginError::failed("no state yet"))?;
///     Ok(value)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The event payload (or request) was not what the plugin expects. The text says why.
    InvalidPayload(String),
    /// The tenant's configuration for this install is missing a value or has a bad one.
    InvalidConfig(String),
    /// A capability call (kv, config, events, outbound HTTP) failed. The text says which and why.
    Capability(String),
    /// Any other failure, described for the tenant who will read it.
    Failed(String),
}

impl PluginError {
    /// Any other failure, described for the tenant who will read it.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// The event payload (or request) was not what the plugin expects.
    pub fn invalid_payload(message: impl Into<String>) -> Self {
        Self::InvalidPayload(message.into())
    }

    /// The tenant's configuration is missing a value or has a bad one.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::InvalidConfig(message.into())
    }

    /// A capability call failed.
    pub fn capability(message: impl Into<String>) -> Self {
        Self::Capability(message.into())
    }

    /// The human-readable text carried by the error.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidPayload(m)
            | Self::InvalidConfig(m)
            | Self::Capability(m)
            | Self::Failed(m) => m,
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::InvalidPayload(_) => "invalid payload",
            Self::InvalidConfig(_) => "invalid config",
            Self::Capability(_) => "capability error",
            Self::Failed(_) => "failed",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for PluginError {}
