"""`Response` and `IncomingRequest`: HTTP messages as plain Python values."""

from __future__ import annotations

import json as _json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidPayload
from ._errors import HttpError

__all__ = ["Headers", "IncomingRequest", "Response", "find_header", "header_pairs"]

#: Headers as given by a caller: a mapping, or (name, value) pairs (a name may repeat).
Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def header_pairs(headers: Headers | None) -> list[tuple[str, str]]:
    """`headers` as a list of (name, value) text pairs, in order."""
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(name), str(value)) for name, value in items]


def find_header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of header `name` (case-insensitively), or None."""
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def _json_bytes(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON."""
    return _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


@dataclass
class Response:
    """An HTTP response: what `http.request` receives and what `Plugin.on_request` returns.

        Response(201, [("x-id", "42")], b"created")
        Response.from_json({"ok": True})              # 200, content-type: application/json
        Response.from_text("not here", status=404)    # text/plain; charset=utf-8

    Attributes:
        status: the status code, e.g. 200.
        headers: (name, value) pairs in order; a name may repeat.
        body: the whole body.
    """

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def __post_init__(self) -> None:
        # Accept the convenient forms, keep one representation.
        self.headers = header_pairs(self.headers)
        if isinstance(self.body, str):
            self.body = self.body.encode("utf-8")
        elif not isinstance(self.body, bytes):
            self.body = bytes(self.body)

    @classmethod
    def from_json(
        cls, value: Any, *, status: int = 200, headers: Headers | None = None
    ) -> Response:
        """A response whose body is `value` as JSON, with `content-type: application/json`.

        A value that cannot be serialized gives a `500` naming the problem, as the Rust SDK
        does.
        """
        pairs = [(k, v) for k, v in header_pairs(headers) if k.lower() != "content-type"]
        try:
            body = _json_bytes(value)
        except (TypeError, ValueError) as err:
            return cls.from_text(f"cannot serialize the response: {err}", status=500)
        return cls(status, [*pairs, ("content-type", "application/json")], body)

    @classmethod
    def from_text(cls, text: str, *, status: int = 200, headers: Headers | None = None) -> Response:
        """A response whose body is `text`, with `content-type: text/plain; charset=utf-8`."""
        pairs = [(k, v) for k, v in header_pairs(headers) if k.lower() != "content-type"]
        return cls(
            status, [*pairs, ("content-type", "text/plain; charset=utf-8")], text.encode("utf-8")
        )

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """The first header named `name` (case-insensitively), or None."""
        return find_header(self.headers, name)

    def text(self) -> str:
        """The body as UTF-8 text.

        Raises:
            HttpError: (reason `decode`) if it is not UTF-8.
        """
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise HttpError(
                "decode", f"cannot decode the HTTP body: not UTF-8 text: {err.reason}"
            ) from None

    def json(self) -> Any:
        """The body decoded as JSON.

        Raises:
            HttpError: (reason `decode`) if it is not UTF-8 JSON.
        """
        text = self.text()
        try:
            return _json.loads(text)
        except ValueError as err:
            raise HttpError("decode", f"cannot decode the HTTP body: {err}") from None


@dataclass
class IncomingRequest:
    """An HTTP request received by `Plugin.on_request`; its whole body has been read.

    Attributes:
        method: the method in upper case, e.g. `GET`.
        path_with_query: the path and query with the `/p/{tenant}/{plugin}` prefix removed,
            e.g. `/items?page=2` (at least `/`).
        headers: (name, value) pairs in order; a name may repeat.
        body: the whole body.
    """

    method: str
    path_with_query: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def path(self) -> str:
        """The path without the query, e.g. `/items`."""
        return self.path_with_query.split("?", 1)[0]

    @property
    def query(self) -> str | None:
        """The query without the `?`, or None when there is none."""
        parts = self.path_with_query.split("?", 1)
        return parts[1] if len(parts) == 2 else None

    def header(self, name: str) -> str | None:
        """The first header named `name` (case-insensitively), or None."""
        return find_header(self.headers, name)

    def text(self) -> str:
        """The body as UTF-8 text.

        Raises:
            InvalidPayload: if it is not UTF-8 (answered as `400 Bad Request` when it escapes
                `on_request`).
        """
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidPayload(
                f"the request body is not UTF-8 text: {err.reason} at byte {err.start}"
            ) from None

    def json(self) -> Any:
        """The body decoded as JSON.

        Raises:
            InvalidPayload: naming the problem (answered as `400 Bad Request` when it escapes
                `on_request`).
        """
        text = self.text()
        try:
            return _json.loads(text)
        except ValueError as err:
            raise InvalidPayload(f"the request body is not JSON: {err}") from None
