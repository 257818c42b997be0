declare module 'plinth:plugin/config@0.1.0' {
  /**
   * Returns the value of `key`, or `none` if the tenant left an optional key unset and the
   * manifest gives no default.
   */
  export function get(key: string): string | undefined;
  /**
   * Why a config call failed.
   */
  export type ConfigError = ConfigErrorUndeclared;
  /**
   * The key is not declared in the plugin's manifest.
   */
  export interface ConfigErrorUndeclared {
    tag: 'undeclared',
    val: string,
  }
}
