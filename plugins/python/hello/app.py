"""The smallest useful Plinth plugin in Python: it greets whoever a `greet` event names.

Send it `{"topic": "greet", "payload": "Ada"}` and it answers `"Hello, Ada!"`.
"""

import plinth_sdk
from plinth_sdk import Event, Plugin, log


class Hello(Plugin):
    """Holds no state: every call runs in a fresh instance."""

    def on_event(self, event: Event) -> bytes:
        # The payload is JSON; a payload that is not a JSON string is the sender's mistake,
        # which `event.json(str)` reports as an `invalid-payload` error.
        name = event.json(str)
        log.info("greeting", name=name)
        # The output is JSON too: a JSON string.
        return plinth_sdk.json(f"Hello, {name}!")


# componentize-py calls these classes; the world in plinth.toml decides which are exported.
Handler, Lifecycle, IncomingHandler = plinth_sdk.export(Hello)
