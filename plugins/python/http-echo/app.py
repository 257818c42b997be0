"""Serves HTTP: echoes every request back as JSON.

`POST /p/{tenant}/examples.py-http-echo/hello?x=1` with body `hi` answers
`{"method":"POST","path":"/hello?x=1","body":"hi"}`. A request for `/fail` raises, to show
what a failing handler answers: `500` naming only the exception's type (its traceback goes to
the plugin's log).
"""

import plinth_sdk
from plinth_sdk import Event, IncomingRequest, Plugin, Response


class HttpEcho(Plugin):
    # Every plugin handles events; this one only serves HTTP and subscribes to none.
    def on_event(self, event: Event) -> None:
        return None

    def on_request(self, request: IncomingRequest) -> Response:
        if request.path_with_query == "/fail":
            raise RuntimeError("asked to fail")
        return Response.from_json(
            {
                "method": request.method,
                "path": request.path_with_query,
                # The body as text, lossily decoded.
                "body": request.body.decode("utf-8", errors="replace"),
            }
        )


# plinth.toml's `[build] world = "http-plugin"` makes the component export IncomingHandler.
Handler, Lifecycle, IncomingHandler = plinth_sdk.export(HttpEcho)
