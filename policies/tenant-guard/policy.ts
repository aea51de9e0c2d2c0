import { type Config, mechanismsOf } from '../../src/config/config.js';
import { CUSTOM_RUN, GATE_TASK, GATED_LABEL, HELD_BY_GATE, PENDING_STATUS, PIPELINE_RUN, MULTIKUEUE_ORIGIN_LABEL, STOP_STATUS, TASK_RUN, WORKLOAD } from '../../src/gate/names.js';
import type { TenantGuard } from '../../src/guard/model.js';
import { DIALECTS } from '../../src/kyverno/dialect.js';
import { mutatePipelineRun } from '../mutate-pipelinerun/policy.js';
import { managedNamespaces } from '../triggers.js';

/** The verb a subject must be granted to opt a run out of the queue (none by default). */
export const OPT_OUT_PERMISSION = { group: 'tekton-kueue-policies.dev', resource: 'pipelineruns', verb: 'opt-out' } as const;
export const OPT_OUT_ROLE = 'tekton-kueue-policies:opt-out';

/**
 * In a managed namespace, no identity but the ones the gate trusts can start a run unadmitted:
 * opting out is an RBAC grant, only the gate releases a held run or opens a gate, the gate's marks
 * stay the gate's, and TaskRuns and CustomRuns are Tekton's to create.
 */
export function tenantGuard(config: Config): TenantGuard {
  const { customRun, pending } = mechanismsOf(config.strategy);
  const gate = mutatePipelineRun(config);
  const { multiKueue } = config;
  return {
    name: 'tekton-kueue-policies-guard',
    namespaces: managedNamespaces(config),
    identities: {
      ...config.trustedIdentities,
      ...(multiKueue?.role === 'worker' ? { multiKueueManager: [`system:serviceaccount:${multiKueue.manager.namespace}:${multiKueue.manager.name}`] } : {}),
    },
    optOut: { label: config.optOut.label, permission: OPT_OUT_PERMISSION, clusterRole: OPT_OUT_ROLE },
    run: {
      kind: PIPELINE_RUN,
      gatedLabel: GATED_LABEL,
      mechanisms: { customrun: customRun ? (pending ? 'inline' : 'all') : 'none', pending: pending ? (customRun ? 'non-inline' : 'all') : 'none' },
      gateTask: GATE_TASK,
      customTask: WORKLOAD,
      finallyWhenInput: `$(tasks.${GATE_TASK}.status)`,
      pendingStatus: PENDING_STATUS,
      heldBy: HELD_BY_GATE,
      cancelStatus: 'Cancelled',
      finallyStatuses: ['CancelledRunFinally', STOP_STATUS],
      ...(multiKueue?.role === 'worker' ? { dispatchedLabel: MULTIKUEUE_ORIGIN_LABEL } : {}),
    },
    gatePolicy: { resource: DIALECTS[config.dialect](gate)[0]!.kind.toLowerCase(), name: gate.name },
    taskRun: TASK_RUN,
    customRun: CUSTOM_RUN,
    rules: {
      optOutGranted: 'opt-out-granted',
      gatedAtCreation: 'gated-at-creation',
      noStopAtCreation: 'no-stop-at-creation',
      gateLabelKept: 'gate-label-kept',
      holdKept: 'hold-kept',
      releasedByGate: 'released-by-gate',
      gateTaskKept: 'gate-task-kept',
      childrenByTekton: 'children-by-tekton',
      gateOpenedByGate: 'gate-opened-by-gate',
      dispatchedByManager: 'dispatched-by-manager',
    },
  };
}
