"""`HttpError`: why an HTTP call failed, and the names of `wasi:http` error codes."""

from __future__ import annotations

import re
from typing import Any

from ..errors import CapabilityError

__all__ = ["HttpError", "case_name", "describe_error_code", "error_code_name"]


class HttpError(CapabilityError):
    """An outbound HTTP call (or decoding an HTTP body) failed.

    It is a `CapabilityError`, so unless caught it fails the call as `capability`.

    Attributes:
        reason: what went wrong: `invalid-url`, `invalid-request` (before anything was sent),
            `refused` (the host denied the request: `code` is `http-request-denied`),
            `failed` (DNS, connection, TLS, timeout…: `code` says which), `body` (reading or
            writing a body failed part way), `too-large` (the response body passed the cap),
            `decode` (a body is not the expected text or JSON).
        code: the `wasi:http` error code, e.g. `http-request-denied`, `connection-timeout`;
            None when the failure was not the host's.
        host: the host the request was for, when known.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        code: str | None = None,
        host: str | None = None,
    ) -> None:
        self.reason = reason
        self.code = code
        self.host = host
        super().__init__(message)


def case_name(value: Any) -> str:
    """The kebab-case WIT case of a generated variant value: `HeaderError_Forbidden` →
    `forbidden`, `ErrorCode_HttpRequestDenied` → `http-request-denied`."""
    name = type(value).__name__.split("_", 1)[-1]
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def error_code_name(code: Any) -> str:
    """The name of a `wasi:http` `error-code` value, e.g. `http-request-denied`."""
    return case_name(code)


def describe_error_code(code: Any) -> str:
    """`error_code_name(code)` with its payload, if any, e.g. `internal-error: no route`."""
    name = error_code_name(code)
    value = getattr(code, "value", None)
    if value is None:
        return name
    if isinstance(value, (str, int)):
        return f"{name}: {value}"
    # A payload record (DNS error, TLS alert, field size): its fields that are set.
    details = ", ".join(
        f"{key.replace('_', '-')} {item}" for key, item in vars(value).items() if item is not None
    )
    return f"{name} ({details})" if details else name
