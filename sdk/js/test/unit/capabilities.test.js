// The capability helpers against fake imports (test/support/fakes): encoding of values and
// how WIT errors become CapabilityError messages naming the call.
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';

import * as config from '../../src/config.js';
import { CapabilityError, InvalidConfig, PluginFailure } from '../../src/errors.js';
import * as events from '../../src/events.js';
import * as kv from '../../src/kv.js';
import * as log from '../../src/log.js';
import { host } from '../support/fakes/host.js';

const text = (bytes) => new TextDecoder().decode(bytes);

beforeEach(() => host.reset());

test('kv stores bytes, text and JSON and reads them back', () => {
  kv.set('raw', new Uint8Array([1, 2]));
  kv.set('text', 'héllo');
  kv.set('object', { a: 1 });
  kv.setJson('string', 'quoted');
  assert.deepEqual([...kv.get('raw')], [1, 2]);
  assert.equal(kv.getText('text'), 'héllo');
  assert.deepEqual(kv.getJson('object'), { a: 1 });
  assert.equal(text(host.kv.get('string')), '"quoted"');
  assert.equal(kv.get('missing'), undefined);
  assert.equal(kv.getText('missing'), undefined);
  assert.equal(kv.getJson('missing'), undefined);
  assert.equal(kv.delete('raw'), true);
  assert.equal(kv.delete('raw'), false);
});

test('kv.keys pages through every key', () => {
  for (let i = 0; i < 600; i += 1) {
    host.kv.set(`user/${String(i).padStart(3, '0')}`, new Uint8Array());
  }
  host.kv.set('other', new Uint8Array());
  const keys = [...kv.keys('user/')];
  assert.equal(keys.length, 600);
  assert.equal(keys[0], 'user/000');
  assert.equal(keys[599], 'user/599');
  assert.deepEqual(kv.listKeys('user/', { limit: 2 }), { keys: ['user/000', 'user/001'], nextCursor: 'user/001' });
});

test('kv errors are CapabilityErrors naming the call', () => {
  const cases = [
    [{ tag: 'quota-exceeded', val: 'install bytes: 1024' }, 'kv.set("k") failed: kv quota exceeded: install bytes: 1024'],
    [{ tag: 'invalid-key', val: 'empty' }, 'kv.set("k") failed: invalid kv key: empty'],
    [{ tag: 'value-too-large', val: 1048576n }, 'kv.set("k") failed: kv value too large: the limit is 1048576 bytes'],
    [{ tag: 'unavailable', val: 'busy' }, 'kv.set("k") failed: kv store unavailable: busy'],
  ];
  for (const [variant, message] of cases) {
    host.failNext = variant;
    assert.throws(() => kv.set('k', 'v'), (error) => error instanceof CapabilityError && error.message === message);
  }
  host.failNext = { tag: 'unavailable', val: 'down' };
  assert.throws(() => [...kv.keys('p')], { message: 'kv.listKeys("p") failed: kv store unavailable: down' });
});

test('kv values that are not text or JSON fail as PluginFailure', () => {
  host.kv.set('bad', new Uint8Array([0xff]));
  assert.throws(() => kv.getText('bad'), PluginFailure);
  host.kv.set('notjson', new TextEncoder().encode('{'));
  assert.throws(() => kv.getJson('notjson'), (error) => error instanceof PluginFailure && /is not JSON/.test(error.message));
});

test('config: values, missing values and undeclared keys', () => {
  host.config = { url: 'https://x', unset: null, n: ' 42 ', bad: '4x', on: 'true', off: 'false', maybe: 'yes' };
  assert.equal(config.get('url'), 'https://x');
  assert.equal(config.get('unset'), undefined);
  assert.equal(config.getRequired('url'), 'https://x');
  assert.throws(() => config.getRequired('unset'), (error) => error instanceof InvalidConfig && error.message === 'config key "unset" is required but not set');
  assert.throws(() => config.get('nope'), (error) => error instanceof CapabilityError && error.message === 'config.get("nope") failed: config key "nope" is not declared in the manifest');
  assert.equal(config.getInteger('n'), 42);
  assert.equal(config.getInteger('unset'), undefined);
  assert.throws(() => config.getInteger('bad'), InvalidConfig);
  assert.equal(config.getBoolean('on'), true);
  assert.equal(config.getBoolean('off'), false);
  assert.throws(() => config.getBoolean('maybe'), InvalidConfig);
});

test('events: payload encoding and refusals', () => {
  events.emit('a', 'raw text');
  events.emit('b', { n: 1 });
  events.emitJson('c', 'quoted');
  assert.deepEqual(host.emitted.map(({ topic, payload }) => [topic, text(payload)]), [['a', 'raw text'], ['b', '{"n":1}'], ['c', '"quoted"']]);
  const cases = [
    [{ tag: 'undeclared-topic', val: 'x' }, 'the manifest does not declare the topic "x"'],
    [{ tag: 'depth-exceeded', val: 8 }, 'the event depth limit of 8 is reached'],
    [{ tag: 'payload-too-large', val: 65536n }, 'the payload is over the 65536-byte limit'],
    [{ tag: 'rate-limited' }, 'too many events in this call'],
  ];
  for (const [variant, reason] of cases) {
    host.failNext = variant;
    assert.throws(() => events.emit('x', ''), { name: 'CapabilityError', message: `events.emit("x") failed: ${reason}` });
  }
});

test('log writes one line with text fields', () => {
  log.info('hello', { name: 'Ada', n: 3, nested: { a: [1] }, big: 2n });
  log.warn('pairs', [['k', 'v']]);
  log.error('bare');
  assert.deepEqual(host.logs, [
    { level: 'info', message: 'hello', fields: [['name', 'Ada'], ['n', '3'], ['nested', '{"a":[1]}'], ['big', '2']] },
    { level: 'warn', message: 'pairs', fields: [['k', 'v']] },
    { level: 'error', message: 'bare', fields: [] },
  ]);
});
