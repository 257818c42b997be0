//! [`Plugin`]: the trait every plugin implements, and [`json`] for its output.

use serde::Serialize;

use crate::{Event, PluginError};

/// A Plinth plugin: handles the events it subscribes to and, optionally, hooks into its
/// install's life. Export it with [`export!`](crate::export).
///
/// The methods are static: a fresh instance runs every call, so keep state in
/// [`kv`](crate::kv), not in the type.
pub trait Plugin {
    /// Handles one event on a topic the manifest subscribes to. Returns the output (by
    /// convention UTF-8 JSON, see [`json`]; `None` for no output) or why it failed.
    ///
    /// # Errors
    ///
    /// A [`PluginError`], reported to whoever sent the event.
    fn on_event(event: Event) -> Result<Option<Vec<u8>>, PluginError>;

    /// Called once when a tenant installs the plugin, after its configuration is set; failing
    /// aborts the install. Does nothing by default.
    ///
    /// # Errors
    ///
    /// A [`PluginError`] to refuse the install.
    fn on_install() -> Result<(), PluginError> {
        Ok(())
    }

    /// Called once when a tenant's install moves to this version from `from_version` (also on
    /// a rollback, with the newer version); failing aborts the upgrade. Does nothing by default.
    ///
    /// # Errors
    ///
    /// A [`PluginError`] to refuse the upgrade.
    fn on_upgrade(from_version: &str) -> Result<(), PluginError> {
        let _ = from_version;
        Ok(())
    }

    /// Called once before the tenant's install is removed (its kv data is deleted afterwards).
    /// Does nothing by default.
    ///
    /// # Errors
    ///
    /// A [`PluginError`], which the host reports; the uninstall goes ahead.
    fn on_uninstall() -> Result<(), PluginError> {
        Ok(())
    }
}

/// Serializes `value` as the JSON output of [`Plugin::on_event`].
///
/// # Errors
///
/// [`PluginError::Failed`] naming the serde error when `value` cannot be serialized.
///
/// # Examples
///
/// ```
/// let output = plinth_sdk::json(&serde_json::json!({ "count": 3 }))?;
/// assert_eq!(output.as_deref(), Some(&br#"{"count":3}"#[..]));
/// # Ok::<(), plinth_sdk::PluginError>(())
/// ```
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Option<Vec<u8>>, PluginError> {
    serde_json::to_vec(value)
        .map(Some)
        .map_err(|err| PluginError::failed(format!("cannot serialize the output: {err}")))
}
