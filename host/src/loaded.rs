//! The versions loaded into a host, one [`LoadedPlugin`] per package digest.
//!
//! Every install of a version shares its compiled component and its prepared forms, however
//! the version reached the host (an install, an upgrade, a restore after a restart): an idle
//! install then holds only its own spec, not a copy of the component. The table holds weak
//! references, so a version no install or caller uses any more is freed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use plinth_package::PackageDigest;

use crate::plugin::LoadedPlugin;
use crate::runtime::lock;

/// Loaded versions by package digest (which covers the manifest, the wasm and the docs).
#[derive(Debug, Default)]
pub(crate) struct LoadedVersions {
    by_digest: Mutex<HashMap<PackageDigest, Weak<LoadedPlugin>>>,
}

impl LoadedVersions {
    /// The version loaded with `digest`, if something still holds it.
    pub(crate) fn get(&self, digest: &PackageDigest) -> Option<Arc<LoadedPlugin>> {
        lock(&self.by_digest).get(digest).and_then(Weak::upgrade)
    }

    /// Keeps `loaded`, unless a load of the same digest finished first: then that one, so
    /// that concurrent loads of one version still end up sharing it. Forgets versions nothing
    /// holds any more.
    pub(crate) fn keep(&self, loaded: Arc<LoadedPlugin>) -> Arc<LoadedPlugin> {
        let mut by_digest = lock(&self.by_digest);
        if let Some(first) = by_digest.get(&loaded.digest).and_then(Weak::upgrade) {
            return first;
        }
        by_digest.retain(|_, version| version.strong_count() > 0);
        by_digest.insert(loaded.digest, Arc::downgrade(&loaded));
        loaded
    }

    /// How many versions are loaded now.
    pub(crate) fn len(&self) -> usize {
        lock(&self.by_digest)
            .values()
            .filter(|version| version.strong_count() > 0)
            .count()
    }
}
