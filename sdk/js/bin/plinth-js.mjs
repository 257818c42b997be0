#!/usr/bin/env node
// plinth-js: the build command of JavaScript and TypeScript Plinth plugins.
//
//   node sdk/js/bin/plinth-js.mjs build src/plugin.ts
//
// `plinth plugin build DIR` runs it (the [build] command of plinth.toml) with DIR as the working
// directory and PLINTH_WIT_DIR, PLINTH_WORLD, PLINTH_WASM_OUT and PLINTH_CAPABILITIES set.

import { BuildError, build, settingsFromEnv } from '../lib/build.js';

const USAGE = `usage: plinth-js build <entry>

Bundles <entry> (a .js or .ts module that default-exports definePlugin(...)) with
@plinth/sdk and compiles it into a WebAssembly component.

Run by \`plinth plugin build\`, which sets, with the plugin directory as the working directory:
  PLINTH_WIT_DIR       the WIT to target (world.wit and deps/)
  PLINTH_WORLD         plugin | lifecycle-plugin | http-plugin
  PLINTH_WASM_OUT      where to write the component
  PLINTH_CAPABILITIES  granted capabilities, e.g. log,kv,config,events,http`;

async function main(argv) {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'build') {
    console.error(`plinth-js: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  if (rest.length !== 1 || rest[0].startsWith('-')) {
    console.error(`plinth-js build takes exactly one argument, the entry module\n\n${USAGE}`);
    return 2;
  }
  const settings = settingsFromEnv(rest[0], process.env, process.cwd());
  const built = await build(settings);
  const mib = (built.bytes / (1024 * 1024)).toFixed(1);
  const seconds = ((built.bundleMs + built.componentizeMs) / 1000).toFixed(1);
  const uses = built.capabilities.join(', ');
  const fetch = settings.capabilities.has('http') ? '; fetch enabled' : '';
  console.error(
    `plinth-js: built ${built.wasmOut} (${mib} MiB, world ${settings.world}, ` +
      `code uses ${uses}${fetch}) in ${seconds} s ` +
      `(bundle ${Math.round(built.bundleMs)} ms, componentize ${(built.componentizeMs / 1000).toFixed(1)} s)`,
  );
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    if (error instanceof BuildError) {
      console.error(`plinth-js: ${error.message}`);
    } else {
      console.error('plinth-js: unexpected failure:', error);
    }
    process.exitCode = 1;
  },
);
