// Counts `count` events in the plugin's private key-value store.
//
// Every `count` event adds one to a counter kept per tenant (the host namespaces the store by
// tenant and plugin) and answers `{"count": n}`. The count is stored as decimal text, as the
// Rust examples.counter stores it.

import { PluginFailure, definePlugin, kv, log } from '@plinth/sdk';

/** The kv key the counter lives under. */
const KEY = 'count';

/** The stored count, `0` when nothing is stored yet. */
function readCount(): number {
  const text = kv.getText(KEY);
  if (text === undefined) {
    return 0;
  }
  const count = Number(text);
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new PluginFailure(`the stored count \`${text}\` is corrupt`);
  }
  return count;
}

export default definePlugin({
  onEvent() {
    // A kv failure (quota, unavailable) is thrown as a CapabilityError naming the call, which
    // fails the event with a `capability` error.
    const count = readCount() + 1;
    kv.set(KEY, String(count));
    log.debug(`count is now ${count}`);
    // An object is sent as JSON.
    return { count };
  },

  onInstall() {
    // Start from zero on a fresh install.
    kv.set(KEY, '0');
  },
});
