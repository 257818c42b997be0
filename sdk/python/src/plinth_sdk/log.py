"""Leveled, structured log lines. Always granted.

    from plinth_sdk import log

    log.info("order received", order="42", items=3)
    log.write(log.Level.WARN, "slow upstream", {"ms": 1200, "host": "api.example.com"})

The host tags each line with the tenant, plugin and version, caps each line (message and
fields together, and the number of fields) and each call (lines and bytes; lines past the cap
are dropped, never failing the plugin), and escapes control characters and line breaks.

The standard `logging` module goes to the same log: importing `plinth_sdk` installs a
`PlinthLogHandler` on the root logger (see `install_logging`), so `logging.getLogger(__name__)
.info(…)` works as usual. `print` works too: the host keeps what the plugin writes to stdout as
`info` lines and to stderr as `warn` lines (the SDK flushes both after every call).
"""

from __future__ import annotations

import enum
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from . import _bindings

__all__ = [
    "Level",
    "PlinthLogHandler",
    "debug",
    "error",
    "install_logging",
    "level_for",
    "info",
    "trace",
    "warn",
    "warning",
    "write",
]

#: Structured fields: a mapping or (key, value) pairs; values are converted with `str`.
Fields = Mapping[str, Any] | Iterable[tuple[str, Any]]


class Level(enum.IntEnum):
    """The severity of a log line, as `plinth:plugin/log.level` orders them."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


def write(level: Level, message: str, fields: Fields = ()) -> None:
    """Writes one line at `level` with structured `fields`. Never raises."""
    pairs = [(_text(key), _text(value)) for key, value in _pairs(fields)]
    message = _text(message)
    module = _bindings.log_module()
    if module is not None:
        try:
            module.write(module.Level[level.name], message, pairs)
            return
        except Exception:  # noqa: BLE001 — e.g. text with lone surrogates cannot cross
            pairs = [(_clean(key), _clean(value)) for key, value in pairs]
            try:
                module.write(module.Level[level.name], _clean(message), pairs)
                return
            except Exception:  # noqa: BLE001 — fall back to stderr below
                pass
    # Outside a component (tests, tools), or the host refused the text: keep the line
    # visible on stderr (which the host also keeps) rather than lose it.
    suffix = "".join(f" {key}={value}" for key, value in pairs)
    print(f"[{level.name.lower()}] {message}{suffix}", file=sys.stderr)


def trace(message: str, **fields: Any) -> None:
    """Writes a `trace` line; keyword arguments become fields."""
    write(Level.TRACE, message, fields)


def debug(message: str, **fields: Any) -> None:
    """Writes a `debug` line; keyword arguments become fields."""
    write(Level.DEBUG, message, fields)


def info(message: str, **fields: Any) -> None:
    """Writes an `info` line; keyword arguments become fields."""
    write(Level.INFO, message, fields)


def warn(message: str, **fields: Any) -> None:
    """Writes a `warn` line; keyword arguments become fields."""
    write(Level.WARN, message, fields)


#: `logging`'s spelling of `warn`.
warning = warn


def error(message: str, **fields: Any) -> None:
    """Writes an `error` line; keyword arguments become fields."""
    write(Level.ERROR, message, fields)


def level_for(levelno: int) -> Level:
    """The plinth level of a `logging` level number.

    `NOTSET` up to below `DEBUG` (custom levels such as 5) → trace; `DEBUG` → debug; `INFO` →
    info; `WARNING` → warn; `ERROR` and `CRITICAL` (and above) → error. A custom level between
    two standard ones takes the lower one's plinth level.
    """
    if levelno >= logging.ERROR:
        return Level.ERROR
    if levelno >= logging.WARNING:
        return Level.WARN
    if levelno >= logging.INFO:
        return Level.INFO
    if levelno >= logging.DEBUG:
        return Level.DEBUG
    return Level.TRACE


#: Attributes every `LogRecord` has; any other attribute came from `extra=` and is a field.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}


class PlinthLogHandler(logging.Handler):
    """Routes `logging` records to the plugin's log.

    The line's message is the record's formatted message (`record.getMessage()`, or the
    handler's formatter if one is set); its fields are the logger name (unless it is the root
    logger), the keys passed with `extra=`, and the exception's traceback when `exc_info` is
    given (e.g. by `logger.exception`).
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record) if self.formatter else record.getMessage()
            fields: list[tuple[str, str]] = []
            if record.name and record.name != "root":
                fields.append(("logger", record.name))
            for key, value in vars(record).items():
                if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                    fields.append((key, _text(value)))
            if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
                # Cache it as `logging.Formatter` does, for any other handler.
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text and not self.formatter:
                fields.append(("exception", record.exc_text))
            if record.stack_info and not self.formatter:
                fields.append(("stack", record.stack_info))
            write(level_for(record.levelno), message, fields)
        except Exception:  # noqa: BLE001 — logging must never fail the plugin
            self.handleError(record)


def install_logging(level: int = logging.DEBUG) -> PlinthLogHandler:
    """Installs a `PlinthLogHandler` on the root logger (once) and sets the root level.

    `import plinth_sdk` calls this with `logging.DEBUG`, so every `logging` record of level
    DEBUG and above reaches the plugin's log, as `plinth_sdk.log.debug` lines do; the host
    decides what it shows. Call it again (or `logging.getLogger().setLevel(…)`) for another
    threshold, e.g. `install_logging(logging.INFO)`. Returns the installed handler.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, PlinthLogHandler)), None)
    if handler is None:
        handler = PlinthLogHandler()
        root.addHandler(handler)
    root.setLevel(level)
    return handler


def _pairs(fields: Fields) -> Iterable[tuple[str, Any]]:
    """(key, value) pairs of a mapping or of an iterable of pairs."""
    if isinstance(fields, Mapping):
        return fields.items()
    return fields


def _text(value: Any) -> str:
    """A field value as text: `str` as is, bytes decoded (lossily), anything else via `str`."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    try:
        return str(value)
    except Exception:  # noqa: BLE001 — a broken __str__ must not break logging
        return f"<unprintable {type(value).__name__}>"


def _clean(text: str) -> str:
    """`text` with anything UTF-8 cannot encode (lone surrogates) replaced by `?`."""
    return text.encode("utf-8", errors="replace").decode("utf-8")
