/**
 * Events Kyverno misses, made up for. Kyverno's background controller gives up within milliseconds
 * on an UpdateRequest whose trigger it cannot find yet, which happens when the API server stores
 * the object only after a slower webhook (Tekton's) has answered: the Workload of that run would
 * never be made. The gate makes it at the next status update Tekton writes while the run waits.
 * Here the UpdateRequest of the creation is lost on purpose: Kyverno's background controller is
 * stopped, the run created, that UpdateRequest deleted, and the controller started again.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CUSTOM_RUN, PIPELINE_RUN } from '../../src/gate/names.js';
import { ControlPlane, stopAll, synthesize } from './control-plane.js';
import { condition, type Obj } from './objects.js';
import { applyDeployPipeline, expectGeneratedBy, expectRunFinished, expectWorkload, expectWorkloadFinished, gateOf, loseWorkloadCreation, PipelineRunBuilder, pipelineRun, WAIT } from './scenario.js';

const ns = 'e2e-missed';
let plane: ControlPlane;

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 2 });
  await plane.installBundle(synthesize(join(import.meta.dirname, 'config.yaml')));
  applyDeployPipeline(plane, ns);
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

/**
 * The GeneratingPolicies that make a waiting run's Workload: on its status update, or at the
 * re-apply, which Kyverno's background controller runs as it starts too (whichever comes first).
 */
const ON_WAITING_RUN = ['generate-workload', 'generate-workload-reapply'] as const;

/** Waits until Tekton has written the run's status with `ready` true (it has seen the run stored). */
async function expectTektonStatus(run: string, ready: (run: Obj) => boolean): Promise<void> {
  await expect.poll(async () => ready((await pipelineRun(plane, ns, run))!), { timeout: WAIT.step, interval: WAIT.poll, message: `Tekton's status of ${run}` }).toBe(true);
}

describe('a Workload whose creation Kyverno missed', () => {
  it('pending: made at the status Tekton writes on the held run, which then runs', async () => {
    await plane.stop('kyverno-background-controller');
    const run = (await new PipelineRunBuilder(ns, 'held').pipelineRef('deploy').create(plane)).metadata.name;
    await loseWorkloadCreation(plane, 'workload-for-pipelinerun', run);
    await expectTektonStatus(run, (r) => condition(r, 'Succeeded')?.reason === 'PipelineRunPending');
    plane.start('kyverno-background-controller');

    const workload = await expectWorkload(plane, ns, run);
    expectGeneratedBy(workload, 'missed-workload-for-pipelinerun', ON_WAITING_RUN);
    expect(workload.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: PIPELINE_RUN.kind, name: run })]);
    expect(condition(await expectRunFinished(plane, ns, run), 'Succeeded')?.status).toBe('True');
    await expectWorkloadFinished(plane, ns, run, 'Succeeded');
  });

  it('customrun: made at the status Tekton writes once it has created the gate, which then opens', async () => {
    await plane.stop('kyverno-background-controller');
    const run = (await new PipelineRunBuilder(ns, 'gated').create(plane)).metadata.name;
    await expect.poll(() => gateOf(plane, ns, run), { timeout: WAIT.step, interval: WAIT.poll, message: `the gate CustomRun of ${run}` }).toBeDefined();
    const gate = (await gateOf(plane, ns, run))!.metadata;
    await loseWorkloadCreation(plane, 'workload-for-customrun', gate.name);
    await expectTektonStatus(run, (r) => ((r.status?.childReferences ?? []) as { name: string }[]).some((c) => c.name === gate.name));
    plane.start('kyverno-background-controller');

    const workload = await expectWorkload(plane, ns, run);
    expect(workload.metadata.name).toBe(gate.name);
    expectGeneratedBy(workload, 'missed-workload-for-customrun', ON_WAITING_RUN);
    expect(workload.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: CUSTOM_RUN.kind, name: gate.name, uid: gate.uid })]);
    expect(condition(await expectRunFinished(plane, ns, run), 'Succeeded')?.status).toBe('True');
    await expectWorkloadFinished(plane, ns, run, 'Succeeded');
  });
});
