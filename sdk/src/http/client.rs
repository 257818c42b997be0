//! The blocking outbound client over `wasi:http/outgoing-handler`.

use std::time::Duration;

use serde::Serialize;

use super::{HttpError, Response, body, url};
use crate::bindings::plugin::wasi::http::outgoing_handler;
use crate::bindings::plugin::wasi::http::types::{
    Fields, FutureIncomingResponse, IncomingResponse, Method, OutgoingRequest, RequestOptions,
    Scheme,
};

/// The largest response body [`Request::send`] reads unless told otherwise (16 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// Sends a `GET` request to `url`; shorthand for `Request::get(url).send()`.
///
/// # Errors
///
/// As [`Request::send`].
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::get(url).send()
}

/// An outbound HTTP request, built then sent with [`Request::send`].
///
/// ```no_run
/// use plinth_sdk::http::Request;
///
/// let status = Request::get("https://api.example.com/health").send()?.status;
/// # Ok::<(), plinth_sdk::http::HttpError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    max_response_bytes: u64,
    /// A failure while building (e.g. [`Request::json`]), reported by [`Request::send`].
    error: Option<HttpError>,
}

impl Request {
    /// A request with `method` (e.g. `"PATCH"`) to the absolute `url`.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            error: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new("PUT", url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new("DELETE", url)
    }

    /// Adds a header (a name may repeat).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON and `content-type: application/json`. A value that
    /// cannot be serialized makes [`Request::send`] fail with [`HttpError::InvalidRequest`].
    #[must_use]
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.headers
                    .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
                self.header("content-type", "application/json").body(body)
            }
            Err(err) => {
                self.error = Some(HttpError::InvalidRequest(format!(
                    "cannot serialize the JSON body: {err}"
                )));
                self
            }
        }
    }

    /// Bounds the time to connect and to wait for the first byte of the response, and between
    /// bytes (the host may bound it further).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the largest response body to read ([`DEFAULT_MAX_RESPONSE_BYTES`] by default).
    #[must_use]
    pub fn max_response_bytes(mut self, limit: u64) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Sends the request and reads the whole response, blocking until it has arrived.
    ///
    /// A non-`2xx` status is not an error: check [`Response::status`].
    ///
    /// # Errors
    ///
    /// [`HttpError::InvalidUrl`] or [`HttpError::InvalidRequest`] before anything is sent;
    /// [`HttpError::Request`] when the host refuses the request (e.g. a host outside the
    /// allowlist) or it fails in transport; [`HttpError::Body`] or [`HttpError::TooLarge`]
    /// while the bodies move.
    pub fn send(self) -> Result<Response, HttpError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let target = url::parse(&self.url)?;
        let entries: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
            .collect();
        let headers = Fields::from_list(&entries)
            .map_err(|err| HttpError::InvalidRequest(format!("headers refused: {err}")))?;
        let request = OutgoingRequest::new(headers);
        let invalid = |what: &str| HttpError::InvalidRequest(format!("invalid {what}"));
        request
            .set_method(&method(&self.method))
            .map_err(|()| invalid("method"))?;
        let scheme = if target.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(target.authority))
            .map_err(|()| invalid("host"))?;
        request
            .set_path_with_query(Some(&target.path_with_query))
            .map_err(|()| invalid("path"))?;
        let outgoing_body = request
            .body()
            .map_err(|()| HttpError::Body("the request body was already taken".to_owned()))?;

        // Hand the request to the host first and stream the body after: the host buffers only
        // a few chunks, so writing a large body before `handle` would wait forever.
        let future = outgoing_handler::handle(request, self.timeout.map(options))
            .map_err(|code| HttpError::Request(code.to_string()))?;
        let written = body::write_all(outgoing_body, &self.body);
        // If the host refused the request, its reason beats the closed body stream's.
        let response = wait(&future)?;
        written?;

        let status = response.status();
        let headers = super::headers_from_entries(response.headers().entries());
        let incoming_body = response
            .consume()
            .map_err(|()| HttpError::Body("the response body was already taken".to_owned()))?;
        let body = body::read_all(incoming_body, self.max_response_bytes)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// Blocks on the future's pollable until the response (or the reason there is none) arrives.
fn wait(future: &FutureIncomingResponse) -> Result<IncomingResponse, HttpError> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(HttpError::Request(code.to_string())),
            Some(Err(())) => {
                return Err(HttpError::Request(
                    "the response was already taken".to_owned(),
                ));
            }
            None => future.subscribe().block(),
        }
    }
}

/// Request options carrying `timeout` as every timeout the host supports.
fn options(timeout: Duration) -> RequestOptions {
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    let options = RequestOptions::new();
    // A host that does not support a timeout refuses to set it; it then applies its own.
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));
    options
}

/// The wasi:http method for `name`.
fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        _ => Method::Other(name.to_owned()),
    }
}
