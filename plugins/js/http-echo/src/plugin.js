// Serves HTTP: echoes every request back as JSON.
//
// `POST /p/{tenant}/examples.js-http-echo/hello?x=1` with body `hi` answers
// `{"method":"POST","path":"/hello?x=1","body":"hi"}`. A request for `/fail` throws, which the
// SDK answers with `500` and the error's message (and logs with its stack).

import { definePlugin } from '@plinth/sdk';

export default definePlugin({
  // Every plugin handles events; this one only serves HTTP and subscribes to none.
  onEvent() {
    return undefined;
  },

  onRequest(request) {
    if (request.pathWithQuery === '/fail') {
      throw new Error('asked to fail');
    }
    return {
      // A `json` value is sent as JSON with `content-type: application/json`.
      json: {
        method: request.method,
        path: request.pathWithQuery,
        // Lossy, as the Rust echo: invalid UTF-8 becomes U+FFFD.
        body: new TextDecoder().decode(request.body),
      },
    };
  },
});
