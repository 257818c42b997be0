"""Why a plugin could not handle a call: the exceptions that map to WIT `plugin-error`.

Raise one of these from a hook to fail the call with that kind of error:

| exception          | `plugin-error` case | meaning                                               |
|--------------------|---------------------|-------------------------------------------------------|
| `InvalidPayload`   | `invalid-payload`   | the event payload (or request) is not what it expects |
| `InvalidConfig`    | `invalid-config`    | the tenant's configuration is missing or wrong        |
| `CapabilityError`  | `capability`        | a kv, config, events or HTTP call failed              |
| `PluginFailure`    | `failed`            | any other failure, described for the tenant           |

Every other exception escaping a hook is reported as `failed`, with its type, its message and a
short traceback (see `describe_exception`), and its full traceback is written to the log.
"""

from __future__ import annotations

import os
import re
import traceback
from types import TracebackType
from typing import ClassVar

__all__ = [
    "CapabilityError",
    "InvalidConfig",
    "InvalidPayload",
    "PluginError",
    "PluginFailure",
    "describe_exception",
    "error_kind",
    "error_message",
]

#: Largest text, in bytes of UTF-8, of the message the SDK puts in a `plugin-error`. The host
#: keeps at most 4096 bytes after escaping line breaks (each `\n` becomes two bytes), so this
#: leaves room for that.
MAX_ERROR_BYTES = 3072
#: Largest part of that budget the exception's own message may take.
MAX_MESSAGE_BYTES = 1024
#: Most stack frames shown in a traceback (the innermost ones are kept).
MAX_FRAMES = 8
#: Most chained causes (`raise … from …` or an exception during handling) described.
MAX_CAUSES = 3
#: What marks cut text.
ELLIPSIS = "…"


class PluginError(Exception):
    """Base of the errors a plugin raises on purpose; `kind` is the `plugin-error` case."""

    kind: ClassVar[str] = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidPayload(PluginError):
    """The event payload (or request) is not what the plugin expects; the text says why."""

    kind = "invalid-payload"


class InvalidConfig(PluginError):
    """The tenant's configuration for this install is missing a value or has a bad one."""

    kind = "invalid-config"


class CapabilityError(PluginError):
    """A capability call (kv, config, events, outbound HTTP) failed; the text says which."""

    kind = "capability"


class PluginFailure(PluginError):
    """Any other failure, described for the tenant who will read it."""

    kind = "failed"


def error_kind(exc: BaseException) -> str:
    """The `plugin-error` case `exc` maps to: its `kind`, or `failed` for any other exception."""
    return exc.kind if isinstance(exc, PluginError) else "failed"


def error_message(exc: BaseException) -> str:
    """The text of the `plugin-error` that `exc` maps to.

    A `PluginError` carries its own message (capped); any other exception is described with
    `describe_exception`, because it is a bug the developer must be able to find.
    """
    if isinstance(exc, PluginError):
        return cut_utf8(exc.message, MAX_ERROR_BYTES)
    return describe_exception(exc)


def describe_exception(exc: BaseException, max_bytes: int = MAX_ERROR_BYTES) -> str:
    """`Type: message`, its chained causes, and a short traceback, within `max_bytes`.

    The traceback lists the innermost `MAX_FRAMES` frames of the plugin's own code (the SDK's
    frames are left out), each as `file:line in function: source`, so it stays readable after
    the host escapes line breaks:

        ValueError: invalid literal for int() with base 10: 'x'
        Traceback (most recent call last):
          app.py:14 in on_event: count = int(raw)
    """
    lines = [_headline(exc, MAX_MESSAGE_BYTES)]
    # Causes, innermost last, as Python prints them.
    seen = {id(exc)}
    cause = _cause_of(exc)
    causes = 0
    while cause is not None and id(cause) not in seen and causes < MAX_CAUSES:
        seen.add(id(cause))
        lines.append(f"caused by {_headline(cause, MAX_MESSAGE_BYTES // 2)}")
        cause = _cause_of(cause)
        causes += 1
    frames = _frames(exc.__traceback__)
    if frames:
        lines.append("Traceback (most recent call last):")
        lines.extend(frames)
    return _fit_lines(lines, max_bytes)


def full_traceback(exc: BaseException) -> str:
    """The whole traceback as Python prints it, for the plugin's log."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()


def cut_utf8(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` bytes of UTF-8, ending in `…` when cut."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    room = max(0, max_bytes - len(ELLIPSIS.encode("utf-8")))
    # `errors="ignore"` drops a character split by the cut.
    return encoded[:room].decode("utf-8", errors="ignore") + ELLIPSIS


def _headline(exc: BaseException, max_bytes: int) -> str:
    """`Type: message` (or just `Type`), with the message cut to `max_bytes`."""
    name = type(exc).__qualname__
    if "<locals>" in name:  # a class defined in a function: its own name reads better
        name = type(exc).__name__
    module = type(exc).__module__
    if module not in ("builtins", "__main__") and not module.startswith("plinth_sdk"):
        name = f"{module}.{name}"
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 — a broken __str__ must not hide the failure
        message = "<the exception's message could not be rendered>"
    message = cut_utf8(message, max_bytes)
    return f"{name}: {message}" if message else name


def _cause_of(exc: BaseException) -> BaseException | None:
    """The explicit cause, else the implicit context unless suppressed."""
    if exc.__cause__ is not None:
        return exc.__cause__
    if exc.__suppress_context__:
        return None
    return exc.__context__


#: The directory of this package: frames in it are the SDK's, not the plugin's.
_SDK_DIR = os.path.dirname(os.path.abspath(__file__))


def _frames(tb: TracebackType | None) -> list[str]:
    """The plugin's frames of `tb`, innermost `MAX_FRAMES`, one line each."""
    summary = traceback.extract_tb(tb)
    own = [frame for frame in summary if not _is_sdk_file(frame.filename)]
    # An exception raised inside the SDK itself (a bug there) keeps all its frames.
    frames = own or list(summary)
    # One line per frame; a run of identical frames (recursion) is shown once with a count,
    # as Python does.
    described: list[tuple[str, int]] = []
    for frame in frames:
        where = f"  {_short_path(frame.filename)}:{frame.lineno} in {frame.name}"
        source = (frame.line or "").strip()
        line = f"{where}: {cut_utf8(source, 160)}" if source else where
        if described and described[-1][0] == line:
            described[-1] = (line, described[-1][1] + 1)
        else:
            described.append((line, 1))
    lines: list[str] = []
    omitted = len(described) - MAX_FRAMES
    if omitted > 0:
        lines.append(f"  … {omitted} earlier frame{'s' if omitted != 1 else ''} omitted")
        described = described[-MAX_FRAMES:]
    for line, count in described:
        lines.append(line)
        if count > 1:
            lines.append(f"  [previous frame repeated {count - 1} more times]")
    return lines


def _is_sdk_file(filename: str) -> bool:
    """Whether `filename` is a module of this SDK."""
    try:
        return os.path.commonpath([os.path.abspath(filename), _SDK_DIR]) == _SDK_DIR
    except ValueError:  # different drives, or a relative path that cannot be compared
        return False


def _short_path(filename: str) -> str:
    """A path as a reader wants it: relative to the plugin, not to the build machine.

    componentize-py mounts its `-p` directories as `/0`, `/1`, … (`/1/app.py`), which means
    nothing to the reader: that prefix is dropped. Elsewhere the path is cut after the last
    `site-packages/`, or to its last two parts.
    """
    normalized = filename.replace("\\", "/")
    mounted = re.match(r"^/\d+/(.+)$", normalized)
    if mounted:
        return mounted.group(1)
    marker = "site-packages/"
    if marker in normalized:
        return normalized.rsplit(marker, 1)[1]
    parts = [part for part in normalized.split("/") if part]
    return "/".join(parts[-2:]) if len(parts) > 2 else normalized


def _fit_lines(lines: list[str], max_bytes: int) -> str:
    """Joins `lines`, dropping traceback lines after the headline until it fits `max_bytes`."""
    text = "\n".join(lines)
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    # Keep the headline and as many of the innermost lines as fit.
    head, rest = lines[0], lines[1:]
    marker = "  … (traceback cut)"
    budget = max_bytes - len(head.encode("utf-8")) - len(marker.encode("utf-8")) - 2
    kept: list[str] = []
    for line in reversed(rest):
        size = len(line.encode("utf-8")) + 1
        if size > budget:
            break
        kept.insert(0, line)
        budget -= size
    return cut_utf8("\n".join([head, marker, *kept]), max_bytes)
