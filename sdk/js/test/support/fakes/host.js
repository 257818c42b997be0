// The state behind the fake capability imports; tests reset and inspect it. Failures are thrown
// the way componentize-js reports an import's `err`: an object whose `payload` is the variant.
export const host = {
  logs: [],
  kv: new Map(),
  config: {},
  emitted: [],
  /** When set, the next capability call throws this WIT error variant. */
  failNext: undefined,
  reset() {
    this.logs = [];
    this.kv = new Map();
    this.config = {};
    this.emitted = [];
    this.failNext = undefined;
  },
  /** Throws the queued failure, if any. */
  check() {
    const failure = this.failNext;
    if (failure !== undefined) {
      this.failNext = undefined;
      throw { payload: failure };
    }
  },
};
