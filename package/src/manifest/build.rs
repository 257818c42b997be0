//! `[build]`: how a plugin not written in Rust is built into a component.
//!
//! ```toml
//! [build]
//! command = ["node", "../sdk/js/bin/plinth-js.mjs", "build", "src/plugin.ts"]
//! world = "http-plugin"   # optional; plugin | lifecycle-plugin (default) | http-plugin
//! ```
//!
//! `plinth plugin build` writes the plugin's WIT ([`crate::wit`]) and runs `command` in the
//! plugin's directory with `PLINTH_WIT_DIR`, `PLINTH_WORLD`, `PLINTH_WASM_OUT` and
//! `PLINTH_CAPABILITIES` set; a plugin without `[build]` is a Rust crate built with cargo.

use serde::{Deserialize, Serialize};

use crate::error::ManifestError;
use crate::wit::{DEFAULT_WORLD, WORLDS};

/// Most arguments a build command may have.
const MAX_ARGS: usize = 64;

/// `[build]`: the command that writes the component and the world it targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Build {
    /// The program and its arguments, run in the plugin's directory (no shell).
    pub command: Vec<String>,
    /// The world of the generated `plinth:app` package the component targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
}

impl Build {
    /// The world to build against: `world`, or [`DEFAULT_WORLD`].
    pub fn world(&self) -> &str {
        self.world.as_deref().unwrap_or(DEFAULT_WORLD)
    }

    /// `command` is a program and at most [`MAX_ARGS`] arguments, none empty; `world` is one
    /// of [`WORLDS`].
    pub(super) fn check(&self) -> Result<(), ManifestError> {
        if self.command.is_empty() {
            return Err(ManifestError::new(
                "build.command",
                "must name the program to run, e.g. [\"python3\", \"build.py\"]",
            ));
        }
        if self.command.len() > MAX_ARGS + 1 {
            return Err(ManifestError::new(
                "build.command",
                format!("has more than {MAX_ARGS} arguments"),
            ));
        }
        if let Some(i) = self.command.iter().position(|arg| arg.trim().is_empty()) {
            return Err(ManifestError::new(
                format!("build.command[{i}]"),
                "must not be empty",
            ));
        }
        if let Some(world) = &self.world
            && !WORLDS.contains(&world.as_str())
        {
            return Err(ManifestError::new(
                "build.world",
                format!(
                    "\"{world}\" is not a Plinth world; use one of {}",
                    WORLDS.join(", ")
                ),
            ));
        }
        Ok(())
    }
}
