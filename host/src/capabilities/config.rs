//! `plinth:plugin/config`: the tenant's configuration values for this install.
//!
//! Only keys declared in the manifest exist; an unset optional key falls back to the
//! manifest's default. Values are never logged here.

use std::collections::BTreeMap;
use std::sync::Arc;

use plinth_package::Manifest;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::config::{self as wit, ConfigError};
use crate::sandbox::SandboxState;

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

pub(crate) fn link(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<_, HasSelf<_>>(linker, |state| state)
}

impl wit::Host for SandboxState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, ConfigError>> {
        Ok(self.config.get(&key))
    }
}
