// @ts-check
/**
 * Emitting platform events. Requires `permissions.events.emit` topics.
 *
 * An emitted event reaches every active install of the same tenant subscribed to its topic.
 *
 * ```js
 * events.emitJson('notify.sent', { order: 42 });
 * ```
 */

import * as wit from 'plinth:plugin/events@0.1.0';

import { callCapability, quote } from './capability.js';
import { json, toBytes } from './encoding.js';

/**
 * The text of a WIT `emit-error`, worded like the Rust SDK's.
 *
 * @param {{ tag: string, val?: unknown }} error
 * @returns {string}
 */
export function describeEmitError(error) {
  switch (error.tag) {
    case 'undeclared-topic':
      return `the manifest does not declare the topic ${quote(String(error.val))}`;
    case 'depth-exceeded':
      return `the event depth limit of ${error.val} is reached`;
    case 'payload-too-large':
      return `the payload is over the ${error.val}-byte limit`;
    case 'rate-limited':
      return 'too many events in this call';
    default:
      return `${error.tag}: ${error.val}`;
  }
}

/**
 * Emits an event on `topic`. The payload is sent as bytes: a `Uint8Array` as is, a string as
 * UTF-8, anything else as JSON (by convention payloads are UTF-8 JSON: use `emitJson` to send
 * a string as a JSON string).
 *
 * @param {string} topic
 * @param {Uint8Array | string | unknown} payload
 */
export function emit(topic, payload) {
  const bytes = toBytes(payload);
  callCapability(`events.emit(${quote(topic)})`, () => wit.emit(topic, bytes), describeEmitError);
}

/**
 * Emits an event on `topic` whose payload is `value` as JSON.
 *
 * @param {string} topic
 * @param {unknown} value
 */
export function emitJson(topic, value) {
  const bytes = json(value);
  callCapability(`events.emit(${quote(topic)})`, () => wit.emit(topic, bytes), describeEmitError);
}
