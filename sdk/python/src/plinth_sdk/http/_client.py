"""The blocking outbound client over `wasi:http/outgoing-handler`."""

from __future__ import annotations

import contextlib
import json as _json
from typing import Any

from .. import _bindings
from ._body import read_all, write_all
from ._errors import HttpError, case_name, describe_error_code, error_code_name
from ._message import Headers, Response, header_pairs
from ._url import Target, parse_url

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "delete",
    "get",
    "post",
    "post_json",
    "put",
    "request",
]

#: The largest response body read unless told otherwise (16 MiB).
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Seconds to connect, to wait for the first byte of the response, and between bytes, unless
#: told otherwise. The host caps each of them too (and the whole call has its own timeout).
DEFAULT_TIMEOUT = 10.0

#: Methods `wasi:http` names; any other valid token is sent as `other`.
_METHODS = {
    "GET": "Method_Get",
    "HEAD": "Method_Head",
    "POST": "Method_Post",
    "PUT": "Method_Put",
    "DELETE": "Method_Delete",
    "CONNECT": "Method_Connect",
    "OPTIONS": "Method_Options",
    "TRACE": "Method_Trace",
    "PATCH": "Method_Patch",
}
#: Characters of an HTTP token (RFC 9110), the syntax of a method.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
#: Sentinel: no `json=` argument (None is a valid JSON value).
_NO_JSON: Any = object()


def request(
    method: str,
    url: str,
    *,
    headers: Headers | None = None,
    body: bytes | bytearray | str | None = None,
    json: Any = _NO_JSON,
    timeout: float | None = DEFAULT_TIMEOUT,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> Response:
    """Sends a request and reads the whole response, blocking until it has arrived.

    Args:
        method: e.g. `GET`, `POST`, or any other HTTP method token.
        url: an absolute `http://` or `https://` URL whose host is on the manifest's
            `permissions.http.hosts` allowlist.
        headers: a mapping or (name, value) pairs.
        body: the request body (`str` is sent as UTF-8).
        json: a value sent as the JSON body, with `content-type: application/json`
            (instead of `body`).
        timeout: seconds to connect, to wait for the first response byte and between bytes
            (None: the host's own limits).
        max_response_bytes: the largest response body read.

    A non-2xx status is not an error: check `Response.status` or `Response.ok`.

    Raises:
        HttpError: (a `CapabilityError`) with `reason` `invalid-url` or `invalid-request`
            before anything is sent; `refused` when the host denies the request (a host off
            the allowlist: `code` is `http-request-denied`); `failed` when it fails in
            transport (`code` says how, e.g. `connection-refused`, `dns-error`); `body` or
            `too-large` while the bodies move. Messages name the method and host, never the
            path or query (they may carry secrets).
    """
    target = parse_url(url)
    method = _check_method(method, target)
    call = f"http {method} {_origin(target)}"
    pairs = header_pairs(headers)
    data = _body_bytes(body, json, pairs, call)
    if (data or method in ("POST", "PUT", "PATCH")) and not any(
        name.lower() in ("content-length", "transfer-encoding") for name, _ in pairs
    ):
        # The whole body is known: say how long it is rather than stream it chunked, which
        # some receivers do not accept.
        pairs.append(("content-length", str(len(data))))

    http = _bindings.http_types(call)
    handler = _bindings.capability("outgoing_handler", call)
    err_type = _bindings.err_type()
    options = _options(http, timeout)

    try:
        fields = http.Fields.from_list([(name, value.encode("utf-8")) for name, value in pairs])
    except err_type as err:
        raise HttpError(
            "invalid-request",
            f"{call}: the host refuses the headers ({case_name(err.value)})",  # type: ignore[attr-defined]
            host=target.host,
        ) from None
    outgoing = http.OutgoingRequest(fields)
    _set(outgoing.set_method, _method(http, method), err_type, call, "method", target)
    scheme = http.Scheme_Https() if target.https else http.Scheme_Http()
    _set(outgoing.set_scheme, scheme, err_type, call, "scheme", target)
    _set(outgoing.set_authority, target.authority, err_type, call, "host", target)
    _set(outgoing.set_path_with_query, target.path_with_query, err_type, call, "path", target)
    outgoing_body = outgoing.body()

    # Hand the request to the host first and stream the body after: the host buffers only a
    # few chunks, so writing a large body before `handle` would wait forever.
    try:
        future = handler.handle(outgoing, options)
    except err_type as err:
        _bindings.drop(outgoing_body)
        raise _request_error(call, target, err.value) from None  # type: ignore[attr-defined]
    try:
        written: HttpError | None = None
        try:
            write_all(http, outgoing_body, data, f"{call}: the request body")
        except HttpError as err:
            written = err
        # If the host refused the request, its reason beats the closed body stream's.
        response = _wait(http, future, call, target)
        try:
            if written is not None:
                raise written
            return _read_response(http, response, call, max_response_bytes)
        finally:
            _bindings.drop(response)
    except HttpError as err:
        err.host = err.host or target.host
        raise
    finally:
        # The response was dropped first: the future goes last.
        _bindings.drop(future)


def _read_response(http: Any, response: Any, call: str, max_response_bytes: int) -> Response:
    """The status, headers and whole body of an `incoming-response`."""
    status = int(response.status())
    fields = response.headers()
    try:
        entries = fields.entries()
    finally:
        # The headers are a child of the response.
        _bindings.drop(fields)
    try:
        incoming_body = response.consume()
    except _bindings.err_type():
        raise HttpError("body", f"{call}: the response body was already taken") from None
    content = read_all(http, incoming_body, max_response_bytes, f"{call}: the response body")
    return Response(
        status,
        [(str(name), bytes(value).decode("utf-8", errors="replace")) for name, value in entries],
        content,
    )


def get(url: str, **kwargs: Any) -> Response:
    """A `GET` request; see `request` for the keyword arguments."""
    return request("GET", url, **kwargs)


def post(url: str, body: bytes | bytearray | str | None = None, **kwargs: Any) -> Response:
    """A `POST` request with `body`; see `request` for the keyword arguments."""
    return request("POST", url, body=body, **kwargs)


def post_json(url: str, value: Any, **kwargs: Any) -> Response:
    """A `POST` request whose body is `value` as JSON; see `request`."""
    return request("POST", url, json=value, **kwargs)


def put(url: str, body: bytes | bytearray | str | None = None, **kwargs: Any) -> Response:
    """A `PUT` request with `body`; see `request` for the keyword arguments."""
    return request("PUT", url, body=body, **kwargs)


def delete(url: str, **kwargs: Any) -> Response:
    """A `DELETE` request; see `request` for the keyword arguments."""
    return request("DELETE", url, **kwargs)


def _origin(target: Target) -> str:
    """`scheme://authority`: what a message may show of a URL."""
    return f"{'https' if target.https else 'http'}://{target.authority}"


def _check_method(method: str, target: Target) -> str:
    """`method` upper-cased if it is a standard one; any other valid token as given."""
    if not method or any(c not in _TOKEN for c in method):
        raise HttpError(
            "invalid-request", f"http {method!r}: not a valid HTTP method", host=target.host
        )
    return method.upper() if method.upper() in _METHODS else method


def _body_bytes(
    body: bytes | bytearray | str | None, value: Any, pairs: list[tuple[str, str]], call: str
) -> bytes:
    """The request body, setting `content-type: application/json` for a `json=` value."""
    if value is not _NO_JSON:
        if body is not None:
            raise HttpError("invalid-request", f"{call}: pass either body= or json=, not both")
        try:
            text = _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as err:
            raise HttpError(
                "invalid-request", f"{call}: cannot serialize the JSON body: {err}"
            ) from None
        pairs[:] = [(k, v) for k, v in pairs if k.lower() != "content-type"]
        pairs.append(("content-type", "application/json"))
        return text.encode("utf-8")
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def _method(http: Any, method: str) -> Any:
    """The generated `Method` value for `method`."""
    name = _METHODS.get(method)
    return getattr(http, name)() if name else http.Method_Other(method)


def _set(setter: Any, value: Any, err_type: Any, call: str, what: str, target: Target) -> None:
    """Calls a request setter, which fails (with `Err(None)`) on a value the host refuses."""
    try:
        setter(value)
    except err_type:
        raise HttpError("invalid-request", f"{call}: invalid {what}", host=target.host) from None


def _options(http: Any, timeout: float | None) -> Any:
    """Request options carrying `timeout` as every timeout the host supports, or None."""
    if timeout is None:
        return None
    if timeout <= 0:
        raise ValueError(f"the timeout must be positive, not {timeout}")
    nanos = min(int(timeout * 1_000_000_000), 2**64 - 1)
    options = http.RequestOptions()
    err_type = _bindings.err_type()
    for setter in (
        options.set_connect_timeout,
        options.set_first_byte_timeout,
        options.set_between_bytes_timeout,
    ):
        # A host that does not support this timeout refuses it; it applies its own.
        with contextlib.suppress(err_type):
            setter(nanos)
    return options


def _wait(http: Any, future: Any, call: str, target: Target) -> Any:
    """Blocks on the future until the response, or the reason there is none, arrives."""
    while True:
        outcome = future.get()
        if outcome is None:
            pollable = future.subscribe()
            try:
                pollable.block()
            finally:
                _bindings.drop(pollable)
            continue
        if not _bindings.is_ok(outcome):
            raise HttpError("body", f"{call}: the response was already taken", host=target.host)
        inner = outcome.value
        if not _bindings.is_ok(inner):
            raise _request_error(call, target, inner.value)
        return inner.value


def _request_error(call: str, target: Target, code: Any) -> HttpError:
    """The `HttpError` for a `wasi:http` error code the host answered instead of a response."""
    name = error_code_name(code)
    if name == "http-request-denied":
        return HttpError(
            "refused",
            f"{call}: the host refused the request to `{target.host}` (http-request-denied): "
            "it is not on the allowlist in permissions.http.hosts, it resolves to a private "
            "address, or this call's request budget or the tenant's rate is spent",
            code=name,
            host=target.host,
        )
    return HttpError(
        "failed",
        f"{call}: the request to `{target.host}` failed: {describe_error_code(code)}",
        code=name,
        host=target.host,
    )
