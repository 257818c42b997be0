import { host } from './host.js';

export function get(key) {
  host.check();
  if (!(key in host.config)) {
    throw { payload: { tag: 'undeclared', val: key } };
  }
  return host.config[key] ?? undefined;
}
