// @ts-check
/**
 * Outbound HTTP: a small blocking client over `wasi:http/outgoing-handler`, like the Rust
 * SDK's. Requires `permissions.http.hosts` in `plinth.toml`; the host refuses, on every
 * request and redirect, any host not on that allowlist.
 *
 * ```ts
 * const response = http.request(url, { method: 'POST', json: { text: 'hi' } });
 * if (!response.ok) log.warn(`the webhook answered ${response.status}`);
 * ```
 *
 * Calls block until the whole response has arrived (a plugin call is one request at a time);
 * `await` on them is harmless. Every failure throws a `CapabilityError` naming the method and
 * host, never the full URL (which may be a secret).
 *
 * Why not the engine's `fetch`: StarlingMonkey's `fetch` (also available when `http` is granted)
 * aborts the whole component, instead of rejecting, when the host refuses a request that has a
 * body before reading it, e.g. a POST to a host off the allowlist. This client writes the body,
 * then reads the refusal from the response and reports it as a `CapabilityError`.
 */

import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingRequest, RequestOptions } from 'wasi:http/types@0.2.12';

import { CapabilityError, messageOf } from '../errors.js';
import { json, toBytes } from '../encoding.js';
import { BodyTooLarge, describeWasiError, drop, readAll, writeAll } from './body.js';
import { Message, headerPairs } from './message.js';

/** The largest response body read unless told otherwise (16 MiB), as in the Rust SDK. */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** @typedef {import('../index.js').RequestInit} RequestInit */

/** The methods `wasi:http` names; any other is sent as `other`. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

/** An HTTP response received by `request`, with its whole body. */
export class HttpResponse extends Message {
  /**
   * @param {number} status
   * @param {Array<[string, string]>} headers
   * @param {Uint8Array} body
   */
  constructor(status, headers, body) {
    super(headers, body);
    /** The status code, e.g. `200`. */
    this.status = status;
  }

  /** Whether the status is `2xx`. */
  get ok() {
    return this.status >= 200 && this.status < 300;
  }

  /**
   * @param {string} message
   * @param {unknown} cause
   * @returns {Error}
   */
  decodeError(message, cause) {
    return new CapabilityError(`cannot decode the HTTP response: ${message}`, { cause });
  }
}

/**
 * The parts of an absolute `http(s)` URL that a `wasi:http` request carries.
 *
 * @param {string} url
 * @returns {{ https: boolean, authority: string, pathWithQuery: string }}
 * @throws {TypeError} naming what is wrong with it.
 */
export function splitUrl(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError('expected an absolute URL such as https://example.com/');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new TypeError('the scheme must be http or https');
  }
  if (parsed.username || parsed.password) {
    throw new TypeError('credentials in the URL are not supported');
  }
  if (!parsed.host) {
    throw new TypeError('the host is missing');
  }
  return {
    https: parsed.protocol === 'https:',
    authority: parsed.host,
    pathWithQuery: `${parsed.pathname || '/'}${parsed.search}`,
  };
}

/**
 * Sends a request to the absolute `url` and reads the whole response. A non-2xx status is not
 * an error: check `response.status` or `response.ok`.
 *
 * The body is `init.json` serialized as JSON (with `content-type: application/json` unless
 * given) or `init.body`: bytes as they are, a string as UTF-8, anything else as JSON.
 *
 * @param {string} url
 * @param {RequestInit} [init]
 * @returns {HttpResponse}
 * @throws {CapabilityError} when the URL or headers are invalid, the host refuses the request
 *   (e.g. a host outside the allowlist), it fails in transport or times out, or the response
 *   body is larger than `maxResponseBytes`.
 */
export function request(url, init = {}) {
  const method = (init.method ?? 'GET').toUpperCase();
  let target;
  try {
    target = splitUrl(url);
  } catch (error) {
    throw new CapabilityError(`http.request(${method}) failed: invalid URL: ${messageOf(error)}`);
  }
  const what = `http.request(${method} ${target.authority})`;
  const fail = (/** @type {string} */ reason, /** @type {unknown} */ cause) =>
    new CapabilityError(`${what} failed: ${reason}`, { cause });

  const headers = headerPairs(init.headers);
  /** @type {Uint8Array | undefined} */
  let body;
  if (init.json !== undefined) {
    body = json(init.json);
    if (!headers.some(([name]) => name.toLowerCase() === 'content-type')) {
      headers.push(['content-type', 'application/json']);
    }
  } else if (init.body !== undefined && init.body !== null) {
    body = toBytes(init.body);
  }

  // A known length, rather than chunked encoding, for receivers that need it.
  if (body !== undefined && !headers.some(([name]) => name.toLowerCase() === 'content-length')) {
    headers.push(['content-length', String(body.byteLength)]);
  }

  const encoder = new TextEncoder();
  let fields;
  try {
    fields = Fields.fromList(headers.map(([name, value]) => [name, encoder.encode(value)]));
  } catch (error) {
    throw fail(`headers refused: ${describeWasiError(error)}`, error);
  }
  const outgoing = new OutgoingRequest(fields);
  try {
    outgoing.setMethod(METHODS.includes(method) ? { tag: /** @type {any} */ (method.toLowerCase()) } : { tag: 'other', val: method });
    outgoing.setScheme(target.https ? { tag: 'HTTPS' } : { tag: 'HTTP' });
    outgoing.setAuthority(target.authority);
    outgoing.setPathWithQuery(target.pathWithQuery);
  } catch (error) {
    throw fail(`invalid request: ${describeWasiError(error)}`, error);
  }
  const options = requestOptions(init.timeoutMs);
  const outgoingBody = outgoing.body();

  let future;
  try {
    future = handle(outgoing, options);
  } catch (error) {
    throw fail(describeWasiError(error), error);
  }
  // Write the body before waiting for the response. When the host refuses the request early it
  // stops reading the body: the write fails, and the response says why.
  /** @type {unknown} */
  let writeError;
  try {
    writeAll(outgoingBody, body ?? new Uint8Array());
  } catch (error) {
    writeError = error;
  }

  const pollable = future.subscribe();
  pollable.block();
  drop(pollable);
  const outcome = future.get();
  drop(future);
  if (outcome === undefined || outcome.tag === 'err') {
    throw fail('the response was not delivered', outcome);
  }
  if (outcome.val.tag === 'err') {
    throw fail(describeWasiError(outcome.val.val), outcome.val.val);
  }
  if (writeError !== undefined) {
    throw fail(`sending the body failed: ${describeWasiError(writeError)}`, writeError);
  }
  const incoming = outcome.val.val;
  const limit = init.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  try {
    const status = incoming.status();
    const decoder = new TextDecoder();
    /** @type {Array<[string, string]>} */
    const responseHeaders = incoming
      .headers()
      .entries()
      .map(([name, value]) => [name, decoder.decode(value)]);
    const responseBody = readAll(incoming.consume(), limit);
    return new HttpResponse(status, responseHeaders, responseBody);
  } catch (error) {
    if (error instanceof BodyTooLarge) {
      throw fail(`the response body is over the ${limit}-byte limit`, error);
    }
    throw fail(`reading the response failed: ${describeWasiError(error)}`, error);
  } finally {
    drop(incoming);
  }
}

/**
 * Sends a `GET` request to `url`; shorthand for `request(url, { ...init, method: 'GET' })`.
 *
 * @param {string} url
 * @param {Omit<RequestInit, 'method' | 'body' | 'json'>} [init]
 * @returns {HttpResponse}
 */
export function get(url, init = {}) {
  return request(url, { ...init, method: 'GET' });
}

/**
 * Sends a `POST` request with `value` as its JSON body.
 *
 * @param {string} url
 * @param {unknown} value
 * @param {Omit<RequestInit, 'method' | 'body' | 'json'>} [init]
 * @returns {HttpResponse}
 */
export function postJson(url, value, init = {}) {
  return request(url, { ...init, method: 'POST', json: value });
}

/**
 * The request's timeouts: `timeoutMs` bounds connecting, the first byte and the time between
 * bytes (the host may bound them further).
 *
 * @param {number | undefined} timeoutMs
 * @returns {RequestOptions | undefined}
 */
function requestOptions(timeoutMs) {
  if (timeoutMs === undefined) {
    return undefined;
  }
  const nanos = BigInt(Math.max(0, Math.round(timeoutMs))) * 1_000_000n;
  const options = new RequestOptions();
  options.setConnectTimeout(nanos);
  options.setFirstByteTimeout(nanos);
  options.setBetweenBytesTimeout(nanos);
  return options;
}
