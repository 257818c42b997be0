// @ts-check
/** `Event`: one event delivered to a plugin's `onEvent`. */

import { decodeUtf8, errorText } from './encoding.js';
import { InvalidPayload } from './errors.js';

/** @typedef {import('plinth:plugin/types@0.1.0').Event} WitEvent */

export class Event {
  /** @param {WitEvent} raw the event as the host delivered it */
  constructor(raw) {
    /** Unique id of this delivery (a UUIDv7 string); never delivered twice to one install. */
    this.id = raw.id;
    /** The topic the event was published on; always one the manifest subscribes to. */
    this.topic = raw.topic;
    /** The id of the tenant the plugin runs for (stable, unlike its slug). */
    this.tenant = raw.tenant;
    /** How many `events.emit` hops led to this event: `0` for an event from outside. */
    this.depth = raw.depth;
    /** The raw payload; by convention UTF-8 JSON (see `json()`). */
    this.payload = raw.payload;
  }

  /**
   * The payload as UTF-8 text.
   *
   * @returns {string}
   * @throws {InvalidPayload} when the payload is not valid UTF-8.
   */
  text() {
    try {
      return decodeUtf8(this.payload);
    } catch (error) {
      throw new InvalidPayload(
        `the payload of \`${this.topic}\` is not UTF-8 text: ${errorText(error)}`,
        { cause: error },
      );
    }
  }

  /**
   * The payload decoded as JSON.
   *
   * With `check`, the decoded value is also checked: `check` returns `false` (or throws) when
   * the value does not have the shape the plugin expects, and the event fails as
   * `invalid-payload` naming the topic (and the text of what `check` threw). A type guard makes
   * the result typed in TypeScript:
   *
   * ```ts
   * const name = event.json((v): v is string => typeof v === 'string');
   * ```
   *
   * @template [T=any]
   * @param {((value: unknown) => boolean) | ((value: unknown) => value is T)} [check]
   * @returns {T}
   * @throws {InvalidPayload} when the payload is not UTF-8 JSON, or `check` refuses it.
   */
  json(check) {
    const text = this.text();
    let value;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new InvalidPayload(
        `the payload of \`${this.topic}\` is not the expected JSON: ${errorText(error)}`,
        { cause: error },
      );
    }
    if (check) {
      let accepted;
      try {
        accepted = check(value);
      } catch (error) {
        throw new InvalidPayload(
          `the payload of \`${this.topic}\` is not the expected JSON: ${errorText(error)}`,
          { cause: error },
        );
      }
      if (!accepted) {
        throw new InvalidPayload(
          `the payload of \`${this.topic}\` is not the expected JSON: ${describeShape(value)} was refused`,
        );
      }
    }
    return value;
  }
}

/**
 * A short description of a JSON value's shape, for error messages (never the value itself:
 * payloads may hold personal data).
 *
 * @param {unknown} value
 * @returns {string}
 */
function describeShape(value) {
  if (value === null) {
    return 'null';
  }
  if (Array.isArray(value)) {
    return 'an array';
  }
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
