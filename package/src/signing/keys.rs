//! Ed25519 keys: [`SecretKey`] (a developer's or the marketplace's) and [`PublicKey`].

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::SignatureValue;
use crate::error::{Error, KeyError};

/// Prefix of a secret key file's one line.
const SECRET_PREFIX: &str = "ed25519-secret:";
/// Prefix of a public key's one line.
const PUBLIC_PREFIX: &str = "ed25519:";

/// An ed25519 signing key. Its file form is one line, `ed25519-secret:<base64 of the 32-byte
/// seed>`; keep it private (mode 0600). `Debug` never shows the key.
///
/// ```
/// use plinth_package::{PublicKey, SecretKey};
/// let secret = SecretKey::generate()?;
/// let again = SecretKey::parse(&secret.to_file_string())?;
/// assert_eq!(again.public_key(), secret.public_key());
/// let public = PublicKey::parse(&secret.public_key().to_string())?;
/// assert_eq!(public, secret.public_key());
/// # Ok::<(), plinth_package::Error>(())
/// ```
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A new random key from the operating system's generator.
    ///
    /// # Errors
    ///
    /// [`Error::Random`] if the operating system cannot provide randomness.
    pub fn generate() -> Result<SecretKey, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(Error::Random)?;
        Ok(SecretKey::from_seed(seed))
    }

    /// The key for a 32-byte seed (for tests and key derivation).
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    /// Parses the one line of a secret key file (surrounding whitespace is ignored).
    ///
    /// # Errors
    ///
    /// [`Error::Key`] if the prefix, base64 or length is wrong.
    pub fn parse(text: &str) -> Result<SecretKey, Error> {
        let seed = decode_32(text, SECRET_PREFIX)?;
        Ok(SecretKey::from_seed(seed))
    }

    /// The one line of the secret key file, without a trailing newline.
    pub fn to_file_string(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(self.0.to_bytes()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> SignatureValue {
        SignatureValue(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public_key().fingerprint())
    }
}

/// An ed25519 public key, written as one line `ed25519:<base64 of the 32 bytes>` (the content
/// of a `.pub` file and the form the API takes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses `ed25519:<base64>` (surrounding whitespace is ignored).
    ///
    /// # Errors
    ///
    /// [`Error::Key`] if the prefix, base64 or length is wrong, or the bytes are not a point.
    pub fn parse(text: &str) -> Result<PublicKey, Error> {
        Ok(Self::parse_inner(text)?)
    }

    fn parse_inner(text: &str) -> Result<PublicKey, KeyError> {
        let bytes = decode_32(text, PUBLIC_PREFIX)?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| KeyError::NotOnCurve)
    }

    /// The raw 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// A short id for the key: the first 16 hex digits of the SHA-256 of its bytes.
    pub fn fingerprint(&self) -> String {
        let hash = Sha256::digest(self.0.as_bytes());
        hex::encode(&hash[..8])
    }

    /// Whether `signature` is this key's signature of `message` (strict verification).
    pub(crate) fn verifies(&self, message: &[u8], signature: &SignatureValue) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0.verify_strict(message, &signature).is_ok()
    }
}

fn decode_32(text: &str, prefix: &'static str) -> Result<[u8; 32], KeyError> {
    let body = text
        .trim()
        .strip_prefix(prefix)
        .ok_or(KeyError::MissingPrefix(prefix))?;
    let bytes = BASE64.decode(body).map_err(|_| KeyError::Base64)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Length(bytes.len()))
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", BASE64.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PublicKey::parse(s)
    }
}

impl TryFrom<String> for PublicKey {
    type Error = KeyError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        PublicKey::parse_inner(&s)
    }
}

impl From<PublicKey> for String {
    fn from(k: PublicKey) -> String {
        k.to_string()
    }
}
