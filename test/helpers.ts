import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import YAML from 'yaml';
import { parseConfig } from '../src/config/load.js';

export const root = join(import.meta.dirname, '..');
export const cliPath = join(root, 'bin', 'tekton-kueue-policies.mjs');

/** Runs the CLI as a user would. */
export function cli(args: string[], cwd = root) {
  const run = spawnSync(process.execPath, [cliPath, ...args], { cwd, encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `tkp-${prefix}-`));
}

/** The example config `file` of policies/examples in `dialect`, written to a temp folder: its path. */
export function exampleConfig(file: string, dialect: string): string {
  const path = join(tempDir('example-config'), file);
  writeFileSync(path, YAML.stringify({ ...YAML.parse(readFileSync(join(root, 'policies', 'examples', file), 'utf8')), dialect }));
  return path;
}

/** The default config as an object, to derive variants from. */
export function defaultConfigObject(): Record<string, unknown> {
  return YAML.parse(readFileSync(join(root, 'policies', 'config.yaml'), 'utf8'));
}

export function defaultConfig() {
  return parseConfig(defaultConfigObject(), 'policies/config.yaml');
}

/** Every file under `dir` as relative path → content. */
export function readTree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else files.set(relative(dir, path), readFileSync(path, 'utf8'));
    }
  };
  walk(dir);
  return files;
}

export function copyOfDist(): string {
  const dir = tempDir('dist');
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  return join(dir, 'dist');
}
