import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CapabilityError, InvalidPayload, PluginFailure } from '../../src/errors.js';
import { definePlugin, isPlugin } from '../../src/plugin.js';

const raw = (payload) => ({ id: 'id', topic: 't', tenant: 'acme', depth: 0, payload: new TextEncoder().encode(payload) });
const text = (bytes) => new TextDecoder().decode(bytes);

/** What componentize-js would see: the returned value, or the thrown `{ tag, val }`. */
function callSync(fn) {
  try {
    return { ok: fn() };
  } catch (thrown) {
    return { thrown };
  }
}

test('definePlugin validates its hooks', () => {
  assert.throws(() => definePlugin(), /expects an object/);
  assert.throws(() => definePlugin({}), /`onEvent` is required/);
  assert.throws(() => definePlugin({ onEvent() {}, onInstall: 1 }), /`onInstall` must be a function/);
  assert.ok(isPlugin(definePlugin({ onEvent() {} })));
  assert.ok(!isPlugin({ handler: {} }));
});

test('onEvent gets an Event and its return value is encoded', () => {
  let seen;
  const plugin = definePlugin({
    onEvent(event) {
      seen = event;
      return { got: event.json() };
    },
  });
  assert.equal(text(plugin.handler.onEvent(raw('"x"'))), '{"got":"x"}');
  assert.equal(typeof seen.text, 'function');
  assert.equal(definePlugin({ onEvent: () => undefined }).handler.onEvent(raw('1')), undefined);
});

test('a synchronous hook stays synchronous', () => {
  const result = definePlugin({ onEvent: () => 'x' }).handler.onEvent(raw('1'));
  assert.ok(result instanceof Uint8Array);
});

test('thrown errors become the WIT variant, thrown as { tag, val }', () => {
  const cases = [
    [new InvalidPayload('bad'), { tag: 'invalid-payload', val: 'bad' }],
    [new CapabilityError('kv'), { tag: 'capability', val: 'kv' }],
    ['text', { tag: 'failed', val: 'text' }],
  ];
  for (const [error, expected] of cases) {
    const plugin = definePlugin({
      onEvent() {
        throw error;
      },
    });
    assert.deepEqual(callSync(() => plugin.handler.onEvent(raw('1'))), { thrown: expected });
  }
  const plain = definePlugin({
    onEvent() {
      throw new Error('boom');
    },
  });
  const { thrown } = callSync(() => plain.handler.onEvent(raw('1')));
  assert.equal(thrown.tag, 'failed');
  assert.match(thrown.val, /^boom\n/);
});

test('an output that cannot be encoded fails as failed', () => {
  const plugin = definePlugin({ onEvent: () => ({ n: 1n }) });
  const { thrown } = callSync(() => plugin.handler.onEvent(raw('1')));
  assert.equal(thrown.tag, 'failed');
  assert.match(thrown.val, /cannot serialize/);
});

test('async hooks resolve to the output and reject with the WIT variant', async () => {
  const ok = definePlugin({ onEvent: async () => ({ a: 1 }) });
  assert.equal(text(await ok.handler.onEvent(raw('1'))), '{"a":1}');
  const failing = definePlugin({
    async onEvent() {
      await null;
      throw new PluginFailure('later');
    },
  });
  await assert.rejects(failing.handler.onEvent(raw('1')), (thrown) => {
    assert.deepEqual(thrown, { tag: 'failed', val: 'later' });
    return true;
  });
});

test('missing lifecycle hooks succeed; given ones are called and mapped', async () => {
  const bare = definePlugin({ onEvent() {} });
  assert.equal(bare.lifecycle.onInstall(), undefined);
  assert.equal(bare.lifecycle.onUpgrade('0.1.0'), undefined);
  assert.equal(bare.lifecycle.onUninstall(), undefined);

  const calls = [];
  const hooked = definePlugin({
    onEvent() {},
    onInstall: () => calls.push('install') && 'dropped',
    onUpgrade(from) {
      calls.push(`upgrade ${from}`);
      throw new InvalidPayload('no');
    },
    onUninstall: async () => {
      calls.push('uninstall');
    },
  });
  assert.equal(hooked.lifecycle.onInstall(), undefined);
  assert.deepEqual(callSync(() => hooked.lifecycle.onUpgrade('1.0.0')), { thrown: { tag: 'invalid-payload', val: 'no' } });
  assert.equal(await hooked.lifecycle.onUninstall(), undefined);
  assert.deepEqual(calls, ['install', 'upgrade 1.0.0', 'uninstall']);
});
