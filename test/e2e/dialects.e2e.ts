/**
 * Moving a live cluster from the ClusterPolicy dialect to the CEL one, as GitOps does it: the CEL
 * dialect's policies are applied beside the ClusterPolicies, then the ClusterPolicies they replace
 * are pruned. Runs created at each stage are gated exactly once (both dialects' policies running at
 * once leave one gate), a run the gate cannot queue is refused by each, and every run ends with its
 * quota back.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GATE_TASK, GATED_LABEL, HELD_BY_GATE, PENDING_STATUS } from '../../src/gate/names.js';
import { ControlPlane, stopAll, synthesize, waitFor } from './control-plane.js';
import { condition, type Obj } from './objects.js';
import { applyDeployPipeline, expectQueueEmpty, expectRunFinished, PipelineRunBuilder, WAIT } from './scenario.js';

const ns = 'e2e-dialect';
const CONFIG = join(import.meta.dirname, 'config.yaml');
let plane: ControlPlane;

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 2 });
  await plane.installBundle(synthesize(CONFIG, 'clusterpolicy'));
  applyDeployPipeline(plane, ns);
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

/** An inline run and a `pipelineRef` run, created now: each gated once, by its mechanism. */
async function expectGatedOnce(): Promise<string[]> {
  const inline = await new PipelineRunBuilder(ns, 'inline').create(plane);
  const ref = await new PipelineRunBuilder(ns, 'ref').pipelineRef('deploy').create(plane);
  const tasks = (inline.spec.pipelineSpec as { tasks: { name: string; runAfter?: string[] }[] }).tasks;
  expect(tasks.filter((t) => t.name === GATE_TASK), 'gate tasks of the inline run').toHaveLength(1);
  expect(tasks.filter((t) => t.name !== GATE_TASK).every((t) => t.runAfter?.filter((r) => r === GATE_TASK).length === 1), 'each task waits for the gate once').toBe(true);
  expect(inline.metadata.labels?.[GATED_LABEL]).toBe('customrun');
  expect(ref.spec.status).toBe(PENDING_STATUS);
  expect(ref.metadata.annotations?.[HELD_BY_GATE.key]).toBe(HELD_BY_GATE.value);
  expect(ref.metadata.labels?.[GATED_LABEL]).toBe('pending');
  return [inline.metadata.name, ref.metadata.name];
}

/** A run naming a queue that does not exist is refused at creation, with the label named. */
function expectRefused(): void {
  const { ok, stderr } = plane.tryKubectl(['create', '-f', '-'], JSON.stringify(new PipelineRunBuilder(ns, 'lost').queue('nightly').build()));
  expect(ok, 'a run in an unknown queue created').toBe(false);
  expect(stderr).toContain('queue "nightly" (label kueue.x-k8s.io/queue-name, or the default of the namespace) is no LocalQueue of namespace e2e-dialect');
}

async function expectAllSucceed(runs: readonly string[]): Promise<void> {
  for (const run of runs) expect(condition(await expectRunFinished(plane, ns, run), 'Succeeded')?.status, run).toBe('True');
}

function celPolicies(): Obj[] {
  return plane.getJson<{ items: Obj[] }>('mutatingpolicies.policies.kyverno.io,validatingpolicies.policies.kyverno.io,generatingpolicies.policies.kyverno.io').items;
}

it('ClusterPolicies, then both dialects side by side, then CEL policies alone: every run gated once, bad input refused, quota back', async () => {
  const runs = await expectGatedOnce();
  expectRefused();

  // The CEL dialect's bundle applied without prune (`apply` waits until its policies are Ready):
  // they join the ClusterPolicies of the same steps.
  const cel = synthesize(CONFIG, 'cel');
  await plane.installBundle(cel);
  expect(celPolicies().map((p) => p.metadata.name).sort()).toEqual([
    'admit-customrun',
    'admit-customrun-reapply',
    'admit-pipelinerun',
    'admit-pipelinerun-reapply',
    'cancel-customrun',
    'cancel-customrun-reapply',
    'evict-pipelinerun',
    'evict-pipelinerun-reapply',
    'generate-workload',
    'generate-workload-reapply',
    'mutate-pipelinerun',
    'ready-workload',
    'ready-workload-reapply',
    'release-workload',
    'release-workload-reapply',
    'requeue-workload',
    'requeue-workload-reapply',
    'validate-pipelinerun',
    'validate-pipelinerun-known-priority',
  ]);
  runs.push(...(await expectGatedOnce()));
  expectRefused();

  // Pruned, as `apply --prune` (or GitOps) prunes what the new bundle no longer has. Until Kyverno
  // has removed the pruned policies' webhooks from its configurations, they refuse a run (they fail
  // closed): none starts ungated.
  await plane.installBundle(cel, { prune: true });
  expect(plane.getJson<{ items: Obj[] }>('clusterpolicies').items.map((p) => p.metadata.name)).not.toContain('mutate-pipelinerun');
  const pruned = Date.now();
  const refusals: string[] = [];
  const acceptedAfter = await waitFor('a run to be accepted after the prune', () => {
    const attempt = plane.tryKubectl(['create', '-o', 'name', '-f', '-'], JSON.stringify(new PipelineRunBuilder(ns, 'probe').build()));
    if (!attempt.ok) {
      refusals.push(attempt.stderr);
      return undefined;
    }
    runs.push(attempt.stdout.trim().split('/').pop()!);
    return Date.now() - pruned;
  }, WAIT.step, 1000);
  console.log(`after the prune: ${refusals.length} run(s) refused, the first accepted after ${(acceptedAfter / 1000).toFixed(1)} s`);
  for (const refusal of refusals) expect(refusal).toMatch(/denied the request: failed to fetch policy with key: key \/(mutate|validate)-pipelinerun/);
  runs.push(...(await expectGatedOnce()));
  expectRefused();

  await expectAllSucceed(runs);
  await expectQueueEmpty(plane, ns);
});
