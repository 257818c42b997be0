"""Reading and writing `wasi:http` bodies through their `wasi:io` streams."""

from __future__ import annotations

from typing import Any

from .. import _bindings
from ._errors import HttpError, describe_error_code

__all__ = ["READ_CHUNK", "WRITE_CHUNK", "read_all", "write_all"]

#: How many bytes one read asks for.
READ_CHUNK = 64 * 1024
#: The most `blocking-write-and-flush` accepts at once.
WRITE_CHUNK = 4096


def read_all(http: Any, body: Any, limit: int, what: str) -> bytes:
    """Reads the whole `incoming-body` `body` and finishes it; `what` names it in errors
    (e.g. `http GET https://api.example.com: the response body`).

    Raises:
        HttpError: `too-large` past `limit` bytes, `body` when the stream fails part way.
    """
    err_type = _bindings.err_type()
    try:
        stream = body.stream()
    except err_type:
        _bindings.drop(body)
        raise HttpError("body", f"{what} stream was already taken") from None
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            try:
                chunk = stream.blocking_read(READ_CHUNK)
            except err_type as err:
                if _bindings.stream_error_closed(err.value):  # type: ignore[attr-defined]
                    break
                raise HttpError(
                    "body",
                    f"{what} failed: {_stream_failure(http, err.value)}",  # type: ignore[attr-defined]
                ) from None
            total += len(chunk)
            if total > limit:
                raise HttpError("too-large", f"{what} is over the {limit}-byte limit")
            chunks.append(bytes(chunk))
    except BaseException:
        # The stream is a child of the body: drop it first, then the body.
        _bindings.drop(stream)
        _bindings.drop(body)
        raise
    _bindings.drop(stream)
    # Finishing consumes the body; the future of its trailers is not needed.
    _bindings.drop(http.IncomingBody.finish(body))
    return b"".join(chunks)


def write_all(http: Any, body: Any, data: bytes, what: str) -> None:
    """Writes `data` to the `outgoing-body` `body` and finishes it (without trailers); `what`
    names it in errors.

    Raises:
        HttpError: `body` when the peer closes the stream or it fails.
    """
    err_type = _bindings.err_type()
    try:
        stream = body.write()
    except err_type:
        _bindings.drop(body)
        raise HttpError("body", f"{what} stream was already taken") from None
    try:
        for start in range(0, len(data), WRITE_CHUNK):
            try:
                stream.blocking_write_and_flush(data[start : start + WRITE_CHUNK])
            except err_type as err:
                if _bindings.stream_error_closed(err.value):  # type: ignore[attr-defined]
                    raise HttpError("body", f"{what} was closed by the peer") from None
                raise HttpError(
                    "body",
                    f"{what} failed: {_stream_failure(http, err.value)}",  # type: ignore[attr-defined]
                ) from None
    except BaseException:
        # Dropping an unfinished body tells the peer the body is incomplete.
        _bindings.drop(stream)
        _bindings.drop(body)
        raise
    _bindings.drop(stream)
    try:
        http.OutgoingBody.finish(body, None)
    except err_type as err:
        raise HttpError(
            "body",
            f"{what} failed: {describe_error_code(err.value)}",  # type: ignore[attr-defined]
        ) from None


def _stream_failure(http: Any, failure: Any) -> str:
    """The text of a `stream-error.last-operation-failed`: its HTTP error code if it has one."""
    error = getattr(failure, "value", None)
    if error is None:
        return "the stream failed"
    try:
        code = http.http_error_code(error)
        if code is not None:
            return describe_error_code(code)
        return str(error.to_debug_string())
    finally:
        _bindings.drop(error)
