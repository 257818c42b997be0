"""`export`: the classes componentize-py calls, adapting WIT exports to a `Plugin`.

componentize-py implements each exported interface of the world by calling a class of the app
module named after it: `Handler` (`plinth:plugin/handler`), `Lifecycle`
(`plinth:plugin/lifecycle`) and `IncomingHandler` (`wasi:http/incoming-handler`). `export`
makes all three for a `Plugin` subclass; the world the plugin is built for (`[build] world` in
plinth.toml) decides which of them the component exports, so one line fits every world:

    Handler, Lifecycle, IncomingHandler = plinth_sdk.export(MyPlugin)

Every call runs in a fresh `MyPlugin()`. An exception escaping a hook becomes the call's
`plugin-error` (see `plinth_sdk.errors`); stdout and stderr are flushed after every call so
that what the plugin printed reaches the host's log.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from . import _bindings
from .errors import PluginError, error_kind, error_message, full_traceback
from .event import Event
from .plugin import Plugin, encode_output

__all__ = ["export", "to_wit_error"]

R = TypeVar("R")

#: The generated class of each `plugin-error` case.
_WIT_CASES = {
    "invalid-payload": "PluginError_InvalidPayload",
    "invalid-config": "PluginError_InvalidConfig",
    "capability": "PluginError_Capability",
    "failed": "PluginError_Failed",
}


def to_wit_error(exc: BaseException) -> Any:
    """The generated `plugin-error` value for `exc` (see `plinth_sdk.errors`)."""
    types = _bindings.plinth_types()
    return getattr(types, _WIT_CASES[error_kind(exc)])(error_message(exc))


def export(plugin: type[Plugin]) -> tuple[type, type, type]:
    """The `Handler`, `Lifecycle` and `IncomingHandler` classes componentize-py calls for
    `plugin`; assign them to those names in the app module."""
    if not (isinstance(plugin, type) and issubclass(plugin, Plugin)):
        raise TypeError(f"export() takes a subclass of plinth_sdk.Plugin, not {plugin!r}")

    class Handler:
        """`plinth:plugin/handler` for the plugin."""

        def on_event(self, event: Any) -> bytes | None:
            converted = Event(
                id=event.id,
                topic=event.topic,
                tenant=event.tenant,
                depth=event.depth,
                payload=bytes(event.payload),
            )
            return _call(
                plugin,
                "on_event",
                lambda instance: encode_output(instance.on_event(converted)),
                {"topic": converted.topic, "event": converted.id},
            )

    class Lifecycle:
        """`plinth:plugin/lifecycle` for the plugin."""

        def on_install(self) -> None:
            _call(plugin, "on_install", lambda instance: instance.on_install())

        def on_upgrade(self, from_version: str) -> None:
            _call(
                plugin,
                "on_upgrade",
                lambda instance: instance.on_upgrade(from_version),
                {"from_version": from_version},
            )

        def on_uninstall(self) -> None:
            _call(plugin, "on_uninstall", lambda instance: instance.on_uninstall())

    class IncomingHandler:
        """`wasi:http/incoming-handler` for the plugin."""

        def handle(self, request: Any, response_out: Any) -> None:
            from .http._server import serve  # noqa: PLC0415 — only HTTP plugins need it

            try:
                serve(lambda incoming: plugin().on_request(incoming), request, response_out)
            finally:
                _flush_stdio()

    for adapter in (Handler, Lifecycle, IncomingHandler):
        adapter.__qualname__ = f"{adapter.__name__}[{plugin.__qualname__}]"
    return Handler, Lifecycle, IncomingHandler


def _call(
    plugin: type[Plugin],
    hook: str,
    run: Callable[[Plugin], R],
    context: dict[str, str] | None = None,
) -> R:
    """Runs `hook` on a fresh instance of `plugin`, raising any failure as `Err(plugin-error)`."""
    try:
        return run(plugin())
    except BaseException as exc:  # noqa: BLE001 — every failure must become a plugin-error
        if not isinstance(exc, PluginError):
            # A bug, not a decision: the full traceback goes to the log; the error carries
            # a short one.
            _log_failure(hook, exc, context or {})
        raise _bindings.make_err(to_wit_error(exc)) from None
    finally:
        _flush_stdio()


def _log_failure(hook: str, exc: BaseException, context: dict[str, str]) -> None:
    """Writes the full traceback of an unexpected exception to the plugin's log."""
    from . import log  # noqa: PLC0415

    # Reporting must never hide the failure itself.
    with contextlib.suppress(Exception):
        log.error(f"{hook} failed: {type(exc).__name__}", **context, traceback=full_traceback(exc))


def _flush_stdio() -> None:
    """Flushes stdout and stderr, so that what the plugin printed reaches the host now."""
    for stream in (sys.stdout, sys.stderr):
        # A closed (or missing) stream has nothing to flush.
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
