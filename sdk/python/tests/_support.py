"""Test support: puts the SDK on the path and stands in for the bindings componentize-py
generates (`wit_world`, `componentize_py_types`), so the pure-Python logic runs on any CPython.

The stubs mirror the generated API the SDK uses (names, signatures, `Err` for `result` errors,
`__exit__` to drop a resource) and record what the SDK did with them.
"""

from __future__ import annotations

import enum
import sys
import types
import unittest
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

SRC = Path(__file__).resolve().parent.parent / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

T = TypeVar("T")


# componentize_py_types --------------------------------------------------------------------


@dataclass
class Ok(Generic[T]):
    value: T


@dataclass(frozen=True)
class Err(Exception, Generic[T]):
    value: T


@dataclass
class Some(Generic[T]):
    value: T


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


def _variant(prefix: str, case: str, payload: bool = True) -> type:
    """A generated variant case class, e.g. `KvError_QuotaExceeded(value)`."""
    if payload:
        return dataclass(type(f"{prefix}_{case}", (), {"__annotations__": {"value": Any}}))
    return dataclass(type(f"{prefix}_{case}", (), {}))


# plinth:plugin/types ---------------------------------------------------------------------


@dataclass
class WitEvent:
    id: str
    topic: str
    payload: bytes
    tenant: str
    depth: int


def types_module(name: str) -> types.ModuleType:
    return _module(
        name,
        Event=WitEvent,
        **{
            f"PluginError_{case}": _variant("PluginError", case)
            for case in ("InvalidPayload", "InvalidConfig", "Capability", "Failed")
        },
    )


# plinth:plugin/log -----------------------------------------------------------------------


class Level(enum.Enum):
    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


class LogStub:
    """`wit_world.imports.log`: records every line as (level name, message, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, list[tuple[str, str]]]] = []
        self.module = _module("wit_world.imports.log", Level=Level, write=self.write)

    def write(self, level: Level, message: str, fields: list[tuple[str, str]]) -> None:
        assert isinstance(level, Level), level
        assert isinstance(message, str)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields), fields
        self.lines.append((level.name.lower(), message, list(fields)))


# plinth:plugin/kv ------------------------------------------------------------------------

KvQuotaExceeded = _variant("KvError", "QuotaExceeded")
KvInvalidKey = _variant("KvError", "InvalidKey")
KvValueTooLarge = _variant("KvError", "ValueTooLarge")
KvUnavailable = _variant("KvError", "Unavailable")


@dataclass
class KeyPage:
    keys: list[str]
    next_cursor: str | None


class KvStub:
    """`wit_world.imports.kv` over a dict; `fail_with` makes the next call fail."""

    def __init__(self, page_size: int = 2) -> None:
        self.store: dict[str, bytes] = {}
        self.fail_with: Any = None
        self.page_size = page_size
        self.list_calls: list[tuple[str, str | None, int]] = []
        self.module = _module(
            "wit_world.imports.kv",
            get=self.get,
            set=self.set,
            delete=self.delete,
            list_keys=self.list_keys,
            KeyPage=KeyPage,
            KvError_QuotaExceeded=KvQuotaExceeded,
            KvError_InvalidKey=KvInvalidKey,
            KvError_ValueTooLarge=KvValueTooLarge,
            KvError_Unavailable=KvUnavailable,
        )

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise Err(error)

    def get(self, key: str) -> bytes | None:
        self._maybe_fail()
        return self.store.get(key)

    def set(self, key: str, value: bytes) -> None:
        self._maybe_fail()
        assert isinstance(value, bytes), type(value)
        self.store[key] = value

    def delete(self, key: str) -> bool:
        self._maybe_fail()
        return self.store.pop(key, None) is not None

    def list_keys(self, prefix: str, cursor: str | None, limit: int) -> KeyPage:
        self._maybe_fail()
        self.list_calls.append((prefix, cursor, limit))
        keys = sorted(
            k for k in self.store if k.startswith(prefix) and (cursor is None or k > cursor)
        )
        page = keys[: min(limit, self.page_size)]
        more = len(keys) > len(page)
        return KeyPage(page, page[-1] if more and page else None)


# plinth:plugin/config and events -----------------------------------------------------------

ConfigUndeclared = _variant("ConfigError", "Undeclared")
EmitUndeclaredTopic = _variant("EmitError", "UndeclaredTopic")
EmitDepthExceeded = _variant("EmitError", "DepthExceeded")
EmitPayloadTooLarge = _variant("EmitError", "PayloadTooLarge")
EmitRateLimited = _variant("EmitError", "RateLimited", payload=False)


class ConfigStub:
    def __init__(self, values: dict[str, str | None]) -> None:
        self.values = values
        self.module = _module(
            "wit_world.imports.config", get=self.get, ConfigError_Undeclared=ConfigUndeclared
        )

    def get(self, key: str) -> str | None:
        if key not in self.values:
            raise Err(ConfigUndeclared(key))
        return self.values[key]


class EventsStub:
    def __init__(self, topics: set[str]) -> None:
        self.topics = topics
        self.emitted: list[tuple[str, bytes]] = []
        self.module = _module("wit_world.imports.events", emit=self.emit)

    def emit(self, topic: str, payload: bytes) -> None:
        assert isinstance(payload, bytes)
        if topic not in self.topics:
            raise Err(EmitUndeclaredTopic(topic))
        self.emitted.append((topic, payload))


# The world -------------------------------------------------------------------------------


class FakeWorld:
    """Installs stub bindings in `sys.modules` for the duration of a test.

        with FakeWorld(kv=KvStub()) as world:
            ...
            world.log.lines

    `types_name` is the module name of `plinth:plugin/types` (`types`, or
    `plinth_plugin_types` when wasi:http is in the world).
    """

    def __init__(
        self,
        *,
        kv: KvStub | None = None,
        config: ConfigStub | None = None,
        events: EventsStub | None = None,
        http: Any = None,
        types_name: str = "types",
    ) -> None:
        self.log = LogStub()
        self.kv, self.config, self.events, self.http = kv, config, events, http
        self.types = types_module(f"wit_world.imports.{types_name}")
        self.modules: dict[str, types.ModuleType] = {
            "componentize_py_types": _module("componentize_py_types", Ok=Ok, Err=Err, Some=Some),
            # Packages, as the generated ones are: a missing submodule is looked up (and not
            # found) by the import system.
            "wit_world": _module("wit_world", __path__=[]),
            "wit_world.imports": _module("wit_world.imports", __path__=[]),
            f"wit_world.imports.{types_name}": self.types,
            "wit_world.imports.log": self.log.module,
        }
        for name, stub in (("kv", kv), ("config", config), ("events", events)):
            if stub is not None:
                self.modules[f"wit_world.imports.{name}"] = stub.module
        if http is not None:
            self.modules.update(http.modules())
        self._saved: dict[str, types.ModuleType | None] = {}

    def __enter__(self) -> FakeWorld:
        for name, module in self.modules.items():
            self._saved[name] = sys.modules.get(name)
            sys.modules[name] = module
        # A real world never has bindings the stubs leave out.
        for name in list(sys.modules):
            if name.startswith("wit_world.") and name not in self.modules:
                self._saved[name] = sys.modules.pop(name)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in list(sys.modules):
            if name.startswith("wit_world") or name == "componentize_py_types":
                del sys.modules[name]
        for name, module in self._saved.items():
            if module is not None:
                sys.modules[name] = module


class WorldTestCase(unittest.TestCase):
    """A test case that runs without any bindings unless it enters a `FakeWorld`."""

    def setUp(self) -> None:
        for name in list(sys.modules):
            if name.startswith("wit_world") or name == "componentize_py_types":
                del sys.modules[name]


@dataclass
class Recorder:
    """Collects events in order (drops of resources, writes…)."""

    events: list[str] = field(default_factory=list)

    def __call__(self, event: str) -> None:
        self.events.append(event)
