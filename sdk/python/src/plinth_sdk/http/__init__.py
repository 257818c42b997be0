"""HTTP: a small blocking client for outbound requests, and the messages of plugins that serve
HTTP.

Outbound requests require the `http` permission; the host refuses, on every request and
redirect, any host not on the manifest's `permissions.http.hosts` allowlist, and the refusal
raises `HttpError` (a `CapabilityError`) with `reason == "refused"` naming the host and the
`wasi:http` error code:

    from plinth_sdk import http, log

    response = http.post_json("https://hooks.example.com/notify", {"text": "order created"})
    if not response.ok:
        log.warn("webhook answered", status=response.status)

A plugin built for the `http-plugin` world serves HTTP under `/p/{tenant}/{plugin}/…` by
overriding `Plugin.on_request(request: IncomingRequest) -> Response`; the SDK reads the whole
request body first (at most `MAX_REQUEST_BODY_BYTES`, else it answers `413`).
"""

from ._client import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    delete,
    get,
    post,
    post_json,
    put,
    request,
)
from ._errors import HttpError
from ._message import Headers, IncomingRequest, Response
from ._server import MAX_REQUEST_BODY_BYTES
from ._url import Target, parse_url

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "MAX_REQUEST_BODY_BYTES",
    "Headers",
    "HttpError",
    "IncomingRequest",
    "Response",
    "Target",
    "delete",
    "get",
    "parse_url",
    "post",
    "post_json",
    "put",
    "request",
]
