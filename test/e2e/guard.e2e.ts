/**
 * Every rule of dist/guard (the tenant guard, and the policy that keeps Kueue's part of the gate's
 * Workloads), allowed and refused, as the API server decides it: its own CEL, its own RBAC
 * authorizer, requests made as the identities of a shared cluster (kubectl --as). Only etcd and the API server run: the guard must hold with no webhook up, so
 * the runs here come already in the shape Kyverno's mutation gives them, or deliberately not.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKLOAD_STATUS_KEPT } from '../../policies/workload-status-kept/policy.js';
import { ENGINE_VERSIONS, moduleDir } from '../tools/go-tools.js';
import { ControlPlane, stopAll, waitFor } from './control-plane.js';
import type { Obj } from './objects.js';
import { PipelineRunBuilder } from './scenario.js';

const root = join(import.meta.dirname, '..', '..');
const ns = 'ci-team-a';
/** Identities, by username, and what they are granted. */
const TENANT = `system:serviceaccount:${ns}:tenant`; // Tekton's edit role in the namespace
const RELEASE_BOT = 'release-bot'; // Tekton's edit role, and the opt-out grant
const GATE = 'system:serviceaccount:kyverno:kyverno-background-controller';
const TEKTON = 'system:serviceaccount:tekton-pipelines:tekton-pipelines-controller';

let plane: ControlPlane;

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 3, engines: 'api-server' });
  for (const component of ['namespaces', 'guard']) plane.kubectl('apply', '--server-side', '-k', join(root, 'dist', component));
  plane.kubectl('apply', '--server-side', '-f', join(root, 'dist', 'rbac', 'opt-out.yaml'));
  // Tekton's own edit role (what `edit` aggregates from Tekton), for the tenant and the bot.
  plane.kubectl('apply', '--server-side', '-f', join(moduleDir('github.com/tektoncd/pipeline', ENGINE_VERSIONS.tekton), 'config', 'clusterrole-aggregate-edit.yaml'));
  plane.apply(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: tekton-edit, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tekton-aggregate-edit}
subjects:
  - {kind: ServiceAccount, name: tenant, namespace: ${ns}}
  - {kind: User, name: ${RELEASE_BOT}, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: opt-out, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tekton-kueue-policies:opt-out}
subjects: [{kind: User, name: ${RELEASE_BOT}, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: trusted-controllers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
  - {kind: ServiceAccount, name: kyverno-background-controller, namespace: kyverno}
  - {kind: ServiceAccount, name: tekton-pipelines-controller, namespace: tekton-pipelines}
`);
  // The API server takes a moment to load the policies and bindings: wait until one refuses.
  await waitFor('the guard to be in force', () => !attempt(TENANT, 'create', ungatedRun()).allowed, 30_000);
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

/** The plane's own admin (system:masters): every RBAC grant, but not one the guard trusts. */
const ADMIN = undefined;

/** kubectl's arguments for a request made as `user` (the admin when none). */
function request(user: string | undefined, verb: 'create' | 'replace', subresource?: string): string[] {
  return [...(user ? ['--as', user] : []), verb, ...(subresource ? [`--subresource=${subresource}`] : [])];
}

/** The result of a request made as `user`: allowed, or refused with the API server's message. */
function attempt(user: string | undefined, verb: 'create' | 'replace', object: Obj, subresource?: string): { allowed: boolean; message: string } {
  const args = [...request(user, verb, subresource), ...(verb === 'create' ? ['--dry-run=server'] : []), '-f', '-'];
  const { ok, stderr } = plane.tryKubectl(args, JSON.stringify(object));
  return { allowed: ok, message: ok ? '' : stderr };
}

/** Creates `object` for real as the gate would, and returns it as stored, for update cases. */
function existing(object: Obj): Obj {
  return stored(GATE, 'create', object);
}

/** Makes a request as `user` for real (it must be allowed), and returns the object as stored. */
function stored(user: string | undefined, verb: 'create' | 'replace', object: Obj, subresource?: string): Obj {
  const { ok, stdout, stderr } = plane.tryKubectl([...request(user, verb, subresource), '-o', 'json', '-f', '-'], JSON.stringify(object));
  if (!ok) throw new Error(stderr);
  return JSON.parse(stdout);
}

function expectRefused(result: { allowed: boolean; message: string }, rule: string, ...says: string[]): void {
  expect(result.allowed, 'refused').toBe(false);
  expect(result.message).toContain(`tekton-kueue-policies-guard (${rule}): `);
  for (const text of says) expect(result.message).toContain(text);
}

function ungatedRun(): Obj {
  return new PipelineRunBuilder(ns, 'plain').build();
}

/** An inline run as Kyverno's mutate-pipelinerun leaves it. */
function gatedInline(prefix = 'inline'): Obj {
  const run = new PipelineRunBuilder(ns, prefix).label('tekton-kueue-policies.dev/gate', 'customrun').build();
  const spec = run.spec.pipelineSpec;
  spec.tasks = [{ name: 'kueue-gate', taskSpec: { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'Workload', spec: {} } }, ...spec.tasks.map((t: any) => ({ ...t, runAfter: ['kueue-gate', ...(t.runAfter ?? [])] }))];
  spec.finally = spec.finally.map((f: any) => ({ ...f, when: [{ input: '$(tasks.kueue-gate.status)', operator: 'in', values: ['Succeeded'] }] }));
  return run;
}

/** A pipelineRef run held pending by the gate (or by its user, without the gate's annotation). */
function heldRun(by: 'gate' | 'user'): Obj {
  const run = new PipelineRunBuilder(ns, `held-by-${by}`).pipelineRef('deploy').userPending().label('tekton-kueue-policies.dev/gate', 'pending');
  return (by === 'gate' ? run.annotation('tekton-kueue-policies.dev/pending-set-by-gate', 'true') : run).build();
}

function withStatus(run: Obj, status: string | undefined): Obj {
  const changed = structuredClone(run);
  if (status === undefined) delete changed.spec.status;
  else changed.spec.status = status;
  return changed;
}

describe('opt-out-granted: opting out of the queue is an RBAC grant', () => {
  it('refuses the opt-out label from a tenant with Tekton edit rights, naming the grant to ask for', () => {
    const run = new PipelineRunBuilder(ns, 'skip').label('tekton-kueue-policies.dev/opt-out', 'true').build();
    expectRefused(attempt(TENANT, 'create', run), 'opt-out-granted', TENANT, 'ClusterRole tekton-kueue-policies:opt-out', 'verb opt-out on pipelineruns.tekton-kueue-policies.dev');
  });

  it('lets a subject granted the opt-out create an ungated run: a bot bound to the ClusterRole, a cluster admin', () => {
    const run = new PipelineRunBuilder(ns, 'skip').label('tekton-kueue-policies.dev/opt-out', 'true').build();
    expect(attempt(RELEASE_BOT, 'create', run)).toEqual({ allowed: true, message: '' });
    expect(attempt(ADMIN, 'create', run)).toEqual({ allowed: true, message: '' });
  });
});

describe('gated-at-creation: a run reaches the API server gated', () => {
  it('refuses a run Kyverno did not gate, and says where to look', () => {
    expectRefused(attempt(TENANT, 'create', ungatedRun()), 'gated-at-creation', 'kubectl get mutatingpolicy mutate-pipelinerun');
  });

  it('refuses a look-alike gate task that runs steps, and a gate no task waits for', () => {
    const lookalike = gatedInline();
    lookalike.spec.pipelineSpec.tasks[0] = { name: 'kueue-gate', taskSpec: { steps: [{ name: 'x', image: 'busybox', script: 'echo' }] } };
    expectRefused(attempt(TENANT, 'create', lookalike), 'gated-at-creation');
    const unawaited = gatedInline();
    delete unawaited.spec.pipelineSpec.tasks[1].runAfter;
    expectRefused(attempt(TENANT, 'create', unawaited), 'gated-at-creation');
    const finallyFree = gatedInline();
    delete finallyFree.spec.pipelineSpec.finally[0].when;
    expectRefused(attempt(TENANT, 'create', finallyFree), 'gated-at-creation');
  });

  it('allows runs as the gate leaves them: inline with the gate task, or held pending', () => {
    expect(attempt(TENANT, 'create', gatedInline()).allowed).toBe(true);
    expect(attempt(TENANT, 'create', heldRun('gate')).allowed).toBe(true);
    expect(attempt(TENANT, 'create', heldRun('user')).allowed).toBe(true);
    expectRefused(attempt(TENANT, 'create', withStatus(heldRun('gate'), undefined)), 'gated-at-creation');
  });

  it('leaves namespaces the bundle does not manage alone', () => {
    const elsewhere = ungatedRun();
    elsewhere.metadata.namespace = 'default';
    expect(attempt(ADMIN, 'create', elsewhere).allowed).toBe(true);
  });
});

describe('no-stop-at-creation', () => {
  it.each(['CancelledRunFinally', 'StoppedRunFinally'])('refuses a run created %s: its finally tasks would run unadmitted', (status) => {
    expectRefused(attempt(TENANT, 'create', withStatus(gatedInline(), status)), 'no-stop-at-creation', status);
  });
});

describe('released-by-gate: only the gate releases a held run', () => {
  it.each([
    ['removes spec.status', undefined],
    ['empties it', ''],
    ['stops it', 'StoppedRunFinally'],
    ['cancels it with finally tasks', 'CancelledRunFinally'],
  ])('refuses a tenant who %s', (_, status) => {
    const run = existing(heldRun('gate'));
    expectRefused(attempt(TENANT, 'replace', withStatus(run, status)), 'released-by-gate', 'only the gate releases it', 'spec.status: Cancelled');
  });

  it('lets a tenant cancel a queued run, and the gate release one', () => {
    expect(attempt(TENANT, 'replace', withStatus(existing(heldRun('gate')), 'Cancelled')).allowed).toBe(true);
    expect(attempt(GATE, 'replace', withStatus(existing(heldRun('gate')), undefined)).allowed).toBe(true);
  });

  it('refuses the release of a run its user held unless it becomes the gate\'s hold (Kyverno turns the release into it)', () => {
    const run = existing(heldRun('user'));
    expectRefused(attempt(TENANT, 'replace', withStatus(run, undefined)), 'released-by-gate');
    const handedToTheGate = structuredClone(run);
    handedToTheGate.metadata.annotations = { ...handedToTheGate.metadata.annotations, 'tekton-kueue-policies.dev/pending-set-by-gate': 'true' };
    expect(attempt(TENANT, 'replace', handedToTheGate).allowed).toBe(true);
  });
});

describe('the gate\'s marks stay the gate\'s', () => {
  it('gate-label-kept: refuses removing or changing the gate label', () => {
    const run = existing(heldRun('gate'));
    const removed = structuredClone(run);
    delete removed.metadata.labels!['tekton-kueue-policies.dev/gate'];
    expectRefused(attempt(TENANT, 'replace', removed), 'gate-label-kept', 'label tekton-kueue-policies.dev/gate');
    const changed = structuredClone(run);
    changed.metadata.labels!['tekton-kueue-policies.dev/gate'] = 'customrun';
    expectRefused(attempt(TENANT, 'replace', changed), 'gate-label-kept');
  });

  it('hold-kept: refuses removing the gate\'s hold annotation', () => {
    const run = existing(heldRun('gate'));
    delete run.metadata.annotations!['tekton-kueue-policies.dev/pending-set-by-gate'];
    expectRefused(attempt(TENANT, 'replace', run), 'hold-kept', 'annotation tekton-kueue-policies.dev/pending-set-by-gate');
  });

  it('gate-task-kept: refuses taking the gate task out of a run', () => {
    const run = existing(gatedInline());
    run.spec.pipelineSpec.tasks = run.spec.pipelineSpec.tasks.slice(1).map((t: any) => ({ ...t, runAfter: (t.runAfter ?? []).filter((r: string) => r !== 'kueue-gate') }));
    expectRefused(attempt(TENANT, 'replace', run), 'gate-task-kept');
  });
});

describe('children-by-tekton: TaskRuns and CustomRuns are Tekton\'s to create', () => {
  const taskRun: Obj = { apiVersion: 'tekton.dev/v1', kind: 'TaskRun', metadata: { name: 'direct', namespace: ns }, spec: { taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'echo' }] } } };
  const gateRun: Obj = {
    apiVersion: 'tekton.dev/v1beta1',
    kind: 'CustomRun',
    metadata: { name: 'forged-kueue-gate', namespace: ns, labels: { 'tekton.dev/pipelineTask': 'kueue-gate', 'tekton.dev/pipelineRun': 'forged' } },
    spec: { customSpec: { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'Workload', spec: {} } },
  };

  it('refuses a tenant\'s TaskRun and gate CustomRun', () => {
    expectRefused(attempt(TENANT, 'create', taskRun), 'children-by-tekton', 'TaskRuns in ci-team-a', 'Run it in a PipelineRun');
    expectRefused(attempt(TENANT, 'create', gateRun), 'children-by-tekton', 'CustomRuns in ci-team-a');
  });

  it('lets Tekton\'s controller, and a subject granted the opt-out, create them', () => {
    expect(attempt(TEKTON, 'create', taskRun).allowed).toBe(true);
    expect(attempt(RELEASE_BOT, 'create', taskRun).allowed).toBe(true);
  });
});

describe('gate-opened-by-gate', () => {
  it('refuses anyone but the gate setting Succeeded=True on a gate CustomRun, even a cluster admin', () => {
    const gate = existing({
      apiVersion: 'tekton.dev/v1beta1',
      kind: 'CustomRun',
      metadata: { name: 'held-kueue-gate', namespace: ns },
      spec: { customSpec: { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'Workload', spec: {} } },
    } as Obj);
    const opened = { ...gate, status: { conditions: [{ type: 'Succeeded', status: 'True', reason: 'ByHand', message: 'opened by hand', lastTransitionTime: new Date().toISOString() }] } };
    expectRefused(attempt(ADMIN, 'replace', opened, 'status'), 'gate-opened-by-gate', 'the gate opens it when Kueue admits the run');
    expect(attempt(GATE, 'replace', opened, 'status').allowed).toBe(true);
  });
});

describe('workload-status-kept: the gate never undoes Kueue\'s part of a Workload\'s status', () => {
  const at = '2026-01-01T00:00:00Z';
  const condition = (type: string, status: 'True' | 'False', reason: string) => ({ type, status, reason, message: reason, lastTransitionTime: at });
  const admission = { clusterQueue: 'pipelines', podSetAssignments: [{ name: 'main', count: 1, flavors: { cpu: 'default-flavor' }, resourceUsage: { cpu: '100m' } }] };
  const admitted = { admission, conditions: [condition('QuotaReserved', 'True', 'QuotaReserved'), condition('Admitted', 'True', 'Admitted')] };

  /** A Workload as the gate makes them (or, without `gated`, one of something else), with the status Kueue wrote. */
  function workload(name: string, status: Obj['status'], gated = true): Obj {
    const made = existing({
      apiVersion: 'kueue.x-k8s.io/v1beta2',
      kind: 'Workload',
      metadata: { name, namespace: ns, labels: gated ? { 'tekton-kueue-policies.dev/gate': 'pending' } : {} },
      spec: { queueName: 'pipelines', podSets: [{ name: 'main', count: 1, template: { spec: { containers: [{ name: 'main', resources: { requests: { cpu: '100m' } } }] } } }] },
    } as Obj);
    return status ? written(ADMIN, { ...made, status }) : made;
  }

  /** Writes the status of `stale`, read earlier, with the version stored now, as Kyverno writes a MutatingPolicy's target. */
  function writeFrom(user: string | undefined, stale: Obj, status: Obj['status']): { allowed: boolean; message: string } {
    const { resourceVersion } = plane.getJson('workload', stale.metadata.name, '-n', ns).metadata;
    return attempt(user, 'replace', { ...stale, metadata: { ...stale.metadata, resourceVersion }, status }, 'status');
  }

  function written(user: string | undefined, object: Obj): Obj {
    return stored(user, 'replace', object, 'status');
  }

  function expectUndone(result: { allowed: boolean; message: string }, ...fields: string[]): void {
    expect(result.allowed, 'refused').toBe(false);
    expect(result.message).toContain(`${WORKLOAD_STATUS_KEPT} (kept): the gate (${GATE}) wrote the status of Workload`);
    expect(result.message).toContain(`from a stale read: it would undo Kueue's ${fields.join(', ')}. Kyverno runs the step again`);
  }

  const ready = condition('PodsReady', 'True', 'Started');

  it('lets the gate set the conditions its steps set on a Workload as Kueue left it', () => {
    const stored = workload('ready', admitted);
    expect(writeFrom(GATE, stored, { ...admitted, conditions: [...admitted.conditions, ready] })).toEqual({ allowed: true, message: '' });
    expect(writeFrom(GATE, stored, { ...admitted, conditions: [...admitted.conditions, ready, condition('Finished', 'True', 'Succeeded')] })).toEqual({ allowed: true, message: '' });
  });

  it('refuses the gate\'s write from a read older than Kueue\'s admission, naming what it would undo', async () => {
    const before = workload('stale', undefined);
    written(ADMIN, { ...plane.getJson('workload', 'stale', '-n', ns), status: admitted });
    // The API server takes a moment to load a new policy.
    await waitFor('the policy to be in force', () => !writeFrom(GATE, before, { conditions: [ready] }).allowed, 30_000);
    expectUndone(writeFrom(GATE, before, { conditions: [ready] }), 'status.conditions', 'status.admission');
  });

  it('lets the gate give the reservation of an evicted Workload back, and only of one', () => {
    const stored = workload('evicted', admitted);
    const unreserved = { conditions: [condition('QuotaReserved', 'False', 'Pending'), condition('Admitted', 'False', 'NoReservation'), condition('Requeued', 'True', 'Preempted')] };
    expectUndone(writeFrom(GATE, stored, unreserved), 'status.conditions', 'status.admission');
    const evicted = written(ADMIN, { ...stored, status: { ...admitted, conditions: [...admitted.conditions, condition('Evicted', 'True', 'Preempted')] } });
    expect(writeFrom(GATE, evicted, { conditions: [condition('Evicted', 'True', 'Preempted'), ...unreserved.conditions] })).toEqual({ allowed: true, message: '' });
  });

  it('leaves others\' writes alone, and Workloads that are not the gate\'s', () => {
    const before = workload('kueues', undefined);
    written(ADMIN, { ...plane.getJson('workload', 'kueues', '-n', ns), status: admitted });
    expect(writeFrom(ADMIN, before, { conditions: [ready] }).allowed).toBe(true);
    const other = workload('not-gated', undefined, false);
    written(ADMIN, { ...plane.getJson('workload', 'not-gated', '-n', ns), status: admitted });
    expect(writeFrom(GATE, other, { conditions: [ready] }).allowed).toBe(true);
  });
});
