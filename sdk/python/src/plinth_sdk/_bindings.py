"""Lazy access to the bindings componentize-py generates for the plugin's world.

componentize-py generates a package `wit_world` from the world the plugin is built against.
`plinth plugin build` writes that world from the manifest, importing *only* the granted
capabilities, so `wit_world.imports.kv` exists only in a plugin with the `kv` permission. The
SDK therefore never *requires* a capability module: every wrapper asks this module for its
bindings when it is called, and a missing module becomes a `CapabilityError` that names the
permission to add.

But a componentize-py component has no files at run time: only modules imported while
componentize-py pre-initializes the app (at build time, by importing the app module) are in
its memory snapshot, and a module first imported inside a hook is not found. So `preload`,
called when `plinth_sdk` is imported, *tries* every bindings module the SDK may use and keeps
the ones this world has; the wrappers then find them in `sys.modules`.

Two more quirks of the generated names are handled here:

- the module of an interface is named after the interface (`wit_world.imports.kv`), but when
  two imported interfaces share a name it is qualified by package: `plinth:plugin/types` is
  `wit_world.imports.types` in a world without HTTP and `wit_world.imports.plinth_plugin_types`
  next to `wasi:http/types` (then `wit_world.imports.wasi_http_types`);
- `result` errors cross the boundary as the exception `componentize_py_types.Err(value)`.
"""

from __future__ import annotations

import contextlib
import importlib
from types import ModuleType
from typing import Any

from .errors import CapabilityError

#: The permission (as written in plinth.toml) behind each capability module.
_PERMISSION_HINTS: dict[str, str] = {
    "kv": "[permissions] kv = { max-bytes = … }",
    "config": "[permissions] config = true",
    "events": '[permissions] events = { emit = ["<topic>"] }',
    "outgoing_handler": '[permissions] http = { hosts = ["<host>"] }',
}


#: Every bindings module the SDK may use (under `wit_world.imports`).
_MODULES = (
    "log",
    "kv",
    "config",
    "events",
    "outgoing_handler",
    "types",
    "plinth_plugin_types",
    "wasi_http_types",
    "streams",
    "poll",
    "error",
)


def preload() -> list[str]:
    """Imports the bindings modules this world has (see the module notes); returns their names.

    Outside a build (tests, tools) there are none, and that is not an error.
    """
    found = [name for name in _MODULES if _load(name) is not None]
    if found:
        with contextlib.suppress(ModuleNotFoundError):
            import componentize_py_types  # noqa: F401, PLC0415 — into the snapshot
    return found


def _load(name: str) -> ModuleType | None:
    """Imports `wit_world.imports.<name>`, or returns None when the world does not have it."""
    try:
        return importlib.import_module(f"wit_world.imports.{name}")
    except ModuleNotFoundError as err:
        # Only a missing bindings module means "not granted"; a module that exists but fails
        # to import for another reason is a real bug and must surface.
        if err.name is not None and (err.name == "wit_world" or err.name.startswith("wit_world.")):
            return None
        raise


def capability(name: str, call: str) -> ModuleType:
    """The bindings module of capability `name` (`kv`, `config`, `events`, `outgoing_handler`).

    Raises `CapabilityError` naming `call` and the permission to declare when the plugin's
    world does not import it.
    """
    module = _load(name)
    if module is None:
        hint = _PERMISSION_HINTS.get(name, "the matching permission")
        raise CapabilityError(
            f"{call}: this plugin was built without the {name.replace('_', ' ')} capability; "
            f"declare `{hint}` in plinth.toml and rebuild"
        )
    return module


def log_module() -> ModuleType | None:
    """The `plinth:plugin/log` bindings (always granted), or None outside a component."""
    return _load("log")


def plinth_types() -> ModuleType:
    """The `plinth:plugin/types` bindings (event, plugin-error), whatever their module name."""
    for name in ("plinth_plugin_types", "types"):
        module = _load(name)
        if module is not None and hasattr(module, "PluginError_Failed"):
            return module
    raise RuntimeError(
        "the plinth:plugin/types bindings are missing: build the plugin with "
        "`plinth plugin build`, which targets the generated plinth:app world"
    )


def http_types(call: str) -> ModuleType:
    """The `wasi:http/types` bindings, present with outbound HTTP or an HTTP-serving world."""
    for name in ("wasi_http_types", "types"):
        module = _load(name)
        if module is not None and hasattr(module, "OutgoingRequest"):
            return module
    raise CapabilityError(
        f"{call}: this plugin was built without wasi:http; declare "
        f"`{_PERMISSION_HINTS['outgoing_handler']}` in plinth.toml (or set "
        '[build] world = "http-plugin" to serve HTTP) and rebuild'
    )


def stream_error_closed(value: Any) -> bool:
    """Whether a `wasi:io/streams.stream-error` value is `closed` (the end of the stream)."""
    return type(value).__name__ == "StreamError_Closed"


def err_type() -> type[BaseException]:
    """componentize-py's `Err` exception, which carries the error case of a WIT `result`."""
    from componentize_py_types import Err  # noqa: PLC0415 — only exists inside a build

    return Err  # type: ignore[no-any-return]


def make_err(value: Any) -> BaseException:
    """An `Err(value)` to raise from an export whose WIT result is an error."""
    return err_type()(value)


def make_ok(value: Any) -> Any:
    """An `Ok(value)`, for the `result` arguments of imported functions."""
    from componentize_py_types import Ok  # noqa: PLC0415 — only exists inside a build

    return Ok(value)


def drop(resource: Any) -> None:
    """Drops a WIT resource handle now (componentize-py releases it in `__exit__`).

    A child resource (a body's stream, a response's headers, a future's pollable) must be
    dropped before its parent, which garbage collection does not promise; the SDK drops them
    explicitly, innermost first. Dropping None does nothing.
    """
    if resource is not None:
        resource.__exit__(None, None, None)


def is_ok(value: Any) -> bool:
    """Whether a `result` value nested in another type (not raised) is `Ok`."""
    from componentize_py_types import Ok  # noqa: PLC0415 — only exists inside a build

    return isinstance(value, Ok)
