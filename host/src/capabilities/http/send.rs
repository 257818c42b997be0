//! Sending an admitted request: through an [`EgressClient`] whose resolver checks every
//! address before it is connected to, under the call's timeouts, with the response's body
//! handed back to `wasi:http` as it streams.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::uri::Authority;
use http::{HeaderValue, Request, Response, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use crate::egress::{CheckedResolver, EgressClient, EgressError, EgressOptions, ResolveError};

/// A request's destination once admitted.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    /// Lowercased host as in the URI (IPv6 in brackets).
    pub host: String,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// Whether the port differs from the scheme's default (and so belongs in `Host`).
    pub explicit_port: bool,
}

impl Destination {
    /// The value of the `Host` header for this destination.
    fn host_header(&self) -> String {
        if self.explicit_port {
            format!("{}:{}", self.host, self.port)
        } else {
            self.host.clone()
        }
    }
}

/// Why a request got no response.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The destination is, or resolves to, an address the policy refuses; nothing was
    /// connected to.
    PrivateAddress,
    /// It failed before reaching the network (no address, an invalid request).
    NotConnected(HttpError),
    /// It was handed to the network and failed there.
    Failed(HttpError),
}

/// Sends `request` to `destination` through `resolver`, under `options` (already capped:
/// every timeout is set). The response head must arrive within the connect and first-byte
/// timeouts together; each frame of its body within the between-bytes timeout of the last.
pub(super) async fn send(
    request: Request<WasiBody>,
    destination: &Destination,
    resolver: CheckedResolver,
    options: &RequestOptions,
) -> Result<Response<WasiBody>, Refusal> {
    let connect = options.connect_timeout.unwrap_or_default();
    let first_byte = options.first_byte_timeout.unwrap_or_default();
    let between_bytes = options.between_bytes_timeout.unwrap_or_default();
    let client = EgressClient::new(
        resolver,
        EgressOptions {
            connect_timeout: connect,
            ..EgressOptions::default()
        },
    )
    .map_err(|e| Refusal::NotConnected(HttpError::InternalError(Some(e.to_string()))))?;
    let request = into_reqwest(request, destination).map_err(Refusal::NotConnected)?;
    let head = tokio::time::timeout(connect.saturating_add(first_byte), client.execute(request));
    let response = match head.await {
        Err(_) => return Err(Refusal::Failed(HttpError::ConnectionReadTimeout)),
        Ok(Ok(response)) => response,
        Ok(Err(EgressError::Resolve(ResolveError::PrivateAddress { .. }))) => {
            return Err(Refusal::PrivateAddress);
        }
        Ok(Err(EgressError::Resolve(ResolveError::NotFound { .. }))) => {
            return Err(Refusal::NotConnected(HttpError::DestinationNotFound));
        }
        Ok(Err(EgressError::Resolve(ResolveError::Lookup { .. }))) => {
            return Err(Refusal::NotConnected(HttpError::DnsError {
                rcode: Some("address not available".to_owned()),
                info_code: None,
            }));
        }
        Ok(Err(EgressError::Request(error))) => return Err(Refusal::Failed(request_error(&error))),
        Ok(Err(error @ EgressError::Client(_))) => {
            return Err(Refusal::NotConnected(HttpError::InternalError(Some(
                error.to_string(),
            ))));
        }
    };
    let response = Response::<reqwest::Body>::from(response);
    Ok(response.map(|body| BetweenBytes::new(body, between_bytes).boxed_unsync()))
}

/// The guest's request as reqwest sends it: aimed at `host:port` (any user info dropped),
/// with a `Host` header naming the destination unless the guest set one, over HTTP/1.1.
fn into_reqwest(
    request: Request<WasiBody>,
    destination: &Destination,
) -> Result<reqwest::Request, HttpError> {
    let mut request = retarget(request, destination)?;
    *request.version_mut() = Version::HTTP_11;
    let request = request.map(|body| reqwest::Body::wrap(SyncBody(Mutex::new(body))));
    reqwest::Request::try_from(request).map_err(|_| HttpError::HttpRequestUriInvalid)
}

/// Points the request at `host:port` exactly as admitted (dropping any user info), with the
/// `Host` header on the requested name.
pub(crate) fn retarget(
    mut request: Request<WasiBody>,
    destination: &Destination,
) -> Result<Request<WasiBody>, HttpError> {
    if !request.headers().contains_key(HOST) {
        let host = HeaderValue::try_from(destination.host_header())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        request.headers_mut().insert(HOST, host);
    }
    let authority = format!("{}:{}", destination.host, destination.port);
    let mut parts = request.uri().clone().into_parts();
    parts.authority =
        Some(Authority::try_from(authority).map_err(|_| HttpError::HttpRequestUriInvalid)?);
    *request.uri_mut() = Uri::from_parts(parts).map_err(|_| HttpError::HttpRequestUriInvalid)?;
    Ok(request)
}

/// The `wasi:http` error for a request that failed on the network.
fn request_error(error: &reqwest::Error) -> HttpError {
    if error.is_timeout() {
        return if error.is_connect() {
            HttpError::ConnectionTimeout
        } else {
            HttpError::ConnectionReadTimeout
        };
    }
    if !error.is_connect() {
        return HttpError::HttpProtocolError;
    }
    let mut cause = std::error::Error::source(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::ConnectionRefused => HttpError::ConnectionRefused,
                io::ErrorKind::TimedOut => HttpError::ConnectionTimeout,
                // rustls reports a failed handshake (a certificate not valid for the name,
                // say) as invalid data.
                io::ErrorKind::InvalidData => HttpError::TlsProtocolError,
                _ => HttpError::DestinationUnavailable,
            };
        }
        cause = current.source();
    }
    HttpError::DestinationUnavailable
}

/// The guest's request body, made `Sync` as reqwest wants it: it is only ever polled through
/// `&mut`, so the lock is never contended.
struct SyncBody(Mutex<WasiBody>);

impl Body for SyncBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let body = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        Pin::new(body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.try_lock().is_ok_and(|body| body.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .try_lock()
            .map(|body| body.size_hint())
            .unwrap_or_default()
    }
}

/// A response body that fails with `connection-read-timeout` when its next frame takes longer
/// than `limit` after the previous one (or after the head).
struct BetweenBytes {
    inner: reqwest::Body,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl BetweenBytes {
    fn new(inner: reqwest::Body, limit: Duration) -> Self {
        BetweenBytes {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl Body for BetweenBytes {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = Instant::now() + this.limit;
                this.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(if error.is_timeout() {
                HttpError::ConnectionReadTimeout
            } else {
                HttpError::HttpProtocolError
            }))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;

    fn request(uri: &str) -> Request<WasiBody> {
        let body = Empty::<Bytes>::new()
            .map_err(HttpError::from)
            .boxed_unsync();
        let mut request = Request::new(body);
        *request.uri_mut() = uri.parse().unwrap_or_default();
        request
    }

    fn destination(host: &str, port: u16, explicit_port: bool) -> Destination {
        Destination {
            host: host.to_owned(),
            port,
            explicit_port,
        }
    }

    #[test]
    fn the_name_stays_in_the_uri_and_the_host_header() {
        let request = retarget(
            request("http://api.example.com/v1?q=1"),
            &destination("api.example.com", 80, false),
        );
        let Ok(request) = request else {
            panic!("retarget failed");
        };
        assert_eq!(
            request.uri().to_string(),
            "http://api.example.com:80/v1?q=1"
        );
        assert_eq!(
            request.headers().get(HOST).map(HeaderValue::as_bytes),
            Some(&b"api.example.com"[..])
        );
    }

    #[test]
    fn user_info_is_dropped_and_an_explicit_port_kept() {
        let request = retarget(
            request("https://user@api.example.com:8443/"),
            &destination("api.example.com", 8443, true),
        );
        let Ok(request) = request else {
            panic!("retarget failed");
        };
        assert_eq!(request.uri().to_string(), "https://api.example.com:8443/");
        assert_eq!(
            request.headers().get(HOST).map(HeaderValue::as_bytes),
            Some(&b"api.example.com:8443"[..])
        );
    }
}
