"""`Event`: one event delivered to `Plugin.on_event`."""

from __future__ import annotations

import json as _json
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from .errors import InvalidPayload

T = TypeVar("T")

__all__ = ["Event", "json_type_name"]


@dataclass(frozen=True)
class Event:
    """One event delivered to `Plugin.on_event`.

    Attributes:
        id: Unique id of this delivery (a UUIDv7 string). The same id is never delivered twice
            to the same install, so it can make side effects idempotent.
        topic: The topic the event was published on, e.g. `order.created`; always one the
            manifest subscribes to.
        tenant: The id of the tenant the plugin runs for (stable, unlike its slug).
        depth: How many `events.emit` hops led to this event: 0 for an event from outside.
        payload: The raw payload; by convention UTF-8 JSON (see `json`).
    """

    id: str
    topic: str
    tenant: str
    depth: int
    payload: bytes

    def text(self) -> str:
        """The payload as UTF-8 text.

        Raises:
            InvalidPayload: naming the topic and the offending byte, if it is not UTF-8.
        """
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidPayload(
                f"the payload of `{self.topic}` is not UTF-8 text: {err.reason} at byte {err.start}"
            ) from None

    @overload
    def json(self) -> Any: ...

    @overload
    def json(self, expected: type[T]) -> T: ...

    def json(self, expected: type[Any] | None = None) -> Any:
        """The payload decoded as JSON, optionally checked to be of type `expected`.

        `expected` is one of `str`, `int`, `float`, `bool`, `list`, `dict` (the JSON types as
        Python decodes them; `float` also accepts integers). For example, a `greet` event whose
        payload must be a JSON string:

            name = event.json(str)

        Raises:
            InvalidPayload: naming the topic and the problem, if the payload is not UTF-8 JSON
                or not of the expected type.
        """
        text = self.text()
        try:
            value = _json.loads(text)
        except ValueError as err:
            raise InvalidPayload(
                f"the payload of `{self.topic}` is not the expected JSON: {err}"
            ) from None
        if expected is not None and not _is_instance(value, expected):
            raise InvalidPayload(
                f"the payload of `{self.topic}` is not the expected JSON: expected "
                f"{json_type_name(expected)}, got {json_type_name(type(value))}"
            )
        return value


def _is_instance(value: Any, expected: type[Any]) -> bool:
    """`isinstance` for decoded JSON, where `bool` is not an `int` and an `int` is a `float`."""
    if isinstance(value, bool) and expected in (int, float):
        return False
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


_JSON_TYPE_NAMES: dict[type[Any], str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def json_type_name(kind: type[Any]) -> str:
    """How JSON calls values of Python type `kind`, e.g. `a string` for `str`."""
    return _JSON_TYPE_NAMES.get(kind, kind.__name__)
