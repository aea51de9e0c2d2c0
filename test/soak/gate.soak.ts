/**
 * A soak of the gate on the control plane: SOAK_RUNS runs (200 by default) across 2 namespaces,
 * each with its ClusterQueue of 4 runs, 2 priorities (high preempts low), of every kind a CI
 * service sees — succeed, fail, cancelled while queued or while running, timed out, deleted while
 * queued or while running, preempted — submitted faster than the quota drains. Long low-priority
 * runs fill both queues first, so that the high-priority runs after them must preempt them. While it
 * runs, the runs running in a queue are counted every second; at the end no run is stuck, no Workload
 * holds quota, every run ended as its kind should, and Kueue preempted runs of the first wave, each
 * stopped by the gate. Printed as a table.
 *
 *   npm run soak                 # SOAK_RUNS=60 npm run soak for a shorter one
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GATE_TASK, PIPELINE_RUN, PIPELINE_RUN_LABEL, STOP_STATUS, WORKLOAD } from '../../src/gate/names.js';
import { WORKLOAD_STATUS_KEPT } from '../../policies/workload-status-kept/policy.js';
import { ControlPlane, stopAll, synthesize } from '../e2e/control-plane.js';
import { type Condition, condition, ended, type Obj } from '../e2e/objects.js';
import { applyDeployPipeline, expectQueueEmpty, PipelineRunBuilder, pipelineRun } from '../e2e/scenario.js';

const RUNS = Number(process.env.SOAK_RUNS ?? 200);
const QUOTA = 4;
const NAMESPACES = ['e2e-soak-a', 'e2e-soak-b'] as const;
const SUBMIT_EVERY_MS = 150;
/** Each task of a first-wave run: far longer than the first high-priority runs take to come (a stopped run's running task still ends normally). */
const FIRST_WAVE_TASK = '20s';
/** How long the queues may take to drain: the runs are submitted far faster than that. */
const DRAIN_MS = 30 * 60_000;

type Kind = 'succeed' | 'fail' | 'cancel-queued' | 'cancel-running' | 'time-out' | 'delete-queued' | 'delete-running' | 'preempted' | 'first-wave';
const KINDS: readonly Kind[] = ['succeed', 'fail', 'cancel-queued', 'cancel-running', 'time-out', 'delete-queued', 'delete-running', 'preempted'];

/** How a run of each kind must end: its Succeeded condition and reason, or gone. */
const EXPECTED: Record<Kind, (run: Obj | undefined) => boolean> = {
  succeed: (run) => condition(run, 'Succeeded')?.status === 'True',
  fail: (run) => condition(run, 'Succeeded')?.reason === 'Failed',
  'cancel-queued': (run) => condition(run, 'Succeeded')?.reason === 'Cancelled',
  'cancel-running': (run) => condition(run, 'Succeeded')?.reason === 'Cancelled',
  'time-out': (run) => condition(run, 'Succeeded')?.reason === 'PipelineRunTimeout',
  'delete-queued': (run) => run === undefined,
  'delete-running': (run) => run === undefined,
  // Preempted while it runs (stopped: Failed or StoppedRunFinally's Cancelled), or run to the end
  // when no high-priority run came while it ran.
  preempted: ended,
  // Running when the high-priority runs came, at low priority: stopped if Kueue preempted it (Kueue
  // preempts only as many as the runs it is about to admit need), else run to the end.
  'first-wave': ended,
};

let plane: ControlPlane;

beforeAll(async () => {
  // Closer to a cluster's settings than the e2e scenarios' (15 s, 20 s): with 200 runs on a small
  // machine, runs wait for Tekton longer than 15 s to start, and WaitForPodsReady would evict them.
  plane = await ControlPlane.start({ taskSeconds: 2, podsReadyTimeout: '5m', reapplyInterval: '1m' });
  await plane.installBundle(synthesize(join(import.meta.dirname, '..', 'e2e', 'config.yaml')));
  for (const ns of NAMESPACES) applyDeployPipeline(plane, ns);
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

/** A run the gate has let go whose tasks Tekton has started, and that has not ended. */
function running(run: Obj): boolean {
  const children = (run.status?.childReferences ?? []) as { pipelineTaskName: string }[];
  return children.some((c) => c.pipelineTaskName !== GATE_TASK) && !ended(run);
}

/** Each run and its Workload's conditions, one line each: what held the quota when a queue ran more than it. */
async function withWorkloads(namespace: string, runs: readonly Obj[]): Promise<string> {
  const workloads = await plane.objects.list(WORKLOAD, namespace);
  const conditions = (w: Obj) => ((w.status?.conditions ?? []) as Condition[]).map((c) => `${c.type}=${c.status}/${c.reason}`).join(' ');
  return runs
    .map((run) => `${run.metadata.name}: ${workloads.filter((w) => w.metadata.labels?.[PIPELINE_RUN_LABEL] === run.metadata.name).map((w) => `Workload ${w.metadata.name} ${w.status?.admission ? 'admitted' : 'not admitted'}, ${conditions(w)}`).join('; ')}`)
    .join('\n');
}

/** How many writes the policy that keeps Kueue's part of a Workload's status has refused (the API server's count). */
function staleWritesRefused(): number {
  const refusals = plane
    .kubectl('get', '--raw', '/metrics')
    .split('\n')
    .filter((line) => line.startsWith('apiserver_validating_admission_policy_check_total{') && line.includes('enforcement_action="deny"') && line.includes(`policy="${WORKLOAD_STATUS_KEPT}"`));
  return refusals.reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

/** Polls every 2 s: the soak's own reads must not be a load of their own on the plane. */
async function until(probe: () => Promise<boolean>): Promise<void> {
  await expect.poll(probe, { timeout: DRAIN_MS, interval: 2_000 }).toBe(true);
}

type Submitted = { namespace: string; name: string; kind: Kind };

/** Fills every queue with low-priority runs that would run long, and waits until they all run. */
async function firstWave(): Promise<Submitted[]> {
  const wave = await Promise.all(
    NAMESPACES.flatMap((namespace) =>
      Array.from({ length: QUOTA }, async (): Promise<Submitted> => {
        const run = await new PipelineRunBuilder(namespace, 'first-wave').priority('low').taskDuration(FIRST_WAVE_TASK).create(plane);
        return { namespace, name: run.metadata.name, kind: 'first-wave' };
      }),
    ),
  );
  await until(async () => (await Promise.all(wave.map((r) => pipelineRun(plane, r.namespace, r.name)))).every((run) => run !== undefined && running(run)));
  return wave;
}

/** Submits one run of `kind` and does to it what its kind says; resolves once that is done. */
async function submit(i: number, kind: Kind): Promise<Submitted> {
  // Every kind in both namespaces: the namespace changes with each round of the kinds.
  const namespace = NAMESPACES[Math.floor(i / KINDS.length) % NAMESPACES.length]!;
  const builder = new PipelineRunBuilder(namespace, kind);
  if (i % 3 === 0) builder.pipelineRef('deploy');
  if (kind === 'fail') builder.failing();
  if (kind === 'time-out') builder.timeout('8s').taskDuration('20s');
  // Only the runs meant to be preempted have the low priority: any other kind is never stopped for a run of its own priority.
  builder.priority(kind === 'preempted' ? 'low' : 'high');
  if (kind === 'preempted') builder.taskDuration('8s');
  const name = (await builder.create(plane)).metadata.name;
  const startedRun = async () => until(async () => running((await pipelineRun(plane, namespace, name)) ?? { metadata: { name } }));
  switch (kind) {
    case 'cancel-queued':
      await plane.objects.patch(PIPELINE_RUN, namespace, name, { spec: { status: 'Cancelled' } });
      break;
    case 'cancel-running':
      await startedRun();
      await plane.objects.patch(PIPELINE_RUN, namespace, name, { spec: { status: 'Cancelled' } });
      break;
    case 'delete-queued':
      await plane.objects.delete(PIPELINE_RUN, namespace, name);
      break;
    case 'delete-running':
      await startedRun();
      await plane.objects.delete(PIPELINE_RUN, namespace, name);
      break;
    default:
  }
  return { namespace, name, kind };
}

it(`${RUNS} mixed runs through 2 queues of ${QUOTA}: never more running than the quota, none stuck, no quota left held, each ended as its kind should`, async () => {
  const peak: Record<string, number> = Object.fromEntries(NAMESPACES.map((ns) => [ns, 0]));
  const firstOverQuota: Record<string, string> = {};
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const ns of NAMESPACES) {
        const runningNow = (await plane.objects.list(PIPELINE_RUN, ns)).filter(running);
        peak[ns] = Math.max(peak[ns]!, runningNow.length);
        if (runningNow.length > QUOTA) firstOverQuota[ns] ??= await withWorkloads(ns, runningNow);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();

  const started = Date.now();
  const wave = await firstWave();
  const submissions: Promise<Submitted>[] = [];
  for (let i = 0; i < RUNS; i++) {
    submissions.push(submit(i, KINDS[i % KINDS.length]!));
    await new Promise((r) => setTimeout(r, SUBMIT_EVERY_MS));
  }
  const submittedIn = (Date.now() - started) / 1000;
  const runs = [...wave, ...(await Promise.all(submissions))];

  // Drained: every run left has ended, and both queues hold no quota.
  await until(async () => {
    const left = (await Promise.all(NAMESPACES.map((ns) => plane.objects.list(PIPELINE_RUN, ns)))).flat();
    return left.every(ended);
  });
  for (const ns of NAMESPACES) await expectQueueEmpty(plane, ns, DRAIN_MS);
  const drainedIn = (Date.now() - started) / 1000;
  sampling = false;
  await sampler;

  const outcomes = await Promise.all(runs.map(async (r) => ({ ...r, run: await pipelineRun(plane, r.namespace, r.name) })));
  const rows = [...KINDS, 'first-wave' as const].map((kind) => {
    const ofKind = outcomes.filter((o) => o.kind === kind);
    const wrong = ofKind.filter((o) => !EXPECTED[kind](o.run));
    const stopped = ofKind.filter((o) => condition(o.run, 'Succeeded')?.status === 'False').length;
    return { kind, runs: ofKind.length, 'as expected': ofKind.length - wrong.length, 'ended False': stopped, wrong: wrong.map((o) => `${o.name}: ${condition(o.run, 'Succeeded')?.reason ?? 'gone'}`).join(', ') };
  });
  const workloads = (await Promise.all(NAMESPACES.map((ns) => plane.objects.list(WORKLOAD, ns)))).flat();
  const holding = workloads.filter((w) => condition(w, 'QuotaReserved')?.status === 'True' && condition(w, 'Finished')?.status !== 'True');
  console.log(`${wave.length} first-wave runs, then ${RUNS} runs submitted in ${submittedIn.toFixed(0)} s, drained in ${drainedIn.toFixed(0)} s; most running at once: ${JSON.stringify(peak)} (quota ${QUOTA} each)`);
  console.table(rows);
  console.log(`Workloads holding quota at the end: ${holding.length}`);
  const evictionOf = (r: Submitted) =>
    workloads.map((w) => (w.metadata.namespace === r.namespace && w.metadata.labels?.[PIPELINE_RUN_LABEL] === r.name ? condition(w, 'Evicted') : undefined)).find((c) => c?.reason === 'Preempted');
  const preempted = wave.filter((r) => evictionOf(r));
  const runOf = (r: Submitted) => outcomes.find((o) => o.name === r.name)?.run;
  // Stopped (StoppedRunFinally: the task running ends normally, no other starts, so a run preempted
  // in its last task may still succeed), unless it had ended before Kueue preempted its Workload.
  const stopped = preempted.filter((r) => runOf(r)?.spec.status === STOP_STATUS || Date.parse(String(runOf(r)?.status?.completionTime)) <= Date.parse(evictionOf(r)!.lastTransitionTime!));
  const failed = stopped.filter((r) => condition(runOf(r), 'Succeeded')?.status === 'False');
  console.log(`first wave: ${preempted.length} of ${wave.length} preempted, ${stopped.length} of them stopped, ${failed.length} ending False`);
  console.log(`writes of the gate's the API server refused as stale (dist/guard/workload-status-kept.yaml): ${staleWritesRefused()}`);

  expect(rows.filter((row) => row.wrong !== ''), 'runs that ended otherwise than their kind').toEqual([]);
  expect(preempted.length, 'first-wave runs Kueue preempted').toBeGreaterThan(0);
  expect(stopped, 'preempted first-wave runs stopped').toEqual(preempted);
  expect(holding.map((w) => `${w.metadata.namespace}/${w.metadata.name}`), 'Workloads holding quota').toEqual([]);
  for (const ns of NAMESPACES) expect(peak[ns], `most runs running at once in ${ns}; the first time over the quota:\n${firstOverQuota[ns]}`).toBeLessThanOrEqual(QUOTA);
});
