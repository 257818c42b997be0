//! Who is calling: the [`Principal`] extractor, and the roles a caller can hold.
//!
//! Every request that touches anything non-public starts from a `Principal`: the bearer token
//! in `Authorization` is hashed and looked up; unknown, expired and revoked tokens are 401s.
//! Handlers then check the role for the resource they touch (see `tenants::access` and
//! `publishers::access`); a resource of another tenant or publisher is a 404.

pub mod password;
pub mod throttle;
pub mod token;

use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sqlx::Row;

use crate::clock::now_ms;
use crate::db::cache::{CachedKey, Topic};
use crate::error::{Error, Result};
use crate::state::AppState;
use token::TokenKind;

/// A platform-wide role, granted by an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GlobalRole {
    /// Runs the platform: tenants, plans, roles, versions, payouts.
    Operator,
    /// Works the review queue.
    Reviewer,
}

impl GlobalRole {
    /// The role's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            GlobalRole::Operator => "operator",
            GlobalRole::Reviewer => "reviewer",
        }
    }

    /// The role called `name`.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] naming the unknown role.
    pub fn parse(name: &str) -> Result<GlobalRole> {
        match name {
            "operator" => Ok(GlobalRole::Operator),
            "reviewer" => Ok(GlobalRole::Reviewer),
            other => Err(Error::bad_request(
                "unknown_role",
                format!("unknown role {other:?}; the roles are \"operator\" and \"reviewer\""),
            )),
        }
    }
}

/// A signed-in user, as seen by a handler.
#[derive(Debug, Clone)]
pub struct UserCaller {
    /// The user's id.
    pub id: String,
    /// The user's email.
    pub email: String,
    /// Platform-wide roles.
    pub roles: Vec<GlobalRole>,
}

impl UserCaller {
    /// Whether the user is an operator.
    pub fn is_operator(&self) -> bool {
        self.roles.contains(&GlobalRole::Operator)
    }

    /// Whether the user may review submissions (reviewers and operators).
    pub fn is_reviewer(&self) -> bool {
        self.is_operator() || self.roles.contains(&GlobalRole::Reviewer)
    }
}

/// Who a request comes from.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A user, through a session token or a user API key.
    User(UserCaller),
    /// A tenant's API key.
    TenantKey {
        /// The tenant the key belongs to.
        tenant_id: String,
    },
    /// A publisher's API key, acting for the user who created it within that publisher.
    PublisherKey {
        /// The publisher the key belongs to.
        publisher_id: String,
        /// The user who created the key.
        user_id: String,
    },
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The id of the token used.
    pub token_id: String,
    /// Who the token speaks for.
    pub caller: Caller,
}

impl Principal {
    /// The calling user.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] when the caller is an API key of a tenant or publisher.
    pub fn user(&self) -> Result<&UserCaller> {
        match &self.caller {
            Caller::User(user) => Ok(user),
            _ => Err(Error::forbidden(
                "user_required",
                "this needs a user's token; tenant and publisher API keys cannot do it",
            )),
        }
    }

    /// The calling user, who must be an operator.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] otherwise.
    pub fn operator(&self) -> Result<Operator<'_>> {
        let user = self.user()?;
        if user.is_operator() {
            Ok(Operator(user))
        } else {
            Err(Error::forbidden(
                "forbidden",
                "this needs the operator role",
            ))
        }
    }

    /// The calling user, who must be a reviewer (or an operator).
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] otherwise.
    pub fn reviewer(&self) -> Result<Reviewer<'_>> {
        let user = self.user()?;
        if user.is_reviewer() {
            Ok(Reviewer(user))
        } else {
            Err(Error::forbidden(
                "forbidden",
                "this needs the reviewer role",
            ))
        }
    }

    /// Whether the caller is an operator.
    pub fn is_operator(&self) -> bool {
        matches!(&self.caller, Caller::User(user) if user.is_operator())
    }
}

/// A user proven to be an operator. Only [`Principal::operator`] makes one, so a service that
/// takes it is for operators without a check of its own.
#[derive(Debug, Clone, Copy)]
pub struct Operator<'a>(&'a UserCaller);

impl Deref for Operator<'_> {
    type Target = UserCaller;

    fn deref(&self) -> &UserCaller {
        self.0
    }
}

/// A user proven to be a reviewer (or an operator). Only [`Principal::reviewer`] makes one.
#[derive(Debug, Clone, Copy)]
pub struct Reviewer<'a>(&'a UserCaller);

impl Deref for Reviewer<'_> {
    type Target = UserCaller;

    fn deref(&self) -> &UserCaller {
        self.0
    }
}

/// Resolves the bearer token `secret` to a principal.
///
/// # Errors
///
/// [`Error::Unauthenticated`] for an unknown, expired or revoked token.
pub async fn authenticate(state: &AppState, secret: &str) -> Result<Principal> {
    let hash = token::hash(secret);
    let cache = state.db().cache();
    let generation = cache.generation(Topic::Access);
    if let Some(key) = cache.tenant_keys.get(&hash, generation)
        && key.expires_at.is_none_or(|at| at > now_ms())
    {
        return Ok(key.principal);
    }
    let row = sqlx::query(
        "SELECT t.id, t.kind, t.user_id, t.tenant_id, t.publisher_id, t.expires_at, \
                t.revoked_at, u.email \
         FROM tokens t LEFT JOIN users u ON u.id = t.user_id \
         WHERE t.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(state.db().pool())
    .await?
    .ok_or_else(|| Error::Unauthenticated("the bearer token is not valid".to_owned()))?;
    if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
        return Err(Error::Unauthenticated(
            "the bearer token has been revoked".to_owned(),
        ));
    }
    let expires_at = row.try_get::<Option<i64>, _>("expires_at")?;
    if let Some(expires_at) = expires_at
        && expires_at <= now_ms()
    {
        return Err(Error::Unauthenticated(
            "the bearer token has expired; log in again".to_owned(),
        ));
    }
    let token_id: String = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    let user_id: Option<String> = row.try_get("user_id")?;
    let caller = match TokenKind::parse(&kind) {
        Some(TokenKind::Session | TokenKind::UserKey) => {
            let id = user_id.ok_or_else(|| Error::Internal("user token without user".into()))?;
            let email: Option<String> = row.try_get("email")?;
            let roles = roles_of(state, &id).await?;
            Caller::User(UserCaller {
                id,
                email: email.unwrap_or_default(),
                roles,
            })
        }
        Some(TokenKind::TenantKey) => Caller::TenantKey {
            tenant_id: row
                .try_get::<Option<String>, _>("tenant_id")?
                .ok_or_else(|| Error::Internal("tenant key without tenant".into()))?,
        },
        Some(TokenKind::PublisherKey) => Caller::PublisherKey {
            publisher_id: row
                .try_get::<Option<String>, _>("publisher_id")?
                .ok_or_else(|| Error::Internal("publisher key without publisher".into()))?,
            user_id: user_id.ok_or_else(|| Error::Internal("publisher key without user".into()))?,
        },
        None => return Err(Error::Internal(format!("unknown token kind {kind:?}"))),
    };
    let principal = Principal { token_id, caller };
    // Tenant API keys carry every event and plugin call; users' tokens stay uncached, so a
    // change of roles or memberships needs no invalidation.
    if matches!(principal.caller, Caller::TenantKey { .. }) {
        let key = CachedKey {
            principal: principal.clone(),
            expires_at,
        };
        cache.tenant_keys.put(hash, key, generation);
    }
    Ok(principal)
}

/// The global roles of user `user_id`.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn roles_of(state: &AppState, user_id: &str) -> Result<Vec<GlobalRole>> {
    let rows = sqlx::query("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
        .bind(user_id)
        .fetch_all(state.db().pool())
        .await?;
    let mut roles = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get("role")?;
        if let Ok(role) = GlobalRole::parse(&name) {
            roles.push(role);
        }
    }
    Ok(roles)
}

/// The bearer token of a request, if it has an `Authorization` header.
fn bearer(parts: &Parts) -> Result<Option<&str>> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Error::Unauthenticated("the Authorization header is not text".to_owned()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(Error::Unauthenticated(
            "the Authorization header must be `Bearer <token>`".to_owned(),
        )),
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        // Middleware that needed the caller first (the rate limit) left it here.
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let Some(secret) = bearer(parts)? else {
            return Err(Error::Unauthenticated(
                "this needs an `Authorization: Bearer <token>` header".to_owned(),
            ));
        };
        authenticate(state, secret).await
    }
}

impl OptionalFromRequestParts<AppState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(Some(principal.clone()));
        }
        match bearer(parts)? {
            Some(secret) => authenticate(state, secret).await.map(Some),
            None => Ok(None),
        }
    }
}
