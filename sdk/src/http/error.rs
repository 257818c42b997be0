//! [`HttpError`]: why an HTTP call failed.

use std::fmt;

use crate::PluginError;

/// Why an outbound HTTP call (or decoding an HTTP body) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL is not an absolute `http://` or `https://` URL; the text says why.
    InvalidUrl(String),
    /// The request has a method or header that HTTP or the host does not accept.
    InvalidRequest(String),
    /// The host refused the request (e.g. its host is not on the allowlist) or it failed in
    /// transport (DNS, connection, TLS, timeout); the text is the host's error code.
    Request(String),
    /// Reading or writing a body failed part way.
    Body(String),
    /// The response body is larger than the limit (in bytes, carried).
    TooLarge(u64),
    /// A body is not the expected JSON or text; the text says why.
    Decode(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            Self::InvalidRequest(why) => write!(f, "invalid HTTP request: {why}"),
            Self::Request(why) => write!(f, "HTTP request failed: {why}"),
            Self::Body(why) => write!(f, "HTTP body failed: {why}"),
            Self::TooLarge(limit) => write!(f, "HTTP body is over the {limit}-byte limit"),
            Self::Decode(why) => write!(f, "cannot decode the HTTP body: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for PluginError {
    fn from(err: HttpError) -> Self {
        PluginError::Capability(err.to_string())
    }
}
