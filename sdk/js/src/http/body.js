// @ts-check
/**
 * Moving whole bodies over `wasi:http` streams, for the outbound client and the incoming
 * handler. Imported only by those two, so only plugins that use HTTP import `wasi:http/types`.
 */

import { IncomingBody, OutgoingBody } from 'wasi:http/types@0.2.12';

import { witErrorOf } from '../capability.js';
import { messageOf } from '../errors.js';

/** How many bytes one `blocking-read` asks for. */
const READ_CHUNK = 64n * 1024n;
/** The most bytes `blocking-write-and-flush` accepts in one call. */
const WRITE_CHUNK = 4096;

/**
 * The method that drops a resource handle: `Symbol.dispose`, or where the engine lacks it the
 * symbol componentize-js's bindings fall back to.
 */
const DISPOSE = Symbol.dispose ?? Symbol.for('dispose');

/**
 * Drops a resource handle now (a child stream must be dropped before its body is finished).
 *
 * @param {object} resource
 */
export function drop(resource) {
  /** @type {Record<symbol, () => void>} */ (/** @type {unknown} */ (resource))[DISPOSE]();
}

/** Thrown by `readAll` when a body is over its limit (carried, in bytes). */
export class BodyTooLarge extends Error {
  /** @param {number} limit */
  constructor(limit) {
    super(`the body is over the ${limit}-byte limit`);
    this.limit = limit;
  }
}

/**
 * Reads a whole incoming body (at most `limit` bytes) and finishes it.
 *
 * @param {import('wasi:http/types@0.2.12').IncomingBody} body
 * @param {number} limit
 * @returns {Uint8Array}
 * @throws {BodyTooLarge} past `limit`; the stream's error when reading fails.
 */
export function readAll(body, limit) {
  const stream = body.stream();
  /** @type {Uint8Array[]} */
  const chunks = [];
  let total = 0;
  try {
    for (;;) {
      let chunk;
      try {
        chunk = stream.blockingRead(READ_CHUNK);
      } catch (error) {
        if (witErrorOf(error)?.tag === 'closed') {
          break;
        }
        throw error;
      }
      total += chunk.byteLength;
      if (total > limit) {
        throw new BodyTooLarge(limit);
      }
      chunks.push(chunk);
    }
  } finally {
    drop(stream);
  }
  drop(IncomingBody.finish(body));
  const whole = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    whole.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return whole;
}

/**
 * Writes `bytes` to an outgoing body and finishes it.
 *
 * @param {import('wasi:http/types@0.2.12').OutgoingBody} body
 * @param {Uint8Array} bytes
 * @throws the stream's error when writing or finishing fails (the body is finished or
 *   dropped either way).
 */
export function writeAll(body, bytes) {
  const stream = body.write();
  try {
    for (let offset = 0; offset < bytes.byteLength; offset += WRITE_CHUNK) {
      stream.blockingWriteAndFlush(bytes.subarray(offset, offset + WRITE_CHUNK));
    }
  } finally {
    drop(stream);
  }
  OutgoingBody.finish(body, undefined);
}

/**
 * The text of a `wasi:http` or `wasi:io` error: a variant such as
 * `{ tag: 'DNS-error', val: { rcode: 'NXDOMAIN' } }`, or an engine error.
 *
 * @param {unknown} error
 * @returns {string}
 */
export function describeWasiError(error) {
  const variant = witErrorOf(error);
  if (!variant) {
    return messageOf(error);
  }
  if (variant.tag === 'HTTP-request-denied') {
    return 'the host refused the request (HTTP-request-denied: is the host on permissions.http.hosts?)';
  }
  if (variant.val === undefined || typeof variant.val === 'object' && variant.val !== null && Object.keys(variant.val).length === 0) {
    return variant.tag;
  }
  let detail;
  try {
    detail = typeof variant.val === 'string' ? variant.val : JSON.stringify(variant.val, (_, value) => (typeof value === 'bigint' ? Number(value) : value));
  } catch {
    detail = String(variant.val);
  }
  return `${variant.tag}: ${detail}`;
}
