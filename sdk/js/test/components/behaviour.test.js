// Builds the behaviour fixture with the real toolchain and checks, through a transpiled
// component, that every thrown value becomes the right plugin-error and every return value the
// right output. Slow (one componentize-js build): `npm run test:components`.

import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { FakeHost, buildPlugin, componentImports, event, loadComponent, outcome } from './harness.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/behaviour');

describe('a built component', () => {
  let instantiate;
  let imports;
  before(async () => {
    const { wasm } = await buildPlugin({
      pluginDir: FIXTURE,
      entry: 'src/plugin.ts',
      world: 'lifecycle-plugin',
      capabilities: ['kv', 'config', 'events'],
    });
    imports = await componentImports(wasm);
    instantiate = await loadComponent(wasm);
  });

  /** Runs one `case` event in a fresh instance. */
  async function call(payload, { host = new FakeHost({ config: { unset: null }, emitTopics: ['noted'], kvQuotaBytes: 64 }), topic = 'case' } = {}) {
    const instance = await instantiate(host);
    return outcome(() => instance.handler.onEvent(event(topic, payload)));
  }

  test('imports the granted capabilities it uses and no outbound HTTP', () => {
    for (const name of ['log', 'kv', 'config', 'events']) {
      assert.ok(imports.includes(`plinth:plugin/${name}@0.1.0`), `${name} in ${imports}`);
    }
    assert.ok(!imports.some((name) => name.startsWith('wasi:http/outgoing-handler')), imports.join(', '));
  });

  test('encodes return values', async () => {
    assert.deepEqual(await call('nothing'), { ok: undefined });
    assert.deepEqual(await call('text'), { ok: 'plain text' });
    assert.deepEqual(await call('json-string'), { ok: '"quoted"' });
    assert.deepEqual(await call('object'), { ok: '{"n":1,"tenant":"acme","depth":0}' });
    assert.deepEqual(await call('null'), { ok: 'null' });
    const bytes = await instantiate(new FakeHost()).then((instance) => instance.handler.onEvent(event('case', 'bytes')));
    assert.deepEqual([...bytes], [1, 2, 3]);
  });

  test('maps the SDK error classes to their variants', async () => {
    assert.deepEqual(await call('invalid-payload'), { err: { tag: 'invalid-payload', val: 'bad payload' } });
    assert.deepEqual(await call('invalid-config'), { err: { tag: 'invalid-config', val: 'bad config' } });
    assert.deepEqual(await call('capability'), { err: { tag: 'capability', val: 'bad capability' } });
    assert.deepEqual(await call('failure'), { err: { tag: 'failed', val: 'it failed' } });
    assert.deepEqual(await call('async-reject'), { err: { tag: 'invalid-payload', val: 'rejected later' } });
  });

  test('maps anything else thrown to failed with its message and stack', async () => {
    const plain = await call('plain-error');
    assert.equal(plain.err.tag, 'failed');
    assert.match(plain.err.val, /^plain error\n.*onEvent@/s);
    const typeError = await call('type-error');
    assert.equal(typeError.err.tag, 'failed');
    assert.match(typeError.err.val, /^TypeError: /);
    assert.deepEqual(await call('string'), { err: { tag: 'failed', val: 'a thrown string' } });
    const bigint = await call('bigint');
    assert.equal(bigint.err.tag, 'failed');
    assert.match(bigint.err.val, /cannot serialize the value as JSON/);
  });

  test('event.json refuses bad JSON and bad shapes as invalid-payload', async () => {
    assert.deepEqual(await call('{"case":"x"}', { topic: 'json' }), { ok: '{"case":"x"}' });
    const syntax = await call('{"case":', { topic: 'json' });
    assert.equal(syntax.err.tag, 'invalid-payload');
    assert.match(syntax.err.val, /^the payload of `json` is not the expected JSON: /);
    assert.deepEqual(await call('[1]', { topic: 'json' }), {
      err: { tag: 'invalid-payload', val: 'the payload of `json` is not the expected JSON: an array was refused' },
    });
    const utf8 = await call(new Uint8Array([0xff, 0xfe]), { topic: 'json' });
    assert.equal(utf8.err.tag, 'invalid-payload');
    assert.match(utf8.err.val, /not UTF-8 text/);
  });

  test('kv helpers round-trip and name the call in capability errors', async () => {
    const host = new FakeHost({ kvQuotaBytes: 1024 });
    const result = await call('kv-roundtrip', { host });
    assert.deepEqual(JSON.parse(result.ok), { state: { seen: 3 }, raw: 'text', keys: ['raw', 'state'], deleted: true, gone: null });
    assert.equal(new TextDecoder().decode(host.kv.get('state')), '{"seen":3}');
    assert.deepEqual(await call('kv-bad-key'), {
      err: { tag: 'capability', val: 'kv.set("") failed: invalid kv key: the key is empty' },
    });
    assert.deepEqual(await call('kv-quota'), {
      err: { tag: 'capability', val: 'kv.set("big") failed: kv quota exceeded: install bytes: the limit is 64' },
    });
  });

  test('config and events errors', async () => {
    assert.deepEqual(await call('config-missing'), {
      err: { tag: 'invalid-config', val: 'config key "unset" is required but not set' },
    });
    assert.deepEqual(await call('config-undeclared'), {
      err: { tag: 'capability', val: 'config.get("nope") failed: config key "nope" is not declared in the manifest' },
    });
    const host = new FakeHost({ emitTopics: ['noted'] });
    assert.deepEqual(await call('emit', { host }), {
      err: { tag: 'capability', val: 'events.emit("undeclared") failed: the manifest does not declare the topic "undeclared"' },
    });
    assert.deepEqual(host.emitted, [{ topic: 'noted', payload: '{"from":"01900000-0000-7000-8000-000000000000"}' }]);
  });

  test('lifecycle hooks default to success and map errors', async () => {
    const instance = await instantiate(new FakeHost());
    assert.deepEqual(await outcome(() => instance.lifecycle.onInstall()), { ok: undefined });
    assert.deepEqual(await outcome(() => instance.lifecycle.onUninstall()), { ok: undefined });
    assert.deepEqual(await outcome(() => instance.lifecycle.onUpgrade('0.1.0')), { ok: undefined });
    const refused = await instantiate(new FakeHost());
    assert.deepEqual(await outcome(() => refused.lifecycle.onUpgrade('9.9.9')), {
      err: { tag: 'invalid-config', val: 'cannot upgrade from 9.9.9' },
    });
  });
});
