/// <reference path="./plinth-plugin-types.d.ts" />
declare module 'plinth:plugin/lifecycle@0.1.0' {
  /**
   * Called once when a tenant installs the plugin, after its configuration is set.
   */
  export function onInstall(): void;
  /**
   * Called once when a tenant's install moves to this version from `from-version`
   * (a semver string); also called on a rollback, with the newer version as `from-version`.
   */
  export function onUpgrade(fromVersion: string): void;
  /**
   * Called once before the tenant's install is removed; its kv data is deleted afterwards.
   */
  export function onUninstall(): void;
  export type PluginError = import('plinth:plugin/types@0.1.0').PluginError;
}
