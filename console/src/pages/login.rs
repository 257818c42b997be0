//! `/login` and `/logout`: a session in an `HttpOnly`, `SameSite=Strict` cookie.

use axum::extract::State;
use axum::http::header::{LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use plinth_marketplace::auth::throttle::ClientAddress;
use plinth_marketplace::{AppState, accounts};
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::form::Posted;
use crate::layout::{csrf_field, form_error, page};
use crate::session::{SESSION_COOKIE, Viewer, over_tls, set_cookie};

/// The log-in form, with `error` above it if the last try failed.
fn login_page(viewer: &Viewer, email: &str, error: Option<&str>) -> maud::Markup {
    page(
        viewer,
        "Log in",
        html! {
            h1 { "Log in" }
            form.panel method="post" action="/login" {
                @if let Some(error) = error { (form_error(error)) }
                (csrf_field(viewer))
                label for="email" { "Email" }
                input #email type="email" name="email" value=(email) autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// `GET /login`.
pub async fn form(viewer: Viewer) -> maud::Markup {
    login_page(&viewer, "", None)
}

/// What the log-in form posts.
#[derive(Debug, Deserialize)]
pub struct LogIn {
    email: String,
    password: String,
}

/// `POST /login`: on success the session cookie is set and the catalog shown. Attempts are
/// throttled as the API's are: over the limit, the form comes back with 429 and `Retry-After`.
pub async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Posted(form): Posted<LogIn>,
) -> Result<Response, ConsoleError> {
    let ttl = state.settings().session_ttl_ms;
    match accounts::log_in(&state, client, &form.email, &form.password).await {
        Ok((token, _expires_at)) => {
            let cookie = set_cookie(SESSION_COOKIE, &token, ttl / 1000, over_tls(&headers));
            Ok((
                StatusCode::SEE_OTHER,
                [(SET_COOKIE, cookie), (LOCATION, "/".to_owned())],
            )
                .into_response())
        }
        Err(plinth_marketplace::Error::Unauthenticated(message)) => Ok((
            StatusCode::UNAUTHORIZED,
            login_page(&viewer, &form.email, Some(&message)),
        )
            .into_response()),
        Err(
            error @ plinth_marketplace::Error::TooManyAttempts {
                retry_after_secs, ..
            },
        ) => Ok((
            StatusCode::TOO_MANY_REQUESTS,
            [(RETRY_AFTER, retry_after_secs.to_string())],
            login_page(&viewer, &form.email, Some(&error.to_string())),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

/// `POST /logout`: the session token is revoked and the cookie removed.
pub async fn log_out(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<Response, ConsoleError> {
    if let Some(principal) = &viewer.principal {
        accounts::revoke_token(state.db(), &principal.token_id).await?;
    }
    let cookie = set_cookie(SESSION_COOKIE, "", 0, over_tls(&headers));
    Ok((
        StatusCode::SEE_OTHER,
        [(SET_COOKIE, cookie), (LOCATION, "/".to_owned())],
    )
        .into_response())
}
