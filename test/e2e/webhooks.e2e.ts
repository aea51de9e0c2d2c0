/**
 * The gate as a real cluster runs it: behind Tekton's webhook (defaulting, validation, conversion
 * between tekton.dev/v1beta1 and v1) and Kueue's (Workload defaulting and validation, conversion),
 * both called by the API server through their Services. Every shape of run the gate produces
 * passes Tekton's validation and runs, and tekton.dev/v1beta1 runs are gated like v1 ones.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CUSTOM_RUN, GATE_TASK, GATED_LABEL, PIPELINE_RUN, TASK_RUN, WORKLOAD } from '../../src/gate/names.js';
import { ControlPlane, stopAll, synthesize } from './control-plane.js';
import { condition, type Obj } from './objects.js';
import {
  applyDeployPipeline,
  expectGatesOpen,
  expectQueueEmpty,
  expectRunFinished,
  expectStays,
  expectWorkload,
  expectWorkloadFinished,
  gateOpen,
  PipelineRunBuilder,
  podsOf,
  setStopPolicy,
  WAIT,
  workloadOf,
} from './scenario.js';

const V1BETA1 = { apiVersion: 'tekton.dev/v1beta1', kind: 'PipelineRun' };
const CRD = { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition' };
let plane: ControlPlane;

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 2 });
  await plane.installBundle(synthesize(join(import.meta.dirname, 'config.yaml')));
  for (const namespace of ['e2e-v1beta1', 'e2e-shapes']) applyDeployPipeline(plane, namespace, { withFinally: true });
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

function taskNames(run: Obj, list: 'tasks' | 'finally' = 'tasks'): string[] {
  return (run.spec.pipelineSpec?.[list] ?? []).map((t: { name: string }) => t.name);
}

describe('the webhooks of a cluster', () => {
  it("Tekton's and Kueue's webhooks are registered and the API server calls them", async () => {
    const configured = (kind: string) => plane.getJson<{ items: { metadata: { name: string }; webhooks: { clientConfig: { caBundle?: string; service?: { name: string } } }[] }[] }>(kind).items;
    for (const [kind, names] of [
      ['mutatingwebhookconfigurations', ['webhook.pipeline.tekton.dev', 'kueue-mutating-webhook-configuration']],
      ['validatingwebhookconfigurations', ['validation.webhook.pipeline.tekton.dev', 'config.webhook.pipeline.tekton.dev', 'kueue-validating-webhook-configuration']],
    ] as const) {
      const configs = configured(kind);
      for (const name of names) {
        const config = configs.find((c) => c.metadata.name === name);
        expect(config, `${kind} ${name}`).toBeDefined();
        for (const webhook of config!.webhooks) {
          expect(webhook.clientConfig.service?.name, name).toMatch(/^(tekton-pipelines-webhook|kueue-webhook-service)$/);
          expect(webhook.clientConfig.caBundle, name).toBeTruthy();
        }
      }
    }
    for (const crd of ['pipelineruns.tekton.dev', 'workloads.kueue.x-k8s.io']) {
      expect((await plane.objects.get(CRD, undefined, crd))?.spec.conversion.strategy, crd).toBe('Webhook');
    }

    // Each refuses what only it checks (the CRD schemas let both through).
    const badTask = new PipelineRunBuilder('e2e-shapes', 'bad-task').build();
    badTask.spec.pipelineSpec.tasks[1].name = 'Not_A_DNS_Label';
    await expect(plane.objects.create(badTask)).rejects.toThrow(/validation\.webhook\.pipeline\.tekton\.dev.*invalid value\W*Not_A_DNS_Label/s);
    const reservedResource = {
      apiVersion: WORKLOAD.apiVersion,
      kind: WORKLOAD.kind,
      metadata: { name: 'reserved-resource', namespace: 'e2e-shapes' },
      spec: { queueName: 'runs', podSets: [{ name: 'main', count: 1, template: { spec: { containers: [{ name: 'main', resources: { requests: { pods: '1' } } }] } } }] },
    };
    await expect(plane.objects.create(reservedResource)).rejects.toThrow(/vworkload\.kb\.io.*the key is reserved for internal kueue use/s);
  });
});

describe('tekton.dev/v1beta1 runs', () => {
  it('inline runs are gated, wait for their turn, run and give their quota back', async () => {
    const ns = 'e2e-v1beta1';
    const created = [];
    for (const prefix of ['first', 'second']) created.push(await new PipelineRunBuilder(ns, prefix).v1beta1().taskDuration('5s').create(plane));
    for (const run of created) {
      expect(run.apiVersion).toBe(V1BETA1.apiVersion);
      expect(taskNames(run)[0]).toBe(GATE_TASK);
      expect(run.metadata.labels?.[GATED_LABEL]).toBe('customrun');
    }
    const [first, second] = created.map((r) => r.metadata.name) as [string, string];
    // One run of quota: the first is let go, the second waits until the first has ended.
    await expectGatesOpen(plane, ns, [first]);
    await expectWorkload(plane, ns, second);
    expect(await gateOpen(plane, ns, second)).toBe(false);
    await expectRunFinished(plane, ns, first);
    for (const name of [first, second]) {
      expect(condition(await expectRunFinished(plane, ns, name), 'Succeeded')?.status, name).toBe('True');
      await expectWorkloadFinished(plane, ns, name, 'Succeeded');
    }
    // Stored as v1, served as v1beta1 too: Tekton's conversion in both directions.
    const read = await plane.objects.get(V1BETA1, ns, second);
    expect(taskNames(read!)).toEqual([GATE_TASK, 'build', 'test']);
    await expectQueueEmpty(plane, 'e2e-v1beta1');
  });

  it('a pipelineRef run is held pending, then runs', async () => {
    const ns = 'e2e-v1beta1';
    const created = await new PipelineRunBuilder(ns, 'ref').v1beta1().pipelineRef('deploy').create(plane);
    expect(created.spec.status).toBe('PipelineRunPending');
    expect(condition(await expectRunFinished(plane, ns, created.metadata.name), 'Succeeded')?.status).toBe('True');
    await expectWorkloadFinished(plane, ns, created.metadata.name, 'Succeeded');
  });
});

/** An inline spec with every feature the gate must keep: params, results, when, matrix, finally. */
const FEATURED_SPEC = {
  params: [{ name: 'deploy', type: 'string' }],
  results: [{ name: 'digest', value: '$(tasks.build.results.digest)' }],
  tasks: [
    { name: 'build', taskSpec: { results: [{ name: 'digest' }], steps: [{ name: 'build', image: 'busybox', script: 'echo build' }] } },
    {
      name: 'test',
      runAfter: ['build'],
      when: [{ input: '$(tasks.build.results.digest)', operator: 'in', values: ['sha256:e2e'] }],
      matrix: { params: [{ name: 'os', value: ['linux', 'windows'] }] },
      taskSpec: { params: [{ name: 'os' }], steps: [{ name: 'test', image: 'busybox', script: 'echo $(params.os)' }] },
    },
    {
      name: 'deploy',
      runAfter: ['test'],
      when: [{ input: '$(params.deploy)', operator: 'in', values: ['yes'] }],
      taskSpec: { steps: [{ name: 'deploy', image: 'busybox', script: 'echo deploy' }] },
    },
  ],
  finally: [
    {
      name: 'report',
      params: [{ name: 'digest', value: '$(tasks.build.results.digest)' }],
      when: [{ input: '$(tasks.status)', operator: 'notin', values: ['Failed'] }],
      taskSpec: { params: [{ name: 'digest' }], steps: [{ name: 'report', image: 'busybox', script: 'echo $(params.digest)' }] },
    },
  ],
};

describe("Tekton's validation and run of every shape the gate produces", () => {
  it('inline with params, results, when, matrix and finally; pipelineRef; cluster resolver; created pending by its user', async () => {
    const ns = 'e2e-shapes';
    // Held until every shape is in: the queue admits nothing meanwhile.
    await setStopPolicy(plane, { clusterQueue: 'e2e-shapes' }, 'Hold');
    const featured = await new PipelineRunBuilder(ns, 'featured').pipelineSpec(FEATURED_SPEC).param('deploy', 'no').taskResults({ digest: 'sha256:e2e' }).create(plane);
    const byRef = await new PipelineRunBuilder(ns, 'by-ref').pipelineRef('deploy').create(plane);
    const resolved = await new PipelineRunBuilder(ns, 'resolved').resolver('deploy').create(plane);
    const userPending = await new PipelineRunBuilder(ns, 'user-pending').pipelineRef('deploy').userPending().create(plane);

    // Admitted by Tekton's validation as the gate made them.
    expect(taskNames(featured)).toEqual([GATE_TASK, 'build', 'test', 'deploy']);
    expect(featured.spec.pipelineSpec.tasks[2]).toMatchObject({ runAfter: [GATE_TASK, 'build'], when: FEATURED_SPEC.tasks[1]!.when, matrix: FEATURED_SPEC.tasks[1]!.matrix });
    expect(featured.spec.pipelineSpec.finally[0].when).toEqual([...FEATURED_SPEC.finally[0]!.when, { input: `$(tasks.${GATE_TASK}.status)`, operator: 'in', values: ['Succeeded'] }]);
    for (const run of [byRef, resolved, userPending]) expect(run.spec.status, run.metadata.name).toBe('PipelineRunPending');
    const names = [featured, byRef, resolved, userPending].map((r) => r.metadata.name);
    for (const name of names.slice(0, 3)) await expectWorkload(plane, ns, name);
    await expectStays('nothing runs while the queue holds', async () => {
      const pods = await Promise.all(names.map((name) => podsOf(plane, ns, name)));
      return pods.every((p) => p.length === 0);
    }, 3_000);
    expect(await workloadOf(plane, ns, userPending.metadata.name)).toBeUndefined();

    // Its user releases the last; then the queue admits again.
    await plane.objects.patch(PIPELINE_RUN, ns, userPending.metadata.name, { spec: { status: null } });
    await expectWorkload(plane, ns, userPending.metadata.name);
    await setStopPolicy(plane, { clusterQueue: 'e2e-shapes' }, 'None');
    for (const name of names) {
      expect(condition(await expectRunFinished(plane, ns, name, WAIT.run), 'Succeeded')?.status, name).toBe('True');
      await expectWorkloadFinished(plane, ns, name, 'Succeeded');
    }

    const done = (await plane.objects.get(PIPELINE_RUN, ns, featured.metadata.name))!;
    expect(done.status?.results).toEqual([{ name: 'digest', value: 'sha256:e2e' }]);
    expect(done.status?.skippedTasks).toEqual([expect.objectContaining({ name: 'deploy', reason: 'When Expressions evaluated to false' })]);
    const children = done.status?.childReferences as { kind: string; pipelineTaskName: string }[];
    expect(children.filter((c) => c.kind === CUSTOM_RUN.kind).map((c) => c.pipelineTaskName)).toEqual([GATE_TASK]);
    expect(children.filter((c) => c.kind === TASK_RUN.kind).map((c) => c.pipelineTaskName).sort()).toEqual(['build', 'report', 'test', 'test']);
    await expectQueueEmpty(plane, 'e2e-shapes');
  });
});
