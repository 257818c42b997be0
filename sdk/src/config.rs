//! The tenant's configuration for this install. Requires the `config` permission.
//!
//! Only keys declared under `[config.<key>]` in `plinth.toml` exist. The host has already
//! checked each value against its declared type, so the typed helpers fail only when the
//! manifest and the code disagree.
//!
//! ```no_run
//! use plinth_sdk::config;
//!
//! let url = config::get_required("webhook-url")?;
//! let retries = config::get_integer("retries")?.unwrap_or(3);
//! let verbose = config::get_bool("verbose")?.unwrap_or(false);
//! # Ok::<(), config::ConfigError>(())
//! ```

use std::fmt;

use crate::PluginError;
use crate::bindings::plugin::plinth::plugin::config as wit;

/// Why a configuration value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The key is not declared in the plugin's manifest.
    Undeclared(String),
    /// A required value is not set (from [`get_required`]); carries the key.
    Missing(String),
    /// The value does not have the type the plugin asked for.
    Invalid {
        /// The key.
        key: String,
        /// Why the value does not fit.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Undeclared(key) => {
                write!(f, "config key `{key}` is not declared in the manifest")
            }
            Self::Missing(key) => write!(f, "config key `{key}` is required but not set"),
            Self::Invalid { key, reason } => write!(f, "config key `{key}`: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for PluginError {
    /// An undeclared key is a capability error (the plugin asked for something its manifest
    /// does not declare); a missing or mistyped value is the tenant's configuration to fix.
    fn from(err: ConfigError) -> Self {
        match err {
            ConfigError::Undeclared(_) => PluginError::Capability(err.to_string()),
            ConfigError::Missing(_) | ConfigError::Invalid { .. } => {
                PluginError::InvalidConfig(err.to_string())
            }
        }
    }
}

/// Returns the value of `key`, or `None` when the tenant left an optional key unset.
///
/// # Errors
///
/// [`ConfigError::Undeclared`] when the manifest does not declare `key`.
pub fn get(key: &str) -> Result<Option<String>, ConfigError> {
    wit::get(key).map_err(|err| match err {
        wit::ConfigError::Undeclared(key) => ConfigError::Undeclared(key),
    })
}

/// Returns the value of `key`, failing when it is not set.
///
/// # Errors
///
/// [`ConfigError::Missing`] when unset, [`ConfigError::Undeclared`] when not declared.
pub fn get_required(key: &str) -> Result<String, ConfigError> {
    get(key)?.ok_or_else(|| ConfigError::Missing(key.to_owned()))
}

/// Returns the value of an `integer` key.
///
/// # Errors
///
/// [`ConfigError::Invalid`] when the value is not a decimal integer that fits an `i64`.
pub fn get_integer(key: &str) -> Result<Option<i64>, ConfigError> {
    get(key)?
        .map(|value| {
            value.trim().parse().map_err(|err| ConfigError::Invalid {
                key: key.to_owned(),
                reason: format!("`{value}` is not an integer: {err}"),
            })
        })
        .transpose()
}

/// Returns the value of a `boolean` key (`true` or `false`).
///
/// # Errors
///
/// [`ConfigError::Invalid`] when the value is neither `true` nor `false`.
pub fn get_bool(key: &str) -> Result<Option<bool>, ConfigError> {
    get(key)?
        .map(|value| match value.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ConfigError::Invalid {
                key: key.to_owned(),
                reason: format!("`{value}` is not `true` or `false`"),
            }),
        })
        .transpose()
}
