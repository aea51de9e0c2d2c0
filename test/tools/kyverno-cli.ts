/**
 * The real Kyverno CLI, built from the Go module proxy through the wrapper module beside this
 * file and cached outside the repo under a name that carries the pinned version and a hash of
 * the wrapper, so a version bump rebuilds it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const wrapper = join(dirname(fileURLToPath(import.meta.url)), 'kyverno');

export function toolCacheDir(): string {
  return process.env.TKP_TOOLS_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tekton-kueue-policies', 'bin');
}

export function kyvernoCliPath(): string {
  const goMod = readFileSync(join(wrapper, 'go.mod'), 'utf8');
  const version = /github\.com\/kyverno\/kyverno (v\S+)/.exec(goMod)?.[1];
  if (!version) throw new Error(`${wrapper}/go.mod does not require github.com/kyverno/kyverno`);
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'main.go']) hash.update(readFileSync(join(wrapper, file)));
  return join(toolCacheDir(), `kyverno-${version}-${hash.digest('hex').slice(0, 12)}`);
}

/** Returns the CLI's path, building it first when it is not cached. Throws with the fix when Go is missing. */
export function ensureKyvernoCli(log: (line: string) => void = console.log): string {
  const binary = kyvernoCliPath();
  if (existsSync(binary)) return binary;
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error || go.status !== 0) {
    throw new Error(
      'The Kyverno CLI tests need Go (>= 1.26, see test/tools/kyverno/go.mod) to build the Kyverno CLI from the Go module proxy, ' +
        'and `go` was not found on PATH. Install Go (https://go.dev/doc/install, or your distribution\'s golang package), then run `npm test` again.',
    );
  }
  mkdirSync(dirname(binary), { recursive: true });
  log(`building the Kyverno CLI into ${binary} (${go.stdout.trim()}; a cold build takes about 8 minutes on 2 cores)`);
  const started = Date.now();
  const partial = `${binary}.partial-${process.pid}`;
  execFileSync('go', ['build', '-trimpath', '-buildvcs=false', '-ldflags=-s -w', '-o', partial, '.'], { cwd: wrapper, stdio: 'inherit' });
  renameSync(partial, binary);
  log(`built the Kyverno CLI in ${Math.round((Date.now() - started) / 1000)} s`);
  return binary;
}
