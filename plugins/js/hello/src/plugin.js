// The smallest useful Plinth plugin, in JavaScript: it greets whoever a `greet` event names.
//
// Send it `{"topic": "greet", "payload": "Ada"}` and it answers `"Hello, Ada!"`.

import { definePlugin, json, log } from '@plinth/sdk';

export default definePlugin({
  onEvent(event) {
    // The payload is JSON; a payload that is not a JSON string is the sender's mistake, which
    // `event.json` reports as an `invalid-payload` error when the check refuses it.
    const name = event.json((value) => typeof value === 'string');
    log.info('greeting', { name });
    // The output is JSON too: `json()` sends "Hello, Ada!" as a JSON string (a plain string
    // would be sent as raw text).
    return json(`Hello, ${name}!`);
  },
});
