// @ts-check
/**
 * What HTTP requests and responses have in common in this SDK: header pairs, a whole body,
 * and decoding it.
 */

import { decodeUtf8, errorText } from '../encoding.js';

/** @typedef {import('../index.js').HeadersInit} HeadersInit */

/**
 * Normalizes headers given as an object, a list of pairs or a `Headers` into (name, value)
 * pairs, in order; a name may repeat.
 *
 * @param {HeadersInit | undefined} headers
 * @returns {Array<[string, string]>}
 */
export function headerPairs(headers) {
  if (headers === undefined || headers === null) {
    return [];
  }
  /** @type {Iterable<[string, unknown]>} */
  const entries =
    Array.isArray(headers) || isIterable(headers) ? /** @type {any} */ (headers) : Object.entries(headers);
  return Array.from(entries, ([name, value]) => [String(name), String(value)]);
}

/**
 * @param {unknown} value
 * @returns {value is Iterable<unknown>}
 */
function isIterable(value) {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (/** @type {any} */ (value)[Symbol.iterator]) === 'function'
  );
}

/**
 * The first value of the header `name` (case-insensitively) in `headers`.
 *
 * @param {ReadonlyArray<readonly [string, string]>} headers
 * @param {string} name
 * @returns {string | undefined}
 */
export function findHeader(headers, name) {
  const wanted = name.toLowerCase();
  return headers.find(([key]) => key.toLowerCase() === wanted)?.[1];
}

/** A message with header pairs and a whole body, and ways to read that body. */
export class Message {
  /**
   * @param {Array<[string, string]>} headers
   * @param {Uint8Array} body
   */
  constructor(headers, body) {
    /** Header (name, value) pairs in order; a name may repeat. */
    this.headers = headers;
    /** The whole body. */
    this.body = body;
  }

  /**
   * The first header named `name` (case-insensitively).
   *
   * @param {string} name
   * @returns {string | undefined}
   */
  header(name) {
    return findHeader(this.headers, name);
  }

  /**
   * The body as UTF-8 text.
   *
   * @returns {string}
   * @throws {TypeError} when the body is not UTF-8 (subclasses throw their own error kind).
   */
  text() {
    try {
      return decodeUtf8(this.body);
    } catch (error) {
      throw this.decodeError(`the body is not UTF-8 text: ${errorText(error)}`, error);
    }
  }

  /**
   * The body decoded as JSON.
   *
   * @template [T=any]
   * @returns {T}
   */
  json() {
    const text = this.text();
    try {
      return JSON.parse(text);
    } catch (error) {
      throw this.decodeError(`the body is not JSON: ${errorText(error)}`, error);
    }
  }

  /**
   * The error thrown when the body cannot be decoded; overridden by subclasses.
   *
   * @param {string} message
   * @param {unknown} cause
   * @returns {Error}
   */
  decodeError(message, cause) {
    return new TypeError(message, { cause });
  }
}
