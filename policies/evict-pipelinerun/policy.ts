import { type Config, mechanismsOf } from '../../src/config/config.js';
import type { GateStep, PolicyDefinition } from '../../src/gate/model.js';
import { GATE_TASK, PIPELINE_RUN, PIPELINE_RUN_LABEL, STOP_STATUS, WORKLOAD } from '../../src/gate/names.js';
import { statusUpdatesOf } from '../triggers.js';

/**
 * Eviction and preemption, both strategies: Kueue only marks a Workload `Evicted=True`. If the run
 * had started, stop it (`StoppedRunFinally`: its finally tasks still run); release-workload then
 * marks the Workload Finished when it ends. If it had not started, it simply stays queued.
 */
export function evictPipelineRun(config: Config): PolicyDefinition {
  const { customRun, pending } = mechanismsOf(config.strategy);
  const mechanisms = [...(customRun ? ['customrun' as const] : []), ...(pending ? ['pending' as const] : [])];
  return {
    name: 'evict-pipelinerun',
    title: 'Stop a PipelineRun whose Workload Kueue evicted',
    description:
      `When Kueue sets Evicted=True on the Workload of a gated PipelineRun that has started, sets the run's spec.status to ${STOP_STATUS} ` +
      '(finally tasks still run); the Workload is marked Finished when the run ends. A run evicted before it started stays queued.',
    failurePolicy: 'Ignore',
    steps: mechanisms.map((mechanism): GateStep => ({
      type: 'set-run-status',
      rule: `stop-evicted-${mechanism}-run`,
      trigger: statusUpdatesOf(WORKLOAD, config, mechanism),
      when: { condition: 'Evicted', statuses: ['True'] },
      target: { kind: PIPELINE_RUN, name: { from: 'label', key: PIPELINE_RUN_LABEL } },
      change: { type: 'stop', stopStatus: STOP_STATUS, gateTask: GATE_TASK },
    })),
  };
}
