// @ts-check
/**
 * The tenant's configuration for this install. Requires the `config` permission.
 *
 * Only keys declared under `[config.<key>]` in `plinth.toml` exist. The host has already
 * checked each value against its declared type, so the typed helpers fail only when the
 * manifest and the code disagree.
 *
 * ```js
 * const url = config.getRequired('webhook-url');     // InvalidConfig when unset
 * const retries = config.getInteger('retries') ?? 3;
 * ```
 */

import * as wit from 'plinth:plugin/config@0.1.0';

import { callCapability, quote } from './capability.js';
import { InvalidConfig } from './errors.js';

/**
 * @param {{ tag: string, val?: unknown }} error
 * @returns {string}
 */
function describeConfigError(error) {
  if (error.tag === 'undeclared') {
    return `config key ${quote(String(error.val))} is not declared in the manifest`;
  }
  return `${error.tag}: ${error.val}`;
}

/**
 * The value of `key`, or `undefined` when the tenant left an optional key unset. An undeclared
 * key throws a `CapabilityError` (the plugin asked for something its manifest does not
 * declare).
 *
 * @param {string} key
 * @returns {string | undefined}
 */
export function get(key) {
  return callCapability(`config.get(${quote(key)})`, () => wit.get(key), describeConfigError);
}

/**
 * The value of `key`; an unset value is the tenant's configuration to fix.
 *
 * @param {string} key
 * @returns {string}
 * @throws {InvalidConfig} when the value is not set.
 */
export function getRequired(key) {
  const value = get(key);
  if (value === undefined) {
    throw new InvalidConfig(`config key ${quote(key)} is required but not set`);
  }
  return value;
}

/**
 * The value of an `integer` key, or `undefined` when unset.
 *
 * @param {string} key
 * @returns {number | undefined}
 * @throws {InvalidConfig} when the value is not a safe decimal integer.
 */
export function getInteger(key) {
  const value = get(key);
  if (value === undefined) {
    return undefined;
  }
  const trimmed = value.trim();
  const number = Number(trimmed);
  if (!/^[+-]?\d+$/.test(trimmed) || !Number.isSafeInteger(number)) {
    throw new InvalidConfig(`config key ${quote(key)}: ${quote(value)} is not an integer`);
  }
  return number;
}

/**
 * The value of a `boolean` key (`true` or `false`), or `undefined` when unset.
 *
 * @param {string} key
 * @returns {boolean | undefined}
 * @throws {InvalidConfig} when the value is neither `true` nor `false`.
 */
export function getBoolean(key) {
  const value = get(key);
  if (value === undefined) {
    return undefined;
  }
  switch (value.trim()) {
    case 'true':
      return true;
    case 'false':
      return false;
    default:
      throw new InvalidConfig(`config key ${quote(key)}: ${quote(value)} is not \`true\` or \`false\``);
  }
}
