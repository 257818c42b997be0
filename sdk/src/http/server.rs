//! Serving HTTP: [`HttpHandler`], [`IncomingRequest`], and the adapter that moves them over
//! `wasi:http/incoming-handler`.

use serde::de::DeserializeOwned;

use super::{HttpError, Response, body};
use crate::bindings::plugin::wasi::http::types::{
    self as wasi, Fields, Method, OutgoingResponse, ResponseOutparam,
};

/// The largest request body the SDK reads before calling [`HttpHandler::handle`] (10 MiB);
/// a larger one is answered with `413 Payload Too Large`.
pub const MAX_REQUEST_BODY_BYTES: u64 = 10 * 1024 * 1024;

/// A plugin that serves HTTP under `/p/{tenant}/{plugin}/…`.
///
/// Export it with `plinth_sdk::export!(MyPlugin, http)` (the type must implement
/// [`Plugin`](crate::Plugin) too).
pub trait HttpHandler {
    /// Answers one request. The whole body has been read; the SDK streams the response back.
    fn handle(request: IncomingRequest) -> Response;
}

/// An HTTP request received by an [`HttpHandler`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncomingRequest {
    /// The method in upper case, e.g. `GET`.
    pub method: String,
    /// The path and query with the `/p/{tenant}/{plugin}` prefix removed, e.g. `/items?page=2`.
    pub path_with_query: String,
    /// Header (name, value) pairs in order; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl IncomingRequest {
    /// The path without the query, e.g. `/items`.
    pub fn path(&self) -> &str {
        self.path_with_query
            .split_once('?')
            .map_or(self.path_with_query.as_str(), |(path, _)| path)
    }

    /// The query without the `?`, if there is one.
    pub fn query(&self) -> Option<&str> {
        self.path_with_query.split_once('?').map(|(_, query)| query)
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

/// Reads `request`, calls `T::handle` and sends its response to `out`.
pub(crate) fn serve<T: HttpHandler>(request: wasi::IncomingRequest, out: ResponseOutparam) {
    let response = match read_request(request) {
        Ok(request) => T::handle(request),
        Err(HttpError::TooLarge(limit)) => Response::new(413)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(format!("the request body is over the {limit}-byte limit")),
        Err(err) => Response::new(400)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(err.to_string()),
    };
    respond(out, response);
}

/// Converts a wasi:http request into an [`IncomingRequest`], reading the body.
fn read_request(request: wasi::IncomingRequest) -> Result<IncomingRequest, HttpError> {
    let method = match request.method() {
        Method::Get => "GET".to_owned(),
        Method::Head => "HEAD".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        Method::Connect => "CONNECT".to_owned(),
        Method::Options => "OPTIONS".to_owned(),
        Method::Trace => "TRACE".to_owned(),
        Method::Patch => "PATCH".to_owned(),
        Method::Other(other) => other,
    };
    let path_with_query = request
        .path_with_query()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    let headers = super::headers_from_entries(request.headers().entries());
    let incoming_body = request
        .consume()
        .map_err(|()| HttpError::Body("the request body was already taken".to_owned()))?;
    let body = body::read_all(incoming_body, MAX_REQUEST_BODY_BYTES)?;
    Ok(IncomingRequest {
        method,
        path_with_query,
        headers,
        body,
    })
}

/// Sends `response` through `out`: status and headers first, then the streamed body.
fn respond(out: ResponseOutparam, response: Response) {
    let entries: Vec<(String, Vec<u8>)> = response
        .headers
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect();
    let (status, body_bytes, headers) = match Fields::from_list(&entries) {
        Ok(headers) => (response.status, response.body, headers),
        Err(err) => (
            500,
            format!("the plugin returned a header the host refuses: {err}").into_bytes(),
            Fields::new(),
        ),
    };
    let outgoing = OutgoingResponse::new(headers);
    if outgoing.set_status_code(status).is_err() {
        // Not a valid status code: answer 500 rather than a response the host cannot send.
        let _ = outgoing.set_status_code(500);
    }
    let Ok(outgoing_body) = outgoing.body() else {
        ResponseOutparam::set(out, Ok(outgoing));
        return;
    };
    ResponseOutparam::set(out, Ok(outgoing));
    if let Err(err) = body::write_all(outgoing_body, &body_bytes) {
        crate::log::warn(format!("sending the HTTP response body failed: {err}"));
    }
}
