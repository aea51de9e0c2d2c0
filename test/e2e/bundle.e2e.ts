/**
 * The shipped bundle, dist/ as a GitOps repo applies it, on the whole control plane: its samples
 * apply as the demo applies them and run, and runs queue behind the quota of its ClusterQueue.
 * The other themes run on a bundle of their own config (config.yaml), a namespace per scenario.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { CUSTOM_RUN, GATE_TASK, PIPELINE_RUN_LABEL } from '../../src/gate/names.js';
import { ControlPlane, stopAll } from './control-plane.js';
import { condition, type Obj, POD } from './objects.js';
import { expectQueueEmpty, expectRunFinished, expectWorkloadFinished, pipelineRun, WAIT } from './scenario.js';

const root = join(import.meta.dirname, '..', '..');
let plane: ControlPlane;

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 3 });
  await plane.installBundle();
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

/** A sample run of dist/samples. */
function sample(file: string): Obj {
  return YAML.parse(readFileSync(join(root, 'dist', 'samples', file), 'utf8'));
}

describe('dist/ as shipped', () => {
  it('the samples apply as the demo applies them: each is gated, ends, and the queues are empty after', async () => {
    plane.kubectl('apply', '-k', join(root, 'dist', 'samples'));
    const samples = (YAML.parse(readFileSync(join(root, 'dist', 'samples', 'kustomization.yaml'), 'utf8')) as { resources: string[] }).resources.map(sample);
    for (const { metadata: { namespace, name } } of samples) {
      const run = (await pipelineRun(plane, namespace!, name))!;
      expect(run.spec.pipelineSpec.tasks[0].name, name).toBe(GATE_TASK);
      const done = await expectRunFinished(plane, namespace!, name, WAIT.drain);
      // A low-priority sample may be preempted by a high one of its ClusterQueue: it is stopped.
      if (!name.endsWith('-low')) expect(condition(done, 'Succeeded')?.status, `${namespace}/${name}`).toBe('True');
    }
    for (const clusterQueue of ['pipelines', 'releases']) await expectQueueEmpty(plane, clusterQueue);
  });

  it('queues 6 runs behind the quota of 2 PipelineRuns of ClusterQueue pipelines: never more than 2 run, all finish, the quota back to zero', async () => {
    const ns = 'ci-team-a';
    const names: string[] = [];
    for (let i = 0; i < 6; i++) {
      const run = sample(`${ns}-sample-pipelines-low.yaml`);
      run.metadata = { ...run.metadata, name: '', generateName: 'queued-' };
      names.push((await plane.objects.create(run)).metadata.name);
    }
    let mostRunning = 0;
    let mostWaiting = 0;
    await expect
      .poll(async () => {
        // One list each: a consistent count, never two reads of the same run apart in time.
        const pods = await plane.objects.list(POD, ns);
        const running = new Set(pods.filter((p) => p.status?.phase === 'Running').map((p) => p.metadata.labels?.[PIPELINE_RUN_LABEL]).filter((n) => names.includes(n!)));
        mostRunning = Math.max(mostRunning, running.size);
        const gates = (await plane.objects.list(CUSTOM_RUN, ns)).filter((g) => names.includes(g.metadata.labels?.[PIPELINE_RUN_LABEL] ?? ''));
        mostWaiting = Math.max(mostWaiting, gates.filter((g) => condition(g, 'Succeeded')?.status !== 'True').length);
        const runs = await Promise.all(names.map((n) => pipelineRun(plane, ns, n)));
        return runs.every((r) => condition(r, 'Succeeded')?.status === 'True');
      }, { timeout: WAIT.drain, interval: 300, message: 'all 6 runs to succeed' })
      .toBe(true);
    expect(mostRunning).toBe(2);
    expect(mostWaiting).toBeGreaterThanOrEqual(4);
    for (const name of names) await expectWorkloadFinished(plane, ns, name, 'Succeeded');
    await expectQueueEmpty(plane, 'pipelines');
  });
});
