/**
 * Runs in a queue, on the whole control plane: each gives its quota back however it ends (fails,
 * is cancelled, deleted or times out while it waits), the next admitted is the one of highest
 * priority, and a run outside the managed namespaces is left alone. Each scenario has a namespace
 * and a ClusterQueue of one run of its own (config.yaml).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATE_TASK, PIPELINE_RUN, WORKLOAD } from '../../src/gate/names.js';
import { ControlPlane, stopAll, synthesize } from './control-plane.js';
import { condition } from './objects.js';
import {
  expectGatesOpen,
  expectQueueEmpty,
  expectRunFinished,
  expectWorkload,
  expectWorkloadCondition,
  expectWorkloadFinished,
  gateOpen,
  PipelineRunBuilder,
  WAIT,
  workloadOf,
} from './scenario.js';

let plane: ControlPlane;

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 3 });
  await plane.installBundle(synthesize(join(import.meta.dirname, 'config.yaml')));
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

/** A run that holds its queue's one run of quota for a while; returns its name once its gate is open. */
async function occupy(namespace: string): Promise<string> {
  const holder = (await new PipelineRunBuilder(namespace, 'holder').taskDuration('15s').create(plane)).metadata.name;
  await expectGatesOpen(plane, namespace, [holder]);
  return holder;
}

describe('every run gives its quota back', () => {
  it('a failing run: its Workload finishes Failed', async () => {
    const ns = 'e2e-failing';
    const name = (await new PipelineRunBuilder(ns, 'failing').failing().create(plane)).metadata.name;
    expect(condition(await expectRunFinished(plane, ns, name), 'Succeeded')?.status).toBe('False');
    await expectWorkloadFinished(plane, ns, name, 'Failed');
    await expectQueueEmpty(plane, 'e2e-failing');
  });

  it('a run cancelled while it waits ends Cancelled with its Workload finished; a run deleted while it waits has its Workload collected', async () => {
    const ns = 'e2e-cancel';
    const holder = await occupy(ns);
    const cancelled = (await new PipelineRunBuilder(ns, 'cancelled').create(plane)).metadata.name;
    const deleted = (await new PipelineRunBuilder(ns, 'deleted').create(plane)).metadata.name;
    await expectWorkload(plane, ns, cancelled);
    await expectWorkload(plane, ns, deleted);
    expect(await gateOpen(plane, ns, cancelled)).toBe(false);

    await plane.objects.patch(PIPELINE_RUN, ns, cancelled, { spec: { status: 'Cancelled' } });
    await plane.objects.delete(PIPELINE_RUN, ns, deleted);
    expect(condition(await expectRunFinished(plane, ns, cancelled), 'Succeeded')?.reason).toBe('Cancelled');
    await expectWorkloadCondition(plane, ns, cancelled, 'Finished');
    await expect.poll(() => workloadOf(plane, ns, deleted), { timeout: WAIT.step, interval: WAIT.poll, message: `the Workload of ${deleted} to be garbage-collected` }).toBeUndefined();

    await expectRunFinished(plane, ns, holder);
    await expectQueueEmpty(plane, 'e2e-cancel');
  });

  it('a run that times out while it waits (customrun: queue time counts against its timeout)', async () => {
    const ns = 'e2e-timeout';
    const holder = await occupy(ns);
    const name = (await new PipelineRunBuilder(ns, 'timeout').timeout('4s').create(plane)).metadata.name;
    expect(condition(await expectRunFinished(plane, ns, name), 'Succeeded')).toMatchObject({ status: 'False', reason: 'PipelineRunTimeout' });
    await expectWorkloadCondition(plane, ns, name, 'Finished');
    await expectRunFinished(plane, ns, holder);
    await expectQueueEmpty(plane, 'e2e-timeout');
  });
});

describe('priority', () => {
  it('a high-priority run submitted last is admitted before the low-priority runs queued before it', async () => {
    const ns = 'e2e-priority';
    const holder = await occupy(ns);
    const low: string[] = [];
    for (const prefix of ['low-1', 'low-2']) low.push((await new PipelineRunBuilder(ns, prefix).priority('low').create(plane)).metadata.name);
    for (const run of low) await expectWorkload(plane, ns, run);
    const high = (await new PipelineRunBuilder(ns, 'high').priority('high').create(plane)).metadata.name;
    await expectWorkload(plane, ns, high);

    await expectRunFinished(plane, ns, holder);
    await expect
      .poll(async () => (await Promise.all([high, ...low].map((run) => gateOpen(plane, ns, run)))).some(Boolean), { timeout: WAIT.step, interval: 200, message: 'the next run past the gate' })
      .toBe(true);
    expect(await gateOpen(plane, ns, high)).toBe(true);
    for (const run of low) expect(await gateOpen(plane, ns, run), run).toBe(false);
    for (const run of [high, ...low]) await expectRunFinished(plane, ns, run);
  });
});

describe('what the gate leaves alone', () => {
  it('a run in a namespace the bundle does not manage starts at once, without a gate or a Workload', async () => {
    const ns = 'e2e-unmanaged';
    plane.apply(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n`);
    const run = await new PipelineRunBuilder(ns, 'unmanaged').create(plane);
    expect(run.spec.pipelineSpec.tasks.map((t: { name: string }) => t.name)).not.toContain(GATE_TASK);
    expect(run.spec.status).toBeUndefined();
    expect(condition(await expectRunFinished(plane, ns, run.metadata.name), 'Succeeded')?.status).toBe('True');
    expect(await plane.objects.list(WORKLOAD, ns)).toEqual([]);
  });
});
