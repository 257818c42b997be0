// @ts-check
/**
 * Used by the entry module `plinth-js build` generates; not public API.
 *
 * `pluginFor` checks that the plugin's entry module default-exports a `definePlugin` result
 * and that its hooks fit the world it is built for. It runs while componentize-js
 * pre-initializes the component, so a mistake fails the build, not the first event.
 */

import { isPlugin } from './plugin.js';

/**
 * @param {Record<string, unknown>} entryModule the plugin's entry module namespace
 * @param {string} world the world the component is built for
 * @param {string} entryName the entry's path, for messages
 * @returns {import('./index.js').Plugin}
 */
export function pluginFor(entryModule, world, entryName) {
  const plugin = entryModule.default;
  if (!isPlugin(plugin)) {
    throw new Error(
      `${entryName} must default-export the result of definePlugin(): ` +
        `export default definePlugin({ onEvent(event) { … } })`,
    );
  }
  const serves = typeof plugin.hooks.onRequest === 'function';
  if (world === 'http-plugin' && !serves) {
    throw new Error(
      `${entryName}: [build] world = "http-plugin" serves HTTP, so definePlugin needs onRequest(request)`,
    );
  }
  if (world !== 'http-plugin' && serves) {
    throw new Error(
      `${entryName} defines onRequest, but the component is built for the "${world}" world: ` +
        `set world = "http-plugin" under [build] in plinth.toml`,
    );
  }
  return plugin;
}
