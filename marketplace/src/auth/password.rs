//! Passwords: the strength rule, and argon2id hashes in PHC string format computed off the
//! async runtime.
//!
//! The rule: at least [`MIN_LEN`] characters, at most [`MAX_LEN`] bytes, and a strength score
//! of at least [`MIN_SCORE`] (of 4) from `zxcvbn`, Dropbox's estimator, which knows the
//! commonest passwords, words, names, keyboard walks, dates, repeats and sequences, and is told
//! the account's own email and name so a password made of them scores low.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{Error, Result};

/// The shortest password accepted.
pub const MIN_LEN: usize = 10;
/// The longest password accepted (argon2 hashes anything, but a megabyte is an attack).
pub const MAX_LEN: usize = 1024;
/// The least `zxcvbn` score accepted: 3, "safely unguessable" (about 10^8 guesses or more).
pub const MIN_SCORE: u8 = 3;

/// Checks the password rules, naming the field `password`; `user_inputs` are the account's
/// own words (email, name), which a password may not lean on.
///
/// # Errors
///
/// [`Error::BadRequest`] with code `weak_password` or `invalid_body`.
pub fn check_rules(password: &str, user_inputs: &[&str]) -> Result<()> {
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
    // zxcvbn looks at the first 100 characters only, so this is bounded.
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    let score = u8::from(estimate.score());
    if score < MIN_SCORE {
        let advice = estimate
            .feedback()
            .map(|feedback| {
                let mut advice: Vec<String> = feedback
                    .warning()
                    .map(|w| w.to_string())
                    .into_iter()
                    .collect();
                advice.extend(feedback.suggestions().iter().map(ToString::to_string));
                advice.join(" ")
            })
            .unwrap_or_default();
        return Err(Error::bad_request(
            "weak_password",
            format!(
                "field `password` is too easy to guess: its strength is {score} of 4 and at \
                 least {MIN_SCORE} is needed. {advice}"
            )
            .trim_end()
            .to_owned(),
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

/// A hash to verify against when the account does not exist, so that an unknown email costs
/// the same work as a wrong password: one argon2id verification with the same parameters.
/// Computed once per process (the first call waits for it), never per request.
pub async fn dummy_hash() -> Result<String> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async {
            let mut secret = [0u8; 24];
            getrandom::fill(&mut secret).map_err(|e| Error::Internal(format!("random: {e}")))?;
            hash(hex::encode(secret)).await
        })
        .await
        .cloned()
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
    fn refuses_short_common_repetitive_and_personal_passwords() {
        for weak in [
            "short",
            "aaaaaaaaaa",
            "          ",
            "password123",
            "qwertyuiop",
            "1234567890",
            "abcdefghijkl",
            "iloveyou2024",
        ] {
            let refused = check_rules(weak, &[]).unwrap_err();
            assert_eq!(refused.code(), "weak_password", "{weak:?}");
        }
        let personal = check_rules(
            "ada.lovelace@example.com",
            &["ada.lovelace@example.com", "Ada"],
        );
        assert_eq!(personal.unwrap_err().code(), "weak_password");
        let message = check_rules("password123", &[]).unwrap_err().to_string();
        assert!(
            message.contains("field `password`") && message.contains("at least 3"),
            "{message}"
        );
        assert!(check_rules("correct horse battery staple", &[]).is_ok());
        assert_eq!(
            check_rules(&"Xk9#".repeat(300), &[]).unwrap_err().code(),
            "invalid_body"
        );
    }

    #[tokio::test]
    async fn the_dummy_hash_is_made_once_with_the_same_parameters() {
        let first = dummy_hash().await.unwrap();
        assert_eq!(dummy_hash().await.unwrap(), first);
        let real = hash("correct horse battery".to_owned()).await.unwrap();
        let params = |phc: &str| phc.rsplitn(3, '$').nth(2).map(str::to_owned);
        assert_eq!(params(&first), params(&real));
        assert!(!verify(String::new(), first).await);
    }
}
