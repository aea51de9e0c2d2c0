/**
 * The decisive proof: dist/ on a real control plane (test/e2e/control-plane.ts) with real Kyverno,
 * Kueue and Tekton controllers, and PipelineRuns that really wait, run and give their quota back.
 * `npm run test:e2e`; the log folder is printed at the end (and on failure).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { ControlPlane, FAIL_LABEL, stopAll, waitFor } from './control-plane.js';
import { expectStays } from './scenario.js';

const root = join(import.meta.dirname, '..', '..');
let plane: ControlPlane;

type Condition = { type: string; status: string; reason?: string };
type Obj = { metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; status?: { conditions?: Condition[] } & Record<string, any> };

function condition(o: Obj | undefined, type: string): Condition | undefined {
  return o?.status?.conditions?.find((c) => c.type === type);
}

/** A sample run from dist/samples, created under a generated name, with changes. */
function sampleRun(namespace: string, change: (run: any) => void = () => {}, sample = 'pipelines-low'): string {
  const run = YAML.parse(readFileSync(join(root, 'dist', 'samples', `${namespace}-sample-${sample}.yaml`), 'utf8'));
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

/** The gate CustomRun of a customrun-gated run, once Tekton made it. */
function gate(namespace: string, run: string): Obj | undefined {
  return plane.getJson<{ items: Obj[] }>('customruns', '-n', namespace).items.find((c) => c.metadata.labels?.['tekton.dev/pipelineRun'] === run);
}

function gateOpen(namespace: string, run: string): boolean {
  return condition(gate(namespace, run), 'Succeeded')?.status === 'True';
}

function workloadOf(namespace: string, run: string): Obj | undefined {
  return workloads(namespace).find((w) => w.metadata.labels?.['tekton.dev/pipelineRun'] === run);
}

/** Creates `count` runs and waits until their gates are open, so they hold the queue's quota. */
async function occupy(namespace: string, count: number, sample = 'pipelines-low', change: (run: any) => void = () => {}): Promise<string[]> {
  const names = Array.from({ length: count }, () => plane.create(sampleRun(namespace, change, sample)).metadata.name);
  await waitFor(`${count} runs past the gate`, () => names.every((n) => gateOpen(namespace, n)));
  return names;
}

/** Longer tasks for runs that must hold their quota while a scenario plays out. */
const slow = (run: any) => run.spec.pipelineSpec.tasks.push({ name: 'hold', runAfter: ['test'], taskSpec: { steps: [{ name: 'hold', image: 'busybox', script: 'sleep 1' }] } });

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 3 });
  await plane.installBundle();
});

afterAll(() => {
  stopAll();
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

  it('releases a queued run that is cancelled, and garbage-collects the Workload of a queued run that is deleted', async () => {
    const holders = await occupy('ci-team-a', 2, 'pipelines-low', slow);
    const cancelled = plane.create(sampleRun('ci-team-a')).metadata.name;
    const deleted = plane.create(sampleRun('ci-team-a')).metadata.name;
    await waitFor('both queued runs to have a Workload', () => workloadOf('ci-team-a', cancelled) && workloadOf('ci-team-a', deleted));
    expect(gateOpen('ci-team-a', cancelled)).toBe(false);
    plane.kubectl('patch', 'pipelinerun', '-n', 'ci-team-a', cancelled, '--type=merge', '-p', '{"spec":{"status":"Cancelled"}}');
    plane.kubectl('delete', 'pipelinerun', '-n', 'ci-team-a', deleted, '--wait=false');
    const run = await finished('ci-team-a', cancelled);
    expect(condition(run, 'Succeeded')?.reason).toBe('Cancelled');
    await waitFor('the cancelled run\'s Workload to finish', () => condition(workloadOf('ci-team-a', cancelled), 'Finished')?.status === 'True');
    await waitFor('the deleted run\'s Workload to be garbage-collected', () => !workloadOf('ci-team-a', deleted));
    for (const n of holders) await finished('ci-team-a', n);
  });

  it('releases the quota of a run that times out while it waits (customrun: queue time counts)', async () => {
    const holders = await occupy('ci-team-a', 2, 'pipelines-low', slow);
    const name = plane.create(sampleRun('ci-team-a', (run) => (run.spec.timeouts = { pipeline: '4s' }))).metadata.name;
    const run = await finished('ci-team-a', name);
    expect(condition(run, 'Succeeded')).toMatchObject({ status: 'False', reason: 'PipelineRunTimeout' });
    await waitFor('its Workload to finish', () => condition(workloadOf('ci-team-a', name), 'Finished')?.status === 'True');
    for (const n of holders) await finished('ci-team-a', n);
  });

  it('admits a high-priority run submitted last before the queued low-priority ones', async () => {
    // The releases queue runs one run at a time and does not preempt.
    const [holder] = await occupy('ci-team-a', 1, 'releases-low', slow);
    const low = [plane.create(sampleRun('ci-team-a', () => {}, 'releases-low')).metadata.name, plane.create(sampleRun('ci-team-a', () => {}, 'releases-low')).metadata.name];
    await waitFor('the low runs to be queued', () => low.every((n) => workloadOf('ci-team-a', n)));
    const high = plane.create(sampleRun('ci-team-a', () => {}, 'releases-high')).metadata.name;
    await waitFor('the high run to be queued', () => workloadOf('ci-team-a', high));
    await finished('ci-team-a', holder!);
    await waitFor('the next run past the gate', () => [high, ...low].some((n) => gateOpen('ci-team-a', n)), 60_000, 200);
    expect(gateOpen('ci-team-a', high)).toBe(true);
    expect(low.filter((n) => gateOpen('ci-team-a', n))).toEqual([]);
    for (const n of [high, ...low]) await finished('ci-team-a', n);
  });

  it('lets a high-priority run preempt a running low-priority one, which is stopped and gives its quota back', async () => {
    const lows = await occupy('ci-team-b', 2, 'pipelines-low', slow);
    const high = plane.create(sampleRun('ci-team-b', () => {}, 'pipelines-high')).metadata.name;
    const evicted = await waitFor('a low run to be evicted', () => lows.find((n) => condition(workloadOf('ci-team-b', n), 'Evicted')?.status === 'True'));
    await waitFor('the evicted run to be stopped', () => pipelineRun('ci-team-b', evicted).spec.status === 'StoppedRunFinally');
    const stopped = await finished('ci-team-b', evicted);
    expect(condition(stopped, 'Succeeded')?.status).toBe('False');
    const done = await finished('ci-team-b', high);
    expect(condition(done, 'Succeeded')?.status).toBe('True');
    await waitFor('the evicted run\'s Workload to finish', () => condition(workloadOf('ci-team-b', evicted), 'Finished')?.status === 'True');
    for (const n of lows) await finished('ci-team-b', n);
    await waitFor('ClusterQueue pipelines to hold no quota', () => {
      const cq = plane.getJson<Obj>('clusterqueue', 'pipelines');
      return (cq.status?.reservingWorkloads ?? 0) === 0 && cq;
    });
  });

  it('does not queue a run its user created pending until they release it; then it waits for Kueue and runs', async () => {
    const created = plane.create(`apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {generateName: held-, namespace: ci-team-b}
spec:
  status: PipelineRunPending
  pipelineRef: {name: deploy}
`) as Obj;
    const name = created.metadata.name;
    expect(created.metadata.labels?.['tekton-kueue-policies.dev/gate']).toBe('pending');
    await expectStays('no Workload while its user holds it', async () => !workloads('ci-team-b').some((w) => w.metadata.name === name), 3000);
    // The user's release becomes the gate's hold: still pending (as the API server stored it; the
    // gate may release it a moment later), now queued.
    const held = JSON.parse(plane.kubectl('patch', 'pipelinerun', '-n', 'ci-team-b', name, '--type=json', '-p', '[{"op":"remove","path":"/spec/status"}]', '-o', 'json')) as Obj;
    expect(held.spec.status).toBe('PipelineRunPending');
    expect(held.metadata.annotations?.['tekton-kueue-policies.dev/pending-set-by-gate']).toBe('true');
    const run = await finished('ci-team-b', name);
    expect(condition(run, 'Succeeded')?.status).toBe('True');
    await waitFor('its Workload to finish', () => condition(workloads('ci-team-b').find((w) => w.metadata.name === name), 'Finished')?.status === 'True');
  });

  it('holds a run resolved by the cluster resolver pending, then runs it', async () => {
    const created = plane.create(`apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {generateName: resolved-, namespace: ci-team-b}
spec:
  pipelineRef:
    resolver: cluster
    params:
      - {name: kind, value: pipeline}
      - {name: name, value: deploy}
      - {name: namespace, value: ci-team-b}
`) as Obj;
    expect(created.spec.status).toBe('PipelineRunPending');
    const run = await finished('ci-team-b', created.metadata.name);
    expect(condition(run, 'Succeeded')?.status).toBe('True');
    await waitFor('its Workload to finish', () => condition(workloads('ci-team-b').find((w) => w.metadata.name === created.metadata.name), 'Finished')?.status === 'True');
  });
});

