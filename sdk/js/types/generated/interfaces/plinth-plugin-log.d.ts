declare module 'plinth:plugin/log@0.1.0' {
  /**
   * Writes one log line with optional structured `fields` (key, value pairs).
   * Never fails; see the interface notes for the caps.
   */
  export function write(level: Level, message: string, fields: Array<[string, string]>): void;
  /**
   * The severity of a log line.
   * # Variants
   * 
   * ## `"trace"`
   * 
   * Very detailed tracing, usually disabled.
   * ## `"debug"`
   * 
   * Information useful when debugging a plugin.
   * ## `"info"`
   * 
   * Normal operational messages.
   * ## `"warn"`
   * 
   * Something unexpected that the plugin recovered from.
   * ## `"error"`
   * 
   * A failure the tenant or developer should look at.
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
