/**
 * Tenant namespaces chosen by label (labelled-namespaces.yaml): a namespace gets its LocalQueue and
 * gated runs when it gets the label, also one labelled before the bundle was installed, and loses
 * both with the label; the listed namespace is gated as ever.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATED_LABEL, NAMESPACE } from '../../src/gate/names.js';
import { ControlPlane, stopAll, synthesize } from './control-plane.js';
import { condition, type Obj } from './objects.js';
import { createNamespace, expectQueueEmpty, expectRunFinished, expectWorkload, LOCAL_QUEUE, PipelineRunBuilder, WAIT, workloadOf } from './scenario.js';

const TENANT = 'e2e.example.com/tenant';
const CLUSTER_QUEUE = 'e2e-labelled';

let plane: ControlPlane;

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 3 });
  // Labelled before the bundle: the policy gives it its queue when it is created.
  await createNamespace(plane, 'e2e-early', { [TENANT]: 'true' });
  await plane.installBundle(synthesize(join(import.meta.dirname, 'labelled-namespaces.yaml')));
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

async function expectLocalQueue(namespace: string, present: boolean): Promise<void> {
  await expect
    .poll(async () => (await plane.objects.get(LOCAL_QUEUE, namespace, 'runs'))?.spec.clusterQueue, { timeout: WAIT.step, interval: WAIT.poll, message: `LocalQueue ${namespace}/runs ${present ? 'to appear' : 'to go'}` })
    .toBe(present ? CLUSTER_QUEUE : undefined);
}

/** Two runs on a quota of one: both gated, queued in `runs`, and both succeed. */
async function expectGatedRuns(namespace: string): Promise<void> {
  const runs = [await new PipelineRunBuilder(namespace, 'first').create(plane), await new PipelineRunBuilder(namespace, 'second').create(plane)];
  for (const run of runs) {
    expect(run.metadata.labels?.[GATED_LABEL], run.metadata.name).toBe('customrun');
    expect((await expectWorkload(plane, namespace, run.metadata.name)).spec.queueName).toBe('runs');
  }
  const finished: Obj[] = [];
  for (const run of runs) finished.push(await expectRunFinished(plane, namespace, run.metadata.name));
  for (const run of finished) expect(condition(run, 'Succeeded')?.status, run.metadata.name).toBe('True');
  await expectQueueEmpty(plane, CLUSTER_QUEUE);
}

describe('namespaces chosen by label', () => {
  it('the listed namespace carries the label, keeps its own LocalQueue and gates its runs', async () => {
    expect((await plane.objects.get(NAMESPACE, undefined, 'e2e-listed'))?.metadata.labels?.[TENANT]).toBe('true');
    const queue = await plane.objects.get(LOCAL_QUEUE, 'e2e-listed', 'runs');
    expect(queue?.metadata.labels?.['app.kubernetes.io/managed-by']).not.toBe('kyverno');
    await expectGatedRuns('e2e-listed');
  });

  it('a namespace labelled before the bundle was installed has its LocalQueue, and its runs are gated', async () => {
    await expectLocalQueue('e2e-early', true);
    await expectGatedRuns('e2e-early');
  });

  it('a namespace that gets the label gets its LocalQueue and gated runs; once it loses the label, its queue is gone and its runs start ungated', async () => {
    const ns = 'e2e-tenant';
    await createNamespace(plane, ns);
    const before = await new PipelineRunBuilder(ns, 'unlabelled').create(plane);
    expect(before.metadata.labels?.[GATED_LABEL]).toBeUndefined();

    await plane.objects.patch(NAMESPACE, undefined, ns, { metadata: { labels: { [TENANT]: 'true' } } });
    await expectLocalQueue(ns, true);
    await expectGatedRuns(ns);

    await plane.objects.patch(NAMESPACE, undefined, ns, { metadata: { labels: { [TENANT]: null } } });
    await expectLocalQueue(ns, false);
    const after = await new PipelineRunBuilder(ns, 'unlabelled-again').create(plane);
    expect(after.metadata.labels?.[GATED_LABEL]).toBeUndefined();
    expect(after.spec.pipelineSpec.tasks.map((t: { name: string }) => t.name)).toEqual(['build', 'test']);
    for (const run of [before, after]) {
      const succeeded = condition(await expectRunFinished(plane, ns, run.metadata.name), 'Succeeded');
      expect(succeeded?.status, `${run.metadata.name}: ${succeeded?.reason} ${succeeded?.message}`).toBe('True');
    }
    expect(await workloadOf(plane, ns, after.metadata.name)).toBeUndefined();
  });
});
