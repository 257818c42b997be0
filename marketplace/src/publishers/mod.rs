//! Publishers: a namespace plugin ids live in, its members, its signing keys (registered with a
//! proof of possession: `possession`) and its API keys; an operator's [`waiver`] of review for
//! its private plugins.
//!
//! Every publisher route starts from [`access`] (or [`membership`] when the caller's role
//! matters): a publisher the caller is not a member of answers 404, so that namespaces in use
//! by others do not leak through this API.

mod keys;
mod possession;
mod routes;
pub mod waiver;

pub use keys::{SigningKey, add_key, keys, keys_by_state, revoke_key};
pub use possession::{CHALLENGE_TTL_MS, Challenge, MAX_OPEN_CHALLENGES, Proof, issue_challenge};
pub(crate) use routes::routes;

use sqlx::{FromRow, Row};

use crate::accounts::normalize_email;
use crate::audit::Actor;
use crate::auth::token::{self, TokenKind};
use crate::auth::{Caller, Principal};
use crate::clock::now_ms;
use crate::db::{Db, Tx};
use crate::display_name;
use crate::error::{ConflictOnUnique, Error, Result};
use crate::id::new_id;

/// A publisher as stored.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct Publisher {
    /// The publisher's id.
    pub id: String,
    /// The namespace: plugin ids of this publisher are `<namespace>.<name>`.
    pub namespace: String,
    /// The display name.
    pub name: String,
    /// When it was created (Unix ms).
    pub created_at: i64,
}

/// The role of a member within a publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    /// Manages members and keys, and publishes.
    Owner,
    /// Publishes and manages signing keys.
    Member,
}

impl MemberRole {
    /// The role's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Owner => "owner",
            MemberRole::Member => "member",
        }
    }

    /// The role called `name`.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] (`invalid_role`) naming the field `role`.
    pub fn parse(name: &str) -> Result<MemberRole> {
        match name {
            "owner" => Ok(MemberRole::Owner),
            "member" => Ok(MemberRole::Member),
            other => Err(Error::bad_request(
                "invalid_role",
                format!("field `role` must be \"owner\" or \"member\", not {other:?}"),
            )),
        }
    }
}

/// A caller's standing within a publisher, as [`membership`] found it.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The publisher.
    pub publisher: Publisher,
    /// The caller's role (a publisher API key acts as a member).
    pub role: MemberRole,
    /// The user the caller acts as (the key's creator for a publisher API key).
    pub user_id: String,
    /// Whether the caller is a publisher API key rather than a user.
    pub via_api_key: bool,
}

/// Checks a namespace: 2–40 characters of `[a-z0-9-]`, starting with a letter, not ending
/// with `-`, and not reserved.
///
/// # Errors
///
/// [`Error::BadRequest`] with `invalid_namespace` or `namespace_reserved`.
pub fn check_namespace(namespace: &str, reserved: &[String]) -> Result<()> {
    let len = namespace.chars().count();
    let invalid = |why: &str| {
        Err(Error::bad_request(
            "invalid_namespace",
            format!("field `namespace` {why}: {namespace:?}"),
        ))
    };
    if !(2..=40).contains(&len) {
        return invalid("must be 2 to 40 characters long");
    }
    if !namespace.starts_with(|c: char| c.is_ascii_lowercase()) {
        return invalid("must start with a lowercase letter");
    }
    if !namespace
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return invalid("may hold only lowercase letters, digits and '-'");
    }
    if namespace.ends_with('-') {
        return invalid("must not end with '-'");
    }
    if reserved.iter().any(|r| r == namespace) {
        return Err(Error::bad_request(
            "namespace_reserved",
            format!("the namespace {namespace:?} is reserved; choose another"),
        ));
    }
    Ok(())
}

/// Creates a publisher with `owner_id` as its owner.
///
/// # Errors
///
/// [`Error::BadRequest`] for an invalid or reserved namespace or a name that is empty, too
/// long or holds invisible or control characters; [`Error::Conflict`] `namespace_taken` if the
/// namespace is in use, `namespace_lookalike` if it looks like one in use or reserved (see
/// [`plinth_package::lookalike`]).
pub async fn create(
    db: &Db,
    owner_id: &str,
    namespace: &str,
    name: &str,
    reserved: &[String],
) -> Result<Publisher> {
    check_namespace(namespace, reserved)?;
    let name = display_name::checked(name)?;
    let publisher = Publisher {
        id: new_id(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        created_at: now_ms(),
    };
    let mut tx = db.begin().await?;
    let taken: Vec<String> = sqlx::query_scalar("SELECT namespace FROM publishers")
        .fetch_all(&mut *tx)
        .await?;
    let all = taken.iter().chain(reserved).map(String::as_str);
    if let Some(other) = plinth_package::lookalike::look_alike(namespace, all) {
        return Err(Error::conflict(
            "namespace_lookalike",
            format!(
                "the namespace {namespace:?} looks like {other:?}, which is taken or reserved; \
                 choose one readers cannot mistake for it"
            ),
        ));
    }
    sqlx::query("INSERT INTO publishers (id, namespace, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&publisher.id)
        .bind(&publisher.namespace)
        .bind(&publisher.name)
        .bind(publisher.created_at)
        .execute(&mut *tx)
        .await
        .conflict_on_unique("namespace_taken", || {
            format!("the namespace {namespace:?} is taken")
        })?;
    sqlx::query(
        "INSERT INTO publisher_members (publisher_id, user_id, role, created_at) \
         VALUES ($1, $2, 'owner', $3)",
    )
    .bind(&publisher.id)
    .bind(owner_id)
    .bind(publisher.created_at)
    .execute(&mut *tx)
    .await?;
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor: crate::audit::Actor::User(owner_id.to_owned()),
            action: "publisher.created",
            tenant_id: None,
            subject: format!("publisher:{}", publisher.namespace),
            details: serde_json::json!({"publisher_id": publisher.id, "name": publisher.name}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(publisher)
}

/// The publisher with namespace `namespace`, if any (no access check).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn by_namespace(db: &Db, namespace: &str) -> Result<Option<Publisher>> {
    let row =
        sqlx::query("SELECT id, namespace, name, created_at FROM publishers WHERE namespace = $1")
            .bind(namespace)
            .fetch_optional(db.pool())
            .await?;
    row.as_ref()
        .map(|row| Ok(Publisher::from_row(row)?))
        .transpose()
}

/// The publishers user `user_id` is a member of, with their role, by namespace.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn of_user(db: &Db, user_id: &str) -> Result<Vec<(Publisher, MemberRole)>> {
    let rows = sqlx::query(
        "SELECT p.id, p.namespace, p.name, p.created_at, m.role \
         FROM publishers p JOIN publisher_members m ON m.publisher_id = p.id \
         WHERE m.user_id = $1 ORDER BY p.namespace",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let role = MemberRole::parse(&row.try_get::<String, _>("role")?)?;
            Ok((Publisher::from_row(row)?, role))
        })
        .collect()
}

/// The publisher with id `id`, if any (no access check).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn by_id(db: &Db, id: &str) -> Result<Option<Publisher>> {
    let row = sqlx::query("SELECT id, namespace, name, created_at FROM publishers WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref()
        .map(|row| Ok(Publisher::from_row(row)?))
        .transpose()
}

/// The role of user `user_id` in publisher `publisher_id`, if a member.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn member_role(db: &Db, publisher_id: &str, user_id: &str) -> Result<Option<MemberRole>> {
    role_of(db.pool(), publisher_id, user_id).await
}

/// As [`member_role`], read in `tx` (a task holding a transaction reads nothing through the
/// pool: see [`Db::begin`]).
///
/// # Errors
///
/// [`Error::Database`].
pub(crate) async fn member_role_in(
    tx: &mut Tx,
    publisher_id: &str,
    user_id: &str,
) -> Result<Option<MemberRole>> {
    role_of(&mut **tx, publisher_id, user_id).await
}

async fn role_of<'c, E>(
    executor: E,
    publisher_id: &str,
    user_id: &str,
) -> Result<Option<MemberRole>>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let row =
        sqlx::query("SELECT role FROM publisher_members WHERE publisher_id = $1 AND user_id = $2")
            .bind(publisher_id)
            .bind(user_id)
            .fetch_optional(executor)
            .await?;
    match row {
        Some(row) => Ok(Some(MemberRole::parse(&row.try_get::<String, _>("role")?)?)),
        None => Ok(None),
    }
}

/// The caller's standing in the publisher `namespace`. A publisher API key is a member of its
/// own publisher only (and only while its creator still is).
///
/// # Errors
///
/// [`Error::NotFound`] if there is no such publisher or the caller is not a member; a tenant
/// API key is never a member.
pub async fn membership(db: &Db, principal: &Principal, namespace: &str) -> Result<Membership> {
    let missing = || Error::not_found(format!("publisher {namespace:?}"));
    let publisher = by_namespace(db, namespace).await?.ok_or_else(missing)?;
    let (user_id, via_api_key) = match &principal.caller {
        Caller::User(user) => (user.id.clone(), false),
        Caller::PublisherKey {
            publisher_id,
            user_id,
        } if *publisher_id == publisher.id => (user_id.clone(), true),
        _ => return Err(missing()),
    };
    let role = member_role(db, &publisher.id, &user_id)
        .await?
        .ok_or_else(missing)?;
    let role = if via_api_key {
        MemberRole::Member
    } else {
        role
    };
    Ok(Membership {
        publisher,
        role,
        user_id,
        via_api_key,
    })
}

/// The publisher `namespace`, if the caller is one of its members (or its API key).
///
/// # Errors
///
/// [`Error::NotFound`] otherwise.
pub async fn access(db: &Db, principal: &Principal, namespace: &str) -> Result<Publisher> {
    Ok(membership(db, principal, namespace).await?.publisher)
}

/// Adds the account with `email` to the publisher as `role`. A new owner is a change of
/// control (see [`crate::versions::control`]).
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown account; [`Error::Conflict`] (`already_member`).
pub async fn add_member(
    db: &Db,
    actor: &Actor,
    publisher_id: &str,
    email: &str,
    role: MemberRole,
) -> Result<String> {
    let email = normalize_email(email)?;
    let user = sqlx::query("SELECT id FROM users WHERE email = $1")
        .bind(&email)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| Error::not_found(format!("account {email}")))?;
    let user_id: String = user.try_get("id")?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO publisher_members (publisher_id, user_id, role, created_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(publisher_id)
    .bind(&user_id)
    .bind(role.as_str())
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .conflict_on_unique("already_member", || {
        format!("{email} is a member of this publisher already")
    })?;
    if role == MemberRole::Owner {
        crate::versions::control::changed(
            &mut tx,
            actor,
            publisher_id,
            crate::versions::control::Change::NewOwner,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(user_id)
}

/// Issues a publisher API key (for CI) acting for `user_id`; returns `(id, secret)`. The secret
/// is shown once.
///
/// # Errors
///
/// [`Error::BadRequest`] for a name that is empty, too long or holds invisible or control
/// characters; [`Error::Database`].
pub async fn create_api_key(
    db: &Db,
    publisher_id: &str,
    user_id: &str,
    name: &str,
) -> Result<(String, String)> {
    let name = display_name::checked(name)?;
    let (secret, hash) = token::generate(TokenKind::PublisherKey)?;
    let id = new_id();
    sqlx::query(
        "INSERT INTO tokens (id, token_hash, kind, user_id, publisher_id, name, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(hash)
    .bind(TokenKind::PublisherKey.as_str())
    .bind(user_id)
    .bind(publisher_id)
    .bind(name)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_checked() {
        let reserved = vec!["plinth".to_owned()];
        for good in ["ab", "acme", "a1-b2", "x".repeat(40).as_str()] {
            assert!(check_namespace(good, &reserved).is_ok(), "{good}");
        }
        for bad in [
            "a",
            "1abc",
            "-ab",
            "ab-",
            "Acme",
            "ac me",
            "ac.me",
            &"x".repeat(41),
        ] {
            assert_eq!(
                check_namespace(bad, &reserved).unwrap_err().code(),
                "invalid_namespace",
                "{bad}"
            );
        }
        assert_eq!(
            check_namespace("plinth", &reserved).unwrap_err().code(),
            "namespace_reserved"
        );
    }
}
