//! `plinth:plugin/config`: the tenant's configuration values for this install.
//!
//! Only keys declared in the manifest exist; an unset optional key falls back to the
//! manifest's default. Values are never logged here.

use std::collections::BTreeMap;
use std::sync::Arc;

use plinth_package::{Manifest, Permissions};
use wasmtime::component::Linker;

use super::{CallContext, Capability, HasView, SandboxView, View, view};
use crate::bindings::config::{self as wit, ConfigError};

/// The config capability's per-call state: the install's values and the manifest's schema.
#[derive(Clone, Debug, Default)]
pub struct ConfigState {
    values: Arc<BTreeMap<String, String>>,
    declared: Arc<BTreeMap<String, Option<String>>>,
}

impl ConfigState {
    /// The values the tenant set, checked against the keys `manifest` declares (with their
    /// defaults as text).
    pub fn new(manifest: &Manifest, values: Arc<BTreeMap<String, String>>) -> Self {
        let declared = manifest
            .config
            .iter()
            .map(|(key, field)| {
                (
                    key.clone(),
                    field.default.as_ref().map(|value| value.to_string()),
                )
            })
            .collect();
        ConfigState {
            values,
            declared: Arc::new(declared),
        }
    }

    fn get(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(default) = self.declared.get(key) else {
            return Err(ConfigError::Undeclared(key.to_string()));
        };
        Ok(self.values.get(key).cloned().or_else(|| default.clone()))
    }
}

/// The config capability: granted by `config`, its state the install's [`ConfigState`].
#[derive(Debug)]
pub struct Config;

impl Capability for Config {
    type State = ConfigState;

    fn granted(permissions: &Permissions) -> bool {
        permissions.config
    }

    fn link<T: SandboxView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, HasView<Config>>(linker, view::<Config, T>)
    }

    fn prepare(call: &CallContext<'_>) -> ConfigState {
        ConfigState::new(call.manifest, std::sync::Arc::clone(call.config))
    }
}

impl wit::Host for View<'_, ConfigState> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, ConfigError>> {
        Ok(self.state.get(&key))
    }
}
