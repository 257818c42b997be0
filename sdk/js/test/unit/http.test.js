import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CapabilityError, InvalidPayload } from '../../src/errors.js';
import { HttpResponse, request, splitUrl } from '../../src/http/client.js';
import { IncomingRequest, errorResponse, handleRequest, responseParts } from '../../src/http/server.js';

const text = (bytes) => new TextDecoder().decode(bytes);
const incoming = (body = '', path = '/items?page=2') =>
  new IncomingRequest('POST', path, [['Content-Type', 'application/json']], new TextEncoder().encode(body));

test('IncomingRequest: path, query, headers and body', () => {
  const req = incoming('{"a":1}');
  assert.equal(req.path, '/items');
  assert.equal(req.query, 'page=2');
  assert.equal(incoming('', '/x').query, undefined);
  assert.equal(req.header('content-type'), 'application/json');
  assert.deepEqual(req.json(), { a: 1 });
  assert.throws(() => incoming('{').json(), InvalidPayload);
});

test('responseParts: defaults and body encodings', () => {
  assert.deepEqual(responseParts(undefined), { status: 204, headers: [], body: new Uint8Array() });
  const json = responseParts({ json: { ok: true } });
  assert.equal(json.status, 200);
  assert.deepEqual(json.headers, [['content-type', 'application/json']]);
  assert.equal(text(json.body), '{"ok":true}');
  const plain = responseParts({ status: 201, body: 'hi', headers: { 'x-id': 7 } });
  assert.deepEqual(plain.headers, [['x-id', '7'], ['content-type', 'text/plain; charset=utf-8']]);
  const typed = responseParts({ body: 'x', headers: [['Content-Type', 'text/html']] });
  assert.deepEqual(typed.headers, [['Content-Type', 'text/html']]);
  assert.deepEqual([...responseParts({ body: new Uint8Array([1]) }).body], [1]);
  assert.equal(text(responseParts({ body: [1, 2] }).body), '[1,2]');
  assert.throws(() => responseParts({ status: 1000 }), RangeError);
  assert.throws(() => responseParts('text'), TypeError);
});

test('handleRequest maps failures to 400 and 500 and reports them', async () => {
  const reports = [];
  const report = (message) => reports.push(message);
  const bad = handleRequest(() => { throw new InvalidPayload('no body'); }, incoming(), report);
  assert.equal(bad.status, 400);
  assert.equal(text(bad.body), 'no body');
  const broken = handleRequest(() => { throw new Error('boom'); }, incoming(), report);
  assert.equal(broken.status, 500);
  assert.equal(text(broken.body), 'the plugin failed: boom');
  const invalid = handleRequest(() => ({ status: 42 }), incoming(), report);
  assert.equal(invalid.status, 500);
  const later = await handleRequest(async () => ({ json: [1] }), incoming(), report);
  assert.equal(text(later.body), '[1]');
  const rejected = await handleRequest(async () => { throw new CapabilityError('kv.get failed'); }, incoming(), report);
  assert.equal(rejected.status, 500);
  assert.equal(text(rejected.body), 'kv.get failed');
  assert.equal(reports.length, 4);
  assert.match(reports[1], /^boom/);
  assert.equal(errorResponse('x').status, 500);
});

test('splitUrl: the parts a wasi:http request carries', () => {
  assert.deepEqual(splitUrl('https://api.example.com:8443/v1/items?x=1#top'), {
    https: true,
    authority: 'api.example.com:8443',
    pathWithQuery: '/v1/items?x=1',
  });
  assert.deepEqual(splitUrl('http://example.com'), { https: false, authority: 'example.com', pathWithQuery: '/' });
  assert.equal(splitUrl('HTTP://example.com?q=1').pathWithQuery, '/?q=1');
  for (const [url, why] of [
    ['example.com/x', /absolute URL/],
    ['ftp://example.com/', /scheme must be http or https/],
    ['https://user:pw@example.com/', /credentials/],
  ]) {
    assert.throws(() => splitUrl(url), why, url);
  }
});

test('HttpResponse: ok, headers, and decoding failures as CapabilityError', () => {
  const response = new HttpResponse(204, [['X-A', 'b']], new TextEncoder().encode('{'));
  assert.ok(response.ok);
  assert.ok(!new HttpResponse(404, [], new Uint8Array()).ok);
  assert.equal(response.header('x-a'), 'b');
  assert.throws(() => response.json(), (error) => error instanceof CapabilityError && /cannot decode the HTTP response: the body is not JSON/.test(error.message));
});

test('request refuses an invalid URL before anything is sent', () => {
  assert.throws(() => request('ftp://secret.example/x', { method: 'post' }), {
    name: 'CapabilityError',
    message: 'http.request(POST) failed: invalid URL: the scheme must be http or https',
  });
});
