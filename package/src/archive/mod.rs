//! The `.plinth` package: [`Package`] in memory, written deterministically and read
//! defensively.
//!
//! A package is a gzip'd ustar archive holding exactly `plinth.toml`, `plugin.wasm`, optionally
//! `README.md` and `CHANGELOG.md`, and `signature.json` when signed. Writing is deterministic
//! (fixed entry order, mtime 0, mode 0644, uid/gid 0, a fixed gzip header). Reading refuses
//! absolute paths, `..`, links and other non-regular entries, duplicates, unknown names,
//! anything past the [`ArchiveLimits`] (checked from headers before allocating and enforced
//! while reading), a non-canonical gzip header, a bad CRC32 or length, trailing bytes, and
//! set padding bits at the end of the deflate stream.
//!
//! Integrity: the gzip header is fixed, the CRC32 and length cover the decompressed tar, and
//! the digest and signatures cover the content, so any change to what a package holds is
//! detected, as is any change to the header or trailer. The up-to-7 padding bits that end the
//! deflate stream (in the byte just before the trailer), which decoders ignore, must be zero
//! as the writer leaves them: setting one gives
//! [`ArchiveError::NonCanonicalDeflatePadding`](crate::ArchiveError::NonCanonicalDeflatePadding).
//!
//! Not every change to the compressed bytes is detected, though: deflate is not a canonical
//! encoding, and some single-bit changes inside the stream re-encode exactly the same tar,
//! for example the padding bits after a stored block's header (decoders skip them), or a
//! match whose distance code becomes another distance that copies the same bytes, as inside
//! a run of zeros. Such a package reads as the same package, with the same digest and valid
//! signatures; only compressing the content again and comparing would tell it apart.

mod limits;
mod read;
mod write;

pub use limits::ArchiveLimits;

use crate::digest::PackageDigest;
use crate::error::Error;
use crate::manifest::Manifest;
use crate::signing::SignatureFile;

/// Name of the manifest entry.
pub const MANIFEST_FILE: &str = "plinth.toml";
/// Name of the component entry.
pub const WASM_FILE: &str = "plugin.wasm";
/// Name of the optional readme entry.
pub const README_FILE: &str = "README.md";
/// Name of the optional changelog entry.
pub const CHANGELOG_FILE: &str = "CHANGELOG.md";
/// Name of the signature entry.
pub const SIGNATURE_FILE: &str = "signature.json";

/// A plugin package in memory.
///
/// ```
/// use plinth_package::{Package, SecretKey};
/// # let manifest = "[plugin]\nid = \"acme.hello\"\nversion = \"1.0.0\"\nname = \"Hello\"\n\
/// #     description = \"Hi.\"\nlicense = \"MIT\"\napi = \"^0.1\"\n";
/// let wasm = b"\0asm\x0d\0\x01\0".to_vec(); // an (empty) component
/// let mut package = Package::new(manifest.to_owned(), wasm, None, None)?;
/// let key = SecretKey::generate()?;
/// package.sign(&key);
/// let bytes = package.to_bytes()?;
/// let read = Package::from_bytes(&bytes)?;
/// read.verify_developer(&key.public_key())?;
/// assert_eq!(read.digest(), package.digest());
/// assert_eq!(package.file_name(), "acme.hello-1.0.0.plinth");
/// # Ok::<(), plinth_package::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The parsed `plinth.toml`.
    pub manifest: Manifest,
    /// `plinth.toml` exactly as written (its bytes are covered by the digest).
    pub manifest_toml: String,
    /// `plugin.wasm`.
    pub wasm: Vec<u8>,
    /// `README.md`, if any.
    pub readme: Option<String>,
    /// `CHANGELOG.md`, if any.
    pub changelog: Option<String>,
    /// `signature.json` (empty for an unsigned package).
    pub signature: SignatureFile,
}

impl Package {
    /// An unsigned package from its parts; parses the manifest.
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] if `manifest_toml` is not a valid `plinth.toml`.
    pub fn new(
        manifest_toml: String,
        wasm: Vec<u8>,
        readme: Option<String>,
        changelog: Option<String>,
    ) -> Result<Package, Error> {
        Ok(Package {
            manifest: Manifest::parse(&manifest_toml)?,
            manifest_toml,
            wasm,
            readme,
            changelog,
            signature: SignatureFile::default(),
        })
    }

    /// The content digest (see [`PackageDigest`]); the signature does not affect it.
    pub fn digest(&self) -> PackageDigest {
        PackageDigest::compute(&self.manifest, &self.content_files())
    }

    /// `<id>-<version>.plinth`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}.plinth",
            self.manifest.plugin.id, self.manifest.plugin.version
        )
    }

    /// The content files (everything but `signature.json`) as `(name, bytes)`, in archive order.
    pub(crate) fn content_files(&self) -> Vec<(&'static str, &[u8])> {
        let mut files = vec![
            (MANIFEST_FILE, self.manifest_toml.as_bytes()),
            (WASM_FILE, self.wasm.as_slice()),
        ];
        if let Some(readme) = &self.readme {
            files.push((README_FILE, readme.as_bytes()));
        }
        if let Some(changelog) = &self.changelog {
            files.push((CHANGELOG_FILE, changelog.as_bytes()));
        }
        files
    }
}
