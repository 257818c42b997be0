//! [`PackageDigest`]: the content address of a package, and the shared SHA-256 digest type.
//!
//! The digest is SHA-256 over a domain-separated (`plinth-package-digest/v1`), length-prefixed
//! encoding of the parsed manifest in canonical form followed by the name and SHA-256 of each
//! content file (`plinth.toml` as raw bytes, `plugin.wasm`, `README.md`, `CHANGELOG.md`; never
//! `signature.json`) in sorted name order. It depends only on content, never on the archive's
//! entry order, timestamps or compression, so the same content has the same digest on any
//! machine.

/// Defines a SHA-256 digest newtype shown as `sha256:<hex>`.
macro_rules! sha256_digest {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw digest bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }

            /// The raw digest bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The lowercase hex of the digest, without the `sha256:` prefix.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "sha256:{}", hex::encode(self.0))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::InvalidValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let invalid = |reason: &str| $crate::error::InvalidValue::new($what, s, reason);
                let hex_part = s
                    .strip_prefix("sha256:")
                    .ok_or_else(|| invalid("expected sha256:<64 hex digits>"))?;
                if hex_part.len() != 64 || hex_part.chars().any(|c| c.is_ascii_uppercase()) {
                    return Err(invalid("expected 64 lowercase hex digits"));
                }
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(hex_part, &mut bytes)
                    .map_err(|_| invalid("expected 64 lowercase hex digits"))?;
                Ok($name(bytes))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use sha256_digest;

use sha2::{Digest, Sha256};

use crate::canonical::Canonical;
use crate::manifest::Manifest;

sha256_digest!(
    /// The content digest of a package (`sha256:<hex>`): what a developer signs and a
    /// marketplace countersigns. See the [module docs](self) for what it covers.
    ///
    /// ```
    /// use plinth_package::PackageDigest;
    /// let hex = "ab".repeat(32);
    /// let d: PackageDigest = format!("sha256:{hex}").parse()?;
    /// assert_eq!(d.to_string(), format!("sha256:{hex}"));
    /// # Ok::<(), plinth_package::Error>(())
    /// ```
    PackageDigest,
    "package digest"
);

/// Domain string of [`PackageDigest`].
const DOMAIN: &str = "plinth-package-digest/v1";

impl PackageDigest {
    /// Computes the digest of a manifest and the package's content files.
    ///
    /// `files` are `(name, bytes)` pairs; `plinth.toml` must be among them as raw bytes. They
    /// are sorted by name here, so their order does not matter.
    pub(crate) fn compute(manifest: &Manifest, files: &[(&str, &[u8])]) -> PackageDigest {
        let mut c = Canonical::new(DOMAIN);
        c.bytes(&manifest.canonical_bytes());
        let mut files: Vec<(&str, [u8; 32])> = files
            .iter()
            .map(|(name, bytes)| (*name, Sha256::digest(bytes).into()))
            .collect();
        files.sort_by(|a, b| a.0.cmp(b.0));
        c.u64(files.len() as u64);
        for (name, hash) in &files {
            c.str(name).bytes(hash);
        }
        PackageDigest(c.sha256())
    }
}
