// @ts-check
/**
 * Serving HTTP: the request and response types of `onRequest`, and how they map to and from
 * `wasi:http` (see `incoming.js`, which does the `wasi:http/types` calls).
 *
 * The host routes `/p/{tenant}/{plugin}/…` to a plugin built for the `http-plugin` world,
 * with that prefix removed. The SDK reads the whole request body (at most
 * `MAX_REQUEST_BODY_BYTES`, else it answers `413`) before calling `onRequest`, and sends the
 * response it returns.
 */

import { InvalidPayload, PluginError, messageOf, toWitError } from '../errors.js';
import { json, toBytes, utf8 } from '../encoding.js';
import { Message, findHeader, headerPairs } from './message.js';

/** The largest request body read before calling `onRequest` (10 MiB), as in the Rust SDK. */
export const MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024;

/** @typedef {import('../index.js').ResponseInit} ResponseInit */

/** An HTTP request received by `onRequest`. */
export class IncomingRequest extends Message {
  /**
   * @param {string} method
   * @param {string} pathWithQuery
   * @param {Array<[string, string]>} headers
   * @param {Uint8Array} body
   */
  constructor(method, pathWithQuery, headers, body) {
    super(headers, body);
    /** The method in upper case, e.g. `GET`. */
    this.method = method;
    /** The path and query with the `/p/{tenant}/{plugin}` prefix removed, e.g. `/items?page=2`. */
    this.pathWithQuery = pathWithQuery;
  }

  /** The path without the query, e.g. `/items`. */
  get path() {
    const at = this.pathWithQuery.indexOf('?');
    return at < 0 ? this.pathWithQuery : this.pathWithQuery.slice(0, at);
  }

  /** The query without the `?`, or `undefined` when there is none. */
  get query() {
    const at = this.pathWithQuery.indexOf('?');
    return at < 0 ? undefined : this.pathWithQuery.slice(at + 1);
  }

  /**
   * A body that cannot be decoded is the client's mistake: `InvalidPayload`, answered `400`.
   *
   * @param {string} message
   * @param {unknown} cause
   * @returns {Error}
   */
  decodeError(message, cause) {
    return new InvalidPayload(`cannot decode the request: ${message}`, { cause });
  }
}

/**
 * A response ready to send: a valid status, text header pairs and the body bytes.
 *
 * @typedef {{ status: number, headers: Array<[string, string]>, body: Uint8Array }} OutgoingParts
 */

/**
 * Normalizes what `onRequest` returned into status, headers and body bytes:
 *
 * - `undefined` → `204 No Content`;
 * - an object with any of `status` (default `200`), `headers` (object, pairs or `Headers`)
 *   and `body` (bytes as they are, a string as UTF-8, anything else as JSON with
 *   `content-type: application/json` unless given), or `json` (a value sent as JSON);
 * - a fetch `Response` is not supported here (its body is a stream): build the object.
 *
 * @param {ResponseInit | undefined} response
 * @returns {OutgoingParts}
 */
export function responseParts(response) {
  if (response === undefined) {
    return { status: 204, headers: [], body: new Uint8Array() };
  }
  if (typeof response !== 'object' || response === null) {
    throw new TypeError(
      `onRequest must return { status, headers, body } (or nothing), not ${typeof response}`,
    );
  }
  const status = response.status ?? 200;
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new RangeError(`onRequest returned an invalid status ${String(status)}`);
  }
  const headers = headerPairs(response.headers);
  let body;
  let contentType;
  if (response.json !== undefined) {
    body = json(response.json);
    contentType = 'application/json';
  } else if (response.body === undefined || response.body === null) {
    body = new Uint8Array();
  } else if (typeof response.body === 'string') {
    body = utf8(response.body);
    contentType = 'text/plain; charset=utf-8';
  } else if (response.body instanceof Uint8Array || ArrayBuffer.isView(response.body) || response.body instanceof ArrayBuffer) {
    body = toBytes(response.body);
  } else {
    body = json(response.body);
    contentType = 'application/json';
  }
  if (contentType !== undefined && findHeader(headers, 'content-type') === undefined) {
    headers.push(['content-type', contentType]);
  }
  return { status, headers, body };
}

/**
 * The response sent when `onRequest` throws (or returns something that cannot be sent):
 * `400` with the message for an `InvalidPayload` (the request was wrong), `500` otherwise.
 * The text is the plugin error's message; an unexpected error's stack is not sent to the
 * client (the adapter logs it instead).
 *
 * @param {unknown} error
 * @returns {OutgoingParts}
 */
export function errorResponse(error) {
  const status = error instanceof InvalidPayload ? 400 : 500;
  const message =
    error instanceof PluginError ? error.message : `the plugin failed: ${messageOf(error)}`;
  return textResponse(status, message);
}

/**
 * A plain-text response.
 *
 * @param {number} status
 * @param {string} text
 * @returns {OutgoingParts}
 */
export function textResponse(status, text) {
  return {
    status,
    headers: [['content-type', 'text/plain; charset=utf-8']],
    body: utf8(text),
  };
}

/**
 * Calls `onRequest` and normalizes its response; any failure becomes `errorResponse`, and
 * `report` is told about it (with the WIT form of the error, whose text has the stack).
 *
 * @param {(request: IncomingRequest) => unknown} onRequest
 * @param {IncomingRequest} request
 * @param {(text: string) => void} report
 * @returns {OutgoingParts | Promise<OutgoingParts>}
 */
export function handleRequest(onRequest, request, report) {
  /** @param {unknown} error */
  const fail = (error) => {
    report(toWitError(error).val);
    return errorResponse(error);
  };
  let returned;
  try {
    returned = onRequest(request);
  } catch (error) {
    return fail(error);
  }
  if (returned instanceof Promise) {
    return returned.then((value) => {
      try {
        return responseParts(/** @type {ResponseInit | undefined} */ (value));
      } catch (error) {
        return fail(error);
      }
    }, fail);
  }
  try {
    return responseParts(/** @type {ResponseInit | undefined} */ (returned));
  } catch (error) {
    return fail(error);
  }
}
