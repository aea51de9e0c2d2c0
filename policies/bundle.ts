/**
 * The bundle: every object of dist/, built from the config with the constructs of src/.
 * A chart is a folder of dist/; a chart's top-level construct is a file in it.
 */
import { App, Chart } from 'cdk8s';
import { type Config, mechanismsOf } from '../src/config/config.js';
import { GatePolicy } from '../src/constructs/gate-policy.js';
import { KyvernoAccess } from '../src/constructs/kyverno-access.js';
import { ManagedNamespaces } from '../src/constructs/managed-namespaces.js';
import { MultiKueueDispatch } from '../src/constructs/multikueue-dispatch.js';
import { MultiKueueWorkerAccess } from '../src/constructs/multikueue-worker-access.js';
import { PipelineQueues } from '../src/constructs/pipeline-queues.js';
import { PriorityClasses } from '../src/constructs/priority-classes.js';
import { OptOutRole } from '../src/constructs/opt-out-role.js';
import { SamplePipelineRun } from '../src/constructs/sample-pipeline-run.js';
import { StatusKept } from '../src/constructs/status-kept.js';
import { TenantGuard } from '../src/constructs/tenant-guard.js';
import { requiredAccess } from '../src/gate/access.js';
import type { PolicyDefinition } from '../src/gate/model.js';
import { MULTIKUEUE_CHECK, PIPELINE_RUN, WORKLOAD } from '../src/gate/names.js';
import { BUNDLE_LABEL } from '../src/operate/bundle-dir.js';
import { admitCustomRun } from './admit-customrun/policy.js';
import { admitPipelineRun } from './admit-pipelinerun/policy.js';
import { cancelCustomRun } from './cancel-customrun/policy.js';
import { evictPipelineRun } from './evict-pipelinerun/policy.js';
import { generateLocalQueues } from './generate-localqueues/policy.js';
import { generateWorkload } from './generate-workload/policy.js';
import { mutatePipelineRun } from './mutate-pipelinerun/policy.js';
import { readyWorkload } from './ready-workload/policy.js';
import { releaseWorkload } from './release-workload/policy.js';
import { requeueWorkload } from './requeue-workload/policy.js';
import { OPT_OUT_PERMISSION, OPT_OUT_ROLE, tenantGuard } from './tenant-guard/policy.js';
import { validatePipelineRun } from './validate-pipelinerun/policy.js';
import { workloadStatusKept } from './workload-status-kept/policy.js';

const PART_OF = { [BUNDLE_LABEL.key]: BUNDLE_LABEL.value };

/** The gate, one policy per step of the flow, in flow order; each strategy brings its own admit step. */
export function gatePolicies(config: Config): PolicyDefinition[] {
  const { customRun, pending } = mechanismsOf(config.strategy);
  const localQueues = generateLocalQueues(config);
  return [
    ...(localQueues ? [localQueues] : []),
    mutatePipelineRun(config),
    validatePipelineRun(config),
    generateWorkload(config),
    ...(customRun ? [admitCustomRun(config), cancelCustomRun(config)] : []),
    ...(pending ? [admitPipelineRun(config)] : []),
    readyWorkload(config),
    releaseWorkload(config),
    evictPipelineRun(config),
    requeueWorkload(config),
  ];
}

/** Charts that a GitOps tool applies; `samples` is for trying the gate out and stays apart. */
export const APPLIED_COMPONENTS = ['namespaces', 'kueue', 'rbac', 'policies', 'guard'] as const;

/** The job kind of Kueue's one integration on by default, which a MultiKueue manager watches on its workers. */
const BATCH_JOB = { apiVersion: 'batch/v1', kind: 'Job' };

export function buildBundle(config: Config): App {
  const app = new App();
  const { multiKueue } = config;
  const policies = gatePolicies(config);

  const namespaces = new Chart(app, 'namespaces');
  // Listed namespaces carry the tenant labels too: the policies then select every managed namespace by them.
  new ManagedNamespaces(namespaces, 'namespaces', { names: config.namespaces.map((ns) => ns.name), labels: { ...PART_OF, ...config.tenants?.labels } });

  const kueue = new Chart(app, 'kueue');
  new PipelineQueues(kueue, 'queues', {
    clusterQueues: config.clusterQueues,
    namespaces: config.namespaces,
    ...(config.tenants ? { tenants: config.tenants } : {}),
    ...(multiKueue?.role === 'manager' ? { admissionCheck: { name: MULTIKUEUE_CHECK, clusterQueues: multiKueue.dispatching } } : {}),
    flavorName: config.resourceFlavor,
    labels: PART_OF,
  });
  if (multiKueue?.role === 'manager') {
    new MultiKueueDispatch(kueue, 'multikueue', { name: MULTIKUEUE_CHECK, workers: multiKueue.workers, labels: PART_OF });
  }
  if (config.priorities.length > 0) {
    new PriorityClasses(kueue, 'priority-classes', { priorities: config.priorities, labels: PART_OF });
  }

  const rbac = new Chart(app, 'rbac');
  new KyvernoAccess(rbac, 'kyverno-access', { access: requiredAccess(policies, config.dialect), labels: PART_OF });
  if (multiKueue?.role === 'worker') {
    new MultiKueueWorkerAccess(rbac, 'multikueue-manager', { serviceAccount: multiKueue.manager, job: PIPELINE_RUN, workload: WORKLOAD, watched: [BATCH_JOB], labels: PART_OF });
  }
  new OptOutRole(rbac, 'opt-out', { permission: OPT_OUT_PERMISSION, name: OPT_OUT_ROLE, subjects: config.optOut.subjects, labels: PART_OF });

  const policyChart = new Chart(app, 'policies');
  for (const definition of policies) {
    new GatePolicy(policyChart, definition.name, { definition, dialect: config.dialect, labels: PART_OF });
  }

  const guard = new Chart(app, 'guard');
  new TenantGuard(guard, 'tenant-guard', { guard: tenantGuard(config), labels: PART_OF });
  new StatusKept(guard, 'workload-status-kept', { kept: workloadStatusKept(config, policies), labels: PART_OF });

  if (config.samples) {
    const samples = new Chart(app, 'samples');
    const priorities = config.priorities.length > 0 ? config.priorities.map((p) => p.name) : [undefined];
    for (const ns of config.namespaces) {
      for (const queue of ns.queues) {
        for (const priority of priorities) {
          const name = ['sample', queue.name, priority].filter(Boolean).join('-');
          new SamplePipelineRun(samples, `${ns.name}-${name}`, { name, namespace: ns.name, queue: queue.name, priority, labels: PART_OF });
        }
      }
    }
  }
  return app;
}
