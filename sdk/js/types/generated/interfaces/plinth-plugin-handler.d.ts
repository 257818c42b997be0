/// <reference path="./plinth-plugin-types.d.ts" />
declare module 'plinth:plugin/handler@0.1.0' {
  /**
   * Handles one event on a topic the plugin subscribes to. Returns the plugin's output
   * (by convention UTF-8 JSON, `none` for no output) or why it failed. The host bounds the
   * call's CPU time, memory and output size; past them the call ends with a host error.
   */
  export function onEvent(event: Event): Uint8Array | undefined;
  export type Event = import('plinth:plugin/types@0.1.0').Event;
  export type PluginError = import('plinth:plugin/types@0.1.0').PluginError;
}
