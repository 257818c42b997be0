// Lets the unit tests import the SDK's modules in plain Node: the WIT interfaces they import
// (`plinth:plugin/kv@0.1.0`, …) resolve to the in-memory fakes in ./fakes/.
import { register } from 'node:module';

register('./hooks.js', import.meta.url);
