import { host } from './host.js';

export function get(key) {
  host.check();
  return host.kv.get(key);
}
export function set(key, value) {
  host.check();
  host.kv.set(key, value);
}
function remove(key) {
  host.check();
  return host.kv.delete(key);
}
export { remove as delete };
export function listKeys(prefix, cursor, limit) {
  host.check();
  const keys = [...host.kv.keys()].filter((key) => key.startsWith(prefix) && (cursor === undefined || key > cursor)).sort();
  const page = keys.slice(0, limit);
  return { keys: page, nextCursor: keys.length > limit ? page.at(-1) : undefined };
}
