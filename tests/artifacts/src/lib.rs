//! The guest plugins of `plugins/`, built once per test run for tests to share.
//!
//! The build script runs one `cargo build --release --target wasm32-wasip2` over the whole
//! `plugins/` workspace (into `<target dir>/wasm32-plugins`, shared by every profile) and
//! generates one [`TestPlugin`] constant per plugin:
//!
//! ```
//! use plinth_test_artifacts::HELLO;
//!
//! let wasm = std::fs::read(HELLO.wasm)?;
//! let manifest = std::path::Path::new(HELLO.dir).join("plinth.toml");
//! assert!(manifest.is_file());
//! # let _ = wasm;
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs)]

/// One guest plugin built for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestPlugin {
    /// The plugin's directory name under `plugins/`, e.g. `hello`.
    pub name: &'static str,
    /// The absolute path of the plugin's directory (it holds its `plinth.toml`).
    pub dir: &'static str,
    /// The absolute path of the built component.
    pub wasm: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
