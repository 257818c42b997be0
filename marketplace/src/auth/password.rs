//! Passwords: argon2id hashes in PHC string format, computed off the async runtime.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{Error, Result};

/// The shortest password accepted.
pub const MIN_LEN: usize = 10;
/// The longest password accepted (argon2 hashes anything, but a megabyte is an attack).
pub const MAX_LEN: usize = 1024;

/// Checks the password rules, naming the field `password`.
///
/// # Errors
///
/// [`Error::BadRequest`] with code `weak_password` or `invalid_body`.
pub fn check_rules(password: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(Error::bad_request(
            "weak_password",
            format!("field `password` must be at least {MIN_LEN} characters; it has {chars}"),
        ));
    }
    if password.len() > MAX_LEN {
        return Err(Error::bad_request(
            "invalid_body",
            format!("field `password` must be at most {MAX_LEN} bytes"),
        ));
    }
    Ok(())
}

/// The argon2id hash of `password`.
///
/// # Errors
///
/// [`Error::Internal`] if the system's random source fails.
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| Error::Internal(format!("random: {e}")))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Internal(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("argon2: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// Whether `password` matches the stored `hash`. A malformed hash never matches.
pub async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash to verify against when the account does not exist, so that an unknown email takes
/// as long to refuse as a wrong password.
pub async fn dummy_hash() -> Result<String> {
    hash("not-a-real-password".to_owned()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_the_right_password_only() {
        let stored = hash("correct horse battery".to_owned()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".to_owned(), stored.clone()).await);
        assert!(!verify("correct horse battery!".to_owned(), stored).await);
        assert!(!verify("x".to_owned(), "garbage".to_owned()).await);
    }

    #[test]
    fn refuses_short_passwords() {
        assert_eq!(check_rules("short").unwrap_err().code(), "weak_password");
        assert!(check_rules("long enough pw").is_ok());
    }
}
