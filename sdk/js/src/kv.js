// @ts-check
/**
 * A private key-value store of bytes. Requires the `kv` permission.
 *
 * Keys are non-empty UTF-8 text of at most 512 bytes. The store is private to the plugin and
 * the tenant it runs for; its total size is bounded by the manifest's `max-bytes` and the
 * tenant's plan. Every failure is thrown as a `CapabilityError` naming the call, so a plugin
 * that does not catch it fails the event with a `capability` error.
 *
 * ```js
 * kv.set('greeting', 'hello');
 * kv.getText('greeting'); // 'hello'
 * kv.setJson('state', { seen: 3 });
 * for (const key of kv.keys('user/')) kv.delete(key);
 * ```
 */

import * as wit from 'plinth:plugin/kv@0.1.0';

import { callCapability, quote } from './capability.js';
import { decodeUtf8, errorText, json, toBytes } from './encoding.js';
import { PluginFailure } from './errors.js';

/** How many keys `keys()` asks for per page. */
const PAGE_SIZE = 256;

/**
 * The text of a WIT `kv-error`, worded like the Rust SDK's.
 *
 * @param {{ tag: string, val?: unknown }} error
 * @returns {string}
 */
export function describeKvError(error) {
  switch (error.tag) {
    case 'quota-exceeded':
      return `kv quota exceeded: ${error.val}`;
    case 'invalid-key':
      return `invalid kv key: ${error.val}`;
    case 'value-too-large':
      return `kv value too large: the limit is ${error.val} bytes`;
    case 'unavailable':
      return `kv store unavailable: ${error.val}`;
    default:
      return `${error.tag}: ${error.val}`;
  }
}

/**
 * The value stored under `key`, or `undefined` if there is none.
 *
 * @param {string} key
 * @returns {Uint8Array | undefined}
 */
export function get(key) {
  return callCapability(`kv.get(${quote(key)})`, () => wit.get(key), describeKvError);
}

/**
 * The value stored under `key` as UTF-8 text, or `undefined`.
 *
 * @param {string} key
 * @returns {string | undefined}
 * @throws {PluginFailure} when the stored value is not UTF-8.
 */
export function getText(key) {
  const bytes = get(key);
  if (bytes === undefined) {
    return undefined;
  }
  try {
    return decodeUtf8(bytes);
  } catch (error) {
    throw new PluginFailure(`the kv value under ${quote(key)} is not UTF-8 text: ${errorText(error)}`);
  }
}

/**
 * The value stored under `key` decoded as JSON, or `undefined`.
 *
 * @template [T=any]
 * @param {string} key
 * @returns {T | undefined}
 * @throws {PluginFailure} when the stored value is not JSON.
 */
export function getJson(key) {
  const text = getText(key);
  if (text === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new PluginFailure(`the kv value under ${quote(key)} is not JSON: ${errorText(error)}`);
  }
}

/**
 * Stores `value` under `key`, replacing any previous value. A `Uint8Array` is stored as is, a
 * string as UTF-8; anything else is stored as JSON (see `setJson`).
 *
 * @param {string} key
 * @param {Uint8Array | string | unknown} value
 */
export function set(key, value) {
  const bytes = toBytes(value);
  callCapability(`kv.set(${quote(key)})`, () => wit.set(key, bytes), describeKvError);
}

/**
 * Stores `value` as JSON under `key` (a string is stored as a JSON string, unlike `set`).
 *
 * @param {string} key
 * @param {unknown} value
 */
export function setJson(key, value) {
  const bytes = json(value);
  callCapability(`kv.set(${quote(key)})`, () => wit.set(key, bytes), describeKvError);
}

/**
 * Deletes `key`. Returns whether a value was there.
 *
 * @param {string} key
 * @returns {boolean}
 */
function remove(key) {
  return callCapability(`kv.delete(${quote(key)})`, () => wit.delete(key), describeKvError);
}
export { remove as delete };

/**
 * One page of at most `limit` keys starting with `prefix`, in ascending byte order (the host
 * caps `limit` at 1000). Pass the previous page's `nextCursor` to continue; `keys()` does that
 * for you.
 *
 * @param {string} prefix
 * @param {{ cursor?: string, limit?: number }} [options]
 * @returns {{ keys: string[], nextCursor?: string }}
 */
export function listKeys(prefix, options = {}) {
  const { cursor, limit = PAGE_SIZE } = options;
  return callCapability(
    `kv.listKeys(${quote(prefix)})`,
    () => wit.listKeys(prefix, cursor, limit),
    describeKvError,
  );
}

/**
 * Every key starting with `prefix`, in ascending order, fetched page by page as the iteration
 * goes.
 *
 * @param {string} [prefix]
 * @returns {Generator<string, void, undefined>}
 */
export function* keys(prefix = '') {
  /** @type {string | undefined} */
  let cursor;
  do {
    const page = listKeys(prefix, { cursor });
    yield* page.keys;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
}
