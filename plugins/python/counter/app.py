"""Counts `count` events in the plugin's private key-value store.

Every `count` event adds one to a counter kept per tenant (the host namespaces the store by
tenant and plugin) and answers `{"count": n}`.
"""

import plinth_sdk
from plinth_sdk import Event, Plugin, PluginFailure, kv, log

#: The kv key the counter lives under.
KEY = "count"


class Counter(Plugin):
    """Its state lives in kv, not in memory: every call runs in a fresh instance."""

    def on_event(self, event: Event) -> dict[str, int]:
        # A kv failure (quota, unavailable) raises kv.KvError, a CapabilityError: the call
        # fails as `capability` with the text naming the kv call.
        count = read_count() + 1
        kv.set(KEY, str(count))
        log.debug(f"count is now {count}")
        # A dict is answered as JSON.
        return {"count": count}

    def on_install(self) -> None:
        # Start from zero on a fresh install.
        kv.set(KEY, "0")


def read_count() -> int:
    """The stored count, 0 when nothing is stored yet."""
    text = kv.get_text(KEY)
    if text is None:
        return 0
    try:
        return int(text)
    except ValueError:
        raise PluginFailure(f"the stored count `{text}` is corrupt") from None


Handler, Lifecycle, IncomingHandler = plinth_sdk.export(Counter)
