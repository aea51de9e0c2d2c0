/**
 * Kueue's MultiKueue with two control planes on loopback (multikueue-manager.yaml,
 * multikueue-worker.yaml): runs queued on the manager, pending there until then, are dispatched to
 * the worker, run there under the Workload the manager's Kueue made, and end on both sides with
 * their status mirrored and no Workload holding quota on either, whether they succeed, fail or are
 * cancelled while they wait; a run whose Workload the manager's Kyverno missed gets it at the next
 * re-apply; a run whose worker is lost before its copy starts is requeued on the manager and
 * dispatched again; a run of a queue that does not dispatch runs on the manager; on the worker,
 * MultiKueue's label is the manager's.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MULTIKUEUE_SERVICE_ACCOUNT } from '../../src/config/load.js';
import { DISPATCHED_RUN_PENDING, GATED_LABEL, MULTIKUEUE_CHECK, MULTIKUEUE_CONTROLLER, MULTIKUEUE_ORIGIN_LABEL, PIPELINE_RUN, QUEUE_LABEL, TASK_RUN, WORKLOAD } from '../../src/gate/names.js';
import { ControlPlane, FAIL_LABEL, stopAll, synthesize, TASK_DURATION_LABEL, waitFor } from './control-plane.js';
import { condition, type Obj } from './objects.js';
import { admissionsOf, as, expectQueueEmpty, expectGeneratedBy, expectRunFinished, expectWorkload, expectWorkloadCondition, expectWorkloadFinished, loseWorkloadCreation, PipelineRunBuilder, pipelineRun, WAIT, workloadOf } from './scenario.js';

const ns = 'e2e-mk';
const DISPATCH = 'e2e-dispatch';
const ADMISSION_CHECK = { apiVersion: WORKLOAD.apiVersion, kind: 'AdmissionCheck' };
const SECRET = { apiVersion: 'v1', kind: 'Secret' };
const TENANT = `system:serviceaccount:${ns}:tenant`;
/** MultiKueue's annotation on the copy of a run, naming the Workload it runs under. */
const PREBUILT_WORKLOAD = 'kueue.x-k8s.io/prebuilt-workload-name';

let manager: ControlPlane;
let worker: ControlPlane;
let managerBundle: string;

beforeAll(async () => {
  worker = await ControlPlane.start({ taskSeconds: 3 });
  // WaitForPodsReady longer than a worker lost: a run dispatched to it is taken back for that, not for its start.
  manager = await ControlPlane.start({ taskSeconds: 3, podsReadyTimeout: '2m', multiKueueManager: { workerLostTimeout: '30s' } });
  await worker.installBundle(synthesize(join(import.meta.dirname, 'multikueue-worker.yaml')));
  // The worker's bundle made the ServiceAccount the manager's Kueue acts as there.
  const kubeconfig = await worker.remoteKubeconfig('kueue-system', MULTIKUEUE_SERVICE_ACCOUNT);
  await manager.objects.create({ ...SECRET, metadata: { name: 'worker-1-kubeconfig', namespace: 'kueue-system' }, stringData: { kubeconfig } } as Obj);
  managerBundle = synthesize(join(import.meta.dirname, 'multikueue-manager.yaml'));
  await manager.installBundle(managerBundle);
  worker.apply(`
apiVersion: v1
kind: ServiceAccount
metadata: {name: tenant, namespace: ${ns}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: tenant, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: ServiceAccount, name: tenant, namespace: ${ns}}]
`);
});

afterAll(() => {
  stopAll();
  for (const plane of [manager, worker]) if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

describe('MultiKueue: a manager dispatches gated runs to a worker', () => {
  it("the manager's AdmissionCheck is active: it reaches the worker with the kubeconfig of its Secret", async () => {
    await expect
      .poll(async () => condition(await manager.objects.get(ADMISSION_CHECK, undefined, MULTIKUEUE_CHECK), 'Active')?.status, {
        timeout: WAIT.step,
        interval: WAIT.poll,
        message: `AdmissionCheck ${MULTIKUEUE_CHECK} to be Active`,
      })
      .toBe('True');
    // doctor finds MultiKueue knows PipelineRuns in the manager's Kueue configuration.
    const doctor = spawnSync(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'tekton-kueue-policies.mjs'), 'doctor', managerBundle, '--kubeconfig', manager.kubeconfig], { encoding: 'utf8' });
    expect(doctor.stdout).toContain('MultiKueue dispatches PipelineRuns (external framework PipelineRun.v1.tekton.dev)');
  });

  it('runs queued on the manager run on the worker, one at a time as its quota says; their status is mirrored and no Workload holds quota on either cluster', async () => {
    const runs: Obj[] = [];
    for (const prefix of ['first', 'second', 'third']) runs.push(await new PipelineRunBuilder(ns, prefix).create(manager));
    for (const run of runs) {
      expect(run.spec.managedBy, run.metadata.name).toBe(MULTIKUEUE_CONTROLLER);
      expect(run.metadata.labels?.[GATED_LABEL], run.metadata.name).toBe('pending');
    }
    // MultiKueue's copies live on the worker while they run: watch them come and go, and the
    // manager's runs say they are pending while they wait.
    const copies = new Map<string, Obj>();
    const shownPending = new Set<string>();
    const watching = setInterval(() => {
      void worker.objects.list(PIPELINE_RUN, ns, MULTIKUEUE_ORIGIN_LABEL).then((seen) => {
        for (const copy of seen) if ((copy.status?.childReferences?.length ?? 0) > 0) copies.set(copy.metadata.name, copy);
      }, () => undefined);
      void manager.objects.list(PIPELINE_RUN, ns).then((seen) => {
        for (const run of seen) {
          const succeeded = condition(run, 'Succeeded');
          if (succeeded?.status === 'Unknown' && succeeded.reason === DISPATCHED_RUN_PENDING.reason && succeeded.message === DISPATCHED_RUN_PENDING.message) shownPending.add(run.metadata.name);
        }
      }, () => undefined);
    }, 250);
    const mirrored: Obj[] = [];
    try {
      for (const run of runs) {
        const name = run.metadata.name;
        // The manager's run mirrors the worker's status, and never ran here.
        const finished = await expectRunFinished(manager, ns, name, WAIT.drain);
        expect(condition(finished, 'Succeeded')?.status, name).toBe('True');
        expect(finished.status?.childReferences?.length, name).toBeGreaterThan(0);
        expect(finished.spec.status, name).toBeUndefined();
        expect(await manager.objects.list(TASK_RUN, ns, `tekton.dev/pipelineRun=${name}`), `no TaskRun of ${name} on the manager`).toEqual([]);
        const dispatched = await expectWorkloadFinished(manager, ns, name, 'Succeeded');
        expect(dispatched.status?.clusterName, name).toBe('worker-1');
        mirrored.push(finished);
      }
    } finally {
      clearInterval(watching);
    }
    // The worker takes one at a time: the second and third waited on the manager, and said so.
    expect([...shownPending].sort(), 'runs seen pending on the manager').toEqual(expect.arrayContaining(runs.slice(1).map((r) => r.metadata.name).sort()));
    // On the worker, each ran as MultiKueue's copy, under the Workload the manager made, released by the gate.
    for (const run of runs) {
      const copy = copies.get(run.metadata.name);
      expect(copy, `${run.metadata.name} seen running on the worker`).toBeDefined();
      expect(copy!.metadata.annotations?.[PREBUILT_WORKLOAD]).toBe(run.metadata.name);
      expect(copy!.spec.managedBy).toBeUndefined();
      expect(copy!.spec.status).toBeUndefined();
    }
    // The worker ran them one at a time: no run started before the one before it had ended.
    const spans = mirrored.map((r) => [Date.parse(r.status!.startTime), Date.parse(r.status!.completionTime)] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0], 'a run started before the one before it ended').toBeGreaterThanOrEqual(spans[i - 1]![1]);
    // MultiKueue takes its copies and their Workloads back from the worker once they have ended.
    await expect
      .poll(async () => [...(await worker.objects.list(PIPELINE_RUN, ns, MULTIKUEUE_ORIGIN_LABEL)), ...(await worker.objects.list(WORKLOAD, ns, MULTIKUEUE_ORIGIN_LABEL))].map((o) => o.metadata.name), {
        timeout: WAIT.step,
        interval: WAIT.poll,
        message: 'the copies and their Workloads to be gone from the worker',
      })
      .toEqual([]);
    await expectQueueEmpty(manager, DISPATCH);
    await expectQueueEmpty(worker, DISPATCH);
  });

  // Before the worker is lost: its engines restarted from an outage are no test of the guard.
  it("on the worker, a tenant cannot skip the queue with MultiKueue's label, and a run of its own is gated", async () => {
    // The edit role reaches Tekton's resources through ClusterRole aggregation.
    await waitFor("edit to grant Tekton's resources", () => worker.tryKubectl(['auth', 'can-i', 'create', 'pipelineruns.tekton.dev', '-n', ns, '--as', TENANT]).ok, WAIT.step);
    const tenant = as(worker, TENANT);
    const forged = tenant.create(new PipelineRunBuilder(ns, 'forged').label(MULTIKUEUE_ORIGIN_LABEL, 'multikueue').build());
    expect(forged.allowed, 'refused').toBe(false);
    expect(forged.message).toContain(`label ${MULTIKUEUE_ORIGIN_LABEL} is MultiKueue's`);
    const own = tenant.create(new PipelineRunBuilder(ns, 'own').build());
    expect(own.allowed, own.message).toBe(true);
    expect(own.object?.spec.status).toBe('PipelineRunPending');
    const finished = await expectRunFinished(worker, ns, own.object!.metadata.name);
    expect(condition(finished, 'Succeeded')?.status).toBe('True');
    await expectQueueEmpty(worker, DISPATCH);
  });

  it('a run that fails on the worker ends failed on the manager; one cancelled on the manager while it waits ends cancelled, no task run; both give their quota back on both clusters', async () => {
    const failing = await new PipelineRunBuilder(ns, 'failing').label(FAIL_LABEL, 'true').label(TASK_DURATION_LABEL, '10').create(manager);
    // The failing run takes the worker's one place first: Kyverno makes the Workloads in the background, in no set order.
    await expectWorkloadCondition(manager, ns, failing.metadata.name, 'Admitted');
    const waiting = await new PipelineRunBuilder(ns, 'cancelled').create(manager);
    // It waits for the worker's one place, and says so; then it is cancelled there, as its tenant may.
    await expect
      .poll(async () => condition(await pipelineRun(manager, ns, waiting.metadata.name), 'Succeeded')?.reason, { timeout: WAIT.step, interval: WAIT.poll, message: `${waiting.metadata.name} to show it is pending` })
      .toBe(DISPATCHED_RUN_PENDING.reason);
    await manager.objects.patch(PIPELINE_RUN, ns, waiting.metadata.name, { spec: { status: 'Cancelled' } });
    const failed = await expectRunFinished(manager, ns, failing.metadata.name, WAIT.drain);
    expect(condition(failed, 'Succeeded')?.status).toBe('False');
    await expectWorkloadFinished(manager, ns, failing.metadata.name, 'Failed');
    // MultiKueue dispatches it all the same, cancelled: Tekton ends it there before any task.
    const cancelled = await expectRunFinished(manager, ns, waiting.metadata.name, WAIT.drain);
    expect(condition(cancelled, 'Succeeded')).toMatchObject({ status: 'False', reason: 'Cancelled' });
    expect(cancelled.status?.childReferences ?? []).toEqual([]);
    await expectQueueEmpty(manager, DISPATCH);
    await expectQueueEmpty(worker, DISPATCH);
  });

  // Tekton writes nothing on a run MultiKueue manages, so the manager has no status update to make
  // up for a Workload Kyverno missed at the run's creation (see recovery.e2e.ts): its re-apply does.
  it("a run whose Workload the manager's Kyverno missed at its creation gets it at the next re-apply, and is dispatched", async () => {
    await manager.stop('kyverno-background-controller');
    let run: string;
    try {
      run = (await new PipelineRunBuilder(ns, 'missed').create(manager)).metadata.name;
      await loseWorkloadCreation(manager, 'workload-for-pipelinerun', run);
    } finally {
      // Also when the test fails here: the next tests need it.
      manager.start('kyverno-background-controller');
    }
    const workload = await expectWorkload(manager, ns, run);
    expectGeneratedBy(workload, 'missed-workload-for-pipelinerun', ['generate-workload-reapply']);
    expect(condition(await expectRunFinished(manager, ns, run), 'Succeeded')?.status).toBe('True');
    const dispatched = await expectWorkloadFinished(manager, ns, run, 'Succeeded');
    expect(dispatched.status?.clusterName).toBe('worker-1');
    await expectQueueEmpty(manager, DISPATCH);
  });

  it("a worker lost for longer than Kueue's workerLostTimeout: the manager takes its run back into the queue, dispatches it again once the worker is back, and the run ends with no Workload holding quota", async () => {
    // The worker is lost once the run is dispatched there, before its copy starts (the worker's
    // Tekton is stopped): a copy MultiKueue makes again on the same worker takes over the TaskRuns
    // the first copy left there, and waits forever once they are collected (see the README's known limits).
    await worker.stop('tekton-controller');
    const run = await new PipelineRunBuilder(ns, 'lost').label(TASK_DURATION_LABEL, '20').create(manager);
    const name = run.metadata.name;
    await waitFor(`the copy of ${name} on the worker`, () => worker.objects.get(PIPELINE_RUN, ns, name), WAIT.step);
    await worker.stop('kube-apiserver');
    try {
      // 30 s after it lost the worker (and at its next look at the Workload), the manager's Kueue
      // resets the check and evicts the Workload; the gate, which counts the dispatched run as held
      // there, requeues it.
      const lostAt = Date.now();
      await expect
        .poll(async () => (await workloadOf(manager, ns, name))?.status?.admissionChecks?.[0]?.retryCount ?? 0, { timeout: 3 * WAIT.step, interval: WAIT.poll, message: `the check of ${name} to be retried` })
        .toBeGreaterThanOrEqual(1);
      console.log(`worker lost: the manager reset the check after ${Math.round((Date.now() - lostAt) / 1000)} s`);
      expect(condition(await workloadOf(manager, ns, name), 'Evicted')?.message).toContain('AdmissionCheck');
    } finally {
      worker.start('kube-apiserver');
      await waitFor("the worker's API server", () => worker.tryKubectl(['get', '--raw', '/readyz']).stdout === 'ok', WAIT.step);
      // Its engines that exited without their API server (Kyverno's, the scheduler) come back as the
      // kubelet would bring them, and its Tekton.
      console.log(`worker engines restarted: ${worker.restartExited().join(', ') || 'none'}`);
    }
    const finished = await expectRunFinished(manager, ns, name, WAIT.drain);
    expect(condition(finished, 'Succeeded')?.status).toBe('True');
    expect(await admissionsOf(manager, ns, name), 'admitted again').toBeGreaterThanOrEqual(2);
    await expectWorkloadFinished(manager, ns, name, 'Succeeded');
    await expectQueueEmpty(manager, DISPATCH);
    await expectQueueEmpty(worker, DISPATCH);
  });

  it('a run of a queue that does not dispatch runs on the manager', async () => {
    const run = await new PipelineRunBuilder(ns, 'nightly').label(QUEUE_LABEL, 'local').create(manager);
    expect(run.spec.managedBy).toBeUndefined();
    const finished = await expectRunFinished(manager, ns, run.metadata.name);
    expect(condition(finished, 'Succeeded')?.status).toBe('True');
    expect((await manager.objects.list(TASK_RUN, ns, `tekton.dev/pipelineRun=${run.metadata.name}`)).length).toBeGreaterThan(0);
    expect(await worker.objects.get(PIPELINE_RUN, ns, run.metadata.name)).toBeUndefined();
    await expectQueueEmpty(manager, 'e2e-local');
  });

});
