// @ts-check
/**
 * `definePlugin`: turns a plugin's hooks into the objects componentize-js exports as the WIT
 * interfaces `plinth:plugin/handler` and `plinth:plugin/lifecycle`.
 *
 * Every hook may be synchronous or `async` (componentize-js runs the event loop until a
 * returned promise settles). Whatever a hook throws, or a promise it returns rejects with,
 * becomes the WIT `plugin-error` through `toWitError`: componentize-js turns a thrown
 * `{ tag, val }` object into the `err` case of the export's `result`. (A thrown value of any
 * other shape makes it trap with "invalid variant tag value", which is why nothing else may
 * escape.)
 */

import { encodeOutput } from './encoding.js';
import { toWitError } from './errors.js';
import { Event } from './event.js';

/** Marks the objects `definePlugin` returns, so the build can tell them from anything else. */
export const PLUGIN = Symbol.for('plinth.plugin');

/**
 * @typedef {import('./index.js').PluginHooks} PluginHooks
 * @typedef {import('./index.js').Plugin} Plugin
 */

/**
 * Defines a plugin from its hooks. Only `onEvent` is required: missing lifecycle hooks succeed
 * without doing anything, and `onRequest` is needed only by plugins built for the
 * `http-plugin` world.
 *
 * The entry module exports the result as its default export; `plinth-js build` exports the
 * parts the target world needs.
 *
 * @param {PluginHooks} hooks
 * @returns {Plugin}
 */
export function definePlugin(hooks) {
  if (!hooks || typeof hooks !== 'object') {
    throw new TypeError('definePlugin expects an object of hooks, e.g. { onEvent(event) { … } }');
  }
  if (typeof hooks.onEvent !== 'function') {
    throw new TypeError('definePlugin: `onEvent` is required and must be a function');
  }
  for (const name of /** @type {const} */ (['onInstall', 'onUpgrade', 'onUninstall', 'onRequest'])) {
    if (hooks[name] !== undefined && typeof hooks[name] !== 'function') {
      throw new TypeError(`definePlugin: \`${name}\` must be a function when given`);
    }
  }
  const { onEvent, onInstall, onUpgrade, onUninstall } = hooks;

  const handler = {
    /** @param {import('plinth:plugin/types@0.1.0').Event} event */
    onEvent(event) {
      return settle(() => onEvent(new Event(event)), encodeOutput);
    },
  };

  const lifecycle = {
    onInstall() {
      return settle(() => onInstall?.(), nothing);
    },
    /** @param {string} fromVersion */
    onUpgrade(fromVersion) {
      return settle(() => onUpgrade?.(fromVersion), nothing);
    },
    onUninstall() {
      return settle(() => onUninstall?.(), nothing);
    },
  };

  return Object.freeze({ [PLUGIN]: true, hooks: Object.freeze({ ...hooks }), handler, lifecycle });
}

/**
 * Whether `value` was made by `definePlugin`.
 *
 * @param {unknown} value
 * @returns {value is Plugin}
 */
export function isPlugin(value) {
  return typeof value === 'object' && value !== null && PLUGIN in value;
}

/**
 * Runs `hook` and maps its result with `map`, synchronously when the hook is synchronous and
 * as a promise when it returns one. Anything thrown or rejected (by the hook or by `map`) is
 * rethrown as the WIT `plugin-error`.
 *
 * @template R
 * @param {() => unknown} hook
 * @param {(value: any) => R} map
 * @returns {R | Promise<R>}
 */
export function settle(hook, map) {
  let result;
  try {
    result = hook();
  } catch (error) {
    throw toWitError(error);
  }
  if (isThenable(result)) {
    return Promise.resolve(result).then(
      (value) => {
        try {
          return map(value);
        } catch (error) {
          throw toWitError(error);
        }
      },
      (error) => {
        throw toWitError(error);
      },
    );
  }
  try {
    return map(result);
  } catch (error) {
    throw toWitError(error);
  }
}

/** Lifecycle hooks return nothing to the host: whatever the hook returned is dropped. */
function nothing() {
  return undefined;
}

/**
 * @param {unknown} value
 * @returns {value is PromiseLike<unknown>}
 */
function isThenable(value) {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (/** @type {{ then?: unknown }} */ (value).then) === 'function'
  );
}
