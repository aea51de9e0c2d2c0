/**
 * The operator commands on a control plane with every engine and no bundle: `diff`, `apply`,
 * `status` and `doctor` as a platform engineer runs them, from the CLI with the plane's kubeconfig.
 * One `apply` installs the bundle into the empty plane (RBAC aggregation and policy readiness waited
 * for, not retried); `status` shows queued runs with their places from Kueue's visibility API;
 * `doctor` finds a deleted policy; `--dry-run=server` stores nothing; `--prune` moves the plane to
 * the CEL dialect and deletes only what the bundle made.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATED_LABEL } from '../../src/gate/names.js';
import { BUNDLE_LABEL } from '../../src/operate/bundle-dir.js';
import type { RunStatus, StatusReport } from '../../src/operate/status.js';
import { ControlPlane, stopAll, synthesize, TASK_DURATION_LABEL } from './control-plane.js';
import type { Obj } from './objects.js';
import { PipelineRunBuilder, WAIT } from './scenario.js';

const CONFIG = join(import.meta.dirname, 'config.yaml');
const CLI = join(import.meta.dirname, '..', '..', 'bin', 'tekton-kueue-policies.mjs');
const CLUSTER_POLICY = { apiVersion: 'kyverno.io/v1', kind: 'ClusterPolicy' };
const MUTATING_POLICY = { apiVersion: 'policies.kyverno.io/v1', kind: 'MutatingPolicy' };
const CLUSTER_ROLE = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole' };
const PIPELINE_RUN = { apiVersion: 'tekton.dev/v1', kind: 'PipelineRun' };
let plane: ControlPlane;
let clusterPolicyBundle: string;
let celBundle: string;

beforeAll(async () => {
  clusterPolicyBundle = synthesize(CONFIG, 'clusterpolicy');
  celBundle = synthesize(CONFIG, 'cel');
  plane = await ControlPlane.start({ taskSeconds: 2 });
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args, '--kubeconfig', plane.kubeconfig], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('on an empty plane', () => {
  it('diff lists every object as new and exits 1', () => {
    const { status, stdout } = cli('diff', clusterPolicyBundle);
    expect(status, stdout).toBe(1);
    expect(stdout).toMatch(/^\+ ClusterPolicy mutate-pipelinerun \(policies\/mutate-pipelinerun\.yaml\)$/m);
    expect(stdout).toMatch(/^\+ LocalQueue e2e-dialect\/runs \(kueue\/queues\.yaml\)$/m);
  });

  it('apply installs the bundle in one call, waiting for aggregation and for every policy Ready', async () => {
    const { status, stdout, stderr } = cli('apply', clusterPolicyBundle);
    expect(status, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout.split('\n').filter(Boolean).map((line) => line.replace(/\(\d+ s\)/, '(N s)'))).toEqual([
      expect.stringMatching(/^namespaces: \d+ objects applied$/),
      expect.stringMatching(/^rbac: \d+ objects applied$/),
      "rbac: the aggregated ClusterRoles have the bundle's permissions (N s)",
      expect.stringMatching(/^kueue: \d+ objects applied$/),
      expect.stringMatching(/^policies: \d+ objects applied$/),
      expect.stringMatching(/^policies: \d+ Ready \(N s\)$/),
      expect.stringMatching(/^guard: \d+ objects applied$/),
    ]);
    const policies = await plane.objects.list(CLUSTER_POLICY);
    expect(policies.map((p) => p.status?.conditions?.find((c) => c.type === 'Ready')?.status)).toEqual(policies.map(() => 'True'));
    // The gate works at once: a run is gated at creation.
    const run = await new PipelineRunBuilder('e2e-dialect', 'after-apply').create(plane);
    expect(run.metadata.labels?.[GATED_LABEL]).toBe('customrun');
  });
});

describe('on the installed plane', () => {
  it('status lists the runs of a namespace: running, waiting with their places and Kueue\'s reason, held by their user', async () => {
    const ns = 'e2e-dialect';
    // Its ClusterQueue runs 2 at a time: of 4 long runs, 2 run and 2 wait.
    const long: string[] = [];
    for (let i = 0; i < 4; i++) long.push((await new PipelineRunBuilder(ns, `queued-${i}`).label(TASK_DURATION_LABEL, '600s').create(plane)).metadata.name);
    const held = (await new PipelineRunBuilder(ns, 'held').pipelineRef('not-yet').userPending().create(plane)).metadata.name;
    const statesOf = (report: StatusReport) => long.map((name) => report.runs.find((r) => r.name === name)).map((r) => (r ? `${r.state}${r.position ? ` ${r.position.localQueue}` : ''}` : 'absent')).sort();
    let report: StatusReport | undefined;
    await expect
      .poll(
        () => {
          const { status, stdout } = cli('status', '-n', ns, '-o', 'json');
          expect(status, stdout).toBe(0);
          report = JSON.parse(stdout) as StatusReport;
          return statesOf(report);
        },
        { timeout: WAIT.step, interval: 1000 },
      )
      .toEqual(['running', 'running', 'waiting 1', 'waiting 2']);
    const first = report!.runs.find((r) => r.state === 'waiting' && r.position?.localQueue === 1)!;
    expect(first).toMatchObject<Partial<RunStatus>>({ queue: 'runs', priority: 'low (100)', position: { localQueue: 1, clusterQueue: 1 } });
    expect(first.message).toMatch(/insufficient unused quota for tekton\.dev\/pipelineruns/);
    expect(report!.runs.find((r) => r.name === held)).toMatchObject({ state: 'held' });
    expect(report!.runs.every((r) => r.namespace === ns)).toBe(true);
    expect(report!.clusterQueues).toEqual([{ name: ns, pending: 2, admitted: 2, resources: [{ name: 'cpu', used: '200m', quota: '4' }, { name: 'tekton.dev/pipelineruns', used: '2', quota: '2' }] }]);
    expect(report!.warnings).toEqual([]);

    const { status, stdout } = cli('status', '-n', ns);
    expect(status, stdout).toBe(0);
    expect(stdout).toMatch(/^NAMESPACE +PIPELINERUN +QUEUE +PRIORITY +STATE +POSITION +WAITED +MESSAGE$/m);
    expect(stdout).toMatch(new RegExp(`^${ns} +${first.name} +runs +low \\(100\\) +waiting +1 \\(cq 1\\) +\\S+ +couldn't assign flavors`, 'm'));
    expect(stdout).toMatch(new RegExp(`^${ns} +2 +2 +cpu 200m/4, tekton.dev/pipelineruns 2/2$`, 'm'));
    for (const name of [...long, held]) await plane.objects.delete(PIPELINE_RUN, ns, name);
  });

  it('doctor exits 0 on the healthy plane', () => {
    const { status, stdout } = cli('doctor', clusterPolicyBundle);
    expect(status, stdout).toBe(0);
    expect(stdout).toMatch(/^ok +policies: \d+ policies Ready$/m);
    expect(stdout).toMatch(/^ok +webhooks: Kyverno's webhook mutates PipelineRuns at creation/m);
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('healthy: no problem found');
  });

  it('doctor exits 1 naming a deleted policy and what it breaks; apply mends it', async () => {
    await plane.objects.delete(CLUSTER_POLICY, undefined, 'ready-workload');
    const { status, stdout } = cli('doctor', clusterPolicyBundle);
    expect(status, stdout).toBe(1);
    expect(stdout).toMatch(/^problem +policies: ClusterPolicy ready-workload is missing$/m);
    expect(stdout).toMatch(/^problem +Kueue configuration: WaitForPodsReady .* policy ready-workload is not Ready/m);
    expect(stdout).toMatch(/^2 problem\(s\) found$/m);
    expect(cli('apply', clusterPolicyBundle).status).toBe(0);
    expect(cli('doctor', clusterPolicyBundle).status).toBe(0);
  });

  it('diff finds nothing to change and exits 0; apply again changes nothing', () => {
    expect(cli('apply', clusterPolicyBundle).status).toBe(0);
    const { status, stdout } = cli('diff', clusterPolicyBundle);
    expect(status, stdout).toBe(0);
    expect(stdout).toBe('');
  });

  it('apply --dry-run=server of the CEL dialect checks every write and stores none', async () => {
    const { status, stdout, stderr } = cli('apply', celBundle, '--dry-run=server', '--prune');
    expect(status, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/^policies: \d+ objects applied \(server dry run\)$/m);
    expect(stdout).toMatch(/^prune: deleted ClusterPolicy mutate-pipelinerun \(server dry run\)$/m);
    expect(await plane.objects.list(MUTATING_POLICY)).toEqual([]);
    expect(await plane.objects.get(CLUSTER_POLICY, undefined, 'mutate-pipelinerun')).toBeDefined();
  });

  it('diff --prune of the CEL dialect lists the new policies and the ClusterPolicies they replace', () => {
    const { status, stdout } = cli('diff', celBundle, '--prune');
    expect(status, stdout).toBe(1);
    expect(stdout).toMatch(/^\+ MutatingPolicy mutate-pipelinerun /m);
    expect(stdout).toMatch(/^- ClusterPolicy mutate-pipelinerun$/m);
    expect(stdout).toMatch(/^\+ GeneratingPolicy generate-workload /m);
    expect(stdout).toMatch(/^- ClusterPolicy generate-workload$/m);
  });

  it('apply --prune moves to the CEL dialect and deletes only objects the bundle made', async () => {
    const foreign: Obj = { apiVersion: CLUSTER_ROLE.apiVersion, kind: CLUSTER_ROLE.kind, metadata: { name: 'not-the-bundles', labels: { team: 'a' } } };
    await plane.objects.create(foreign);
    const { status, stdout, stderr } = cli('apply', celBundle, '--prune');
    expect(status, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/^prune: deleted ClusterPolicy mutate-pipelinerun$/m);
    expect(stdout).toMatch(/^prune: deleted ClusterPolicy validate-pipelinerun$/m);
    expect(await plane.objects.get(CLUSTER_POLICY, undefined, 'mutate-pipelinerun')).toBeUndefined();
    expect((await plane.objects.get(MUTATING_POLICY, undefined, 'mutate-pipelinerun'))?.metadata.labels?.[BUNDLE_LABEL.key]).toBe(BUNDLE_LABEL.value);
    expect(stdout).toMatch(/^prune: deleted ClusterPolicy generate-workload$/m);
    expect(plane.getJson<{ items: Obj[] }>('clusterpolicies').items, 'ClusterPolicies left').toEqual([]);
    expect(await plane.objects.get(CLUSTER_ROLE, undefined, 'not-the-bundles'), 'an object the bundle did not make').toBeDefined();
    expect(cli('diff', celBundle, '--prune').status).toBe(0);
    const doctor = cli('doctor', celBundle);
    expect(doctor.status, doctor.stdout).toBe(0);
  });
});

describe('bad input', () => {
  it('a folder that is no bundle: exit 2, naming the file and the fix', () => {
    const { status, stderr } = cli('apply', plane.logs);
    expect(status).toBe(2);
    expect(stderr).toContain(`${plane.logs}/kustomization.yaml: not found; pass the folder \`npm run synth\` wrote`);
  });

  it('diff with an unknown context: exit 2, naming the contexts there are', () => {
    const { status, stderr } = cli('diff', celBundle, '--context', 'nope');
    expect(status).toBe(2);
    expect(stderr).toMatch(/--context nope: no such context in the kubeconfig; its contexts: \S+/);
  });
});
