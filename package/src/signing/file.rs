//! [`SignatureFile`]: the `signature.json` entry of a package.

use serde::{Deserialize, Serialize};

use super::{PublicKey, SignatureValue};
use crate::digest::PackageDigest;
use crate::error::{ArchiveError, Error, SignatureError};
use crate::id::PluginId;
use crate::permissions::PermissionsDigest;

/// The current `signature.json` format.
const FORMAT: u32 = 1;

/// The content of `signature.json`. Absent from the archive (or both parts `None`) for an
/// unsigned package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// Format version; currently 1.
    pub format: u32,
    /// The developer's signature of the package digest.
    pub developer: Option<DeveloperSignature>,
    /// The marketplace's countersignature, added on approval.
    pub marketplace: Option<Countersignature>,
}

impl Default for SignatureFile {
    fn default() -> Self {
        SignatureFile {
            format: FORMAT,
            developer: None,
            marketplace: None,
        }
    }
}

/// A developer's signature of a package digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeveloperSignature {
    /// The signing key (one registered to the publisher).
    pub key: PublicKey,
    /// The package digest that was signed.
    pub digest: PackageDigest,
    /// Signature of `plinth-developer-signature/v1` ‖ digest.
    pub signature: SignatureValue,
}

/// The marketplace's countersignature of an approved version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Countersignature {
    /// The marketplace key.
    pub key: PublicKey,
    /// The plugin id approved.
    pub plugin: PluginId,
    /// The version approved.
    pub version: semver::Version,
    /// The package digest approved.
    pub digest: PackageDigest,
    /// The permission set approved.
    pub permissions_digest: PermissionsDigest,
    /// When it was approved, in Unix seconds.
    pub signed_at: i64,
    /// Signature over all of the above (see the [module docs](super)).
    pub signature: SignatureValue,
}

impl SignatureFile {
    /// Whether nothing is signed (the file is then left out of the archive).
    pub fn is_empty(&self) -> bool {
        self.developer.is_none() && self.marketplace.is_none()
    }

    /// Parses `signature.json`.
    ///
    /// # Errors
    ///
    /// [`ArchiveError::InvalidSignatureFile`] for malformed JSON, or
    /// [`SignatureError::UnsupportedFormat`] for an unknown format version.
    pub fn from_json(bytes: &[u8]) -> Result<SignatureFile, Error> {
        let file: SignatureFile = serde_json::from_slice(bytes)
            .map_err(|e| ArchiveError::InvalidSignatureFile(e.to_string()))?;
        if file.format != FORMAT {
            return Err(SignatureError::UnsupportedFormat(file.format).into());
        }
        Ok(file)
    }

    /// `signature.json` as pretty JSON with a trailing newline.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] if encoding fails (it does not for these types).
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}
