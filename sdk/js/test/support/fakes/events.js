import { host } from './host.js';

export function emit(topic, payload) {
  host.check();
  host.emitted.push({ topic, payload });
}
