//! [`ArchiveLimits`]: how large a package may be.

/// One mebibyte.
const MIB: u64 = 1024 * 1024;

/// Size limits applied when reading a package. All sizes are in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// The `.plinth` file itself (compressed). Default 64 MiB.
    pub compressed: u64,
    /// `plugin.wasm`. Default 48 MiB.
    pub wasm: u64,
    /// `plinth.toml`. Default 64 KiB.
    pub manifest: u64,
    /// `README.md`. Default 1 MiB.
    pub readme: u64,
    /// `CHANGELOG.md`. Default 1 MiB.
    pub changelog: u64,
    /// `signature.json`. Default 64 KiB.
    pub signature: u64,
    /// All files together, uncompressed. Default 50 MiB. The decompressed stream (files plus
    /// tar headers) may exceed it by at most [`ArchiveLimits::TAR_OVERHEAD`].
    pub total: u64,
}

impl ArchiveLimits {
    /// Allowance for tar headers, padding and end-of-archive blocks in the decompressed stream.
    pub const TAR_OVERHEAD: u64 = 64 * 1024;

    /// The limit for the entry `name`, if it is a known entry.
    pub(crate) fn for_entry(&self, name: &str) -> Option<u64> {
        match name {
            super::MANIFEST_FILE => Some(self.manifest),
            super::WASM_FILE => Some(self.wasm),
            super::README_FILE => Some(self.readme),
            super::CHANGELOG_FILE => Some(self.changelog),
            super::SIGNATURE_FILE => Some(self.signature),
            _ => None,
        }
    }
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            compressed: 64 * MIB,
            wasm: 48 * MIB,
            manifest: 64 * 1024,
            readme: MIB,
            changelog: MIB,
            signature: 64 * 1024,
            total: 50 * MIB,
        }
    }
}
