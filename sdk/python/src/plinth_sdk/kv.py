"""A private key-value store of bytes. Requires the `kv` permission.

    from plinth_sdk import kv

    kv.set("greeting", "hello")               # str is stored as UTF-8
    assert kv.get_text("greeting") == "hello"
    kv.set_json("state", {"seen": 3})
    for key in kv.keys("user/"):
        kv.delete(key)

Keys are non-empty UTF-8 text of at most 512 bytes. The store is private to the plugin and the
tenant it runs for; its total size is bounded by the manifest's `max-bytes` and the tenant's
plan. Every failure raises `KvError` (a `CapabilityError`, so it fails the call as
`capability` unless caught) naming the call.
"""

from __future__ import annotations

import json as _json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import _bindings
from .errors import CapabilityError, PluginFailure

__all__ = [
    "KeyPage",
    "KvError",
    "delete",
    "get",
    "get_json",
    "get_text",
    "keys",
    "list_keys",
    "set",
    "set_json",
]

#: How many keys `keys` asks for per page.
PAGE_SIZE = 256


class KvError(CapabilityError):
    """A kv call failed; nothing was written.

    Attributes:
        reason: the `kv-error` case: `quota-exceeded`, `invalid-key`, `value-too-large` or
            `unavailable` (which may be retried).
        detail: the host's text, or the limit in bytes for `value-too-large`.
    """

    def __init__(self, call: str, reason: str, detail: str | int) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{call}: {_describe(reason, detail)}")


def _describe(reason: str, detail: str | int) -> str:
    """The sentence for a `kv-error` case, as the Rust SDK words it."""
    if reason == "quota-exceeded":
        return f"kv quota exceeded: {detail}"
    if reason == "invalid-key":
        return f"invalid kv key: {detail}"
    if reason == "value-too-large":
        return f"kv value too large: the limit is {detail} bytes"
    if reason == "unavailable":
        return f"kv store unavailable: {detail}"
    return f"kv error {reason}: {detail}"


#: The `kv-error` case of each generated class name.
_REASONS = {
    "KvError_QuotaExceeded": "quota-exceeded",
    "KvError_InvalidKey": "invalid-key",
    "KvError_ValueTooLarge": "value-too-large",
    "KvError_Unavailable": "unavailable",
}


@dataclass(frozen=True)
class KeyPage:
    """One page of keys returned by `list_keys`."""

    #: Keys in ascending byte order.
    keys: list[str]
    #: When more keys match, the cursor to pass to the next `list_keys` call.
    next_cursor: str | None


def _call(name: str, key: str, *args: Any) -> Any:
    """Calls `kv.<name>(key, *args)` on the host, turning its error into `KvError`."""
    call = f"kv.{name}({key!r})"
    module = _bindings.capability("kv", call)
    err_type = _bindings.err_type()
    try:
        return getattr(module, name)(key, *args)
    except err_type as err:
        value = err.value  # type: ignore[attr-defined]
        reason = _REASONS.get(type(value).__name__, type(value).__name__)
        raise KvError(call, reason, value.value) from None


def get(key: str) -> bytes | None:
    """The value stored under `key`, or None if there is none."""
    value = _call("get", key)
    return None if value is None else bytes(value)


def get_text(key: str) -> str | None:
    """The value stored under `key` as UTF-8 text, or None if there is none.

    Raises:
        PluginFailure: if the stored value is not UTF-8 (the plugin's own data is corrupt).
    """
    value = get(key)
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PluginFailure(
            f"the kv value under {key!r} is not UTF-8 text: {err.reason} at byte {err.start}"
        ) from None


def get_json(key: str) -> Any | None:
    """The value stored under `key` decoded as JSON, or None if there is none.

    Raises:
        PluginFailure: if the stored value is not JSON (the plugin's own data is corrupt).
    """
    text = get_text(key)
    if text is None:
        return None
    try:
        return _json.loads(text)
    except ValueError as err:
        raise PluginFailure(f"the kv value under {key!r} is not JSON: {err}") from None


def set(key: str, value: bytes | bytearray | memoryview | str) -> None:  # noqa: A001 — mirrors the WIT name
    """Stores `value` (bytes, or text as UTF-8) under `key`, replacing any previous value."""
    if isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        raise TypeError(
            f"kv.set({key!r}): the value must be bytes or str, not {type(value).__name__} "
            "(use kv.set_json for other values)"
        )
    _call("set", key, data)


def set_json(key: str, value: Any) -> None:
    """Stores `value` serialized as compact JSON under `key`."""
    try:
        text = _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise PluginFailure(f"kv.set_json({key!r}): cannot serialize the value: {err}") from None
    _call("set", key, text.encode("utf-8"))


def delete(key: str) -> bool:
    """Deletes `key`; returns whether a value was there."""
    return bool(_call("delete", key))


def list_keys(prefix: str = "", cursor: str | None = None, limit: int = PAGE_SIZE) -> KeyPage:
    """One page of at most `limit` keys starting with `prefix` (the host caps `limit` at 1000).

    Pass the previous page's `next_cursor` as `cursor` to continue; `keys` does that for you.
    """
    page = _call("list_keys", prefix, cursor, max(0, min(int(limit), 0xFFFF_FFFF)))
    return KeyPage(keys=list(page.keys), next_cursor=page.next_cursor)


def keys(prefix: str = "") -> Iterator[str]:
    """Every key starting with `prefix`, in ascending order, fetched a page at a time."""
    cursor: str | None = None
    while True:
        page = list_keys(prefix, cursor, PAGE_SIZE)
        yield from page.keys
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
