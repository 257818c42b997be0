/// <reference path="./interfaces/plinth-plugin-config.d.ts" />
/// <reference path="./interfaces/plinth-plugin-events.d.ts" />
/// <reference path="./interfaces/plinth-plugin-handler.d.ts" />
/// <reference path="./interfaces/plinth-plugin-kv.d.ts" />
/// <reference path="./interfaces/plinth-plugin-lifecycle.d.ts" />
/// <reference path="./interfaces/plinth-plugin-log.d.ts" />
/// <reference path="./interfaces/plinth-plugin-types.d.ts" />
/// <reference path="./interfaces/wasi-clocks-monotonic-clock.d.ts" />
/// <reference path="./interfaces/wasi-http-incoming-handler.d.ts" />
/// <reference path="./interfaces/wasi-http-outgoing-handler.d.ts" />
/// <reference path="./interfaces/wasi-http-types.d.ts" />
/// <reference path="./interfaces/wasi-io-error.d.ts" />
/// <reference path="./interfaces/wasi-io-poll.d.ts" />
/// <reference path="./interfaces/wasi-io-streams.d.ts" />
declare module 'plinth:plugin/http-plugin@0.1.0' {
  export type * as PlinthPluginConfig010 from 'plinth:plugin/config@0.1.0'; // import plinth:plugin/config@0.1.0
  export type * as PlinthPluginEvents010 from 'plinth:plugin/events@0.1.0'; // import plinth:plugin/events@0.1.0
  export type * as PlinthPluginKv010 from 'plinth:plugin/kv@0.1.0'; // import plinth:plugin/kv@0.1.0
  export type * as PlinthPluginLog010 from 'plinth:plugin/log@0.1.0'; // import plinth:plugin/log@0.1.0
  export type * as PlinthPluginTypes010 from 'plinth:plugin/types@0.1.0'; // import plinth:plugin/types@0.1.0
  export type * as WasiClocksMonotonicClock0212 from 'wasi:clocks/monotonic-clock@0.2.12'; // import wasi:clocks/monotonic-clock@0.2.12
  export type * as WasiHttpOutgoingHandler0212 from 'wasi:http/outgoing-handler@0.2.12'; // import wasi:http/outgoing-handler@0.2.12
  export type * as WasiHttpTypes0212 from 'wasi:http/types@0.2.12'; // import wasi:http/types@0.2.12
  export type * as WasiIoError0212 from 'wasi:io/error@0.2.12'; // import wasi:io/error@0.2.12
  export type * as WasiIoPoll0212 from 'wasi:io/poll@0.2.12'; // import wasi:io/poll@0.2.12
  export type * as WasiIoStreams0212 from 'wasi:io/streams@0.2.12'; // import wasi:io/streams@0.2.12
  export * as incomingHandler from 'wasi:http/incoming-handler@0.2.12'; // export wasi:http/incoming-handler@0.2.12
  export * as lifecycle from 'plinth:plugin/lifecycle@0.1.0'; // export plinth:plugin/lifecycle@0.1.0
  export * as handler from 'plinth:plugin/handler@0.1.0'; // export plinth:plugin/handler@0.1.0
}
