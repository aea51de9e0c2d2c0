/**
 * What the scenarios are written with: a typed PipelineRun builder and named waits on real
 * objects, with shared timeouts. No bare sleeps: "stays so" is `expectStays`, a check repeated
 * for a while.
 */
import { expect } from 'vitest';
import { CUSTOM_RUN, GATED_LABEL, MAX_EXEC_TIME_LABEL, PIPELINE_RUN, PIPELINE_RUN_LABEL, PRIORITY_LABEL, QUEUE_LABEL, WORKLOAD } from '../../src/gate/names.js';
import { type ControlPlane, FAIL_LABEL, TASK_DURATION_LABEL, TASK_RESULTS_ANNOTATION, waitFor } from './control-plane.js';
import { condition, EVENT, type Obj, POD, SERVICE_ACCOUNT, UPDATE_REQUEST } from './objects.js';

/** Shared timeouts: a queue step (admission, release, a stop), a whole run, a drain of several. */
export const WAIT = { step: 60_000, run: 180_000, drain: 300_000, poll: 500 } as const;

const CLUSTER_QUEUE = { apiVersion: WORKLOAD.apiVersion, kind: 'ClusterQueue' };
const LOCAL_QUEUE = { apiVersion: WORKLOAD.apiVersion, kind: 'LocalQueue' };

type Task = { name: string; runAfter?: string[]; taskSpec: { steps: { name: string; image: string; script: string }[] } };

function task(name: string, runAfter?: string): Task {
  return { name, ...(runAfter ? { runAfter: [runAfter] } : {}), taskSpec: { steps: [{ name, image: 'busybox', script: `#!/bin/sh\necho ${name}\n` }] } };
}

/** A PipelineRun as a scenario wants it; `create(plane)` submits it under a generated name. */
export class PipelineRunBuilder {
  private readonly run: Obj & { spec: Record<string, any> };

  constructor(namespace: string, prefix = 'e2e') {
    this.run = {
      apiVersion: PIPELINE_RUN.apiVersion,
      kind: PIPELINE_RUN.kind,
      metadata: { name: '', generateName: `${prefix}-`, namespace, labels: {}, annotations: {} },
      spec: {},
    };
    this.inline();
  }

  /** An inline spec: `build`, then `test`, and a `finally` task (strategy customrun gates it). */
  inline(): this {
    delete this.run.spec.pipelineRef;
    this.run.spec.pipelineSpec = { tasks: [task('build'), task('test', 'build')], finally: [task('report')] };
    return this;
  }

  /** An inline spec of the scenario's own. */
  pipelineSpec(spec: Record<string, unknown>): this {
    delete this.run.spec.pipelineRef;
    this.run.spec.pipelineSpec = structuredClone(spec);
    return this;
  }

  /** A Pipeline by name (strategy pending gates it). */
  pipelineRef(name: string): this {
    delete this.run.spec.pipelineSpec;
    this.run.spec.pipelineRef = { name };
    return this;
  }

  /** A Pipeline through Tekton's cluster resolver. */
  resolver(name: string): this {
    delete this.run.spec.pipelineSpec;
    this.run.spec.pipelineRef = { resolver: 'cluster', params: [{ name: 'kind', value: 'pipeline' }, { name: 'name', value: name }, { name: 'namespace', value: this.run.metadata.namespace }] };
    return this;
  }

  /** Submitted as `tekton.dev/v1beta1` (the API server converts it through Tekton's webhook). */
  v1beta1(): this {
    this.run.apiVersion = 'tekton.dev/v1beta1';
    return this;
  }

  param(name: string, value: string): this {
    (this.run.spec.params ??= []).push({ name, value });
    return this;
  }

  /** Every task of the run reports these results (string values) on the fake node. */
  taskResults(results: Record<string, string>): this {
    return this.annotation(TASK_RESULTS_ANNOTATION, JSON.stringify(Object.entries(results).map(([key, value]) => ({ key, value, type: 1 }))));
  }

  /** Created with `spec.status: PipelineRunPending` by its user. */
  userPending(): this {
    this.run.spec.status = 'PipelineRunPending';
    return this;
  }

  queue(name: string): this {
    return this.label(QUEUE_LABEL, name);
  }

  priority(name: string): this {
    return this.label(PRIORITY_LABEL, name);
  }

  /** Every task fails. */
  failing(): this {
    return this.label(FAIL_LABEL, 'true');
  }

  /** Every task runs this long on the fake node (`45s`). */
  taskDuration(duration: string): this {
    return this.label(TASK_DURATION_LABEL, duration);
  }

  /** Kueue's maximum execution time of its Workload. */
  maxExecutionSeconds(seconds: number): this {
    return this.label(MAX_EXEC_TIME_LABEL, String(seconds));
  }

  timeout(pipeline: string): this {
    this.run.spec.timeouts = { pipeline };
    return this;
  }

  label(key: string, value: string): this {
    this.run.metadata.labels![key] = value;
    return this;
  }

  annotation(key: string, value: string): this {
    this.run.metadata.annotations![key] = value;
    return this;
  }

  build(): Obj {
    return structuredClone(this.run);
  }

  /** Creates the run; returns it as the API server stored it (after Kyverno's mutation). */
  async create(plane: ControlPlane): Promise<Obj> {
    return plane.objects.create(this.build());
  }
}

/** A PipelineRun, refreshed. */
export async function pipelineRun(plane: ControlPlane, namespace: string, name: string): Promise<Obj | undefined> {
  return plane.objects.get(PIPELINE_RUN, namespace, name);
}

/** The Workload of a gated run (both mechanisms label it with the run's name). */
export async function workloadOf(plane: ControlPlane, namespace: string, run: string): Promise<Obj | undefined> {
  const [workload] = await plane.objects.list(WORKLOAD, namespace, `${PIPELINE_RUN_LABEL}=${run},${GATED_LABEL}`);
  return workload;
}

/** The gate CustomRun of a run gated by strategy customrun. */
export async function gateOf(plane: ControlPlane, namespace: string, run: string): Promise<Obj | undefined> {
  const [gate] = await plane.objects.list(CUSTOM_RUN, namespace, `${PIPELINE_RUN_LABEL}=${run}`);
  return gate;
}

/** Whether the gate CustomRun of a run has let it go (Succeeded=True). */
export async function gateOpen(plane: ControlPlane, namespace: string, run: string): Promise<boolean> {
  return condition(await gateOf(plane, namespace, run), 'Succeeded')?.status === 'True';
}

/** Waits until the gates of the runs are open: they hold their queue's quota. */
export async function expectGatesOpen(plane: ControlPlane, namespace: string, runs: readonly string[], timeout: number = WAIT.step): Promise<void> {
  await expect
    .poll(async () => (await Promise.all(runs.map((run) => gateOpen(plane, namespace, run)))).every(Boolean), { timeout, interval: WAIT.poll, message: `the gates of ${runs.join(', ')} to open` })
    .toBe(true);
}

/**
 * The Pipeline `deploy` of one task (and a finally task, when asked), for runs by reference or
 * through the cluster resolver.
 */
export function applyDeployPipeline(plane: ControlPlane, namespace: string, { withFinally = false } = {}): void {
  const step = (name: string) => ({ name, taskSpec: { steps: [{ name, image: 'busybox', script: `echo ${name}` }] } });
  plane.apply(JSON.stringify({
    apiVersion: PIPELINE_RUN.apiVersion,
    kind: 'Pipeline',
    metadata: { name: 'deploy', namespace },
    spec: { tasks: [step('deploy')], ...(withFinally ? { finally: [step('report')] } : {}) },
  }));
}

/** Names of the TaskRun pods of a run (Tekton labels pods with their run). */
export async function podsOf(plane: ControlPlane, namespace: string, run: string): Promise<Obj[]> {
  return plane.objects.list(POD, namespace, `${PIPELINE_RUN_LABEL}=${run}`);
}

/** How many times Kueue admitted a run's Workload, from Kueue's own events. */
export async function admissionsOf(plane: ControlPlane, namespace: string, workload: string): Promise<number> {
  const events = await plane.objects.list<Obj & { reason?: string; involvedObject?: { name: string; kind: string }; count?: number; series?: { count: number } }>(EVENT, namespace);
  return events
    .filter((e) => e.reason === 'Admitted' && e.involvedObject?.kind === 'Workload' && e.involvedObject.name === workload)
    .reduce((n, e) => n + (e.series?.count ?? e.count ?? 1), 0);
}

/**
 * A ClusterPolicy's UpdateRequest names its rules, a GeneratingPolicy's the policy; a
 * MutatingPolicy's has no `ruleContext`.
 */
type UpdateRequest = Omit<Obj, 'spec'> & {
  spec: { ruleContext?: { rule: string; trigger: { name: string } }[]; context?: { admissionRequestInfo?: { operation?: string } } };
};

/** The bundle's dialect is CEL (generate-workload is a GeneratingPolicy). */
const cel = () => process.env.E2E_DIALECT === 'cel';

/**
 * Waits for the UpdateRequest of generate-workload's `rule` on the creation of `trigger`, and
 * deletes it before Kyverno acts on it: with Kyverno's background controller stopped, the event is
 * lost as Kyverno loses it when it looks for a trigger the API server has not stored yet. A
 * GeneratingPolicy's UpdateRequests name the policy, whatever the request: the creation's is the
 * one of a CREATE.
 */
export async function loseWorkloadCreation(plane: ControlPlane, rule: string, trigger: string): Promise<void> {
  const [named, operation] = cel() ? ['generate-workload', 'CREATE'] : [rule, undefined];
  let lost: UpdateRequest | undefined;
  await expect
    .poll(async () => {
      const requests = await plane.objects.list<UpdateRequest>(UPDATE_REQUEST, 'kyverno');
      lost = requests.find(
        (ur) => ur.spec.ruleContext?.some((c) => c.rule === named && c.trigger.name === trigger) && (!operation || ur.spec.context?.admissionRequestInfo?.operation === operation),
      );
      return lost;
    }, { timeout: WAIT.step, interval: WAIT.poll, message: `the UpdateRequest of ${named} for the creation of ${trigger}` })
    .toBeDefined();
  await plane.objects.delete(UPDATE_REQUEST, 'kyverno', lost!.metadata.name);
}

/**
 * What generated the Workload, as Kyverno labels it, in the dialect's terms: a ClusterPolicy's rule
 * of the model (`rule`), or one of the GeneratingPolicies `celPolicies` (on events, at the re-apply).
 */
export function expectGeneratedBy(workload: Obj, rule: string, celPolicies: readonly ('generate-workload' | 'generate-workload-reapply')[]): void {
  const labels = workload.metadata.labels ?? {};
  if (cel()) expect(celPolicies).toContain(labels['generate.kyverno.io/policy-name']);
  else expect(labels['generate.kyverno.io/rule-name']).toBe(rule);
}

/** Waits until the run has finished; returns it. */
export async function expectRunFinished(plane: ControlPlane, namespace: string, name: string, timeout: number = WAIT.run): Promise<Obj> {
  let run: Obj | undefined;
  await expect
    .poll(async () => {
      run = await pipelineRun(plane, namespace, name);
      return condition(run, 'Succeeded')?.status;
    }, { timeout, interval: WAIT.poll, message: `PipelineRun ${namespace}/${name} to finish` })
    .toMatch(/^(True|False)$/);
  return run!;
}

/** Waits until the gate has made the run's Workload; returns it. */
export async function expectWorkload(plane: ControlPlane, namespace: string, run: string, timeout: number = WAIT.step): Promise<Obj> {
  let workload: Obj | undefined;
  await expect
    .poll(async () => (workload = await workloadOf(plane, namespace, run)), { timeout, interval: WAIT.poll, message: `a Workload for ${namespace}/${run}` })
    .toBeDefined();
  return workload!;
}

/** Waits until the run's Workload has the condition; returns the Workload. */
export async function expectWorkloadCondition(plane: ControlPlane, namespace: string, run: string, type: string, expected: { status?: string; reason?: string | RegExp } = {}, timeout: number = WAIT.step): Promise<Obj> {
  let workload: Obj | undefined;
  await expect
    .poll(async () => {
      workload = await workloadOf(plane, namespace, run);
      const found = condition(workload, type);
      if (!found || found.status !== (expected.status ?? 'True')) return false;
      if (expected.reason === undefined) return true;
      return typeof expected.reason === 'string' ? found.reason === expected.reason : expected.reason.test(found.reason ?? '');
    }, { timeout, interval: WAIT.poll, message: `the Workload of ${namespace}/${run} to have ${type}=${expected.status ?? 'True'}${expected.reason ? ` (${expected.reason})` : ''}` })
    .toBe(true);
  return workload!;
}

/** Waits until the run's Workload is Finished (its quota back) with this reason. */
export async function expectWorkloadFinished(plane: ControlPlane, namespace: string, run: string, reason: 'Succeeded' | 'Failed', timeout: number = WAIT.run): Promise<Obj> {
  return expectWorkloadCondition(plane, namespace, run, 'Finished', { reason }, timeout);
}

/** Waits until a ClusterQueue holds no quota: nothing reserving, nothing admitted. */
export async function expectQueueEmpty(plane: ControlPlane, clusterQueue: string, timeout: number = WAIT.step): Promise<void> {
  await expect
    .poll(async () => {
      const cq = await plane.objects.get(CLUSTER_QUEUE, undefined, clusterQueue);
      return [cq?.status?.reservingWorkloads ?? 0, cq?.status?.admittedWorkloads ?? 0];
    }, { timeout, interval: WAIT.poll, message: `ClusterQueue ${clusterQueue} to hold no quota` })
    .toEqual([0, 0]);
}

/** Checks `probe` again and again for `ms`: it must hold every time. */
export async function expectStays(what: string, probe: () => Promise<boolean>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    expect(await probe(), what).toBe(true);
    await new Promise((r) => setTimeout(r, WAIT.poll));
  }
}

/**
 * Creates a namespace and waits for its `default` ServiceAccount: until the API server's
 * ServiceAccount controller has made it, Tekton fails a run there ("serviceaccounts "default" not found").
 */
export async function createNamespace(plane: ControlPlane, name: string, labels?: Record<string, string>): Promise<void> {
  await plane.objects.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  // waitFor, not expect.poll: namespaces are made in beforeAll hooks too.
  await waitFor(`ServiceAccount ${name}/default`, () => plane.objects.get(SERVICE_ACCOUNT, name, 'default'), WAIT.step, WAIT.poll);
}

/** Sets a ClusterQueue's or LocalQueue's stop policy (`None` starts it again). */
export async function setStopPolicy(plane: ControlPlane, queue: { clusterQueue: string } | { namespace: string; localQueue: string }, policy: 'None' | 'Hold' | 'HoldAndDrain'): Promise<void> {
  if ('clusterQueue' in queue) await plane.objects.patch(CLUSTER_QUEUE, undefined, queue.clusterQueue, { spec: { stopPolicy: policy } });
  else await plane.objects.patch(LOCAL_QUEUE, queue.namespace, queue.localQueue, { spec: { stopPolicy: policy } });
}

export { CLUSTER_QUEUE, LOCAL_QUEUE };

/** What a request made as a user came to: the object stored, or the API server's refusal. */
export interface Attempt {
  readonly allowed: boolean;
  /** The refusal, or the warnings of an allowed request. */
  readonly message: string;
  readonly object?: Obj;
}

/** Requests made as `user` (kubectl --as), as a tenant of a shared cluster makes them. */
export function as(plane: ControlPlane, user: string) {
  const request = (args: string[], input?: string): Attempt => {
    const { ok, stdout, stderr } = plane.tryKubectl(['--as', user, ...args], input);
    return { allowed: ok, message: stderr, ...(ok && stdout.startsWith('{') ? { object: JSON.parse(stdout) as Obj } : {}) };
  };
  return {
    create: (object: Obj) => request(['create', '-o', 'json', '-f', '-'], JSON.stringify(object)),
    /** A JSON merge patch (`null` removes a field). */
    patch: (kind: string, namespace: string, name: string, patch: Record<string, unknown>) => request(['patch', kind, name, '-n', namespace, '--type=merge', '-p', JSON.stringify(patch), '-o', 'json']),
  };
}
