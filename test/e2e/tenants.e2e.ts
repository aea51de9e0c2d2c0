/**
 * A tenant with Tekton's edit rights (the cluster's `edit` role, which Tekton's release extends), in
 * a namespace whose queue admits nothing, tries every way to start a run without Kueue's admission,
 * on the whole control plane: Kyverno's mutation and validation, the tenant guard in the API
 * server, Tekton and Kueue. None may start a TaskRun or get a Workload without a PipelineRun, and
 * bad input is refused at creation. What the trusted identities do still works.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CUSTOM_RUN, PIPELINE_RUN, TASK_RUN, WORKLOAD } from '../../src/gate/names.js';
import { ControlPlane, stopAll, synthesize, waitFor } from './control-plane.js';
import { condition, type Obj } from './objects.js';
import { applyDeployPipeline, as, expectRunFinished, expectStays, expectWorkload, gateOf, PipelineRunBuilder, WAIT } from './scenario.js';

const ns = 'e2e-tenant';
const TENANT = `system:serviceaccount:${ns}:tenant`;
/** Edit rights and the opt-out grant. */
const RELEASE_BOT = 'release-bot';
let plane: ControlPlane;
let tenant: ReturnType<typeof as>;

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 3 });
  await plane.installBundle(synthesize(join(import.meta.dirname, 'config.yaml')));
  plane.apply(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: edit, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects:
  - {kind: ServiceAccount, name: tenant, namespace: ${ns}}
  - {kind: User, name: ${RELEASE_BOT}, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: opt-out, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tekton-kueue-policies:opt-out}
subjects: [{kind: User, name: ${RELEASE_BOT}, apiGroup: rbac.authorization.k8s.io}]
`);
  applyDeployPipeline(plane, ns, { withFinally: true });
  tenant = as(plane, TENANT);
  // Tekton's edit role reaches `edit` through ClusterRole aggregation: wait for it.
  await waitFor('edit to grant Tekton\'s resources', () => plane.tryKubectl(['auth', 'can-i', 'create', 'pipelineruns.tekton.dev', '-n', ns, '--as', TENANT]).ok, WAIT.step);
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

/** Nothing of the run ran: no TaskRun of it exists. */
async function noTaskRunOf(run: string): Promise<boolean> {
  return (await plane.objects.list(TASK_RUN, ns, `tekton.dev/pipelineRun=${run}`)).length === 0;
}

/** Created (the gate makes it wait), and nothing of it runs while the queue admits nothing. */
async function expectHeldBack(attempt: { allowed: boolean; message: string; object?: Obj }): Promise<Obj> {
  expect(attempt.allowed, attempt.message).toBe(true);
  const name = attempt.object!.metadata.name;
  await expectWorkload(plane, ns, name);
  await expectStays(`no TaskRun of ${name}`, () => noTaskRunOf(name), 5_000);
  return attempt.object!;
}

function expectRefused(attempt: { allowed: boolean; message: string }, ...says: string[]): void {
  expect(attempt.allowed, 'refused').toBe(false);
  for (const text of says) expect(attempt.message).toContain(text);
}

describe('a tenant cannot start a run without Kueue\'s admission', () => {
  it.each(['customrun', 'pending'])('a pipelineRef run created with the gate label "%s" is held pending all the same', async (value) => {
    const run = await expectHeldBack(tenant.create(new PipelineRunBuilder(ns, 'claims').pipelineRef('deploy').label('tekton-kueue-policies.dev/gate', value).build()));
    expect(run.spec.status).toBe('PipelineRunPending');
    expect(run.metadata.labels?.['tekton-kueue-policies.dev/gate']).toBe('pending');
  });

  it('a task of its own named like the gate is replaced by the gate', async () => {
    const lookalike = new PipelineRunBuilder(ns, 'lookalike').build();
    lookalike.spec.pipelineSpec.tasks.unshift({ name: 'kueue-gate', taskSpec: { steps: [{ name: 'go', image: 'busybox', script: 'echo no queue' }] } });
    const run = await expectHeldBack(tenant.create(lookalike));
    // The bundle's gate, as stored: Tekton's defaulting adds the empty metadata.
    expect(run.spec.pipelineSpec.tasks[0].taskSpec).toEqual({ apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'Workload', metadata: {}, spec: {} });
    expect(run.spec.pipelineSpec.tasks.filter((t: { name: string }) => t.name === 'kueue-gate')).toHaveLength(1);
  });

  it('a gate custom task no task waits for: every task is made to wait for it', async () => {
    const unawaited = new PipelineRunBuilder(ns, 'unawaited').build();
    unawaited.spec.pipelineSpec.tasks.unshift({ name: 'kueue-gate', taskSpec: { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'Workload', spec: {} } });
    const run = await expectHeldBack(tenant.create(unawaited));
    for (const task of run.spec.pipelineSpec.tasks.slice(1)) expect(task.runAfter).toContain('kueue-gate');
  });

  it('the opt-out label is refused, naming the grant to ask for', () => {
    expectRefused(tenant.create(new PipelineRunBuilder(ns, 'skip').label('tekton-kueue-policies.dev/opt-out', 'true').build()), 'opt-out-granted', 'tekton-kueue-policies:opt-out');
  });

  it('through tekton.dev/v1beta1 all the same: the opt-out label is refused, a run is held back', async () => {
    expectRefused(tenant.create(new PipelineRunBuilder(ns, 'skip').v1beta1().label('tekton-kueue-policies.dev/opt-out', 'true').build()), 'opt-out-granted', 'tekton-kueue-policies:opt-out');
    const run = await expectHeldBack(tenant.create(new PipelineRunBuilder(ns, 'v1beta1').v1beta1().build()));
    expect(run.apiVersion).toBe('tekton.dev/v1beta1');
    expect(run.spec.pipelineSpec.tasks[0].name).toBe('kueue-gate');
  });

  it('a held run cannot be released by its tenant, only cancelled', async () => {
    const run = await expectHeldBack(tenant.create(new PipelineRunBuilder(ns, 'held').pipelineRef('deploy').build()));
    const name = run.metadata.name;
    for (const status of [null, '', 'StoppedRunFinally', 'CancelledRunFinally']) {
      expectRefused(tenant.patch('pipelinerun', ns, name, { spec: { status } }), 'released-by-gate', 'spec.status: Cancelled');
    }
    expect(tenant.patch('pipelinerun', ns, name, { spec: { status: 'Cancelled' } }).allowed).toBe(true);
    expect(condition(await expectRunFinished(plane, ns, name), 'Succeeded')?.reason).toBe('Cancelled');
    expect(await noTaskRunOf(name)).toBe(true);
  });

  it('an inline run cancelled while it waits runs none of its finally tasks', async () => {
    const run = await expectHeldBack(tenant.create(new PipelineRunBuilder(ns, 'cancel-finally').build()));
    expect(tenant.patch('pipelinerun', ns, run.metadata.name, { spec: { status: 'CancelledRunFinally' } }).allowed).toBe(true);
    await expectRunFinished(plane, ns, run.metadata.name);
    await expectStays('no finally task ran', () => noTaskRunOf(run.metadata.name), 3_000);
  });

  it('a run its tenant created pending is queued when they release it, and still waits for Kueue', async () => {
    const created = tenant.create(new PipelineRunBuilder(ns, 'mine').pipelineRef('deploy').userPending().build());
    expect(created.allowed, created.message).toBe(true);
    const name = created.object!.metadata.name;
    const released = tenant.patch('pipelinerun', ns, name, { spec: { status: null } });
    expect(released.allowed, released.message).toBe(true);
    expect(released.object!.spec.status).toBe('PipelineRunPending');
    await expectWorkload(plane, ns, name);
    await expectStays('no TaskRun', () => noTaskRunOf(name), 5_000);
  });

  it('gate CustomRuns and TaskRuns made by hand are refused: no Workload without a PipelineRun', async () => {
    expectRefused(
      tenant.create({
        apiVersion: CUSTOM_RUN.apiVersion,
        kind: CUSTOM_RUN.kind,
        metadata: { name: 'forged-kueue-gate', namespace: ns, labels: { 'tekton.dev/pipelineTask': 'kueue-gate', 'tekton.dev/pipelineRun': 'forged' } },
        spec: { customSpec: { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'Workload', spec: {} } },
      }),
      'children-by-tekton',
    );
    expectRefused(
      tenant.create({ apiVersion: TASK_RUN.apiVersion, kind: TASK_RUN.kind, metadata: { name: 'direct', namespace: ns }, spec: { taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'echo' }] } } }),
      'children-by-tekton',
      'Run it in a PipelineRun',
    );
    expect(await plane.objects.get(WORKLOAD, ns, 'forged-kueue-gate')).toBeUndefined();
  });
});

describe('bad input is refused at creation, saying what to write', () => {
  it.each([
    ['a queue that does not exist', (r: PipelineRunBuilder) => r.queue('nightly'), ['queue "nightly"', 'is no LocalQueue of namespace e2e-tenant; its LocalQueues: runs']],
    ['a request that is not a quantity', (r: PipelineRunBuilder) => r.annotation('kueue.konflux-ci.dev/requests-cpu', 'lots'), ['requests-cpu: "lots" is not a resource quantity']],
    ['a resource the ClusterQueue does not cover', (r: PipelineRunBuilder) => r.annotation('kueue.konflux-ci.dev/requests-memory', '1Gi'), ['asks for memory, which ClusterQueue e2e-closed', 'it covers cpu, tekton.dev/pipelineruns']],
    ['a time limit that is not a number of seconds', (r: PipelineRunBuilder) => r.label('kueue.x-k8s.io/max-exec-time-seconds', '1h'), ['max-exec-time-seconds: "1h" is not a whole number of seconds']],
  ] as const)('%s', (_, change, says) => {
    expectRefused(tenant.create(change(new PipelineRunBuilder(ns, 'bad')).build()), ...says);
  });

  it('an unknown priority class only warns: the run gets the default class', async () => {
    const created = tenant.create(new PipelineRunBuilder(ns, 'urgent').priority('urgent').build());
    expect(created.allowed, created.message).toBe(true);
    expect(created.message).toContain('names no priority class of the gate (high, low); the run gets low');
  });
});

describe('the trusted identities still do their part', () => {
  it('Tekton creates the gate CustomRun of a tenant\'s run, and Kyverno its Workload', async () => {
    const created = tenant.create(new PipelineRunBuilder(ns, 'gated').build());
    await expect.poll(() => gateOf(plane, ns, created.object!.metadata.name), { timeout: WAIT.step }).toBeDefined();
    const workload = await expectWorkload(plane, ns, created.object!.metadata.name);
    expect(workload.metadata.ownerReferences?.[0]?.kind).toBe('CustomRun');
  });

  it('a subject granted the opt-out starts a run at once', async () => {
    const created = as(plane, RELEASE_BOT).create(new PipelineRunBuilder(ns, 'bot').label('tekton-kueue-policies.dev/opt-out', 'true').build());
    expect(created.allowed, created.message).toBe(true);
    const run = await expectRunFinished(plane, ns, created.object!.metadata.name);
    expect(condition(run, 'Succeeded')?.status).toBe('True');
  });

  it('in the end, no TaskRun ran but the opted-out run\'s, and every Workload belongs to a PipelineRun', async () => {
    const runs = new Map((await plane.objects.list(PIPELINE_RUN, ns)).map((r) => [r.metadata.name, r]));
    for (const taskRun of await plane.objects.list(TASK_RUN, ns)) {
      const run = runs.get(taskRun.metadata.labels!['tekton.dev/pipelineRun']!);
      expect(run?.metadata.labels?.['tekton-kueue-policies.dev/opt-out'], taskRun.metadata.name).toBe('true');
    }
    const gates = new Map((await plane.objects.list(CUSTOM_RUN, ns)).map((c) => [c.metadata.name, c]));
    for (const workload of await plane.objects.list(WORKLOAD, ns)) {
      const owner = workload.metadata.ownerReferences![0]!;
      const run = owner.kind === 'CustomRun' ? runs.get(gates.get(owner.name)?.metadata.labels?.['tekton.dev/pipelineRun'] ?? '') : runs.get(owner.name);
      expect(run, workload.metadata.name).toBeDefined();
    }
  });
});
