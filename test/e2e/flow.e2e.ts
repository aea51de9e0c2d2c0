/**
 * The decisive proof: dist/ on a real control plane (test/e2e/control-plane.ts) with real Kyverno,
 * Kueue and Tekton controllers, and PipelineRuns that really wait, run and give their quota back.
 * `npm run test:e2e`; the log folder is printed at the end (and on failure).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { ControlPlane, FAIL_LABEL, waitFor } from './control-plane.js';

const root = join(import.meta.dirname, '..', '..');
let plane: ControlPlane;

type Condition = { type: string; status: string; reason?: string };
type Obj = { metadata: { name: string; namespace: string; labels?: Record<string, string> }; spec?: any; status?: { conditions?: Condition[] } & Record<string, any> };

function condition(o: Obj | undefined, type: string): Condition | undefined {
  return o?.status?.conditions?.find((c) => c.type === type);
}

/** A sample run from dist/samples, created under a generated name, with changes. */
function sampleRun(namespace: string, change: (run: any) => void = () => {}): string {
  const run = YAML.parse(readFileSync(join(root, 'dist', 'samples', `${namespace}-sample-pipelines-low.yaml`), 'utf8'));
  run.metadata.generateName = 'e2e-';
  delete run.metadata.name;
  change(run);
  return YAML.stringify(run);
}

function pipelineRun(namespace: string, name: string): Obj {
  return plane.getJson('pipelinerun', '-n', namespace, name);
}

function workloads(namespace: string): Obj[] {
  return plane.getJson<{ items: Obj[] }>('workloads', '-n', namespace).items;
}

async function finished(namespace: string, name: string, timeoutMs = 120_000): Promise<Obj> {
  return waitFor(`PipelineRun ${namespace}/${name} to finish`, () => {
    const run = pipelineRun(namespace, name);
    return ['True', 'False'].includes(condition(run, 'Succeeded')?.status ?? '') && run;
  }, timeoutMs);
}

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 3 });
  await plane.installBundle();
}, 15 * 60_000);

afterAll(() => {
  plane?.stop();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

describe('the gate on a real control plane', () => {
  it('queues 6 runs behind a quota of 2 PipelineRuns: never more than 2 run, all finish, quota back to zero', async () => {
    const names = Array.from({ length: 6 }, () => plane.create(sampleRun('ci-team-a')).metadata.name);
    let mostRunning = 0;
    let mostWaiting = 0;
    await waitFor('all 6 runs to finish', () => {
      const pods = plane.getJson<{ items: { metadata: { labels: Record<string, string> }; status: { phase: string } }[] }>('pods', '-n', 'ci-team-a').items;
      const running = new Set(pods.filter((p) => p.status.phase === 'Running').map((p) => p.metadata.labels['tekton.dev/pipelineRun']).filter((n) => names.includes(n!)));
      mostRunning = Math.max(mostRunning, running.size);
      const gates = plane.getJson<{ items: Obj[] }>('customruns', '-n', 'ci-team-a').items.filter((c) => names.includes(c.metadata.labels?.['tekton.dev/pipelineRun'] ?? ''));
      mostWaiting = Math.max(mostWaiting, gates.filter((c) => condition(c, 'Succeeded')?.status !== 'True').length);
      return names.every((n) => ['True', 'False'].includes(condition(pipelineRun('ci-team-a', n), 'Succeeded')?.status ?? ''));
    }, 5 * 60_000, 300);
    expect(mostRunning).toBeLessThanOrEqual(2);
    expect(mostRunning).toBe(2);
    expect(mostWaiting).toBeGreaterThanOrEqual(4);
    for (const n of names) expect(condition(pipelineRun('ci-team-a', n), 'Succeeded')?.status, n).toBe('True');
    for (const w of workloads('ci-team-a').filter((w) => names.includes(w.metadata.labels?.['tekton.dev/pipelineRun'] ?? ''))) {
      expect(condition(w, 'Finished'), w.metadata.name).toMatchObject({ status: 'True', reason: 'Succeeded' });
    }
    await waitFor('ClusterQueue pipelines to hold no quota', () => {
      const cq = plane.getJson<Obj>('clusterqueue', 'pipelines');
      return (cq.status?.reservingWorkloads ?? 0) === 0 && (cq.status?.admittedWorkloads ?? 0) === 0 && cq;
    });
  });

  it('releases the quota of a failing run', async () => {
    const name = plane.create(sampleRun('ci-team-a', (run) => (run.metadata.labels[FAIL_LABEL] = 'true'))).metadata.name;
    const run = await finished('ci-team-a', name);
    expect(condition(run, 'Succeeded')?.status).toBe('False');
    const workload = await waitFor('its Workload to finish', () => workloads('ci-team-a').find((w) => w.metadata.labels?.['tekton.dev/pipelineRun'] === name && condition(w, 'Finished')));
    expect(condition(workload, 'Finished')).toMatchObject({ status: 'True', reason: 'Failed' });
  });

  it('holds a pipelineRef run pending until Kueue admits it, then runs it and releases its quota', async () => {
    plane.apply(`apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: deploy, namespace: ci-team-b}
spec:
  tasks:
    - name: deploy
      taskSpec:
        steps:
          - {name: deploy, image: busybox, script: "echo deploy"}
`);
    const created = plane.create(`apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {generateName: deploy-, namespace: ci-team-b}
spec:
  pipelineRef: {name: deploy}
`) as Obj;
    expect(created.spec.status).toBe('PipelineRunPending');
    expect(created.metadata.labels?.['tekton-kueue-policies.dev/gate']).toBe('pending');
    const name = created.metadata.name;
    const run = await finished('ci-team-b', name);
    expect(condition(run, 'Succeeded')?.status).toBe('True');
    const workload = await waitFor('its Workload to finish', () => workloads('ci-team-b').find((w) => w.metadata.name === name && condition(w, 'Finished')));
    expect(condition(workload, 'Admitted')?.status).toBe('True');
  });

  it('leaves a run in an unmanaged namespace and an opted-out run alone: they start at once', async () => {
    const unmanaged = plane.create(sampleRun('ci-team-a', (run) => (run.metadata.namespace = 'default'))) as Obj;
    const optedOut = plane.create(sampleRun('ci-team-b', (run) => (run.metadata.labels['tekton-kueue-policies.dev/opt-out'] = 'true'))) as Obj;
    for (const run of [unmanaged, optedOut]) {
      expect(run.spec.pipelineSpec.tasks.map((t: { name: string }) => t.name)).not.toContain('kueue-gate');
      expect(run.spec.status).toBeUndefined();
      const done = await finished(run.metadata.namespace, run.metadata.name);
      expect(condition(done, 'Succeeded')?.status).toBe('True');
    }
    expect(workloads('default')).toEqual([]);
    expect(workloads('ci-team-b').filter((w) => w.metadata.labels?.['tekton.dev/pipelineRun'] === optedOut.metadata.name)).toEqual([]);
  });
});
