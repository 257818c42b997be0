"""`Plugin`: the class every plugin extends; `json` and `encode_output` for its output."""

from __future__ import annotations

import json as _json
from typing import TYPE_CHECKING, Any, Union

from .errors import PluginFailure
from .event import Event

if TYPE_CHECKING:
    from .http import IncomingRequest, Response

__all__ = ["Output", "Plugin", "encode_output", "json"]

#: What `Plugin.on_event` may return; see `encode_output`.
Output = Union[
    bytes, bytearray, memoryview, str, "dict[str, Any]", "list[Any]", int, float, bool, None
]


class Plugin:
    """A Plinth plugin: handles the events it subscribes to and, optionally, hooks into its
    install's life and serves HTTP. Export it from the app module with `plinth_sdk.export`.

    A fresh component instance runs every call, so keep state in `plinth_sdk.kv`, never in
    the object or in module globals. Raise a `plinth_sdk.PluginError` subclass to fail a call
    with that kind of error; any other exception fails it as `failed`, with a traceback.
    """

    def on_event(self, event: Event) -> Output:
        """Handles one event on a topic the manifest subscribes to.

        Returns the output (see `encode_output`): `None` for none, `bytes` as they are, `str` as
        UTF-8, anything else as JSON. By convention the output is JSON; `plinth_sdk.json(value)`
        makes a JSON string of a `str`.
        """
        raise PluginFailure(f"{type(self).__name__} does not implement on_event")

    def on_install(self) -> None:
        """Called once when a tenant installs the plugin, after its configuration is set.
        Raising aborts the install. Does nothing by default."""

    def on_upgrade(self, from_version: str) -> None:
        """Called once when a tenant's install moves to this version from `from_version` (also
        on a rollback, with the newer version). Raising aborts the upgrade. Does nothing by
        default."""

    def on_uninstall(self) -> None:
        """Called once before the tenant's install is removed (its kv data is deleted
        afterwards). An error is reported, but the uninstall goes ahead. Does nothing by
        default."""

    def on_request(self, request: IncomingRequest) -> Response:
        """Answers one HTTP request under `/p/{tenant}/{plugin}/…` (the prefix removed).

        Called only when the plugin is built for the `http-plugin` world (`[build] world =
        "http-plugin"` in plinth.toml). The default answers `404 Not Found`.
        """
        from .http import Response  # noqa: PLC0415 — avoids an import cycle

        return Response.from_text("this plugin does not serve HTTP", status=404)


def json(value: Any) -> bytes:
    """`value` serialized as compact UTF-8 JSON, e.g. the output `"Hello, Ada!"` for a `str`.

    Raises:
        PluginFailure: naming the problem when `value` is not JSON-serializable.
    """
    try:
        return _json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError) as err:
        raise PluginFailure(f"cannot serialize the output as JSON: {err}") from None


def encode_output(value: Any) -> bytes | None:
    """The bytes of an `on_event` return value.

    - `None` → no output;
    - `bytes`, `bytearray`, `memoryview` → as they are;
    - `str` → its UTF-8 encoding (not quoted: use `plinth_sdk.json(text)` for a JSON string);
    - anything else (dict, list, numbers, booleans) → JSON, via `json`.
    """
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return json(value)
