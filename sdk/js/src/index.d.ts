// The public API of @plinth/sdk. The implementation is the JavaScript next to this file; the
// raw WIT types come from types/generated (`npm run bindings`); only the plugin types are
// referenced here, so an author's tsconfig needs no particular `lib`.

/// <reference path="../types/generated/interfaces/plinth-plugin-types.d.ts" />

// ---------------------------------------------------------------------------------------------
// Plugins

/** One event delivered to `onEvent`. */
export declare class Event {
  constructor(raw: import('plinth:plugin/types@0.1.0').Event);
  /** Unique id of this delivery (a UUIDv7 string); never delivered twice to one install. */
  readonly id: string;
  /** The topic the event was published on; always one the manifest subscribes to. */
  readonly topic: string;
  /** The id of the tenant the plugin runs for (stable, unlike its slug). */
  readonly tenant: string;
  /** How many `events.emit` hops led to this event: `0` for an event from outside. */
  readonly depth: number;
  /** The raw payload; by convention UTF-8 JSON. */
  readonly payload: Uint8Array;
  /** The payload as UTF-8 text; `InvalidPayload` when it is not UTF-8. */
  text(): string;
  /**
   * The payload decoded as JSON; `InvalidPayload` naming the topic and the problem when it is
   * not JSON. With a type guard, the result is typed and a value the guard refuses (or throws
   * on) fails as `InvalidPayload` too.
   */
  json<T>(check: (value: unknown) => value is T): T;
  json<T = any>(check?: (value: unknown) => boolean): T;
}

/**
 * What `onEvent` may return:
 *
 * - `undefined` (or nothing): no output;
 * - a `Uint8Array` (or another typed array, `ArrayBuffer`): the bytes as they are;
 * - a `string`: its UTF-8 bytes as they are (use `json("text")` to send a JSON string);
 * - anything else: `JSON.stringify(value)`.
 */
export type EventOutput = unknown;

/** The hooks of a plugin. Every hook may be `async`. */
export interface PluginHooks {
  /** Handles one event on a topic the manifest subscribes to. */
  onEvent(event: Event): EventOutput | Promise<EventOutput>;
  /** Called once when a tenant installs the plugin; throwing aborts the install. */
  onInstall?(): void | Promise<void>;
  /** Called when an install moves to this version from `fromVersion` (also on a rollback). */
  onUpgrade?(fromVersion: string): void | Promise<void>;
  /** Called once before the install is removed; its kv data is deleted afterwards. */
  onUninstall?(): void | Promise<void>;
  /**
   * Serves HTTP under `/p/{tenant}/{plugin}/…` (the prefix removed). Only for plugins whose
   * `[build] world = "http-plugin"`. An `InvalidPayload` thrown here answers `400` with its
   * message; anything else thrown answers `500`.
   */
  onRequest?(request: IncomingRequest): ResponseInit | undefined | Promise<ResponseInit | undefined>;
}

/** What `definePlugin` returns: the plugin module's default export. */
export interface Plugin {
  /** The hooks given to `definePlugin`. */
  readonly hooks: Readonly<PluginHooks>;
  /** The `plinth:plugin/handler` export. */
  readonly handler: {
    onEvent(event: import('plinth:plugin/types@0.1.0').Event): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  };
  /** The `plinth:plugin/lifecycle` export. */
  readonly lifecycle: {
    onInstall(): void | Promise<void>;
    onUpgrade(fromVersion: string): void | Promise<void>;
    onUninstall(): void | Promise<void>;
  };
}

/**
 * Defines a plugin. Default-export the result from the entry module:
 *
 * ```ts
 * export default definePlugin({
 *   onEvent(event) {
 *     return json(`Hello, ${event.json<string>()}!`);
 *   },
 * });
 * ```
 *
 * Whatever a hook throws becomes the call's `plugin-error`: the four error classes map to
 * their variant, anything else to `failed` with its message (and stack).
 */
export declare function definePlugin(hooks: PluginHooks): Plugin;

/** `value` as JSON bytes: to return (or store) a JSON string rather than raw text. */
export declare function json(value: unknown): Uint8Array;

// ---------------------------------------------------------------------------------------------
// Errors

/** Base class of the four error kinds; throw one of the subclasses. */
export declare class PluginError extends Error {
  /** The WIT `plugin-error` case this error becomes. */
  readonly tag: 'invalid-payload' | 'invalid-config' | 'capability' | 'failed';
  constructor(message: string, options?: { cause?: unknown });
}
/** The event payload (or request) was not what the plugin expects → `invalid-payload`. */
export declare class InvalidPayload extends PluginError {
  readonly tag: 'invalid-payload';
}
/** The tenant's configuration is missing a value or has a bad one → `invalid-config`. */
export declare class InvalidConfig extends PluginError {
  readonly tag: 'invalid-config';
}
/** A capability call (kv, config, events, outbound HTTP) failed → `capability`. */
export declare class CapabilityError extends PluginError {
  readonly tag: 'capability';
}
/** Any other failure, described for the tenant who will read it → `failed`. */
export declare class PluginFailure extends PluginError {
  readonly tag: 'failed';
}

// ---------------------------------------------------------------------------------------------
// Capabilities

/** Structured log fields: an object or a list of `[key, value]` pairs (values become text). */
export type LogFields = Record<string, unknown> | ReadonlyArray<readonly [string, unknown]>;

/** Leveled, structured log lines. Always granted. */
export declare namespace log {
  type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
  function write(level: Level, message: string, fields?: LogFields): void;
  function trace(message: string, fields?: LogFields): void;
  function debug(message: string, fields?: LogFields): void;
  function info(message: string, fields?: LogFields): void;
  function warn(message: string, fields?: LogFields): void;
  function error(message: string, fields?: LogFields): void;
}

/**
 * A private key-value store of bytes. Requires `[permissions] kv`. Failures throw
 * `CapabilityError` naming the call.
 */
export declare namespace kv {
  /** The value under `key`, or `undefined`. */
  export function get(key: string): Uint8Array | undefined;
  /** The value under `key` as UTF-8 text, or `undefined`; `PluginFailure` if not UTF-8. */
  export function getText(key: string): string | undefined;
  /** The value under `key` decoded as JSON, or `undefined`; `PluginFailure` if not JSON. */
  export function getJson<T = any>(key: string): T | undefined;
  /** Stores bytes as they are, a string as UTF-8, anything else as JSON. */
  export function set(key: string, value: unknown): void;
  /** Stores `value` as JSON (a string becomes a JSON string). */
  export function setJson(key: string, value: unknown): void;
  /** Deletes `key`; returns whether a value was there. */
  function _delete(key: string): boolean;
  export { _delete as delete };
  /** One page of keys starting with `prefix`; pass `nextCursor` back to continue. */
  export function listKeys(prefix: string, options?: { cursor?: string; limit?: number }): { keys: string[]; nextCursor?: string };
  /** Every key starting with `prefix`, fetched page by page. */
  export function keys(prefix?: string): Generator<string, void, undefined>;
}

/** The tenant's configuration values. Requires `[permissions] config = true`. */
export declare namespace config {
  /** The value of `key`, or `undefined` when unset; `CapabilityError` when undeclared. */
  function get(key: string): string | undefined;
  /** The value of `key`; `InvalidConfig` when unset. */
  function getRequired(key: string): string;
  /** The value of an `integer` key; `InvalidConfig` when it is not one. */
  function getInteger(key: string): number | undefined;
  /** The value of a `boolean` key; `InvalidConfig` when it is neither `true` nor `false`. */
  function getBoolean(key: string): boolean | undefined;
}

/** Emitting platform events. Requires `[permissions] events = { emit = [...] }`. */
export declare namespace events {
  /** Emits bytes as they are, a string as UTF-8, anything else as JSON. */
  function emit(topic: string, payload: unknown): void;
  /** Emits `value` as JSON (a string becomes a JSON string). */
  function emitJson(topic: string, value: unknown): void;
}

// ---------------------------------------------------------------------------------------------
// HTTP

/** Headers as an object, a list of `[name, value]` pairs, or a `Headers`. */
export type HeadersInit =
  | Record<string, string | number>
  | ReadonlyArray<readonly [string, string]>
  | Iterable<readonly [string, string]>;

/** Options of `http.request`. */
export interface RequestInit {
  /** `GET` by default. */
  method?: string;
  headers?: HeadersInit;
  /** Bytes as they are, a string as UTF-8, anything else as JSON. */
  body?: unknown;
  /** A value sent as JSON, with `content-type: application/json` unless given. */
  json?: unknown;
  /** Bounds connecting, the first byte and the time between bytes, in milliseconds. */
  timeoutMs?: number;
  /** The largest response body read (16 MiB by default). */
  maxResponseBytes?: number;
}

/** Header pairs, a whole body, and ways to read it. */
declare class Message {
  /** Header `[name, value]` pairs in order; a name may repeat. */
  readonly headers: Array<[string, string]>;
  /** The whole body. */
  readonly body: Uint8Array;
  /** The first header named `name`, case-insensitively. */
  header(name: string): string | undefined;
  /** The body as UTF-8 text. */
  text(): string;
  /** The body decoded as JSON. */
  json<T = any>(): T;
}

/** A response received by `http.request`. Decoding failures throw `CapabilityError`. */
export declare class HttpResponse extends Message {
  /** The status code. */
  readonly status: number;
  /** Whether the status is 2xx. */
  readonly ok: boolean;
}

/**
 * Outbound HTTP over `wasi:http/outgoing-handler`. Requires
 * `[permissions] http = { hosts = [...] }` (using it without fails the build). Calls block
 * until the whole response has arrived (`await` on them is harmless); failures throw
 * `CapabilityError` naming the method and host.
 */
export declare namespace http {
  export const DEFAULT_MAX_RESPONSE_BYTES: number;
  /** Sends a request and reads the whole response; a non-2xx status is not an error. */
  export function request(url: string, init?: RequestInit): HttpResponse;
  export function get(url: string, init?: Omit<RequestInit, 'method' | 'body' | 'json'>): HttpResponse;
  export function postJson(url: string, value: unknown, init?: Omit<RequestInit, 'method' | 'body' | 'json'>): HttpResponse;
  export { HttpResponse };
}

/** An HTTP request received by `onRequest`. Decoding failures throw `InvalidPayload` (→ 400). */
export declare class IncomingRequest extends Message {
  constructor(method: string, pathWithQuery: string, headers: Array<[string, string]>, body: Uint8Array);
  /** The method in upper case, e.g. `GET`. */
  readonly method: string;
  /** The path and query below the plugin's prefix, e.g. `/items?page=2`. */
  readonly pathWithQuery: string;
  /** The path without the query. */
  readonly path: string;
  /** The query without the `?`, or `undefined`. */
  readonly query: string | undefined;
}

/** The largest request body read before `onRequest` (10 MiB); larger ones get `413`. */
export declare const MAX_REQUEST_BODY_BYTES: number;

/**
 * What `onRequest` returns (`undefined` answers `204`). The body is bytes as they are, a
 * string as UTF-8 text (`text/plain` unless a content-type is given), anything else as JSON
 * (`application/json`); or give `json` to send a value as JSON.
 */
export interface ResponseInit {
  /** `200` by default. */
  status?: number;
  headers?: HeadersInit;
  body?: unknown;
  json?: unknown;
}
