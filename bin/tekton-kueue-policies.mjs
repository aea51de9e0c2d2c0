#!/usr/bin/env node
// Runs the CLI from one precompiled bundle: no ts-node at run time. The bundle is rebuilt with
// esbuild only when a source file is newer than it (~0.3 s, once per change), and V8's code cache
// for it is kept beside it, so a warm run compiles next to nothing (see README, "Benchmark").
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const cacheDir = join(root, 'node_modules', '.cache', 'tekton-kueue-policies');
const bundle = join(cacheDir, 'cli.cjs');
const codeCache = `${bundle}.v8-${process.version}`;
const sources = ['src', 'policies', 'imports'].map((dir) => join(root, dir));

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

if (!existsSync(bundle) || Math.max(...sources.map(newestSource)) > statSync(bundle).mtimeMs) {
  const { build } = await import('esbuild');
  mkdirSync(cacheDir, { recursive: true });
  rmSync(codeCache, { force: true });
  // Built beside and renamed into place: parallel runs never read a half-written bundle.
  const partial = `${bundle}.${process.pid}`;
  await build({
    entryPoints: [join(root, 'policies', 'cli.ts')],
    outfile: partial,
    bundle: true,
    platform: 'node',
    // CommonJS, so V8 can cache the compiled script (vm.Script cachedData); ES modules cannot on Node 20.
    format: 'cjs',
    target: 'node20',
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'warning',
  });
  renameSync(partial, bundle);
}

const cachedData = existsSync(codeCache) ? readFileSync(codeCache) : undefined;
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${readFileSync(bundle, 'utf8')}\n})`, {
  filename: bundle,
  cachedData,
});
const module = { exports: {} };
script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, cacheDir);
process.exitCode = await module.exports.main(process.argv.slice(2), root, cacheDir);
if (cachedData === undefined || script.cachedDataRejected) {
  // Taken after a run, the cache also holds the functions that run compiled.
  writeFileSync(`${codeCache}.${process.pid}`, script.createCachedData());
  renameSync(`${codeCache}.${process.pid}`, codeCache);
}
