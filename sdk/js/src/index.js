// @ts-check
/**
 * `@plinth/sdk`: write Plinth plugins in JavaScript or TypeScript.
 *
 * A plugin module default-exports `definePlugin({ onEvent, … })`; `plinth-js build` bundles it
 * with this SDK and compiles it into a WebAssembly component for the world its manifest
 * allows. Each capability module (`kv`, `config`, `events`, `http`) imports its WIT interface
 * only when the plugin uses it, so the component imports nothing it does not call.
 */

export { definePlugin } from './plugin.js';
export { Event } from './event.js';
export {
  PluginError,
  InvalidPayload,
  InvalidConfig,
  CapabilityError,
  PluginFailure,
} from './errors.js';
export { json } from './encoding.js';
export { IncomingRequest, MAX_REQUEST_BODY_BYTES } from './http/server.js';

export * as log from './log.js';
export * as kv from './kv.js';
export * as config from './config.js';
export * as events from './events.js';
export * as http from './http/client.js';
