declare module 'plinth:plugin/types@0.1.0' {
  /**
   * One event delivered to a plugin's `handler.on-event`.
   */
  export interface Event {
    /**
     * Unique id of this delivery (a UUIDv7 string). The same id is never delivered twice
     * to the same install, so a plugin may use it to make its side effects idempotent.
     */
    id: string,
    /**
     * The topic the event was published on, e.g. `order.created`. It is always one of
     * the topics listed under `permissions.events.subscribe` in the manifest.
     */
    topic: string,
    /**
     * The event's payload. By convention it is UTF-8 JSON; the SDK decodes it for you.
     */
    payload: Uint8Array,
    /**
     * The id of the tenant the plugin runs for (stable, unlike its slug).
     */
    tenant: string,
    /**
     * How many `events.emit` hops led to this event: `0` for an event sent to the
     * platform from outside. The host refuses deliveries past its depth limit.
     */
    depth: number,
  }
  /**
   * Why a plugin could not handle a call. The host reports it to the caller as the
   * plugin's error; it is not a fault of the host.
   */
  export type PluginError = PluginErrorInvalidPayload | PluginErrorInvalidConfig | PluginErrorCapability | PluginErrorFailed;
  /**
   * The event payload (or request) was not what the plugin expects. The text says why.
   */
  export interface PluginErrorInvalidPayload {
    tag: 'invalid-payload',
    val: string,
  }
  /**
   * The tenant's configuration for this install is missing a value or has a bad one.
   */
  export interface PluginErrorInvalidConfig {
    tag: 'invalid-config',
    val: string,
  }
  /**
   * A capability call (kv, config, events, outbound HTTP) failed. The text says which
   * and why.
   */
  export interface PluginErrorCapability {
    tag: 'capability',
    val: string,
  }
  /**
   * Any other failure, described for the tenant who will read it.
   */
  export interface PluginErrorFailed {
    tag: 'failed',
    val: string,
  }
}
