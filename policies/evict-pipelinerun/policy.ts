import { type Config, mechanismsOf } from '../../src/config/config.js';
import type { GateStep, PolicyDefinition } from '../../src/gate/model.js';
import { GATE_TASK, GATED_LABEL, PIPELINE_RUN, PIPELINE_RUN_LABEL, STOP_STATUS, WORKLOAD } from '../../src/gate/names.js';

/**
 * Eviction and preemption, both strategies: Kueue only marks a Workload `Evicted=True`. If the run
 * had started, stop it (`StoppedRunFinally`: its finally tasks still run); release-workload then
 * marks the Workload Finished when it ends. If it had not started, it simply stays queued.
 */
export function evictPipelineRun(config: Config): PolicyDefinition {
  const { customRun, pending } = mechanismsOf(config.strategy);
  const gatedBy = [...(customRun ? ['customrun'] : []), ...(pending ? ['pending'] : [])];
  return {
    name: 'evict-pipelinerun',
    title: 'Stop a PipelineRun whose Workload Kueue evicted',
    description:
      `When Kueue sets Evicted=True on the Workload of a gated PipelineRun that has started, sets the run's spec.status to ${STOP_STATUS} ` +
      '(finally tasks still run); the Workload is marked Finished when the run ends. A run evicted before it started stays queued.',
    failurePolicy: 'Ignore',
    steps: gatedBy.map((strategy): GateStep => ({
      type: 'set-run-status',
      rule: `stop-evicted-${strategy}-run`,
      trigger: {
        kind: WORKLOAD,
        subresource: 'status',
        operations: ['UPDATE'],
        namespaces: config.namespaces.map((ns) => ns.name),
        labels: { [GATED_LABEL]: strategy },
      },
      when: { condition: 'Evicted', statuses: ['True'] },
      target: { kind: PIPELINE_RUN, name: { from: 'label', key: PIPELINE_RUN_LABEL } },
      change: { type: 'stop', stopStatus: STOP_STATUS, gateTask: GATE_TASK },
    })),
  };
}
