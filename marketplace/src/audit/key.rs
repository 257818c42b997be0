//! The audit key: what makes the chain's seals unforgeable from inside the database.
//!
//! The hash chain ([`super::chain`]) proves that entries follow one another, but anyone who can
//! write the database could edit an entry and recompute every later hash. So each entry also
//! carries a **seal**, HMAC-SHA256 of its hash under this key, and the log's head carries one of
//! its position; the key never enters the database. Rewriting the tail, however carefully the
//! hashes are recomputed, leaves seals that do not match; only truncating the log back to a head
//! someone saved earlier goes unseen by the log alone.
//!
//! The key is 32 random bytes: from `PLINTH_AUDIT_KEY` (base64) if set, else the file
//! `<data-dir>/audit.key` (created on first start, mode 0600). Every process writing one
//! database must use the same key, and `plinth audit verify` needs it too.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::key_file::{self, KeySource};

type HmacSha256 = Hmac<Sha256>;

/// The key file's name inside the data directory.
pub const FILE_NAME: &str = "audit.key";
/// The environment variable that, when set, holds the key (base64 of 32 bytes).
pub const ENV_VAR: &str = "PLINTH_AUDIT_KEY";

/// Domain separation of an entry's seal.
const ENTRY_CONTEXT: &[u8] = b"plinth-audit-entry-seal-v1";
/// Domain separation of the head's seal.
const HEAD_CONTEXT: &[u8] = b"plinth-audit-head-seal-v1";

/// The key audit entries are sealed with.
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

fn source(path: &Path) -> KeySource<'_> {
    KeySource {
        what: "the audit key",
        env_var: ENV_VAR,
        path,
    }
}

impl AuditKey {
    /// The key from 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> AuditKey {
        AuditKey(bytes)
    }

    /// A new random key with its base64 form (for a key file or the env var).
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the system's random source fails.
    pub fn generate() -> Result<(AuditKey, String)> {
        let (bytes, text) = key_file::generate()?;
        Ok((AuditKey(bytes), text))
    }

    /// The key in base64 text.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if it is not base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<AuditKey> {
        key_file::parse("the audit key", text).map(AuditKey)
    }

    /// The key from [`ENV_VAR`] if set, else `<data_dir>/audit.key`, created if missing.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the key cannot be read, parsed or created.
    pub fn load_or_create(data_dir: &Path) -> Result<AuditKey> {
        key_file::load_or_create(source(&data_dir.join(FILE_NAME))).map(AuditKey)
    }

    /// The key from [`ENV_VAR`] if set, else `<data_dir>/audit.key`; never creates one.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if there is none, or it cannot be read or parsed.
    pub fn load(data_dir: &Path) -> Result<AuditKey> {
        let path = data_dir.join(FILE_NAME);
        key_file::load(source(&path))?.map(AuditKey).ok_or_else(|| {
            Error::Internal(format!(
                "no audit key: set {ENV_VAR} or keep the key file {} that plinth serve created",
                path.display()
            ))
        })
    }

    fn mac(&self, context: &[u8]) -> Result<HmacSha256> {
        let mut mac = HmacSha256::new_from_slice(&self.0)
            .map_err(|e| Error::Internal(format!("audit key: {e}")))?;
        mac.update(context);
        Ok(mac)
    }

    fn entry_mac(&self, hash: &str) -> Result<HmacSha256> {
        let mut mac = self.mac(ENTRY_CONTEXT)?;
        mac.update(hash.as_bytes());
        Ok(mac)
    }

    fn head_mac(&self, seq: i64, hash: &str) -> Result<HmacSha256> {
        let mut mac = self.mac(HEAD_CONTEXT)?;
        mac.update(&seq.to_be_bytes());
        mac.update(hash.as_bytes());
        Ok(mac)
    }

    /// The seal of the entry whose hash is `hash`, lower-case hex.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the MAC cannot be keyed (never, for HMAC).
    pub fn seal_entry(&self, hash: &str) -> Result<String> {
        Ok(hex::encode(self.entry_mac(hash)?.finalize().into_bytes()))
    }

    /// The seal of a head at entry `seq` with hash `hash`, lower-case hex.
    ///
    /// # Errors
    ///
    /// As [`AuditKey::seal_entry`].
    pub fn seal_head(&self, seq: i64, hash: &str) -> Result<String> {
        Ok(hex::encode(
            self.head_mac(seq, hash)?.finalize().into_bytes(),
        ))
    }

    /// Whether `seal` is the seal of the entry whose hash is `hash` (compared in constant time).
    pub fn entry_sealed(&self, hash: &str, seal: &str) -> bool {
        matches_seal(self.entry_mac(hash), seal)
    }

    /// Whether `seal` is the seal of the head at `seq` with `hash`.
    pub fn head_sealed(&self, seq: i64, hash: &str, seal: &str) -> bool {
        matches_seal(self.head_mac(seq, hash), seal)
    }
}

fn matches_seal(mac: Result<HmacSha256>, seal: &str) -> bool {
    match (mac, hex::decode(seal)) {
        (Ok(mac), Ok(bytes)) => mac.verify_slice(&bytes).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_depend_on_the_key_and_what_they_seal() {
        let (key, text) = AuditKey::generate().unwrap();
        let (other, _) = AuditKey::generate().unwrap();
        let seal = key.seal_entry("abc").unwrap();
        assert!(key.entry_sealed("abc", &seal));
        assert!(!key.entry_sealed("abd", &seal));
        assert!(!other.entry_sealed("abc", &seal));
        assert!(!key.entry_sealed("abc", "zz"));
        assert!(AuditKey::parse(&text).unwrap().entry_sealed("abc", &seal));
        let head = key.seal_head(3, "abc").unwrap();
        assert!(key.head_sealed(3, "abc", &head));
        assert!(!key.head_sealed(2, "abc", &head));
        // An entry's seal is not a head's, whatever the fields.
        assert_ne!(head, seal);
    }

    #[test]
    fn load_never_creates_a_key() {
        let dir = tempfile::tempdir().unwrap();
        if std::env::var(ENV_VAR).is_ok() {
            return;
        }
        assert!(AuditKey::load(dir.path()).is_err());
        let created = AuditKey::load_or_create(dir.path()).unwrap();
        let loaded = AuditKey::load(dir.path()).unwrap();
        let seal = created.seal_entry("h").unwrap();
        assert!(loaded.entry_sealed("h", &seal));
    }
}
