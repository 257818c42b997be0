declare module 'plinth:plugin/kv@0.1.0' {
  /**
   * Returns the value stored under `key`, or `none` if there is none.
   */
  export function get(key: string): Uint8Array | undefined;
  /**
   * Stores `value` under `key`, replacing any previous value.
   */
  export function set(key: string, value: Uint8Array): void;
  /**
   * Deletes `key`. Returns whether a value was there.
   */
  export { _delete as delete };
  function _delete(key: string): boolean;
  /**
   * Lists keys starting with `prefix`, in ascending order, at most `limit` per page (the host
   * caps `limit` at 1000). Pass the previous page's `next-cursor` to continue.
   */
  export function listKeys(prefix: string, cursor: string | undefined, limit: number): KeyPage;
  /**
   * Why a kv call failed.
   */
  export type KvError = KvErrorQuotaExceeded | KvErrorInvalidKey | KvErrorValueTooLarge | KvErrorUnavailable;
  /**
   * The write would take the install past its byte or key quota; the text names the
   * quota and its limit. Nothing was written.
   */
  export interface KvErrorQuotaExceeded {
    tag: 'quota-exceeded',
    val: string,
  }
  /**
   * The key is empty, longer than 512 bytes, or not valid UTF-8 text.
   */
  export interface KvErrorInvalidKey {
    tag: 'invalid-key',
    val: string,
  }
  /**
   * The value is larger than the largest single value the host accepts (the limit, in
   * bytes, is carried).
   */
  export interface KvErrorValueTooLarge {
    tag: 'value-too-large',
    val: bigint,
  }
  /**
   * The store is unavailable right now; the operation had no effect and may be retried.
   */
  export interface KvErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
  /**
   * One page of keys returned by `list-keys`.
   */
  export interface KeyPage {
    /**
     * Keys in ascending byte order.
     */
    keys: Array<string>,
    /**
     * When more keys match, the cursor to pass to the next `list-keys` call.
     */
    nextCursor?: string,
  }
}
