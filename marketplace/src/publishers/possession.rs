//! Proof of possession of a signing key. A publisher registers a key only by showing that it
//! holds the key's secret: the marketplace issues a challenge (random, bound to the publisher
//! and the key, stored, short-lived), the key signs it
//! ([`plinth_package::SecretKey::prove_possession`]; `plinth key register` does both steps),
//! and the registration redeems the challenge once.
//!
//! Each publisher has at most [`MAX_OPEN_CHALLENGES`] open challenges (a new one replaces the
//! oldest), each valid for [`CHALLENGE_TTL_MS`]; expired ones are removed whenever a challenge
//! is issued.

use plinth_package::{PublicKey, SignatureValue};

use super::Publisher;
use crate::clock::now_ms;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};

/// How long a challenge may be redeemed (10 minutes).
pub const CHALLENGE_TTL_MS: i64 = 10 * 60 * 1000;
/// Most open challenges per publisher.
pub const MAX_OPEN_CHALLENGES: i64 = 16;

/// A challenge to sign with the key it was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The text to sign (64 hex digits).
    pub challenge: String,
    /// The key that must sign it.
    pub public_key: String,
    /// The publisher it registers the key to.
    pub namespace: String,
    /// When it stops being valid (Unix ms).
    pub expires_at: i64,
}

/// What a registration shows: the challenge and the key's signature of it.
#[derive(Debug, Clone, Copy)]
pub struct Proof<'a> {
    /// The challenge, as issued.
    pub challenge: &'a str,
    /// The base64 signature by [`plinth_package::SecretKey::prove_possession`].
    pub signature: &'a str,
}

/// Parses `public_key` (`ed25519:<base64>`), naming the field when it is not one.
///
/// # Errors
///
/// [`Error::BadRequest`] `invalid_public_key`.
pub(crate) fn parse_key(public_key: &str) -> Result<PublicKey> {
    PublicKey::parse(public_key).map_err(|e| {
        Error::bad_request(
            "invalid_public_key",
            format!("field `public_key` is not an ed25519 public key (ed25519:<base64>): {e}"),
        )
    })
}

/// Issues a challenge for registering `public_key` to `publisher`.
///
/// # Errors
///
/// [`Error::BadRequest`] `invalid_public_key`; [`Error::Database`].
pub async fn issue_challenge(
    db: &Db,
    publisher: &Publisher,
    public_key: &str,
) -> Result<Challenge> {
    let key = parse_key(public_key)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("random: {e}")))?;
    let now = now_ms();
    let challenge = Challenge {
        challenge: hex::encode(bytes),
        public_key: key.to_string(),
        namespace: publisher.namespace.clone(),
        expires_at: now + CHALLENGE_TTL_MS,
    };
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM key_challenges WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let open: Vec<String> = sqlx::query_scalar(
        "SELECT challenge FROM key_challenges WHERE publisher_id = $1 \
         ORDER BY created_at DESC, challenge DESC",
    )
    .bind(&publisher.id)
    .fetch_all(&mut *tx)
    .await?;
    let keep = usize::try_from(MAX_OPEN_CHALLENGES - 1).unwrap_or(0);
    for oldest in open.iter().skip(keep) {
        sqlx::query("DELETE FROM key_challenges WHERE challenge = $1")
            .bind(oldest)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO key_challenges (challenge, publisher_id, public_key, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&challenge.challenge)
    .bind(&publisher.id)
    .bind(&challenge.public_key)
    .bind(now)
    .bind(challenge.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(challenge)
}

/// Redeems `proof` for registering `key` to `publisher`, in `tx`: the challenge must be open,
/// issued for this publisher and this key, and signed by the key; it is used up.
///
/// # Errors
///
/// [`Error::BadRequest`] `invalid_challenge` (unknown, expired, used, or issued for another
/// publisher or key), `invalid_body` naming `signature` when it is not base64 of 64 bytes,
/// `bad_proof` when the key did not sign it.
pub(crate) async fn redeem(
    tx: &mut Tx,
    publisher: &Publisher,
    key: &PublicKey,
    proof: Proof<'_>,
) -> Result<()> {
    let open: Option<String> = sqlx::query_scalar(
        "SELECT challenge FROM key_challenges WHERE challenge = $1 AND publisher_id = $2 \
         AND public_key = $3 AND expires_at > $4",
    )
    .bind(proof.challenge)
    .bind(&publisher.id)
    .bind(key.to_string())
    .bind(now_ms())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(challenge) = open else {
        return Err(Error::bad_request(
            "invalid_challenge",
            "field `challenge` is not an open challenge for this publisher and key (unknown, \
             expired or used); ask for a new one with POST /v1/publishers/{ns}/keys/challenges",
        ));
    };
    let signature = SignatureValue::parse(proof.signature).ok_or_else(|| {
        Error::bad_request(
            "invalid_body",
            "field `signature` must be the base64 of a 64-byte ed25519 signature",
        )
    })?;
    if !key.verify_possession(&publisher.namespace, &challenge, &signature) {
        return Err(Error::bad_request(
            "bad_proof",
            format!(
                "field `signature` is not key {}'s signature of the challenge; sign it with the \
                 secret of that key (plinth key register does)",
                key.fingerprint()
            ),
        ));
    }
    sqlx::query("DELETE FROM key_challenges WHERE challenge = $1")
        .bind(&challenge)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
