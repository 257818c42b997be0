// @ts-check
/**
 * The `wasi:http/incoming-handler` export of plugins built for the `http-plugin` world: reads
 * the `wasi:http` request into an `IncomingRequest`, calls `onRequest`, and streams the
 * response back. `plinth-js build` imports this module only for that world, so other plugins
 * never import `wasi:http/types`.
 *
 * The handler is written against `wasi:http/types@0.2.12` by hand rather than with
 * StarlingMonkey's `fetch-event`, because `fetch-event` needs the engine's `http` feature,
 * which also brings in outbound `fetch` (`wasi:http/outgoing-handler`): a plugin that serves
 * HTTP must not import outbound HTTP unless its manifest grants it.
 */

import { Fields, OutgoingResponse, ResponseOutparam } from 'wasi:http/types@0.2.12';

import * as log from '../log.js';
import { BodyTooLarge, describeWasiError, readAll, writeAll } from './body.js';
import { IncomingRequest, MAX_REQUEST_BODY_BYTES, handleRequest, textResponse } from './server.js';

/**
 * The `wasi:http/incoming-handler` interface for a plugin's `onRequest`.
 *
 * @param {(request: IncomingRequest) => unknown} onRequest
 */
export function incomingHandler(onRequest) {
  return {
    /**
     * @param {import('wasi:http/types@0.2.12').IncomingRequest} request
     * @param {import('wasi:http/types@0.2.12').ResponseOutparam} responseOut
     */
    handle(request, responseOut) {
      let incoming;
      try {
        incoming = readRequest(request);
      } catch (error) {
        const parts =
          error instanceof BodyTooLarge
            ? textResponse(413, `the request body is over the ${MAX_REQUEST_BODY_BYTES}-byte limit`)
            : textResponse(400, `cannot read the request: ${describeWasiError(error)}`);
        respond(responseOut, parts);
        return;
      }
      const report = (/** @type {string} */ text) =>
        log.error('onRequest failed', { error: text, path: incoming.path });
      const parts = handleRequest(onRequest, incoming, report);
      if (parts instanceof Promise) {
        return parts.then((resolved) => respond(responseOut, resolved));
      }
      respond(responseOut, parts);
    },
  };
}

/**
 * @param {import('wasi:http/types@0.2.12').IncomingRequest} request
 * @returns {IncomingRequest}
 */
function readRequest(request) {
  const method = request.method();
  const name = method.tag === 'other' ? method.val : method.tag.toUpperCase();
  const pathWithQuery = request.pathWithQuery() || '/';
  const decoder = new TextDecoder();
  /** @type {Array<[string, string]>} */
  const headers = request
    .headers()
    .entries()
    .map(([key, value]) => [key, decoder.decode(value)]);
  const body = readAll(request.consume(), MAX_REQUEST_BODY_BYTES);
  return new IncomingRequest(name, pathWithQuery, headers, body);
}

/**
 * Sends `parts` through `out`: status and headers first, then the body.
 *
 * @param {import('wasi:http/types@0.2.12').ResponseOutparam} out
 * @param {import('./server.js').OutgoingParts} parts
 */
function respond(out, parts) {
  const encoder = new TextEncoder();
  let { status, body } = parts;
  let headers;
  try {
    headers = Fields.fromList(parts.headers.map(([name, value]) => [name, encoder.encode(value)]));
  } catch (error) {
    status = 500;
    body = encoder.encode(`the plugin returned a header the host refuses: ${describeWasiError(error)}`);
    headers = new Fields();
  }
  const response = new OutgoingResponse(headers);
  try {
    response.setStatusCode(status);
  } catch {
    // Not a status the host can send: answer 500 rather than nothing.
    response.setStatusCode(500);
  }
  const outgoingBody = response.body();
  ResponseOutparam.set(out, { tag: 'ok', val: response });
  try {
    writeAll(outgoingBody, body);
  } catch (error) {
    // The client went away or the host refused the body; the status is already sent.
    log.warn('sending the HTTP response body failed', { error: describeWasiError(error) });
  }
}
