//! [`Posted`]: a URL-encoded form whose CSRF token has been checked.

use axum::extract::{FromRequest, Request};
use plinth_marketplace::AppState;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ConsoleError;
use crate::session::{CSRF_FIELD, csrf_matches};

/// The largest form body the console reads.
const FORM_LIMIT_BYTES: usize = 256 * 1024;

/// A posted `application/x-www-form-urlencoded` form, read as `T` only after its `csrf` field
/// matched the session's token.
#[derive(Debug)]
pub struct Posted<T>(pub T);

/// Just the CSRF field of a form.
#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, _state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let form_type = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !form_type {
            return Err(ConsoleError::BadForm(
                "forms must be sent as application/x-www-form-urlencoded".to_owned(),
            ));
        }
        let bytes = axum::body::to_bytes(request.into_body(), FORM_LIMIT_BYTES)
            .await
            .map_err(|e| ConsoleError::BadForm(format!("the form could not be read: {e}")))?;
        let field: CsrfField = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ConsoleError::BadForm(format!("the form is not valid: {e}")))?;
        if !csrf_matches(&headers, field.csrf.as_deref()) {
            tracing::warn!("console form refused: bad or missing {CSRF_FIELD} token");
            return Err(ConsoleError::Csrf);
        }
        let value = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ConsoleError::BadForm(format!("the form is not valid: {e}")))?;
        Ok(Posted(value))
    }
}
