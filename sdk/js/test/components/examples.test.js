// Builds the four examples in plugins/js with the real toolchain and runs them through a
// transpiled component with fake capabilities: the same behaviour as their Rust twins.
// Slow (four componentize-js builds): `npm run test:components`.

import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { describe, test } from 'node:test';

import { http as wasiHttp } from '@bytecodealliance/preview2-shim';

import { FakeHost, REPO_DIR, buildPlugin, componentImports, event, loadComponent, outcome } from './harness.js';

const EXAMPLES = path.join(REPO_DIR, 'plugins/js');

/** Builds an example and returns its instantiate function and its imports. */
async function example(dir, entry, world, capabilities) {
  const { wasm } = await buildPlugin({ pluginDir: path.join(EXAMPLES, dir), entry, world, capabilities });
  return { instantiate: await loadComponent(wasm), imports: await componentImports(wasm) };
}

/** A webhook receiver: posts its port, then every request it answers (202). */
const RECEIVER = `
const { parentPort } = require('node:worker_threads');
const server = require('node:http').createServer((request, response) => {
  let body = '';
  request.on('data', (chunk) => (body += chunk));
  request.on('end', () => {
    parentPort.postMessage({ method: request.method, url: request.url, agent: request.headers['user-agent'], type: request.headers['content-type'], body: JSON.parse(body) });
    response.writeHead(202).end('ok');
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
`;

const plinthImports = (imports) => imports.filter((name) => name.startsWith('plinth:') || name.startsWith('wasi:http/'));

describe('examples', { concurrency: false }, () => {
  test('hello greets a JSON string and refuses anything else', async () => {
    const { instantiate, imports } = await example('hello', 'src/plugin.js', 'lifecycle-plugin', []);
    assert.deepEqual(plinthImports(imports).sort(), ['plinth:plugin/log@0.1.0', 'plinth:plugin/types@0.1.0']);
    const host = new FakeHost();
    const greeted = await outcome(async () => (await instantiate(host)).handler.onEvent(event('greet', '"Ada"')));
    assert.deepEqual(greeted, { ok: '"Hello, Ada!"' });
    assert.deepEqual(host.logs, [{ level: 'info', message: 'greeting', fields: { name: 'Ada' } }]);
    const refused = await outcome(async () => (await instantiate(new FakeHost())).handler.onEvent(event('greet', '42')));
    assert.deepEqual(refused, {
      err: { tag: 'invalid-payload', val: 'the payload of `greet` is not the expected JSON: a number was refused' },
    });
  });

  test('counter counts in kv across instances', async () => {
    const { instantiate, imports } = await example('counter', 'src/plugin.ts', 'lifecycle-plugin', ['kv']);
    assert.ok(imports.includes('plinth:plugin/kv@0.1.0'));
    const host = new FakeHost();
    assert.deepEqual(await outcome(async () => (await instantiate(host)).lifecycle.onInstall()), { ok: undefined });
    assert.equal(new TextDecoder().decode(host.kv.get('count')), '0');
    for (const expected of [1, 2, 3]) {
      const result = await outcome(async () => (await instantiate(host)).handler.onEvent(event('count', '{}')));
      assert.deepEqual(result, { ok: `{"count":${expected}}` });
    }
    host.kv.set('count', new TextEncoder().encode('x'));
    const corrupt = await outcome(async () => (await instantiate(host)).handler.onEvent(event('count', '{}')));
    assert.deepEqual(corrupt, { err: { tag: 'failed', val: 'the stored count `x` is corrupt' } });
  });

  test('webhook-notify posts the order and returns the status', async () => {
    const { instantiate, imports } = await example('webhook-notify', 'src/plugin.ts', 'lifecycle-plugin', ['config', 'http']);
    assert.ok(imports.includes('wasi:http/outgoing-handler@0.2.12'), imports.join(', '));
    // The receiver runs on a worker thread: a component call blocks the main thread while
    // preview2-shim performs its request.
    const receiver = new Worker(RECEIVER, { eval: true });
    const received = [];
    receiver.on('message', (message) => received.push(message));
    const port = await new Promise((resolve) => receiver.once('message', resolve));
    received.length = 0;
    try {
      const url = `http://127.0.0.1:${port}/hook/secret`;
      const host = new FakeHost({ config: { 'webhook-url': url } });
      const result = await outcome(async () => (await instantiate(host)).handler.onEvent(event('order.created', '{"order":42}')));
      assert.deepEqual(result, { ok: '{"status":202}' });
      await new Promise((resolve) => setTimeout(resolve, 50)); // let the worker's message arrive
      assert.deepEqual(received, [
        {
          method: 'POST',
          url: '/hook/secret',
          agent: 'plinth-ts-webhook-notify/0.1',
          type: 'application/json',
          body: { text: 'New order on acme', tenant: 'acme', event_id: '01900000-0000-7000-8000-000000000000', order: { order: 42 } },
        },
      ]);
      const missing = await outcome(async () => (await instantiate(new FakeHost({ config: { 'webhook-url': null } }))).handler.onEvent(event('order.created', '{}')));
      assert.deepEqual(missing, { err: { tag: 'invalid-config', val: 'config key "webhook-url" is required but not set' } });
      const badUrl = await outcome(async () => (await instantiate(new FakeHost({ config: { 'webhook-url': 'ftp://x' } }))).lifecycle.onInstall());
      assert.deepEqual(badUrl, { err: { tag: 'invalid-config', val: 'webhook-url must be an http:// or https:// URL' } });
      const refused = await outcome(async () =>
        (await instantiate(new FakeHost({ config: { 'webhook-url': 'http://127.0.0.1:1/' } }))).handler.onEvent(event('order.created', '{}')),
      );
      assert.equal(refused.err?.tag, 'capability');
      assert.match(refused.err.val, /^http\.request\(POST 127\.0\.0\.1:1\) failed: /);
    } finally {
      await receiver.terminate();
    }
  });

  test('http-echo echoes method, path and body, and answers 500 when asked to fail', async () => {
    const { instantiate, imports } = await example('http-echo', 'src/plugin.js', 'http-plugin', []);
    assert.ok(!imports.includes('wasi:http/outgoing-handler@0.2.12'), imports.join(', '));
    const host = new FakeHost();
    const instance = await instantiate(host);
    const server = new wasiHttp.HTTPServer(instance.incomingHandler);
    server.listen(0, '127.0.0.1');
    try {
      const { port } = server.address();
      const response = await fetch(`http://127.0.0.1:${port}/hello?x=1`, { method: 'POST', body: 'hi' });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-type'), 'application/json');
      assert.deepEqual(await response.json(), { method: 'POST', path: '/hello?x=1', body: 'hi' });
      const big = 'x'.repeat(100_000);
      const echoed = await (await fetch(`http://127.0.0.1:${port}/big`, { method: 'PUT', body: big })).json();
      assert.equal(echoed.body, big);
      const failed = await fetch(`http://127.0.0.1:${port}/fail`);
      assert.equal(failed.status, 500);
      assert.equal(await failed.text(), 'the plugin failed: asked to fail');
      assert.equal(host.logs.at(-1).message, 'onRequest failed');
      assert.match(host.logs.at(-1).fields.error, /^asked to fail\n/);
    } finally {
      server.stop();
    }
  });
});
