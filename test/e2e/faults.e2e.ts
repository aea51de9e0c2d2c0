/**
 * Engines down mid-flow, as a crash or an evicted pod takes them down: Kyverno's admission
 * controller, Kyverno's background controller, Kueue and Tekton's controller, each killed for
 * OUTAGE_MS while runs are at every step — ending, being admitted, being created, being preempted —
 * and started again. No manual step follows: every run ends as it would have, every quota comes
 * back, and no Workload is admitted twice. A run created while Kyverno's admission controller is
 * down is refused (its webhooks fail closed). The time from the engine's return to each run's
 * Workload finishing is printed as a table: the heal time. Tekton's leader-election lease is scaled
 * down to 15 s on this plane: a killed controller's successor waits it out before it reconciles.
 *
 * Lost events: a status update that reaches Kyverno while it is down is let through unseen (the
 * status steps fail open) or refused and retried by its writer (Kueue's webhooks down refuse
 * Kyverno's writes). Kyverno's periodic re-apply (BACKGROUND_SCAN_INTERVAL, 20 s on this plane)
 * acts on them later; each scenario depends on it, as does a run cancelled while it waits whose
 * gate Tekton cancels unseen. An event Kyverno sees is acted on at once, even when Kyverno reads the
 * object before the API server has stored the update. At rest, the re-apply makes no request for an object.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { GATED_LABEL, PIPELINE_RUN, TASK_RUN } from '../../src/gate/names.js';
import { root } from '../helpers.js';
import { ControlPlane, type Engine, stopAll, synthesize, waitFor } from './control-plane.js';
import { condition, type Obj, UPDATE_REQUEST } from './objects.js';
import {
  admissionsOf,
  applyDeployPipeline,
  expectQueueEmpty,
  expectRunFinished,
  expectWorkload,
  expectWorkloadCondition,
  expectWorkloadFinished,
  gateOf,
  PipelineRunBuilder,
  setStopPolicy,
  WAIT,
} from './scenario.js';

const OUTAGE_MS = 25_000;
const REAPPLY_SECONDS = 20;
/** Runs cancelled to test that a status step acts on each event; more with E2E_CANCELS. */
const CANCELS = Number(process.env.E2E_CANCELS ?? 10);
/** A gate closed later than this after Tekton cancelled it was closed by the re-apply. */
const EVENT_MS = 5_000;
type UpdateRequest = Obj & { spec: { policy: string; context?: { admissionRequestInfo?: { admissionRequest?: unknown } } } };
/** Where a run is in the flow when the engine goes down; each in a namespace and ClusterQueue of its own. */
const POSITIONS = { ending: 'e2e-fault-ending', admitted: 'e2e-fault-admitted', created: 'e2e-fault-created', preempting: 'e2e-fault-preempting' } as const;
type Position = keyof typeof POSITIONS;

let plane: ControlPlane;
const heals: { engine: Engine; position: Position | 'cancelled'; run: string; seconds: number }[] = [];

beforeAll(async () => {
  // WaitForPodsReady longer than an outage: a run admitted while Tekton is down is not evicted for
  // it (evictions.e2e.ts tests that path).
  plane = await ControlPlane.start({ taskSeconds: 2, podsReadyTimeout: '2m', reapplyInterval: `${REAPPLY_SECONDS}s` });
  await plane.installBundle(synthesize(join(import.meta.dirname, 'config.yaml')));
  for (const ns of Object.values(POSITIONS)) applyDeployPipeline(plane, ns);
});

afterAll(() => {
  stopAll();
  if (heals.length > 0) {
    console.log('heal time: from the engine back to the Workload Finished (task time included)');
    console.table(heals.map((h) => ({ engine: h.engine, 'run at': h.position, run: h.run, seconds: h.seconds.toFixed(1) })));
  }
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

/** An inline run (held by its gate CustomRun) and a pipelineRef run (held pending) in `ns`. */
async function createRuns(ns: string, duration = '2s'): Promise<string[]> {
  const inline = await new PipelineRunBuilder(ns, 'inline').taskDuration(duration).create(plane);
  const held = await new PipelineRunBuilder(ns, 'held').pipelineRef('deploy').taskDuration(duration).create(plane);
  return [inline.metadata.name, held.metadata.name];
}

describe.each<Engine>(['kyverno-admission-controller', 'kyverno-background-controller', 'kueue', 'tekton-controller'])('%s down mid-flow', (engine) => {
  it('runs ending, being admitted, being created and being preempted heal once it is back, with no manual step', async () => {
    const runs: Partial<Record<Position, string[]>> = {};
    // Admitted: waiting behind a held ClusterQueue, which starts again during the outage.
    await setStopPolicy(plane, { clusterQueue: POSITIONS.admitted }, 'Hold');
    runs.admitted = await createRuns(POSITIONS.admitted);
    for (const run of runs.admitted) await expectWorkload(plane, POSITIONS.admitted, run);
    // Preempting: a low-priority run running in a queue of one, and a high-priority run created as
    // the outage begins, for which Kueue preempts it.
    const low = (await new PipelineRunBuilder(POSITIONS.preempting, 'low').priority('low').taskDuration('10s').create(plane)).metadata.name;
    await expectWorkloadCondition(plane, POSITIONS.preempting, low, 'PodsReady');
    // Ending: started before the outage, their tasks end during it.
    runs.ending = await createRuns(POSITIONS.ending, '10s');
    for (const run of runs.ending) await expectWorkloadCondition(plane, POSITIONS.ending, run, 'PodsReady');
    const high = (await new PipelineRunBuilder(POSITIONS.preempting, 'high').pipelineRef('deploy').priority('high').create(plane)).metadata.name;
    runs.preempting = [high, low];

    // Kueue's webhooks go down with Kueue: the queue is started as it goes down.
    if (engine === 'kueue') await setStopPolicy(plane, { clusterQueue: POSITIONS.admitted }, 'None');
    await plane.stop(engine);
    const down = Date.now();
    if (engine !== 'kueue') await setStopPolicy(plane, { clusterQueue: POSITIONS.admitted }, 'None');
    if (engine === 'kyverno-admission-controller') {
      await expect(new PipelineRunBuilder(POSITIONS.created, 'refused').create(plane), 'a run created while Kyverno cannot gate it').rejects.toThrow(/kyverno/i);
    } else {
      runs.created = await createRuns(POSITIONS.created);
    }
    await new Promise((r) => setTimeout(r, OUTAGE_MS - (Date.now() - down)));
    plane.start(engine);
    const back = Date.now();

    // Each run watched on its own, so that its heal time is its own; all of them to the end, so that
    // none is left running into the next scenario.
    const outcomes = await Promise.allSettled((Object.entries(runs) as [Position, string[]][]).flatMap(([position, names]) => names.map(async (run) => {
      const ns = POSITIONS[position];
      const succeeded = condition(await expectRunFinished(plane, ns, run), 'Succeeded')?.status;
      // Kueue's own pod webhook (mpod.kb.io) fails closed: while Kueue is down no pod is created in
      // the cluster, and a task that starts then fails. The run ends, and its quota comes back. Such
      // a run had a task before Kueue was back: one ending, or one Kueue admitted as the queue
      // started, just before it went down.
      const taskRuns = await plane.objects.list<Obj & { metadata: { creationTimestamp: string } }>(TASK_RUN, ns, `tekton.dev/pipelineRun=${run}`);
      const mayFail = (engine === 'kueue' && taskRuns.some((taskRun) => Date.parse(taskRun.metadata.creationTimestamp) < back)) || run === low;
      if (!mayFail) expect(succeeded, `${ns}/${run} succeeded`).toBe('True');
      const workload = await expectWorkloadFinished(plane, ns, run, succeeded === 'True' ? 'Succeeded' : 'Failed', WAIT.step);
      // With Kueue down, the low run may fail (its next task's pod refused) and end before Kueue is back to preempt it.
      if (run === low && engine !== 'kueue') expect(condition(workload, 'Evicted')?.reason, `${ns}/${run} preempted`).toBe('Preempted');
      heals.push({ engine, position, run, seconds: (Date.now() - back) / 1000 });
      expect(await admissionsOf(plane, ns, workload.metadata.name), `admissions of ${ns}/${run}`).toBe(1);
    })));
    for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
    for (const ns of Object.values(POSITIONS)) await expectQueueEmpty(plane, ns);
  });
});

describe("a run cancelled while it waits, unseen by Kyverno's admission controller", () => {
  it('has its gate closed at the next re-apply, ends Cancelled, its Workload finished, its quota back', async () => {
    const ns = POSITIONS.admitted;
    await setStopPolicy(plane, { clusterQueue: ns }, 'Hold');
    const run = (await new PipelineRunBuilder(ns, 'cancelled').create(plane)).metadata.name;
    await expectWorkload(plane, ns, run);
    // The user cancels the run while Kyverno is up (the ClusterPolicy generate-workload fails closed
    // on updates of a waiting run); Tekton cancels its gate CustomRun once Kyverno is down: the step
    // that closes the gate fails open, and nothing sees that.
    await plane.stop('tekton-controller');
    await plane.objects.patch(PIPELINE_RUN, ns, run, { spec: { status: 'Cancelled' } });
    await plane.stop('kyverno-admission-controller');
    plane.start('tekton-controller');
    await waitFor(`the gate of ${ns}/${run} cancelled`, async () => (await gateOf(plane, ns, run))?.spec?.status === 'RunCancelled', WAIT.step);
    plane.start('kyverno-admission-controller');
    const back = Date.now();
    const closed = await waitFor(`the gate of ${ns}/${run} closed`, async () => condition((await gateOf(plane, ns, run))!, 'Succeeded'), (REAPPLY_SECONDS + 30) * 1000);
    heals.push({ engine: 'kyverno-admission-controller', position: 'cancelled', run, seconds: (Date.now() - back) / 1000 });
    expect(condition(await expectRunFinished(plane, ns, run), 'Succeeded')?.reason).toBe('Cancelled');
    // What the step wrote on the gate is what its Kyverno suite expects, at the time it ran.
    const { lastTransitionTime, ...written } = closed;
    const { lastTransitionTime: _, ...expected } = YAML.parse(readFileSync(join(root, 'policies', 'cancel-customrun', 'test', 'patched-queued-kueue-gate.yaml'), 'utf8')).status.conditions[0];
    expect(written).toEqual(expected);
    expect(Date.parse(lastTransitionTime!)).toBeGreaterThanOrEqual(Math.floor(back / 1000) * 1000);
    // Tekton ended the run as soon as it cancelled the gate, with Kyverno down: the Workload, never
    // admitted, is released once Kueue admits it (a re-apply releases the Workloads holding quota).
    await setStopPolicy(plane, { clusterQueue: ns }, 'None');
    await expectWorkloadCondition(plane, ns, run, 'Finished');
    await expectQueueEmpty(plane, ns);
  });
});

describe("a status step's events", () => {
  // Kyverno may run a step before the API server has stored the update that triggered it, and read
  // the object as it was before: each dialect then takes the update from the admission request. A
  // step that lost the event would close the gate only at the next re-apply, later than EVENT_MS.
  it(`closes the gate of each of ${CANCELS} runs cancelled one at a time while they wait on the event, not at the re-apply`, async () => {
    const ns = POSITIONS.admitted;
    // Kyverno's admission controller, restarted by the scenario before, may not gate runs yet (the
    // tenant guard refuses them meanwhile).
    const probe = JSON.stringify(new PipelineRunBuilder(ns, 'probe').build());
    await waitFor("Kyverno's admission controller to gate runs", () => plane.tryKubectl(['create', '--dry-run=server', '-f', '-'], probe).ok, WAIT.step);
    await setStopPolicy(plane, { clusterQueue: ns }, 'Hold');
    const runs: string[] = [];
    for (let i = 0; i < CANCELS; i++) runs.push((await new PipelineRunBuilder(ns, 'cancelled').create(plane)).metadata.name);
    for (const run of runs) await waitFor(`the gate of ${ns}/${run}`, () => gateOf(plane, ns, run), WAIT.step);
    const late: string[] = [];
    for (const run of runs) {
      await plane.objects.patch(PIPELINE_RUN, ns, run, { spec: { status: 'Cancelled' } });
      await waitFor(`the gate of ${ns}/${run} cancelled`, async () => (await gateOf(plane, ns, run))?.spec?.status === 'RunCancelled', WAIT.step, 100);
      const cancelled = Date.now();
      await waitFor(`the gate of ${ns}/${run} closed`, async () => condition((await gateOf(plane, ns, run))!, 'Succeeded')?.status === 'False', 2 * REAPPLY_SECONDS * 1000, 100);
      if (Date.now() - cancelled > EVENT_MS) late.push(`${run}: ${((Date.now() - cancelled) / 1000).toFixed(1)} s`);
    }
    expect(late, 'gates closed later than the event').toEqual([]);
    await setStopPolicy(plane, { clusterQueue: ns }, 'None');
    for (const run of runs) await expectWorkloadCondition(plane, ns, run, 'Finished');
    await expectQueueEmpty(plane, ns);
  });
});

describe("Kyverno's periodic re-apply", () => {
  // A ClusterPolicy re-applies a step by evaluating it on every object first: the ended ones make no
  // request. The CEL dialect's `-reapply` MutatingPolicies make one request each per re-apply, for
  // all their objects at once, which the processing of the request evaluates.
  it('costs nothing at rest per run: no UpdateRequest for a run ended or a Workload finished', async () => {
    const runs = (await Promise.all(Object.values(POSITIONS).map((ns) => plane.objects.list(PIPELINE_RUN, ns, GATED_LABEL)))).flat();
    expect(runs.length, 'ended runs from the scenarios above').toBeGreaterThan(0);
    const requests = await plane.objects.createdDuring<UpdateRequest>(UPDATE_REQUEST, 'kyverno', new Promise((r) => setTimeout(r, 2 * REAPPLY_SECONDS * 1000)));
    console.log(`re-apply at rest: ${runs.length} ended runs; UpdateRequests in ${2 * REAPPLY_SECONDS} s: ${requests.length}`);
    const perObject = requests.filter((ur) => ur.spec.context?.admissionRequestInfo?.admissionRequest || !ur.spec.policy.endsWith('-reapply'));
    expect(perObject.map((ur) => `${ur.spec.policy}: ${ur.metadata.name}`), 'UpdateRequests at rest for an object').toEqual([]);
    // Two re-applies, and one more if the wait began as one started.
    for (const policy of new Set(requests.map((ur) => ur.spec.policy))) {
      expect(requests.filter((ur) => ur.spec.policy === policy).length, `UpdateRequests of ${policy}`).toBeLessThanOrEqual(3);
    }
  });
});
