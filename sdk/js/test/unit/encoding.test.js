import assert from 'node:assert/strict';
import { test } from 'node:test';

import { encodeOutput, json, toBytes } from '../../src/encoding.js';
import { PluginFailure } from '../../src/errors.js';

const text = (bytes) => new TextDecoder().decode(bytes);

test('undefined is no output', () => {
  assert.equal(encodeOutput(undefined), undefined);
});

test('bytes are sent as they are', () => {
  const bytes = new Uint8Array([0, 255, 7]);
  assert.equal(encodeOutput(bytes), bytes);
  assert.deepEqual([...encodeOutput(new Uint8Array([1, 2, 3, 4]).subarray(1, 3))], [2, 3]);
  assert.deepEqual([...encodeOutput(new Uint16Array([0x0102]))].length, 2);
  assert.deepEqual([...encodeOutput(new Uint8Array([9]).buffer)], [9]);
});

test('a string is sent as raw UTF-8, json() as a JSON string', () => {
  assert.equal(text(encodeOutput('Grüße')), 'Grüße');
  assert.equal(text(json('Grüße')), '"Grüße"');
});

test('anything else is sent as JSON', () => {
  assert.equal(text(encodeOutput({ count: 3 })), '{"count":3}');
  assert.equal(text(encodeOutput([1, 'a'])), '[1,"a"]');
  assert.equal(text(encodeOutput(null)), 'null');
  assert.equal(text(encodeOutput(0)), '0');
  assert.equal(text(encodeOutput(false)), 'false');
});

test('values without a JSON form fail as PluginFailure', () => {
  assert.throws(() => encodeOutput({ n: 1n }), (error) => error instanceof PluginFailure && /BigInt/.test(error.message));
  const cycle = {};
  cycle.self = cycle;
  assert.throws(() => encodeOutput(cycle), PluginFailure);
  assert.throws(() => encodeOutput(() => 1), /a function has no JSON form/);
  assert.throws(() => toBytes(undefined), /a undefined has no JSON form|has no JSON form/);
});
