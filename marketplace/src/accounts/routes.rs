//! `/v1/accounts` and `/v1/tokens`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::throttle::ClientAddress;
use crate::auth::{GlobalRole, Principal};
use crate::body::JsonBody;
use crate::clock::rfc3339;
use crate::error::{ApiError, Error, Result};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_up))
        .routes(routes!(me))
        .routes(routes!(set_roles))
        .routes(routes!(log_in))
        .routes(routes!(log_out))
}

/// `POST /v1/accounts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignUp {
    email: String,
    /// At least 10 characters and hard to guess: a `zxcvbn` strength of at least 3 of 4 (not a
    /// common password, a repeat, a sequence, nor made of the email or name).
    password: String,
    name: String,
}

/// An account.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Account {
    id: String,
    email: String,
    name: String,
}

/// Creates an account. An email that has an account already gets the same answer, with
/// nothing created, so sign-up does not tell who has an account.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = SignUp,
    responses((status = 201, body = Account), (status = 400, body = ApiError),
        (status = 429, body = ApiError, description = "`too_many_attempts` from this address; see `Retry-After`")))]
async fn sign_up(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    JsonBody(body): JsonBody<SignUp>,
) -> Result<(StatusCode, Json<Account>)> {
    let user = super::sign_up(&state, client, &body.email, &body.password, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(Account {
            id: user.id,
            email: user.email,
            name: user.name,
        }),
    ))
}

/// The caller's account and platform roles.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    id: String,
    email: String,
    name: String,
    roles: Vec<String>,
}

/// The calling user.
#[utoipa::path(get, path = "/v1/accounts/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ApiError)))]
async fn me(State(state): State<AppState>, principal: Principal) -> Result<Json<Me>> {
    let caller = principal.user()?;
    let user = super::user(state.db(), &caller.id).await?;
    Ok(Json(Me {
        id: user.id,
        email: user.email,
        name: user.name,
        roles: caller.roles.iter().map(|r| r.as_str().to_owned()).collect(),
    }))
}

/// `PUT /v1/accounts/{id}/roles`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Roles {
    /// `operator` and/or `reviewer`; replaces the current set.
    roles: Vec<String>,
}

/// Sets an account's platform roles (operator only).
#[utoipa::path(put, path = "/v1/accounts/{id}/roles", tag = "accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id")), request_body = Roles,
    responses((status = 200, body = Roles), (status = 400, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn set_roles(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Roles>,
) -> Result<Json<Roles>> {
    let operator = principal.operator()?;
    let roles = body
        .roles
        .iter()
        .map(|r| GlobalRole::parse(r))
        .collect::<Result<Vec<_>>>()?;
    if operator.id == id && !roles.contains(&GlobalRole::Operator) {
        return Err(Error::conflict(
            "last_operator",
            "you cannot remove your own operator role; ask another operator",
        ));
    }
    super::set_roles(
        state.db(),
        &crate::audit::Actor::from(&principal),
        &id,
        &roles,
    )
    .await?;
    tracing::info!(operator = %operator.id, account = %id, ?roles, "roles set");
    let mut names: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
    names.sort();
    names.dedup();
    Ok(Json(Roles { roles: names }))
}

/// `POST /v1/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogIn {
    email: String,
    password: String,
}

/// A new session token (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Session {
    token: String,
    /// RFC 3339, UTC.
    expires_at: String,
}

/// Logs in: a bearer token for the account. Attempts are limited per account and per client
/// address.
#[utoipa::path(post, path = "/v1/tokens", tag = "accounts", request_body = LogIn,
    responses((status = 201, body = Session), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 429, body = ApiError, description = "`too_many_attempts` for the account or from this address; see `Retry-After`")))]
async fn log_in(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    JsonBody(body): JsonBody<LogIn>,
) -> Result<(StatusCode, Json<Session>)> {
    let (token, expires_at) = super::log_in(&state, client, &body.email, &body.password).await?;
    Ok((
        StatusCode::CREATED,
        Json(Session {
            token,
            expires_at: rfc3339(expires_at),
        }),
    ))
}

/// Logs out: revokes the token this request carries.
#[utoipa::path(delete, path = "/v1/tokens/current", tag = "accounts", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ApiError)))]
async fn log_out(State(state): State<AppState>, principal: Principal) -> Result<StatusCode> {
    super::revoke_token(state.db(), &principal.token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
