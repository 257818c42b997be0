// @ts-check
/**
 * Used by the entry module `plinth-js build` generates for the `http-plugin` world only; not
 * public API. Kept apart from `internal.js` so that no other world imports `wasi:http/types`.
 */

export { incomingHandler } from './http/incoming.js';
