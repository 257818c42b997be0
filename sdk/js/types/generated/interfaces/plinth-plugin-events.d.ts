declare module 'plinth:plugin/events@0.1.0' {
  /**
   * Emits an event on `topic` with `payload` (by convention UTF-8 JSON).
   */
  export function emit(topic: string, payload: Uint8Array): void;
  /**
   * Why an emit was refused. Nothing was emitted.
   */
  export type EmitError = EmitErrorUndeclaredTopic | EmitErrorDepthExceeded | EmitErrorPayloadTooLarge | EmitErrorRateLimited;
  /**
   * The topic is not listed under `permissions.events.emit` in the manifest.
   */
  export interface EmitErrorUndeclaredTopic {
    tag: 'undeclared-topic',
    val: string,
  }
  /**
   * The event would pass the host's emit depth limit (carried), which stops events
   * from ping-ponging between plugins forever.
   */
  export interface EmitErrorDepthExceeded {
    tag: 'depth-exceeded',
    val: number,
  }
  /**
   * The payload is larger than the limit (in bytes, carried).
   */
  export interface EmitErrorPayloadTooLarge {
    tag: 'payload-too-large',
    val: bigint,
  }
  /**
   * The plugin emitted more events in this call than the host allows.
   */
  export interface EmitErrorRateLimited {
    tag: 'rate-limited',
  }
}
