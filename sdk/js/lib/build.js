// @ts-check
/**
 * `plinth-js build`: bundles a plugin's entry module with the SDK (esbuild) and compiles the
 * bundle into a WebAssembly component (componentize-js, the StarlingMonkey engine) for the
 * world `plinth plugin build` prepared.
 *
 * The contract with `plinth plugin build`, which runs this with the plugin's directory as the
 * working directory, is four environment variables:
 *
 * | variable | meaning |
 * |---|---|
 * | `PLINTH_WIT_DIR` | the WIT to target: `world.wit` (package `plinth:app`) and `deps/` |
 * | `PLINTH_WORLD` | the world in `plinth:app`: `plugin`, `lifecycle-plugin` or `http-plugin` |
 * | `PLINTH_WASM_OUT` | where to write the component |
 * | `PLINTH_CAPABILITIES` | the granted capabilities, comma-separated: `log,kv,config,events,http` |
 *
 * How capabilities stay out of the component:
 *
 * 1. The SDK imports each capability's WIT interface only from that capability's module
 *    (`kv.js` imports `plinth:plugin/kv@0.1.0`, …) and is marked side-effect free, so esbuild
 *    drops every module, and with it every import, that the plugin never calls.
 * 2. After bundling, the build reads which `plinth:plugin/*` interfaces the bundle still
 *    imports and fails, naming the file that uses it, if the manifest does not grant one (the
 *    generated world does not have it, so componentize-js would fail less clearly).
 * 3. Outbound HTTP is the SDK's `http` client, which imports `wasi:http/outgoing-handler`
 *    (checked like the capabilities above), and the engine's `fetch`: the build disables
 *    componentize-js's `http` feature unless `http` is granted, so `fetch` exists only then.
 * 4. Incoming HTTP is the SDK's own `wasi:http/incoming-handler` export, bundled only for the
 *    `http-plugin` world; the engine's `fetch-event` feature is always disabled.
 */

import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The SDK's root directory (`sdk/js`), wherever this checkout is. */
export const SDK_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The worlds of `plinth:app`. */
const WORLDS = ['plugin', 'lifecycle-plugin', 'http-plugin'];

/** The capabilities `PLINTH_CAPABILITIES` may list. */
const CAPABILITIES = ['log', 'kv', 'config', 'events', 'http'];

/** The capability each `plinth:plugin` interface the bundle may import stands for. */
const INTERFACE_CAPABILITY = {
  log: 'log',
  kv: 'kv',
  config: 'config',
  events: 'events',
  types: 'log', // shared types: always available
  'outgoing-handler': 'http', // wasi:http/outgoing-handler
};

/** What to add to `plinth.toml` to grant each capability. */
const GRANT_HINT = {
  kv: '[permissions] kv = { max-bytes = 65536 }',
  config: '[permissions] config = true (and a [config.<key>] section per key)',
  events: '[permissions] events = { emit = ["<topic>"] }',
  http: '[permissions] http = { hosts = ["<host>"] }',
};

/** The SDK entry points the bundler resolves `@plinth/sdk…` imports to. */
const SDK_MODULES = {
  '@plinth/sdk': 'src/index.js',
  '@plinth/sdk/internal': 'src/internal.js',
  '@plinth/sdk/internal-http': 'src/internal-http.js',
};

/** A build failure whose message is for the plugin author (printed without a stack). */
export class BuildError extends Error {}

/**
 * @typedef {object} BuildSettings
 * @property {string} pluginDir the plugin's directory (the working directory)
 * @property {string} entry the entry module, relative to `pluginDir` or absolute
 * @property {string} witDir `PLINTH_WIT_DIR`
 * @property {string} world `PLINTH_WORLD`
 * @property {string} wasmOut `PLINTH_WASM_OUT`
 * @property {Set<string>} capabilities `PLINTH_CAPABILITIES`
 */

/**
 * Reads the build settings from the environment, failing with a message that says what is
 * missing and how this command is meant to run.
 *
 * @param {string} entry
 * @param {NodeJS.ProcessEnv} env
 * @param {string} cwd
 * @returns {BuildSettings}
 */
export function settingsFromEnv(entry, env, cwd) {
  const required = ['PLINTH_WIT_DIR', 'PLINTH_WORLD', 'PLINTH_WASM_OUT', 'PLINTH_CAPABILITIES'];
  const missing = required.filter((name) => env[name] === undefined || env[name] === '');
  if (missing.length > 0) {
    throw new BuildError(
      `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set. ` +
        '`plinth plugin build DIR` sets them when it runs the [build] command of plinth.toml; ' +
        'to run plinth-js by hand, write the WIT with `plinth plugin wit DIR` and set ' +
        'PLINTH_WIT_DIR (that directory), PLINTH_WORLD (plugin, lifecycle-plugin or http-plugin), ' +
        'PLINTH_WASM_OUT (the output file) and PLINTH_CAPABILITIES (e.g. log,kv).',
    );
  }
  const world = /** @type {string} */ (env.PLINTH_WORLD);
  if (!WORLDS.includes(world)) {
    throw new BuildError(`PLINTH_WORLD is "${world}"; expected one of ${WORLDS.join(', ')}`);
  }
  const capabilities = new Set(
    /** @type {string} */ (env.PLINTH_CAPABILITIES)
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean),
  );
  const unknown = [...capabilities].filter((name) => !CAPABILITIES.includes(name));
  if (unknown.length > 0) {
    // A newer host may grant more than this SDK knows; it cannot use it, but can still build.
    console.warn(`plinth-js: ignoring unknown capabilities in PLINTH_CAPABILITIES: ${unknown.join(', ')}`);
  }
  capabilities.add('log');
  return {
    pluginDir: cwd,
    entry,
    witDir: path.resolve(cwd, /** @type {string} */ (env.PLINTH_WIT_DIR)),
    world,
    wasmOut: path.resolve(cwd, /** @type {string} */ (env.PLINTH_WASM_OUT)),
    capabilities,
  };
}

/**
 * Bundles and componentizes the plugin; returns what it built.
 *
 * @param {BuildSettings} settings
 * @returns {Promise<{ wasmOut: string, bytes: number, bundleMs: number, componentizeMs: number, capabilities: string[] }>}
 *   `capabilities`: those the plugin's code uses (the component imports every granted one)
 */
export async function build(settings) {
  const entryPath = path.resolve(settings.pluginDir, settings.entry);
  await mustExist(entryPath, `the entry module ${settings.entry}`);
  await mustExist(path.join(settings.witDir, 'world.wit'), `PLINTH_WIT_DIR/world.wit (${settings.witDir})`);

  const workDir = path.join(settings.pluginDir, '.plinth', 'js');
  await mkdir(workDir, { recursive: true });
  const bundlePath = path.join(workDir, 'plugin.bundle.js');

  const bundleStart = performance.now();
  const bundled = await bundle(settings, entryPath, bundlePath);
  const bundleMs = performance.now() - bundleStart;
  checkCapabilities(settings, bundled.capabilityUsers);

  const componentizeStart = performance.now();
  const component = await componentize(settings, bundlePath);
  const componentizeMs = performance.now() - componentizeStart;

  await mkdir(path.dirname(settings.wasmOut), { recursive: true });
  const partial = `${settings.wasmOut}.partial`;
  await writeFile(partial, component);
  await rename(partial, settings.wasmOut);
  return {
    wasmOut: settings.wasmOut,
    bytes: component.byteLength,
    bundleMs,
    componentizeMs,
    capabilities: [
      ...new Set(
        ['log', ...bundled.capabilityUsers.keys()].map(
          (iface) => INTERFACE_CAPABILITY[/** @type {keyof typeof INTERFACE_CAPABILITY} */ (iface)] ?? iface,
        ),
      ),
    ],
  };
}

/**
 * The entry module the bundle starts from: it imports the plugin, checks it against the world
 * and exports exactly the interfaces the world exports.
 *
 * @param {string} entryPath
 * @param {string} entryName
 * @param {string} world
 * @returns {string}
 */
export function entrySource(entryPath, entryName, world) {
  const lines = [
    `import * as entry from ${JSON.stringify(entryPath)};`,
    `import { pluginFor } from '@plinth/sdk/internal';`,
  ];
  if (world === 'http-plugin') {
    lines.push(`import { incomingHandler as serve } from '@plinth/sdk/internal-http';`);
  }
  lines.push(
    `const plugin = pluginFor(entry, ${JSON.stringify(world)}, ${JSON.stringify(entryName)});`,
    `export const handler = plugin.handler;`,
  );
  if (world !== 'plugin') {
    lines.push(`export const lifecycle = plugin.lifecycle;`);
  }
  if (world === 'http-plugin') {
    lines.push(`export const incomingHandler = serve(plugin.hooks.onRequest);`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Bundles the plugin into one ES module at `bundlePath`. Returns, for each capability the
 * bundle imports, the source files that import it.
 *
 * @param {BuildSettings} settings
 * @param {string} entryPath
 * @param {string} bundlePath
 * @returns {Promise<{ capabilityUsers: Map<string, string[]> }>}
 */
async function bundle(settings, entryPath, bundlePath) {
  const esbuild = await import('esbuild');
  const entryName = path.relative(settings.pluginDir, entryPath) || entryPath;
  /** @type {import('esbuild').Plugin} */
  const resolveSdk = {
    name: 'plinth-sdk',
    setup(builder) {
      // `@plinth/sdk` is this SDK, whatever the plugin's node_modules hold (an example needs
      // no install of its own; an author's project may depend on the SDK by path).
      builder.onResolve({ filter: /^@plinth\/sdk(\/.*)?$/ }, (args) => {
        const file = SDK_MODULES[/** @type {keyof typeof SDK_MODULES} */ (args.path)];
        if (file === undefined) {
          return { errors: [{ text: `@plinth/sdk has no module "${args.path}"; import from "@plinth/sdk"` }] };
        }
        return { path: path.join(SDK_DIR, file) };
      });
    },
  };
  let result;
  try {
    result = await esbuild.build({
      stdin: {
        contents: entrySource(entryPath, entryName, settings.world),
        resolveDir: settings.pluginDir,
        sourcefile: 'plinth-entry.js',
        loader: 'js',
      },
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      target: 'es2022',
      outfile: bundlePath,
      // The WIT interfaces are resolved by componentize-js against the world.
      external: ['plinth:*', 'wasi:*'],
      plugins: [resolveSdk],
      metafile: true,
      logLevel: 'silent',
      // Function and class names stay readable in the stacks of `failed` errors.
      keepNames: true,
      charset: 'utf8',
      legalComments: 'none',
    });
  } catch (error) {
    throw new BuildError(`bundling ${entryName} failed:\n${await formatEsbuildErrors(esbuild, error)}`);
  }
  for (const warning of await esbuild.formatMessages(result.warnings, { kind: 'warning' })) {
    console.warn(warning.trimEnd());
  }
  // The metafile lists every module esbuild parsed; the output lists the external imports
  // that survived tree shaking and the inputs that contributed code. A capability is used if
  // the output imports it; its users are the contributing inputs that import it.
  const output = Object.values(result.metafile.outputs)[0];
  const kept = new Set(output.imports.filter((imported) => imported.external).map((imported) => imported.path));
  const contributing = Object.entries(output.inputs)
    .filter(([, contribution]) => contribution.bytesInOutput > 0)
    .map(([input]) => input);
  /** @type {Map<string, string[]>} */
  const capabilityUsers = new Map();
  for (const imported of kept) {
    // `plinth:plugin/<interface>`, or outbound HTTP (the SDK's `http` client).
    const match = /^plinth:plugin\/([a-z-]+)@/.exec(imported) ?? /^wasi:http\/(outgoing-handler)@/.exec(imported);
    if (!match) {
      continue;
    }
    const users = contributing.filter((input) =>
      result.metafile.inputs[input]?.imports.some((entry) => entry.path === imported),
    );
    capabilityUsers.set(match[1], users.length > 0 ? users : [entryName]);
  }
  return { capabilityUsers };
}

/**
 * Fails when the bundle imports a `plinth:plugin` interface the manifest does not grant.
 *
 * @param {BuildSettings} settings
 * @param {Map<string, string[]>} capabilityUsers
 */
export function checkCapabilities(settings, capabilityUsers) {
  const problems = [];
  for (const [iface, users] of capabilityUsers) {
    const capability = INTERFACE_CAPABILITY[/** @type {keyof typeof INTERFACE_CAPABILITY} */ (iface)];
    if (capability === undefined) {
      problems.push(`plinth:plugin/${iface} is not an interface a plugin can import (imported by ${users.join(', ')})`);
    } else if (!settings.capabilities.has(capability)) {
      const hint = GRANT_HINT[/** @type {keyof typeof GRANT_HINT} */ (capability)];
      // The SDK's own modules stand for the plugin's calls of them (`kv.get` → `src/kv.js`).
      const own = users.filter((user) => !isSdkFile(settings, user));
      const through = own.length > 0 ? `imported by ${own.join(', ')}` : `through @plinth/sdk's ${capability} module`;
      problems.push(`the plugin uses ${capability} (${through}) but plinth.toml does not grant it: add ${hint}`);
    }
  }
  if (problems.length > 0) {
    throw new BuildError(problems.join('\n'));
  }
}

/**
 * Compiles the bundle into a component.
 *
 * @param {BuildSettings} settings
 * @param {string} bundlePath
 * @returns {Promise<Uint8Array>}
 */
async function componentize(settings, bundlePath) {
  const { componentize: run } = await import('@bytecodealliance/componentize-js');
  /** @type {Array<'stdio' | 'random' | 'clocks' | 'http' | 'fetch-event'>} */
  const disableFeatures = ['fetch-event'];
  if (!settings.capabilities.has('http')) {
    disableFeatures.push('http');
  }
  try {
    const { component } = await run({
      sourcePath: bundlePath,
      witPath: settings.witDir,
      worldName: settings.world,
      disableFeatures,
    });
    return component;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new BuildError(`componentize-js failed for world "${settings.world}":\n${message}`);
  }
}

/**
 * @param {string} file
 * @param {string} what
 */
async function mustExist(file, what) {
  try {
    await stat(file);
  } catch {
    throw new BuildError(`${what} does not exist: ${file}`);
  }
}

/**
 * Whether a metafile input (relative to the plugin dir) is one of the SDK's files.
 *
 * @param {BuildSettings} settings
 * @param {string} input
 * @returns {boolean}
 */
function isSdkFile(settings, input) {
  const inSdk = path.relative(SDK_DIR, path.resolve(settings.pluginDir, input));
  return !inSdk.startsWith('..') && !path.isAbsolute(inSdk);
}

/**
 * @param {typeof import('esbuild')} esbuild
 * @param {unknown} error
 * @returns {Promise<string>}
 */
async function formatEsbuildErrors(esbuild, error) {
  const errors = /** @type {{ errors?: import('esbuild').Message[] }} */ (error).errors;
  if (!Array.isArray(errors) || errors.length === 0) {
    return error instanceof Error ? error.message : String(error);
  }
  return (await esbuild.formatMessages(errors, { kind: 'error' })).join('').trimEnd();
}
