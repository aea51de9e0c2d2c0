import type { Config } from '../../src/config/config.js';
import type { PolicyDefinition } from '../../src/gate/model.js';
import { REQUEUE_AT_ONCE, WORKLOAD } from '../../src/gate/names.js';
import { holdOfWorkload, mechanismsIn, statusUpdatesOf } from '../triggers.js';

/**
 * Eviction of a run the gate still holds (its gate CustomRun has not succeeded, or it is still
 * pending): nothing runs, so its Workload gives its quota reservation back and goes back to the
 * queue. For Workloads no job integration owns, Kueue marks the eviction but leaves this to the
 * integration, as its job reconciler does for Jobs.
 */
export function requeueWorkload(config: Config): PolicyDefinition {
  return {
    name: 'requeue-workload',
    title: 'Requeue the Workload of an evicted PipelineRun that had not been let go',
    description:
      'When Kueue sets Evicted=True on the Workload of a gated PipelineRun that the gate still holds, clears the quota reservation ' +
      '(status.admission, QuotaReserved=False, Admitted=False) and sets Requeued, so Kueue admits the run again later: at once after ' +
      'a preemption, after its backoff, queue restart or reactivation otherwise.',
    // Fail open, as for every status step: re-applied by policy updates and background scans.
    failurePolicy: 'Ignore',
    steps: mechanismsIn(config).map((mechanism) => ({
      type: 'requeue-workload',
      rule: `requeue-held-${mechanism}-workload`,
      trigger: statusUpdatesOf(WORKLOAD, config, mechanism),
      when: { condition: 'Evicted', statuses: ['True'] },
      hold: holdOfWorkload(mechanism, config),
      requeueAtOnce: REQUEUE_AT_ONCE,
      unreserved: { quotaReservedReason: 'Pending', admittedReason: 'NoReservation', admittedMessage: 'The workload has no reservation' },
    })),
  };
}
