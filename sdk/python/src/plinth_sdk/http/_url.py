"""Splitting an absolute URL into the parts a `wasi:http` request carries."""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import HttpError

__all__ = ["Target", "parse_url"]


@dataclass(frozen=True)
class Target:
    """The parts of an absolute `http(s)` URL."""

    #: True for `https`.
    https: bool
    #: `host` or `host:port`, as written.
    authority: str
    #: The host alone, lower-cased (what errors name; the path may carry secrets).
    host: str
    #: The path and query, at least `/`; the fragment is dropped.
    path_with_query: str


def parse_url(url: str) -> Target:
    """Parses `scheme://authority[/path][?query][#fragment]`.

    Raises:
        HttpError: (reason `invalid-url`) for anything but an absolute http(s) URL with a host
            and without credentials. The message quotes the URL only up to its host.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise _invalid(url, "expected an absolute URL such as https://example.com/")
    if scheme.lower() not in ("http", "https"):
        raise _invalid(url, "the scheme must be http or https")
    rest = rest.split("#", 1)[0]
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, path = rest[:end], rest[end:]
    if not authority:
        raise _invalid(url, "the host is missing")
    if "@" in authority:
        raise _invalid(url, "credentials in the URL are not supported")
    if any(c.isspace() or not c.isprintable() for c in authority):
        raise _invalid(url, "the host contains whitespace")
    host = _host_of(authority)
    if not host:
        raise _invalid(url, "the host is missing")
    return Target(
        https=scheme.lower() == "https",
        authority=authority,
        host=host,
        path_with_query=path if path.startswith("/") else f"/{path}",
    )


def _host_of(authority: str) -> str:
    """The host of `host[:port]` or `[v6][:port]`, lower-cased."""
    if authority.startswith("["):
        return authority[: authority.find("]") + 1].lower() if "]" in authority else ""
    return authority.rsplit(":", 1)[0].lower() if ":" in authority else authority.lower()


def _invalid(url: str, why: str) -> HttpError:
    """An `invalid-url` error quoting `url` up to its host (never its path or query)."""
    scheme, sep, rest = url.partition("://")
    shown = f"{scheme}{sep}{rest.split('/', 1)[0].split('?', 1)[0]}" if sep else url[:64]
    if "@" in shown:  # never echo credentials
        shown = f"{scheme}{sep}…@{shown.rsplit('@', 1)[1]}"
    return HttpError("invalid-url", f"invalid URL `{shown}`: {why}")
