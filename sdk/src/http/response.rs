//! [`Response`]: an HTTP response, received by the client or returned by a handler.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::HttpError;

/// An HTTP response: what [`Request::send`](super::Request::send) receives and what an
/// [`HttpHandler`](super::HttpHandler) returns.
///
/// ```
/// use plinth_sdk::http::Response;
///
/// let response = Response::new(201)
///     .with_header("x-id", "42")
///     .with_json(&serde_json::json!({ "ok": true }));
/// assert_eq!(response.header("Content-Type"), Some("application/json"));
/// assert_eq!(response.text().ok(), Some(r#"{"ok":true}"#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. `200`.
    pub status: u16,
    /// Header (name, value) pairs in order; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// An empty `200 OK` response.
    pub fn ok() -> Self {
        Self::new(200)
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON and the `content-type` to `application/json`. If
    /// `value` cannot be serialized the response becomes a `500` naming the serde error.
    #[must_use]
    pub fn with_json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.headers
                    .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
                self.with_header("content-type", "application/json")
                    .with_body(body)
            }
            Err(err) => Self::new(500)
                .with_header("content-type", "text/plain; charset=utf-8")
                .with_body(format!("cannot serialize the response: {err}")),
        }
    }

    /// Whether the status is `2xx`.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header named `name` (case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        super::find_header(&self.headers, name)
    }

    /// Decodes the body as JSON into `T`.
    ///
    /// # Errors
    ///
    /// [`HttpError::Decode`] naming the serde error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|err| HttpError::Decode(err.to_string()))
    }

    /// The body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// [`HttpError::Decode`] when the body is not UTF-8.
    pub fn text(&self) -> Result<&str, HttpError> {
        std::str::from_utf8(&self.body).map_err(|err| HttpError::Decode(err.to_string()))
    }
}
