//! Request bodies and query strings: a JSON extractor whose errors name the offending field,
//! and the one answer to a query string that does not parse.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Query, Request};
use serde::de::DeserializeOwned;

use crate::error::Error;

/// The largest JSON body accepted.
pub const MAX_JSON_BYTES: usize = 256 * 1024;

/// A JSON request body of type `T`. Malformed JSON or a field of the wrong type is a 400
/// `invalid_body` whose message names the field's path (e.g. `roles[1]`).
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        let body = axum::body::to_bytes(request.into_body(), MAX_JSON_BYTES)
            .await
            .map_err(|_| Error::PayloadTooLarge {
                limit: MAX_JSON_BYTES,
            })?;
        let _ = state;
        parse(&body).map(JsonBody)
    }
}

/// The query string as `T`, taken by a handler as `Result<Query<T>, QueryRejection>`.
///
/// # Errors
///
/// [`Error::BadRequest`] with code `invalid_query` and what is wrong with it.
pub(crate) fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Error> {
    query.map(|Query(query)| query).map_err(|rejection| {
        Error::bad_request(
            "invalid_query",
            format!("the query string is not valid: {}", rejection.body_text()),
        )
    })
}

/// Parses `bytes` as `T`, naming the field in the error.
///
/// # Errors
///
/// [`Error::BadRequest`] with code `invalid_body`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("the request body is not valid JSON: {inner}")
        } else if path == "." {
            format!("invalid request body: {inner}")
        } else {
            format!("invalid field `{path}`: {inner}")
        };
        Error::bad_request("invalid_body", message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code, reason = "only deserialized")]
    struct Roles {
        roles: Vec<String>,
    }

    #[test]
    fn names_the_field_of_the_wrong_type() {
        let err = parse::<Roles>(br#"{"roles":["a", 3]}"#).unwrap_err();
        assert_eq!(err.code(), "invalid_body");
        assert!(err.to_string().contains("roles[1]"), "{err}");
    }

    #[test]
    fn names_the_missing_field() {
        let err = parse::<Roles>(b"{}").unwrap_err();
        assert!(err.to_string().contains("roles"), "{err}");
    }

    #[test]
    fn says_when_it_is_not_json() {
        let err = parse::<Roles>(b"{roles").unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }
}
