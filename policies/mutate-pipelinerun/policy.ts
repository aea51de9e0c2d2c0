import { type Config, mechanismsOf } from '../../src/config/config.js';
import type { GateStep, PolicyDefinition } from '../../src/gate/model.js';
import { GATE_TASK, GATED_LABEL, HELD_BY_GATE, PENDING_STATUS, PIPELINE_RUN, WORKLOAD } from '../../src/gate/names.js';
import { creationOf } from '../triggers.js';

/**
 * Step 1 of the flow: hold a new PipelineRun in a managed namespace back until Kueue admits it.
 * - customrun: an inline-spec run gets the `kueue-gate` custom task at `tasks[0]` and every task
 *   waits for it; params, when, matrix, results, finally and existing runAfter are kept.
 * - pending: the run is created with `spec.status: PipelineRunPending` (TEP-0015) and an
 *   annotation saying the gate did it; works for pipelineRef and resolver runs too.
 * - auto: customrun for inline specs, pending for the rest.
 * Never gates twice; the opt-out label leaves a run alone.
 */
export function mutatePipelineRun(config: Config): PolicyDefinition {
  const { customRun, pending } = mechanismsOf(config.strategy);
  const trigger = creationOf(PIPELINE_RUN, config);
  const steps: GateStep[] = [];
  if (customRun) {
    steps.push({
      type: 'insert-gate',
      rule: 'insert-gate',
      trigger,
      gateTask: GATE_TASK,
      customTask: WORKLOAD,
      optOutLabel: config.optOutLabel,
      gatedLabel: { key: GATED_LABEL, value: 'customrun' },
    });
  }
  if (pending) {
    steps.push({
      type: 'hold-pending',
      rule: 'hold-pending',
      trigger,
      runs: customRun ? 'without-inline-tasks' : 'all',
      pendingStatus: PENDING_STATUS,
      heldBy: HELD_BY_GATE,
      optOutLabel: config.optOutLabel,
      gatedLabel: { key: GATED_LABEL, value: 'pending' },
    });
  }
  return {
    name: 'mutate-pipelinerun',
    title: 'Hold PipelineRuns back until Kueue admits them',
    description:
      (customRun ? 'Inserts the kueue-gate custom task at the head of an inline-spec PipelineRun and makes every task run after it. ' : '') +
      (pending
        ? `Creates ${customRun ? 'every other' : 'every'} PipelineRun with spec.status ${PENDING_STATUS} and the ${HELD_BY_GATE.key} annotation; a run created pending by its user is queued but never released by the gate. `
        : 'Runs that reference a Pipeline are left alone. ') +
      `Runs that are already gated or carry the ${config.optOutLabel}: "true" label are left alone.`,
    // Fail closed: while Kyverno is unreachable no run may start unqueued.
    failurePolicy: 'Fail',
    steps,
  };
}
