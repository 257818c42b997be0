//! HTTP: a small blocking client for outbound requests, and the request and response types of
//! plugins that serve HTTP.
//!
//! # Outbound requests
//!
//! Require the `http` permission; the host refuses, on every request and redirect, any host not
//! on the manifest's `permissions.http.hosts` allowlist (the refusal comes back as an
//! [`HttpError::Request`]).
//!
//! ```no_run
//! use plinth_sdk::http;
//!
//! let response = http::Request::post("https://hooks.example.com/notify")
//!     .header("x-source", "plinth")
//!     .json(&serde_json::json!({ "text": "order created" }))
//!     .send()?;
//! if !response.is_success() {
//!     plinth_sdk::log::warn(format!("webhook answered {}", response.status));
//! }
//! # Ok::<(), http::HttpError>(())
//! ```
//!
//! # Serving HTTP
//!
//! Implement [`HttpHandler`] and export it with `plinth_sdk::export!(MyPlugin, http)`. The
//! host routes `/p/{tenant}/{plugin}/…` to the plugin with that prefix removed. The SDK reads
//! the whole request body (at most [`MAX_REQUEST_BODY_BYTES`], else it answers `413`) before
//! calling [`HttpHandler::handle`], and streams the returned [`Response`] back.

mod body;
mod client;
mod error;
mod response;
mod server;
mod url;

pub use client::{DEFAULT_MAX_RESPONSE_BYTES, Request, get};
pub use error::HttpError;
pub use response::Response;
pub use server::{HttpHandler, IncomingRequest, MAX_REQUEST_BODY_BYTES};

pub(crate) use server::serve;

/// Finds the first header named `name` (case-insensitively) in `headers`.
fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Converts wasi:http header entries (byte values) to text pairs; a value that is not UTF-8 is
/// decoded lossily.
fn headers_from_entries(entries: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    entries
        .into_iter()
        .map(|(name, value)| {
            let value = String::from_utf8(value)
                .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned());
            (name, value)
        })
        .collect()
}
