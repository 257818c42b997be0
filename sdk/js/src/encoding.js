// @ts-check
/**
 * Bytes in and out of the component: UTF-8 text, JSON, and the encoding of a handler's return
 * value into the `option<list<u8>>` the host receives.
 */

import { PluginFailure } from './errors.js';

const encoder = new TextEncoder();
// `fatal`: invalid UTF-8 is reported, never silently replaced.
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Encodes text as UTF-8.
 *
 * @param {string} text
 * @returns {Uint8Array}
 */
export function utf8(text) {
  return encoder.encode(text);
}

/**
 * Decodes UTF-8, throwing a `TypeError` on invalid input.
 *
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function decodeUtf8(bytes) {
  return strictDecoder.decode(bytes);
}

/**
 * Serializes `value` as JSON bytes: the output form of `onEvent` when a plugin wants to be
 * explicit (a string returned as is is sent as raw UTF-8 text, not as a JSON string).
 *
 * @param {unknown} value
 * @returns {Uint8Array}
 * @throws {PluginFailure} when `value` cannot be serialized (a BigInt, a cycle) or serializes
 *   to nothing (`undefined`, a function).
 */
export function json(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new PluginFailure(`cannot serialize the value as JSON: ${errorText(error)}`, {
      cause: error,
    });
  }
  if (text === undefined) {
    throw new PluginFailure(`cannot serialize the value as JSON: a ${typeof value} has no JSON form`);
  }
  return utf8(text);
}

/**
 * Encodes what a handler returned into the WIT `option<list<u8>>`:
 *
 * | returned | sent |
 * |---|---|
 * | `undefined` | no output (`none`) |
 * | `Uint8Array` (or another typed array, `ArrayBuffer`, `DataView`) | the bytes as they are |
 * | `string` | its UTF-8 bytes as they are (use `json("text")` for a JSON string) |
 * | anything else (`null`, numbers, objects, arrays) | `JSON.stringify(value)` |
 *
 * @param {unknown} value
 * @returns {Uint8Array | undefined}
 * @throws {PluginFailure} when the value cannot be serialized as JSON.
 */
export function encodeOutput(value) {
  if (value === undefined) {
    return undefined;
  }
  return toBytes(value);
}

/**
 * Bytes for a value as `encodeOutput` defines them, `undefined` included (as JSON, which
 * throws): used for payloads and bodies that must exist.
 *
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function toBytes(value) {
  if (value instanceof Uint8Array) {
    return value;
  }
  if (value instanceof ArrayBuffer) {
    return new Uint8Array(value);
  }
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (typeof value === 'string') {
    return utf8(value);
  }
  return json(value);
}

/**
 * The message of a caught error, for embedding in another message.
 *
 * @param {unknown} error
 * @returns {string}
 */
export function errorText(error) {
  return error instanceof Error ? error.message : String(error);
}
