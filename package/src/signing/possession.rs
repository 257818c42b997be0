//! Proof of possession of a signing key: a marketplace registers a key to a publisher only
//! when the key has signed a challenge the marketplace issued for that publisher and that key.
//!
//! The signed message is the domain-separated `plinth-key-possession/v1` ‖ namespace ‖ public
//! key ‖ challenge, so a proof made for one publisher (or one key, or one challenge) proves
//! nothing for another.
//!
//! ```
//! use plinth_package::SecretKey;
//! let key = SecretKey::generate()?;
//! let proof = key.prove_possession("acme", "3f9c…");
//! assert!(key.public_key().verify_possession("acme", "3f9c…", &proof));
//! assert!(!key.public_key().verify_possession("globex", "3f9c…", &proof));
//! # Ok::<(), plinth_package::Error>(())
//! ```

use super::{PublicKey, SecretKey, SignatureValue};
use crate::canonical::Canonical;

/// Domain of the proof-of-possession message.
const POSSESSION_DOMAIN: &str = "plinth-key-possession/v1";

fn possession_message(namespace: &str, key: &PublicKey, challenge: &str) -> Vec<u8> {
    let mut c = Canonical::new(POSSESSION_DOMAIN);
    c.str(namespace).bytes(&key.to_bytes()).str(challenge);
    c.into_bytes()
}

impl SecretKey {
    /// This key's signature of `challenge`, issued by a marketplace for registering the key to
    /// publisher `namespace`.
    pub fn prove_possession(&self, namespace: &str, challenge: &str) -> SignatureValue {
        self.sign(&possession_message(
            namespace,
            &self.public_key(),
            challenge,
        ))
    }
}

impl PublicKey {
    /// Whether `proof` is this key's signature of `challenge` for publisher `namespace` (see
    /// [`SecretKey::prove_possession`]).
    pub fn verify_possession(
        &self,
        namespace: &str,
        challenge: &str,
        proof: &SignatureValue,
    ) -> bool {
        self.verifies(&possession_message(namespace, self, challenge), proof)
    }
}
