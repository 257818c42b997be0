//! A plugin version loaded into the host, and its per-grant prepared forms.
//!
//! Loading checks trust and compiles (through the on-disk cache) once per version. Preparing
//! links the component against exactly the capabilities a grant turns on and pre-instantiates
//! it: one [`PreparedPlugin`] per (version, granted permissions, metering), shared by every
//! tenant with that grant. The host keeps one [`LoadedPlugin`] per package digest (see
//! `crate::loaded`), so every install of a version shares its code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use plinth_package::{Manifest, PackageDigest, Permissions, PermissionsDigest};
use wasmtime::component::{Component, InstancePre};

use wasmtime_wasi_http::p2::bindings::exports::wasi::http::incoming_handler;

use crate::bindings::{handler, lifecycle};
use crate::capabilities::CapabilitySet;
use crate::capacity::Footprint;
use crate::engine::Metering;
use crate::sandbox::SandboxState;

/// A verified, compiled plugin version.
pub struct LoadedPlugin {
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) digest: PackageDigest,
    pub(crate) wasm: Arc<[u8]>,
    /// Compiled for the standard engine at load; for the fuel engine on first use.
    pub(crate) components: [OnceLock<Component>; 2],
    /// Prepared forms by (metering, grant). Weak: a prepared form holds its version, and the
    /// installs using it hold the prepared form, so a version nothing uses is freed.
    pub(crate) prepared: Mutex<HashMap<(Metering, PermissionsDigest), Weak<PreparedPlugin>>>,
    /// The pool slots one instantiation holds (`memory_bytes` is the call's, set per call).
    pub(crate) footprint: Footprint,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("plugin", &self.label())
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The package digest.
    pub fn digest(&self) -> PackageDigest {
        self.digest
    }

    /// The core instances, memories and tables one call of it holds in the host's pool.
    pub fn footprint(&self) -> Footprint {
        self.footprint
    }

    /// `<id>@<version>`, for messages.
    pub fn label(&self) -> String {
        format!(
            "{}@{}",
            self.manifest.plugin.id, self.manifest.plugin.version
        )
    }

    pub(crate) fn slot(metering: Metering) -> usize {
        match metering {
            Metering::Epoch => 0,
            Metering::Fuel => 1,
        }
    }
}

/// A plugin linked for one grant and pre-instantiated: instantiating it per call is cheap.
pub struct PreparedPlugin {
    pub(crate) plugin: Arc<LoadedPlugin>,
    pub(crate) grants: Arc<Permissions>,
    pub(crate) capabilities: CapabilitySet,
    pub(crate) metering: Metering,
    pub(crate) pre: InstancePre<SandboxState>,
    pub(crate) handler: handler::GuestIndices,
    pub(crate) lifecycle: Option<lifecycle::GuestIndices>,
    pub(crate) incoming: Option<incoming_handler::GuestIndices>,
}

impl std::fmt::Debug for PreparedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedPlugin")
            .field("plugin", &self.plugin.label())
            .field("capabilities", &self.capabilities)
            .field("metering", &self.metering)
            .finish_non_exhaustive()
    }
}

impl PreparedPlugin {
    /// The loaded version this was prepared from.
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// The permissions granted.
    pub fn grants(&self) -> &Permissions {
        &self.grants
    }

    /// Whether the component serves HTTP (exports `wasi:http/incoming-handler`).
    pub fn serves_http(&self) -> bool {
        self.incoming.is_some()
    }

    /// Whether the component exports the lifecycle hooks.
    pub fn has_lifecycle(&self) -> bool {
        self.lifecycle.is_some()
    }
}
