"""Posts every `order.created` event to a webhook the tenant configures.

The tenant sets the secret `webhook-url` when installing; the manifest allows outbound HTTP only
to `hooks.example.com`, so the host refuses any other URL (the call then fails as `capability`,
naming the host). The output is the webhook's HTTP status: `{"status": 200}`.
"""

from typing import Any

import plinth_sdk
from plinth_sdk import Event, InvalidConfig, Plugin, config, http, log


class WebhookNotify(Plugin):
    def on_event(self, event: Event) -> dict[str, Any]:
        # A missing required value is the tenant's configuration to fix: `invalid-config`.
        url = config.get_required("webhook-url")
        # Any JSON is accepted; a payload that is not JSON fails as `invalid-payload`.
        order = event.json()
        notification = {
            # A line a chat channel can show as is.
            "text": f"New order on {event.tenant}",
            "tenant": event.tenant,
            # The event's id, so the receiver can drop duplicates.
            "event_id": event.id,
            "order": order,
        }
        # Never log the URL: it is a secret (the SDK's errors name only its host).
        response = http.post_json(
            url, notification, headers={"user-agent": "plinth-py-webhook-notify/0.1"}
        )
        if not response.ok:
            log.warn("the webhook answered an error", status=response.status)
        return {"status": response.status}

    def on_install(self) -> None:
        # Fail the install early if the URL is obviously wrong.
        url = config.get_required("webhook-url")
        if not url.startswith(("https://", "http://")):
            raise InvalidConfig("webhook-url must be an http:// or https:// URL")


Handler, Lifecycle, IncomingHandler = plinth_sdk.export(WebhookNotify)
