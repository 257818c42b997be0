"""Write Plinth plugins in Python.

A Plinth plugin is a WebAssembly component that handles events for many tenants, each in its
own sandbox with only the capabilities the tenant granted. This package hides the WIT contract
(`plinth:plugin@0.1.0`) behind one base class, one export line and a few typed modules:

1. subclass `Plugin` (only `on_event` is required; the lifecycle hooks default to doing
   nothing, `on_request` to `404`);
2. in the app module, write once
   `Handler, Lifecycle, IncomingHandler = plinth_sdk.export(MyPlugin)`;
3. declare what the plugin uses in plinth.toml, with a `[build]` section (its `world` is
   `http-plugin` to serve HTTP), and build it with `plinth plugin build DIR`, which runs
   componentize-py through `sdk/python/build.py`.

| module              | does                               | needs in plinth.toml        |
|---------------------|------------------------------------|-----------------------------|
| `plinth_sdk.log`    | leveled, structured log lines      | nothing (always granted)    |
| `plinth_sdk.kv`     | a private key-value store of bytes | `permissions.kv`            |
| `plinth_sdk.config` | the tenant's configuration values  | `permissions.config`        |
| `plinth_sdk.events` | emit platform events               | `permissions.events.emit`   |
| `plinth_sdk.http`   | outbound HTTP; serving HTTP        | `permissions.http.hosts`    |

Example (`app.py`):

    import plinth_sdk
    from plinth_sdk import Event, Plugin, log

    class Greeter(Plugin):
        def on_event(self, event: Event) -> bytes:
            name = event.json(str)          # InvalidPayload unless the payload is a JSON string
            log.info("greeting", name=name)
            return plinth_sdk.json(f"Hello, {name}!")

    Handler, Lifecycle, IncomingHandler = plinth_sdk.export(Greeter)

Capability modules are imported from the generated bindings only when called, so a plugin
built without a permission still imports every SDK module; calling one it lacks raises
`CapabilityError` naming the permission.
"""

from . import _bindings, config, events, http, kv, log
from ._export import export
from .errors import (
    CapabilityError,
    InvalidConfig,
    InvalidPayload,
    PluginError,
    PluginFailure,
)
from .event import Event
from .http import IncomingRequest, Response
from .plugin import Output, Plugin, encode_output, json

__version__ = "0.1.0"

__all__ = [
    "CapabilityError",
    "Event",
    "IncomingRequest",
    "InvalidConfig",
    "InvalidPayload",
    "Output",
    "Plugin",
    "PluginError",
    "PluginFailure",
    "Response",
    "config",
    "encode_output",
    "events",
    "export",
    "http",
    "json",
    "kv",
    "log",
]

# componentize-py keeps only the modules imported at build time (see _bindings.preload).
_bindings.preload()

# Route the standard `logging` module to the plugin's log. This runs when componentize-py
# pre-initializes the app at build time, so the handler is already in place in every call.
log.install_logging()
