"""Emitting platform events. Requires `permissions.events.emit` topics.

    from plinth_sdk import events

    events.emit("notify.sent", {"order": 42})     # a dict is sent as JSON

An emitted event reaches every active install of the same tenant subscribed to its topic, with
`depth` one greater than the event being handled. A refusal raises `EmitError` (a
`CapabilityError`); nothing was emitted.
"""

from __future__ import annotations

from typing import Any

from . import _bindings
from .errors import CapabilityError
from .plugin import encode_output, json

__all__ = ["EmitError", "emit", "emit_json"]


class EmitError(CapabilityError):
    """The host refused an emit; nothing was emitted.

    Attributes:
        reason: the `emit-error` case: `undeclared-topic`, `depth-exceeded`,
            `payload-too-large` or `rate-limited`.
        detail: the topic, the depth limit, the payload limit in bytes, or None.
    """

    def __init__(self, call: str, reason: str, detail: str | int | None) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{call}: {_describe(reason, detail)}")


def _describe(reason: str, detail: str | int | None) -> str:
    """The sentence for an `emit-error` case, as the Rust SDK words it."""
    if reason == "undeclared-topic":
        return f"cannot emit on `{detail}`: the manifest does not declare it"
    if reason == "depth-exceeded":
        return f"cannot emit: the event depth limit of {detail} is reached"
    if reason == "payload-too-large":
        return f"cannot emit: the payload is over the {detail}-byte limit"
    if reason == "rate-limited":
        return "cannot emit: too many events in this call"
    return f"cannot emit: {reason}"


#: The `emit-error` case of each generated class name.
_REASONS = {
    "EmitError_UndeclaredTopic": "undeclared-topic",
    "EmitError_DepthExceeded": "depth-exceeded",
    "EmitError_PayloadTooLarge": "payload-too-large",
    "EmitError_RateLimited": "rate-limited",
}


def emit(topic: str, payload: Any = None) -> None:
    """Emits an event on `topic`.

    The payload is encoded like an `on_event` output: bytes as they are, `str` as UTF-8 (not
    quoted), None as an empty payload, anything else as JSON. Use `emit_json` to send a `str`
    as a JSON string.
    """
    call = f"events.emit({topic!r})"
    data = encode_output(payload) or b""
    module = _bindings.capability("events", call)
    err_type = _bindings.err_type()
    try:
        module.emit(topic, data)
    except err_type as err:
        value = err.value  # type: ignore[attr-defined]
        reason = _REASONS.get(type(value).__name__, type(value).__name__)
        raise EmitError(call, reason, getattr(value, "value", None)) from None


def emit_json(topic: str, value: Any) -> None:
    """Emits an event on `topic` whose payload is `value` as JSON (a `str` becomes a JSON
    string)."""
    emit(topic, json(value))
