/**
 * Routing rules and cohorts on the whole control plane. In e2e-routed, the config's rules give a
 * Pipelines-as-Code run its priority from the event that started it and send the deploy pipeline to
 * a queue of its own; e2e-cohort-a and e2e-cohort-b share a cohort, each with a quota of one run
 * (config.yaml).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTED_BY } from '../../src/gate/names.js';
import { ControlPlane, stopAll, synthesize } from './control-plane.js';
import { condition, type Obj } from './objects.js';
import {
  applyDeployPipeline,
  CLUSTER_QUEUE,
  expectGatesOpen,
  expectQueueEmpty,
  expectRunFinished,
  expectWorkload,
  expectWorkloadCondition,
  gateOpen,
  PipelineRunBuilder,
  pipelineRun,
  WAIT,
} from './scenario.js';

/** Pipelines-as-Code's label naming the event that started a run. */
const EVENT = 'pipelinesascode.tekton.dev/event-type';

let plane: ControlPlane;

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 3 });
  await plane.installBundle(synthesize(join(import.meta.dirname, 'config.yaml')));
  applyDeployPipeline(plane, 'e2e-routed');
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

/** What the Workload of a run asks Kueue for. */
function asked(workload: Obj) {
  return {
    queue: workload.spec.queueName,
    priorityClass: workload.spec.priorityClassRef?.name,
    priority: workload.spec.priority,
    cpu: workload.spec.podSets[0].template.spec.containers[0].resources.requests.cpu,
  };
}

describe('routing rules', () => {
  it('a push of Pipelines-as-Code gets its priority from its rule; a pull request asking for high gets low, as its rule enforces; a run no rule matches keeps the defaults', async () => {
    const ns = 'e2e-routed';
    const push = await new PipelineRunBuilder(ns, 'push').label(EVENT, 'push').create(plane);
    const pullRequest = await new PipelineRunBuilder(ns, 'pull-request').label(EVENT, 'pull_request').priority('high').create(plane);
    const plain = await new PipelineRunBuilder(ns, 'plain').create(plane);
    expect(push.metadata.annotations?.[ROUTED_BY]).toBe('route-pushes');
    expect(pullRequest.metadata.annotations?.[ROUTED_BY]).toBe('route-pull-requests');
    expect(plain.metadata.annotations?.[ROUTED_BY]).toBeUndefined();

    expect(asked(await expectWorkload(plane, ns, push.metadata.name))).toEqual({ queue: 'runs', priorityClass: 'high', priority: 1000, cpu: '100m' });
    expect(asked(await expectWorkload(plane, ns, pullRequest.metadata.name))).toEqual({ queue: 'runs', priorityClass: 'low', priority: 100, cpu: '100m' });
    expect(asked(await expectWorkload(plane, ns, plain.metadata.name))).toEqual({ queue: 'runs', priorityClass: 'low', priority: 100, cpu: '100m' });
    for (const run of [push, pullRequest, plain]) expect(condition(await expectRunFinished(plane, ns, run.metadata.name), 'Succeeded')?.status, run.metadata.name).toBe('True');
    await expectQueueEmpty(plane, 'e2e-routed');
  });

  it('a run of the deploy pipeline waits in the releases queue with the requests of a release, and a run that forged the route annotation is routed all the same', async () => {
    const ns = 'e2e-routed';
    const release = await new PipelineRunBuilder(ns, 'release').pipelineRef('deploy').create(plane);
    const forged = await new PipelineRunBuilder(ns, 'forged').pipelineRef('deploy').annotation(ROUTED_BY, 'route-pushes').create(plane);
    for (const run of [release, forged]) {
      expect(run.metadata.annotations?.[ROUTED_BY], run.metadata.name).toBe('route-releases');
      expect(asked(await expectWorkload(plane, ns, run.metadata.name)), run.metadata.name).toEqual({ queue: 'releases', priorityClass: 'low', priority: 100, cpu: '1500m' });
    }
    for (const run of [release, forged]) expect(condition(await expectRunFinished(plane, ns, run.metadata.name), 'Succeeded')?.status, run.metadata.name).toBe('True');
    await expectQueueEmpty(plane, 'e2e-routed-releases');
  });
});

describe('a cohort', () => {
  it("a team borrows the other team's idle quota, and gives it back by preemption when that team needs it", async () => {
    const [a, b] = ['e2e-cohort-a', 'e2e-cohort-b'];
    const borrowers: string[] = [];
    for (const prefix of ['first', 'second']) borrowers.push((await new PipelineRunBuilder(a, prefix).taskDuration('15s').create(plane)).metadata.name);
    // Two runs at once on a quota of one: the second borrows team B's idle run.
    await expectGatesOpen(plane, a, borrowers);
    const borrowed = async () => {
      const usage = (await plane.objects.get(CLUSTER_QUEUE, undefined, a))?.status?.flavorsUsage?.[0]?.resources ?? [];
      return usage.find((r: { name: string }) => r.name === 'tekton.dev/pipelineruns')?.borrowed;
    };
    await expect.poll(borrowed, { timeout: WAIT.step, message: `ClusterQueue ${a} to borrow a run` }).toBe('1');

    const own = (await new PipelineRunBuilder(b, 'own').create(plane)).metadata.name;
    await expectWorkload(plane, b, own);
    // Team B reclaims its quota: one of team A's runs is preempted, and the gate stops it.
    const stopped = async () => (await Promise.all(borrowers.map(async (run) => ((await pipelineRun(plane, a, run))?.spec.status === 'StoppedRunFinally' ? [run] : [])))).flat();
    await expect.poll(stopped, { timeout: WAIT.step, message: 'a run of team A to be stopped' }).toHaveLength(1);
    const [preempted] = await stopped();
    await expectWorkloadCondition(plane, a, preempted!, 'Preempted', { reason: 'InCohortReclamation' });
    expect(await gateOpen(plane, b, own)).toBe(false);

    expect(condition(await expectRunFinished(plane, a, preempted!), 'Succeeded')?.status).toBe('False');
    expect(condition(await expectRunFinished(plane, b, own), 'Succeeded')?.status).toBe('True');
    const kept = borrowers.find((run) => run !== preempted)!;
    expect(condition(await expectRunFinished(plane, a, kept), 'Succeeded')?.status).toBe('True');
    for (const queue of [a, b]) await expectQueueEmpty(plane, queue);
  });
});
