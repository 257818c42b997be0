// @ts-check
/**
 * Plugin errors: the classes a plugin throws, and the conversion of anything thrown into the
 * WIT `plugin-error` variant the host receives.
 *
 * Mirrors the Rust SDK's `PluginError`: four kinds, each carrying a human-readable message
 * meant for the tenant who will read it.
 */

/**
 * The WIT `plugin-error` variant as componentize-js lowers it: a `{ tag, val }` object.
 *
 * @typedef {import('plinth:plugin/types@0.1.0').PluginError} WitPluginError
 */

/** Base class of the four error kinds; throw one of the subclasses. */
export class PluginError extends Error {
  /**
   * @param {string} message
   * @param {{ cause?: unknown }} [options]
   */
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }

  /**
   * The WIT variant tag of this kind of error.
   *
   * @returns {WitPluginError['tag']}
   */
  get tag() {
    return 'failed';
  }
}

/** The event payload (or request) was not what the plugin expects. The message says why. */
export class InvalidPayload extends PluginError {
  /** @returns {'invalid-payload'} */
  get tag() {
    return 'invalid-payload';
  }
}

/** The tenant's configuration for this install is missing a value or has a bad one. */
export class InvalidConfig extends PluginError {
  /** @returns {'invalid-config'} */
  get tag() {
    return 'invalid-config';
  }
}

/** A capability call (kv, config, events, outbound HTTP) failed. The message says which and why. */
export class CapabilityError extends PluginError {
  /** @returns {'capability'} */
  get tag() {
    return 'capability';
  }
}

/** Any other failure, described for the tenant who will read it. */
export class PluginFailure extends PluginError {
  /** @returns {'failed'} */
  get tag() {
    return 'failed';
  }
}

/**
 * Converts any thrown value into the WIT `plugin-error` the host receives.
 *
 * - an instance of one of the four classes above maps to its variant with its message;
 * - any other `Error` becomes `failed` with its message followed by its stack (if the engine
 *   recorded one), so the tenant and developer can see where it came from;
 * - any other value (a string, a number, an object) becomes `failed` with its text.
 *
 * @param {unknown} thrown
 * @returns {WitPluginError}
 */
export function toWitError(thrown) {
  if (thrown instanceof PluginError) {
    return { tag: thrown.tag, val: thrown.message };
  }
  if (thrown instanceof Error) {
    return { tag: 'failed', val: describeError(thrown) };
  }
  return { tag: 'failed', val: describeValue(thrown) };
}

/**
 * The message of an unexpected `Error`, with its name when it is not a plain `Error` and its
 * stack when there is one.
 *
 * @param {Error} error
 * @returns {string}
 */
function describeError(error) {
  const head =
    error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
  const stack = typeof error.stack === 'string' ? trimStack(error.stack) : '';
  const text = head || 'an error without a message was thrown';
  return stack ? `${text}\n${stack}` : text;
}

/**
 * The frames of `stack` that belong to the plugin: everything above the SDK's own wrapper
 * (`settle`, called by the hooks `definePlugin` exports), which is the same for every error.
 * Engines write one frame per line, e.g. `onEvent@.plinth/js/plugin.bundle.js:580:15`.
 *
 * @param {string} stack
 * @returns {string}
 */
export function trimStack(stack) {
  const frames = stack.trim().split('\n');
  const wrapper = frames.findIndex((frame) => /^(settle@|definePlugin\/)/.test(frame));
  return (wrapper < 0 ? frames : frames.slice(0, wrapper)).join('\n').trim();
}

/**
 * The text of a thrown value that is not an `Error`.
 *
 * @param {unknown} value
 * @returns {string}
 */
function describeValue(value) {
  if (typeof value === 'string') {
    return value || 'an empty string was thrown';
  }
  if (value === undefined || value === null) {
    return `${value} was thrown`;
  }
  if (typeof value === 'object') {
    try {
      return `a non-Error value was thrown: ${JSON.stringify(value)}`;
    } catch {
      // Cyclic or otherwise unserializable: fall through to its string form.
    }
  }
  return String(value);
}

/**
 * The message of any caught value, for wrapping it in one of the classes above.
 *
 * @param {unknown} error
 * @returns {string}
 */
export function messageOf(error) {
  if (error instanceof Error) {
    return error.message;
  }
  return typeof error === 'string' ? error : describeValue(error);
}
