// @ts-check
/**
 * Leveled, structured log lines. Always granted.
 *
 * The host tags each line with the tenant, plugin and version, caps each line and each call
 * (what does not fit is cut or dropped, never failing the plugin) and escapes control
 * characters, so one call writes one line.
 *
 * ```js
 * log.info('order received', { order: 42, tenant: event.tenant });
 * ```
 */

import { write as witWrite } from 'plinth:plugin/log@0.1.0';

/** @typedef {import('plinth:plugin/log@0.1.0').Level} Level */
/** @typedef {import('./index.js').LogFields} LogFields */

/**
 * Writes one line at `level` with structured `fields`: an object (`{ key: value }`) or a list
 * of `[key, value]` pairs. Values that are not strings are written as JSON (`String(value)`
 * when they have no JSON form).
 *
 * @param {Level} level
 * @param {string} message
 * @param {LogFields} [fields]
 */
export function write(level, message, fields) {
  witWrite(level, String(message), fieldPairs(fields));
}

/** @param {string} message @param {LogFields} [fields] */
export function trace(message, fields) {
  write('trace', message, fields);
}

/** @param {string} message @param {LogFields} [fields] */
export function debug(message, fields) {
  write('debug', message, fields);
}

/** @param {string} message @param {LogFields} [fields] */
export function info(message, fields) {
  write('info', message, fields);
}

/** @param {string} message @param {LogFields} [fields] */
export function warn(message, fields) {
  write('warn', message, fields);
}

/** @param {string} message @param {LogFields} [fields] */
export function error(message, fields) {
  write('error', message, fields);
}

/**
 * The WIT form of `fields`: a list of (key, value) text pairs.
 *
 * @param {LogFields | undefined} fields
 * @returns {Array<[string, string]>}
 */
export function fieldPairs(fields) {
  if (fields === undefined || fields === null) {
    return [];
  }
  const entries = Array.isArray(fields) ? fields : Object.entries(fields);
  return entries.map(([key, value]) => [String(key), fieldText(value)]);
}

/**
 * @param {unknown} value
 * @returns {string}
 */
function fieldText(value) {
  if (typeof value === 'string') {
    return value;
  }
  try {
    const text = JSON.stringify(value);
    if (text !== undefined) {
      return text;
    }
  } catch {
    // A BigInt or a cycle: fall back to the string form.
  }
  return String(value);
}
