"""Serving HTTP: moves `wasi:http/incoming-handler` calls to `Plugin.on_request`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _bindings
from ..errors import InvalidPayload, PluginError, full_traceback
from ._body import read_all, write_all
from ._errors import HttpError, case_name
from ._message import IncomingRequest, Response

__all__ = ["MAX_REQUEST_BODY_BYTES", "response_for_exception", "serve"]

#: The largest request body read before calling `on_request` (10 MiB); a larger one is
#: answered with `413 Payload Too Large`.
MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024

#: Method names of the generated `Method_*` classes.
_METHOD_NAMES = {
    "Method_Get": "GET",
    "Method_Head": "HEAD",
    "Method_Post": "POST",
    "Method_Put": "PUT",
    "Method_Delete": "DELETE",
    "Method_Connect": "CONNECT",
    "Method_Options": "OPTIONS",
    "Method_Trace": "TRACE",
    "Method_Patch": "PATCH",
}


def serve(handle: Callable[[IncomingRequest], Response], request: Any, response_out: Any) -> None:
    """Reads `request`, calls `handle` and sends its response through `response_out`.

    Never raises: a body over `MAX_REQUEST_BODY_BYTES` is answered `413`, an unreadable one
    `400`, and an exception escaping `handle` as described by `response_for_exception`.
    """
    http = _bindings.http_types("http.serve")
    try:
        incoming = _read_request(http, request)
    except HttpError as err:
        status = 413 if err.reason == "too-large" else 400
        response = Response.from_text(str(err), status=status)
    except BaseException as exc:  # noqa: BLE001 — a bug reading the request still gets an answer
        response = response_for_exception(exc, IncomingRequest(method="?", path_with_query="/"))
    else:
        try:
            response = handle(incoming)
            if not isinstance(response, Response):
                raise TypeError(
                    "on_request must return a plinth_sdk.http.Response, "
                    f"not {type(response).__name__}"
                )
        except BaseException as exc:  # noqa: BLE001 — every failure becomes an answer
            response = response_for_exception(exc, incoming)
    _bindings.drop(request)
    _respond(http, response_out, response)


def response_for_exception(exc: BaseException, request: IncomingRequest) -> Response:
    """What a failing `on_request` answers.

    `InvalidPayload` (e.g. from `request.json()`) is the caller's mistake: `400` with its
    message. Another `PluginError` is `500` with its message (the plugin chose it). Any other
    exception is `500` naming only the exception's type, because the caller may be anyone on
    the internet; its full traceback goes to the plugin's log.
    """
    if isinstance(exc, InvalidPayload):
        return Response.from_text(exc.message, status=400)
    if isinstance(exc, PluginError):
        return Response.from_text(exc.message, status=500)
    from .. import log  # noqa: PLC0415 — log imports nothing of http; kept local for symmetry

    log.error(
        "on_request failed",
        method=request.method,
        path=request.path,
        exception=full_traceback(exc),
    )
    return Response.from_text(
        f"the plugin failed to handle the request ({type(exc).__name__})", status=500
    )


def _read_request(http: Any, request: Any) -> IncomingRequest:
    """The `IncomingRequest` of a `wasi:http` request, its body read."""
    method = request.method()
    name = _METHOD_NAMES.get(type(method).__name__) or str(getattr(method, "value", "GET"))
    path = request.path_with_query() or "/"
    fields = request.headers()
    try:
        entries = fields.entries()
    finally:
        _bindings.drop(fields)
    headers = [(str(key), bytes(value).decode("utf-8", errors="replace")) for key, value in entries]
    err_type = _bindings.err_type()
    try:
        body = request.consume()
    except err_type:
        raise HttpError("body", "the request body was already taken") from None
    content = read_all(http, body, MAX_REQUEST_BODY_BYTES, "the request body")
    return IncomingRequest(method=name, path_with_query=path, headers=headers, body=content)


def _respond(http: Any, response_out: Any, response: Response) -> None:
    """Sends `response`: status and headers first, then the streamed body."""
    err_type = _bindings.err_type()
    status, body = response.status, response.body
    try:
        fields = http.Fields.from_list(
            [(name, value.encode("utf-8")) for name, value in response.headers]
        )
    except err_type as err:
        status = 500
        body = (
            f"the plugin returned a header the host refuses ({case_name(err.value)})"  # type: ignore[attr-defined]
        ).encode()
        fields = http.Fields()
    outgoing = http.OutgoingResponse(fields)
    try:
        outgoing.set_status_code(status)
    except err_type:
        # Not a valid status code: answer 500 rather than a response the host cannot send.
        outgoing.set_status_code(500)
    outgoing_body = outgoing.body()
    http.ResponseOutparam.set(response_out, _bindings.make_ok(outgoing))
    try:
        write_all(http, outgoing_body, body, "the response body")
    except HttpError as err:
        from .. import log  # noqa: PLC0415

        log.warn(f"sending the HTTP response body failed: {err}")
