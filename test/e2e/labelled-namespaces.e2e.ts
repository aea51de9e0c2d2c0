/**
 * Tenant namespaces chosen by label (labelled-namespaces.yaml): a namespace gets its LocalQueue and
 * gated runs when it gets the label, also one labelled before the bundle was installed, keeps the
 * queue through Kyverno's re-apply and a move to the other dialect, and loses both with the label;
 * the listed namespace is gated as ever.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { GATED_LABEL, NAMESPACE } from '../../src/gate/names.js';
import { ControlPlane, stopAll, synthesize } from './control-plane.js';
import { condition, type Obj } from './objects.js';
import { createNamespace, expectQueueEmpty, expectRunFinished, expectWorkload, LOCAL_QUEUE, PipelineRunBuilder, WAIT, workloadOf } from './scenario.js';

const TENANT = 'e2e.example.com/tenant';
const CLUSTER_QUEUE = 'e2e-labelled';
const REAPPLY_SECONDS = 10;
/** Kyverno acts on a deleted policy in the background, within seconds. */
const POLICY_DELETION_SECONDS = 15;
const CONFIG = join(import.meta.dirname, 'labelled-namespaces.yaml');

let plane: ControlPlane;
let bundle: string;

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 3, reapplyInterval: `${REAPPLY_SECONDS}s` });
  // Labelled before the bundle: the policy gives it its queue when it is created.
  await createNamespace(plane, 'e2e-early', { [TENANT]: 'true' });
  bundle = synthesize(CONFIG);
  await plane.installBundle(bundle);
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

  // Kyverno 1.19.0 deleted and made again what a synchronized GeneratingPolicy had generated at
  // each re-apply (kyverno/kyverno#17594): Workloads would lose their queue for a moment, every hour.
  it("keeps a namespace's LocalQueue, the same object, through Kyverno's re-apply and an update of the namespace", async () => {
    await expectLocalQueue('e2e-early', true);
    const uid = (await plane.objects.get(LOCAL_QUEUE, 'e2e-early', 'runs'))!.metadata.uid;
    await plane.objects.patch(NAMESPACE, undefined, 'e2e-early', { metadata: { annotations: { 'e2e.example.com/touched': 'true' } } });
    await new Promise((r) => setTimeout(r, 2.5 * REAPPLY_SECONDS * 1000));
    expect((await plane.objects.get(LOCAL_QUEUE, 'e2e-early', 'runs'))?.metadata.uid).toBe(uid);
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

  // README, "Moving a live cluster from one dialect to the other": the other dialect's bundle is
  // applied, then the old policies are pruned.
  it("moves to the other dialect with its queues: the new policy takes them over, the old one's prune leaves them", async () => {
    const uid = (await plane.objects.get(LOCAL_QUEUE, 'e2e-early', 'runs'))!.metadata.uid;
    const other = synthesize(CONFIG, process.env.E2E_DIALECT === 'cel' ? 'clusterpolicy' : 'cel');
    const kindIn = (dist: string) => (YAML.parse(readFileSync(join(dist, 'policies', 'generate-localqueues.yaml'), 'utf8')) as { kind: string }).kind;
    expect(kindIn(other)).not.toBe(kindIn(bundle));
    await plane.installBundle(other);
    await plane.installBundle(other, { prune: true });
    await new Promise((r) => setTimeout(r, POLICY_DELETION_SECONDS * 1000));
    expect((await plane.objects.get(LOCAL_QUEUE, 'e2e-early', 'runs'))?.metadata.uid).toBe(uid);
    // Only the policy that took the queue over can take it back.
    await plane.objects.patch(NAMESPACE, undefined, 'e2e-early', { metadata: { labels: { [TENANT]: null } } });
    await expectLocalQueue('e2e-early', false);
  });
});
