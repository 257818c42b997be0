// The pure parts of `plinth-js build`: reading the environment, the generated entry module and
// the capability check.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { BuildError, SDK_DIR, checkCapabilities, entrySource, settingsFromEnv } from '../../lib/build.js';

const env = {
  PLINTH_WIT_DIR: '.plinth/wit',
  PLINTH_WORLD: 'lifecycle-plugin',
  PLINTH_WASM_OUT: '/out/plugin.wasm',
  PLINTH_CAPABILITIES: 'kv, http',
};

test('settingsFromEnv reads the four variables', () => {
  const settings = settingsFromEnv('src/plugin.ts', env, '/p');
  assert.equal(settings.witDir, path.resolve('/p/.plinth/wit'));
  assert.equal(settings.world, 'lifecycle-plugin');
  assert.equal(settings.wasmOut, '/out/plugin.wasm');
  assert.deepEqual([...settings.capabilities].sort(), ['http', 'kv', 'log']);
});

test('settingsFromEnv names what is missing or wrong', () => {
  assert.throws(
    () => settingsFromEnv('e.js', { ...env, PLINTH_WORLD: '', PLINTH_WASM_OUT: undefined }, '/p'),
    (error) => error instanceof BuildError && error.message.startsWith('PLINTH_WORLD, PLINTH_WASM_OUT are not set.'),
  );
  assert.throws(() => settingsFromEnv('e.js', { ...env, PLINTH_WORLD: 'server' }, '/p'), /expected one of plugin, lifecycle-plugin, http-plugin/);
});

test('entrySource exports exactly the interfaces of the world', () => {
  const plain = entrySource('/p/src/plugin.ts', 'src/plugin.ts', 'plugin');
  assert.match(plain, /export const handler/);
  assert.doesNotMatch(plain, /lifecycle|incomingHandler|internal-http/);
  const lifecycle = entrySource('/p/src/plugin.ts', 'src/plugin.ts', 'lifecycle-plugin');
  assert.match(lifecycle, /export const lifecycle = plugin.lifecycle;/);
  assert.doesNotMatch(lifecycle, /incomingHandler/);
  const http = entrySource('/p/src/plugin.ts', 'src/plugin.ts', 'http-plugin');
  assert.match(http, /import \{ incomingHandler as serve \} from '@plinth\/sdk\/internal-http';/);
  assert.match(http, /export const incomingHandler = serve\(plugin.hooks.onRequest\);/);
});

test('checkCapabilities refuses what the manifest does not grant, naming the user', () => {
  const settings = settingsFromEnv('e.js', { ...env, PLINTH_CAPABILITIES: 'log,kv' }, '/p');
  checkCapabilities(settings, new Map([['log', ['x']], ['kv', ['src/plugin.ts']], ['types', ['y']]]));
  const sdkKv = path.relative('/p', path.join(SDK_DIR, 'src/events.js'));
  assert.throws(
    () => checkCapabilities(settings, new Map([['events', [sdkKv]], ['outgoing-handler', ['src/a.ts']]])),
    (error) =>
      error instanceof BuildError &&
      error.message ===
        "the plugin uses events (through @plinth/sdk's events module) but plinth.toml does not grant it: add [permissions] events = { emit = [\"<topic>\"] }\n" +
          'the plugin uses http (imported by src/a.ts) but plinth.toml does not grant it: add [permissions] http = { hosts = ["<host>"] }',
  );
});
