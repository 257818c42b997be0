//! `/v1/publishers`: publishers, members, signing keys and API keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{MemberRole, Publisher, SigningKey};
use crate::audit::Actor;
use crate::auth::Principal;
use crate::body::JsonBody;
use crate::clock::rfc3339;
use crate::error::{ApiError, Error, Result};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_publisher))
        .routes(routes!(get_publisher))
        .routes(routes!(add_member))
        .routes(routes!(add_key, list_keys))
        .routes(routes!(create_challenge))
        .routes(routes!(revoke_key))
        .routes(routes!(create_api_key))
        .routes(routes!(set_review_waiver))
}

/// `POST /v1/publishers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPublisher {
    /// 2–40 of `[a-z0-9-]`, starting with a letter; plugin ids are `<namespace>.<name>`.
    namespace: String,
    name: String,
}

/// A publisher.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PublisherView {
    id: String,
    namespace: String,
    name: String,
    /// RFC 3339, UTC.
    created_at: String,
    /// The caller's role: `owner` or `member`.
    role: String,
}

impl PublisherView {
    fn of(publisher: Publisher, role: MemberRole) -> PublisherView {
        PublisherView {
            id: publisher.id,
            namespace: publisher.namespace,
            name: publisher.name,
            created_at: rfc3339(publisher.created_at),
            role: role.as_str().to_owned(),
        }
    }
}

/// Creates a publisher; the caller becomes its owner.
#[utoipa::path(post, path = "/v1/publishers", tag = "publishers", security(("bearer" = [])),
    request_body = NewPublisher,
    responses((status = 201, body = PublisherView), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
async fn create_publisher(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(body): JsonBody<NewPublisher>,
) -> Result<(StatusCode, Json<PublisherView>)> {
    let user = principal.user()?;
    let publisher = super::create(
        state.db(),
        &user.id,
        &body.namespace,
        &body.name,
        &state.settings().reserved_namespaces,
    )
    .await?;
    tracing::info!(publisher = %publisher.id, namespace = %publisher.namespace, user = %user.id, "publisher created");
    Ok((
        StatusCode::CREATED,
        Json(PublisherView::of(publisher, MemberRole::Owner)),
    ))
}

/// A publisher the caller is a member of.
#[utoipa::path(get, path = "/v1/publishers/{ns}", tag = "publishers", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")),
    responses((status = 200, body = PublisherView), (status = 404, body = ApiError)))]
async fn get_publisher(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
) -> Result<Json<PublisherView>> {
    let membership = super::membership(state.db(), &principal, &ns).await?;
    Ok(Json(PublisherView::of(
        membership.publisher,
        membership.role,
    )))
}

/// `POST /v1/publishers/{ns}/members`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMember {
    /// The email of an existing account.
    email: String,
    /// `owner` or `member`.
    role: String,
}

/// A member of a publisher.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberView {
    user_id: String,
    email: String,
    role: String,
}

/// Adds an account to the publisher (owners only).
#[utoipa::path(post, path = "/v1/publishers/{ns}/members", tag = "publishers", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")), request_body = NewMember,
    responses((status = 201, body = MemberView), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn add_member(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
    JsonBody(body): JsonBody<NewMember>,
) -> Result<(StatusCode, Json<MemberView>)> {
    let membership = super::membership(state.db(), &principal, &ns).await?;
    principal.user()?;
    if membership.role != MemberRole::Owner {
        return Err(Error::forbidden(
            "forbidden",
            "only an owner of the publisher may add members",
        ));
    }
    let role = MemberRole::parse(&body.role)?;
    let user_id = super::add_member(
        state.db(),
        &Actor::from(&principal),
        &membership.publisher.id,
        &body.email,
        role,
    )
    .await?;
    tracing::info!(publisher = %membership.publisher.id, member = %user_id, role = role.as_str(), "publisher member added");
    Ok((
        StatusCode::CREATED,
        Json(MemberView {
            user_id,
            email: body.email.trim().to_lowercase(),
            role: role.as_str().to_owned(),
        }),
    ))
}

/// `POST /v1/publishers/{ns}/keys/challenges`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewChallenge {
    /// The key to register: the one line of a `.pub` file, `ed25519:<base64 of the 32 bytes>`.
    public_key: String,
}

/// A challenge for registering a key: sign it with the key
/// (`plinth_package::SecretKey::prove_possession(namespace, challenge)`; `plinth key register`
/// does) and send the signature with the key to `POST /v1/publishers/{ns}/keys`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChallengeView {
    /// The text to sign.
    challenge: String,
    /// The key that must sign it.
    public_key: String,
    /// The publisher it registers the key to (part of the signed message).
    namespace: String,
    /// RFC 3339, UTC; after it, ask for a new challenge.
    expires_at: String,
}

/// Issues a challenge that proves possession of a key once signed by it (owners and members).
/// Open for 10 minutes, used once; a publisher has at most 16 open (a new one replaces the
/// oldest).
#[utoipa::path(post, path = "/v1/publishers/{ns}/keys/challenges", tag = "publishers", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")), request_body = NewChallenge,
    responses((status = 201, body = ChallengeView), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn create_challenge(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
    JsonBody(body): JsonBody<NewChallenge>,
) -> Result<(StatusCode, Json<ChallengeView>)> {
    let publisher = super::access(state.db(), &principal, &ns).await?;
    principal.user()?;
    let issued = super::issue_challenge(state.db(), &publisher, &body.public_key).await?;
    Ok((
        StatusCode::CREATED,
        Json(ChallengeView {
            challenge: issued.challenge,
            public_key: issued.public_key,
            namespace: issued.namespace,
            expires_at: rfc3339(issued.expires_at),
        }),
    ))
}

/// `POST /v1/publishers/{ns}/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    /// The one line of a `.pub` file: `ed25519:<base64 of the 32 bytes>`.
    public_key: String,
    /// A challenge issued for this publisher and key by `POST …/keys/challenges`.
    challenge: Option<String>,
    /// The key's signature of the challenge (base64), proving the registrant holds the key.
    signature: Option<String>,
}

/// A signing key of a publisher.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyView {
    id: String,
    public_key: String,
    fingerprint: String,
    /// RFC 3339, UTC.
    created_at: String,
    /// RFC 3339, UTC; null while the key is active.
    revoked_at: Option<String>,
    /// Whether its possession was proven; a key registered before proofs were asked is not,
    /// and gives way to a publisher that proves it holds the key.
    proven: bool,
}

impl From<SigningKey> for KeyView {
    fn from(key: SigningKey) -> KeyView {
        KeyView {
            id: key.id,
            public_key: key.public_key,
            fingerprint: key.fingerprint,
            created_at: rfc3339(key.created_at),
            revoked_at: key.revoked_at.map(rfc3339),
            proven: key.proven_at.is_some(),
        }
    }
}

/// The keys of a publisher.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyList {
    items: Vec<KeyView>,
}

/// Registers a signing key (owners and members) on proof of possession: a challenge from
/// `POST …/keys/challenges` signed by the key. A key another publisher registered without
/// proof (before proofs were asked) moves to the publisher that proves it holds it.
#[utoipa::path(post, path = "/v1/publishers/{ns}/keys", tag = "publishers", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")), request_body = NewKey,
    responses((status = 201, body = KeyView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn add_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
    JsonBody(body): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<KeyView>)> {
    let publisher = super::access(state.db(), &principal, &ns).await?;
    let user = principal.user()?;
    let (Some(challenge), Some(signature)) = (&body.challenge, &body.signature) else {
        return Err(Error::bad_request(
            "proof_required",
            "fields `challenge` and `signature` are required: ask for a challenge with POST \
             /v1/publishers/{ns}/keys/challenges and sign it with the key (plinth key register \
             does both)",
        ));
    };
    let proof = super::Proof {
        challenge,
        signature,
    };
    let key = super::add_key(
        state.db(),
        &Actor::from(&principal),
        &publisher,
        &body.public_key,
        proof,
    )
    .await?;
    tracing::info!(publisher = %publisher.id, key = %key.fingerprint, user = %user.id, "signing key added");
    Ok((StatusCode::CREATED, Json(key.into())))
}

/// Lists the publisher's signing keys, revoked ones included.
#[utoipa::path(get, path = "/v1/publishers/{ns}/keys", tag = "publishers", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")),
    responses((status = 200, body = KeyList), (status = 404, body = ApiError)))]
async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
) -> Result<Json<KeyList>> {
    let publisher = super::access(state.db(), &principal, &ns).await?;
    let items = super::keys(state.db(), &publisher.id)
        .await?
        .into_iter()
        .map(KeyView::from)
        .collect();
    Ok(Json(KeyList { items }))
}

/// Revokes a signing key by id or fingerprint: it signs no new submission.
#[utoipa::path(delete, path = "/v1/publishers/{ns}/keys/{key}", tag = "publishers", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace"), ("key" = String, Path, description = "Key id or fingerprint")),
    responses((status = 200, body = KeyView), (status = 404, body = ApiError)))]
async fn revoke_key(
    State(state): State<AppState>,
    principal: Principal,
    Path((ns, key)): Path<(String, String)>,
) -> Result<Json<KeyView>> {
    let publisher = super::access(state.db(), &principal, &ns).await?;
    let user = principal.user()?;
    let key = super::revoke_key(state.db(), &Actor::from(&principal), &publisher.id, &key).await?;
    tracing::info!(publisher = %publisher.id, key = %key.fingerprint, user = %user.id, "signing key revoked");
    Ok(Json(key.into()))
}

/// `POST /v1/publishers/{ns}/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewApiKey {
    /// What the key is for, e.g. `ci`.
    name: String,
}

/// A new publisher API key (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyView {
    id: String,
    name: String,
    /// The bearer secret; it is not stored and cannot be shown again.
    key: String,
}

/// Issues a publisher API key that submits packages for this publisher (e.g. from CI).
#[utoipa::path(post, path = "/v1/publishers/{ns}/api-keys", tag = "publishers", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")), request_body = NewApiKey,
    responses((status = 201, body = ApiKeyView), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn create_api_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
    JsonBody(body): JsonBody<NewApiKey>,
) -> Result<(StatusCode, Json<ApiKeyView>)> {
    let publisher = super::access(state.db(), &principal, &ns).await?;
    let user = principal.user()?;
    let (id, key) = super::create_api_key(state.db(), &publisher.id, &user.id, &body.name).await?;
    tracing::info!(publisher = %publisher.id, token = %id, user = %user.id, "publisher API key issued");
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyView {
            id,
            name: body.name.trim().to_owned(),
            key,
        }),
    ))
}

/// `PUT /v1/publishers/{ns}/review-waiver`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaiverRequest {
    /// Whether the publisher's private plugins skip human review.
    waived: bool,
    /// Why (audited).
    reason: Option<String>,
}

/// Waives (or requires again) human review of a publisher's private plugins (operator).
/// Automated validation still applies; public plugins are always reviewed. Audited.
#[utoipa::path(put, path = "/v1/publishers/{ns}/review-waiver", tag = "publishers", security(("bearer" = [])),
    params(("ns" = String, Path, description = "Publisher namespace")), request_body = WaiverRequest,
    responses((status = 200, body = super::waiver::WaiverView), (status = 400, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn set_review_waiver(
    State(state): State<AppState>,
    principal: Principal,
    Path(ns): Path<String>,
    JsonBody(body): JsonBody<WaiverRequest>,
) -> Result<Json<super::waiver::WaiverView>> {
    let operator = principal.operator()?;
    Ok(Json(
        super::waiver::set(
            state.db(),
            operator,
            &ns,
            body.waived,
            body.reason.as_deref(),
        )
        .await?,
    ))
}
