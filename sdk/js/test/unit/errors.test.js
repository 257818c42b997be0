import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  CapabilityError,
  InvalidConfig,
  InvalidPayload,
  PluginError,
  PluginFailure,
  toWitError,
  trimStack,
} from '../../src/errors.js';

test('each error class maps to its plugin-error variant with its message', () => {
  assert.deepEqual(toWitError(new InvalidPayload('no name')), { tag: 'invalid-payload', val: 'no name' });
  assert.deepEqual(toWitError(new InvalidConfig('no url')), { tag: 'invalid-config', val: 'no url' });
  assert.deepEqual(toWitError(new CapabilityError('kv down')), { tag: 'capability', val: 'kv down' });
  assert.deepEqual(toWitError(new PluginFailure('broken')), { tag: 'failed', val: 'broken' });
});

test('the classes are Errors with their own names', () => {
  const error = new InvalidPayload('x');
  assert.ok(error instanceof Error);
  assert.ok(error instanceof PluginError);
  assert.equal(error.name, 'InvalidPayload');
  assert.equal(new CapabilityError('x').name, 'CapabilityError');
});

test('a plain Error becomes failed with its message and stack', () => {
  const error = new Error('boom');
  error.stack = 'onEvent@plugin.js:3:9\nsettle@plugin.js:40:1\nexport$onEvent@initializer.js:1:1';
  assert.deepEqual(toWitError(error), { tag: 'failed', val: 'boom\nonEvent@plugin.js:3:9' });
});

test('an Error subclass keeps its name; an Error without a stack is just its message', () => {
  const error = new TypeError('x is undefined');
  error.stack = '';
  assert.deepEqual(toWitError(error), { tag: 'failed', val: 'TypeError: x is undefined' });
  const bare = new Error('');
  bare.stack = undefined;
  assert.deepEqual(toWitError(bare), { tag: 'failed', val: 'an error without a message was thrown' });
});

test('thrown non-Errors become failed with their text', () => {
  assert.deepEqual(toWitError('plain text'), { tag: 'failed', val: 'plain text' });
  assert.deepEqual(toWitError(42), { tag: 'failed', val: '42' });
  assert.deepEqual(toWitError(undefined), { tag: 'failed', val: 'undefined was thrown' });
  assert.deepEqual(toWitError({ code: 7 }), { tag: 'failed', val: 'a non-Error value was thrown: {"code":7}' });
});

test('a thrown object shaped like a variant is not trusted as one', () => {
  // Only the SDK's classes choose the variant: an arbitrary { tag, val } is just a value.
  assert.equal(toWitError({ tag: 'capability', val: 'x' }).tag, 'failed');
});

test('trimStack cuts the SDK wrapper frames and keeps everything when there are none', () => {
  assert.equal(trimStack('a@x:1\ndefinePlugin/onEvent/<@x:2\nsettle@x:3'), 'a@x:1');
  assert.equal(trimStack('a@x:1\nb@x:2\n'), 'a@x:1\nb@x:2');
});
