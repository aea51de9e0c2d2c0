import type { Config } from '../../src/config/config.js';
import type { PolicyDefinition } from '../../src/gate/model.js';
import { GATE_TASK, GATED_LABEL, PIPELINE_RUN, WORKLOAD } from '../../src/gate/names.js';

/**
 * Step 1 of the flow. On CREATE of a PipelineRun with an inline `pipelineSpec` in a managed
 * namespace, insert the `kueue-gate` custom task at `tasks[0]` and make every task wait for it.
 * Everything else the run says (params, when, matrix, results, finally, existing runAfter) is kept.
 */
export function mutatePipelineRun(config: Config): PolicyDefinition {
  return {
    name: 'mutate-pipelinerun',
    title: 'Queue PipelineRuns behind a Kueue gate task',
    description:
      'Inserts the kueue-gate custom task at the head of an inline-spec PipelineRun and makes every task run after it, ' +
      'so no task starts before Kueue admits the run. Runs that reference a Pipeline, already have the gate, ' +
      `or carry the ${config.optOutLabel}: "true" label are left alone.`,
    // Fail closed: while Kyverno is unreachable no run may start unqueued.
    failurePolicy: 'Fail',
    step: {
      type: 'insert-gate',
      trigger: { kind: PIPELINE_RUN, operations: ['CREATE'], namespaces: config.namespaces.map((ns) => ns.name) },
      gateTask: GATE_TASK,
      customTask: WORKLOAD,
      optOutLabel: config.optOutLabel,
      gatedLabel: { key: GATED_LABEL, value: config.strategy },
    },
  };
}
