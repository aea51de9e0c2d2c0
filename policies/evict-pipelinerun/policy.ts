import type { Config } from '../../src/config/config.js';
import type { PolicyDefinition } from '../../src/gate/model.js';
import { PIPELINE_RUN_LABEL, STOP_STATUS, WORKLOAD } from '../../src/gate/names.js';
import { holdOfWorkload, mechanismsIn, runOfWorkload, statusUpdatesOf } from '../triggers.js';

/**
 * Eviction and preemption, both strategies: Kueue only marks a Workload `Evicted=True`. If the gate
 * had let the run go (its gate CustomRun succeeded, or its pending status was cleared), the run may
 * be running: stop it (`StoppedRunFinally`: its finally tasks still run); release-workload marks
 * the Workload Finished when it ends, and it keeps its quota until then, so it cannot be admitted
 * twice. A run still held is requeue-workload's.
 */
export function evictPipelineRun(config: Config): PolicyDefinition {
  return {
    name: 'evict-pipelinerun',
    title: 'Stop a PipelineRun whose Workload Kueue evicted',
    description:
      `When Kueue sets Evicted=True on the Workload of a gated PipelineRun that the gate had let go, sets the run's spec.status to ${STOP_STATUS} ` +
      '(finally tasks still run); the Workload keeps its quota until the run ends and is marked Finished. A run still held is requeued instead.',
    failurePolicy: 'Ignore',
    steps: mechanismsIn(config).map((mechanism) => ({
      type: 'set-run-status',
      rule: `stop-evicted-${mechanism}-run`,
      trigger: statusUpdatesOf(WORKLOAD, config, mechanism),
      when: { condition: 'Evicted', statuses: ['True'] },
      target: runOfWorkload(mechanism, { from: 'label', key: PIPELINE_RUN_LABEL }),
      change: { type: 'stop', stopStatus: STOP_STATUS, hold: holdOfWorkload(mechanism, config) },
    })),
  };
}
