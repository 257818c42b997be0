import assert from 'node:assert/strict';
import { test } from 'node:test';

import { InvalidPayload } from '../../src/errors.js';
import { Event } from '../../src/event.js';

const event = (payload, topic = 'greet') =>
  new Event({
    id: 'id-1',
    topic,
    tenant: 'acme',
    depth: 2,
    payload: typeof payload === 'string' ? new TextEncoder().encode(payload) : payload,
  });

test('exposes the fields of the WIT event', () => {
  const e = event('"Ada"');
  assert.equal(e.id, 'id-1');
  assert.equal(e.topic, 'greet');
  assert.equal(e.tenant, 'acme');
  assert.equal(e.depth, 2);
  assert.deepEqual([...e.payload], [...new TextEncoder().encode('"Ada"')]);
});

test('text() and json() decode the payload', () => {
  assert.equal(event('"Ada"').text(), '"Ada"');
  assert.equal(event('"Ada"').json(), 'Ada');
  assert.deepEqual(event('{"a":[1]}').json(), { a: [1] });
});

test('json() failures are InvalidPayload naming the topic and the problem', () => {
  assert.throws(
    () => event('{"a":', 'order.created').json(),
    (error) =>
      error instanceof InvalidPayload &&
      error.message.startsWith('the payload of `order.created` is not the expected JSON: ') &&
      error.message.length > 'the payload of `order.created` is not the expected JSON: '.length,
  );
  assert.throws(() => event('').json(), InvalidPayload);
});

test('text() refuses invalid UTF-8 as InvalidPayload', () => {
  assert.throws(
    () => event(new Uint8Array([0xc3, 0x28])).text(),
    (error) => error instanceof InvalidPayload && /is not UTF-8 text/.test(error.message),
  );
});

test('json(check) refuses values the check rejects, without echoing them', () => {
  const isString = (value) => typeof value === 'string';
  assert.equal(event('"Ada"').json(isString), 'Ada');
  assert.throws(() => event('42').json(isString), {
    message: 'the payload of `greet` is not the expected JSON: a number was refused',
  });
  assert.throws(() => event('{"secret":1}').json(isString), {
    message: 'the payload of `greet` is not the expected JSON: an object was refused',
  });
  const throwing = () => {
    throw new Error('name must be a string');
  };
  assert.throws(() => event('1').json(throwing), {
    name: 'InvalidPayload',
    message: 'the payload of `greet` is not the expected JSON: name must be a string',
  });
});
