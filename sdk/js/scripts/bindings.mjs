#!/usr/bin/env node
// Generates the TypeScript declarations of the WIT interfaces (types/generated/) from the
// repository's wit/ with `jco guest-types`, for the `http-plugin` world, which imports and
// exports every interface a plugin can use.
//
//   npm run bindings          regenerate types/generated/
//   npm run bindings:check    regenerate into a temporary directory and fail on any difference

import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const SDK_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WIT_DIR = path.resolve(SDK_DIR, '../../wit');
const GENERATED = path.join(SDK_DIR, 'types/generated');
const JCO = path.join(SDK_DIR, 'node_modules/.bin/jco');
const WORLD = 'http-plugin';

/** Writes the declarations into `outDir` (replacing what is there). */
async function generate(outDir) {
  await rm(outDir, { recursive: true, force: true });
  // jco reads the WIT through WASI, which resolves paths against the working directory.
  await promisify(execFile)(JCO, ['guest-types', path.relative(SDK_DIR, WIT_DIR), '-n', WORLD, '-o', outDir, '-q'], {
    cwd: SDK_DIR,
  });
}

/** Every file under `dir`, relative to it, sorted. */
async function listFiles(dir) {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((entry) => entry.isFile())
      .map((entry) => path.relative(dir, path.join(entry.parentPath ?? entry.path, entry.name)))
      .sort();
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
}

async function check() {
  const fresh = await mkdtemp(path.join(tmpdir(), 'plinth-bindings-'));
  try {
    await generate(fresh);
    const [expected, actual] = await Promise.all([listFiles(fresh), listFiles(GENERATED)]);
    const problems = [];
    for (const file of new Set([...expected, ...actual])) {
      if (!expected.includes(file)) {
        problems.push(`${file}: checked in but no longer generated`);
      } else if (!actual.includes(file)) {
        problems.push(`${file}: missing`);
      } else {
        const [want, have] = await Promise.all([
          readFile(path.join(fresh, file), 'utf8'),
          readFile(path.join(GENERATED, file), 'utf8'),
        ]);
        if (want !== have) problems.push(`${file}: differs from what wit/ generates`);
      }
    }
    if (problems.length > 0) {
      console.error(`types/generated is out of date with wit/ (run \`npm run bindings\` in sdk/js):\n  ${problems.join('\n  ')}`);
      return 1;
    }
    console.log(`types/generated matches wit/ (${expected.length} files)`);
    return 0;
  } finally {
    await rm(fresh, { recursive: true, force: true });
  }
}

const mode = process.argv[2];
if (mode === '--check') {
  process.exitCode = await check();
} else if (mode === undefined) {
  await generate(GENERATED);
  console.log(`wrote ${path.relative(process.cwd(), GENERATED) || '.'} (${(await listFiles(GENERATED)).length} files) from ${WIT_DIR}`);
} else {
  console.error('usage: node scripts/bindings.mjs [--check]');
  process.exitCode = 2;
}
