//! Ed25519 signatures of packages: the developer's signature and the marketplace's
//! countersignature, stored in the package as `signature.json` ([`SignatureFile`]).
//!
//! The developer signs the domain-separated message `plinth-developer-signature/v1` ‖ package
//! digest. On approval the marketplace countersigns `plinth-marketplace-countersignature/v1` ‖
//! plugin id ‖ version ‖ package digest ‖ permissions digest ‖ time. Verification tells apart a
//! missing signature, a signature by another key, a signature that does not match (tampered)
//! and a package whose content changed after signing. A key proves its possession to a
//! marketplace by signing a challenge ([`SecretKey::prove_possession`]).

mod file;
mod keys;
mod package;
mod possession;
pub mod statement;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

pub use file::{Countersignature, DeveloperSignature, SignatureFile};
pub use keys::{PublicKey, SecretKey};
pub use package::countersign;

/// The 64 bytes of an ed25519 signature, serialised as base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignatureValue(pub(crate) [u8; 64]);

impl SignatureValue {
    /// The raw signature bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }

    /// Wraps raw signature bytes.
    pub fn from_bytes(bytes: [u8; 64]) -> SignatureValue {
        SignatureValue(bytes)
    }

    /// Reads the base64 of 64 bytes ([`SignatureValue`]'s `Display`); `None` for anything else.
    pub fn parse(text: &str) -> Option<SignatureValue> {
        let bytes = BASE64.decode(text.trim().as_bytes()).ok()?;
        <[u8; 64]>::try_from(bytes.as_slice())
            .ok()
            .map(SignatureValue)
    }
}

impl fmt::Display for SignatureValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE64.encode(self.0))
    }
}

impl fmt::Debug for SignatureValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureValue({self})")
    }
}

impl Serialize for SignatureValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SignatureValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = BASE64
            .decode(text.as_bytes())
            .map_err(|_| serde::de::Error::custom("a signature must be base64"))?;
        <[u8; 64]>::try_from(bytes.as_slice())
            .map(SignatureValue)
            .map_err(|_| serde::de::Error::custom("a signature must be 64 bytes"))
    }
}
