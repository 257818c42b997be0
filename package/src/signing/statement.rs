//! The marketplace's **state statement**: a signed, expiring account of what must not run
//! (security-yanked versions and blocked plugins) and of the install set, with a sequence
//! number that only grows. Hosts keep the newest statement they have verified, refuse an
//! older one (a replayed or withheld state), raise an alarm once it is past its expiry (the
//! marketplace stopped speaking, or someone is holding its statements back), and refuse to load
//! what it revokes whatever their storage says.
//!
//! The signed message is the domain-separated `plinth-state-statement/v1` ‖ sequence ‖ issued ‖
//! expires ‖ revocations ‖ revocations digest ‖ install-set digest ‖ marketplace keys.
//!
//! ```
//! use plinth_package::SecretKey;
//! use plinth_package::signing::statement::{Revoked, StateStatement};
//! let key = SecretKey::generate()?;
//! let revoked = vec![Revoked { plugin: "acme.bad".into(), version: Some("1.0.0".into()) }];
//! let statement = StateStatement::new(7, 1_700_000_000, 3600, revoked, "sha256:…".into(), vec![key.public_key()]);
//! let signed = statement.sign(&key);
//! let verified = signed.verify(&[key.public_key()])?;
//! assert!(verified.revokes("acme.bad", "1.0.0"));
//! assert!(!verified.revokes("acme.bad", "1.0.1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::{Deserialize, Serialize};

use super::{PublicKey, SecretKey, SignatureValue};
use crate::canonical::Canonical;

/// Domain of the statement message.
const STATEMENT_DOMAIN: &str = "plinth-state-statement/v1";
/// Domain of the revocations digest.
const REVOCATIONS_DOMAIN: &str = "plinth-revocations/v1";

/// Something no host may run: one version of a plugin, or (`version: None`) all of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Revoked {
    /// The plugin id.
    pub plugin: String,
    /// The version; `None` for every version (a blocked plugin).
    pub version: Option<String>,
}

/// What the marketplace states. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateStatement {
    /// Grows by one with every statement; a host never goes back to a lower one.
    pub sequence: u64,
    /// When it was made (Unix seconds).
    pub issued_at: i64,
    /// After this (Unix seconds) a host that has nothing newer raises an alarm.
    pub expires_at: i64,
    /// What must not run, sorted.
    pub revoked: Vec<Revoked>,
    /// `sha256:<hex>` of `revoked`.
    pub revocations_digest: String,
    /// `sha256:<hex>` of the install set (tenant, plugin, version), as the marketplace stores
    /// it.
    pub installs_digest: String,
    /// The marketplace keys whose countersignatures (and statements) hosts trust from now on.
    pub keys: Vec<PublicKey>,
}

/// Why a statement is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// Signed by a key this host does not trust.
    #[error("the statement is signed by key {fingerprint}, which this host does not trust")]
    UntrustedKey {
        /// The key's fingerprint.
        fingerprint: String,
    },
    /// The signature does not verify: the statement was altered.
    #[error("the statement's signature is not valid: it was tampered with")]
    BadSignature,
    /// The revocations digest is not the digest of the revocations listed.
    #[error("the statement's revocations digest does not match its revocations")]
    DigestMismatch,
    /// It names no marketplace key: a host would trust nothing after it.
    #[error("the statement names no marketplace key")]
    NoKeys,
}

/// `sha256:<hex>` of `revoked` (in the order given).
pub fn revocations_digest(revoked: &[Revoked]) -> String {
    let mut c = Canonical::new(REVOCATIONS_DOMAIN);
    c.u64(revoked.len() as u64);
    for item in revoked {
        c.str(&item.plugin).opt_str(item.version.as_deref());
    }
    format!("sha256:{}", hex::encode(c.sha256()))
}

impl StateStatement {
    /// A statement `sequence`, issued at `issued_at` and valid for `valid_for_secs`, revoking
    /// `revoked` (sorted here), over the install set digested as `installs_digest`, naming the
    /// marketplace `keys`.
    pub fn new(
        sequence: u64,
        issued_at: i64,
        valid_for_secs: i64,
        mut revoked: Vec<Revoked>,
        installs_digest: String,
        keys: Vec<PublicKey>,
    ) -> StateStatement {
        revoked.sort();
        revoked.dedup();
        StateStatement {
            sequence,
            issued_at,
            expires_at: issued_at.saturating_add(valid_for_secs),
            revocations_digest: revocations_digest(&revoked),
            revoked,
            installs_digest,
            keys,
        }
    }

    /// Whether it revokes `version` of `plugin` (that version, or the whole plugin).
    pub fn revokes(&self, plugin: &str, version: &str) -> bool {
        self.revoked.iter().any(|item| {
            item.plugin == plugin && item.version.as_deref().is_none_or(|v| v == version)
        })
    }

    /// Whether it is past its expiry at `now` (Unix seconds).
    pub fn expired(&self, now: i64) -> bool {
        now > self.expires_at
    }

    fn message(&self) -> Vec<u8> {
        let mut c = Canonical::new(STATEMENT_DOMAIN);
        c.u64(self.sequence)
            .i64(self.issued_at)
            .i64(self.expires_at)
            .u64(self.revoked.len() as u64);
        for item in &self.revoked {
            c.str(&item.plugin).opt_str(item.version.as_deref());
        }
        c.str(&self.revocations_digest)
            .str(&self.installs_digest)
            .u64(self.keys.len() as u64);
        for key in &self.keys {
            c.bytes(&key.to_bytes());
        }
        c.into_bytes()
    }

    /// This statement signed by `key`.
    pub fn sign(self, key: &SecretKey) -> SignedStatement {
        let signature = key.sign(&self.message());
        SignedStatement {
            statement: self,
            key: key.public_key(),
            signature,
        }
    }
}

/// A statement with its signature, as the marketplace publishes it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedStatement {
    /// What is stated.
    pub statement: StateStatement,
    /// The marketplace key that signed it.
    pub key: PublicKey,
    /// Its signature of the statement's message.
    #[serde(with = "signature_text")]
    pub signature: SignatureValue,
}

impl SignedStatement {
    /// The statement, if it was signed by one of `trusted` and is intact.
    ///
    /// # Errors
    ///
    /// [`StatementError`]: an untrusted key, a bad signature, a revocations digest that does
    /// not match, or no keys named.
    pub fn verify(&self, trusted: &[PublicKey]) -> Result<&StateStatement, StatementError> {
        if !trusted.contains(&self.key) {
            return Err(StatementError::UntrustedKey {
                fingerprint: self.key.fingerprint(),
            });
        }
        if !self
            .key
            .verifies(&self.statement.message(), &self.signature)
        {
            return Err(StatementError::BadSignature);
        }
        if revocations_digest(&self.statement.revoked) != self.statement.revocations_digest {
            return Err(StatementError::DigestMismatch);
        }
        if self.statement.keys.is_empty() {
            return Err(StatementError::NoKeys);
        }
        Ok(&self.statement)
    }
}

/// A signature as its base64 text.
mod signature_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::SignatureValue;

    pub(super) fn serialize<S: Serializer>(
        value: &SignatureValue,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SignatureValue, D::Error> {
        let text = String::deserialize(d)?;
        SignatureValue::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("not the base64 of a 64-byte signature"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revoked(plugin: &str, version: Option<&str>) -> Revoked {
        Revoked {
            plugin: plugin.to_owned(),
            version: version.map(str::to_owned),
        }
    }

    fn statement(key: &SecretKey, sequence: u64) -> StateStatement {
        StateStatement::new(
            sequence,
            1_000,
            60,
            vec![revoked("acme.b", None), revoked("acme.a", Some("1.0.0"))],
            "sha256:00".to_owned(),
            vec![key.public_key()],
        )
    }

    #[test]
    fn a_statement_verifies_only_with_its_key_and_content() -> Result<(), Box<dyn std::error::Error>>
    {
        let key = SecretKey::generate()?;
        let other = SecretKey::generate()?;
        let signed = statement(&key, 3).sign(&key);
        assert_eq!(signed.verify(&[key.public_key()])?.sequence, 3);
        assert!(matches!(
            signed.verify(&[other.public_key()]),
            Err(StatementError::UntrustedKey { .. })
        ));
        // Any change to what is stated breaks the signature.
        let mut replayed = signed.clone();
        replayed.statement.sequence = 4;
        assert_eq!(
            replayed.verify(&[key.public_key()]),
            Err(StatementError::BadSignature)
        );
        let mut withheld = signed.clone();
        withheld.statement.revoked.pop();
        assert_eq!(
            withheld.verify(&[key.public_key()]),
            Err(StatementError::BadSignature)
        );
        // JSON round trip.
        let json = serde_json::to_string(&signed)?;
        let back: SignedStatement = serde_json::from_str(&json)?;
        assert_eq!(back.verify(&[key.public_key()])?, &signed.statement);
        Ok(())
    }

    #[test]
    fn revocations_are_sorted_and_match_by_version_or_plugin()
    -> Result<(), Box<dyn std::error::Error>> {
        let key = SecretKey::generate()?;
        let stated = statement(&key, 1);
        assert_eq!(stated.revoked[0].plugin, "acme.a");
        assert!(stated.revokes("acme.a", "1.0.0") && !stated.revokes("acme.a", "1.0.1"));
        assert!(stated.revokes("acme.b", "9.9.9"));
        assert!(!stated.revokes("acme.c", "1.0.0"));
        assert!(!stated.expired(1_060) && stated.expired(1_061));
        let mut unsigned_change = stated.clone();
        unsigned_change.revoked.clear();
        let signed = unsigned_change.sign(&key);
        assert_eq!(
            signed.verify(&[key.public_key()]),
            Err(StatementError::DigestMismatch)
        );
        Ok(())
    }
}
