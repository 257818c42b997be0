"""The tenant's configuration for this install. Requires the `config` permission.

    from plinth_sdk import config

    url = config.get_required("webhook-url")        # InvalidConfig if unset
    retries = config.get_int("retries") or 3
    verbose = config.get_bool("verbose") or False

Only keys declared under `[config.<key>]` in plinth.toml exist; asking for another raises
`CapabilityError`. The host has already checked each value against its declared type, so the
typed helpers fail (with `InvalidConfig`) only when the manifest and the code disagree.
"""

from __future__ import annotations

from . import _bindings
from .errors import CapabilityError, InvalidConfig

__all__ = ["get", "get_bool", "get_int", "get_required"]


def get(key: str) -> str | None:
    """The value of `key`, or None when the tenant left an optional key unset.

    Raises:
        CapabilityError: when the manifest does not declare `key`.
    """
    call = f"config.get({key!r})"
    module = _bindings.capability("config", call)
    err_type = _bindings.err_type()
    try:
        value = module.get(key)
    except err_type:
        # The only case is `undeclared`.
        raise CapabilityError(
            f"{call}: config key `{key}` is not declared in the manifest "
            f"(add [config.{key}] to plinth.toml)"
        ) from None
    return None if value is None else str(value)


def get_required(key: str) -> str:
    """The value of `key`.

    Raises:
        InvalidConfig: when it is not set (the tenant's configuration to fix).
        CapabilityError: when the manifest does not declare `key`.
    """
    value = get(key)
    if value is None:
        raise InvalidConfig(f"config key `{key}` is required but not set")
    return value


def get_int(key: str) -> int | None:
    """The value of an `integer` key, or None when unset.

    Raises:
        InvalidConfig: when the value is not a decimal integer.
    """
    value = get(key)
    if value is None:
        return None
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit():
        raise InvalidConfig(f"config key `{key}`: `{value}` is not an integer")
    return int(text)


def get_bool(key: str) -> bool | None:
    """The value of a `boolean` key (`true` or `false`), or None when unset.

    Raises:
        InvalidConfig: when the value is neither `true` nor `false`.
    """
    value = get(key)
    if value is None:
        return None
    text = value.strip()
    if text == "true":
        return True
    if text == "false":
        return False
    raise InvalidConfig(f"config key `{key}`: `{value}` is not `true` or `false`")
