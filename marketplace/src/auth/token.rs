//! Bearer tokens: 32 random bytes, shown once, stored only as their sha256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A log-in session of a user; expires.
    Session,
    /// A user's long-lived API key (the operator's bootstrap key is one).
    UserKey,
    /// A tenant's API key: sends events and calls plugins for that tenant.
    TenantKey,
    /// A publisher's API key: submits packages for that publisher (e.g. from CI).
    PublisherKey,
}

impl TokenKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::UserKey => "user_key",
            TokenKind::TenantKey => "tenant_key",
            TokenKind::PublisherKey => "publisher_key",
        }
    }

    /// The kind stored as `name`, if any.
    pub fn parse(name: &str) -> Option<TokenKind> {
        Some(match name {
            "session" => TokenKind::Session,
            "user_key" => TokenKind::UserKey,
            "tenant_key" => TokenKind::TenantKey,
            "publisher_key" => TokenKind::PublisherKey,
            _ => return None,
        })
    }

    /// The visible prefix of tokens of this kind, so a leaked one is recognisable.
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Session => "plt_",
            TokenKind::UserKey => "plu_",
            TokenKind::TenantKey => "plk_",
            TokenKind::PublisherKey => "plp_",
        }
    }
}

/// A new token of `kind`: the secret to show once, and the hash to store.
///
/// # Errors
///
/// [`Error::Internal`] if the system's random source fails.
pub fn generate(kind: TokenKind) -> Result<(String, String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("random: {e}")))?;
    let secret = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes));
    let hashed = hash(&secret);
    Ok((secret, hashed))
}

/// The stored form of `secret`: hex sha256.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_consistently() {
        let (a, a_hash) = generate(TokenKind::Session).unwrap();
        let (b, _) = generate(TokenKind::Session).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("plt_"));
        assert_eq!(hash(&a), a_hash);
        assert_eq!(a_hash.len(), 64);
        for kind in ["session", "user_key", "tenant_key", "publisher_key"] {
            assert_eq!(TokenKind::parse(kind).map(TokenKind::as_str), Some(kind));
        }
    }
}
