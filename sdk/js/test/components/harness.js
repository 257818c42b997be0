// Test harness for built components: writes the WIT layout `plinth plugin build` prepares,
// builds a plugin with bin/plinth-js.mjs, transpiles the component with jco and runs its
// exports in Node with fake Plinth capabilities (and preview2-shim for base WASI), one fresh
// instance per call, as the host does.

import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import * as shim from '@bytecodealliance/preview2-shim';

const run = promisify(execFile);
export const SDK_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const REPO_DIR = path.resolve(SDK_DIR, '../..');
const JCO = path.join(SDK_DIR, 'node_modules/.bin/jco');

/**
 * Writes `world.wit` and `deps/` for the granted capabilities, as `plinth plugin build` does.
 *
 * @param {string} dir
 * @param {string[]} capabilities
 */
export async function writeWit(dir, capabilities) {
  await mkdir(path.join(dir, 'deps'), { recursive: true });
  await cp(path.join(REPO_DIR, 'wit/plugin.wit'), path.join(dir, 'deps/plinth-plugin.wit'));
  for (const name of ['cli', 'clocks', 'filesystem', 'http', 'io', 'random', 'sockets']) {
    await cp(path.join(REPO_DIR, `wit/deps/${name}.wit`), path.join(dir, `deps/${name}.wit`));
  }
  const imports = ['    import plinth:plugin/log@0.1.0;'];
  for (const name of ['kv', 'config', 'events']) {
    if (capabilities.includes(name)) {
      imports.push(`    import plinth:plugin/${name}@0.1.0;`);
    }
  }
  if (capabilities.includes('http')) {
    imports.push('    import wasi:http/outgoing-handler@0.2.12;');
  }
  await writeFile(
    path.join(dir, 'world.wit'),
    [
      'package plinth:app;',
      '',
      'world plugin {',
      ...imports,
      '    export plinth:plugin/handler@0.1.0;',
      '}',
      'world lifecycle-plugin { include plugin; export plinth:plugin/lifecycle@0.1.0; }',
      'world http-plugin { include lifecycle-plugin; export wasi:http/incoming-handler@0.2.12; }',
      '',
    ].join('\n'),
  );
}

/**
 * Builds the plugin in `pluginDir` and returns the component's path and the build's stderr.
 *
 * @param {{ pluginDir: string, entry: string, world: string, capabilities: string[] }} options
 */
export async function buildPlugin({ pluginDir, entry, world, capabilities }) {
  const work = await mkdtemp(path.join(tmpdir(), 'plinth-js-test-'));
  const witDir = path.join(work, 'wit');
  await writeWit(witDir, capabilities);
  const wasm = path.join(work, 'plugin.wasm');
  const result = await run(process.execPath, [path.join(SDK_DIR, 'bin/plinth-js.mjs'), 'build', entry], {
    cwd: pluginDir,
    env: {
      ...process.env,
      PLINTH_WIT_DIR: witDir,
      PLINTH_WORLD: world,
      PLINTH_WASM_OUT: wasm,
      PLINTH_CAPABILITIES: ['log', ...capabilities].join(','),
    },
  });
  return { wasm, work, stderr: result.stderr };
}

/** The imports a built component lists (`jco wit`). */
export async function componentImports(wasm) {
  const { stdout } = await run(JCO, ['wit', wasm]);
  return [...stdout.matchAll(/^\s*import ([^;]+);/gm)].map((match) => match[1]);
}

/**
 * Transpiles `wasm` and returns a function that instantiates it with fake capabilities.
 *
 * @param {string} wasm
 */
export async function loadComponent(wasm) {
  const out = path.join(path.dirname(wasm), 'transpiled');
  await run(JCO, ['transpile', wasm, '-o', out, '-I', 'async', '--no-typescript', '-q', '--name', 'plugin']);
  const { instantiate } = await import(pathToFileURL(path.join(out, 'plugin.js')).href);
  const compiled = new Map();
  const getCoreModule = async (file) => {
    if (!compiled.has(file)) {
      compiled.set(file, WebAssembly.compile(await readFile(path.join(out, file))));
    }
    return compiled.get(file);
  };
  /**
   * @param {FakeHost} host
   */
  return async (host) => instantiate(getCoreModule, importsFor(host));
}

/** In-memory stand-ins for the host's capabilities, recording what the plugin did. */
export class FakeHost {
  constructor({ config = {}, emitTopics = [], kvQuotaBytes = Infinity } = {}) {
    this.logs = [];
    this.kv = new Map();
    this.config = config;
    this.emitTopics = emitTopics;
    this.emitted = [];
    this.kvQuotaBytes = kvQuotaBytes;
  }
}

const camel = (name) => name.replace(/-(\w)/g, (_, letter) => letter.toUpperCase());

/** @param {FakeHost} host */
function importsFor(host) {
  const plinth = {
    'plinth:plugin/types': {},
    'plinth:plugin/log': {
      write(level, message, fields) {
        host.logs.push({ level, message, fields: Object.fromEntries(fields) });
      },
    },
    'plinth:plugin/kv': {
      get(key) {
        if (key === '') throw { tag: 'invalid-key', val: 'the key is empty' };
        return host.kv.get(key);
      },
      set(key, value) {
        if (key === '') throw { tag: 'invalid-key', val: 'the key is empty' };
        if (value.byteLength > host.kvQuotaBytes) {
          throw { tag: 'quota-exceeded', val: `install bytes: the limit is ${host.kvQuotaBytes}` };
        }
        host.kv.set(key, value);
      },
      delete(key) {
        return host.kv.delete(key);
      },
      listKeys(prefix, cursor, limit) {
        const keys = [...host.kv.keys()].filter((key) => key.startsWith(prefix) && (cursor === undefined || key > cursor)).sort();
        const page = keys.slice(0, limit);
        return { keys: page, nextCursor: keys.length > limit ? page.at(-1) : undefined };
      },
    },
    'plinth:plugin/config': {
      get(key) {
        if (!(key in host.config)) throw { tag: 'undeclared', val: key };
        return host.config[key] ?? undefined;
      },
    },
    'plinth:plugin/events': {
      emit(topic, payload) {
        if (!host.emitTopics.includes(topic)) throw { tag: 'undeclared-topic', val: topic };
        host.emitted.push({ topic, payload: new TextDecoder().decode(payload) });
      },
    },
  };
  return new Proxy(plinth, {
    get(target, name) {
      if (name in target) return target[name];
      const match = /^wasi:([\w-]+)\/([\w-]+)$/.exec(String(name));
      if (match && shim[match[1]]?.[camel(match[2])]) return shim[match[1]][camel(match[2])];
      throw new Error(`the test host has no import ${String(name)}`);
    },
  });
}

/** An event as the host delivers it. */
export function event(topic, payload, extra = {}) {
  const bytes = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  return { id: '01900000-0000-7000-8000-000000000000', topic, payload: bytes, tenant: 'acme', depth: 0, ...extra };
}

/**
 * Calls `fn`; returns `{ ok }` or `{ err }` (the WIT error variant of a `ComponentError`), so
 * tests can compare results of both kinds.
 */
export async function outcome(fn) {
  try {
    const value = await fn();
    return { ok: value instanceof Uint8Array ? new TextDecoder().decode(value) : value };
  } catch (error) {
    if (error && typeof error === 'object' && 'payload' in error) return { err: error.payload };
    throw error;
  }
}
