//! Secrets at rest: tenant configuration values a manifest marks `secret` are sealed with
//! XChaCha20-Poly1305 under the marketplace's secrets key before they reach the database, and
//! opened only to hand them to the plugin. No API returns them and no log line contains them.
//!
//! The key is 32 random bytes: from `PLINTH_SECRETS_KEY` (base64) if set, else the file
//! `<data-dir>/secrets.key` (created on first start, mode 0600). A sealed value is
//! `v1:<base64 of 24-byte nonce ‖ ciphertext ‖ tag>`; the install it belongs to is bound in as
//! associated data, so a sealed value copied to another install does not open.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::error::{Error, Result};
use crate::key_file::{self, KeySource};

/// The key file's name inside the data directory.
pub const FILE_NAME: &str = "secrets.key";
/// The environment variable that, when set, holds the key (base64 of 32 bytes).
pub const ENV_VAR: &str = "PLINTH_SECRETS_KEY";

/// Prefix of a sealed value in the current format.
const FORMAT: &str = "v1:";

/// The key secrets are sealed with.
pub struct SecretsKey(XChaCha20Poly1305);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(..)")
    }
}

impl SecretsKey {
    /// The key from 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> SecretsKey {
        SecretsKey(XChaCha20Poly1305::new(&bytes.into()))
    }

    /// A new random key; returns it with its base64 form (for a key file or the env var).
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the system's random source fails.
    pub fn generate() -> Result<(SecretsKey, String)> {
        let (bytes, text) = key_file::generate()?;
        Ok((SecretsKey::from_bytes(bytes), text))
    }

    /// The key in base64 text (as in the key file or the env var).
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if it is not base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<SecretsKey> {
        key_file::parse("the secrets key", text).map(SecretsKey::from_bytes)
    }

    /// The key from [`ENV_VAR`] if set, else `<data_dir>/secrets.key`, created if missing.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the key cannot be read, parsed or created.
    pub fn load_or_create(data_dir: &Path) -> Result<SecretsKey> {
        key_file::load_or_create(KeySource {
            what: "the secrets key",
            env_var: ENV_VAR,
            path: &data_dir.join(FILE_NAME),
        })
        .map(SecretsKey::from_bytes)
    }

    /// Seals `plaintext` for the owner `context` (e.g. the install id).
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the random source or the cipher fails.
    pub fn seal(&self, context: &str, plaintext: &str) -> Result<String> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| Error::Internal(format!("random: {e}")))?;
        let sealed = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal("sealing a secret failed".to_owned()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{FORMAT}{}", STANDARD.encode(bytes)))
    }

    /// Opens a value [`SecretsKey::seal`] made for the same `context`.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the value is malformed, was sealed with another key or for
    /// another context, or was tampered with.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String> {
        let refused = || Error::Internal("a stored secret does not open with this key".to_owned());
        let encoded = sealed.strip_prefix(FORMAT).ok_or_else(refused)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| refused())?;
        if bytes.len() < 24 {
            return Err(refused());
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let plaintext = self
            .0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| refused())?;
        String::from_utf8(plaintext).map_err(|_| refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_for_the_same_key_and_context() {
        let (key, _) = SecretsKey::generate().unwrap();
        let sealed = key.seal("install-1", "hunter2-webhook").unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            key.seal("install-1", "hunter2-webhook").unwrap(),
            "nonces differ"
        );
        assert_eq!(key.open("install-1", &sealed).unwrap(), "hunter2-webhook");
        assert!(
            key.open("install-2", &sealed).is_err(),
            "bound to its install"
        );
        let (other, _) = SecretsKey::generate().unwrap();
        assert!(
            other.open("install-1", &sealed).is_err(),
            "bound to its key"
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            key.open("install-1", &String::from_utf8(tampered).unwrap())
                .is_err()
        );
        assert!(key.open("install-1", "plain text").is_err());
    }

    #[test]
    fn the_key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretsKey::load_or_create(dir.path()).unwrap();
        let sealed = first.seal("x", "value").unwrap();
        let second = SecretsKey::load_or_create(dir.path()).unwrap();
        assert_eq!(second.open("x", &sealed).unwrap(), "value");
        assert!(SecretsKey::parse("c2hvcnQ=").is_err());
    }
}
