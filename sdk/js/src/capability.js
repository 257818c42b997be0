// @ts-check
/**
 * Calling capability imports: componentize-js reports the `err` case of an imported function's
 * `result` by throwing a `ComponentError` whose `payload` is the WIT error variant
 * (`{ tag, val }`). `callCapability` turns that (or anything else thrown) into a
 * `CapabilityError` whose message names the call, e.g.
 * `kv.set("count") failed: kv quota exceeded: …`.
 */

import { CapabilityError, messageOf } from './errors.js';

/**
 * The WIT error variant carried by a value thrown by an import, if it carries one.
 *
 * @param {unknown} thrown
 * @returns {{ tag: string, val?: unknown } | undefined}
 */
export function witErrorOf(thrown) {
  const candidate =
    typeof thrown === 'object' && thrown !== null && 'payload' in thrown ? thrown.payload : thrown;
  if (typeof candidate === 'object' && candidate !== null && 'tag' in candidate) {
    return /** @type {{ tag: string, val?: unknown }} */ (candidate);
  }
  return undefined;
}

/**
 * Runs `call` (one capability import); on failure throws a `CapabilityError` naming `what`
 * and the reason `describe` gives for the WIT error variant (or the thrown value's message
 * when it is not a variant, e.g. an engine error).
 *
 * @template T
 * @param {string} what the call as the plugin wrote it, e.g. `kv.get("count")`
 * @param {() => T} call
 * @param {(error: { tag: string, val?: unknown }) => string} describe
 * @returns {T}
 */
export function callCapability(what, call, describe) {
  try {
    return call();
  } catch (thrown) {
    const variant = witErrorOf(thrown);
    const reason = variant ? describe(variant) : messageOf(thrown);
    throw new CapabilityError(`${what} failed: ${reason}`, { cause: thrown });
  }
}

/**
 * Quotes a key or topic for a message, the way JSON would.
 *
 * @param {string} text
 * @returns {string}
 */
export function quote(text) {
  return JSON.stringify(String(text));
}
