//! Accounts: sign-up, log-in and log-out, platform roles, and the first operator.
//!
//! Neither sign-up nor log-in tells a stranger whether an email has an account. Log-in answers
//! an unknown email and a wrong password with the same 401 after the same work (one argon2id
//! verification, against a dummy hash made once per process for an unknown email). Sign-up with
//! an email that has an account answers exactly as a fresh sign-up would (201 with an id,
//! after hashing the password) but creates nothing and changes nothing; the attempt is logged
//! for the operator. Both are throttled per client address, log-in per account too
//! ([`crate::auth::throttle`]).

mod routes;

pub(crate) use routes::routes;

use std::net::IpAddr;

use sqlx::Row;

use crate::auth::token::{self, TokenKind};
use crate::auth::{GlobalRole, password};
use crate::clock::now_ms;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::id::new_id;
use crate::state::AppState;

/// A user as stored.
#[derive(Debug, Clone)]
pub struct User {
    /// The user's id.
    pub id: String,
    /// The user's email, lowercased.
    pub email: String,
    /// The user's display name.
    pub name: String,
}

/// Normalises and checks an email address, naming the field `email`.
///
/// # Errors
///
/// [`Error::BadRequest`] with code `invalid_email`.
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@')
                && !domain.starts_with('.') && !domain.ends_with('.'));
    if valid {
        Ok(email)
    } else {
        Err(Error::bad_request(
            "invalid_email",
            format!("field `email` is not an email address: {email:?}"),
        ))
    }
}

/// Creates a user, as a sign-up from `client` (when known). An email that has an account
/// already gets the same answer as a fresh one (a [`User`] with a new id) with nothing stored.
///
/// # Errors
///
/// [`Error::TooManyAttempts`] when the client address is over its limit;
/// [`Error::BadRequest`] for an invalid email or name, or a password that breaks the rules
/// (`weak_password`).
pub async fn sign_up(
    state: &AppState,
    client: Option<IpAddr>,
    email: &str,
    password_text: &str,
    name: &str,
) -> Result<User> {
    state.throttle().from_address(client)?;
    let email = normalize_email(email)?;
    let name = crate::display_name::checked(name)?;
    password::check_rules(password_text, &[&email, name])?;
    let hash = password::hash(password_text.to_owned()).await?;
    let user = User {
        id: new_id(),
        email,
        name: name.to_owned(),
    };
    let inserted = sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(&user.name)
    .bind(&hash)
    .bind(now_ms())
    .execute(state.db().pool())
    .await
    .map_err(Error::from);
    match inserted {
        Ok(_) => {
            tracing::info!(user = %user.id, "account created");
            Ok(user)
        }
        Err(e) if e.is_unique_violation() => {
            // The same answer as for a fresh email, so sign-up cannot probe for accounts.
            tracing::info!(
                answered_id = %user.id,
                "sign-up with the email of an existing account; nothing created"
            );
            Ok(user)
        }
        Err(e) => Err(e),
    }
}

/// Checks `email` and `password`, as a log-in from `client` (when known), and opens a session
/// of the settings' length; returns the token and its expiry (Unix ms).
///
/// # Errors
///
/// [`Error::TooManyAttempts`] when the account or the address is over its limit (no password
/// is checked then); [`Error::Unauthenticated`] if the email is unknown or the password wrong
/// (the same error, after the same work, for both).
pub async fn log_in(
    state: &AppState,
    client: Option<IpAddr>,
    email: &str,
    password_text: &str,
) -> Result<(String, i64)> {
    state.throttle().log_in(client, email)?;
    let db = state.db();
    let email = email.trim().to_lowercase();
    let row = sqlx::query("SELECT id, password_hash FROM users WHERE email = $1")
        .bind(&email)
        .fetch_optional(db.pool())
        .await?;
    let (user_id, stored) = match row {
        Some(row) => (
            Some(row.try_get::<String, _>("id")?),
            row.try_get("password_hash")?,
        ),
        None => (None, password::dummy_hash().await?),
    };
    state.metrics().count_password_check();
    let matches = password::verify(password_text.to_owned(), stored).await;
    let Some(user_id) = user_id.filter(|_| matches) else {
        return Err(Error::Unauthenticated(
            "the email or the password is wrong".to_owned(),
        ));
    };
    let expires_at = now_ms().saturating_add(state.settings().session_ttl_ms);
    let token = issue_token(
        db,
        TokenKind::Session,
        &user_id,
        "session",
        Some(expires_at),
    )
    .await?;
    Ok((token, expires_at))
}

/// Stores a new token of `kind` for user `user_id` and returns its secret.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn issue_token(
    db: &Db,
    kind: TokenKind,
    user_id: &str,
    name: &str,
    expires_at: Option<i64>,
) -> Result<String> {
    let (secret, hash) = token::generate(kind)?;
    sqlx::query(
        "INSERT INTO tokens (id, token_hash, kind, user_id, name, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(hash)
    .bind(kind.as_str())
    .bind(user_id)
    .bind(name)
    .bind(now_ms())
    .bind(expires_at)
    .execute(db.pool())
    .await?;
    Ok(secret)
}

/// Revokes token `token_id` (idempotent).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn revoke_token(db: &Db, token_id: &str) -> Result<()> {
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(token_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Replaces the platform roles of user `user_id`.
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown user; [`Error::Database`].
pub async fn set_roles(
    db: &Db,
    actor: &crate::audit::Actor,
    user_id: &str,
    roles: &[GlobalRole],
) -> Result<()> {
    let mut tx = db.begin().await?;
    let exists = sqlx::query("SELECT id FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(Error::not_found(format!("account {user_id}")));
    }
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    for role in &roles {
        sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
            .bind(user_id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
    }
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor: actor.clone(),
            action: "account.roles_set",
            tenant_id: None,
            subject: format!("account:{user_id}"),
            details: serde_json::json!({
                "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The user `user_id`.
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown user.
pub async fn user(db: &Db, user_id: &str) -> Result<User> {
    let row = sqlx::query("SELECT id, email, name FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| Error::not_found(format!("account {user_id}")))?;
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
    })
}

/// What `plinth admin bootstrap` made: the operator and its API key.
#[derive(Debug)]
pub struct Bootstrap {
    /// The operator's account.
    pub user: User,
    /// The operator's API key (shown once).
    pub token: String,
}

/// Creates the first operator unless an operator exists. It acts through the returned API key;
/// with a `password` it can also log in (the web console's log-in page), without one it cannot.
///
/// # Errors
///
/// [`Error::Conflict`] (`operator_exists`) if there is an operator already;
/// [`Error::BadRequest`] for an invalid email or a password that breaks the rules.
pub async fn bootstrap_operator(
    db: &Db,
    email: &str,
    name: &str,
    password_text: Option<&str>,
) -> Result<Bootstrap> {
    let email = normalize_email(email)?;
    let name = crate::display_name::checked(name)?;
    // '!' matches no hash: an account without a password cannot log in.
    let password_hash = match password_text {
        Some(text) => {
            password::check_rules(text, &[&email, name])?;
            password::hash(text.to_owned()).await?
        }
        None => "!".to_owned(),
    };
    // Reads, then writes: `begin` takes SQLite's write lock first, so a server writing at the
    // same time (housekeeping at start) makes this wait rather than fail.
    let mut tx = db.begin().await?;
    let existing = sqlx::query("SELECT user_id FROM user_roles WHERE role = 'operator' LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?;
    if existing.is_some() {
        return Err(Error::conflict(
            "operator_exists",
            "an operator exists already; bootstrap runs once per installation",
        ));
    }
    let user = User {
        id: new_id(),
        email,
        name: name.to_owned(),
    };
    let now = now_ms();
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(&user.name)
    .bind(&password_hash)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, 'operator')")
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
    let (token, hash) = token::generate(TokenKind::UserKey)?;
    sqlx::query(
        "INSERT INTO tokens (id, token_hash, kind, user_id, name, created_at) \
         VALUES ($1, $2, $3, $4, 'bootstrap', $5)",
    )
    .bind(new_id())
    .bind(hash)
    .bind(TokenKind::UserKey.as_str())
    .bind(&user.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Bootstrap { user, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email(" Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert_eq!(
                normalize_email(bad).unwrap_err().code(),
                "invalid_email",
                "{bad}"
            );
        }
    }
}
