import { host } from './host.js';

export function write(level, message, fields) {
  host.logs.push({ level, message, fields });
}
