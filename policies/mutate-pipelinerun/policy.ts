import { type Config, mechanismsOf } from '../../src/config/config.js';
import type { GateStep, PolicyDefinition } from '../../src/gate/model.js';
import { GATE_TASK, GATED_LABEL, HELD_BY_GATE, PENDING_STATUS, MULTIKUEUE_ORIGIN_LABEL, ROUTED_BY, WORKLOAD } from '../../src/gate/names.js';
import { dispatchOf, routesOf } from '../sizing.js';
import { dispatchedRunCreation, runCreation, statusChangeOf } from '../triggers.js';

/**
 * Step 1 of the flow: hold a new PipelineRun in a managed namespace back until Kueue admits it.
 * - customrun: an inline-spec run gets the bundle's `kueue-gate` custom task at `tasks[0]` (tasks
 *   of the run's own named like it are dropped), every task waits for it, and its finally tasks
 *   run only if the gate succeeded; params, when, matrix, results and existing runAfter are kept.
 * - pending: the run is created with `spec.status: PipelineRunPending` (TEP-0015) and an
 *   annotation saying the gate holds it; works for pipelineRef and resolver runs too. A run its
 *   user created pending is not queued until its user releases it; that release becomes the
 *   gate's hold.
 * - auto: customrun for inline specs, pending for the rest.
 * First, the config's routing rules: the first that matches a new run sets its queue, priority
 * class and requests (the run's own win unless the rule enforces), and names itself in an annotation.
 * The gate's label is always the gate's own; runs opted out (a grant the tenant guard checks) are
 * left alone.
 */
export function mutatePipelineRun(config: Config): PolicyDefinition {
  const { customRun, pending } = mechanismsOf(config.strategy);
  const trigger = runCreation(config);
  const steps: GateStep[] = [];
  if (config.rules.length > 0) {
    steps.push({ type: 'route-run', rule: 'clear-route', trigger, routedBy: ROUTED_BY, routes: routesOf(config) });
  }
  if (customRun) {
    steps.push({
      type: 'insert-gate',
      rule: 'insert-gate',
      trigger,
      gateTask: GATE_TASK,
      customTask: WORKLOAD,
      gatedLabel: { key: GATED_LABEL, value: 'customrun' },
      rules: { dropLookalikes: 'drop-lookalike-gates', waitForGate: 'wait-for-gate', gateFinally: 'gate-finally' },
      finallyWhen: { input: `$(tasks.${GATE_TASK}.status)`, operator: 'in', values: ['Succeeded'] },
    });
  }
  if (config.multiKueue?.role === 'worker') {
    steps.push({ type: 'release-dispatched', rule: 'release-dispatched-run', trigger: dispatchedRunCreation(config), pendingStatus: PENDING_STATUS, heldBy: HELD_BY_GATE });
  }
  const dispatch = dispatchOf(config);
  if (pending) {
    steps.push(
      {
        type: 'hold-pending',
        rule: 'hold-pending',
        trigger,
        runs: customRun ? 'without-inline-tasks' : 'all',
        pendingStatus: PENDING_STATUS,
        heldBy: HELD_BY_GATE,
        gatedLabel: { key: GATED_LABEL, value: 'pending' },
        userPendingRule: 'label-user-pending',
        ...(dispatch ? { dispatch } : {}),
      },
      {
        type: 'hold-user-release',
        rule: 'hold-user-release',
        trigger: statusChangeOf(config, { from: PENDING_STATUS, to: '' }),
        pendingStatus: PENDING_STATUS,
        heldBy: HELD_BY_GATE,
      },
    );
  }
  return {
    name: 'mutate-pipelinerun',
    title: 'Hold PipelineRuns back until Kueue admits them',
    description:
      (config.rules.length > 0 ? `Routes a new PipelineRun by the first matching rule (its queue, priority class and requests), naming the rule in the ${ROUTED_BY} annotation. ` : '') +
      (customRun
        ? 'Inserts the kueue-gate custom task at the head of an inline-spec PipelineRun (dropping tasks named like it), makes every task run after it, and lets finally tasks run only if it succeeded. '
        : '') +
      (pending
        ? `Creates ${customRun ? 'every other' : 'every'} PipelineRun with spec.status ${PENDING_STATUS} and the ${HELD_BY_GATE.key} annotation; a run created pending by its user is queued only once its user releases it, and then waits for Kueue. `
        : 'Runs that reference a Pipeline are left alone. ') +
      (dispatch ? `A run in a LocalQueue of a ClusterQueue that dispatches to worker clusters gets spec.managedBy ${dispatch.managedBy}: Tekton leaves it alone here, and Kueue's MultiKueue runs a copy on a worker. ` : '') +
      (config.multiKueue?.role === 'worker'
        ? `A run Kueue's MultiKueue copied here (label ${MULTIKUEUE_ORIGIN_LABEL}) was held on its manager until its Workload was admitted here: its pending status is cleared, and the gate leaves it alone otherwise. `
        : '') +
      `Runs labelled ${config.optOut.label}: "true" by a subject granted the opt-out are left alone.`,
    // Fail closed: while Kyverno is unreachable no run may start unqueued, nor be released by its user.
    failurePolicy: 'Fail',
    steps,
  };
}
