// Posts every `order.created` event to a webhook the tenant configures.
//
// The tenant sets the secret `webhook-url` when installing; the manifest allows outbound HTTP
// only to `hooks.example.com`, so the host refuses any other URL. The output is the webhook's
// HTTP status: `{"status": 200}`.

import { InvalidConfig, definePlugin, config, http, log } from '@plinth/sdk';

/** The JSON body sent to the webhook. */
interface Notification {
  /** A line a chat channel can show as is. */
  text: string;
  /** The tenant the order belongs to. */
  tenant: string;
  /** The event's id, so the receiver can drop duplicates. */
  event_id: string;
  /** The order event as it arrived. */
  order: unknown;
}

export default definePlugin({
  onEvent(event) {
    // A missing required value is the tenant's configuration to fix: `invalid-config`.
    const url = config.getRequired('webhook-url');
    const order: unknown = event.json();
    const notification: Notification = {
      text: `New order on ${event.tenant}`,
      tenant: event.tenant,
      event_id: event.id,
      order,
    };
    // Never log the URL: it is a secret.
    // Blocks until the whole response has arrived; a refusal (a host off the allowlist) or a
    // transport failure is thrown as a CapabilityError naming the method and host.
    const response = http.request(url, {
      method: 'POST',
      headers: { 'user-agent': 'plinth-ts-webhook-notify/0.1' },
      json: notification,
    });
    if (!response.ok) {
      log.warn(`the webhook answered ${response.status}`);
    }
    return { status: response.status };
  },

  onInstall() {
    // Fail the install early if the URL is obviously wrong.
    const url = config.getRequired('webhook-url');
    if (!url.startsWith('https://') && !url.startsWith('http://')) {
      throw new InvalidConfig('webhook-url must be an http:// or https:// URL');
    }
  },
});
