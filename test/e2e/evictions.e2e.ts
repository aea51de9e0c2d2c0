/**
 * Long runs and every way Kueue evicts a Workload, on a control plane whose Kueue runs with its own
 * defaults (WaitForPodsReady on, its timeout scaled down to 15 s). A run the gate let go is stopped
 * and keeps its quota until it ends; a run the gate still held goes back to the queue and is
 * admitted again. Each scenario has a namespace and a ClusterQueue of its own (config.yaml).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKLOAD } from '../../src/gate/names.js';
import { ControlPlane, stopAll, synthesize } from './control-plane.js';
import { condition, ended, type Obj } from './objects.js';
import {
  admissionsOf,
  applyDeployPipeline,
  CLUSTER_QUEUE,
  expectQueueEmpty,
  expectRunFinished,
  expectStays,
  expectWorkload,
  expectWorkloadCondition,
  expectWorkloadFinished,
  gateOf,
  PipelineRunBuilder,
  pipelineRun,
  podsOf,
  setStopPolicy,
  WAIT,
  workloadOf,
} from './scenario.js';

let plane: ControlPlane;

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 3, podsReadyTimeout: '15s' });
  await plane.installBundle(synthesize(join(import.meta.dirname, 'config.yaml')));
  for (const namespace of ['e2e-long', 'e2e-not-started', 'e2e-cq-stop']) applyDeployPipeline(plane, namespace);
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

/** A Workload that is no run's: a batch job of another team, holding or wanting the same quota. */
async function otherWorkload(namespace: string, name: string, priority: 'high' | 'low'): Promise<Obj> {
  return plane.objects.create({
    apiVersion: WORKLOAD.apiVersion,
    kind: WORKLOAD.kind,
    metadata: { name, namespace },
    spec: {
      queueName: 'runs',
      priorityClassRef: { group: 'kueue.x-k8s.io', kind: 'WorkloadPriorityClass', name: priority },
      priority: priority === 'high' ? 1000 : 100,
      podSets: [{ name: 'main', count: 1, template: { spec: { containers: [{ name: 'main', resources: { requests: { cpu: '100m', 'tekton.dev/pipelineruns': '1' } } }] } } }],
    },
  });
}

async function admitted(namespace: string, workload: string): Promise<boolean> {
  return condition(await plane.objects.get(WORKLOAD, namespace, workload), 'Admitted')?.status === 'True';
}

/** No TaskRun pod of the run exists: nothing of it ran. */
async function nothingRan(namespace: string, run: string): Promise<boolean> {
  return (await podsOf(plane, namespace, run)).length === 0;
}

describe('long runs under WaitForPodsReady (timeout 15 s)', () => {
  it('an inline run and a pipelineRef run of ~45 s both succeed: their Workloads are PodsReady, never evicted', async () => {
    const ns = 'e2e-long';
    const inline = await new PipelineRunBuilder(ns, 'long-inline').taskDuration('20s').create(plane);
    const ref = await new PipelineRunBuilder(ns, 'long-ref').pipelineRef('deploy').taskDuration('45s').create(plane);
    for (const run of [inline, ref]) {
      const done = await expectRunFinished(plane, ns, run.metadata.name);
      expect(condition(done, 'Succeeded'), run.metadata.name).toMatchObject({ status: 'True' });
      const workload = await expectWorkloadFinished(plane, ns, run.metadata.name, 'Succeeded');
      expect(condition(workload, 'PodsReady'), run.metadata.name).toMatchObject({ status: 'True', reason: 'Started' });
      expect(condition(workload, 'Evicted')?.status ?? 'False', run.metadata.name).toBe('False');
      expect(await admissionsOf(plane, ns, workload.metadata.name)).toBe(1);
    }
    await expectQueueEmpty(plane, 'e2e-long');
  });
});

describe('Preempted', () => {
  it('a started run is stopped, keeps its quota until it has ended (finally tasks included), and is never admitted twice', async () => {
    const ns = 'e2e-preempt-started';
    const low = (await new PipelineRunBuilder(ns, 'low').priority('low').taskDuration('15s').create(plane)).metadata.name;
    await expectWorkloadCondition(plane, ns, low, 'PodsReady');
    const high = (await new PipelineRunBuilder(ns, 'high').priority('high').create(plane)).metadata.name;
    const evicted = await expectWorkloadCondition(plane, ns, low, 'Evicted', { reason: 'Preempted' });
    await expect.poll(async () => (await pipelineRun(plane, ns, low))?.spec.status, { timeout: WAIT.step }).toBe('StoppedRunFinally');
    // Until the stopped run has ended, its Workload holds the quota: the preemptor waits.
    const highWorkload = (await workloadOf(plane, ns, high))!.metadata.name;
    await expectStays('the preemptor to wait while the stopped run ends', async () => {
      return ended(await pipelineRun(plane, ns, low)) || !(await admitted(ns, highWorkload));
    }, 5_000);
    const stopped = await expectRunFinished(plane, ns, low);
    expect(condition(stopped, 'Succeeded')?.status).toBe('False');
    expect((await podsOf(plane, ns, low)).map((p) => p.metadata.labels?.['tekton.dev/pipelineTask']).sort(), 'its finally task ran').toContain('report');
    await expectWorkloadFinished(plane, ns, low, 'Failed');
    expect(await admissionsOf(plane, ns, evicted.metadata.name)).toBe(1);
    expect(condition(await expectRunFinished(plane, ns, high), 'Succeeded')?.status).toBe('True');
    await expectQueueEmpty(plane, 'e2e-preempt-started');
  });

  it('a run still held goes back to the queue, is admitted again later, and runs once', async () => {
    const ns = 'e2e-preempt-held';
    await otherWorkload(ns, 'blocker', 'high');
    await expect.poll(() => admitted(ns, 'blocker'), { timeout: WAIT.step }).toBe(true);
    const run = (await new PipelineRunBuilder(ns, 'held').priority('low').create(plane)).metadata.name;
    const workload = (await expectWorkload(plane, ns, run)).metadata.name;
    // With Kyverno's background controller down, an admission cannot open the gate: the run stays held.
    await plane.stop('kyverno-background-controller');
    await plane.objects.delete(WORKLOAD, ns, 'blocker');
    await expect.poll(() => admitted(ns, workload), { timeout: WAIT.step }).toBe(true);
    await otherWorkload(ns, 'preemptor', 'high');
    await expectWorkloadCondition(plane, ns, run, 'Evicted', { reason: 'Preempted' });
    plane.start('kyverno-background-controller');
    // The stale admission does not open the gate; the Workload gives its reservation back.
    await expectWorkloadCondition(plane, ns, run, 'Requeued', { reason: 'Preempted' });
    await expect.poll(() => admitted(ns, 'preemptor'), { timeout: WAIT.step }).toBe(true);
    expect(condition(await gateOf(plane, ns, run), 'Succeeded')).toBeUndefined();
    expect(await nothingRan(ns, run)).toBe(true);
    await plane.objects.delete(WORKLOAD, ns, 'preemptor');
    const done = await expectRunFinished(plane, ns, run);
    expect(condition(done, 'Succeeded')?.status).toBe('True');
    expect(await admissionsOf(plane, ns, workload)).toBe(2);
    expect((await podsOf(plane, ns, run)).map((p) => p.metadata.labels?.['tekton.dev/pipelineTask']).sort(), 'each task ran once').toEqual(['build', 'report', 'test']);
    await expectWorkloadFinished(plane, ns, run, 'Succeeded');
    await expectQueueEmpty(plane, 'e2e-preempt-held');
  });
});

describe('PodsReadyTimeout', () => {
  it('a run admitted but still held when the timeout passes is requeued, admitted again after the backoff, and runs', async () => {
    const ns = 'e2e-ready-timeout';
    await otherWorkload(ns, 'blocker', 'high');
    await expect.poll(() => admitted(ns, 'blocker'), { timeout: WAIT.step }).toBe(true);
    const run = (await new PipelineRunBuilder(ns, 'held').create(plane)).metadata.name;
    const workload = (await expectWorkload(plane, ns, run)).metadata.name;
    await plane.stop('kyverno-background-controller');
    await plane.objects.delete(WORKLOAD, ns, 'blocker');
    await expectWorkloadCondition(plane, ns, run, 'Evicted', { reason: 'PodsReadyTimeout' });
    plane.start('kyverno-background-controller');
    await expectWorkloadCondition(plane, ns, run, 'Requeued', { status: 'False', reason: 'PodsReadyTimeout' });
    expect(await nothingRan(ns, run)).toBe(true);
    const done = await expectRunFinished(plane, ns, run);
    expect(condition(done, 'Succeeded')?.status).toBe('True');
    expect(await admissionsOf(plane, ns, workload)).toBe(2);
    await expectWorkloadFinished(plane, ns, run, 'Succeeded');
    await expectQueueEmpty(plane, 'e2e-ready-timeout');
  });

  it('a run let go but not started in time (Tekton down) is stopped and ends cleanly, its quota back', async () => {
    const ns = 'e2e-not-started';
    await plane.stop('tekton-controller');
    const run = (await new PipelineRunBuilder(ns, 'released').pipelineRef('deploy').create(plane)).metadata.name;
    await expect.poll(async () => (await pipelineRun(plane, ns, run))?.spec.status ?? '', { timeout: WAIT.step, message: 'the gate to release the run' }).toBe('');
    await expectWorkloadCondition(plane, ns, run, 'Evicted', { reason: 'PodsReadyTimeout' });
    await expect.poll(async () => (await pipelineRun(plane, ns, run))?.spec.status, { timeout: WAIT.step }).toBe('StoppedRunFinally');
    plane.start('tekton-controller');
    const done = await expectRunFinished(plane, ns, run);
    expect(condition(done, 'Succeeded')?.status).toBe('False');
    expect(await nothingRan(ns, run)).toBe(true);
    await expectWorkloadFinished(plane, ns, run, 'Failed');
    await expectQueueEmpty(plane, 'e2e-not-started');
  });
});

describe('Deactivated', () => {
  it('spec.active: false stops a started run; a queued run deactivated stays out of the queue until reactivated, then runs', async () => {
    const ns = 'e2e-deactivate';
    const started = (await new PipelineRunBuilder(ns, 'started').taskDuration('15s').create(plane)).metadata.name;
    await expectWorkloadCondition(plane, ns, started, 'PodsReady');
    const queued = (await new PipelineRunBuilder(ns, 'queued').create(plane)).metadata.name;
    const queuedWorkload = (await expectWorkload(plane, ns, queued)).metadata.name;
    // As `kubectl kueue stop workload` does.
    await plane.objects.patch(WORKLOAD, ns, queuedWorkload, { spec: { active: false } });
    await plane.objects.patch(WORKLOAD, ns, (await workloadOf(plane, ns, started))!.metadata.name, { spec: { active: false } });
    await expectWorkloadCondition(plane, ns, started, 'Evicted', { reason: /^Deactivated/ });
    await expect.poll(async () => (await pipelineRun(plane, ns, started))?.spec.status, { timeout: WAIT.step }).toBe('StoppedRunFinally');
    expect(condition(await expectRunFinished(plane, ns, started), 'Succeeded')?.status).toBe('False');
    await expectWorkloadFinished(plane, ns, started, 'Failed');
    await expectStays('the deactivated queued run to stay unadmitted', async () => !(await admitted(ns, queuedWorkload)) && (await nothingRan(ns, queued)), 5_000);
    await plane.objects.patch(WORKLOAD, ns, queuedWorkload, { spec: { active: true } });
    expect(condition(await expectRunFinished(plane, ns, queued), 'Succeeded')?.status).toBe('True');
    await expectWorkloadFinished(plane, ns, queued, 'Succeeded');
    await expectQueueEmpty(plane, 'e2e-deactivate');
  });

  it('MaximumExecutionTimeExceeded: a run past its Workload\'s time limit is stopped and gives its quota back', async () => {
    const ns = 'e2e-max-exec';
    const run = (await new PipelineRunBuilder(ns, 'limited').maxExecutionSeconds(8).taskDuration('20s').create(plane)).metadata.name;
    const workload = await expectWorkloadCondition(plane, ns, run, 'PodsReady');
    expect(workload.spec.maximumExecutionTimeSeconds).toBe(8);
    await expectWorkloadCondition(plane, ns, run, 'Evicted', { reason: /MaximumExecutionTimeExceeded/ });
    await expect.poll(async () => (await pipelineRun(plane, ns, run))?.spec.status, { timeout: WAIT.step }).toBe('StoppedRunFinally');
    expect(condition(await expectRunFinished(plane, ns, run), 'Succeeded')?.status).toBe('False');
    await expectWorkloadFinished(plane, ns, run, 'Failed');
    await expectQueueEmpty(plane, 'e2e-max-exec');
  });
});

describe('queues stopped with HoldAndDrain', () => {
  it.each([
    ['ClusterQueue', 'e2e-cq-stop', /ClusterQueueStopped/],
    ['LocalQueue', 'e2e-lq-stop', /LocalQueueStopped/],
  ] as const)('%s: a started run is stopped, a queued one stays queued, and runs once the queue starts again', async (_, ns, reason) => {
    const queue = ns === 'e2e-cq-stop' ? { clusterQueue: ns } : { namespace: ns, localQueue: 'runs' };
    const started = (await new PipelineRunBuilder(ns, 'started').taskDuration('15s').create(plane)).metadata.name;
    await expectWorkloadCondition(plane, ns, started, 'PodsReady');
    const queuedRun = ns === 'e2e-cq-stop' ? new PipelineRunBuilder(ns, 'queued').pipelineRef('deploy') : new PipelineRunBuilder(ns, 'queued');
    const queued = (await queuedRun.create(plane)).metadata.name;
    const queuedWorkload = (await expectWorkload(plane, ns, queued)).metadata.name;
    await setStopPolicy(plane, queue, 'HoldAndDrain');
    await expectWorkloadCondition(plane, ns, started, 'Evicted', { reason });
    await expect.poll(async () => (await pipelineRun(plane, ns, started))?.spec.status, { timeout: WAIT.step }).toBe('StoppedRunFinally');
    expect(condition(await expectRunFinished(plane, ns, started), 'Succeeded')?.status).toBe('False');
    await expectWorkloadFinished(plane, ns, started, 'Failed');
    await expectStays('the queued run to wait while the queue is stopped', async () => !(await admitted(ns, queuedWorkload)) && (await nothingRan(ns, queued)), 5_000);
    await setStopPolicy(plane, queue, 'None');
    expect(condition(await expectRunFinished(plane, ns, queued), 'Succeeded')?.status).toBe('True');
    await expectQueueEmpty(plane, ns);
  });
});

describe('AdmissionCheck', () => {
  it('a check that asks for a retry evicts the Workload: the started run is stopped and gives its quota back', async () => {
    const ns = 'e2e-check';
    const check = 'e2e-manual';
    plane.apply(`apiVersion: kueue.x-k8s.io/v1beta2
kind: AdmissionCheck
metadata: {name: ${check}}
spec: {controllerName: e2e.tekton-kueue-policies.dev/manual}
`);
    // The scenario is the check's controller: it says the check is active, then answers it.
    plane.kubectl('patch', 'admissioncheck', check, '--subresource=status', '--type=merge', '-p', JSON.stringify({
      status: { conditions: [{ type: 'Active', status: 'True', reason: 'Active', message: 'answered by the e2e scenario', lastTransitionTime: new Date().toISOString() }] },
    }));
    await plane.objects.patch(CLUSTER_QUEUE, undefined, ns, { spec: { admissionChecksStrategy: { admissionChecks: [{ name: check }] } } });
    const run = (await new PipelineRunBuilder(ns, 'checked').taskDuration('15s').create(plane)).metadata.name;
    const answerCheck = (workload: string, state: 'Ready' | 'Retry') => plane.kubectl('patch', 'workload', '-n', ns, workload, '--subresource=status', '--type=merge', '-p', JSON.stringify({
      status: { admissionChecks: [{ name: check, state, message: `${state} by the e2e scenario`, lastTransitionTime: new Date().toISOString() }] },
    }));
    // As the check's controller would, answer once Kueue lists the check (Pending, after it reserves
    // quota), and again if Kueue's write of the list raced the answer.
    const answerReady = () => expect.poll(async () => {
      const workload = await workloadOf(plane, ns, run);
      const listed = (workload?.status?.admissionChecks ?? []).find((c: { name: string }) => c.name === check);
      if (listed?.state === 'Pending') answerCheck(workload!.metadata.name, 'Ready');
      return listed?.state;
    }, { timeout: WAIT.step, interval: WAIT.poll, message: `the check of ${ns}/${run} answered Ready` }).toBe('Ready');
    await expectWorkloadCondition(plane, ns, run, 'QuotaReserved');
    await answerReady();
    await expectWorkloadCondition(plane, ns, run, 'PodsReady');
    answerCheck((await workloadOf(plane, ns, run))!.metadata.name, 'Retry');
    await expectWorkloadCondition(plane, ns, run, 'Evicted', { reason: 'AdmissionCheck' });
    await expect.poll(async () => (await pipelineRun(plane, ns, run))?.spec.status, { timeout: WAIT.step }).toBe('StoppedRunFinally');
    expect(condition(await expectRunFinished(plane, ns, run), 'Succeeded')?.status).toBe('False');
    await expectWorkloadFinished(plane, ns, run, 'Failed');
    await expectQueueEmpty(plane, ns);
  });
});

