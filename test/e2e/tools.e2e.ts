/**
 * The engines of the offline control plane: each is built from the Go module proxy into the tool
 * cache, and each binary must start and say what it is (part of `npm run test:e2e`).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { E2E_TOOLS, ensureTool } from '../tools/go-tools.js';

/** Arguments that make each binary print its usage or version and exit 0. */
const probes: Record<string, { args: string[]; says: RegExp }> = {
  'kube-apiserver': { args: ['--version'], says: /Kubernetes v1\.36\.3/ },
  'kube-controller-manager': { args: ['--version'], says: /Kubernetes v1\.36\.3/ },
  'kube-scheduler': { args: ['--version'], says: /Kubernetes v1\.36\.3/ },
  kubectl: { args: ['version', '--client'], says: /Client Version: v1\.36\.3/ },
  etcd: { args: ['--version'], says: /etcd Version: 3\.6\.16/ },
  'kyverno-admission-controller': { args: ['--help'], says: /serverIP/ },
  'kyverno-background-controller': { args: ['--help'], says: /Usage/ },
  kueue: { args: ['--help'], says: /config/ },
  controller: { args: ['--help'], says: /entrypoint-image/ },
  // Tekton's webhook reads its namespace before its flags.
  webhook: { args: ['--help'], says: /SYSTEM_NAMESPACE/ },
  resolvers: { args: ['--help'], says: /kubeconfig/ },
  kwok: { args: ['--version'], says: /v0\.8\.0/ },
};

describe.each(E2E_TOOLS.map((tool) => [tool.name, tool] as const))('%s', (_, tool) => {
  it('builds from the Go module proxy and starts', () => {
    for (const [binary, path] of Object.entries(ensureTool(tool))) {
      const probe = probes[binary]!;
      const run = spawnSync(path, probe.args, { encoding: 'utf8', timeout: 60_000 });
      expect(`${run.stdout}${run.stderr}`, `${binary} ${probe.args.join(' ')}`).toMatch(probe.says);
    }
  });
});
