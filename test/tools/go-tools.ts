/**
 * The real engines the tests run, built from the Go module proxy and cached outside the repo
 * (`~/.cache/tekton-kueue-policies/bin`, or `$TKP_TOOLS_DIR`). Each tool's folder name carries a
 * hash of how it is built (its wrapper module's files, packages and flags), so a version bump
 * rebuilds it and nothing else.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const toolsDir = dirname(fileURLToPath(import.meta.url));

export interface GoTool {
  /** Folder name prefix in the cache. */
  readonly name: string;
  /** Binary name → Go package. Built in `module` when set, else with `go install <package>@<version>`. */
  readonly binaries: Readonly<Record<string, string>>;
  /** Wrapper module folder under test/tools (needed when upstream's go.mod has replace directives). */
  readonly module?: string;
  /** Version for `go install` (tools without a wrapper module). */
  readonly version?: string;
  /** Extra `-ldflags`. */
  readonly ldflags?: string;
  /** A rough cold build time on 2 cores, for the progress message. */
  readonly coldMinutes: number;
}

const K8S_VERSION = 'v1.36.3';

/** Versions of the engines the gate runs on (the wrapper modules under test/tools require the same). */
export const ENGINE_VERSIONS = { kyverno: 'v1.19.1', kueue: 'v0.19.2', tekton: 'v1.15.0' } as const;

export const TOOLS = {
  kyvernoCli: { name: 'kyverno-cli', module: 'kyverno', binaries: { kyverno: '.' }, coldMinutes: 8 },
  kyvernoControllers: {
    name: 'kyverno-controllers',
    module: 'kyverno-controllers',
    binaries: {
      'kyverno-admission-controller': 'github.com/kyverno/kyverno/cmd/kyverno',
      'kyverno-background-controller': 'github.com/kyverno/kyverno/cmd/background-controller',
    },
    coldMinutes: 10,
  },
  kubernetes: {
    name: 'kubernetes',
    module: 'kubernetes',
    binaries: {
      'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
      'kube-controller-manager': 'k8s.io/kubernetes/cmd/kube-controller-manager',
      'kube-scheduler': 'k8s.io/kubernetes/cmd/kube-scheduler',
      kubectl: 'k8s.io/kubernetes/cmd/kubectl',
    },
    // Tekton refuses a server without a version.
    ldflags: `-X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36`,
    coldMinutes: 15,
  },
  etcd: { name: 'etcd', module: 'etcd', binaries: { etcd: '.' }, coldMinutes: 3 },
  kueue: { name: 'kueue', module: 'kueue', binaries: { kueue: 'sigs.k8s.io/kueue/cmd/kueue' }, coldMinutes: 6 },
  tekton: {
    name: 'tekton',
    module: 'tekton',
    binaries: {
      controller: 'github.com/tektoncd/pipeline/cmd/controller',
      webhook: 'github.com/tektoncd/pipeline/cmd/webhook',
      resolvers: 'github.com/tektoncd/pipeline/cmd/resolvers',
    },
    coldMinutes: 6,
  },
  kwok: { name: 'kwok', version: 'v0.8.0', binaries: { kwok: 'sigs.k8s.io/kwok/cmd/kwok' }, coldMinutes: 3 },
} as const satisfies Record<string, GoTool>;

/** The engines of the e2e control plane. */
export const E2E_TOOLS: readonly GoTool[] = [TOOLS.etcd, TOOLS.kubernetes, TOOLS.kyvernoControllers, TOOLS.kueue, TOOLS.tekton, TOOLS.kwok];

export function toolCacheDir(): string {
  return process.env.TKP_TOOLS_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tekton-kueue-policies', 'bin');
}

/** The cache folder of a tool: its name and a hash of everything that decides its binaries. */
export function toolDir(tool: GoTool): string {
  const hash = createHash('sha256').update(JSON.stringify([tool.binaries, tool.version, tool.ldflags]));
  if (tool.module) {
    const dir = join(toolsDir, tool.module);
    for (const file of readdirSync(dir).filter((f) => /^(go\.mod|go\.sum|.*\.go)$/.test(f)).sort()) {
      hash.update(file).update(readFileSync(join(dir, file)));
    }
  }
  return join(toolCacheDir(), `${tool.name}-${hash.digest('hex').slice(0, 12)}`);
}

/**
 * Paths of the tool's binaries, building them first when they are not cached. Throws, saying how
 * to get Go, when Go is missing.
 */
export function ensureTool<T extends GoTool>(tool: T, log: (line: string) => void = console.log): Record<keyof T['binaries'], string> {
  const dir = toolDir(tool);
  const paths = Object.fromEntries(Object.keys(tool.binaries).map((b) => [b, join(dir, b)])) as Record<keyof T['binaries'], string>;
  if (existsSync(dir)) return paths;
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error || go.status !== 0) {
    throw new Error(
      `The tests need Go (>= 1.26) to build ${tool.name} from the Go module proxy, and \`go\` was not found on PATH. ` +
        "Install Go (https://go.dev/doc/install, or your distribution's golang package), then run the tests again.",
    );
  }
  mkdirSync(toolCacheDir(), { recursive: true });
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  log(`building ${tool.name} into ${dir} (${go.stdout.trim()}; a cold build takes about ${tool.coldMinutes} minutes on 2 cores)`);
  const started = Date.now();
  const ldflags = `-ldflags=-s -w${tool.ldflags ? ` ${tool.ldflags}` : ''}`;
  for (const [binary, pkg] of Object.entries(tool.binaries)) {
    if (tool.module) {
      execFileSync('go', ['build', '-trimpath', '-buildvcs=false', ldflags, '-o', join(partial, binary), pkg], { cwd: join(toolsDir, tool.module), stdio: 'inherit' });
    } else {
      const gobin = join(partial, '.gobin');
      execFileSync('go', ['install', '-trimpath', ldflags, `${pkg}@${tool.version}`], { env: { ...process.env, GOBIN: gobin }, stdio: 'inherit' });
      renameSync(join(gobin, pkg.split('/').pop()!), join(partial, binary));
      rmSync(gobin, { recursive: true });
    }
  }
  renameSync(partial, dir);
  log(`built ${tool.name} in ${Math.round((Date.now() - started) / 1000)} s`);
  return paths;
}

/** The folder of a module version in the Go module cache (downloaded first when missing). */
export function moduleDir(module: string, version: string): string {
  return (JSON.parse(execFileSync('go', ['mod', 'download', '-json', `${module}@${version}`], { encoding: 'utf8' })) as { Dir: string }).Dir;
}
