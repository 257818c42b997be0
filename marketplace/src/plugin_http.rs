//! `ANY /p/{tenant}/{plugin}/{*path}`: HTTP requests served by an install's
//! `wasi:http/incoming-handler`.
//!
//! The request passes the admission gate as events do ([`crate::admission`]: the tenant's API
//! key or a member's token, the API rate, the monthly quota; the call itself waits for the
//! tenant's share of the host); another tenant's install, or none, answers 404. The plugin sees the method, the path below its
//! prefix with the query, the headers without `authorization`, and the body (at most
//! [`MAX_REQUEST_BYTES`], else 413). Its response is returned as it is; the host caps its body
//! at the install's output limit. A plugin that serves no HTTP answers 501
//! `not_serving_http`; a failed call answers 502 with the call's error code (`trap`,
//! `timeout`, `output_too_large`, …).

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use plinth_host::InvokeError;
use utoipa_axum::router::OpenApiRouter;

use crate::admission;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::installs::host_error;
use crate::state::AppState;

/// The largest request body forwarded to a plugin.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Request headers never forwarded to a plugin: the caller's credentials.
const DROPPED_HEADERS: [header::HeaderName; 2] = [header::AUTHORIZATION, header::COOKIE];

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/p/{tenant}/{plugin}", any(serve))
        .route("/p/{tenant}/{plugin}/{*path}", any(serve))
}

/// The path and query the plugin sees: what follows `/p/{tenant}/{plugin}` in the raw
/// (still percent-encoded) URI, always starting with `/`.
fn plugin_uri(uri: &Uri) -> Result<Uri> {
    let rest = uri
        .path()
        .strip_prefix("/p/")
        .and_then(|rest| rest.splitn(3, '/').nth(2))
        .unwrap_or("");
    let mut target = format!("/{rest}");
    if let Some(query) = uri.query() {
        target.push('?');
        target.push_str(query);
    }
    target
        .parse()
        .map_err(|e| Error::bad_request("invalid_path", format!("the request path: {e}")))
}

/// Forwards the request to the tenant's install of the plugin and returns its response
/// (tenant API key or member).
async fn serve(
    State(state): State<AppState>,
    principal: Principal,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
) -> Result<Response> {
    let (slug, plugin) = match (params.get("tenant"), params.get("plugin")) {
        (Some(slug), Some(plugin)) => (slug, plugin),
        _ => return Err(Error::not_found("route")),
    };
    let admitted = admission::admit(&state, &principal, slug).await?;
    let tenant = admitted.tenant;
    let runtime = state.runtime()?;
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return Err(Error::PayloadTooLarge {
            limit: MAX_REQUEST_BYTES,
        });
    }
    let bytes: Bytes = axum::body::to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if too_large {
                Error::PayloadTooLarge {
                    limit: MAX_REQUEST_BYTES,
                }
            } else {
                Error::bad_request(
                    "invalid_body",
                    format!("the request body could not be read: {e}"),
                )
            }
        })?;
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if !DROPPED_HEADERS.contains(name) {
            headers.append(name, value.clone());
        }
    }
    let mut forwarded = axum::http::Request::new(bytes);
    *forwarded.method_mut() = parts.method;
    *forwarded.uri_mut() = plugin_uri(&parts.uri)?;
    *forwarded.headers_mut() = headers;
    let served = match runtime
        .host
        .serve_http(&tenant.id, plugin, forwarded, Some(admitted.quota))
        .await
    {
        Ok(served) => served,
        Err(plinth_host::Error::NotServingHttp { plugin }) => {
            return Err(Error::Plugin {
                status: StatusCode::NOT_IMPLEMENTED,
                code: "not_serving_http",
                message: format!("{plugin} does not serve HTTP"),
            });
        }
        Err(plinth_host::Error::NotInstalled { .. }) => {
            return Err(Error::not_found(format!("install of {plugin}")));
        }
        Err(e) => return Err(host_error(e)),
    };
    let error = match served.response {
        Ok(response) => return Ok(response.map(Body::from)),
        Err(error) => error,
    };
    if let Some(refused) = admission::refusal(&error) {
        return Err(refused);
    }
    match error {
        InvokeError::CircuitOpen { retry_after_ms } => Err(Error::CircuitOpen {
            message: format!(
                "{plugin} {} is not called: {error}; a tenant admin can reset its breaker",
                served.version
            ),
            retry_after_secs: retry_after_ms.div_ceil(1000).max(1),
        }),
        error => {
            tracing::info!(tenant = %tenant.slug, plugin, version = %served.version, code = error.code(), "plugin HTTP call failed");
            Err(Error::Plugin {
                status: StatusCode::BAD_GATEWAY,
                code: error.code(),
                message: format!("{plugin} {} failed: {error}", served.version),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_sees_the_path_below_its_prefix() {
        let cases = [
            ("/p/acme/examples.echo", "/"),
            ("/p/acme/examples.echo/", "/"),
            ("/p/acme/examples.echo/a/b%20c?x=1&y", "/a/b%20c?x=1&y"),
            ("/p/acme/examples.echo?q", "/?q"),
        ];
        for (uri, expected) in cases {
            let uri: Uri = uri.parse().unwrap_or_else(|e| panic!("{uri}: {e}"));
            let seen = plugin_uri(&uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(seen.to_string(), expected, "{uri}");
        }
    }
}
